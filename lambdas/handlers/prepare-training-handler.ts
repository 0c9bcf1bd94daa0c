/**
 * PrepareTraining, the learning workflow's first Task: whether this week trains, and the job's channels
 * (domain/learning.ts prepareTraining). Input `{ now, execution }` (the schedule's time and
 * `$$.Execution.Name`); output contracts/learning.ts TrainingPlan.
 * Environment: contracts/env.ts PrepareTrainingEnvSchema.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTrainingLedger } from "../adapters/dynamo-training-ledger.js";
import { S3TrainingObjects } from "../adapters/s3-training-objects.js";
import { PrepareTrainingEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { TrainingPlan } from "../contracts/learning.js";
import { type PrepareDeps, prepareTraining } from "../domain/learning.js";
import { learningStep } from "./shared/learning-step.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export const PrepareTrainingInputSchema = z.object({ now: z.iso.datetime({ offset: true }), execution: z.string().min(1) });

export function createPrepareTrainingHandler(deps: Omit<PrepareDeps, "log"> & { log: Logger }): (event: unknown) => Promise<TrainingPlan> {
  return learningStep("prepare-training", PrepareTrainingInputSchema, deps.log, (input) =>
    prepareTraining({ ...deps, log: (message, fields) => deps.log.info(message, fields) }, input.now, input.execution),
  );
}

export function prepareTrainingDepsFromEnvironment(env: Record<string, string | undefined>) {
  const config = parseEnvironment("prepare-training", PrepareTrainingEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    ledger: new DynamoTrainingLedger(dynamo, config.TABLE_NAME),
    objects: new S3TrainingObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    settings: {
      institution: config.INSTITUTION,
      timeZone: config.SCHEDULE_TIMEZONE,
      minNewMasks: config.MIN_NEW_MASKS,
      validationShare: config.VALIDATION_SHARE,
      ...(config.INITIAL_MODEL_DATA ? { initialModelData: config.INITIAL_MODEL_DATA } : {}),
    },
    log: jsonLogger({ lambda: "prepare-training" }),
  };
}

export const handler = createPrepareTrainingHandler(prepareTrainingDepsFromEnvironment(process.env));
