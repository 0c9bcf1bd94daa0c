/**
 * The one per-institution configuration (`infra/config/<institution>.json`, or `-c config=path`),
 * read by the CDK app and parsed with this schema before any construct is built. Unknown keys are
 * refused, so a misspelt field is a named error rather than a silently ignored default.
 */
import { z } from "zod";
import { TimePriorSchema } from "./records.js";
import { HeatmapThresholdsSchema, PrivateCreatorsSchema, TopKSchema } from "./scoring.js";

/** True when the runtime knows the IANA time zone (e.g. "Europe/Berlin", "UTC"). */
export const isTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

/**
 * EventBridge Scheduler cron: `cron(minutes hours day-of-month month day-of-week year)`, six fields,
 * one of day-of-month / day-of-week being `?`.
 */
const CRON = /^cron\((\S+ ){5}\S+\)$/;
const hasOneQuestionMark = (expression: string): boolean => {
  const fields = expression.slice("cron(".length, -1).split(" ");
  return (fields[2] === "?") !== (fields[4] === "?");
};

export const WeeklyScheduleSchema = z
  .object({
    /** When the weekly selection runs. Default: `cron(0 6 ? * MON *)` (Mondays 06:00). */
    expression: z
      .string()
      .regex(CRON, "an EventBridge Scheduler cron expression with six fields, e.g. cron(0 6 ? * MON *)")
      .refine(hasOneQuestionMark, "exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 6 ? * MON *)")
      .default("cron(0 6 ? * MON *)"),
    /** IANA time zone the expression is read in (e.g. "Europe/Vienna"). Default: "UTC". */
    timezone: z.string().refine(isTimeZone, "an IANA time zone such as Europe/Vienna or UTC").default("UTC"),
  })
  .strict();

export const ScoringEndpointConfigSchema = z
  .object({
    /** SageMaker instance type of the asynchronous endpoint. Default: ml.g5.xlarge (one A10G GPU). */
    instanceType: z
      .string()
      .regex(/^ml\.[a-z0-9]+\.[a-z0-9]+$/, "a SageMaker instance type such as ml.g5.xlarge")
      .default("ml.g5.xlarge"),
    /** Most instances the endpoint scales out to (it scales to zero when idle). Default: 1. */
    maxInstanceCount: z.number().int().min(1).max(10).default(1),
    /** The trained ensemble (`s3://bucket/path/model.tar.gz`). Default: none (no endpoint until trained). */
    modelArtifact: z
      .string()
      .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+\.tar\.gz$/, "an s3://bucket/path/model.tar.gz URI")
      .optional(),
  })
  .strict();

