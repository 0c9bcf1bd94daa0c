/**
 * The select handler end to end against moto server with the real SDK v3 client and adapter: 30
 * pending stacks with scores and predictions in the records table, the by-status GSI as the pool,
 * conditional round and stack writes. Optimum, repeat, concurrency, next week, crash recovery.
 */
import { beforeEach, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { planRound, type SelectOutput } from "../../lambdas/domain/selection-round.js";
import { createSelectHandler } from "../../lambdas/handlers/select-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const BUDGET_SECONDS = 2 * 3600;
const SETTINGS = { budgetSeconds: BUDGET_SECONDS, resolutionSeconds: 1, timeZone: "UTC" };
const NOW = "2026-11-26T06:00:00.000Z"; // 2026-W48
const SAME_WEEK = "2026-11-29T22:00:00.000Z";
const NEXT_WEEK = "2026-12-03T06:00:00.000Z"; // 2026-W49

let store: DynamoRecordStore;
let select: (event: unknown) => Promise<SelectOutput>;

/** Deterministic pseudo-random V and T per stack (no Math.random: reproducible). */
function stack(i: number): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:${String(i % 60).padStart(2, "0")}:00.000Z`;
  const value = ((i * 37) % 97) / 100 + 0.01;
  const seconds = 300 + ((i * 53) % 29) * 60;
  return {
    stackId: `stack-${String(i).padStart(3, "0")}`,
    kind: "stack",
    status: "pending",
    source: { bucket: "studies", key: `uploads/s${i}.zip`, versionId: "v1", seriesUid: `1.2.${i}` },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: value, topK: 8, boundaryLength: 10, components: 2, stackScore: (i % 10) / 10, modelVersion: "m1" },
    prediction: {
      predictedSeconds: seconds,
      medianSeconds: seconds,
      low: seconds / 2,
      high: seconds * 2,
      level: 0.9,
      timeModelVersion: i % 3,
    },
  };
}

async function seed(from: number, to: number): Promise<StackRecord[]> {
  const created: StackRecord[] = [];
  for (let i = from; i < to; i++) {
    const record = stack(i);
    expect(await store.createStack(record)).toBe(true);
    created.push(record);
  }
  return created;
}

async function allStacks(ids: readonly string[]): Promise<StackRecord[]> {
  return Promise.all(ids.map(async (id) => (await store.getStack(id)) as StackRecord));
}

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  select = createSelectHandler({ records: store, settings: SETTINGS, log: lambdaLogger("select", () => {}) });
});

describe("select handler on moto", () => {
  it("selects the knapsack optimum of the pending pool, marks it selected, and repeats without change", async () => {
    const pool = await seed(0, 30);
    const expected = solveKnapsack(
      pool.map((r) => ({ id: r.stackId, value: r.scores?.stackUncertainty ?? 0, seconds: r.prediction?.predictedSeconds ?? 0 })),
      SETTINGS,
    );
    const out = await select({ now: NOW });
    expect(out.roundId).toBe("select-2026-W48");
    expect(out.repeated).toBe(false);
    expect(out.poolSize).toBe(30);
    expect(out.budgetSeconds).toBe(BUDGET_SECONDS);
    expect(out.selected.map((s) => s.stackId)).toEqual(expected.selected);
    expect(out.totalPredictedSeconds).toBeCloseTo(expected.totalSeconds, 9);
    expect(out.totalPredictedSeconds).toBeLessThanOrEqual(BUDGET_SECONDS);

    const ids = out.selected.map((s) => s.stackId);
    for (const r of await allStacks(ids)) expect(r).toMatchObject({ status: "selected", selectedBy: "select-2026-W48" });
    const pending = await store.listByStatus("pending");
    expect(pending.length).toBe(30 - ids.length);
    expect((await store.listByStatus("selected")).map((r) => r.stackId).sort()).toEqual(ids);

    const round = await store.getRound("select-2026-W48");
    expect(round).toMatchObject({
      status: "completed",
      selected: ids,
      poolSize: 30,
      optimal: true,
      timeModelVersion: 2,
      budgetSeconds: BUDGET_SECONDS,
    });
    expect(round?.totalUncertainty).toBeCloseTo(expected.totalValue, 9);

    const before = await allStacks(pool.map((r) => r.stackId));
    const again = await select({ now: SAME_WEEK });
    expect(again).toEqual({ ...out, repeated: true });
    expect(await allStacks(pool.map((r) => r.stackId))).toEqual(before);
    expect(await store.getRound("select-2026-W48")).toEqual(round);
  });

  it("5 concurrent invocations make exactly one round and select each stack once", async () => {
    await seed(0, 30);
    const outs = await Promise.all(Array.from({ length: 5 }, () => select({ now: NOW })));
    expect(outs.filter((o) => !o.repeated)).toHaveLength(1);
    const first = outs.find((o) => !o.repeated) as SelectOutput;
    for (const o of outs) expect(o.selected).toEqual(first.selected);
    const selected = await store.listByStatus("selected");
    expect(selected.map((r) => r.stackId).sort()).toEqual(first.selected.map((s) => s.stackId));
    for (const r of selected) expect(r.selectedBy).toBe("select-2026-W48");
    expect((await store.getRound("select-2026-W48"))?.status).toBe("completed");
  });

  it("next week's round never re-selects stacks already selected", async () => {
    await seed(0, 30);
    const week48 = await select({ now: NOW });
    await seed(30, 40);
    const week49 = await select({ now: NEXT_WEEK });
    expect(week49.roundId).toBe("select-2026-W49");
    expect(week49.repeated).toBe(false);
    expect(week49.poolSize).toBe(40 - week48.selected.length);
    const earlier = new Set(week48.selected.map((s) => s.stackId));
    for (const s of week49.selected) expect(earlier.has(s.stackId)).toBe(false);
    for (const r of await allStacks([...earlier])) expect(r.selectedBy).toBe("select-2026-W48");
  });

  it("a re-run finishes a round a crash left selecting, counting stacks it had already marked", async () => {
    await seed(0, 30);
    // Simulate a run that claimed the round and marked half its plan, then died.
    const plan = planRound(await store.listByStatus("pending"), NOW, SETTINGS);
    expect(await store.createRound(plan.round)).toBe(true);
    const half = plan.round.selected.slice(0, Math.ceil(plan.round.selected.length / 2));
    for (const id of half) expect(await store.transition(id, "pending", "selected", { selectedBy: plan.round.roundId }, NOW)).toBe(true);
    // Meanwhile one planned stack was taken by another round (lost race): it must be dropped.
    const taken = plan.round.selected.at(-1) as string;
    expect(await store.transition(taken, "pending", "selected", { selectedBy: "select-2026-W47" }, NOW)).toBe(true);

    const out = await select({ now: SAME_WEEK });
    expect(out.repeated).toBe(false);
    const ids = out.selected.map((s) => s.stackId);
    expect(ids).toEqual(plan.round.selected.filter((id) => id !== taken));
    for (const r of await allStacks(ids)) expect(r).toMatchObject({ status: "selected", selectedBy: plan.round.roundId });
    expect((await store.getStack(taken))?.selectedBy).toBe("select-2026-W47");
    const round = await store.getRound(plan.round.roundId);
    expect(round).toMatchObject({ status: "completed", selected: ids, poolSize: 30 });
    expect(round?.totalPredictedSeconds).toBeCloseTo(out.totalPredictedSeconds, 9);
    expect((await select({ now: SAME_WEEK })).repeated).toBe(true);
  });
});
