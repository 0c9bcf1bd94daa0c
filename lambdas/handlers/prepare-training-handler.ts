/**
 * PrepareTraining, the learning workflow's first Task: whether this week trains, and the job's channels
 * (domain/learning.ts prepareTraining). Input `{ now, execution }`; output contracts/learning.ts TrainingPlan.
 * Environment: contracts/env.ts PrepareTrainingEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { z } from "zod";
import { PrepareTrainingEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { TrainingPlan } from "../contracts/learning.js";
import { LEARNING_METRICS } from "../contracts/metrics.js";
import { type PrepareDeps, prepareTraining } from "../domain/learning.js";
import { type LineSink, type Logger, lambdaHandler, type MetricsWriter } from "./shared/lambda-handler.js";
import { learningPorts, trainingObjects } from "./shared/learning-ports.js";

export const PrepareTrainingInputSchema = z.object({ now: z.iso.datetime({ offset: true }), execution: z.string().min(1) });

export type PrepareTrainingHandlerDeps = Omit<PrepareDeps, "log"> & { log: Logger; metrics?: Metrics; count?: MetricsWriter };

export function createPrepareTrainingHandler(deps: PrepareTrainingHandlerDeps) {
  return lambdaHandler({ ...deps, name: "prepare-training", input: PrepareTrainingInputSchema }, async (input): Promise<TrainingPlan> => {
    const plan = await prepareTraining({ ...deps, log: (message, fields) => deps.log.info(message, fields) }, input.now, input.execution);
    const metric = plan.train ? LEARNING_METRICS.trainingJobsStarted : LEARNING_METRICS.trainingSkipped;
    deps.count?.({ [metric]: { value: 1, unit: "Count" } });
    return plan;
  });
}

export function prepareTrainingDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): PrepareTrainingHandlerDeps {
  const config = parseEnvironment("prepare-training", PrepareTrainingEnvSchema, env);
  const { endpoint, ...ports } = learningPorts("prepare-training", config, sink);
  return {
    ...ports,
    objects: trainingObjects(endpoint, config.STUDIES_BUCKET),
    settings: {
      institution: config.INSTITUTION,
      timeZone: config.SCHEDULE_TIMEZONE,
      minNewMasks: config.MIN_NEW_MASKS,
      validationShare: config.VALIDATION_SHARE,
      ...(config.INITIAL_MODEL_DATA ? { initialModelData: config.INITIAL_MODEL_DATA } : {}),
    },
  };
}

export const handler = createPrepareTrainingHandler(prepareTrainingDepsFromEnvironment(process.env));
