/**
 * Each Lambda's environment as a zod schema: the CDK function wrapper is typed by the schema (a
 * missing variable is a compile error in infra) and the handler parses it once at cold start (a
 * missing or malformed variable is an EnvironmentError naming every offending variable).
 */
import { z } from "zod";
import { AnnotatorDirectorySchema } from "./completion-api.js";
import { isTimeZone } from "./institution-config.js";
import { TimePriorSchema } from "./records.js";
import { HeatmapThresholdsSchema, PrivateCreatorsSchema, TopKSchema } from "./scoring.js";

const GIB = 1024 ** 3;

/** A variable holding JSON (infra writes JSON.stringify of a config value), parsed before its schema applies. */
const jsonText = z.string().transform((value, ctx) => {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "not valid JSON" });
    return z.NEVER;
  }
});

/** A TimePrior as JSON (infra writes JSON.stringify(config.timeModel.prior)). */
const timePriorJson = jsonText.pipe(TimePriorSchema);

/** Longest credible active time in seconds (the institution config's `timeModel.maxActiveHours` × 3600; default 8 h). */
const maxActiveSeconds = z.coerce
  .number()
  .finite()
  .min(60)
  .max(86_400)
  .default(8 * 3600);

/** An IANA time zone the runtime knows, e.g. `Europe/Vienna` (checked as the institution config checks it). */
const scheduleTimeZone = z.string().refine(isTimeZone, "an IANA time zone such as Europe/Vienna or UTC");

