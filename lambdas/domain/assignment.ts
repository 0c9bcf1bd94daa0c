/**
 * Sharing a round's selected stacks among the annotators (issue 6), deterministically so that a re-run
 * of the notify step computes the same split: longest-processing-time-first (Graham 1969) by predicted
 * labeling time T — stacks in decreasing `predictedSeconds` (ties by stackId), each given to the
 * annotator with the least assigned time so far (ties by the sorted annotator order). LPT's makespan is
 * at most (4/3 − 1/(3m))·OPT for m annotators, so nobody's week is much longer than the best split.
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

/** Pure: each annotator's share (annotators sorted; each share's stack ids sorted). */
export function assignStacks(stacks: readonly AssignableStack[], annotators: readonly string[]): AnnotatorShare[] {
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
  const shares = names.map((annotator) => ({ annotator, stackIds: [] as string[], predictedSeconds: 0 }));
  for (const stack of order) {
    let least = shares[0] as (typeof shares)[number];
    for (const share of shares) if (share.predictedSeconds < least.predictedSeconds) least = share;
    least.stackIds.push(stack.stackId);
    least.predictedSeconds += stack.predictedSeconds;
  }
  return shares.map((s) => ({ ...s, stackIds: [...s.stackIds].sort(compare) }));
}

/** Pure: the round's assignment record. */
export function roundAssignment(stacks: readonly AssignableStack[], annotators: readonly string[], assignedAt: string): RoundAssignment {
  return { annotators: assignStacks(stacks, annotators), assignedAt };
}

/** The annotator's share in an assignment, or undefined when they have none. */
export function shareOf(assignment: RoundAssignment, annotator: string): AnnotatorShare | undefined {
  const name = normalizeAnnotator(annotator);
  return assignment.annotators.find((s) => s.annotator === name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
