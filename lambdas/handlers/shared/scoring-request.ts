/**
 * The clients and settings a Lambda needs to make a study's scoring request (ingest, rescore), from the
 * parsed environment (contracts/env.ts RescoreEnvSchema: the fields both environments share).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { DynamoRecordStore } from "../../adapters/dynamo-record-store.js";
import { S3StudyObjects } from "../../adapters/s3-study-objects.js";
import { SageMakerScoringEndpoint } from "../../adapters/sagemaker-scoring-endpoint.js";
import type { RescoreEnv } from "../../contracts/env.js";
import { intakeCounter, type LineSink, lambdaMetrics, metricsWriter } from "./lambda-handler.js";

export function scoringRequestDeps(config: RescoreEnv, sink?: LineSink) {
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const metrics = lambdaMetrics(config.METRICS_NAMESPACE, sink);
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    objects: new S3StudyObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) })),
    scoring: new SageMakerScoringEndpoint(new SageMakerRuntimeClient(endpoint), config.SCORING_ENDPOINT_NAME),
    config: {
      studiesBucket: config.STUDIES_BUCKET,
      topK: config.SCORING_TOP_K,
      thresholds: config.SCORING_THRESHOLDS,
      allowedPrivateCreators: config.PRIVATE_CREATOR_ALLOW_LIST,
    },
    metrics,
    count: intakeCounter(metricsWriter(metrics)),
  };
}
