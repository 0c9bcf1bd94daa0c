/**
 * JudgeCandidate: the training job's evaluation → promote or not → metrics JSON, a model package
 * (Approved or Rejected) and the run's record (domain/learning.ts judgeCandidate). Input
 * `{ now, jobName, training }` (`training`: what createTrainingJob.sync returned); output Judgement.
 * Environment: contracts/env.ts JudgeCandidateEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { SageMakerModelRegistry } from "../adapters/sagemaker-learning.js";
import { JudgeCandidateEnvSchema, parseEnvironment } from "../contracts/env.js";
import { JudgeInputSchema, type Judgement } from "../contracts/learning.js";
import { LEARNING_METRICS } from "../contracts/metrics.js";
import { type JudgeDeps, judgeCandidate } from "../domain/learning.js";
import { type LineSink, type Logger, lambdaHandler, type MetricsWriter } from "./shared/lambda-handler.js";
import { learningPorts, sagemakerClient, trainingObjects } from "./shared/learning-ports.js";

export type JudgeCandidateHandlerDeps = Omit<JudgeDeps, "log"> & { log: Logger; metrics?: Metrics; count?: MetricsWriter };

export function createJudgeCandidateHandler(deps: JudgeCandidateHandlerDeps) {
  return lambdaHandler({ ...deps, name: "judge-candidate", input: JudgeInputSchema }, async (input): Promise<Judgement> => {
    const judgement = await judgeCandidate(
      { ...deps, log: (message, fields) => deps.log.info(message, fields) },
      { now: input.now, jobName: input.jobName, modelData: input.training.ModelArtifacts.S3ModelArtifacts },
    );
    const metric = judgement.promote ? LEARNING_METRICS.candidatesPromoted : LEARNING_METRICS.candidatesRejected;
    deps.count?.({ [metric]: { value: 1, unit: "Count" } });
    return judgement;
  });
}

export function judgeCandidateDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): JudgeCandidateHandlerDeps {
  const config = parseEnvironment("judge-candidate", JudgeCandidateEnvSchema, env);
  const { endpoint, ...ports } = learningPorts("judge-candidate", config, sink);
  return {
    ...ports,
    objects: trainingObjects(endpoint, config.STUDIES_BUCKET),
    registry: new SageMakerModelRegistry(sagemakerClient(endpoint), config.MODEL_PACKAGE_GROUP, config.MODEL_IMAGE),
    settings: { tolerance: config.PROMOTION_TOLERANCE },
  };
}

export const handler = createJudgeCandidateHandler(judgeCandidateDepsFromEnvironment(process.env));
