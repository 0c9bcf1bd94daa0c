/**
 * Sharing a round's selected stacks among the annotators, deterministically so that a re-run of the
 * notify step computes the same split: longest-processing-time-first (Graham 1969) by predicted
 * labeling time T — stacks in decreasing `predictedSeconds` (ties by stackId), each given to the
 * annotator who would finish it first, i.e. with the least (assigned time + T·s_a), where s_a is the
 * annotator's speed factor from the time model (1 when unknown; ties by the sorted annotator order).
 * With equal speeds LPT's makespan is at most (4/3 − 1/(3m))·OPT for m annotators; with speeds it is
 * LPT for uniform machines (within a factor 2 of the best split, Gonzalez, Ibarra & Sahni 1977). Each
 * share's `predictedSeconds` is that annotator's predicted time, Σ T·s_a.
 *
 * Annotators are identified by their e-mail address, trimmed and lower-cased (the Cognito `email`
 * claim is compared the same way), de-duplicated and sorted.
 */
import type { AnnotatorShare, RoundAssignment } from "../contracts/records.js";
import { DomainError } from "./errors.js";

/** No annotator to share the stacks with, or a stack with an unusable predicted time. */
export class InvalidAssignmentInputError extends DomainError {}

export interface AssignableStack {
  readonly stackId: string;
  readonly predictedSeconds: number;
}

/** The canonical form of an annotator's address (assignment and API identity compare this). */
export function normalizeAnnotator(email: string): string {
  return email.trim().toLowerCase();
}

/** Pure: each annotator's share (annotators sorted; each share's stack ids sorted); `speeds` by normalised annotator. */
export function assignStacks(
  stacks: readonly AssignableStack[],
  annotators: readonly string[],
  speeds: ReadonlyMap<string, number> = new Map(),
): AnnotatorShare[] {
  const names = [...new Set(annotators.map(normalizeAnnotator))].sort();
  if (names.length === 0 || names.some((n) => n.length === 0)) {
    throw new InvalidAssignmentInputError("at least one non-empty annotator address is needed");
  }
  const seen = new Set<string>();
  for (const stack of stacks) {
    if (!Number.isFinite(stack.predictedSeconds) || stack.predictedSeconds < 0) {
      throw new InvalidAssignmentInputError(`stack ${JSON.stringify(stack.stackId)}: predictedSeconds must be finite and ≥ 0`);
    }
    if (seen.has(stack.stackId)) throw new InvalidAssignmentInputError(`stack ${JSON.stringify(stack.stackId)} appears twice`);
    seen.add(stack.stackId);
  }
  const order = [...stacks].sort((a, b) => b.predictedSeconds - a.predictedSeconds || compare(a.stackId, b.stackId));
  const speedOf = (annotator: string) => {
    const factor = speeds.get(annotator);
    return factor !== undefined && Number.isFinite(factor) && factor > 0 ? factor : 1;
  };
  const shares = names.map((annotator) => ({ annotator, stackIds: [] as string[], predictedSeconds: 0, speed: speedOf(annotator) }));
  for (const stack of order) {
    let first = shares[0] as (typeof shares)[number];
    const finish = (share: typeof first) => share.predictedSeconds + stack.predictedSeconds * share.speed;
    for (const share of shares) if (finish(share) < finish(first)) first = share;
    first.predictedSeconds = finish(first);
    first.stackIds.push(stack.stackId);
  }
  return shares.map(({ annotator, stackIds, predictedSeconds }) => ({
    annotator,
    stackIds: [...stackIds].sort(compare),
    predictedSeconds,
  }));
}

/** Pure: the round's assignment record. */
export function roundAssignment(
  stacks: readonly AssignableStack[],
  annotators: readonly string[],
  assignedAt: string,
  speeds: ReadonlyMap<string, number> = new Map(),
): RoundAssignment {
  return { annotators: assignStacks(stacks, annotators, speeds), assignedAt };
}

/** The annotator's share in an assignment, or undefined when they have none. */
export function shareOf(assignment: RoundAssignment, annotator: string): AnnotatorShare | undefined {
  const name = normalizeAnnotator(annotator);
  return assignment.annotators.find((s) => s.annotator === name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
