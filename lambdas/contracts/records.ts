/**
 * Records kept in the records table: one per CT stack, one per weekly selection round, one per
 * labeling-time model version. Shared by handlers (parse at the edge) and infra (key names).
 */
import { z } from "zod";
import { StackGeometrySchema } from "./masks.js";

const finiteNonNegative = z.number().finite().nonnegative();
const isoTimestamp = z.iso.datetime({ offset: true });

/** Where a stack came from: the idempotency key is bucket + decoded key + versionId (+ series). */
export const StackSourceSchema = z.object({
  bucket: z.string().min(1),
  key: z.string().min(1),
  versionId: z.string().min(1),
  /** DICOM SeriesInstanceUID when a study holds several axial series (each is a stack). */
  seriesUid: z.string().min(1).optional(),
});
export type StackSource = z.infer<typeof StackSourceSchema>;

/**
 * Life of a stack: pending (scored, selectable) → selected → labeled; or `duplicate` (its voxels were
 * recorded before under another stack, named by `duplicateOf`: never in the pool).
 * Life of an uploaded study: received → scored (its series are now stack records) or rejected (with
 * a reason code) / failed (with the error in `lastError`). A study fails when the container failed to
 * score it (record-score; it has `scoring`), or when its scoring request could not be made on the
 * upload event's last delivery before the ingest DLQ (ingest; no `scoring`): re-driving that message
 * claims the study back to `received` and retries it. Only stacks are ever `pending`, so the
 * by-status index lists exactly the selectable pool.
 */
export const STACK_STATUSES = ["received", "pending", "rejected", "failed", "selected", "labeled", "scored", "duplicate"] as const;
export const StackStatusSchema = z.enum(STACK_STATUSES);
export type StackStatus = z.infer<typeof StackStatusSchema>;

export const ScoresSchema = z.object({
  /** V: mean JS divergence of the top-K patches (paper §3.1). */
  stackUncertainty: finiteNonNegative,
  /** K actually used (fewer than requested when a stack has fewer patches). */
  topK: z.number().int().positive(),
  /** B: mean over thresholds of the boundary length (pixels). */
  boundaryLength: finiteNonNegative,
  /** M: mean over thresholds of the connected-component count. */
  components: finiteNonNegative,
  /** Stack-level hemorrhage score in [0, 1]. */
  stackScore: z.number().min(0).max(1),
  modelVersion: z.string().min(1),
});
export type Scores = z.infer<typeof ScoresSchema>;

export const PredictionSchema = z.object({
  /** T: predicted labeling seconds (log-normal mean). */
  predictedSeconds: z.number().finite().positive(),
  medianSeconds: z.number().finite().positive(),
  low: z.number().finite().positive(),
  high: z.number().finite().positive(),
  level: z.number().gt(0).lt(1),
  timeModelVersion: z.number().int().nonnegative(),
});
export type Prediction = z.infer<typeof PredictionSchema>;

export const RejectionSchema = z.object({
  /** Machine-readable reason, e.g. `PHI_PRESENT`, `WRONG_MODALITY`, `CORRUPT_ARCHIVE`. */
  code: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
  /** One human-readable line (never contains identifiers from the study). */
  reason: z.string().min(1),
  /** Key of the quarantined copy (same bucket, `quarantine/` prefix) when the object was moved aside. */
  quarantineKey: z.string().min(1).optional(),
});

/** The asynchronous scoring request the ingest Lambda queued for a study (exactly one per record). */
export const ScoringInvocationSchema = z.object({
  /** s3:// URI of the scoring request JSON (deterministic: `scoring-requests/<stackId>.json`). */
  requestLocation: z.string().min(1),
  inferenceId: z.string().min(1),
  /** s3:// URI where the endpoint leaves the ScoringResult. */
  outputLocation: z.string().min(1),
  failureLocation: z.string().min(1).optional(),
  invokedAt: isoTimestamp,
});
export type ScoringInvocation = z.infer<typeof ScoringInvocationSchema>;

/**
 * A delivery's exclusive right to invoke scoring for a record, until `expiresAt` (a lease longer than
 * the Lambda timeout, so a live holder is never overtaken; a crashed holder's lease lapses).
 */
