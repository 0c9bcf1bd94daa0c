/**
 * An annotator reports a finished stack (POST /completions). The measured active seconds
 * become a labeling-time observation for the refit, so a completion is written exactly once:
 *
 *   stack                                   caller                     outcome
 *   missing (or a study record)             —                          NOT_FOUND
 *   selected, assignedTo = caller, mask refused (domain/masks.ts)      MASK_REFUSED, refusal recorded, nothing else
 *   selected, assignedTo = caller           —                          completed: mask stored, selected → labeled (conditional)
 *   selected / labeled, assigned elsewhere  —                          NOT_ASSIGNED, nothing written
 *   labeled, same annotator/seconds/mask    —                          replay: the stored completion, nothing written
 *   labeled by the caller, other values     —                          CONFLICT
 *   any other status (pending, …)           —                          NOT_SELECTED
 *
 * The write is `selected → labeled` conditional on `assignedTo` = caller; of concurrent identical
 * posts exactly one wins and the others, re-reading the stack, answer as an identical replay.
 * The caller is the authenticated identity, compared lower-cased (domain/assignment.ts).
 */
import type {
  ApiErrorCode,
  CompletionRequest,
  CompletionResponse,
  OverlayResponse,
  ThumbnailManifest,
  ViewerResponse,
  WorklistResponse,
} from "../contracts/completion-api.js";
import { ThumbnailManifestSchema } from "../contracts/completion-api.js";
import type { MaskRefusalCode } from "../contracts/masks.js";
import type { Completion, SelectionRound, StackRecord } from "../contracts/records.js";
import { normalizeAnnotator, shareOf } from "./assignment.js";
import { OVERLAYS_PREFIX } from "./ingest.js";
import { isoWeekOf, roundIdOfWeek, shiftIsoWeek } from "./iso-week.js";
import { DEFAULT_MAX_ACTIVE_SECONDS, MIN_ACTIVE_SECONDS } from "./labeling-time-model.js";
import { acceptMask, type MaskObjects } from "./masks.js";
import type { RecordStore } from "./record-store.js";

export type CompletionOutcome =
  | { readonly kind: "completed" | "replayed"; readonly response: CompletionResponse }
  | { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string; readonly maskCode?: MaskRefusalCode };

export interface CompletionDeps {
  readonly records: RecordStore;
  /** The studies bucket's mask objects: uploads read, accepted masks stored. */
  readonly masks: MaskObjects;
  /** The current time (ISO): `completedAt`. */
  readonly clock: () => string;
  /** Longest credible active time in seconds (default 8 h): a longer one is refused, never stored. */
  readonly maxActiveSeconds?: number;
}

/** Completes `request.stackId` for `caller`; see the module comment. */
export async function completeStack(request: CompletionRequest, caller: string, deps: CompletionDeps): Promise<CompletionOutcome> {
  const annotator = normalizeAnnotator(caller);
  if (request.annotator !== undefined && normalizeAnnotator(request.annotator) !== annotator) {
    return refused("NOT_ASSIGNED", "annotator in the body is not the signed-in annotator");
  }
  // The refit fits only times in this range (domain/labeling-time-model.ts); refuse the rest here.
  const maxActiveSeconds = deps.maxActiveSeconds ?? DEFAULT_MAX_ACTIVE_SECONDS;
  if (!(request.activeSeconds >= MIN_ACTIVE_SECONDS && request.activeSeconds <= maxActiveSeconds)) {
    return refused("BAD_REQUEST", `activeSeconds: must be between ${MIN_ACTIVE_SECONDS} and ${maxActiveSeconds} seconds`);
  }
  const stack = await deps.records.getStack(request.stackId);
  if (!stack || stack.kind === "study") return refused("NOT_FOUND", `no stack ${JSON.stringify(request.stackId)}`);
  if (stack.status === "selected" && stack.assignedTo === annotator) {
    const acceptance = await acceptMask(stack, request, annotator, deps);
    if (acceptance.kind === "refused") return acceptance;
    if (acceptance.kind === "maskRefused") {
      return { kind: "refused", code: "MASK_REFUSED", message: acceptance.message, maskCode: acceptance.maskCode };
    }
    const completion: Completion = {
      activeSeconds: request.activeSeconds,
      annotator,
      source: request.source ?? "page",
      ...(request.noHemorrhage ? { noHemorrhage: true } : {}),
      ...(request.work ? { work: request.work } : {}),
      mask: acceptance.mask,
      completedAt: new Date(Date.parse(deps.clock())).toISOString(),
    };
    if (await deps.records.completeStack(stack.stackId, completion, completion.completedAt)) {
      return { kind: "completed", response: { stackId: stack.stackId, status: "labeled", completion } };
    }
    // Another request changed the stack first (a concurrent identical post, most likely): re-classify.
    const current = await deps.records.getStack(request.stackId);
    if (!current) return refused("NOT_FOUND", `no stack ${JSON.stringify(request.stackId)}`);
    return classify(current, request, annotator);
  }
  return classify(stack, request, annotator);
}

