/**
 * The start-round handler against moto server's Step Functions with the real SDK v3 client and adapter:
 * one execution per ISO week, named `select-<week>`, with `{ now: scheduledTime }` as input; a repeated
 * trigger in the same week is a no-op.
 */

import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from "@aws-sdk/client-sfn";
import { beforeEach, describe, expect, it } from "vitest";
import { SfnWorkflowStarter } from "../../lambdas/adapters/sfn-workflow-starter.js";
import type { WorkflowStart } from "../../lambdas/domain/workflow-starter.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { createStartRoundHandler } from "../../lambdas/handlers/start-round-handler.js";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";
import { lambdaContext } from "../support/in-memory-ports.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const DEFINITION = JSON.stringify({ StartAt: "RefitTimeModel", States: { RefitTimeModel: { Type: "Pass", End: true } } });

let sfn: SFNClient;
let stateMachineArn: string;
let start: (event: unknown) => Promise<WorkflowStart>;

async function executions() {
  const out = await sfn.send(new ListExecutionsCommand({ stateMachineArn }));
  return (out.executions ?? []).map((e) => e.name).sort();
}

beforeEach(async () => {
  sfn = new SFNClient({ ...LOCAL_AWS, endpoint: aws.endpoint });
  const created = await sfn.send(
    new CreateStateMachineCommand({ name: "weekly", definition: DEFINITION, roleArn: "arn:aws:iam::123456789012:role/weekly-workflow" }),
  );
  stateMachineArn = created.stateMachineArn as string;
  const handler = createStartRoundHandler({
    workflow: new SfnWorkflowStarter(sfn, stateMachineArn),
    timeZone: "UTC",
    log: lambdaLogger("start-round", () => {}),
  });
  start = (event) => handler(event, lambdaContext);
});

describe("start-round handler on moto Step Functions", () => {
  it("starts one execution per ISO week; a second trigger in the week is a no-op", async () => {
    const first = await start({ scheduledTime: "2026-11-23T06:00:00Z" });
    expect(first).toMatchObject({ executionName: "select-2026-W48", started: true });
    expect(first.executionArn).toMatch(/:execution:weekly:select-2026-W48$/);
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: first.executionArn }));
    expect(described.name).toBe("select-2026-W48");
    expect(JSON.parse(described.input as string)).toEqual({ now: "2026-11-23T06:00:00Z" });

    // Same ISO week, a later trigger (different input): refused by Step Functions, reported as not started.
    expect(await start({ scheduledTime: "2026-11-26T18:30:00Z" })).toEqual({ executionName: "select-2026-W48", started: false });
    expect(await executions()).toEqual(["select-2026-W48"]);

    // Next week: a second execution.
    const next = await start({ scheduledTime: "2026-11-30T06:00:00Z" });
    expect(next).toMatchObject({ executionName: "select-2026-W49", started: true });
    expect(next.executionArn).not.toBe(first.executionArn);
    expect(await executions()).toEqual(["select-2026-W48", "select-2026-W49"]);
  });

  it("an exact duplicate delivery while the execution runs is idempotent in Step Functions: still one execution", async () => {
    const a = await start({ scheduledTime: "2026-11-23T06:00:00Z" });
    const b = await start({ scheduledTime: "2026-11-23T06:00:00Z" });
    expect(b.executionArn).toBe(a.executionArn);
    expect(await executions()).toEqual(["select-2026-W48"]);
  });

  it("concurrent triggers in one week make exactly one execution", async () => {
    const outs = await Promise.all(
      ["2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z"].map((t) => start({ scheduledTime: t })),
    );
    expect(outs.filter((o) => o.started)).toHaveLength(1);
    expect(await executions()).toEqual(["select-2026-W48"]);
  });

  it("a missing state machine is an error, not a no-op", async () => {
    const handler = createStartRoundHandler({
      workflow: new SfnWorkflowStarter(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:absent"),
      timeZone: "UTC",
      log: lambdaLogger("test", () => {}),
    });
    await expect(handler({ scheduledTime: "2026-11-23T06:00:00Z" }, lambdaContext)).rejects.toMatchObject({
      name: "StateMachineDoesNotExist",
    });
  });
});