export const InvokeClaimSchema = z.object({
  token: z.string().min(1),
  expiresAt: isoTimestamp,
});
export type InvokeClaim = z.infer<typeof InvokeClaimSchema>;

/**
 * The last transient failure while processing a record (kept until the step succeeds); on a `failed`
 * study, the failure that ended it (on ingest's last delivery the message says so).
 */
export const LastErrorSchema = z.object({
  /** Error name, e.g. `ThrottlingException`, `ScoringResponseError`. */
  code: z.string().min(1),
  /** One line; never contains object keys or other identifiers. */
  message: z.string(),
  at: isoTimestamp,
});
export type LastError = z.infer<typeof LastErrorSchema>;

/** The accepted mask of a completion (contracts/masks.ts: layout, labels, grid). */
export const CompletedMaskSchema = z.object({
  /** The normalised mask, `labels/<stackId>/<uploadId>.nii.gz` in the studies bucket. */
  key: z.string().min(1),
  /** The upload it was made from (`label-uploads/…`); absent for a "no hemorrhage" finish, whose mask the API wrote. */
  uploadKey: z.string().min(1).optional(),
  /** Voxels labeled hemorrhage (value > 0); 0 for a negative stack. */
  labeledVoxels: z.number().int().nonnegative(),
  /** Label values present, ascending. */
  values: z.array(z.number().int().nonnegative()),
  /** The upload stored the voxels in another axis order or direction (a desktop tool's export, most likely). */
  reoriented: z.boolean(),
});
export type CompletedMask = z.infer<typeof CompletedMaskSchema>;

export const CompletionSchema = z.object({
  activeSeconds: z.number().finite().positive(),
  annotator: z.string().min(1),
  /**
   * `page`: labeled in the worklist page, which measured the time; `external`: a mask made in a desktop
   * tool and dropped on the stack — the page did not see the work, so the refit leaves it out.
   * Absent on completions recorded before masks were validated (counted as `page`).
   */
  source: z.enum(["page", "external"]).optional(),
  /** The annotator finished with "no hemorrhage" (the mask is all background). */
  noHemorrhage: z.boolean().optional(),
  /** The page viewer's counts: strokes, other edits, and whether the mask started from the model's suggestion (it changes the time). */
  work: z
    .object({ strokes: z.number().int().nonnegative(), edits: z.number().int().nonnegative(), startedFromSuggestion: z.boolean() })
    .optional(),
  mask: CompletedMaskSchema.optional(),
  /** Completions recorded before masks were validated named an unchecked location instead. */
  labelLocation: z.string().min(1).optional(),
  completedAt: isoTimestamp,
});
export type Completion = z.infer<typeof CompletionSchema>;

export const StackRecordSchema = z.object({
  stackId: z.string().min(1),
  /**
   * `study`: one uploaded object as ingested (its series become stacks when scoring returns);
   * `stack`: one scored axial series. Absent means `stack` (records written before the field existed).
   */
  kind: z.enum(["study", "stack"]).optional(),
  status: StackStatusSchema,
  source: StackSourceSchema,
  receivedAt: isoTimestamp,
  updatedAt: isoTimestamp,
  scores: ScoresSchema.optional(),
  prediction: PredictionSchema.optional(),
  rejection: RejectionSchema.optional(),
  /** ISO-week round id that selected this stack, e.g. `select-2026-W48`. */
  selectedBy: z.string().min(1).optional(),
  /**
   * The annotator (lower-case e-mail) this stack was shared out to by the notify Lambda; set once,
   * while the stack is `selected` by that round (domain/assignment.ts). Only they may complete it.
   */
  assignedTo: z.string().min(1).optional(),
  completion: CompletionSchema.optional(),
  /** Set once by the ingest Lambda when the asynchronous scoring request was accepted. */
  scoring: ScoringInvocationSchema.optional(),
  /** Present only while a delivery holds the right to invoke scoring (see InvokeClaimSchema). */
  invokeClaim: InvokeClaimSchema.optional(),
  lastError: LastErrorSchema.optional(),
  /** On a scored `study` record: the stack records its series became (`<studyId>-s<index>`). */
  stackIds: z.array(z.string().min(1)).optional(),
  /** On a stack: sha256 of its decoded voxels (contracts/scoring.ts contentSha256), claimed once per table. */
  contentSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** On a `duplicate` stack: the stack that was recorded first with the same voxels (the one that can be selected). */
  duplicateOf: z.string().min(1).optional(),
  /** On a stack: its canonical grid as the container reported it, which every mask must lie on (contracts/masks.ts). */
  geometry: StackGeometrySchema.optional(),
});
export type StackRecord = z.infer<typeof StackRecordSchema>;

