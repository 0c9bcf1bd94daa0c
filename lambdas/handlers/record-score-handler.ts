/**
 * Record-score Lambda: SageMaker async inference success / error topics (SNS) → SQS → here → the
 * study's stack records (`pending`, with scores and predicted labeling time) or its rejection / failure.
 *
 * Event: an SQS batch (ReportBatchItemFailures) whose bodies are SNS envelopes (raw message delivery
 * off) carrying SageMaker's asynchronous-inference notification; parsed with zod at the edge
 * (contracts/events.ts). The study is found from `requestParameters.inputLocation`
 * (`scoring-requests/<studyId>.json`, written by ingest). Every write is conditional, so the same
 * notification delivered N times, or a late one, changes nothing after the first (domain/record-score.ts).
 * A study the container refused (4xx) is moved to quarantine: its upload's version copied to
 * `quarantine/<code>/<studyId>/…`, the rejection recorded with that key, the original version deleted
 * (domain/quarantine.ts).
 *
 * Failures: each message succeeds or fails alone. Transient ones (AWS errors, a missing output object)
 * are retried by SQS; malformed notifications and unknown studies are reported too and reach the DLQ.
 * Logs carry studyId, inferenceId, messageId and codes, never object keys.
 * Environment: contracts/env.ts RecordScoreEnvSchema, parsed at cold start (EnvironmentError).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import middy from "@middy/core";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { S3StudyObjects } from "../adapters/s3-study-objects.js";
import { parseEnvironment, RecordScoreEnvSchema } from "../contracts/env.js";
import type { SqsBatchResponse, SqsEvent } from "../contracts/events.js";
import { MalformedNotificationError, type RecordScoreDeps, recordScoreMessage } from "../domain/record-score.js";
import { jsonLogger, type Logger } from "./shared/logger.js";
import { emfWriter, intakeCounter } from "./shared/metrics.js";
import { processSqsBatch, sqsEventParser } from "./shared/sqs-batch.js";

export type RecordScoreHandlerDeps = Omit<RecordScoreDeps, "log"> & { log: Logger };

export function createRecordScoreHandler(deps: RecordScoreHandlerDeps) {
  return middy<unknown, SqsBatchResponse>()
    .use(sqsEventParser())
    .handler((event) =>
      processSqsBatch(event as SqsEvent, (message) => recordScoreMessage(message.body, deps), {
        log: deps.log,
        permanent: (error) => error instanceof MalformedNotificationError,
      }),
    );
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function recordScoreDepsFromEnvironment(env: Record<string, string | undefined>): RecordScoreHandlerDeps {
  const config = parseEnvironment("record-score", RecordScoreEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  const objects = new S3StudyObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }));
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    outputs: objects,
    objects,
    config: { studiesBucket: config.STUDIES_BUCKET, timePrior: config.TIME_MODEL_PRIOR },
    now: () => new Date().toISOString(),
    log: jsonLogger({ lambda: "record-score" }),
    count: intakeCounter(emfWriter(config.METRICS_NAMESPACE)),
  };
}

export const handler = createRecordScoreHandler(recordScoreDepsFromEnvironment(process.env));
