/**
 * The annotators' API (API Gateway REST API, Cognito user-pool authorizer: only the institution's
 * annotators, no anonymous calls). The complete-handler serves it; the local runner adapts local HTTP
 * requests into the same API Gateway proxy events.
 *
 *   POST /stacks/{stackId}/mask-uploads
 *                       body MaskUploadRequest → 200 MaskUploadResponse: a presigned PUT URL for one
 *                       mask upload of the caller's selected stack (key, content type and exact length
 *                       signed; valid MASK_UPLOAD_URL_SECONDS) · 403 not assigned · 404 · 409 not selected
 *   POST /completions   body CompletionRequest  → 200 CompletionResponse (also for an identical replay)
 *                       400 bad body · 403 stack not assigned to the caller · 404 unknown stack
 *                       409 stack not selected, or already completed with different values
 *                       422 MASK_REFUSED: the uploaded mask failed validation (`maskCode`, and the
 *                       reason in `message`); nothing was completed, the refusal is recorded, and the
 *                       annotator can upload a corrected mask and finish again
 *   GET  /worklist      → 200 the caller's stacks in the latest round
 *   GET  /overlays/{stackId}
 *                       → 200 OverlayResponse: key-frame thumbnails (PNG data URLs) of the mean heatmap
 *                       and JS divergence of one of the caller's stacks · 403 not assigned to the caller ·
 *                       404 unknown stack or no overlays stored for it
 *
 * The annotator is the authenticated identity: the token's immutable `sub` claim, looked up in the
 * annotator directory (AnnotatorDirectorySchema: each configured annotator's `sub`, read from Cognito when
 * the user was created, with the configured e-mail). The token's `email` claim is never read. A `sub` not
 * in the directory is refused (403 NOT_ANNOTATOR); a body `annotator` that differs is refused (403).
 * Errors are JSON `{ code, message }`.
 */
import { z } from "zod";
import { MAX_MASK_BYTES, MaskRefusalCodeSchema, StackGeometrySchema } from "./masks.js";
import { CompletionSchema } from "./records.js";

export const COMPLETION_API_PATHS = {
  completions: "/completions",
  worklist: "/worklist",
  overlays: "/overlays/{stackId}",
  maskUploads: "/stacks/{stackId}/mask-uploads",
  viewer: "/stacks/{stackId}/viewer",
} as const;

/**
 * GET /stacks/{stackId}/viewer: what the page's viewer loads for one of the caller's stacks — short-lived
 * presigned GETs of the volumes the scoring container wrote on the stack's grid (CT in HU, mean heatmap
 * and JS divergence as uint8; model-container ichal/viewer_volumes.py) and the grid a mask must match.
 */
