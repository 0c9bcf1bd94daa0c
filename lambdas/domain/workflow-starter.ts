/**
 * Port for starting the weekly selection workflow (Step Functions). The SFN adapter implements it;
 * unit-test fakes implement the same interface.
 */
import type { WeeklyExecutionInput } from "../contracts/weekly-workflow.js";
import { roundIdOf } from "./iso-week.js";

/** What a start request did. */
export interface WorkflowStart {
  /** `select-<ISO week in the schedule's time zone>`, e.g. `select-2026-W48`. */
  readonly executionName: string;
  /** False when an execution with this name already exists (a repeated trigger in the same week). */
  readonly started: boolean;
  /** The execution's ARN when `started`. */
  readonly executionArn?: string;
}

export interface WorkflowStarter {
  /**
   * Starts an execution named `executionName` with `input`. An execution of that name that already
   * exists is not an error: the result says `started: false`.
   */
  start(executionName: string, input: WeeklyExecutionInput): Promise<WorkflowStart>;
}

/**
 * Pure: the weekly execution for a scheduled time — named after its ISO week in the schedule's time zone
 * `timeZone`, with `{ now: scheduledTime }` as input.
 */
export function weeklyExecution(scheduledTime: string, timeZone: string): { executionName: string; input: WeeklyExecutionInput } {
  return { executionName: roundIdOf(scheduledTime, timeZone), input: { now: scheduledTime } };
}
