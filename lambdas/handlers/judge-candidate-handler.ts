/**
 * JudgeCandidate: the training job's evaluation → promote or not → metrics JSON, a model package
 * (Approved or Rejected) and the run's record (domain/learning.ts judgeCandidate). Input
 * `{ now, jobName, training }` (`training`: what createTrainingJob.sync returned); output Judgement.
 * Environment: contracts/env.ts JudgeCandidateEnvSchema.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTrainingLedger } from "../adapters/dynamo-training-ledger.js";
import { S3TrainingObjects } from "../adapters/s3-training-objects.js";
import { SageMakerModelRegistry } from "../adapters/sagemaker-learning.js";
import { JudgeCandidateEnvSchema, parseEnvironment } from "../contracts/env.js";
import { JudgeInputSchema, type Judgement } from "../contracts/learning.js";
import { type JudgeDeps, judgeCandidate } from "../domain/learning.js";
import { learningStep } from "./shared/learning-step.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export function createJudgeCandidateHandler(deps: Omit<JudgeDeps, "log"> & { log: Logger }): (event: unknown) => Promise<Judgement> {
  return learningStep("judge-candidate", JudgeInputSchema, deps.log, (input) =>
    judgeCandidate(
      { ...deps, log: (message, fields) => deps.log.info(message, fields) },
      { now: input.now, jobName: input.jobName, modelData: input.training.ModelArtifacts.S3ModelArtifacts },
    ),
  );
}

export function judgeCandidateDepsFromEnvironment(env: Record<string, string | undefined>) {
  const config = parseEnvironment("judge-candidate", JudgeCandidateEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    ledger: new DynamoTrainingLedger(dynamo, config.TABLE_NAME),
    objects: new S3TrainingObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    registry: new SageMakerModelRegistry(new SageMakerClient(endpoint), config.MODEL_PACKAGE_GROUP, config.MODEL_IMAGE),
    settings: { tolerance: config.PROMOTION_TOLERANCE },
    log: jsonLogger({ lambda: "judge-candidate" }),
  };
}

export const handler = createJudgeCandidateHandler(judgeCandidateDepsFromEnvironment(process.env));
