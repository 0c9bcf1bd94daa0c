/**
 * Masks in and out of the studies bucket (contracts/masks.ts has the layout and the rules):
 *
 *   POST /stacks/{stackId}/mask-uploads → startMaskUpload: a presigned PUT for one upload key of a
 *     stack that is selected and assigned to the caller
 *   POST /completions → acceptMask (before the completion is written): the upload is read (bounded),
 *     checked against the stack's grid (domain/nifti-mask.ts) and, if good, stored normalised under
 *     labels/; a refusal is recorded beside the stack (RecordStore.recordMaskRefusal) and nothing else
 *     changes, so the annotator can fix the mask and finish again.
 */
import type { ApiErrorCode, CompletionRequest, MaskUploadRequest, MaskUploadResponse } from "../contracts/completion-api.js";
import {
  MASK_UPLOAD_URL_SECONDS,
  MAX_MASK_BYTES,
  type MaskRefusalCode,
  maskUploadKey,
  parseMaskUploadKey,
  storedMaskKey,
} from "../contracts/masks.js";
import type { CompletedMask, StackRecord } from "../contracts/records.js";
import { normalizeAnnotator } from "./assignment.js";
import { checkMask, encodeMask } from "./nifti-mask.js";
import type { RecordStore } from "./record-store.js";

/** Port: mask objects in the studies bucket (adapters/s3-mask-objects.ts). */
export interface MaskObjects {
  /** A URL that lets its holder PUT exactly `bytes` bytes of `contentType` at `key` until it expires. */
  presignPut(key: string, contentType: string, bytes: number, expiresInSeconds: number): Promise<string>;
  /** The object's bytes; `missing` when there is none; `tooLarge` (not downloaded) beyond `maxBytes`. */
  get(
    key: string,
    maxBytes: number,
  ): Promise<{ kind: "object"; body: Uint8Array } | { kind: "missing" } | { kind: "tooLarge"; bytes: number }>;
  put(key: string, body: Uint8Array): Promise<void>;
}

export interface MaskDeps {
  readonly records: RecordStore;
  readonly masks: MaskObjects;
  readonly clock: () => string;
  /** A fresh UUID per upload. */
  readonly newId: () => string;
}

type Refused = { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string };
const refused = (code: ApiErrorCode, message: string): Refused => ({ kind: "refused", code, message });

/** The presigned PUT of one mask upload for `stackId`, if the stack is selected and assigned to `caller`. */
export async function startMaskUpload(
  stackId: string,
  caller: string,
  request: MaskUploadRequest,
  deps: MaskDeps,
): Promise<{ readonly kind: "upload"; readonly response: MaskUploadResponse } | Refused> {
  const annotator = normalizeAnnotator(caller);
  const stack = await deps.records.getStack(stackId);
  if (!stack || stack.kind === "study") return refused("NOT_FOUND", `no stack ${JSON.stringify(stackId)}`);
  if ((stack.status !== "selected" && stack.status !== "labeled") || stack.assignedTo !== annotator) {
    return refused("NOT_ASSIGNED", `stack ${JSON.stringify(stackId)} is not assigned to you`);
  }
  if (stack.status !== "selected") return refused("NOT_SELECTED", `stack ${JSON.stringify(stackId)} is already completed`);
  const uploadKey = maskUploadKey(stackId, deps.newId(), request.gzip);
  const contentType = request.gzip ? "application/gzip" : "application/octet-stream";
  const url = await deps.masks.presignPut(uploadKey, contentType, request.bytes, MASK_UPLOAD_URL_SECONDS);
  const expiresAt = new Date(Date.parse(deps.clock()) + MASK_UPLOAD_URL_SECONDS * 1000).toISOString();
  return {
    kind: "upload",
    response: { stackId, uploadKey, url, method: "PUT", headers: { "content-type": contentType }, expiresAt },
  };
}

export type MaskAcceptance =
  | { readonly kind: "accepted"; readonly mask: CompletedMask }
  | { readonly kind: "maskRefused"; readonly maskCode: MaskRefusalCode; readonly message: string }
  | Refused;

/**
 * The completion's mask, checked and stored (see the module comment). `stack` is selected and
 * assigned to `annotator`. A "no hemorrhage" finish stores an all-background mask on the stack's grid.
 */
export async function acceptMask(
  stack: StackRecord,
  request: CompletionRequest,
  annotator: string,
  deps: Omit<MaskDeps, "newId">,
): Promise<MaskAcceptance> {
  if (request.noHemorrhage) {
    if (!stack.geometry) return { kind: "maskRefused", maskCode: "NO_GEOMETRY", message: noGeometry(stack) };
    const [frames, rows, columns] = stack.geometry.shape;
    const key = storedMaskKey(stack.stackId, "no-hemorrhage");
    await deps.masks.put(key, encodeMask(new Uint8Array(frames * rows * columns), stack.geometry));
    return { kind: "accepted", mask: { key, labeledVoxels: 0, values: [0], reoriented: false } };
  }
  const uploadKey = request.maskUploadKey ?? "";
  const upload = parseMaskUploadKey(uploadKey);
  if (!upload || upload.stackId !== stack.stackId) {
    return refused(
      "BAD_REQUEST",
      `maskUploadKey: not an upload key of stack ${JSON.stringify(stack.stackId)} (POST /stacks/{stackId}/mask-uploads issues one)`,
    );
  }
  const refuse = async (maskCode: MaskRefusalCode, reason: string): Promise<MaskAcceptance> => {
    await deps.records.recordMaskRefusal(stack.stackId, upload.uploadId, {
      code: maskCode,
      reason,
      uploadKey,
      annotator,
      at: new Date(Date.parse(deps.clock())).toISOString(),
    });
    return { kind: "maskRefused", maskCode, message: reason };
  };
  if (!stack.geometry) return refuse("NO_GEOMETRY", noGeometry(stack));
  const object = await deps.masks.get(uploadKey, MAX_MASK_BYTES);
  if (object.kind === "missing") return refuse("NOT_UPLOADED", "no mask was uploaded at maskUploadKey (PUT it to the presigned URL first)");
  if (object.kind === "tooLarge") return refuse("TOO_LARGE", `the mask is ${object.bytes} bytes; the limit is ${MAX_MASK_BYTES}`);
  const check = checkMask(object.body, stack.geometry);
  if (!check.ok) return refuse(check.code, check.reason);
  const key = storedMaskKey(stack.stackId, upload.uploadId);
  await deps.masks.put(key, encodeMask(check.labels, stack.geometry));
  return {
    kind: "accepted",
    mask: { key, uploadKey, labeledVoxels: check.labeledVoxels, values: check.values, reoriented: check.reoriented },
  };
}

const noGeometry = (stack: StackRecord) =>
  `stack ${JSON.stringify(stack.stackId)} was scored before the container reported stack grids; it must be scored again before a mask can be checked`;
