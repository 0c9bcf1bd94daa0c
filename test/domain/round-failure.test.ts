import { describe, expect, it } from "vitest";
import { describeTaskError, recordRoundFailure, restoreRoundStacks } from "../../lambdas/domain/round-failure.js";
import { planRound, runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";
import { pendingStack } from "../support/round-fixtures.js";

const NOW = "2026-11-26T06:00:00.000Z"; // 2026-W48
const ROUND = "select-2026-W48";
const SETTINGS = { budgetSeconds: 3600, resolutionSeconds: 1, timeZone: "UTC" };
const ERROR = { Error: "States.Timeout", Cause: "Task timed out" };
const clock = () => "2026-11-26T06:05:00.000Z";

async function pool(n: number) {
  const records = new InMemoryRecordStore();
  for (let i = 0; i < n; i++) await records.createStack(pendingStack(i, 600 + i * 30));
  return records;
}

/** A select run that claimed the round and marked `marked` of its planned stacks, then died. */
async function crashedMidSelection(records: InMemoryRecordStore, marked: number) {
  const plan = planRound(await records.listByStatus("pending"), NOW, SETTINGS);
  expect(await records.createRound(plan.round)).toBe(true);
  for (const id of plan.round.selected.slice(0, marked)) await records.transition(id, "pending", "selected", { selectedBy: ROUND }, NOW);
  return plan.round;
}

describe("describeTaskError", () => {
  it("keeps the Lambda error type and message, drops the trace, one line, bounded", () => {
    const cause = JSON.stringify({
      errorType: "ThrottlingException",
      errorMessage: "Rate exceeded",
      trace: ["at x (/var/task/index.js:1:1)"],
    });
    expect(describeTaskError({ Error: "ThrottlingException", Cause: cause })).toBe("ThrottlingException: Rate exceeded");
    expect(describeTaskError({ Error: "Lambda.Unknown", Cause: cause })).toBe("Lambda.Unknown: ThrottlingException: Rate exceeded");
    expect(describeTaskError({ Error: "States.Timeout", Cause: "line one\nline two" })).toBe("States.Timeout: line one line two");
    expect(describeTaskError({ Error: "States.Runtime" })).toBe("States.Runtime");
    expect(describeTaskError({ Error: "X", Cause: "y".repeat(5000) }).length).toBe(1000);
  });
});

describe("recordRoundFailure", () => {
  it("no round yet: creates it failed with the error and an empty plan", async () => {
    const records = await pool(3);
    expect(await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" })).toEqual({
      roundId: ROUND,
      status: "failed",
      restoredToPool: 0,
    });
    expect(await records.getRound(ROUND)).toMatchObject({
      status: "failed",
      error: "States.Timeout: Task timed out",
      selected: [],
      failedAt: clock(),
    });
    expect(await records.listByStatus("pending")).toHaveLength(3);
  });

  it("records the round of now's ISO week in the schedule's time zone", async () => {
    const records = await pool(1);
    // Sunday 23:30 UTC is Monday 00:30 in Vienna: the failed run was that Monday's (W49), not W48's.
    const out = await recordRoundFailure("2026-11-29T23:30:00.000Z", ERROR, { records, clock, timeZone: "Europe/Vienna" });
    expect(out).toEqual({ roundId: "select-2026-W49", status: "failed", restoredToPool: 0 });
    expect(await records.getRound("select-2026-W49")).toMatchObject({ status: "failed" });
    expect(await records.getRound(ROUND)).toBeUndefined();
  });

  it("selecting: puts every marked stack back (pool unchanged), marks the round failed, idempotently", async () => {
    const records = await pool(8);
    const before = (await records.listByStatus("pending")).map((r) => r.stackId);
    const round = await crashedMidSelection(records, 2);
    expect(round.selected.length).toBeGreaterThan(2);
    // A stack marked by another round stays where it is.
    await records.createStack({ ...pendingStack(50, 100), status: "selected", selectedBy: "select-2026-W47" });
    const out = await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" });
    expect(out).toEqual({ roundId: ROUND, status: "failed", restoredToPool: 2 });
    expect((await records.listByStatus("pending")).map((r) => r.stackId)).toEqual(before);
    for (const r of await records.listByStatus("pending")) expect(r.selectedBy).toBeUndefined();
    expect((await records.getStack("stack-050"))?.selectedBy).toBe("select-2026-W47");
    expect(await records.getRound(ROUND)).toMatchObject({ status: "failed", restoredToPool: 2, error: "States.Timeout: Task timed out" });
    // The failure state retried: nothing more to restore, the count is kept.
    expect(await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" })).toEqual({
      roundId: ROUND,
      status: "failed",
      restoredToPool: 0,
    });
    expect((await records.getRound(ROUND))?.restoredToPool).toBe(2);
  });

  it("completed (notify failed later): records the error, leaves stacks selected", async () => {
    const records = await pool(8);
    const out = await runSelectionRound(NOW, { records, settings: SETTINGS });
    const result = await recordRoundFailure(
      NOW,
      { Error: "MessageRejected", Cause: "Email address is not verified." },
      { records, clock, timeZone: "UTC" },
    );
    expect(result).toEqual({ roundId: ROUND, status: "completed", restoredToPool: 0 });
    expect(await records.getRound(ROUND)).toMatchObject({ status: "completed", error: "MessageRejected: Email address is not verified." });
    expect((await records.listByStatus("selected")).map((r) => r.stackId).sort()).toEqual(out.selected.map((s) => s.stackId));
  });

  it("a restore is fenced by the round's status: it never undoes a re-claimed round's marks", async () => {
    const records = await pool(6);
    const round = await crashedMidSelection(records, 2);
    expect(await restoreRoundStacks(records, round, NOW)).toBe(0); // round still selecting: nothing moves
    expect(await records.listByStatus("selected")).toHaveLength(2);
  });
});

