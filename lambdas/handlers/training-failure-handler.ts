/**
 * RecordTrainingFailure: any Task of the learning workflow failed. The run is recorded failed with the
 * error, a package approved for a deployment that did not happen is rejected, and the model in service
 * stays (domain/learning.ts recordTrainingFailure). Input: the execution's state — `now`, `error`
 * (the Catch's `{ Error, Cause }`), and `plan` / `judgement` when those states ran.
 * Environment: contracts/env.ts TrainingFailureEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { z } from "zod";
import { rejectModelPackage } from "../adapters/sagemaker-learning.js";
import { parseEnvironment, TrainingFailureEnvSchema } from "../contracts/env.js";
import { LEARNING_METRICS } from "../contracts/metrics.js";
import { type FailureDeps, recordTrainingFailure } from "../domain/learning.js";
import { type LineSink, type Logger, lambdaHandler, type MetricsWriter } from "./shared/lambda-handler.js";
import { learningPorts, sagemakerClient } from "./shared/learning-ports.js";

export const TrainingFailureStateSchema = z.object({
  now: z.iso.datetime({ offset: true }),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }),
  plan: z.looseObject({ jobName: z.string().optional() }).optional(),
  judgement: z.looseObject({ promote: z.boolean(), modelPackageArn: z.string() }).optional(),
});

export type TrainingFailureHandlerDeps = Omit<FailureDeps, "log"> & { log: Logger; metrics?: Metrics; count?: MetricsWriter };

export function createTrainingFailureHandler(deps: TrainingFailureHandlerDeps) {
  return lambdaHandler({ ...deps, name: "training-failure", input: TrainingFailureStateSchema }, async (state) => {
    const result = await recordTrainingFailure(
      { ...deps, log: (message, fields) => deps.log.warn(message, fields) },
      {
        now: state.now,
        error: state.error,
        ...(state.plan?.jobName ? { jobName: state.plan.jobName } : {}),
        ...(state.judgement?.promote ? { modelPackageArn: state.judgement.modelPackageArn } : {}),
      },
    );
    deps.count?.({ [LEARNING_METRICS.trainingRunsFailed]: { value: 1, unit: "Count" } });
    return result;
  });
}

export function trainingFailureDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): TrainingFailureHandlerDeps {
  const config = parseEnvironment("training-failure", TrainingFailureEnvSchema, env);
  const { endpoint, records: _, ...ports } = learningPorts("training-failure", config, sink);
  const sagemaker = sagemakerClient(endpoint);
  return { ...ports, registry: { reject: (arn: string, reason: string) => rejectModelPackage(sagemaker, arn, reason) } };
}

export const handler = createTrainingFailureHandler(trainingFailureDepsFromEnvironment(process.env));
