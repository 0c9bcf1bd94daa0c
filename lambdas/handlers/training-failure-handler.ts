/**
 * RecordTrainingFailure: any Task of the learning workflow failed. The run is recorded failed with the
 * error, a package approved for a deployment that did not happen is rejected, and the model in service
 * stays (domain/learning.ts recordTrainingFailure). Input: the execution's state — `now`, `error`
 * (the Catch's `{ Error, Cause }`), and `plan` / `judgement` when those states ran.
 * Environment: contracts/env.ts TrainingFailureEnvSchema.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { z } from "zod";
import { DynamoTrainingLedger } from "../adapters/dynamo-training-ledger.js";
import { rejectModelPackage } from "../adapters/sagemaker-learning.js";
import { parseEnvironment, TrainingFailureEnvSchema } from "../contracts/env.js";
import { type FailureDeps, recordTrainingFailure } from "../domain/learning.js";
import { learningStep } from "./shared/learning-step.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export const TrainingFailureStateSchema = z.object({
  now: z.iso.datetime({ offset: true }),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }),
  plan: z.looseObject({ jobName: z.string().optional() }).optional(),
  judgement: z.looseObject({ promote: z.boolean(), modelPackageArn: z.string() }).optional(),
});

export function createTrainingFailureHandler(deps: Omit<FailureDeps, "log"> & { log: Logger }) {
  return learningStep("training-failure", TrainingFailureStateSchema, deps.log, (state) =>
    recordTrainingFailure(
      { ...deps, log: (message, fields) => deps.log.warn(message, fields) },
      {
        now: state.now,
        error: state.error,
        ...(state.plan?.jobName ? { jobName: state.plan.jobName } : {}),
        ...(state.judgement?.promote ? { modelPackageArn: state.judgement.modelPackageArn } : {}),
      },
    ),
  );
}

export function trainingFailureDepsFromEnvironment(env: Record<string, string | undefined>) {
  const config = parseEnvironment("training-failure", TrainingFailureEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const sagemaker = new SageMakerClient(endpoint);
  return {
    ledger: new DynamoTrainingLedger(new DynamoDBClient(endpoint), config.TABLE_NAME),
    registry: { reject: (arn: string, reason: string) => rejectModelPackage(sagemaker, arn, reason) },
    log: jsonLogger({ lambda: "training-failure" }),
  };
}

export const handler = createTrainingFailureHandler(trainingFailureDepsFromEnvironment(process.env));
