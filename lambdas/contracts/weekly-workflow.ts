/**
 * The weekly selection workflow (Step Functions, JSONPath), shared by the CDK construct that defines
 * it (infra/weekly-workflow.ts), the handlers its Tasks invoke, and the local runner that executes the
 * synthesized definition with each Task bound by state name to the same handler.
 *
 *   EventBridge Scheduler ──▶ start-round λ ──StartExecution(name = select-<ISO week>)──▶
 *     RefitTimeModel ──▶ SelectStacks ──▶ NotifyAnnotators ──▶ RoundDone (Succeed)
 *          └──────────────┴──────────────────┴── Catch ──▶ RecordRoundFailure ──▶ RoundFailed (Fail)
 *
 * Every Task: LambdaInvoke with payloadResponseOnly, Retry (backoff + jitter), Catch (resultPath
 * `$.error` = `{ Error, Cause }`) and a timeout. A second execution with the same name in the same
 * week is refused by Step Functions (ExecutionAlreadyExists); if one is started anyway, select returns
 * the stored round (`repeated: true`) and notify sends only to annotators not yet notified.
 */
import { z } from "zod";

export const WEEKLY_WORKFLOW_STATES = {
  refit: "RefitTimeModel",
  select: "SelectStacks",
  notify: "NotifyAnnotators",
  recordFailure: "RecordRoundFailure",
  failed: "RoundFailed",
  done: "RoundDone",
} as const;
export type WeeklyWorkflowTask = Exclude<keyof typeof WEEKLY_WORKFLOW_STATES, "failed" | "done">;

/** Input of every execution (start-round λ writes it): the schedule's time, which names the round. */
export const WeeklyExecutionInputSchema = z.object({ now: z.iso.datetime({ offset: true }) });
export type WeeklyExecutionInput = z.infer<typeof WeeklyExecutionInputSchema>;

/**
 * Task inputs and where each result goes in the execution state (JSONPath):
 *   RefitTimeModel      payload `{ now }`                          → `$.refit`
 *   SelectStacks        payload `{ now }`                          → `$.selection` (SelectOutput)
 *   NotifyAnnotators    payload `{ now, roundId: $.selection.roundId }` → `$.notification`
 *   RecordRoundFailure  payload `{ now, error: $.error }`         → `$.failure`
 */
export const WEEKLY_WORKFLOW_RESULT_PATHS = {
  refit: "$.refit",
  select: "$.selection",
  notify: "$.notification",
  recordFailure: "$.failure",
} as const;

export const NotifyInputSchema = z.object({ now: z.iso.datetime({ offset: true }), roundId: z.string().regex(/^select-\d{4}-W\d{2}$/) });
export type NotifyInput = z.infer<typeof NotifyInputSchema>;

/** What a Catch puts at `$.error`. */
export const TaskErrorSchema = z.object({ Error: z.string(), Cause: z.string().optional() });
export const RoundFailureInputSchema = z.object({ now: z.iso.datetime({ offset: true }), error: TaskErrorSchema });
export type RoundFailureInput = z.infer<typeof RoundFailureInputSchema>;
