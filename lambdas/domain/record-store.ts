/**
 * Port for the records table. The DynamoDB adapter implements it for AWS and the local emulator;
 * unit-test fakes implement the same interface so they cannot drift.
 */
import type { InvokeClaim, LastError, ScoringInvocation, SelectionRound, StackRecord, StackStatus } from "../contracts/records.js";

export interface RecordStore {
  /** Creates the record unless one with this stackId exists. Returns false (and changes nothing) if it does. */
  createStack(record: StackRecord): Promise<boolean>;
  getStack(stackId: string): Promise<StackRecord | undefined>;
  /** All stacks in one status, oldest first. */
  listByStatus(status: StackStatus): Promise<StackRecord[]>;
  /**
   * Moves a stack from `from` to `to` and sets the given fields, only if it is still in `from`.
   * Returns false if it was not (a late or repeated event); never overwrites newer state.
   */
  transition(
    stackId: string,
    from: StackStatus,
    to: StackStatus,
    fields: Partial<Omit<StackRecord, "stackId" | "status" | "source" | "receivedAt">>,
    now: string,
  ): Promise<boolean>;
  /**
   * Takes the exclusive right to invoke scoring for a `received` record that has no `scoring` yet,
   * if no other delivery holds an unexpired claim (`invokeClaim.expiresAt` ≤ `now` counts as lapsed).
   * Returns false (and changes nothing) otherwise.
   */
  claimInvocation(stackId: string, claim: InvokeClaim, now: string): Promise<boolean>;
  /**
   * Records the accepted invocation and drops the claim and any `lastError`, only while `token` still
   * holds the claim. Returns false if it does not (its lease lapsed and another delivery took over).
   */
  completeInvocation(stackId: string, token: string, scoring: ScoringInvocation, now: string): Promise<boolean>;
  /** Drops the claim held by `token` and records why the invocation failed, so a redelivery can claim at once. */
  releaseInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean>;
  /** Creates the round record unless one with this roundId exists. Returns false (and changes nothing) if it does. */
  createRound(round: SelectionRound): Promise<boolean>;
  getRound(roundId: string): Promise<SelectionRound | undefined>;
  /**
   * Replaces a round that is still `selecting` with its final form. Returns false (and changes
   * nothing) if the round is not `selecting` any more (another run completed it first).
   */
  completeRound(round: SelectionRound): Promise<boolean>;
}
