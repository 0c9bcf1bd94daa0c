/**
 * Port for the records table. The DynamoDB adapter implements it for AWS and the local emulator;
 * unit-test fakes implement the same interface so they cannot drift.
 */

import type { MaskRefusal } from "../contracts/masks.js";
import type {
  Completion,
  InvokeClaim,
  LastError,
  ModelInService,
  NotificationMark,
  Prediction,
  RoundAssignment,
  RoundStatus,
  ScoringInvocation,
  SelectionRound,
  StackRecord,
  StackStatus,
} from "../contracts/records.js";

/** What the failure path writes on a round (see RecordStore.recordRoundFailure). */
export interface RoundFailureFields {
  readonly status: RoundStatus;
  readonly error: string;
  readonly failedAt: string;
  readonly restoredToPool?: number;
}

export interface RecordStore {
  /** Creates the record unless one with this stackId exists. Returns false (and changes nothing) if it does. */
  createStack(record: StackRecord): Promise<boolean>;
  getStack(stackId: string): Promise<StackRecord | undefined>;
  /** All stacks in one status, oldest first. */
  listByStatus(status: StackStatus): Promise<StackRecord[]>;
  /**
   * Moves a stack from `from` to `to` and sets the given fields, only if it is still in `from` (and,
   * with `guard.uninvoked`, still has no `scoring`). Returns false if it was not (a late or repeated
   * event); never overwrites newer state.
   */
  transition(
    stackId: string,
    from: StackStatus,
    to: StackStatus,
    fields: Partial<Omit<StackRecord, "stackId" | "status" | "source" | "receivedAt">>,
    now: string,
    guard?: { readonly uninvoked?: boolean },
  ): Promise<boolean>;
  /**
   * Replaces a `pending` stack's prediction, only while it is still `pending` and its prediction (if
   * any) comes from an older time-model version than `prediction.timeModelVersion`. Returns false
   * otherwise, so a refit that read an older version can never overwrite a newer prediction.
   */
  repredict(stackId: string, prediction: Prediction, now: string): Promise<boolean>;
  /**
   * Takes the exclusive right to invoke scoring for a `received` record that has no `scoring` yet,
   * if no other delivery holds an unexpired claim (`invokeClaim.expiresAt` ≤ `now` counts as lapsed).
   * A `failed` record without `scoring` (ingest gave up on its last delivery: see failInvocation) is
   * claimable too, so a re-driven message retries it; the claim moves it back to `received`.
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
  /**
   * The last delivery's invocation failed: `received → failed` with `error` as `lastError`, dropping the
   * claim, only while `token` holds the claim and the record has no `scoring`. Returns false (and changes
   * nothing) otherwise. The record stays claimable (claimInvocation), so a re-drive can retry it.
   */
  failInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean>;
  /**
   * Creates the stack record and the claim of its content key (`record.contentSha256`, the sha256 of its
   * voxels) atomically — both or neither — unless another stack holds that key. Returns the holder
   * afterwards: `record.stackId` when this call created both or an earlier call for the same stack did (a
   * redelivery: nothing changes), else the stack recorded first with the same voxels (nothing written).
   * Claims are never released, so a holder's stack record always exists.
   */
  createStackWithContent(record: StackRecord & { contentSha256: string }, claimedAt: string): Promise<string>;
  /** The model in service, if any model has scored yet. */
  getModelInService(): Promise<ModelInService | undefined>;
  /** Records `model` as in service unless a model is; returns the model in service afterwards. */
  claimModelInService(model: ModelInService): Promise<ModelInService>;
  /** Replaces the model in service with `next`, only if its sequence is still `expectedSequence`. */
  promoteModel(next: ModelInService, expectedSequence: number): Promise<boolean>;
  /**
   * Replaces a `pending` stack's scores and prediction (and grid) with those of another model, only
   * while it is `pending` and its scores are not already that model's. False (nothing written) otherwise.
   */
  rescoreStack(stackId: string, fields: Pick<StackRecord, "scores" | "prediction" | "geometry">, now: string): Promise<boolean>;
  /** Creates the round record unless one with this roundId exists. Returns false (and changes nothing) if it does. */
  createRound(round: SelectionRound): Promise<boolean>;
  getRound(roundId: string): Promise<SelectionRound | undefined>;
  /**
   * Replaces a round that is still `selecting` with its final form. Returns false (and changes
   * nothing) if the round is not `selecting` any more (another run completed it first).
   */
  completeRound(round: SelectionRound): Promise<boolean>;
  /**
   * Replaces a round that is `failed` with a freshly claimed one (status `selecting`, a new plan): an
   * operator's retry after a failure. Returns false (and changes nothing) if the round is not `failed`.
   */
  reclaimRound(round: SelectionRound): Promise<boolean>;
  /**
   * Sets `status`, `error`, `failedAt` (and `restoredToPool` when given) on a round, only while it is in
   * `expected`. Returns false (and changes nothing) if it is not.
   */
  recordRoundFailure(roundId: string, expected: RoundStatus, fields: RoundFailureFields): Promise<boolean>;
  /**
   * Puts a stack this round had marked back in the pool (`selected → pending`, removing `selectedBy` and
   * `assignedTo`), only if it is `selected` by `roundId` AND the round is `failed` — atomically, so a
   * late restore can never undo the marks of a run that has since re-claimed the round.
   */
  releaseSelection(stackId: string, roundId: string, now: string): Promise<boolean>;
  /**
   * Stores the round's assignment once: only if the round is `completed` and has none yet. Returns
   * false (and changes nothing) otherwise.
   */
  assignRound(roundId: string, assignment: RoundAssignment): Promise<boolean>;
  /**
   * Sets `assignedTo` on a stack that is `selected` by `roundId` and not assigned to someone else
   * (re-assigning to the same annotator is a no-op that returns true). False otherwise.
   */
  assignStack(stackId: string, roundId: string, annotator: string, now: string): Promise<boolean>;
  /**
   * `selected → labeled` with `completion`, only if the stack is `selected` and `assignedTo` is
   * `completion.annotator`. Returns false (and changes nothing) otherwise.
   */
  completeStack(stackId: string, completion: Completion, now: string): Promise<boolean>;
  /**
   * Keeps a refused mask upload's reason (one item per upload, beside the stack's record; a repeat for
   * the same upload replaces it). Never changes the stack.
   */
  recordMaskRefusal(stackId: string, uploadId: string, refusal: MaskRefusal): Promise<void>;
  /** The refusals kept for a stack, oldest first. */
  listMaskRefusals(stackId: string): Promise<MaskRefusal[]>;
  /** Creates the annotator's notification mark for the round unless one exists. False if it does. */
  claimNotification(mark: NotificationMark): Promise<boolean>;
  /** `sending → sent` with the SES MessageId, only while `token` holds the claim. */
  markNotificationSent(roundId: string, annotator: string, token: string, messageId: string, sentAt: string): Promise<boolean>;
  /** Deletes a `sending` claim held by `token` (the send failed; a retry may claim again). */
  releaseNotification(roundId: string, annotator: string, token: string): Promise<boolean>;
  getNotification(roundId: string, annotator: string): Promise<NotificationMark | undefined>;
}
