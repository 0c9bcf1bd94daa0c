/**
 * The learning loop's labeled set, and whether a new model may replace the one in service.
 *
 *   records ─ labeled stacks with an accepted mask ─┬─ hash(stackId) < share → validation (never trained on)
 *                                                   └─ otherwise            → train
 *   train → channel folders (model-container ichal/train/annotations.py): <stackId>/study.<ext>,
 *           <stackId>/mask.nii.gz, <stackId>/stack.json
 *   candidate and current evaluated on the same validation stacks → promotionDecision
 *
 * The split depends on the stack id alone (sha256), so it is fixed: a stack keeps its side as the set
 * grows, every model is judged on the same stacks, and a larger share only moves stacks from train to
 * validation. Pure: no SDK, no clock.
 */
import { createHash } from "node:crypto";
import type { StackRecord, StackSource } from "../contracts/records.js";

export type Split = "train" | "validation";

/** Default share of labeled stacks held out for validation. */
export const DEFAULT_VALIDATION_SHARE = 0.2;

export interface LabeledStack {
  readonly stackId: string;
  /** Which series of the study (`<studyId>-s<index>`). */
  readonly seriesIndex: number;
  /** The uploaded study object (bucket, key, version). */
  readonly study: StackSource;
  /** The accepted, normalised mask (`labels/<stackId>/<uuid>.nii.gz`). */
  readonly maskKey: string;
  readonly labeledVoxels: number;
  readonly completedAt: string;
  readonly split: Split;
}

/** Where a stack id falls, at `share` ∈ [0, 1): its sha256 read as a number in [0, 1) against the share. */
export function splitOf(stackId: string, share: number): Split {
  if (!(share >= 0 && share < 1)) throw new RangeError(`validation share must be in [0, 1), got ${share}`);
  const head = createHash("sha256").update(stackId, "utf8").digest().readUInt32BE(0);
  return head / 2 ** 32 < share ? "validation" : "train";
}

/**
 * Every labeled stack whose completion has an accepted mask, split by `splitOf`, sorted by stack id;
 * `withoutMask` lists labeled stacks recorded before masks were checked (they cannot be trained on).
 */
export function labeledSet(
  records: readonly StackRecord[],
  share = DEFAULT_VALIDATION_SHARE,
): { train: LabeledStack[]; validation: LabeledStack[]; withoutMask: string[] } {
  const train: LabeledStack[] = [];
  const validation: LabeledStack[] = [];
  const withoutMask: string[] = [];
  const sorted = [...records].sort((a, b) => (a.stackId < b.stackId ? -1 : a.stackId > b.stackId ? 1 : 0));
  for (const record of sorted) {
    if (record.status !== "labeled" || record.kind === "study") continue;
    const mask = record.completion?.mask;
    const series = /-s(\d+)$/.exec(record.stackId);
    if (!mask || !record.completion || !series) {
      withoutMask.push(record.stackId);
      continue;
    }
    const stack: LabeledStack = {
      stackId: record.stackId,
      seriesIndex: Number(series[1]),
      study: record.source,
      maskKey: mask.key,
      labeledVoxels: mask.labeledVoxels,
      completedAt: record.completion.completedAt,
      split: splitOf(record.stackId, share),
    };
    (stack.split === "validation" ? validation : train).push(stack);
  }
  return { train, validation, withoutMask };
}

/** The files of one stack in a training or validation channel (paths relative to the channel). */
export function channelFiles(stack: LabeledStack): { study: string; mask: string; stackJson: string; stackJsonBody: string } {
  const name = stack.study.key.split("/").pop() ?? "";
  const lower = name.toLowerCase();
  const extension = lower.endsWith(".nii.gz") ? ".nii.gz" : (/\.(zip|nii|npz)$/.exec(lower)?.[0] ?? "");
  return {
    study: `${stack.stackId}/study${extension}`,
    mask: `${stack.stackId}/mask.nii.gz`,
    stackJson: `${stack.stackId}/stack.json`,
    stackJsonBody: JSON.stringify({ stackId: stack.stackId, seriesIndex: stack.seriesIndex }),
  };
}

/** Validation metrics of one model (model-container `ichal evaluate --annotated-dir`). */
export interface ValidationMetrics {
  readonly pixelAp: number;
  readonly stackAp: number;
  readonly frameAp: number;
  /** The validation stacks it was measured on. */
  readonly stackIds: readonly string[];
}

/**
 * A candidate replaces the model in service unless it is worse by more than `tolerance` on pixel or
 * stack AP, measured on the same validation stacks. With no model in service (or no validation
 * stacks yet) the candidate is promoted; a candidate whose pixel or stack AP is not finite (a
 * validation split without hemorrhage), or that was measured on other stacks, is not. A metric the
 * current model has no finite value for is not compared.
 */
export function promotionDecision(
  candidate: ValidationMetrics,
  current: ValidationMetrics | undefined,
  tolerance: number,
): { promote: boolean; reasons: string[] } {
  if (candidate.stackIds.length === 0) return { promote: true, reasons: ["no validation stacks yet"] };
  const finite = (m: ValidationMetrics) => [m.pixelAp, m.stackAp].every(Number.isFinite);
  if (!finite(candidate)) return { promote: false, reasons: ["the candidate's validation metrics are not finite"] };
  if (!current) return { promote: true, reasons: ["no model in service to compare with"] };
  const same = candidate.stackIds.length === current.stackIds.length && candidate.stackIds.every((id, i) => id === current.stackIds[i]);
  if (!same) return { promote: false, reasons: ["the two models were measured on different validation stacks"] };
  const reasons: string[] = [];
  for (const [name, c, s] of [
    ["pixel AP", candidate.pixelAp, current.pixelAp],
    ["stack AP", candidate.stackAp, current.stackAp],
  ] as const) {
    if (!Number.isFinite(s)) continue;
    if (c < s - tolerance) reasons.push(`${name} ${c.toFixed(3)} is below the current ${s.toFixed(3)} by more than ${tolerance}`);
  }
  return reasons.length > 0
    ? { promote: false, reasons }
    : { promote: true, reasons: [`within ${tolerance} of the current model or better`] };
}