function classify(stack: StackRecord, request: CompletionRequest, annotator: string): CompletionOutcome {
  if ((stack.status === "selected" || stack.status === "labeled") && stack.assignedTo !== annotator) {
    return refused("NOT_ASSIGNED", `stack ${JSON.stringify(stack.stackId)} is not assigned to you`);
  }
  if (stack.status === "labeled" && stack.completion) {
    const stored = stack.completion;
    if (
      stored.annotator === annotator &&
      stored.activeSeconds === request.activeSeconds &&
      stored.mask?.uploadKey === request.maskUploadKey &&
      (stored.noHemorrhage ?? false) === (request.noHemorrhage ?? false)
    ) {
      return { kind: "replayed", response: { stackId: stack.stackId, status: "labeled", completion: stored } };
    }
    return refused("CONFLICT", `stack ${JSON.stringify(stack.stackId)} was already completed with different values`);
  }
  return refused("NOT_SELECTED", `stack ${JSON.stringify(stack.stackId)} is not selected for labeling`);
}

function refused(code: ApiErrorCode, message: string): { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string } {
  return { kind: "refused", code, message };
}

/** How many weeks back GET /worklist looks for a round that assigned the caller stacks. */
export const WORKLIST_LOOKBACK_WEEKS = 12;

/**
 * The caller's stacks (selected and labeled) in the latest round, within WORKLIST_LOOKBACK_WEEKS of
 * `now`, whose stored assignment gives them any; with their round's totals against the budget. Rounds
 * are named after ISO weeks in the schedule's time zone `timeZone`: the look-back steps back whole ISO
 * weeks from `now`'s week there (not 7 × 24 h, which skips a week across a DST change).
 */
export async function worklistOf(caller: string, now: string, records: RecordStore, timeZone: string): Promise<WorklistResponse> {
  const annotator = normalizeAnnotator(caller);
  const current = isoWeekOf(now, timeZone);
  for (let week = 0; week < WORKLIST_LOOKBACK_WEEKS; week++) {
    const round: SelectionRound | undefined = await records.getRound(roundIdOfWeek(shiftIsoWeek(current, -week)));
    const share = round?.assignment ? shareOf(round.assignment, annotator) : undefined;
    if (!round || !share || share.stackIds.length === 0) continue;
    const stacks: WorklistResponse["stacks"] = [];
    for (const stackId of share.stackIds) {
      const record = await records.getStack(stackId);
      if (!record || record.assignedTo !== annotator || (record.status !== "selected" && record.status !== "labeled")) continue;
      stacks.push({
        stackId,
        status: record.status,
        predictedSeconds: record.prediction?.predictedSeconds ?? 0,
        stackScore: record.scores?.stackScore ?? 0,
        stackUncertainty: record.scores?.stackUncertainty ?? 0,
        ...(record.completion ? { completion: record.completion } : {}),
      });
    }
    return {
      annotator,
      roundId: round.roundId,
      stacks,
      predictedSeconds: stacks.reduce((total, s) => total + s.predictedSeconds, 0),
      roundPredictedSeconds: round.totalPredictedSeconds,
      budgetSeconds: round.budgetSeconds,
    };
  }
  return { annotator, roundId: null, stacks: [], predictedSeconds: 0, roundPredictedSeconds: 0, budgetSeconds: 0 };
}