/** The learning loop (infra/learning-workflow.ts): when a training job runs, on what, and when a candidate is promoted. */
export const LearningConfigSchema = z
  .object({
    /** When the workflow checks for new masks (the weekly schedule's time zone). Default: daily at 02:00. One job per ISO week at most. */
    schedule: z
      .string()
      .regex(CRON, "an EventBridge Scheduler cron expression with six fields, e.g. cron(0 2 * * ? *)")
      .refine(hasOneQuestionMark, "exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 2 * * ? *)")
      .default("cron(0 2 * * ? *)"),
    /** N: accepted masks since the last judged model that start a training job. Default: 20. */
    minNewMasks: z.number().int().min(1).max(100_000).default(20),
    /** Share of labeled stacks held out for validation (fixed by a hash of the stack id). Default: 0.2. */
    validationShare: z.number().min(0.05).max(0.5).default(0.2),
    /** How much lower (pixel or stack AP) a candidate may score than the model in service and still be promoted. Default: 0.05. */
    tolerance: z.number().min(0).max(1).default(0.05),
    /** Training instance type. Default: ml.g5.xlarge. */
    instanceType: z
      .string()
      .regex(/^ml\.[a-z0-9]+\.[a-z0-9]+$/, "a SageMaker instance type such as ml.g5.xlarge")
      .default("ml.g5.xlarge"),
    /** Longest a training job may run, in hours (its stopping condition). Default: 8. */
    maxRuntimeHours: z.number().int().min(1).max(48).default(8),
    /** Training volume in GiB. Default: 100. */
    volumeSizeGb: z.number().int().min(10).max(1024).default(100),
    /** Hyperparameters of the `train` entry (model-container ichal/train/hyperparameters.py), e.g. {"iterations": 2000}. Default: the container's. */
    hyperparameters: z.record(z.string().regex(/^[a-z_]+$/), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();
export type LearningConfig = z.infer<typeof LearningConfigSchema>;
const DEFAULT_LEARNING: LearningConfig = {
  schedule: "cron(0 2 * * ? *)",
  minNewMasks: 20,
  validationShare: 0.2,
  tolerance: 0.05,
  instanceType: "ml.g5.xlarge",
  maxRuntimeHours: 8,
  volumeSizeGb: 100,
  hyperparameters: {},
};

/** The documented prior (lambdas/domain/labeling-time-model.ts DEFAULT_TIME_PRIOR; a test keeps them equal). */
const DEFAULT_PRIOR = { alpha: 0.45, beta: 0.35, gamma: Math.log(45), residualSd: 0.6, strength: 4 } as const;
const DEFAULT_TIME_MODEL_CONFIG = { prior: { ...DEFAULT_PRIOR }, maxActiveHours: 8, calibrationBand: [0.8, 1.25] as [number, number] };

export const TimeModelConfigSchema = z
  .object({
    /**
     * The prior's centre (α, β ≥ 0; γ = log of the seconds to review a negative stack; residual SD of
     * log t) and its strength in completions. Default: α 0.45, β 0.35, γ log 45, SD 0.6, strength 4.
     */
    prior: TimePriorSchema.default({ ...DEFAULT_PRIOR }),
    /** Longest active time a completion may report, in hours (the API refuses longer). Default: 8. */
    maxActiveHours: z.number().finite().min(0.25).max(24).default(8),
    /** Band of actual / predicted hours for the last round outside which an alarm fires. Default: [0.8, 1.25]. */
    calibrationBand: z
      .tuple([z.number().finite().positive(), z.number().finite().positive()])
      .refine(([low, high]) => low < 1 && high > 1, "[low, high] with low < 1 < high, e.g. [0.8, 1.25]")
      .default([0.8, 1.25]),
  })
  .strict();

/**
 * How long the studies bucket keeps what (S3 lifecycle rules, infra/studies-ingest.ts; README "Data retention").
 * Days count from an object's upload (or its copy to quarantine); S3 runs lifecycle rules about once a day.
 */
export const DEFAULT_RETENTION = { quarantineDays: 30, uploadsDays: 365, noncurrentDays: 7, scoringArtifactsDays: 30 } as const;
/** A re-driven event must still find its object: the queues keep messages 4 days and their DLQs 14 more. */
const QUEUE_AND_DLQ_DAYS = 18;

export const RetentionConfigSchema = z
  .object({
    /** Days a refused study's copy stays in `quarantine/` (readable only by the operator role) before it expires. Default: 30. */
    quarantineDays: z.number().int().min(1).max(3650).default(DEFAULT_RETENTION.quarantineDays),
    /**
     * Days an upload (`uploads/`) and its overlay thumbnails (`overlays/`) — what the worklist viewer needs — are
     * kept before they expire. At least 18 (ingest queue 4 days + DLQ 14: a re-driven event must still find
     * its upload). Default: 365.
     */
    uploadsDays: z
      .number()
      .int()
      .min(
        QUEUE_AND_DLQ_DAYS,
        `at least ${QUEUE_AND_DLQ_DAYS} days (queue 4 + DLQ 14: a re-driven upload event must still find its object)`,
      )
      .max(36500)
      .default(DEFAULT_RETENTION.uploadsDays),
    /** Days a replaced or expired version in `uploads/` and `overlays/` is kept before it is deleted for good. Default: 7. */
    noncurrentDays: z.number().int().min(1).max(365).default(DEFAULT_RETENTION.noncurrentDays),
    /**
     * Days the scoring requests, results and failure reports (`scoring-requests/`, `scoring-results/`,
     * `scoring-failures/`) are kept. At least 18 (score queue 4 days + DLQ 14: a re-driven notification must
     * still find its result). Default: 30.
     */
    scoringArtifactsDays: z
      .number()
      .int()
      .min(
        QUEUE_AND_DLQ_DAYS,
        `at least ${QUEUE_AND_DLQ_DAYS} days (queue 4 + DLQ 14: a re-driven notification must still find its result)`,
      )
      .max(36500)
      .default(DEFAULT_RETENTION.scoringArtifactsDays),
  })
  .strict();
export type RetentionConfig = z.infer<typeof RetentionConfigSchema>;

export const DeidentificationConfigSchema = z
  .object({
    /**
     * DICOM private creator values (e.g. `GEMS_IDEN_01`) whose private elements the scoring container's PHI check
     * lets pass: list only blocks you know carry no identifiers in your scanners' exports. Sent with every scoring
     * request (ingest's PRIVATE_CREATOR_ALLOW_LIST). Default: [] (every private element with a value is refused).
     */
    allowedPrivateCreators: PrivateCreatorsSchema.default([]),
  })
  .strict();

export const InstitutionConfigSchema = z
  .object({
    /** Short id (lower-case letters, digits, hyphens; 1–31 characters); names the stack and its resources. */
    institution: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits or hyphens, e.g. "st-elsewhere"'),
    /** Who receives the weekly selection e-mail (at least one). No default. */
    annotatorEmails: z.array(z.email("an e-mail address")).min(1, "at least one annotator e-mail address"),
    /** The SES-verified From address of the weekly e-mail. No default. */
    senderAddress: z.email("an e-mail address"),
    /** Q: annotator hours available per week (> 0). No default. */
    weeklyBudgetHours: z.number().positive("more than 0 hours").finite(),
    /** When the weekly selection runs. Default: Mondays 06:00 UTC. */
    schedule: WeeklyScheduleSchema.default({ expression: "cron(0 6 ? * MON *)", timezone: "UTC" }),
    /** r: knapsack time resolution in seconds (weights ceil(T/r), capacity floor(Q/r)). Default: 1. */
    timeResolutionSeconds: z.number().positive().finite().default(1),
    /**
     * K: number of top patches whose mean JS divergence is the stack uncertainty V. Default: 200. Sent with
     * every scoring request (ingest's SCORING_TOP_K), so it overrides the model manifest's `top_k`.
     */
    topK: TopKSchema.default(200),
    /**
     * Heatmap thresholds at which B and M are averaged, strictly increasing in (0, 1). Default: [0.3, 0.5, 0.7].
     * Sent with every scoring request (ingest's SCORING_THRESHOLDS), overriding the model manifest's `thresholds`.
     */
    thresholds: HeatmapThresholdsSchema.default([0.3, 0.5, 0.7]),
    /** The labeling-time model (domain/labeling-time-model.ts). Default: the documented prior, 8 h, [0.8, 1.25]. */
    timeModel: TimeModelConfigSchema.default(DEFAULT_TIME_MODEL_CONFIG),
    /** The scoring endpoint. Default: ml.g5.xlarge, at most 1 instance, no model yet. */
    scoring: ScoringEndpointConfigSchema.default({ instanceType: "ml.g5.xlarge", maxInstanceCount: 1 }),
    /** The learning loop: retraining on accepted masks, promotion, re-scoring. Default: daily check, 20 masks, 20 % validation, tolerance 0.05, ml.g5.xlarge. */
    learning: LearningConfigSchema.default(DEFAULT_LEARNING),
    /** What the PHI check accepts beyond the PS3.15 basic profile (model-container/ichal/io/phi.py). Default: no private creators. */
    deidentification: DeidentificationConfigSchema.default({ allowedPrivateCreators: [] }),
    /** How long the studies bucket keeps quarantined, uploaded and scoring data. Default: 30, 365, 7 (noncurrent), 30 days. */
    retention: RetentionConfigSchema.default({ ...DEFAULT_RETENTION }),
  })
  .strict();

export type InstitutionConfig = z.infer<typeof InstitutionConfigSchema>;
/** The configuration as written in the JSON file (defaults not yet applied). */
export type InstitutionConfigInput = z.input<typeof InstitutionConfigSchema>;

/** A configuration that does not parse; the message names every bad field and what it should be. */
export class InstitutionConfigError extends Error {
  override readonly name = "InstitutionConfigError";
}

/** Parses a configuration, throwing `InstitutionConfigError` whose message names each bad field (`scoring.maxInstanceCount: …`). */
export const parseInstitutionConfig = (input: unknown, source = "institution config"): InstitutionConfig => {
  const result = InstitutionConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const valueAt = (path: PropertyKey[]): unknown =>
    path.reduce<unknown>(
      (value, key) => (value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined),
      input,
    );
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join(".") : "(root)";
    const missing = issue.path.length > 0 && valueAt(issue.path) === undefined;
    return `${field}: ${missing ? "required (no default)" : issue.message}`;
  });
  throw new InstitutionConfigError(`${source} is invalid — ${problems.join("; ")}`, { cause: result.error });
};
