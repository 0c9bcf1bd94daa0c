import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { SfnWorkflowStarter } from "../../lambdas/adapters/sfn-workflow-starter.js";
import { EnvironmentError } from "../../lambdas/contracts/env.js";
import type { WeeklyExecutionInput } from "../../lambdas/contracts/weekly-workflow.js";
import type { WorkflowStart, WorkflowStarter } from "../../lambdas/domain/workflow-starter.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { createStartRoundHandler, startRoundDepsFromEnvironment } from "../../lambdas/handlers/start-round-handler.js";
import { lambdaContext } from "../support/in-memory-ports.js";

/** Executions by name, refusing a second one like Step Functions does. */
class InMemoryWorkflow implements WorkflowStarter {
  readonly executions = new Map<string, WeeklyExecutionInput>();
  async start(executionName: string, input: WeeklyExecutionInput): Promise<WorkflowStart> {
    if (this.executions.has(executionName)) return { executionName, started: false };
    this.executions.set(executionName, input);
    return { executionName, started: true, executionArn: `arn:aws:states:us-east-1:1:execution:weekly:${executionName}` };
  }
}

function setup(workflow: WorkflowStarter = new InMemoryWorkflow(), timeZone = "UTC") {
  const lines: string[] = [];
  const handler = createStartRoundHandler({ workflow, timeZone, log: lambdaLogger("start-round", (line) => lines.push(line)) });
  return { handler, lines, workflow };
}

describe("start-round handler", () => {
  it("starts one execution per ISO week, named after it, with { now: scheduledTime }", async () => {
    const workflow = new InMemoryWorkflow();
    const { handler, lines } = setup(workflow);
    expect(await handler({ scheduledTime: "2026-11-23T06:00:00Z" }, lambdaContext)).toEqual({
      executionName: "select-2026-W48",
      started: true,
      executionArn: "arn:aws:states:us-east-1:1:execution:weekly:select-2026-W48",
    });
    // Sunday evening is still W48: a no-op.
    expect(await handler({ scheduledTime: "2026-11-29T23:59:59Z" }, lambdaContext)).toEqual({
      executionName: "select-2026-W48",
      started: false,
    });
    expect(await handler({ scheduledTime: "2026-11-30T00:00:00Z" }, lambdaContext)).toMatchObject({
      executionName: "select-2026-W49",
      started: true,
    });
    // New Year's Day 2027 belongs to 2026-W53; a time zone offset is honoured (still Thursday in the UTC schedule).
    expect(await handler({ scheduledTime: "2027-01-01T01:00:00+02:00" }, lambdaContext)).toMatchObject({
      executionName: "select-2026-W53",
      started: true,
    });
    expect([...workflow.executions.entries()]).toEqual([
      ["select-2026-W48", { now: "2026-11-23T06:00:00Z" }],
      ["select-2026-W49", { now: "2026-11-30T00:00:00Z" }],
      ["select-2026-W53", { now: "2027-01-01T01:00:00+02:00" }],
    ]);
    expect(lines.map((l) => JSON.parse(l).message)).toEqual([
      "round started",
      "round already started this week; nothing to do",
      "round started",
      "round started",
    ]);
  });

  it("names the execution after the ISO week in the schedule's time zone: both Vienna Mondays around summer time start", async () => {
    // cron(30 1 ? * MON *) in Europe/Vienna fires at 2027-03-22T00:30Z (CET) and 2027-03-28T23:30Z (CEST).
    const workflow = new InMemoryWorkflow();
    const { handler, lines } = setup(workflow, "Europe/Vienna");
    expect(await handler({ scheduledTime: "2027-03-22T00:30:00Z" }, lambdaContext)).toMatchObject({
      executionName: "select-2027-W12",
      started: true,
    });
    expect(await handler({ scheduledTime: "2027-03-28T23:30:00Z" }, lambdaContext)).toMatchObject({
      executionName: "select-2027-W13",
      started: true,
    });
    expect([...workflow.executions.keys()]).toEqual(["select-2027-W12", "select-2027-W13"]);
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(["round started", "round started"]);
    // Read in UTC, the second Monday would have been taken for a repeat of the first.
    const utc = setup(new InMemoryWorkflow(), "UTC").handler;
    await utc({ scheduledTime: "2027-03-22T00:30:00Z" }, lambdaContext);
    expect(await utc({ scheduledTime: "2027-03-28T23:30:00Z" }, lambdaContext)).toEqual({
      executionName: "select-2027-W12",
      started: false,
    });
  });

  it.each([{}, { scheduledTime: "next monday" }, { time: "2026-11-23T06:00:00Z" }, null, { scheduledTime: 1764000000 }])(
    "rejects event %j with InvalidInputError and starts nothing",
    async (event) => {
      const workflow = new InMemoryWorkflow();
      const { handler } = setup(workflow);
      await expect(handler(event, lambdaContext)).rejects.toThrow(InvalidInputError);
      expect(workflow.executions.size).toBe(0);
    },
  );

  it("propagates other start failures (the scheduler retries) and logs their name", async () => {
    const failing: WorkflowStarter = {
      start: async () => {
        const error = new Error("Rate exceeded");
        error.name = "ThrottlingException";
        throw error;
      },
    };
    const { handler, lines } = setup(failing);
    await expect(handler({ scheduledTime: "2026-11-23T06:00:00Z" }, lambdaContext)).rejects.toThrow("Rate exceeded");
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
      level: "ERROR",
      executionName: "select-2026-W48",
      code: "ThrottlingException",
    });
  });

  it("parses the environment at cold start and names bad variables", () => {
    const deps = startRoundDepsFromEnvironment({ STATE_MACHINE_ARN: "arn:x", SCHEDULE_TIMEZONE: "Europe/Vienna" });
    expect(deps.workflow).toBeInstanceOf(SfnWorkflowStarter);
    expect(deps.timeZone).toBe("Europe/Vienna");
    expect(() => startRoundDepsFromEnvironment({})).toThrow(EnvironmentError);
    expect(() => startRoundDepsFromEnvironment({})).toThrow(/STATE_MACHINE_ARN.*SCHEDULE_TIMEZONE/);
    expect(() => startRoundDepsFromEnvironment({ STATE_MACHINE_ARN: "arn:x", SCHEDULE_TIMEZONE: "Europe/Viena" })).toThrow(
      /invalid environment \(SCHEDULE_TIMEZONE\).*IANA time zone/,
    );
  });
});

