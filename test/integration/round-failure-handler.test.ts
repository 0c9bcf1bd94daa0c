/**
 * The failure path of the weekly workflow against moto server (real SDK v3 DynamoDB client and
 * adapter, TransactWriteItems for the fenced restore): a round that fails mid-selection leaves the
 * pool unchanged and says so, and the next run in the same week selects afresh.
 */
import { beforeEach, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { planRound } from "../../lambdas/domain/selection-round.js";
import { createRoundFailureHandler } from "../../lambdas/handlers/round-failure-handler.js";
import { createSelectHandler } from "../../lambdas/handlers/select-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { useLocalAws } from "../support/local-aws.js";
import { pendingStack } from "../support/round-fixtures.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const SETTINGS = { budgetSeconds: 2 * 3600, resolutionSeconds: 1, timeZone: "UTC" };
const NOW = "2026-11-26T06:00:00.000Z"; // 2026-W48
const ROUND = "select-2026-W48";
const RETRY = "2026-11-26T14:00:00.000Z";
const ERROR = {
  Error: "RoundStateError",
  Cause: JSON.stringify({
    errorType: "RoundStateError",
    errorMessage: "mark failed",
    trace: ["at markSelected (/var/task/index.mjs:1:1)"],
  }),
};

let store: DynamoRecordStore;
let pool: StackRecord[];
const noLog = lambdaLogger("test", () => {});

function handlers() {
  return {
    select: createSelectHandler({ records: store, settings: SETTINGS, log: noLog }),
    fail: createRoundFailureHandler({ records: store, clock: () => new Date().toISOString(), timeZone: "UTC", log: noLog }),
  };
}

/** Snapshot of the pool: id, status and selectedBy of every stack. */
async function poolState() {
  const all = await Promise.all(pool.map((r) => store.getStack(r.stackId)));
  return all.map((r) => ({ stackId: r?.stackId, status: r?.status, selectedBy: r?.selectedBy, assignedTo: r?.assignedTo }));
}

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  pool = Array.from({ length: 20 }, (_, i) => pendingStack(i, 300 + ((i * 53) % 29) * 60, ((i * 37) % 97) / 100 + 0.01));
  for (const r of pool) expect(await store.createStack(r)).toBe(true);
});

describe("round failure on moto", () => {
  it("mid-selection failure: pool restored, round failed with the error; the next run re-selects the optimum", async () => {
    const before = await poolState();
    // A select run claimed the round and marked half its plan, then failed.
    const plan = planRound(await store.listByStatus("pending"), NOW, SETTINGS);
    expect(await store.createRound(plan.round)).toBe(true);
    const marked = plan.round.selected.slice(0, Math.ceil(plan.round.selected.length / 2));
    for (const id of marked) expect(await store.transition(id, "pending", "selected", { selectedBy: ROUND }, NOW)).toBe(true);
    // While the round is `selecting`, a restore is refused by the transaction's round check.
    expect(await store.releaseSelection(marked[0] as string, ROUND, NOW)).toBe(false);

    const { select, fail } = handlers();
    expect(await fail({ now: NOW, error: ERROR })).toEqual({ roundId: ROUND, status: "failed", restoredToPool: marked.length });
    expect(await poolState()).toEqual(before);
    expect((await store.listByStatus("pending")).length).toBe(pool.length);
    expect(await store.listByStatus("selected")).toEqual([]);
    const failed = await store.getRound(ROUND);
    expect(failed).toMatchObject({ status: "failed", error: "RoundStateError: mark failed", restoredToPool: marked.length });
    expect(failed?.error).not.toContain("/var/task");

    // Step Functions retries the failure state: nothing changes.
    expect(await fail({ now: NOW, error: ERROR })).toEqual({ roundId: ROUND, status: "failed", restoredToPool: 0 });
    expect(await poolState()).toEqual(before);

    // The operator's retry in the same week selects afresh: the knapsack optimum of the full pool.
    const expected = solveKnapsack(
      pool.map((r) => ({ id: r.stackId, value: r.scores?.stackUncertainty ?? 0, seconds: r.prediction?.predictedSeconds ?? 0 })),
      SETTINGS,
    );
    const retry = await select({ now: RETRY });
    expect(retry.repeated).toBe(false);
    expect(retry.selected.map((s) => s.stackId)).toEqual(expected.selected);
    expect((await store.getRound(ROUND))?.status).toBe("completed");
    expect((await store.listByStatus("selected")).map((r) => r.stackId).sort()).toEqual(expected.selected);
    // A restore after the re-claim is fenced: it cannot undo the new round's marks.
    expect(await store.releaseSelection(expected.selected[0] as string, ROUND, RETRY)).toBe(false);
    expect((await select({ now: RETRY })).repeated).toBe(true);
  });

  it("failure before any round (refit failed): the round is created failed; a retry selects", async () => {
    const { select, fail } = handlers();
    expect(await fail({ now: NOW, error: { Error: "States.Timeout" } })).toEqual({ roundId: ROUND, status: "failed", restoredToPool: 0 });
    expect(await store.getRound(ROUND)).toMatchObject({ status: "failed", error: "States.Timeout", selected: [] });
    expect((await select({ now: RETRY })).repeated).toBe(false);
  });

  it("failure after the round completed (notify failed): error recorded, stacks stay selected, no re-selection", async () => {
    const { select, fail } = handlers();
    const out = await select({ now: NOW });
    const selectedBefore = await poolState();
    expect(await fail({ now: NOW, error: { Error: "MessageRejected", Cause: "Email address is not verified." } })).toEqual({
      roundId: ROUND,
      status: "completed",
      restoredToPool: 0,
    });
    expect(await poolState()).toEqual(selectedBefore);
    expect(await store.getRound(ROUND)).toMatchObject({ status: "completed", error: "MessageRejected: Email address is not verified." });
    expect(await select({ now: RETRY })).toEqual({ ...out, repeated: true });
  });
});
