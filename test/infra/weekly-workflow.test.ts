import { Match } from "aws-cdk-lib/assertions";
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import { describe, expect, it } from "vitest";
import { WEEKLY_WORKFLOW_RESULT_PATHS, WEEKLY_WORKFLOW_STATES } from "../../lambdas/contracts/weekly-workflow.js";
import { arn, buildStack, expectMatch, joinIntrinsics, logicalId, ref, roleStatements } from "./stack-fixture.js";

const { stack, t } = buildStack({ schedule: { expression: "cron(30 7 ? * TUE *)", timezone: "Europe/Vienna" } });
const S = WEEKLY_WORKFLOW_STATES;
const machine = Object.values(t.findResources("AWS::StepFunctions::StateMachine"))[0];
const definitionText = joinIntrinsics(machine?.Properties.DefinitionString);
const definition = JSON.parse(definitionText) as { StartAt: string; States: Record<string, Record<string, unknown>> };
const fnArn = (fn: { function: import("constructs").IConstruct }) => `\${${logicalId(fn.function)}.Arn}`;

const retry = Match.arrayWith([
  Match.objectLike({
    ErrorEquals: Match.arrayWith(["Lambda.ServiceException", "Lambda.TooManyRequestsException"]),
    BackoffRate: 2,
    MaxDelaySeconds: Match.anyValue(),
    JitterStrategy: "FULL",
  }),
  Match.objectLike({
    ErrorEquals: ["States.TaskFailed", "States.Timeout"],
    BackoffRate: 2,
    MaxDelaySeconds: Match.anyValue(),
    JitterStrategy: "FULL",
  }),
]);
const task = (
  fn: { function: import("constructs").IConstruct },
  payload: Record<string, string>,
  resultPath: string,
  next: string,
  catchTo: string,
  catchPath: string,
) =>
  Match.objectLike({
    Type: "Task",
    Resource: fnArn(fn),
    Parameters: payload,
    ResultPath: resultPath,
    TimeoutSeconds: Match.anyValue(),
    Retry: retry,
    Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: catchPath, Next: catchTo }],
    Next: next,
  });

