/**
 * Executes the weekly workflow's synthesized Amazon States Language definition with
 * aws-local-stepfunctions, each Task state bound by its state name (lambdas/contracts/weekly-workflow.ts)
 * to a handler created in-process. Retry, Catch, timeouts, ResultPath and the context object
 * (`$$.Execution.StartTime`, `$$.Execution.Name`) behave as the definition says; only Retry waits are
 * shortened to keep a local run short.
 *
 * A Task whose Resource is the function's ARN (LambdaInvoke with payloadResponseOnly) receives the
 * payload and returns the handler's result; one that uses `arn:aws:states:::lambda:invoke` receives
 * `{ FunctionName, Payload }` and returns `{ Payload }`, as the service integration does.
 */
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import { type FunctionIdentity, invokeLambda, type LambdaHandler } from "./lambda-runtime.js";

// aws-local-stepfunctions 3 uses Promise.withResolvers (Node ≥ 22); without it every Task fails on Node 20.
const promiseStatics = Promise as unknown as { withResolvers?: () => unknown };
if (typeof promiseStatics.withResolvers !== "function") {
  promiseStatics.withResolvers = <T>() => {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

export interface TaskBinding {
  fn: FunctionIdentity;
  handler: LambdaHandler;
}

export interface WorkflowExecution {
  name: string;
  status: "SUCCEEDED" | "FAILED";
  output: Record<string, unknown> | undefined;
  error: string | undefined;
  /** State names in the order they were entered. */
  statesEntered: string[];
  /** Task states that were retried, with how often. */
  retries: Record<string, number>;
}

/** The Task states at the top level of the definition, with the function each one invokes. */
export function taskStates(definition: Record<string, unknown>): { state: string; functionArn: string; serviceIntegration: boolean }[] {
  const states = (definition.States ?? {}) as Record<string, { Type?: string; Resource?: string; Parameters?: Record<string, unknown> }>;
  return Object.entries(states)
    .filter(([, s]) => s.Type === "Task")
    .map(([state, s]) => {
      const serviceIntegration = String(s.Resource).startsWith("arn:aws:states:::lambda:invoke");
      const functionArn = serviceIntegration ? String(s.Parameters?.FunctionName ?? "") : String(s.Resource);
      return { state, functionArn, serviceIntegration };
    });
}

/** Runs one execution of `definition` named `name` with input `{ now }`. */
export async function runWorkflow(
  definition: Record<string, unknown>,
  bindings: Record<string, TaskBinding>,
  options: { name: string; now: string; stateMachineArn: string; waitTimeOverrides?: Record<string, number> },
): Promise<WorkflowExecution> {
  const tasks = taskStates(definition);
  const missing = tasks.filter((t) => !bindings[t.state]).map((t) => t.state);
  if (missing.length) throw new Error(`no handler bound to Task state(s) ${missing.join(", ")} of the synthesized workflow`);
  const serviceIntegration = new Map(tasks.map((t) => [t.state, t.serviceIntegration]));
  const localHandlers: Record<string, (input: unknown) => Promise<never>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const { state } of tasks) {
    const binding = bindings[state] as TaskBinding;
    retryIntervalOverrides[state] = 200;
    localHandlers[state] = async (input) => {
      const wrapped = serviceIntegration.get(state);
      const payload = wrapped ? (input as { Payload?: unknown })?.Payload : input;
      const result = await invokeLambda(binding.handler, payload, binding.fn);
      return (wrapped ? { Payload: result } : result) as never;
    };
  }
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: false },
  });
  const executionArn = `${options.stateMachineArn.replace(":stateMachine:", ":execution:")}:${options.name}`;
  const execution = machine.run({ now: options.now } as never, {
    overrides: {
      taskResourceLocalHandlers: localHandlers as never,
      retryIntervalOverrides,
      ...(options.waitTimeOverrides ? { waitTimeOverrides: options.waitTimeOverrides } : {}),
    },
    context: {
      Execution: { Id: executionArn, Name: options.name, StartTime: options.now, Input: { now: options.now }, RoleArn: "local" },
      StateMachine: { Id: options.stateMachineArn, Name: options.stateMachineArn.split(":").pop() ?? "local" },
    } as never,
  });
  const statesEntered: string[] = [];
  const retries: Record<string, number> = {};
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      const e = event as { type: string; state?: { name?: string } };
      if (e.type === "StateEntered" && e.state?.name) statesEntered.push(e.state.name);
      if (e.type === "StateRetried" && e.state?.name) retries[e.state.name] = (retries[e.state.name] ?? 0) + 1;
    }
  })();
  try {
    const output = (await execution.result) as Record<string, unknown>;
    await collecting.catch(() => undefined);
    return { name: options.name, status: "SUCCEEDED", output, error: undefined, statesEntered, retries };
  } catch (error) {
    await collecting.catch(() => undefined);
    const cause = (error as { cause?: unknown }).cause;
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return {
      name: options.name,
      status: "FAILED",
      output: undefined,
      error: cause instanceof Error ? `${detail} (${cause.name}: ${cause.message})` : detail,
      statesEntered,
      retries,
    };
  }
}
