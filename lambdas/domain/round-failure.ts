/**
 * The weekly workflow's failure path: every Task's Catch lands here with the execution's
 * `now` and the caught `{ Error, Cause }`. "A failed round leaves the pool unchanged and says so":
 *
 *  - no round record for the week (refit or select failed before the claim): a `failed` round is
 *    created holding the error and an empty plan;
 *  - `selecting` (select failed mid-way): the round is marked `failed` first — so a select run still
 *    finishing it can no longer complete it — then every stack it had marked is put back in the pool
 *    (`selected → pending`, atomically conditional on the stack being `selectedBy` this round and the
 *    round being `failed`), and the count is recorded as `restoredToPool`;
 *  - `failed` (this state retried, or a re-run failed again): the restore is repeated (idempotent) and
 *    the newest error recorded;
 *  - `completed` (a later state, e.g. notify, failed): the error is recorded on the round; its stacks
 *    stay selected (and assigned) — a re-run of notify e-mails only those not yet notified.
 *
 * A later run in the same week re-claims a `failed` round and selects afresh (domain/selection-round.ts);
 * a `completed` one is never re-selected.
 */
import type { RoundStatus, SelectionRound } from "../contracts/records.js";
import { DomainError } from "./errors.js";
import { roundIdOf } from "./iso-week.js";
import type { RecordStore } from "./record-store.js";

/** The round kept changing under the failure path (it could not settle on one status). */
export class RoundFailureStateError extends DomainError {}

export interface TaskError {
  readonly Error: string;
  readonly Cause?: string | undefined;
}

export interface RoundFailureOutput {
  readonly roundId: string;
  /** The round's status after the failure was recorded (`failed`, or `completed` for a late-state failure). */
  readonly status: RoundStatus;
  /** Stacks this invocation put back in the pool. */
  readonly restoredToPool: number;
}

const MAX_ERROR_CHARS = 1000;

/**
 * Pure: one line for the round record from a Step Functions error. A Lambda's Cause is the JSON
 * `{ errorType, errorMessage, trace }`: only type and message are kept (never the stack trace).
 */
export function describeTaskError(error: TaskError): string {
  let detail = error.Cause ?? "";
  try {
    const cause = JSON.parse(detail) as unknown;
    if (cause && typeof cause === "object" && "errorMessage" in cause) {
      const { errorType, errorMessage } = cause as { errorType?: unknown; errorMessage?: unknown };
      detail = `${typeof errorType === "string" && errorType !== error.Error ? `${errorType}: ` : ""}${String(errorMessage)}`;
    }
  } catch {
    // Not JSON (a States.* error's plain-text Cause): keep it as it is.
  }
  const line = `${error.Error}${detail ? `: ${detail}` : ""}`.replace(/\s+/g, " ").trim();
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 1)}…` : line;
}

/** Pure: the record of a round that failed before it was ever claimed. */
export function failedRoundRecord(roundId: string, error: string, failedAt: string, createdAt: string): SelectionRound {
  return {
    roundId,
    strategy: "knapsack",
    budgetSeconds: 0,
    resolutionSeconds: 1,
    poolSize: 0,
    selected: [],
    totalUncertainty: 0,
    totalPredictedSeconds: 0,
    optimal: false,
    timeModelVersion: 0,
    createdAt,
    status: "failed",
    error,
    failedAt,
    restoredToPool: 0,
  };
}

/**
 * Puts back in the pool every stack `round` marked: its plan plus any stack the by-status index lists as
 * `selected` by it (a stack marked by a run that raced the failure). Only while the round is `failed`.
 * Returns how many stacks moved back to `pending`.
 */
export async function restoreRoundStacks(records: RecordStore, round: SelectionRound, now: string): Promise<number> {
  const ids = new Set(round.selected);
  for (const stack of await records.listByStatus("selected")) if (stack.selectedBy === round.roundId) ids.add(stack.stackId);
  let restored = 0;
  for (const stackId of [...ids].sort()) if (await records.releaseSelection(stackId, round.roundId, now)) restored++;
  return restored;
}

export interface RoundFailureDeps {
  readonly records: RecordStore;
  /** The current time (ISO), for `failedAt` and the stacks' `updatedAt`. */
  readonly clock: () => string;
  /** The schedule's IANA time zone: the round is the ISO week of `now` there. */
  readonly timeZone: string;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Records the failure of the round of `now`'s ISO week (in `deps.timeZone`); see the module comment. */
export async function recordRoundFailure(now: string, error: TaskError, deps: RoundFailureDeps): Promise<RoundFailureOutput> {
  const { records } = deps;
  const log = deps.log ?? (() => {});
  const roundId = roundIdOf(now, deps.timeZone);
  const message = describeTaskError(error);
  for (let attempt = 0; attempt < 3; attempt++) {
    const at = deps.clock();
    const round = await records.getRound(roundId);
    if (!round) {
      if (await records.createRound(failedRoundRecord(roundId, message, at, new Date(Date.parse(now)).toISOString()))) {
        log("round failed before it was claimed", { roundId, error: error.Error });
        return { roundId, status: "failed", restoredToPool: 0 };
      }
      continue;
    }
    if (round.status === "completed") {
      if (!(await records.recordRoundFailure(roundId, "completed", { status: "completed", error: message, failedAt: at }))) continue;
      log("completed round: later state failed; stacks stay selected", { roundId, error: error.Error });
      return { roundId, status: "completed", restoredToPool: 0 };
    }
    if (round.status === "selecting") {
      if (!(await records.recordRoundFailure(roundId, "selecting", { status: "failed", error: message, failedAt: at }))) continue;
    }
    const restored = await restoreRoundStacks(records, round, at);
    const total = (round.status === "failed" ? (round.restoredToPool ?? 0) : 0) + restored;
    // If a select run re-claimed the round meanwhile, the restore did nothing and this write fails: fine.
    await records.recordRoundFailure(roundId, "failed", { status: "failed", error: message, failedAt: at, restoredToPool: total });
    log("round failed; its stacks are back in the pool", { roundId, restoredToPool: restored, error: error.Error });
    return { roundId, status: "failed", restoredToPool: restored };
  }
  throw new RoundFailureStateError(`round ${roundId} kept changing while its failure was being recorded`);
}