/**
 * The ensemble whose scores rounds select on (one record per table). The first scoring result claims it
 * (`first-score`); a promotion replaces it, conditionally on the sequence it read (`promotion`). Stacks
 * scored by another model wait in the pool until they are scored again by this one.
 */
export const ModelInServiceSchema = z.object({
  /** The container's `modelVersion` (architecture, width, size and weights digest). */
  modelVersion: z.string().min(1),
  /** 1 for the first model, +1 per promotion. */
  sequence: z.number().int().positive(),
  since: isoTimestamp,
  source: z.enum(["first-score", "promotion"]),
  /** Its weights (`s3://…/model.tar.gz`): the warm start of the next training job. Absent for the first model (the stack's `scoring.modelArtifact`). */
  modelData: z
    .string()
    .regex(/^s3:\/\/[^/]+\/.+$/)
    .optional(),
  /** Its package in the model registry, for a promoted model. */
  modelPackageArn: z.string().min(1).optional(),
  /** The training job that made it, for a promoted model. */
  trainingJob: z.string().min(1).optional(),
});
export type ModelInService = z.infer<typeof ModelInServiceSchema>;

export const ROUND_STATUSES = ["selecting", "completed", "failed"] as const;
export const RoundStatusSchema = z.enum(ROUND_STATUSES);
export type RoundStatus = z.infer<typeof RoundStatusSchema>;

/** One annotator's share of a round (stack ids sorted; `predictedSeconds` = their ΣT). */
export const AnnotatorShareSchema = z.object({
  annotator: z.string().min(1),
  stackIds: z.array(z.string().min(1)),
  predictedSeconds: finiteNonNegative,
});
export type AnnotatorShare = z.infer<typeof AnnotatorShareSchema>;

/** The round's stacks shared among the annotators (domain/assignment.ts); annotators sorted. */
export const RoundAssignmentSchema = z.object({
  annotators: z.array(AnnotatorShareSchema).min(1),
  assignedAt: isoTimestamp,
});
export type RoundAssignment = z.infer<typeof RoundAssignmentSchema>;

export const SelectionRoundSchema = z.object({
  /** `select-<ISO week>`, e.g. `select-2026-W48`: one round per week, ever. */
  roundId: z.string().regex(/^select-\d{4}-W\d{2}$/),
  strategy: z.enum(["knapsack", "uniform", "random"]),
  budgetSeconds: finiteNonNegative,
  resolutionSeconds: z.number().finite().positive(),
  poolSize: z.number().int().nonnegative(),
  selected: z.array(z.string().min(1)),
  totalUncertainty: finiteNonNegative,
  totalPredictedSeconds: finiteNonNegative,
  optimal: z.boolean(),
  timeModelVersion: z.number().int().nonnegative(),
  createdAt: isoTimestamp,
  /**
   * `selecting`: the round is claimed and `selected` holds its plan while stacks are being marked (a
   * re-run in the same week finishes it); `completed`: `selected` and the totals are final;
   * `failed`: the workflow failed before the round completed; every stack it had marked was put back
   * in the pool (`selected` is the abandoned plan, none of it selected). A later run in the same week
   * re-claims a failed round and selects afresh.
   */
  status: RoundStatusSchema,
  /**
   * The workflow error that failed the round (or, on a `completed` round, a later state such as
   * notify that failed): `<Error>: <message>`, one line, never object keys.
   */
  error: z.string().optional(),
  failedAt: isoTimestamp.optional(),
  /** On a `failed` round: how many stacks the failure path put back in the pool. */
  restoredToPool: z.number().int().nonnegative().optional(),
  /**
   * Interval of the round's total labeling seconds at `level` (joint posterior predictive draws of the
   * time-model version that predicted its stacks, domain/labeling-time-model.ts predictTotalSeconds).
   */
  predictedInterval: z.object({ lowSeconds: finiteNonNegative, highSeconds: finiteNonNegative, level: z.number().gt(0).lt(1) }).optional(),
  /** The model in service when the round was planned: every stack of the pool was scored by it. */
  modelVersion: z.string().min(1).optional(),
  /** Pending stacks left out because another model scored them (they wait to be scored again). */
  waitingForRescore: z.number().int().nonnegative().optional(),
  /** How the round's stacks are shared among the annotators; written once by the notify Lambda. */
  assignment: RoundAssignmentSchema.optional(),
});
export type SelectionRound = z.infer<typeof SelectionRoundSchema>;