describe("weekly workflow state machine (JSONPath, per lambdas/contracts/weekly-workflow.ts)", () => {
  it("runs RefitTimeModel → SelectStacks → NotifyAnnotators → RoundDone, each Task failing over to RecordRoundFailure → RoundFailed", () => {
    expectMatch(
      Match.serializedJson(
        Match.objectLike({
          StartAt: S.refit,
          States: {
            [S.refit]: task(stack.refit, { "now.$": "$.now" }, WEEKLY_WORKFLOW_RESULT_PATHS.refit, S.select, S.recordFailure, "$.error"),
            [S.select]: task(stack.select, { "now.$": "$.now" }, WEEKLY_WORKFLOW_RESULT_PATHS.select, S.notify, S.recordFailure, "$.error"),
            [S.notify]: task(
              stack.notify,
              { "now.$": "$.now", "roundId.$": "$.selection.roundId" },
              WEEKLY_WORKFLOW_RESULT_PATHS.notify,
              S.done,
              S.recordFailure,
              "$.error",
            ),
            [S.recordFailure]: task(
              stack.roundFailure,
              { "now.$": "$.now", "error.$": "$.error" },
              WEEKLY_WORKFLOW_RESULT_PATHS.recordFailure,
              S.failed,
              S.failed,
              "$.recordFailureError",
            ),
            [S.done]: { Type: "Succeed" },
            [S.failed]: Match.objectLike({ Type: "Fail", Error: "RoundFailed" }),
          },
          // JSONPath (the local runner ignores JSONata), and the whole round is bounded.
          QueryLanguage: Match.absent(),
          TimeoutSeconds: 7200,
        }),
      ),
      definitionText,
    );
  });

  it("has exactly the contract's states, and every Task has Retry with backoff and full jitter, a Catch and a timeout", () => {
    expect(Object.keys(definition.States).sort()).toEqual(Object.values(S).sort());
    const tasks = Object.entries(definition.States).filter(([, s]) => s.Type === "Task");
    expect(tasks).toHaveLength(4);
    for (const [name, state] of tasks) {
      expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
      expect((state.Retry as unknown[]).length, name).toBeGreaterThan(0);
      for (const r of state.Retry as Record<string, unknown>[]) expect(r, name).toMatchObject({ JitterStrategy: "FULL", BackoffRate: 2 });
      expect(state.Catch, name).toEqual([expect.objectContaining({ ErrorEquals: ["States.ALL"] })]);
      // payloadResponseOnly: the Lambda ARN itself, not arn:aws:states:::lambda:invoke.
      expect(String(state.Resource), name).not.toContain("states:::lambda:invoke");
    }
    // Task timeout = function timeout + 30 s.
    expect(definition.States[S.select]?.TimeoutSeconds).toBe(330);
  });

  it("logs ALL events with execution data to a KMS log group and traces with X-Ray", () => {
    t.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: "ALL",
        IncludeExecutionData: true,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: arn(stack.workflow.logGroup) } }],
      },
    });
    t.hasResourceProperties("AWS::Logs::LogGroup", { KmsKeyId: arn(stack.dataKey.key), RetentionInDays: 365 });
  });

  it("may invoke its four Task functions and nothing else", () => {
    const policy = (stack.workflow.stateMachine.role as import("../../infra/managed-policy-role.js").ManagedPolicyRole).policy;
    const invoke = roleStatements(t, policy).filter((s) => JSON.stringify(s.Action).includes("lambda:"));
    const resources = invoke.flatMap((s) => [s.Resource].flat()).map((r) => JSON.stringify(r));
    for (const fn of [stack.refit, stack.select, stack.notify, stack.roundFailure])
      expect(resources).toContain(JSON.stringify(arn(fn.function)));
    expect(resources.join()).not.toContain(logicalId(stack.complete.function));
    expect(resources.join()).not.toContain(logicalId(stack.scoring.ingest.function));
  });
});