describe("selection after a failed round", () => {
  it("the next run in the same week re-claims the failed round and selects afresh; completed stays repeated", async () => {
    const records = await pool(8);
    await crashedMidSelection(records, 3);
    await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" });
    const retry = await runSelectionRound("2026-11-27T08:00:00.000Z", { records, settings: SETTINGS });
    expect(retry.repeated).toBe(false);
    expect(retry.selected.length).toBeGreaterThan(0);
    const round = await records.getRound(ROUND);
    expect(round?.status).toBe("completed");
    expect(round?.error).toBeUndefined();
    for (const r of await records.listByStatus("selected")) expect(r.selectedBy).toBe(ROUND);
    expect((await records.listByStatus("selected")).length).toBe(retry.selected.length);
    const again = await runSelectionRound("2026-11-28T08:00:00.000Z", { records, settings: SETTINGS });
    expect(again).toEqual({ ...retry, repeated: true });
  });

  it("a retry also puts back stacks a run left marked after the failure was recorded", async () => {
    const records = await pool(8);
    const round = await crashedMidSelection(records, 0);
    await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" });
    // A straggling select run marks one stack after the round was failed.
    const straggler = round.selected[0] as string;
    await records.transition(straggler, "pending", "selected", { selectedBy: ROUND }, NOW);
    const retry = await runSelectionRound(NOW, { records, settings: SETTINGS });
    const selected = await records.listByStatus("selected");
    expect(selected.map((r) => r.stackId).sort()).toEqual(retry.selected.map((s) => s.stackId));
  });

  it("of concurrent retries exactly one re-claims", async () => {
    const records = await pool(8);
    await recordRoundFailure(NOW, ERROR, { records, clock, timeZone: "UTC" });
    const outs = await Promise.all(Array.from({ length: 4 }, () => runSelectionRound(NOW, { records, settings: SETTINGS })));
    expect(outs.filter((o) => !o.repeated)).toHaveLength(1);
    for (const o of outs) expect(o.selected).toEqual(outs[0]?.selected);
  });
});