export const ViewerResponseSchema = z.object({
  stackId: z.string().min(1),
  geometry: StackGeometrySchema,
  volumes: z.object({ ct: z.url(), heatmap: z.url(), js: z.url() }),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type ViewerResponse = z.infer<typeof ViewerResponseSchema>;

/** Body of POST /stacks/{stackId}/mask-uploads: the mask about to be PUT. */
export const MaskUploadRequestSchema = z
  .object({
    /** Exact size of the object to PUT (the URL signs it). */
    bytes: z.number().int().min(1).max(MAX_MASK_BYTES),
    /** `.nii.gz` (true) or `.nii`. */
    gzip: z.boolean(),
  })
  .strict();
export type MaskUploadRequest = z.infer<typeof MaskUploadRequestSchema>;

/** 200 to POST /stacks/{stackId}/mask-uploads. PUT the mask to `url` with exactly `headers`, then post the completion with `uploadKey`. */
export const MaskUploadResponseSchema = z.object({
  stackId: z.string().min(1),
  uploadKey: z.string().min(1),
  url: z.url(),
  method: z.literal("PUT"),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type MaskUploadResponse = z.infer<typeof MaskUploadResponseSchema>;

export const CompletionRequestSchema = z
  .object({
    stackId: z.string().min(1).max(200),
    /**
     * Seconds the annotator actively spent on the stack (page-measured, whole seconds ≥ 1). The API also
     * refuses more than the institution's `timeModel.maxActiveHours` (default 8 h; at most 24 h).
     */
    activeSeconds: z.number().finite().min(1).max(86_400),
    /** Optional; when present it must equal the authenticated annotator. */
    annotator: z.email().optional(),
    /** The `uploadKey` of a mask PUT for this stack (POST /stacks/{stackId}/mask-uploads). */
    maskUploadKey: z.string().min(1).max(1024).optional(),
    /** Finish a negative stack: no mask upload; the API stores an all-background mask. */
    noHemorrhage: z.literal(true).optional(),
    /** `external`: the mask was made in a desktop tool (the page did not see the work); default `page`. */
    source: z.enum(["page", "external"]).optional(),
    /** What the page's viewer saw: brush strokes and other edits, and whether the mask started from the model's suggestion. */
    work: z
      .object({
        strokes: z.number().int().min(0).max(1_000_000),
        edits: z.number().int().min(0).max(1_000_000),
        startedFromSuggestion: z.boolean(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((r) => (r.maskUploadKey === undefined) !== (r.noHemorrhage === undefined), {
    message: "exactly one of maskUploadKey and noHemorrhage",
    path: ["maskUploadKey"],
  });
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/**
 * Who the annotators are: each configured annotator's Cognito `sub` (immutable, assigned when the user is
 * created; infra/completion-api.ts reads it back at deploy) with the e-mail address the institution config
 * gives them. Stacks are assigned to that address; the API maps a token's `sub` to it.
 */
export const AnnotatorDirectorySchema = z
  .array(z.object({ sub: z.string().min(1).max(128), email: z.email() }).strict())
  .min(1)
  .refine((entries) => new Set(entries.map((e) => e.sub)).size === entries.length, "each sub once")
  .refine((entries) => new Set(entries.map((e) => e.email.toLowerCase())).size === entries.length, "each e-mail once");
export type AnnotatorDirectory = z.infer<typeof AnnotatorDirectorySchema>;

/** sub → the annotator's configured e-mail, lower-cased (the form stacks are assigned to). */
export const annotatorsBySub = (directory: AnnotatorDirectory): ReadonlyMap<string, string> =>
  new Map(directory.map((entry) => [entry.sub, entry.email.toLowerCase()]));

export const ApiErrorCodeSchema = z.enum([
  "BAD_REQUEST",
  "UNAUTHENTICATED",
  "NOT_ANNOTATOR",
  "NOT_ASSIGNED",
  "NOT_FOUND",
  "NOT_SELECTED",
  "CONFLICT",
  "MASK_REFUSED",
  "INTERNAL",
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCodeSchema>;
export const ApiErrorBodySchema = z.object({
  code: ApiErrorCodeSchema,
  message: z.string(),
  /** With MASK_REFUSED: why (contracts/masks.ts MASK_REFUSAL_CODES). */
  maskCode: MaskRefusalCodeSchema.optional(),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBodySchema>;

/** HTTP status of each error code (the handler answers with it and `{ code, message }`). */
export const API_ERROR_STATUS: Record<ApiErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  NOT_ANNOTATOR: 403,
  NOT_ASSIGNED: 403,
  NOT_FOUND: 404,
  NOT_SELECTED: 409,
  CONFLICT: 409,
  MASK_REFUSED: 422,
  INTERNAL: 500,
};

/**
 * The part of an API Gateway REST API proxy event (payload format 1.0) the handler reads. With a
 * Cognito user-pool authorizer the token's claims are at `requestContext.authorizer.claims`.
 */
export const ApiGatewayProxyEventSchema = z
  .object({
    httpMethod: z.string().min(1),
    /** The resource path as configured (`/completions`), independent of the stage. */
    resource: z.string().min(1),
    path: z.string(),
    headers: z.record(z.string(), z.string().optional()).nullish(),
    /** Values of the resource's `{…}` segments (`stackId` for /overlays/{stackId}). */
    pathParameters: z.record(z.string(), z.string().optional()).nullish(),
    body: z.string().nullable(),
    isBase64Encoded: z.boolean().nullish(),
    requestContext: z
      .object({
        requestId: z.string().optional(),
        authorizer: z
          .object({ claims: z.record(z.string(), z.unknown()).nullish() })
          .loose()
          .nullish(),
      })
      .loose(),
  })
  .loose();
export type ApiGatewayProxyEvent = z.infer<typeof ApiGatewayProxyEventSchema>;

export interface ApiGatewayProxyResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** 200 to POST /completions, the same for an identical replay. */
export const CompletionResponseSchema = z.object({
  stackId: z.string().min(1),
  status: z.literal("labeled"),
  completion: CompletionSchema,
});
export type CompletionResponse = z.infer<typeof CompletionResponseSchema>;

/** 200 to GET /worklist: the caller's stacks in the latest round that assigned them any (or none). */
export const WorklistResponseSchema = z.object({
  annotator: z.string(),
  /** null when no round in the look-back window assigned the caller anything. */
  roundId: z.string().nullable(),
  stacks: z.array(
    z.object({
      stackId: z.string().min(1),
      status: z.enum(["selected", "labeled"]),
      predictedSeconds: z.number().nonnegative(),
      stackScore: z.number(),
      stackUncertainty: z.number(),
      completion: CompletionSchema.optional(),
    }),
  ),
  /** The caller's ΣT in that round. */
  predictedSeconds: z.number().nonnegative(),
  /** The round's ΣT and budget Q. */
  roundPredictedSeconds: z.number().nonnegative(),
  budgetSeconds: z.number().nonnegative(),
});
export type WorklistResponse = z.infer<typeof WorklistResponseSchema>;

/**
 * 200 to GET /overlays/{stackId}: the stack's key frames rendered from the scoring container's overlay
 * npz (domain/overlay-thumbnails.ts): highest frame score first picked, shown in frame order. The images
 * are inline `data:image/png;base64,…` URLs, so the page needs no second authenticated request per image.
 */
/**
 * What the scoring container writes beside a stack's overlays (`stack-<i>-thumbnails.json`,
 * model-container/ichal/thumbnails.py): the grid, the thumbnail size and, per key frame, its PNG names.
 */
export const ThumbnailManifestSchema = z.object({
  frames: z.number().int().positive(),
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  thumbnailHeight: z.number().int().positive(),
  thumbnailWidth: z.number().int().positive(),
  keyFrames: z
    .array(
      z.object({
        frame: z.number().int().nonnegative(),
        frameScore: z.number(),
        heatmap: z.string().regex(/^stack-\d+-key-\d+-heatmap\.png$/),
        js: z.string().regex(/^stack-\d+-key-\d+-js\.png$/),
      }),
    )
    .max(10),
});
export type ThumbnailManifest = z.infer<typeof ThumbnailManifestSchema>;

/** GET /overlays/{stackId}: the key-frame thumbnails as short-lived presigned GETs of the container's PNGs. */
export const OverlayResponseSchema = z.object({
  stackId: z.string().min(1),
  /** Frames in the stack and its grid (rows × columns). */
  frames: z.number().int().positive(),
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  thumbnailHeight: z.number().int().positive(),
  thumbnailWidth: z.number().int().positive(),
  keyFrames: z.array(
    z.object({
      /** 0-based frame index in the stack. */
      frame: z.number().int().nonnegative(),
      frameScore: z.number(),
      /** The frame in the brain window with the mean ensemble heatmap over it (PNG, presigned GET). */
      heatmapPng: z.url(),
      /** The frame with the pixelwise JS divergence over it (PNG, presigned GET). */
      jsDivergencePng: z.url(),
    }),
  ),
});
export type OverlayResponse = z.infer<typeof OverlayResponseSchema>;
