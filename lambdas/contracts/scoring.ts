/**
 * The scoring container's wire contract (model-container/ichal/scoring.py, serve/server.py): the
 * request sent to the SageMaker endpoint, the result it answers, and the failure body of a study it
 * refuses. One naming convention: every field name is camelCase, in the request and in the answer (the
 * container converts its snake_case results at its edge, scoring.py wire_form); parse every answer at the edge.
 *
 * Paper symbols (Kuo et al., MICCAI 2018): V = `stackUncertainty` (§3.1, eq. 1), B = `boundaryLength`
 * and M = `components` (§3.2, the labeling-time features), K = `topK`.
 */
import { z } from "zod";
import { StackGeometrySchema } from "./masks.js";

const finiteNonNegative = z.number().finite().nonnegative();
const probability = z.number().min(0).max(1);
const s3Uri = z.string().regex(/^s3:\/\/[^/]+\/.*$/, "an s3://bucket/key URI");
/** Stage → seconds (`preprocess`, `forward`, `features`, `features.*`, `overlays`, `read`, `total`). */
const TimingsSchema = z.record(z.string(), finiteNonNegative);

/** K: how many of the most uncertain patches are averaged into V (paper §3.1); a positive integer. */
export const TopKSchema = z.number().int().positive();

/** Heatmap thresholds τ at which B and M are computed and averaged (paper §3.2): strictly increasing, each in (0, 1). */
export const HeatmapThresholdsSchema = z
  .array(z.number().gt(0).lt(1))
  .min(1)
  .refine((t) => t.every((v, i) => i === 0 || v > (t[i - 1] ?? 0)), "strictly increasing");

/**
 * DICOM private creator values (the `(gggg,00xx)` element naming a vendor's private block, e.g. `GEMS_IDEN_01`)
 * whose private data elements the container's PHI check lets pass: at most 100, each a DICOM LO value
 * (1–64 characters, not blank, no backslash or control character). The container checks the same.
 */
export const PrivateCreatorsSchema = z
  .array(
    z
      .string()
      .min(1)
      .max(64)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      .regex(/^[^\\\x00-\x1f\x7f]+$/, "no backslash or control character")
      .refine((value) => value.trim() !== "", "not blank"),
  )
  .max(100);

/** What the endpoint scores: a study by S3 location, never voxels in the request. */
export const ScoringRequestSchema = z.object({
  /** The study: a DICOM zip, NIfTI, npz object, or a DICOM prefix (`s3://bucket/key`). */
  input: s3Uri,
  /** The S3 object version to read (the idempotency key of a stack includes it). */
  versionId: z.string().min(1).optional(),
  /** Where the container writes `stack-<index>.npz` overlays (mean heatmap, JS divergence) for annotators. */
  overlayPrefix: s3Uri.optional(),
  /** K for this request (the institution config's `topK`); absent: the model manifest's `top_k`. */
  topK: TopKSchema.optional(),
  /** τ for this request (the institution config's `thresholds`); absent: the model manifest's `thresholds`. */
  thresholds: HeatmapThresholdsSchema.optional(),
  /** Private creators whose private elements pass the PHI check (the institution config's `deidentification.allowedPrivateCreators`); absent: none. */
  allowedPrivateCreators: PrivateCreatorsSchema.optional(),
});
export type ScoringRequest = z.infer<typeof ScoringRequestSchema>;

/** B_τ and M_τ at one heatmap threshold τ. */
export const ThresholdFeaturesSchema = z.object({
  threshold: probability,
  /** B_τ: boundary length in pixels, summed over frames. */
  boundaryLength: finiteNonNegative,
  /** M_τ: connected components, summed over frames. */
  components: z.number().int().nonnegative(),
});
export type ThresholdFeatures = z.infer<typeof ThresholdFeaturesSchema>;

/** One detected region of the mean heatmap (inclusive [first, last] bounds on the model grid). */
export const RegionSchema = z.object({
  id: z.number().int().positive(),
  score: probability,
  meanProbability: probability,
  voxels: z.number().int().positive(),
  bbox: z.object({
    frames: z.tuple([z.number().int(), z.number().int()]),
    rows: z.tuple([z.number().int(), z.number().int()]),
    cols: z.tuple([z.number().int(), z.number().int()]),
  }),
  frameList: z.array(z.number().int().nonnegative()),
});
export type Region = z.infer<typeof RegionSchema>;

/** One axial series of the study, scored. */
export const ScoredStackSchema = z.object({
  /** Position of the stack in the study (a study may hold several series). */
  index: z.number().int().nonnegative(),
  seriesUid: z.string().min(1),
  /**
   * sha256 (hex) of the stack's shape and decoded HU voxels (model-container ichal/io/stack.py content_sha256):
   * the same series re-packed, re-exported with new UIDs or converted between formats keeps it. The records'
   * duplicate key (domain/record-score.ts); absent from results of containers that predate it.
   */
  contentSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits")
    .optional(),
  /** The stack's canonical grid, which annotation masks must lie on (contracts/masks.ts); absent from older containers. */
  geometry: StackGeometrySchema.optional(),
  frames: z.number().int().positive(),
  /** V: mean Jensen–Shannon divergence of the K most uncertain patches, in [0, ln 2] (paper §3.1). */
  stackUncertainty: finiteNonNegative,
  /** K actually used (fewer than configured when the stack has fewer patches). */
  topK: z.number().int().positive(),
  /** B: mean over thresholds of the boundary length in pixels (paper §3.2). */
  boundaryLength: finiteNonNegative,
  /** M: mean over thresholds of the connected-component count (paper §3.2); not an integer. */
  components: finiteNonNegative,
  perThreshold: z.array(ThresholdFeaturesSchema).min(1),
  /** Stack-level hemorrhage score: the highest frame score. */
  stackScore: probability,
  frameScores: z.array(probability),
  /** Regions found at the detection threshold; `regions` lists at most the first 50. */
  nRegions: z.number().int().nonnegative(),
  regions: z.array(RegionSchema),
  /** (frame, top, left) of the K most uncertain patches. */
  topPatches: z.array(z.tuple([z.number().int(), z.number().int(), z.number().int()])).optional(),
  /** Where the overlays went; present only when the request named an `overlayPrefix`. */
  overlays: s3Uri.optional(),
  timings: TimingsSchema,
});
export type ScoredStack = z.infer<typeof ScoredStackSchema>;

/** The endpoint's answer to a scoring request (synchronous body, or the asynchronous `.out` object). */
export const ScoringResultSchema = z.object({
  /** Architecture, width, ensemble size and weights digest, e.g. `drn_d_38-w1.0-x4-<sha>`. */
  modelVersion: z.string().min(1),
  input: z.string().min(1),
  versionId: z.string().min(1).nullable(),
  stacks: z.array(ScoredStackSchema).min(1),
  timings: TimingsSchema,
});
export type ScoringResult = z.infer<typeof ScoringResultSchema>;

/**
 * A refused request: the HTTP 4xx body `{code, reason}`, or the asynchronous `.error` object, which
 * adds the HTTP `status` the synchronous call would have had.
 */
export const ScoringFailureSchema = z.object({
  /** Machine-readable, e.g. `PHI_PRESENT`, `WRONG_MODALITY`, `CORRUPT_ARCHIVE`, `INPUT_NOT_FOUND`. */
  code: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
  /** One human-readable line; never carries values read from the study (only attribute keywords). */
  reason: z.string().min(1),
  status: z.number().int().min(400).max(599).optional(),
});
export type ScoringFailure = z.infer<typeof ScoringFailureSchema>;