/** Environment of the ingest Lambda (lambdas/handlers/ingest-handler.ts). */
export const IngestEnvSchema = z.object({
  /** The records table. */
  TABLE_NAME: z.string().min(1),
  /** CloudWatch namespace of this Lambda's metrics (EMF, contracts/metrics.ts INTAKE_METRICS), e.g. `IchAl/demo`. */
  METRICS_NAMESPACE: z.string().min(1),
  /** The versioned studies bucket (uploads/, quarantine/, scoring-requests/, overlays/). */
  STUDIES_BUCKET: z.string().min(1),
  /** The SageMaker asynchronous scoring endpoint. */
  SCORING_ENDPOINT_NAME: z.string().min(1),
  /** Largest object accepted for scoring, in bytes (default 2 GiB); larger ones are quarantined. */
  MAX_OBJECT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * GIB),
  /**
   * How long one delivery may hold the right to invoke scoring (default 300 s). Set it ≥ the function
   * timeout (a live holder is never overtaken) and ≤ the queue's visibility timeout (6× the function
   * timeout in infra/studies-ingest.ts), so a crashed holder's redelivery finds the claim lapsed.
   */
  INVOKE_CLAIM_SECONDS: z.coerce.number().int().positive().default(300),
  /**
   * The ingest queue's redrive `maxReceiveCount` (infra/studies-ingest.ts). A delivery whose SQS
   * ApproximateReceiveCount reaches it is the last before the DLQ: if its scoring request still fails,
   * the study is recorded `failed` (and the message still goes to the DLQ for re-drive).
   */
  MAX_RECEIVE_COUNT: z.coerce.number().int().min(1).max(1000),
  /** K sent with every scoring request (the institution config's `topK`), e.g. `200`. */
  SCORING_TOP_K: z.coerce.number().pipe(TopKSchema),
  /** Heatmap thresholds sent with every scoring request (the institution config's `thresholds`), comma-separated, e.g. `0.3,0.5,0.7`. */
  SCORING_THRESHOLDS: z
    .string()
    .transform((value) => value.split(",").map((part) => (part.trim() === "" ? Number.NaN : Number(part))))
    .pipe(HeatmapThresholdsSchema),
  /**
   * Private creators whose private DICOM elements the container's PHI check lets pass, sent with every scoring
   * request (the institution config's `deidentification.allowedPrivateCreators`): a JSON array, e.g.
   * `["GEMS_IDEN_01"]` (creator values may hold commas). Unset: none.
   */
  PRIVATE_CREATOR_ALLOW_LIST: jsonText.pipe(PrivateCreatorsSchema).default([]),
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type IngestEnv = z.infer<typeof IngestEnvSchema>;

/**
 * Environment of the re-score Lambda (lambdas/handlers/rescore-handler.ts): the records table, and the
 * scoring request ingest would send (studies bucket, endpoint, K, thresholds, private creators).
 */
export const RescoreEnvSchema = IngestEnvSchema.pick({
  TABLE_NAME: true,
  METRICS_NAMESPACE: true,
  STUDIES_BUCKET: true,
  SCORING_ENDPOINT_NAME: true,
  SCORING_TOP_K: true,
  SCORING_THRESHOLDS: true,
  PRIVATE_CREATOR_ALLOW_LIST: true,
  AWS_ENDPOINT_URL: true,
});
export type RescoreEnv = z.infer<typeof RescoreEnvSchema>;

/** Environment shared by the learning workflow's Lambdas (lambdas/handlers/*-training*, judge, deploy, put-in-service). */
const LearningEnvBase = z.object({
  TABLE_NAME: z.string().min(1),
  /** Where the step's metrics go (contracts/metrics.ts LEARNING_METRICS). */
  METRICS_NAMESPACE: z.string().min(1),
  /** The studies bucket (training-channels/, training-output/, model-evaluations/). */
  STUDIES_BUCKET: z.string().min(1),
  AWS_ENDPOINT_URL: z.url().optional(),
});

/** Environment of prepare-training (lambdas/handlers/prepare-training-handler.ts). */
export const PrepareTrainingEnvSchema = LearningEnvBase.extend({
  /** Institution id: names the week's training job. */
  INSTITUTION: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/),
  /** IANA zone the week is read in (the weekly schedule's). */
  SCHEDULE_TIMEZONE: scheduleTimeZone,
  /** N: masks since the last judged job that start a new one (config `learning.minNewMasks`). */
  MIN_NEW_MASKS: z.coerce.number().int().min(1).max(100_000),
  /** Share of labeled stacks held out for validation (config `learning.validationShare`). */
  VALIDATION_SHARE: z.coerce.number().min(0.05).max(0.5),
  /** The stack's first model (`scoring.modelArtifact`), the warm start until a promoted model has its own. */
  INITIAL_MODEL_DATA: z
    .string()
    .regex(/^s3:\/\/[^/]+\/.+$/)
    .optional(),
});
export type PrepareTrainingEnv = z.infer<typeof PrepareTrainingEnvSchema>;

/** Environment of judge-candidate (lambdas/handlers/judge-candidate-handler.ts). */
export const JudgeCandidateEnvSchema = LearningEnvBase.extend({
  /** How much worse (pixel or stack AP) a candidate may be and still be promoted (config `learning.tolerance`). */
  PROMOTION_TOLERANCE: z.coerce.number().min(0).max(1),
  MODEL_PACKAGE_GROUP: z.string().min(1),
  /** The model container image the packages name. */
  MODEL_IMAGE: z.string().min(1),
});
export type JudgeCandidateEnv = z.infer<typeof JudgeCandidateEnvSchema>;

/** Environment of deploy-candidate (lambdas/handlers/deploy-candidate-handler.ts). */
export const DeployCandidateEnvSchema = z.object({
  SCORING_ENDPOINT_NAME: z.string().min(1),
  AWS_ENDPOINT_URL: z.url().optional(),
});

/** Environment of put-in-service (lambdas/handlers/put-in-service-handler.ts). */
export const PutInServiceEnvSchema = LearningEnvBase.pick({ TABLE_NAME: true, METRICS_NAMESPACE: true, AWS_ENDPOINT_URL: true });