describe("SfnWorkflowStarter", () => {
  const ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:weekly";
  const clientThat = (send: (command: StartExecutionCommand) => Promise<unknown>) => ({ send }) as unknown as SFNClient;

  it("sends StartExecution with the name and JSON input and returns the execution ARN", async () => {
    const sent: StartExecutionCommand[] = [];
    const starter = new SfnWorkflowStarter(
      clientThat(async (command) => {
        sent.push(command);
        return { executionArn: `${ARN}:x`, startDate: new Date() };
      }),
      ARN,
    );
    expect(await starter.start("select-2026-W48", { now: "2026-11-23T06:00:00Z" })).toEqual({
      executionName: "select-2026-W48",
      started: true,
      executionArn: `${ARN}:x`,
    });
    expect(sent[0]).toBeInstanceOf(StartExecutionCommand);
    expect(sent[0]?.input).toEqual({ stateMachineArn: ARN, name: "select-2026-W48", input: '{"now":"2026-11-23T06:00:00Z"}' });
  });

  it("maps ExecutionAlreadyExists to started: false and rethrows anything else", async () => {
    const exists = new SfnWorkflowStarter(
      clientThat(async () => {
        throw new ExecutionAlreadyExists({ message: "Execution Already Exists", $metadata: {} });
      }),
      ARN,
    );
    expect(await exists.start("select-2026-W48", { now: "2026-11-23T06:00:00Z" })).toEqual({
      executionName: "select-2026-W48",
      started: false,
    });
    const missing = new SfnWorkflowStarter(
      clientThat(async () => {
        const error = new Error("State Machine Does Not Exist");
        error.name = "StateMachineDoesNotExist";
        throw error;
      }),
      ARN,
    );
    await expect(missing.start("select-2026-W48", { now: "2026-11-23T06:00:00Z" })).rejects.toThrow("State Machine Does Not Exist");
  });
});
