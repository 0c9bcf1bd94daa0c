import { describe, expect, it } from "vitest";
import { SelectionRoundSchema, type StackRecord } from "../../lambdas/contracts/records.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { predictionFor } from "../../lambdas/domain/refit.js";
import { completeRoundRecord, planRound, runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { priorVersion } from "../../lambdas/domain/time-model-store.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";
import { InMemoryTimeModels } from "../support/in-memory-time-models.js";

const NOW = "2026-11-26T09:00:00.000Z";
const SETTINGS = { budgetSeconds: 3600, resolutionSeconds: 1, timeZone: "UTC" };

function pendingStack(i: number, value: number, seconds: number, timeModelVersion = 0): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:00:00.000Z`;
  return {
    stackId: `stack-${String(i).padStart(3, "0")}`,
    kind: "stack",
    status: "pending",
    source: { bucket: "studies", key: `uploads/s${i}.zip`, versionId: "v1", seriesUid: `1.2.${i}` },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: value, topK: 8, boundaryLength: 10, components: 2, stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: seconds, medianSeconds: seconds, low: seconds / 2, high: seconds * 2, level: 0.9, timeModelVersion },
  };
}

describe("planRound (pure)", () => {
  it("plans the knapsack optimum over scored stacks, skipping unscored and study records", () => {
    const stacks = [pendingStack(1, 0.9, 1800, 2), pendingStack(2, 0.5, 1200, 3), pendingStack(3, 0.4, 1200), pendingStack(4, 0.1, 600)];
    const { prediction: _p, ...unscored } = pendingStack(5, 0.9, 10);
    const study: StackRecord = { ...pendingStack(6, 0.9, 10), kind: "study" };
    const plan = planRound([...stacks, unscored, study], NOW, SETTINGS);
    const expected = solveKnapsack(
      stacks.map((s) => ({ id: s.stackId, value: s.scores?.stackUncertainty ?? 0, seconds: s.prediction?.predictedSeconds ?? 0 })),
      SETTINGS,
    );
    expect(plan.round.selected).toEqual(expected.selected);
    expect(plan.round.selected).toEqual(["stack-001", "stack-002", "stack-004"]);
    expect(plan.round).toMatchObject({
      roundId: "select-2026-W48",
      status: "selecting",
      poolSize: 4,
      timeModelVersion: 3,
      optimal: true,
      totalPredictedSeconds: 3600,
    });
    expect(plan.skipped).toEqual(["stack-005", "stack-006"]);
    expect(SelectionRoundSchema.safeParse(plan.round).success).toBe(true);
  });

  it("an empty pool plans an empty round with timeModelVersion 0", () => {
    const plan = planRound([], NOW, SETTINGS);
    expect(plan.round).toMatchObject({ selected: [], poolSize: 0, timeModelVersion: 0, totalUncertainty: 0 });
  });

  it("completeRoundRecord keeps only marked stacks and recomputes totals", () => {
    const a = pendingStack(1, 0.9, 1800);
    const plan = planRound([a, pendingStack(2, 0.5, 1200)], NOW, SETTINGS);
    const done = completeRoundRecord(plan.round, [a]);
    expect(done).toMatchObject({ status: "completed", selected: [a.stackId], totalUncertainty: 0.9, totalPredictedSeconds: 1800 });
  });
});

describe("one model per round", () => {
  const scoredBy = (stack: StackRecord, modelVersion: string): StackRecord => ({
    ...stack,
    scores: { ...(stack.scores as NonNullable<StackRecord["scores"]>), modelVersion },
  });

  it("plans only over stacks the model in service scored; the others wait and are counted", () => {
    const current = [scoredBy(pendingStack(1, 0.2, 600), "m2"), scoredBy(pendingStack(2, 0.3, 600), "m2")];
    // Higher V under the old model: never compared with the new model's V.
    const old = [pendingStack(3, 0.9, 600), pendingStack(4, 0.8, 600)];
    const plan = planRound([...old, ...current], NOW, SETTINGS, "m2");
    expect(plan.round.selected).toEqual(["stack-001", "stack-002"]);
    expect(plan.waiting).toEqual(["stack-003", "stack-004"]);
    expect(plan.round).toMatchObject({ poolSize: 2, modelVersion: "m2", waitingForRescore: 2 });
    expect(SelectionRoundSchema.safeParse(plan.round).success).toBe(true);
    // Without a model in service (nothing scored yet) nothing is filtered.
    expect(planRound([...old, ...current], NOW, SETTINGS).round.poolSize).toBe(4);
  });

  it("runSelectionRound reads the model in service and reports who waits", async () => {
    const records = new InMemoryRecordStore();
    for (const s of [scoredBy(pendingStack(1, 0.2, 600), "m2"), pendingStack(2, 0.9, 600)]) await records.createStack(s);
    await records.claimModelInService({ modelVersion: "m2", sequence: 2, since: NOW, source: "promotion" });
    const out = await runSelectionRound(NOW, { records, settings: SETTINGS });
    expect(out.selected.map((s) => s.stackId)).toEqual(["stack-001"]);
    expect(out).toMatchObject({ poolSize: 1, modelVersion: "m2", waitingForRescore: 1 });
    expect((await records.getStack("stack-002"))?.status).toBe("pending");
    // A repeat answers the stored round, with the same counts.
    expect(await runSelectionRound(NOW, { records, settings: SETTINGS })).toMatchObject({ repeated: true, waitingForRescore: 1 });
  });
});

describe("the round's week is read in the schedule's time zone", () => {
  it("names the round after the ISO week of now there (Sunday 23:30 UTC is Monday 00:30 in Vienna)", async () => {
    const sunday = "2026-11-29T23:30:00.000Z";
    expect(planRound([], sunday, SETTINGS).round.roundId).toBe("select-2026-W48");
    expect(planRound([], sunday, { ...SETTINGS, timeZone: "Europe/Vienna" }).round.roundId).toBe("select-2026-W49");
    const store = new InMemoryRecordStore();
    expect((await runSelectionRound(sunday, { records: store, settings: { ...SETTINGS, timeZone: "Europe/Vienna" } })).roundId).toBe(
      "select-2026-W49",
    );
    expect((await runSelectionRound(sunday, { records: store, settings: { ...SETTINGS, timeZone: "America/New_York" } })).roundId).toBe(
      "select-2026-W48",
    );
  });
});

describe("runSelectionRound (in-memory store)", () => {
  it("selects once per week, repeats without change, and never re-selects next week", async () => {
    const store = new InMemoryRecordStore();
    for (let i = 0; i < 10; i++) await store.createStack(pendingStack(i, 0.1 + i / 20, 600 + 100 * i));
    const first = await runSelectionRound(NOW, { records: store, settings: SETTINGS });
    expect(first.repeated).toBe(false);
    expect(first.selected.length).toBeGreaterThan(0);
    expect(first.totalPredictedSeconds).toBeLessThanOrEqual(3600);
    const snapshot = structuredClone([...store.items.entries()]);
    const again = await runSelectionRound("2026-11-29T23:00:00Z", { records: store, settings: SETTINGS });
    expect(again).toEqual({ ...first, repeated: true });
    expect([...store.items.entries()]).toEqual(snapshot);
    const next = await runSelectionRound("2026-12-01T09:00:00Z", { records: store, settings: SETTINGS });
    expect(next.roundId).toBe("select-2026-W49");
    const firstIds = new Set(first.selected.map((s) => s.stackId));
    for (const s of next.selected) expect(firstIds.has(s.stackId)).toBe(false);
  });

  it("finishes a round left selecting and drops stacks another round took", async () => {
    const store = new InMemoryRecordStore();
    for (let i = 0; i < 6; i++) await store.createStack(pendingStack(i, 0.5, 600));
    const plan = planRound(await store.listByStatus("pending"), NOW, SETTINGS);
    await store.createRound(plan.round);
    const [a, b, c] = plan.round.selected as [string, string, string];
    await store.transition(a, "pending", "selected", { selectedBy: plan.round.roundId }, NOW);
    await store.transition(b, "pending", "selected", { selectedBy: "select-2026-W47" }, NOW);
    const out = await runSelectionRound(NOW, { records: store, settings: SETTINGS });
    expect(out.repeated).toBe(false);
    const ids = out.selected.map((s) => s.stackId);
    expect(ids).toContain(a);
    expect(ids).toContain(c);
    expect(ids).not.toContain(b);
    expect((await store.getRound(plan.round.roundId))?.status).toBe("completed");
    expect((await store.getStack(b))?.selectedBy).toBe("select-2026-W47");
  });
});

describe("the round's predicted interval", () => {
  it("records the 80 % interval of the selected stacks' total under the version that predicted them", async () => {
    const store = new InMemoryRecordStore();
    const timeModels = new InMemoryTimeModels();
    // Predictions as version 0 (the prior) would make them, so Σ T agrees with the interval's model.
    for (let i = 1; i <= 6; i++) {
      const base = pendingStack(i, 0.1 * i, 1);
      const p = predictionFor(base.scores as NonNullable<StackRecord["scores"]>, priorVersion());
      expect(await store.createStack({ ...base, prediction: p })).toBe(true);
    }
    const out = await runSelectionRound(NOW, { records: store, settings: SETTINGS, timeModels });
    expect(out.selected.length).toBeGreaterThan(0);
    const interval = out.predictedInterval;
    expect(interval?.level).toBe(0.8);
    expect(interval?.lowSeconds).toBeLessThan(out.totalPredictedSeconds);
    expect(interval?.highSeconds).toBeGreaterThan(out.totalPredictedSeconds);
    expect((await store.getRound(out.roundId))?.predictedInterval).toEqual(interval);
    // Without time-model versions the round records none (and nothing else changes).
    const plain = new InMemoryRecordStore();
    for (let i = 1; i <= 6; i++) await plain.createStack(pendingStack(i, 0.1 * i, 600));
    expect((await runSelectionRound(NOW, { records: plain, settings: SETTINGS })).predictedInterval).toBeUndefined();
  });
});
