/**
 * The weekly workflow in the local run: the synthesized state machine executed with each Task bound to
 * its handler (workflow-runner.ts), once for the first week (refit on the prior, select, notify) and
 * once seven days later, when the refit learns from the completions. The stages are listed in local-pipeline.ts.
 */
import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { WEEKLY_WORKFLOW_RESULT_PATHS, WEEKLY_WORKFLOW_STATES } from "../../lambdas/contracts/weekly-workflow.js";
import { roundIdOf } from "../../lambdas/domain/iso-week.js";
import type { RefitOutput } from "../../lambdas/domain/refit.js";
import type { SelectOutput } from "../../lambdas/domain/selection-round.js";
import { bindHandler, type HandlerKind } from "./lambda-bindings.js";
import { identity, type RunContext, scanRecords } from "./local-run-context.js";
import type { LocalWiring } from "./local-wiring.js";
import { runWorkflow, type TaskBinding, taskStates, type WorkflowExecution } from "./workflow-runner.js";

/** A pending stack a round selected from, with the V and T it used. */
export interface PoolEntry {
  stackId: string;
  value: number;
  seconds: number;
}

export type LatestTimeModel = Awaited<ReturnType<DynamoTimeModelStore["latest"]>>;

export interface FirstWeek {
  readonly definition: Record<string, unknown>;
  readonly stateMachineArn: string;
  readonly bindings: Record<string, TaskBinding>;
  readonly timeModels: DynamoTimeModelStore;
  readonly modelBefore: LatestTimeModel;
  readonly now: string;
  readonly execution: WorkflowExecution;
  readonly selection: {
    roundId: string;
    selected: { stackId: string }[];
    budgetSeconds: number;
    totalPredictedSeconds: number;
    predictedInterval?: { lowSeconds: number; highSeconds: number; level: number };
    modelVersion?: string;
    waitingForRescore?: number;
  };
  /** The pending stacks the round selected from, with the V and T it used. */
  readonly pool: PoolEntry[];
  /** Every record right after the round. */
  readonly records: Record<string, unknown>[];
}

/** The synthesized state machine run locally for the first week: refit (the prior), select, notify. */
export async function runFirstWeek(run: RunContext): Promise<FirstWeek> {
  const machine = run.wiring.stateMachine;
  if (!machine) throw new Error("the synthesized stack has no AWS::StepFunctions::StateMachine (weekly workflow) yet");
  const bindings = await workflowBindings(machine.definition, run.wiring, run.bindingOptions);
  const timeModels = new DynamoTimeModelStore(run.dynamo, run.roles.tableName);
  const modelBefore = await timeModels.latest();
  const now = new Date(run.options.firstRoundAt ?? Date.now()).toISOString();
  const round = roundIdOf(now, run.scheduleTimeZone);
  run.report(`5/8 weekly workflow ${round}: the synthesized state machine run locally (Tasks ${Object.keys(bindings).join(", ")})…`);
  const execution = await runWorkflow(machine.definition, bindings, { name: round, now, stateMachineArn: machine.arn });
  if (execution.status !== "SUCCEEDED") throw new Error(`workflow ${round} failed: ${execution.error}`);
  const selection = resultAt(execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.select) as FirstWeek["selection"];
  const records = await scanRecords(run.dynamo, run.roles.tableName);
  const pool = records
    .filter((r) => isStack(r) && (r.status === "pending" || (r.status === "selected" && r.selectedBy === round)))
    .map((r) => ({
      stackId: String(r.stackId),
      value: (r.scores as { stackUncertainty: number }).stackUncertainty,
      seconds: (r.prediction as { predictedSeconds: number }).predictedSeconds,
    }));
  return {
    definition: machine.definition,
    stateMachineArn: machine.arn,
    bindings,
    timeModels,
    modelBefore,
    now,
    execution,
    selection,
    pool,
    records,
  };
}

/** Next week's workflow: the refit learns from the completions, then selects and notifies again. */
export type SecondWeek = Awaited<ReturnType<typeof runSecondWeek>>;

export async function runSecondWeek(run: RunContext, week1: FirstWeek, completed: number) {
  const now = new Date(Date.parse(week1.now) + 7 * 86_400_000).toISOString();
  const round = roundIdOf(now, run.scheduleTimeZone);
  run.report(`      next week's workflow ${round}: ${WEEKLY_WORKFLOW_STATES.refit} fits α, β, γ on the ${completed} completions…`);
  const execution = await runWorkflow(week1.definition, week1.bindings, { name: round, now, stateMachineArn: week1.stateMachineArn });
  if (execution.status !== "SUCCEEDED") throw new Error(`workflow ${round} failed: ${execution.error}`);
  const refit = resultAt(execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.refit) as RefitOutput;
  const selection = resultAt(execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.select) as SelectOutput;
  return { execution, refit, selection, modelAfter: await week1.timeModels.latest() };
}

const STATE_HANDLERS: Record<string, HandlerKind> = {
  [WEEKLY_WORKFLOW_STATES.refit]: "refit",
  [WEEKLY_WORKFLOW_STATES.select]: "select",
  [WEEKLY_WORKFLOW_STATES.notify]: "notify",
  [WEEKLY_WORKFLOW_STATES.recordFailure]: "roundFailure",
};

/** Each Task state of the definition bound to its handler, created with the environment of the function the Task invokes. */
async function workflowBindings(
  definition: Record<string, unknown>,
  wiring: LocalWiring,
  options: Parameters<typeof bindHandler>[2],
): Promise<Record<string, TaskBinding>> {
  const bindings: Record<string, TaskBinding> = {};
  for (const task of taskStates(definition)) {
    const kind = STATE_HANDLERS[task.state];
    if (!kind) throw new Error(`Task state ${task.state} is not one of the weekly workflow's states (contracts/weekly-workflow.ts)`);
    const fn = wiring.functions.find((f) => f.arn === task.functionArn || f.name === task.functionArn);
    if (!fn) throw new Error(`Task state ${task.state} invokes ${task.functionArn}, which is not a function of the template`);
    bindings[task.state] = { fn: identity(fn), handler: await bindHandler(kind, fn.environment, options) };
  }
  return bindings;
}

function resultAt(output: Record<string, unknown> | undefined, path: string): unknown {
  let node: unknown = output;
  for (const key of path
    .replace(/^\$\.?/, "")
    .split(".")
    .filter(Boolean))
    node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

function isStack(r: Record<string, unknown>): boolean {
  return typeof r.stackId === "string" && r.kind !== "study" && r.scores !== undefined;
}
