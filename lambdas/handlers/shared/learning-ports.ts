/**
 * The clients and ports the learning workflow's Lambdas share, built once per execution environment from
 * their parsed environment (contracts/env.ts Learning*EnvSchema).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { DynamoRecordStore } from "../../adapters/dynamo-record-store.js";
import { DynamoTrainingLedger } from "../../adapters/dynamo-training-ledger.js";
import { S3TrainingObjects } from "../../adapters/s3-training-objects.js";
import { type LineSink, lambdaLogger, lambdaMetrics, metricsWriter } from "./lambda-handler.js";

interface LearningEnv {
  readonly TABLE_NAME: string;
  readonly METRICS_NAMESPACE: string;
  readonly AWS_ENDPOINT_URL?: string | undefined;
}

/** Records, the training ledger, logger and metrics of one learning Lambda. */
export function learningPorts(lambda: string, config: LearningEnv, sink?: LineSink) {
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  const metrics = lambdaMetrics(config.METRICS_NAMESPACE, sink);
  return {
    endpoint,
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    ledger: new DynamoTrainingLedger(dynamo, config.TABLE_NAME),
    log: lambdaLogger(lambda, sink),
    metrics,
    count: metricsWriter(metrics),
  };
}

/** The studies bucket's training channels and job outputs. */
export function trainingObjects(endpoint: { endpoint?: string }, bucket: string): S3TrainingObjects {
  return new S3TrainingObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(endpoint.endpoint) }), bucket);
}

export function sagemakerClient(endpoint: { endpoint?: string }): SageMakerClient {
  return new SageMakerClient(endpoint);
}
