/**
 * The learning workflow (Step Functions, JSONPath): new masks → a training job → judged on the
 * validation split → registered → deployed and put in service, or kept out. Shared by the construct that
 * defines it (infra/learning-workflow.ts), the handlers its Tasks invoke (domain/learning.ts), and the
 * test runner that executes the synthesized definition.
 *
 *   Scheduler (learning.schedule) ──StartExecution {now}──▶
 *   PrepareTraining λ ─▶ EnoughNewMasks? ──no──▶ NothingToTrain (Succeed)
 *        │yes
 *   TrainCandidate (sagemaker:createTrainingJob.sync) ─▶ JudgeCandidate λ ─▶ PromoteCandidate? ──no──▶ CandidateRejected (Succeed)
 *        │yes
 *   DeployCandidate λ ─▶ WaitForEndpoint ─▶ DescribeEndpoint ─▶ EndpointInService? ─Updating─▶ WaitForEndpoint
 *        │InService
 *   PutInService λ ─▶ RescorePool (the re-score λ) ─▶ ModelPromoted (Succeed)
 *   any Task error ─Catch─▶ RecordTrainingFailure λ ─▶ TrainingFailed (Fail); the model in service is unchanged
 *
 * One job per ISO week at most: the job is named after the week, and PrepareTraining claims the name in
 * the records table before anything is written, so a second trigger in the same week trains nothing.
 */
import { z } from "zod";

export const LEARNING_WORKFLOW_STATES = {
  prepare: "PrepareTraining",
  enough: "EnoughNewMasks",
  nothingToTrain: "NothingToTrain",
  train: "TrainCandidate",
  judge: "JudgeCandidate",
  promote: "PromoteCandidate",
  rejected: "CandidateRejected",
  deploy: "DeployCandidate",
  wait: "WaitForEndpoint",
  describe: "DescribeEndpoint",
  inService: "EndpointInService",
  putInService: "PutInService",
  rescore: "RescorePool",
  done: "ModelPromoted",
  recordFailure: "RecordTrainingFailure",
  failed: "TrainingFailed",
} as const;

/** Where each Task's result goes in the execution state. */
export const LEARNING_RESULT_PATHS = {
  prepare: "$.plan",
  train: "$.training",
  judge: "$.judgement",
  deploy: "$.deployment",
  describe: "$.endpoint",
  putInService: "$.inService",
  rescore: "$.rescore",
  recordFailure: "$.failure",
} as const;

/** Studies-bucket prefixes of the learning loop (the stack grants exactly these). */
export const TRAINING_CHANNELS_PREFIX = "training-channels/";
export const TRAINING_OUTPUT_PREFIX = "training-output/";
export const MODEL_EVALUATIONS_PREFIX = "model-evaluations/";

const isoTimestamp = z.iso.datetime({ offset: true });
const s3Uri = z.string().regex(/^s3:\/\/[^/]+\/.+$/, "an s3:// URI");

/** A training job's name: `ich-al-<institution>-<year>-w<week>`. */
export const trainingJobName = (institution: string, week: { year: number; week: number }) =>
  `ich-al-${institution}-${week.year}-w${String(week.week).padStart(2, "0")}`;

export const LearningInputSchema = z.object({ now: isoTimestamp });
export type LearningInput = z.infer<typeof LearningInputSchema>;

/** PrepareTraining's answer (`$.plan`): either why nothing trains, or the job's channels. */
export const TrainingPlanSchema = z.discriminatedUnion("train", [
  z.object({
    train: z.literal(false),
    reason: z.string(),
    newMasks: z.number().int().nonnegative(),
    required: z.number().int().positive(),
  }),
  z.object({
    train: z.literal(true),
    jobName: z.string().min(1).max(63),
    newMasks: z.number().int().nonnegative(),
    trainStacks: z.number().int().positive(),
    validationStacks: z.number().int().positive(),
    /** Channel prefixes (`s3://bucket/training-channels/<job>/train/` …) and the warm start. */
    trainUri: s3Uri,
    validationUri: s3Uri,
    modelUri: s3Uri,
    outputUri: s3Uri,
  }),
]);
export type TrainingPlan = z.infer<typeof TrainingPlanSchema>;

