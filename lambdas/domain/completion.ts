/**
 * An annotator reports a finished stack (issue 6, POST /completions). The measured active seconds
 * become a labeling-time observation for the refit, so a completion is written exactly once:
 *
 *   stack                                   caller                     outcome
 *   missing (or a study record)             —                          NOT_FOUND
 *   selected, assignedTo = caller           —                          completed: selected → labeled (conditional)
 *   selected / labeled, assigned elsewhere  —                          NOT_ASSIGNED, nothing written
 *   labeled, same annotator/seconds/label   —                          replay: the stored completion, nothing written
 *   labeled by the caller, other values     —                          CONFLICT
 *   any other status (pending, …)           —                          NOT_SELECTED
 *
 * The write is `selected → labeled` conditional on `assignedTo` = caller; of concurrent identical
 * posts exactly one wins and the others, re-reading the stack, answer as an identical replay.
 * The caller is the authenticated identity, compared lower-cased (domain/assignment.ts).
 */
import type { ApiErrorCode, CompletionRequest, CompletionResponse, WorklistResponse } from "../contracts/completion-api.js";
import type { Completion, SelectionRound, StackRecord } from "../contracts/records.js";
import { normalizeAnnotator, shareOf } from "./assignment.js";
import { roundIdOf } from "./iso-week.js";
import type { RecordStore } from "./record-store.js";

export type CompletionOutcome =
  | { readonly kind: "completed" | "replayed"; readonly response: CompletionResponse }
  | { readonly kind: "refused"; readonly code: ApiErrorCode; readonly message: string };

export interface CompletionDeps {
  readonly records: RecordStore;
  /** The current time (ISO): `completedAt`. */
  readonly clock: () => string;
}

/** Completes `request.stackId` for `caller`; see the module comment. */
export async function completeStack(request: CompletionRequest, caller: string, deps: CompletionDeps): Promise<CompletionOutcome> {
  const annotator = normalizeAnnotator(caller);
  if (request.annotator !== undefined && normalizeAnnotator(request.annotator) !== annotator) {
    return refused("NOT_ASSIGNED", "annotator in the body is not the signed-in annotator");
  }
  const stack = await deps.records.getStack(request.stackId);
  if (!stack || stack.kind === "study") return refused("NOT_FOUND", `no stack ${JSON.stringify(request.stackId)}`);
  if (stack.status === "selected" && stack.assignedTo === annotator) {
    const completion: Completion = {
      activeSeconds: request.activeSeconds,
      annotator,
      labelLocation: request.labelLocation,
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
      stored.labelLocation === request.labelLocation
    ) {
      return { kind: "replayed", response: { stackId: stack.stackId, status: "labeled", completion: stored } };
    }
    return refused("CONFLICT", `stack ${JSON.stringify(stack.stackId)} was already completed with different values`);
  }
  return refused("NOT_SELECTED", `stack ${JSON.stringify(stack.stackId)} is not selected for labeling`);
}

function refused(code: ApiErrorCode, message: string): CompletionOutcome {
  return { kind: "refused", code, message };
}

/** How many weeks back GET /worklist looks for a round that assigned the caller stacks. */
export const WORKLIST_LOOKBACK_WEEKS = 12;

/**
 * The caller's stacks (selected and labeled) in the latest round, within WORKLIST_LOOKBACK_WEEKS of
 * `now`, whose stored assignment gives them any; with their round's totals against the budget.
 */
export async function worklistOf(caller: string, now: string, records: RecordStore): Promise<WorklistResponse> {
  const annotator = normalizeAnnotator(caller);
  const start = Date.parse(now);
  for (let week = 0; week < WORKLIST_LOOKBACK_WEEKS; week++) {
    const round: SelectionRound | undefined = await records.getRound(roundIdOf(new Date(start - week * 7 * 86_400_000)));
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