/** Port: the studies bucket's overlay objects (the S3 adapter implements it). */
export interface OverlayObjects {
  /** The object's bytes (body consumed), or undefined when it does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
}

/**
 * Key of a stack's overlay npz: the scoring request of study `<studyId>` names the prefix
 * `overlays/<studyId>/` (domain/ingest.ts) and the container writes `stack-<index>.npz` there for the
 * stack record `<studyId>-s<index>` (domain/record-score.ts stackIdOf). Undefined for any other id.
 */
export function overlayKeyOf(stackId: string): string | undefined {
  const match = /^(.+)-s(\d+)$/.exec(stackId);
  return match ? `${OVERLAYS_PREFIX}${match[1]}/stack-${Number(match[2])}.npz` : undefined;
}

/** Presigns GETs of objects in the studies bucket (the S3 adapter implements it). */
export interface ViewerObjects {
  /** Whether the object exists. */
  exists(key: string): Promise<boolean>;
  presignGet(key: string, expiresInSeconds: number): Promise<string>;
}

/** How long the viewer's presigned GETs are valid. */
export const VIEWER_URL_SECONDS = 900;

/** Keys of a stack's viewer volumes (beside its overlay npz; model-container ichal/viewer_volumes.py). */
export function viewerKeysOf(stackId: string): { ct: string; heatmap: string; js: string } | undefined {
  const npz = overlayKeyOf(stackId);
  if (!npz) return undefined;
  const base = npz.replace(/\.npz$/, "");
  return { ct: `${base}-ct.nii.gz`, heatmap: `${base}-heatmap.nii.gz`, js: `${base}-js.nii.gz` };
}

/**
 * GET /stacks/{stackId}/viewer: presigned GETs of the stack's CT and overlay volumes, only for a stack
 * assigned to the caller (selected or labeled), and the grid a mask must match; NOT_FOUND when the stack,
 * its grid or its volumes (scored by a container that did not write them) do not exist.
 */
export async function viewerOf(
  stackId: string,
  caller: string,
  deps: { readonly records: RecordStore; readonly viewer: ViewerObjects; readonly clock: () => string },
): Promise<
  | { readonly kind: "viewer"; readonly response: ViewerResponse }
  | { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string }
> {
  const annotator = normalizeAnnotator(caller);
  const stack = await deps.records.getStack(stackId);
  if (!stack || stack.kind === "study") return refused("NOT_FOUND", `no stack ${JSON.stringify(stackId)}`);
  if ((stack.status !== "selected" && stack.status !== "labeled") || stack.assignedTo !== annotator) {
    return refused("NOT_ASSIGNED", `stack ${JSON.stringify(stackId)} is not assigned to you`);
  }
  const keys = viewerKeysOf(stackId);
  if (!keys || !stack.geometry || !(await deps.viewer.exists(keys.ct))) {
    return refused("NOT_FOUND", `no viewer volumes stored for stack ${JSON.stringify(stackId)} (scored before the container wrote them)`);
  }
  const [ct, heatmap, js] = await Promise.all(
    [keys.ct, keys.heatmap, keys.js].map((key) => deps.viewer.presignGet(key, VIEWER_URL_SECONDS)),
  );
  return {
    kind: "viewer",
    response: {
      stackId,
      geometry: { shape: stack.geometry.shape, affine: stack.geometry.affine },
      volumes: { ct: ct as string, heatmap: heatmap as string, js: js as string },
      expiresAt: new Date(Date.parse(deps.clock()) + VIEWER_URL_SECONDS * 1000).toISOString(),
    },
  };
}

export type OverlayOutcome =
  | { readonly kind: "overlays"; readonly response: OverlayResponse }
  | { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string };

/** Key of a stack's thumbnail manifest (beside its overlay npz; model-container ichal/thumbnails.py). */
export function thumbnailsKeyOf(stackId: string): string | undefined {
  return overlayKeyOf(stackId)?.replace(/\.npz$/, "-thumbnails.json");
}

/** The stack's thumbnail manifest was not what the container writes (a fault, answered 500). */
export class ThumbnailManifestError extends Error {
  constructor(key: string, cause: unknown) {
    super(`the thumbnail manifest ${key} does not match its schema`, { cause });
    this.name = "ThumbnailManifestError";
  }
}

/**
 * The key-frame thumbnails of `stackId` for `caller` (GET /overlays/{stackId}): only for a stack assigned
 * to the caller (selected or labeled), like the completion itself; the PNGs the scoring container
 * rendered, as presigned GETs; NOT_FOUND when the stack or its thumbnails do not exist.
 */
export async function overlaysOf(
  stackId: string,
  caller: string,
  deps: { readonly records: RecordStore; readonly overlays: OverlayObjects | undefined; readonly viewer: ViewerObjects | undefined },
): Promise<OverlayOutcome> {
  const annotator = normalizeAnnotator(caller);
  const stack = await deps.records.getStack(stackId);
  if (!stack || stack.kind === "study") return refused("NOT_FOUND", `no stack ${JSON.stringify(stackId)}`);
  if ((stack.status !== "selected" && stack.status !== "labeled") || stack.assignedTo !== annotator) {
    return refused("NOT_ASSIGNED", `stack ${JSON.stringify(stackId)} is not assigned to you`);
  }
  const key = thumbnailsKeyOf(stackId);
  const bytes = key && deps.overlays && deps.viewer ? await deps.overlays.get(key) : undefined;
  if (!key || !bytes || !deps.viewer) return refused("NOT_FOUND", `no thumbnails stored for stack ${JSON.stringify(stackId)}`);
  let manifest: ThumbnailManifest;
  try {
    manifest = ThumbnailManifestSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (error) {
    throw new ThumbnailManifestError(key, error);
  }
  const folder = key.slice(0, key.lastIndexOf("/") + 1);
  const viewer = deps.viewer;
  const keyFrames = await Promise.all(
    manifest.keyFrames.map(async (k) => ({
      frame: k.frame,
      frameScore: k.frameScore,
      heatmapPng: await viewer.presignGet(folder + k.heatmap, VIEWER_URL_SECONDS),
      jsDivergencePng: await viewer.presignGet(folder + k.js, VIEWER_URL_SECONDS),
    })),
  );
  const { frames, height, width, thumbnailHeight, thumbnailWidth } = manifest;
  return { kind: "overlays", response: { stackId, frames, height, width, thumbnailHeight, thumbnailWidth, keyFrames } };
}
