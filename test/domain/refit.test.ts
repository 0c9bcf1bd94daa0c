import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Prediction, SelectionRound, StackRecord } from "../../lambdas/contracts/records.js";
import { DEFAULT_MIN_COMPLETIONS, PRIOR_TIME_MODEL, type TimeModel } from "../../lambdas/domain/labeling-time-model.js";
import {
  completedStacks,
  PRIOR_VERSION,
  planRefit,
  RefitStateError,
  repredictions,
  roundsWithCompletions,
  roundTimeReport,
  runRefit,
} from "../../lambdas/domain/refit.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../../lambdas/domain/time-model-store.js";
import { InMemoryRecordStore } from "../handlers/ingest-fakes.js";

const NOW = "2026-11-30T06:00:00.000Z";
const TRUTH = { alpha: 0.8, beta: 0.4, gamma: Math.log(60) };

/** Versions in memory with the conditional semantics of DynamoTimeModelStore.put. */
class InMemoryTimeModels implements TimeModelRegistry {
  readonly versions = new Map<number, { model: TimeModel; createdAt: string }>();
  puts = 0;

  async latest(): Promise<VersionedTimeModel | undefined> {
    const top = Math.max(-1, ...this.versions.keys());
    const entry = this.versions.get(top);
    return entry ? { version: top, model: structuredClone(entry.model) } : undefined;
  }

  async put(entry: VersionedTimeModel, createdAt: string): Promise<boolean> {
    this.puts++;
    if (this.versions.has(entry.version)) return false;
    this.versions.set(entry.version, { model: structuredClone(entry.model), createdAt });
    return true;
  }
}

/** Features of the i-th synthetic stack: varied B and M (negatives every 7th). */
function features(i: number): { boundaryLength: number; components: number } {
  if (i % 7 === 0) return { boundaryLength: 0, components: 0 };
  return { boundaryLength: 40 + ((i * 131) % 997) * 7.5, components: 1 + ((i * 5) % 9) };
}

/** The labeling seconds the true model gives, noise-free (computed here, not by the code under test). */
function trueSeconds(f: { boundaryLength: number; components: number }, truth = TRUTH): number {
  return Math.exp(truth.alpha * Math.log1p(f.boundaryLength) + truth.beta * Math.log1p(f.components) + truth.gamma);
}

function prediction(seconds: number, timeModelVersion: number): Prediction {
  return { predictedSeconds: seconds, medianSeconds: seconds, low: seconds / 2, high: seconds * 2, level: 0.9, timeModelVersion };
}

function baseStack(id: string, status: StackRecord["status"], i: number): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:00:00.000Z`;
  return {
    stackId: id,
    kind: "stack",
    status,
    source: { bucket: "studies", key: `uploads/${id}.zip`, versionId: "v1" },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: 0.1, topK: 8, ...features(i), stackScore: 0.5, modelVersion: "m1" },
  };
}

function labeledStack(i: number, opts: { roundId?: string; seconds?: number; predicted?: number } = {}): StackRecord {
  const base = baseStack(`done-${String(i).padStart(3, "0")}`, "labeled", i);
  return {
    ...base,
    selectedBy: opts.roundId ?? "select-2026-W47",
    prediction: prediction(opts.predicted ?? 600, 0),
    completion: {
      activeSeconds: opts.seconds ?? trueSeconds(features(i)),
      annotator: "a@x.org",
      labelLocation: `s3://labels/${i}.nii.gz`,
      completedAt: "2026-11-27T10:00:00.000Z",
    },
  };
}

function pendingStack(i: number, version: number | undefined): StackRecord {
  const base = baseStack(`pool-${String(i).padStart(3, "0")}`, "pending", i);
  return version === undefined ? base : { ...base, prediction: prediction(1234, version) };
}

async function seed(store: InMemoryRecordStore, records: StackRecord[]) {
  for (const r of records) expect(await store.createStack(r)).toBe(true);
}

