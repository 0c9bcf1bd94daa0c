/**
 * Port for the records table. The DynamoDB adapter implements it for AWS and the local emulator;
 * unit-test fakes implement the same interface so they cannot drift.
 */
import type { StackRecord, StackStatus } from "../contracts/records.js";

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
}
