/**
 * Unsaved masks survive a reload: the viewer's labels are kept in this browser (localStorage, one entry
 * per annotator and stack) after every edit, until the stack's completion is recorded. Masks are sparse,
 * so they are kept run-length encoded ([value, run] pairs, runs up to 2³²−1) in base64: a 32 × 512²
 * stack with a few lesions takes a few KiB.
 */
import type { StackGeometry } from "../../../lambdas/contracts/masks.js";
import { decodeRuns, encodeRuns } from "./run-length.js";

const keyOf = (annotator: string, stackId: string) => `ich-al.worklist.mask.${annotator}.${stackId}`;

export function saveDraft(annotator: string, stackId: string, labels: Uint8Array, geometry: StackGeometry): void {
  try {
    localStorage.setItem(keyOf(annotator, stackId), JSON.stringify({ shape: geometry.shape, runs: encodeRuns(labels) }));
  } catch {
    // Storage full or unavailable: the mask is still in the viewer; only a reload would lose it.
  }
}

export function loadDraft(annotator: string, stackId: string, geometry: StackGeometry): Uint8Array | undefined {
  const text = localStorage.getItem(keyOf(annotator, stackId));
  if (!text) return undefined;
  try {
    const draft = JSON.parse(text) as { shape: number[]; runs: string };
    if (draft.shape.join() !== geometry.shape.join()) return undefined;
    return decodeRuns(draft.runs, geometry.shape[0] * geometry.shape[1] * geometry.shape[2]);
  } catch {
    return undefined;
  }
}

export function dropDraft(annotator: string, stackId: string): void {
  localStorage.removeItem(keyOf(annotator, stackId));
}
