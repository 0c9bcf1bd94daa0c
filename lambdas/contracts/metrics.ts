/**
 * CloudWatch metrics the Lambdas publish in the embedded metric format (EMF: one JSON log line each,
 * no PutMetricData call) and the alarms and dashboards in infra read: names defined once here.
 */

/** The namespace of an institution's metrics, e.g. `IchAl/demo`. */
export const metricsNamespace = (institution: string): string => `IchAl/${institution}`;

/**
 * The `service` dimension every metric carries (Powertools adds it; the dashboard and alarms name it) and the
 * `service` field of every log line.
 */
export const METRICS_SERVICE = "ich-al";

export const REFIT_METRICS = {
  /** 1 when a fitted time model was refused as implausible (the version in effect stays), else 0. */
  fitRefused: "TimeModelFitRefused",
  /** Completions the version in effect leaves out (out of range or outliers). */
  excludedCompletions: "TimeModelExcludedCompletions",
  /** Last round with completions: Σ actual / Σ predicted seconds. */
  roundActualOverPredicted: "RoundActualOverPredicted",
  /** 1 when that ratio is outside the configured calibration band, else 0. */
  roundOutsideBand: "RoundOutsideTimeBand",
  /** Share of rounds whose actual total fell inside the predicted 80 % interval. */
  roundsInsideInterval: "RoundsInsideTimeInterval",
  /** Last round with completions: Σ predicted hours of its completed stacks (when they were selected). */
  roundPredictedHours: "RoundPredictedHours",
  /** Last round with completions: Σ the annotators' active hours on those stacks. */
  roundActualHours: "RoundActualHours",
} as const;

/**
 * Intake (ingest and record-score), one EMF line per event, written once after the record changed (at most once:
 * a crash in between loses the count; the records stay the truth). `StudiesRefused` and `StudiesFailed` carry the
 * dimension `Code` (the rejection code, e.g. `PHI_PRESENT`, or the failure's error code); the others none.
 */
export const INTAKE_METRICS = {
  /** A new upload recorded `received` (ingest). */
  studiesReceived: "StudiesReceived",
  /** A study refused (ingest: type, size, missing; record-score: the container's 4xx code), moved to quarantine. */
  studiesRefused: "StudiesRefused",
  /** A study the container failed to score (5xx, timeout, broken result) or whose request could not be made. */
  studiesFailed: "StudiesFailed",
  /** A study scored: its stacks recorded. */
  studiesScored: "StudiesScored",
  /** Stacks recorded `pending` (new in the pool). */
  stacksPooled: "StacksPooled",
  /** Stacks recorded `duplicate` (their voxels were recorded before). */
  stacksDuplicate: "StacksDuplicate",
  /** Pending stacks whose re-score the re-score function requested (after a promotion). */
  stacksRescoreRequested: "StacksRescoreRequested",
  /** Pending stacks whose scores record-score replaced with the model in service's. */
  stacksRescored: "StacksRescored",
  /** Re-score results dropped: the model that produced them is no longer in service. */
  rescoreResultsStale: "RescoreResultsStale",
} as const;
export type IntakeMetric = (typeof INTAKE_METRICS)[keyof typeof INTAKE_METRICS];

/** The learning workflow (domain/learning.ts), one EMF line per step that decides. */
export const LEARNING_METRICS = {
  /** A training job was started with its channels (PrepareTraining). */
  trainingJobsStarted: "TrainingJobsStarted",
  /** A week with too few new masks: no job. */
  trainingSkipped: "TrainingSkipped",
  /** A judged candidate: 1 promoted, 0 rejected (JudgeCandidate). */
  candidatesPromoted: "CandidatesPromoted",
  candidatesRejected: "CandidatesRejected",
  /** A new model in service (PutInService). */
  modelsPutInService: "ModelsPutInService",
  /** A run of the learning workflow that failed (RecordTrainingFailure). */
  trainingRunsFailed: "TrainingRunsFailed",
} as const;

/** The dimension of StudiesRefused / StudiesFailed. */
export const CODE_DIMENSION = "Code";

/** Port of the intake cores: adds `value` (default 1) to `metric`, with the refusal or failure code where it has one. */
export type IntakeCounter = (metric: IntakeMetric, value?: number, code?: string) => void;