/** Environment of training-failure (lambdas/handlers/training-failure-handler.ts). */
export const TrainingFailureEnvSchema = LearningEnvBase.pick({ TABLE_NAME: true, METRICS_NAMESPACE: true, AWS_ENDPOINT_URL: true });

/** The institution config's `thresholds` as SCORING_THRESHOLDS carries them (inverse of its parse). */
export const formatThresholds = (thresholds: readonly number[]): string => thresholds.map(String).join(",");

/** A Lambda's environment does not match its schema. */
export class EnvironmentError extends Error {
  constructor(
    readonly lambda: string,
    readonly variables: string[],
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${lambda}: invalid environment (${variables.join(", ")}): ${detail}`, options);
    this.name = "EnvironmentError";
  }
}

/** Parses `env` with `schema`, or throws EnvironmentError naming each bad variable (never its value). */
export function parseEnvironment<S extends z.ZodType>(lambda: string, schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const variables = [...new Set(parsed.error.issues.map((issue) => String(issue.path[0] ?? "?")))];
  const detail = parsed.error.issues.map((issue) => `${String(issue.path[0] ?? "?")}: ${issue.message}`).join("; ");
  throw new EnvironmentError(lambda, variables, detail, { cause: parsed.error });
}

/** Environment of the record-score Lambda (lambdas/handlers/record-score-handler.ts). */
export const RecordScoreEnvSchema = z.object({
  /** The records table (stack records and TIMEMODEL versions). */
  TABLE_NAME: z.string().min(1),
  /** CloudWatch namespace of this Lambda's metrics (EMF, contracts/metrics.ts INTAKE_METRICS), e.g. `IchAl/demo`. */
  METRICS_NAMESPACE: z.string().min(1),
  /** The institution config's `timeModel.prior` as JSON: T for new stacks until the first fit is stored. */
  TIME_MODEL_PRIOR: timePriorJson,
  /** The studies bucket: scoring requests, results and failures must live here. */
  STUDIES_BUCKET: z.string().min(1),
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type RecordScoreEnv = z.infer<typeof RecordScoreEnvSchema>;

/** Environment of the select Lambda (lambdas/handlers/select-handler.ts). */
export const SelectEnvSchema = z.object({
  /** The records table (stack records and ROUND records). */
  TABLE_NAME: z.string().min(1),
  /** Q: the annotators' weekly time budget, in hours. */
  WEEKLY_BUDGET_HOURS: z.coerce.number().finite().positive(),
  /** The institution config's `timeModel.prior` as JSON: version 0 prices the round's interval. */
  TIME_MODEL_PRIOR: timePriorJson,
  /** r: time resolution of the knapsack in seconds (default 1). */
  RESOLUTION_SECONDS: z.coerce.number().finite().positive().default(1),
  /** The schedule's IANA time zone (the institution config's `schedule.timezone`): rounds are ISO weeks read there. */
  SCHEDULE_TIMEZONE: scheduleTimeZone,
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type SelectEnv = z.infer<typeof SelectEnvSchema>;

/** A comma-separated list of e-mail addresses (e.g. `a@x.org,b@x.org`), parsed to a non-empty array. */
const emailList = z
  .string()
  .transform((value) => value.split(",").map((address) => address.trim()))
  .pipe(z.array(z.email()).min(1));

/** Environment of the refit Lambda (lambdas/handlers/refit-handler.ts), first state of the weekly workflow. */
export const RefitEnvSchema = z.object({
  /** The records table (labeled stacks, TIMEMODEL versions, pending stacks to re-predict). */
  TABLE_NAME: z.string().min(1),
  /** The institution config's `timeModel.prior` as JSON (TimePriorSchema). */
  TIME_MODEL_PRIOR: timePriorJson,
  /** Longest active time a completion may report, in seconds (`timeModel.maxActiveHours` × 3600). */
  MAX_ACTIVE_SECONDS: maxActiveSeconds,
  /** actual / predicted band of the last round outside which the calibration alarm fires, e.g. `0.8,1.25`. */
  CALIBRATION_BAND: z
    .string()
    .transform((value) => value.split(",").map((part) => (part.trim() === "" ? Number.NaN : Number(part))))
    .pipe(z.tuple([z.number().finite().positive(), z.number().finite().positive()]))
    .refine(([low, high]) => low < high, "low,high with low < high")
    .transform(([low, high]) => ({ low, high })),
  /** CloudWatch namespace of the refit's metrics (EMF), e.g. `IchAl/demo`. */
  METRICS_NAMESPACE: z.string().min(1),
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type RefitEnv = z.infer<typeof RefitEnvSchema>;

/** Environment of the notify Lambda (lambdas/handlers/notify-handler.ts): one e-mail per annotator per round. */
export const NotifyEnvSchema = z.object({
  /** The records table (ROUND records, stack records, per-annotator notification marks). */
  TABLE_NAME: z.string().min(1),
  /** The SES-verified From address. */
  SENDER_ADDRESS: z.email(),
  /** Who receives the worklist, comma-separated; the round's stacks are shared out among them. */
  ANNOTATOR_EMAILS: emailList,
  /** Q: the weekly budget in hours (shown as "predicted vs budget"). */
  WEEKLY_BUDGET_HOURS: z.coerce.number().finite().positive(),
  /** The annotator worklist page; the e-mail links to it. */
  WORKLIST_URL: z.url(),
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type NotifyEnv = z.infer<typeof NotifyEnvSchema>;

/** Environment of the completion API Lambda (lambdas/handlers/complete-handler.ts). */
export const CompleteEnvSchema = z.object({
  /** The records table. */
  TABLE_NAME: z.string().min(1),
  /**
   * JSON AnnotatorDirectory (contracts/completion-api.ts): each annotator's Cognito `sub` with their configured
   * e-mail; set by infra/completion-api.ts from the users it created. The caller is the token's `sub` looked up here.
   */
  ANNOTATOR_DIRECTORY: jsonText.pipe(AnnotatorDirectorySchema),
  /** Longest active time a completion may report, in seconds; longer (or under 1 s) is refused with 400. */
  MAX_ACTIVE_SECONDS: maxActiveSeconds,
  /** The studies bucket: `overlays/` read (GET /overlays/{stackId}), `label-uploads/` presigned and read, `labels/` written. */
  STUDIES_BUCKET: z.string().min(1),
  /** The schedule's IANA time zone (the institution config's `schedule.timezone`): rounds are ISO weeks read there. */
  SCHEDULE_TIMEZONE: scheduleTimeZone,
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type CompleteEnv = z.infer<typeof CompleteEnvSchema>;

/** Environment of the failure path of the weekly workflow (lambdas/handlers/round-failure-handler.ts). */
export const RoundFailureEnvSchema = z.object({
  /** The records table (ROUND records, stacks to put back in the pool). */
  TABLE_NAME: z.string().min(1),
  /** The schedule's IANA time zone (the institution config's `schedule.timezone`): rounds are ISO weeks read there. */
  SCHEDULE_TIMEZONE: scheduleTimeZone,
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type RoundFailureEnv = z.infer<typeof RoundFailureEnvSchema>;

/** Environment of the start-round Lambda (lambdas/handlers/start-round-handler.ts), the weekly schedule's target. */
export const StartRoundEnvSchema = z.object({
  /** The weekly workflow; executions are named after the ISO week (`select-2026-W48`). */
  STATE_MACHINE_ARN: z.string().min(1),
  /** The schedule's IANA time zone (the institution config's `schedule.timezone`): rounds are ISO weeks read there. */
  SCHEDULE_TIMEZONE: scheduleTimeZone,
  /** Local use only: send every AWS call to this endpoint (e.g. moto server); unset in AWS. */
  AWS_ENDPOINT_URL: z.url().optional(),
});
export type StartRoundEnv = z.infer<typeof StartRoundEnvSchema>;
