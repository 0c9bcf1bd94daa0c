/**
 * Record-score Lambda: SageMaker's asynchronous-inference notifications (SNS → SQS) → the study's stack records
 * or its rejection / failure. Why a repeated or late notification changes nothing: domain/record-score.ts;
 * quarantine of refused studies: domain/quarantine.ts. Event: contracts/events.ts.
 * Environment: contracts/env.ts RecordScoreEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { S3StudyObjects } from "../adapters/s3-study-objects.js";
import { parseEnvironment, RecordScoreEnvSchema } from "../contracts/env.js";
import { MalformedNotificationError, type RecordScoreDeps, recordScoreMessage } from "../domain/record-score.js";
import {
  intakeCounter,
  type LineSink,
  type Logger,
  lambdaLogger,
  lambdaMetrics,
  metricsWriter,
  sqsBatchHandler,
} from "./shared/lambda-handler.js";

export type RecordScoreHandlerDeps = Omit<RecordScoreDeps, "log"> & { log: Logger; metrics?: Metrics };

export function createRecordScoreHandler(deps: RecordScoreHandlerDeps) {
  const parts = { ...deps, name: "record-score" };
  return sqsBatchHandler({ ...parts, permanent: (error) => error instanceof MalformedNotificationError }, (message) =>
    recordScoreMessage(message.body, deps),
  );
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function recordScoreDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): RecordScoreHandlerDeps {
  const config = parseEnvironment("record-score", RecordScoreEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  const objects = new S3StudyObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }));
  const metrics = lambdaMetrics(config.METRICS_NAMESPACE, sink);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    outputs: objects,
    objects,
    config: { studiesBucket: config.STUDIES_BUCKET, timePrior: config.TIME_MODEL_PRIOR },
    now: () => new Date().toISOString(),
    log: lambdaLogger("record-score", sink),
    metrics,
    count: intakeCounter(metricsWriter(metrics)),
  };
}

export const handler = createRecordScoreHandler(recordScoreDepsFromEnvironment(process.env));