// aws-local-stepfunctions 3 uses Promise.withResolvers (Node ≥ 22).
const promiseStatics = Promise as unknown as { withResolvers?: () => unknown };
promiseStatics.withResolvers ??= () => {
  let resolve: unknown;
  let reject: unknown;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** Runs the synthesized definition locally with each Task bound by state name to `handlers`; records each Task's input. */
const runLocally = async (handlers: Record<string, (input: unknown) => unknown>) => {
  const inputs: Record<string, unknown[]> = {};
  const taskResourceLocalHandlers = Object.fromEntries(
    Object.entries(handlers).map(([state, handler]) => [
      state,
      async (input: unknown) => {
        inputs[state] = [...(inputs[state] ?? []), input];
        return handler(input) as never;
      },
    ]),
  );
  // The Lambda ARNs are CloudFormation references in the template; any well-formed ARN will do locally.
  const local = JSON.parse(definitionText.replace(/\$\{(\w+)\.Arn\}/g, "arn:aws:lambda:eu-central-1:123456789012:function:$1"));
  const machine = new StateMachine(local as StateMachineDefinition);
  const retryIntervalOverrides = Object.fromEntries(Object.keys(handlers).map((state) => [state, 0]));
  const run = machine.run({ now: "2026-11-23T06:00:00Z" }, { overrides: { taskResourceLocalHandlers, retryIntervalOverrides } });
  try {
    return { output: (await run.result) as Record<string, unknown>, error: undefined, inputs };
  } catch (error) {
    return { output: undefined, error: error as Error, inputs };
  }
};

describe("weekly workflow, executed locally (aws-local-stepfunctions)", () => {
  it("passes now and the round id along and keeps each result at its contract path", async () => {
    const { output, error, inputs } = await runLocally({
      [S.refit]: () => ({ version: 3 }),
      [S.select]: () => ({ roundId: "select-2026-W48", selected: [] }),
      [S.notify]: () => ({ sent: 1 }),
      [S.recordFailure]: () => ({}),
    });
    expect(error).toBeUndefined();
    expect(inputs[S.notify]).toEqual([{ now: "2026-11-23T06:00:00Z", roundId: "select-2026-W48" }]);
    expect(output).toEqual({
      now: "2026-11-23T06:00:00Z",
      refit: { version: 3 },
      selection: { roundId: "select-2026-W48", selected: [] },
      notification: { sent: 1 },
    });
    expect(inputs[S.recordFailure]).toBeUndefined();
  });

  it("retries a failing Task, then records the failure with the error and ends in RoundFailed", async () => {
    const boom = () => {
      const e = new Error("SES throttled");
      e.name = "TooManyRequestsException";
      throw e;
    };
    const { error, inputs } = await runLocally({
      [S.refit]: () => ({}),
      [S.select]: () => ({ roundId: "select-2026-W48" }),
      [S.notify]: boom,
      [S.recordFailure]: () => ({ recorded: true }),
    });
    expect(error?.message).toMatch(/The weekly round failed/);
    expect(inputs[S.notify]).toHaveLength(3); // 1 + taskRetries (2)
    expect(inputs[S.recordFailure]).toEqual([
      { now: "2026-11-23T06:00:00Z", error: expect.objectContaining({ Error: "TooManyRequestsException" }) },
    ]);
  });
});

describe("weekly schedule", () => {
  it("invokes start-round on the configured cron in the configured time zone with the scheduled time, with retries and a DLQ", () => {
    t.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "cron(30 7 ? * TUE *)",
      ScheduleExpressionTimezone: "Europe/Vienna",
      FlexibleTimeWindow: { Mode: "OFF" },
      State: "ENABLED",
      Target: {
        Arn: arn(stack.workflow.startRound.function),
        RoleArn: Match.anyValue(),
        Input: JSON.stringify({ scheduledTime: "<aws.scheduler.scheduled-time>" }),
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 10 },
        DeadLetterConfig: { Arn: arn(stack.workflow.triggerDeadLetterQueue) },
      },
    });
  });

  it("every Lambda that names a round reads its ISO week in the schedule's time zone (SCHEDULE_TIMEZONE)", () => {
    const env = (fn: { function: import("constructs").IConstruct }) =>
      t.toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables as Record<string, unknown>;
    for (const fn of [stack.workflow.startRound, stack.select, stack.roundFailure, stack.complete]) {
      expect(env(fn).SCHEDULE_TIMEZONE, logicalId(fn.function)).toBe("Europe/Vienna");
    }
  });

  it("start-round (asynchronous) dead-letters to the trigger DLQ, which is encrypted and alarmed", () => {
    t.hasResourceProperties("AWS::Lambda::Function", {
      Role: arn(stack.workflow.startRound.role),
      DeadLetterConfig: { TargetArn: arn(stack.workflow.triggerDeadLetterQueue) },
    });
    t.hasResourceProperties("AWS::SQS::Queue", { KmsMasterKeyId: arn(stack.dataKey.key), MessageRetentionPeriod: 14 * 24 * 3600 });
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [logicalId(stack.workflow.triggerDeadLetterQueue), "QueueName"] } }],
      AlarmActions: [ref(stack.alarms.topic)],
    });
  });

  it("alarms on failed and timed-out rounds", () => {
    for (const metric of ["ExecutionsFailed", "ExecutionsTimedOut"]) {
      t.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/States",
        MetricName: metric,
        Dimensions: [{ Name: "StateMachineArn", Value: ref(stack.workflow.stateMachine) }],
        AlarmActions: [ref(stack.alarms.topic)],
      });
    }
  });
});