/** One model's row of the job's evaluation.json (model-container ichal/train/sagemaker_entry.py). */
export const ModelEvaluationSchema = z.object({
  model_version: z.string().min(1),
  stack_ids: z.array(z.string()),
  metrics: z.looseObject({
    pixel_ap: z.number().nullable(),
    frame_ap: z.number().nullable(),
    stack_ap: z.number().nullable(),
  }),
});
export const EvaluationReportSchema = z.object({
  candidate: ModelEvaluationSchema,
  current: ModelEvaluationSchema.nullable(),
  training_stacks: z.number().int().nonnegative(),
});
export type EvaluationReport = z.infer<typeof EvaluationReportSchema>;

/** JudgeCandidate's input: the plan and what `createTrainingJob.sync` returned (DescribeTrainingJob). */
export const JudgeInputSchema = z.object({
  now: isoTimestamp,
  jobName: z.string().min(1),
  training: z.looseObject({ ModelArtifacts: z.object({ S3ModelArtifacts: s3Uri }) }),
});
export type JudgeInput = z.infer<typeof JudgeInputSchema>;

export const JudgementSchema = z.object({
  promote: z.boolean(),
  reasons: z.array(z.string()),
  jobName: z.string(),
  modelVersion: z.string(),
  modelData: s3Uri,
  modelPackageArn: z.string(),
  evaluationUri: s3Uri,
});
export type Judgement = z.infer<typeof JudgementSchema>;

export const DeployInputSchema = z.object({ jobName: z.string().min(1), modelData: s3Uri });
export const DeploymentSchema = z.object({ modelName: z.string(), endpointConfigName: z.string(), previousEndpointConfigName: z.string() });
export type Deployment = z.infer<typeof DeploymentSchema>;

export const PutInServiceInputSchema = z.object({ now: isoTimestamp, judgement: JudgementSchema });

export const TrainingFailureInputSchema = z.object({
  now: isoTimestamp,
  jobName: z.string().min(1).optional(),
  modelPackageArn: z.string().min(1).optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }),
});
export type TrainingFailureInput = z.infer<typeof TrainingFailureInputSchema>;

/** Validation metrics of one model as the ledger keeps them (null: undefined on this split). */
export const RunMetricsSchema = z.object({
  modelVersion: z.string(),
  pixelAp: z.number().nullable(),
  frameAp: z.number().nullable(),
  stackAp: z.number().nullable(),
});
export type RunMetrics = z.infer<typeof RunMetricsSchema>;

export const TRAINING_RUN_STATUSES = ["training", "rejected", "deploying", "promoted", "failed"] as const;

/** One training job's record (`pk TRAINING`, `sk JOB#<jobName>`). */
export const TrainingRunSchema = z.object({
  jobName: z.string().min(1),
  status: z.enum(TRAINING_RUN_STATUSES),
  startedAt: isoTimestamp,
  updatedAt: isoTimestamp,
  /** The latest completion among the masks it trains or validates on: masks after it are "new". */
  labelsUntil: isoTimestamp.optional(),
  newMasks: z.number().int().nonnegative(),
  trainStacks: z.array(z.string()),
  validationStacks: z.array(z.string()),
  /** The model it warm-started from (the one in service). */
  baseModel: z.string().optional(),
  candidate: RunMetricsSchema.optional(),
  current: RunMetricsSchema.optional(),
  reasons: z.array(z.string()).optional(),
  modelData: s3Uri.optional(),
  modelPackageArn: z.string().optional(),
  evaluationUri: s3Uri.optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});
export type TrainingRun = z.infer<typeof TrainingRunSchema>;