/**
 * One annotator's worklist e-mail for one round (item `ROUND#<roundId>` / `NOTIFY#<annotator>`),
 * claimed before sending so that each annotator gets at most one e-mail per round:
 * `sending` — claimed by the run holding `token`, SendEmail not yet confirmed; `sent` — SES accepted it.
 * A run that fails to send deletes its own `sending` claim (the retry sends); a run that crashed
 * between claim and send leaves `sending` for good: that annotator gets no e-mail this round (the
 * worklist page still shows their stacks) — at most once, never twice.
 */
export const NotificationMarkSchema = z.object({
  roundId: z.string().min(1),
  annotator: z.string().min(1),
  status: z.enum(["sending", "sent"]),
  token: z.string().min(1),
  claimedAt: isoTimestamp,
  sentAt: isoTimestamp.optional(),
  /** SES MessageId of the sent e-mail. */
  messageId: z.string().min(1).optional(),
});
export type NotificationMark = z.infer<typeof NotificationMarkSchema>;

const finite = z.number().finite();
const vec3 = z.tuple([finite, finite, finite]);

/** The labeling-time prior (domain/labeling-time-model.ts TimePrior); also the institution config's `timeModel.prior`. */
export const TimePriorSchema = z
  .object({
    alpha: finiteNonNegative,
    beta: finiteNonNegative,
    gamma: finite,
    residualSd: z.number().finite().positive(),
    /** ≥ 0.1 (domain/labeling-time-model.ts MIN_PRIOR_STRENGTH). */
    strength: z.number().finite().min(0.1),
  })
  .strict();

/** A labeling-time model version (domain/labeling-time-model.ts TimeModel) as stored. */
export const TimeModelVersionSchema = z.object({
  /** 0 is the prior; fitted versions count up from 1. */
  version: z.number().int().nonnegative(),
  createdAt: isoTimestamp,
  source: z.enum(["fit", "prior"]),
  alpha: finiteNonNegative,
  beta: finiteNonNegative,
  gamma: finite,
  n: z.number().int().nonnegative(),
  r2: z.number().finite().max(1).nullable(),
  residualSd: finiteNonNegative,
  posterior: z.object({
    mean: vec3,
    covariance: z.tuple([vec3, vec3, vec3]),
    shape: z.number().finite().gt(1),
    scale: z.number().finite().positive(),
  }),
  atBound: z.array(z.enum(["alpha", "beta"])),
  annotatorSpeeds: z.array(
    z.object({ annotator: z.string().min(1), factor: z.number().finite().positive(), completions: z.number().int().positive() }),
  ),
  /** Completions left out of this version: position, stack id, reason, and an outlier's studentized residual. */
  excluded: z.array(
    z.object({
      index: z.number().int().nonnegative(),
      id: z.string().min(1).optional(),
      reason: z.enum(["out-of-range", "outlier"]),
      studentizedResidual: z.number().optional(),
    }),
  ),
  prior: TimePriorSchema,
});
export type TimeModelVersion = z.infer<typeof TimeModelVersionSchema>;