describe("completedStacks", () => {
  it("keeps labeled stacks with scores and completion, skips the rest", () => {
    const ok = labeledStack(1);
    const noCompletion = { ...labeledStack(2), completion: undefined };
    const noScores = { ...labeledStack(3), scores: undefined };
    const study = { ...labeledStack(4), kind: "study" as const };
    const { completed, skipped } = completedStacks([ok, noCompletion, noScores, study, ok]);
    expect(completed.map((c) => c.stackId)).toEqual([ok.stackId]);
    expect(completed[0]?.observation).toEqual({ ...features(1), seconds: trueSeconds(features(1)) });
    expect(skipped).toEqual([noCompletion.stackId, noScores.stackId, study.stackId, ok.stackId]);
  });
});

describe("planRefit", () => {
  const obs = (n: number) => Array.from({ length: n }, (_, i) => ({ ...features(i), seconds: trueSeconds(features(i)) }));

  it("keeps the prior below the minimum number of completions", () => {
    expect(planRefit(obs(DEFAULT_MIN_COMPLETIONS - 1), undefined)).toEqual({ action: "keep", current: PRIOR_VERSION, reason: "too-few" });
    expect(planRefit(obs(DEFAULT_MIN_COMPLETIONS), undefined).action).toBe("store");
    expect(planRefit(obs(5), undefined, 5).action).toBe("store");
  });

  it("stores latest + 1 when n changed, keeps the latest when n is unchanged", () => {
    const stored: VersionedTimeModel = { version: 7, model: { ...PRIOR_TIME_MODEL, source: "fit", n: 30 } };
    expect(planRefit(obs(30), stored)).toEqual({ action: "keep", current: stored, reason: "unchanged" });
    const plan = planRefit(obs(31), stored);
    expect(plan.action === "store" && plan.candidate.version).toBe(8);
    expect(plan.action === "store" && plan.candidate.model.n).toBe(31);
  });

  it("keeps the model in effect and says why when the fit is degenerate (all stacks negative)", () => {
    const negatives = Array.from({ length: 25 }, (_, i) => ({ boundaryLength: 0, components: 0, seconds: 40 + i }));
    const plan = planRefit(negatives, undefined);
    expect(plan).toMatchObject({ action: "keep", current: PRIOR_VERSION, reason: "degenerate" });
    expect(plan.action === "keep" && plan.detail).toMatch(/boundary length is the same for all 25 stacks/);
  });

  it("recovers any known α, β, γ from noise-free completions (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.05, max: 1.5, noNaN: true }),
        fc.double({ min: -0.5, max: 1.5, noNaN: true }),
        fc.double({ min: 2, max: 6, noNaN: true }),
        fc.integer({ min: 20, max: 80 }),
        (alpha, beta, gamma, n) => {
          const truth = { alpha, beta, gamma };
          const data = Array.from({ length: n }, (_, i) => ({ ...features(i), seconds: trueSeconds(features(i), truth) }));
          const plan = planRefit(data, undefined);
          if (plan.action !== "store") return false;
          const m = plan.candidate.model;
          return (
            plan.candidate.version === 1 &&
            Math.abs(m.alpha - alpha) < 1e-8 &&
            Math.abs(m.beta - beta) < 1e-8 &&
            Math.abs(m.gamma - gamma) < 1e-7 &&
            m.residualSd < 1e-7
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("repredictions", () => {
  it("re-predicts only stacks on an older version or without a prediction", () => {
    const current: VersionedTimeModel = { version: 3, model: { ...PRIOR_TIME_MODEL, alpha: 0.5, beta: 0.25, gamma: 4, residualSd: 0 } };
    const pending = [pendingStack(1, 0), pendingStack(2, 2), pendingStack(3, 3), pendingStack(4, 4), pendingStack(5, undefined)];
    const study = { ...pendingStack(6, 0), kind: "study" as const };
    const noScores = { ...pendingStack(8, 0), scores: undefined };
    const updates = repredictions([...pending, study, noScores], current);
    expect(updates.map((u) => u.stackId)).toEqual(["pool-001", "pool-002", "pool-005"]);
    for (const u of updates) {
      const i = Number(u.stackId.slice(-3));
      // residualSd 0: the log-normal mean is e^(α log(1+B) + β log(1+M) + γ), computed independently here.
      expect(u.prediction.predictedSeconds).toBeCloseTo(trueSeconds(features(i), { alpha: 0.5, beta: 0.25, gamma: 4 }), 8);
      expect(u.prediction.timeModelVersion).toBe(3);
    }
  });
});

describe("last round report", () => {
  const round = (roundId: string, selected: string[]): SelectionRound => ({
    roundId,
    strategy: "knapsack",
    budgetSeconds: 3600,
    resolutionSeconds: 1,
    poolSize: 10,
    selected,
    totalUncertainty: 1,
    totalPredictedSeconds: 600,
    optimal: true,
    timeModelVersion: 0,
    createdAt: "2026-11-23T06:00:00.000Z",
    status: "completed",
  });

  it("sums predicted and actual seconds over the round's completed stacks; ratio = actual / predicted", () => {
    const W48 = "select-2026-W48";
    const stacks = [
      labeledStack(1, { roundId: W48, predicted: 100, seconds: 110 }),
      labeledStack(2, { roundId: W48, predicted: 200, seconds: 190 }),
      labeledStack(3, { roundId: W48, predicted: 300, seconds: 360 }),
      labeledStack(4, { roundId: "select-2026-W47", predicted: 5000, seconds: 1 }),
      { ...labeledStack(5, { roundId: W48, seconds: 999 }), prediction: undefined },
      labeledStack(6, { roundId: W48, predicted: 777, seconds: 777 }), // labeled, but not in the round's list
    ];
    const { completed } = completedStacks(stacks);
    const report = roundTimeReport(W48, completed, round(W48, ["done-001", "done-002", "done-003", "done-005"]));
    expect(report).toEqual({ roundId: W48, stacks: 3, predictedSeconds: 600, actualSeconds: 660, ratio: expect.closeTo(1.1, 12) });
    // Without the round record every stack that names the round (and has a prediction) counts.
    expect(roundTimeReport(W48, completed, undefined)).toMatchObject({ stacks: 4, predictedSeconds: 1377, actualSeconds: 1437 });
    expect(roundTimeReport("select-2026-W49", completed, undefined)).toBeUndefined();
  });

  it("orders rounds by ISO week, across a year boundary", () => {
    const { completed } = completedStacks([
      labeledStack(1, { roundId: "select-2026-W53" }),
      labeledStack(2, { roundId: "select-2027-W01" }),
      labeledStack(3, { roundId: "select-2026-W09" }),
      labeledStack(4, { roundId: "not-a-round" }),
    ]);
    expect(roundsWithCompletions(completed)).toEqual(["select-2027-W01", "select-2026-W53", "select-2026-W09"]);
  });
});

describe("runRefit", () => {
  async function world(labeled: number, pending: StackRecord[] = []) {
    const records = new InMemoryRecordStore();
    const timeModels = new InMemoryTimeModels();
    await seed(records, [...Array.from({ length: labeled }, (_, i) => labeledStack(i)), ...pending]);
    return { records, timeModels };
  }

  it("fits known coefficients from noise-free completions, stores version 1 and re-predicts the pool", async () => {
    const { records, timeModels } = await world(30, [pendingStack(100, 0), pendingStack(101, undefined), pendingStack(102, 0)]);
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toMatchObject({ version: 1, fitted: true, n: 30, repredicted: 3 });
    expect(out.alpha).toBeCloseTo(TRUTH.alpha, 9);
    expect(out.beta).toBeCloseTo(TRUTH.beta, 9);
    expect(out.gamma).toBeCloseTo(TRUTH.gamma, 8);
    expect(out.r2).toBeCloseTo(1, 12);
    expect(out.residualSd).toBeLessThan(1e-8);
    const stored = timeModels.versions.get(1);
    expect(stored?.createdAt).toBe(NOW);
    expect(stored?.model).toMatchObject({ source: "fit", n: 30 });
    expect(stored?.model.design).not.toBeNull();
    for (const i of [100, 101, 102]) {
      const r = await records.getStack(`pool-${i}`);
      expect(r?.status).toBe("pending");
      expect(r?.prediction?.timeModelVersion).toBe(1);
      expect(r?.prediction?.predictedSeconds).toBeCloseTo(trueSeconds(features(i)), 6);
      expect(r?.updatedAt).toBe(NOW);
    }
  });

  it("stores no new version when n is unchanged, and a new one (latest + 1) when completions arrive", async () => {
    const { records, timeModels } = await world(25, [pendingStack(100, 0)]);
    expect((await runRefit(NOW, { records, timeModels })).version).toBe(1);
    const again = await runRefit(NOW, { records, timeModels });
    expect(again).toMatchObject({ version: 1, fitted: false, n: 25, repredicted: 0 });
    expect(timeModels.puts).toBe(1);

    await seed(records, [labeledStack(25), labeledStack(26)]);
    const later = await runRefit("2026-12-07T06:00:00Z", { records, timeModels });
    expect(later).toMatchObject({ version: 2, fitted: true, n: 27, repredicted: 1 });
    expect([...timeModels.versions.keys()]).toEqual([1, 2]);
    expect(timeModels.versions.get(2)?.createdAt).toBe("2026-12-07T06:00:00.000Z");
    expect((await records.getStack("pool-100"))?.prediction?.timeModelVersion).toBe(2);
  });

  it("keeps the prior (version 0) below 20 completions and changes nothing", async () => {
    const { records, timeModels } = await world(19, [pendingStack(100, 0)]);
    const before = await records.getStack("pool-100");
    const actual = Array.from({ length: 19 }, (_, i) => trueSeconds(features(i))).reduce((a, b) => a + b, 0);
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toEqual({
      version: 0,
      fitted: false,
      n: 19,
      alpha: PRIOR_TIME_MODEL.alpha,
      beta: PRIOR_TIME_MODEL.beta,
      gamma: PRIOR_TIME_MODEL.gamma,
      r2: null,
      residualSd: PRIOR_TIME_MODEL.residualSd,
      repredicted: 0,
      lastRound: {
        roundId: "select-2026-W47",
        stacks: 19,
        predictedSeconds: 19 * 600,
        actualSeconds: expect.closeTo(actual, 6),
        ratio: expect.closeTo(actual / (19 * 600), 12),
      },
    });
    expect(timeModels.puts).toBe(0);
    expect(await records.getStack("pool-100")).toEqual(before);
  });

  it("skips a stack that left pending after the pool was read, never overwriting it", async () => {
    const { records, timeModels } = await world(22, [pendingStack(100, 0), pendingStack(101, 0)]);
    // A selection round takes pool-101 between the refit's read of the pool and its write.
    const racing = Object.assign(Object.create(records) as InMemoryRecordStore, {
      listByStatus: async (status: StackRecord["status"]) => {
        const list = await records.listByStatus(status);
        if (status === "pending") await records.transition("pool-101", "pending", "selected", { selectedBy: "select-2026-W49" }, NOW);
        return list;
      },
    });
    const out = await runRefit(NOW, { records: racing, timeModels });
    expect(out.repredicted).toBe(1);
    expect((await records.getStack("pool-100"))?.prediction?.timeModelVersion).toBe(1);
    const taken = await records.getStack("pool-101");
    expect(taken).toMatchObject({ status: "selected", selectedBy: "select-2026-W49" });
    expect(taken?.prediction).toEqual(prediction(1234, 0));
  });

  it("adopts the version a concurrent refit stored first", async () => {
    const { records, timeModels } = await world(24, [pendingStack(100, 0)]);
    const winner: VersionedTimeModel = {
      version: 1,
      model: { ...PRIOR_TIME_MODEL, source: "fit", n: 24, alpha: 0.3, beta: 0.2, gamma: 5, residualSd: 0, r2: 0.5 },
    };
    const racing: TimeModelRegistry = {
      latest: async () => (timeModels.versions.size > 0 ? timeModels.latest() : undefined),
      put: async (entry, createdAt) => {
        await timeModels.put(winner, NOW); // the other refit gets there first
        return timeModels.put(entry, createdAt);
      },
    };
    const out = await runRefit(NOW, { records, timeModels: racing });
    expect(out).toMatchObject({ version: 1, fitted: false, alpha: 0.3, beta: 0.2, gamma: 5, repredicted: 1 });
    expect(timeModels.versions.get(1)?.model.alpha).toBe(0.3);
    const r = await records.getStack("pool-100");
    expect(r?.prediction?.predictedSeconds).toBeCloseTo(trueSeconds(features(100), { alpha: 0.3, beta: 0.2, gamma: 5 }), 8);
  });

  it("throws RefitStateError when the version is refused but none can be read", async () => {
    const { records } = await world(24);
    const broken: TimeModelRegistry = { latest: async () => undefined, put: async () => false };
    await expect(runRefit(NOW, { records, timeModels: broken })).rejects.toThrow(RefitStateError);
  });

  it("reports the newest round with completed stacks, checked against its round record", async () => {
    const { records, timeModels } = await world(0);
    const W47 = "select-2026-W47";
    const W48 = "select-2026-W48";
    await seed(records, [
      labeledStack(1, { roundId: W47, predicted: 1000, seconds: 900 }),
      labeledStack(2, { roundId: W48, predicted: 400, seconds: 500 }),
      labeledStack(3, { roundId: W48, predicted: 600, seconds: 600 }),
    ]);
    const roundOf = (roundId: string, selected: string[]): SelectionRound => ({
      roundId,
      strategy: "knapsack",
      budgetSeconds: 3600,
      resolutionSeconds: 1,
      poolSize: 3,
      selected,
      totalUncertainty: 0.3,
      totalPredictedSeconds: 1000,
      optimal: true,
      timeModelVersion: 0,
      createdAt: NOW,
      status: "completed",
    });
    await records.createRound(roundOf(W47, ["done-001"]));
    await records.createRound(roundOf(W48, ["done-002", "done-003", "done-009"]));
    const out = await runRefit(NOW, { records, timeModels });
    expect(out.lastRound).toEqual({ roundId: W48, stacks: 2, predictedSeconds: 1000, actualSeconds: 1100, ratio: expect.closeTo(1.1, 12) });

    // A newest round whose record lists none of them falls back to the previous round.
    await seed(records, [labeledStack(4, { roundId: "select-2026-W49", predicted: 10, seconds: 10 })]);
    await records.createRound(roundOf("select-2026-W49", ["other"]));
    expect((await runRefit(NOW, { records, timeModels })).lastRound).toMatchObject({ roundId: W48, ratio: expect.closeTo(1.1, 12) });
  });

  it("reports a degenerate fit in the output and keeps the prior", async () => {
    const records = new InMemoryRecordStore();
    const timeModels = new InMemoryTimeModels();
    const negatives = Array.from({ length: 22 }, (_, i) => labeledStack(i * 7)); // every 7th stack is negative: B = M = 0
    await seed(records, negatives);
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toMatchObject({ version: 0, fitted: false, n: 22 });
    expect(out.fitError).toMatch(/boundary length is the same for all 22 stacks/);
    expect(timeModels.puts).toBe(0);
  });
});
