import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Completion, Prediction, SelectionRound, StackRecord } from "../../lambdas/contracts/records.js";
import {
  DEFAULT_TIME_PRIOR,
  fitTimeModel,
  PRIOR_TIME_MODEL,
  predictLabelingSeconds,
  type TimeModel,
} from "../../lambdas/domain/labeling-time-model.js";
import {
  completedStacks,
  DEFAULT_REFIT_SETTINGS,
  PRIOR_VERSION,
  planRefit,
  RefitStateError,
  repredictions,
  roundMembers,
  roundsWithCompletions,
  roundTimeReport,
  runRefit,
} from "../../lambdas/domain/refit.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../../lambdas/domain/time-model-store.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";
import { InMemoryTimeModels } from "../support/in-memory-time-models.js";
import "../support/fast-check-seed.js";

const NOW = "2026-11-30T06:00:00.000Z";
const TRUTH = { alpha: 0.55, beta: 0.4, gamma: Math.log(60) };

const distance = (m: { alpha: number; beta: number; gamma: number }, t: { alpha: number; beta: number; gamma: number }) =>
  Math.hypot(m.alpha - t.alpha, m.beta - t.beta, m.gamma - t.gamma);

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
  it("keeps labeled stacks with scores and completion (sorted by id), skips the rest", () => {
    const ok = labeledStack(1);
    const noCompletion = { ...labeledStack(2), completion: undefined };
    const noScores = { ...labeledStack(3), scores: undefined };
    const study = { ...labeledStack(4), kind: "study" as const };
    const { completed, skipped } = completedStacks([labeledStack(9), ok, noCompletion, noScores, study, ok]);
    expect(completed.map((c) => c.stackId)).toEqual([ok.stackId, "done-009"]);
    expect(completed[0]?.observation).toEqual({ ...features(1), seconds: trueSeconds(features(1)), annotator: "a@x.org", id: ok.stackId });
    expect(completed[0]?.timeModelVersion).toBe(0);
    expect(skipped).toEqual([noCompletion.stackId, noScores.stackId, study.stackId, ok.stackId]);
  });

  it("leaves out completions made with an external tool's mask (the page did not time them)", () => {
    const page = { ...labeledStack(1), completion: { ...(labeledStack(1).completion as Completion), source: "page" as const } };
    const external = { ...labeledStack(2), completion: { ...(labeledStack(2).completion as Completion), source: "external" as const } };
    const { completed, skipped, external: left } = completedStacks([page, external, labeledStack(3)]);
    expect(completed.map((c) => c.stackId)).toEqual([page.stackId, "done-003"]);
    expect(left).toEqual([external.stackId]);
    expect(skipped).toEqual([]);
  });
});

describe("planRefit", () => {
  const obs = (n: number, truth = TRUTH) =>
    Array.from({ length: n }, (_, i) => ({ ...features(i), seconds: trueSeconds(features(i), truth), id: `s${i}` }));

  it("keeps the prior with no completions and stores version 1 after the first one", () => {
    expect(planRefit([], PRIOR_VERSION)).toEqual({ action: "keep", current: PRIOR_VERSION, reason: "unchanged" });
    const plan = planRefit(obs(1), PRIOR_VERSION);
    expect(plan.action === "store" && plan.candidate.version).toBe(1);
    expect(plan.action === "store" && plan.candidate.model.n).toBe(1);
  });

  it("stores latest + 1 when the completions changed, keeps the latest when they did not", () => {
    const stored: VersionedTimeModel = { version: 7, model: fitTimeModel(obs(30)) };
    expect(planRefit(obs(30), stored)).toEqual({ action: "keep", current: stored, reason: "unchanged" });
    const plan = planRefit(obs(31), stored);
    expect(plan.action === "store" && plan.candidate.version).toBe(8);
    expect(plan.action === "store" && plan.candidate.model.n).toBe(31);
    // A new prior (the institution changed its config) is a change too.
    const stronger = planRefit(obs(30), stored, { ...DEFAULT_REFIT_SETTINGS, prior: { ...DEFAULT_TIME_PRIOR, strength: 40 } });
    expect(stronger.action).toBe("store");
  });

  it("fits all-negative completions (no spread in B, M) without failing: γ moves to their mean log time", () => {
    const negatives = Array.from({ length: 25 }, (_, i) => ({ boundaryLength: 0, components: 0, seconds: 40 + i }));
    const plan = planRefit(negatives, PRIOR_VERSION);
    expect(plan.action).toBe("store");
    const model = plan.action === "store" ? plan.candidate.model : PRIOR_TIME_MODEL;
    const meanLog = negatives.reduce((s, o) => s + Math.log(o.seconds), 0) / negatives.length;
    expect(Math.abs(model.gamma - meanLog)).toBeLessThan(0.05);
    expect(model.alpha).toBeGreaterThanOrEqual(0);
    expect(model.beta).toBeGreaterThanOrEqual(0);
  });

  it("refuses a fit whose predictions leave [1 s, 24 h] and keeps the version in effect", () => {
    // Identical stacks labelled in 1 s and in 8 h alternately: σ is huge, so the mean e^(μ + v/2) explodes.
    const wild = Array.from({ length: 30 }, (_, i) => ({
      boundaryLength: 500 + (i % 3),
      components: 2,
      seconds: i % 2 === 0 ? 1 : 8 * 3600,
    }));
    const plan = planRefit(wild, PRIOR_VERSION);
    expect(plan).toMatchObject({ action: "keep", current: PRIOR_VERSION, reason: "refused" });
    expect(plan.action === "keep" && plan.detail).toMatch(/outside \[1 s, 24 h\]/);
  });

  it("moves any known law (α, β ≥ 0) from the prior well over half way to the truth with 20–80 noise-free completions (property)", () => {
    fc.assert(
      fc.property(
        // Laws whose times stay within a day over these stacks (B up to 7,500 px, M up to 9).
        fc.double({ min: 0, max: 0.6, noNaN: true }),
        fc.double({ min: 0, max: 0.8, noNaN: true }),
        fc.double({ min: 2, max: 3.5, noNaN: true }),
        fc.integer({ min: 20, max: 80 }),
        (alpha, beta, gamma, n) => {
          const truth = { alpha, beta, gamma };
          const plan = planRefit(obs(n, truth), PRIOR_VERSION, { ...DEFAULT_REFIT_SETTINGS, maxActiveSeconds: 86_400 });
          if (plan.action !== "store") return plan.action === "keep" && plan.reason === "refused";
          const m = plan.candidate.model;
          return m.alpha >= 0 && m.beta >= 0 && distance(m, truth) <= 0.4 * distance(PRIOR_TIME_MODEL, truth) + 1e-6;
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("repredictions", () => {
  it("re-predicts only stacks on an older version or without a prediction, with the version's posterior predictive", () => {
    const current: VersionedTimeModel = { version: 3, model: { ...PRIOR_TIME_MODEL, alpha: 0.5, beta: 0.25, gamma: 4 } };
    const pending = [pendingStack(1, 0), pendingStack(2, 2), pendingStack(3, 3), pendingStack(4, 4), pendingStack(5, undefined)];
    const study = { ...pendingStack(6, 0), kind: "study" as const };
    const noScores = { ...pendingStack(8, 0), scores: undefined };
    const updates = repredictions([...pending, study, noScores], current);
    expect(updates.map((u) => u.stackId)).toEqual(["pool-001", "pool-002", "pool-005"]);
    const { covariance, shape, scale } = current.model.posterior;
    for (const u of updates) {
      const f = features(Number(u.stackId.slice(-3)));
      // Computed here from the posterior's parts: mean e^(μ + v/2), v = b/(a − 1)·(1 + xᵀVx).
      const x = [Math.log1p(f.boundaryLength), Math.log1p(f.components), 1];
      const h = x.reduce((s, xi, i) => s + xi * x.reduce((t, xj, j) => t + (covariance[i]?.[j] as number) * xj, 0), 0);
      const median = trueSeconds(f, { alpha: 0.5, beta: 0.25, gamma: 4 });
      expect(u.prediction.medianSeconds).toBeCloseTo(median, 8);
      expect(u.prediction.predictedSeconds).toBeCloseTo(median * Math.exp(((scale / (shape - 1)) * (1 + h)) / 2), 6);
      expect(u.prediction).toMatchObject({ level: 0.8, timeModelVersion: 3 });
      expect(u.prediction.low).toBeLessThan(median);
      expect(u.prediction.high).toBeGreaterThan(median);
    }
  });
});

describe("round report", () => {
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

  it("sums predicted and actual seconds over the round's completed stacks, with the total's 80 % interval", () => {
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
    const members = roundMembers(W48, completed, round(W48, ["done-001", "done-002", "done-003", "done-005"]));
    const report = roundTimeReport(W48, members, PRIOR_TIME_MODEL, { low: 0.8, high: 1.25 });
    expect(report).toMatchObject({ roundId: W48, stacks: 3, predictedSeconds: 600, actualSeconds: 660, level: 0.8, withinBand: true });
    expect(report?.ratio).toBeCloseTo(1.1, 12);
    expect(report?.lowSeconds).toBeLessThan(600);
    expect(report?.highSeconds).toBeGreaterThan(600);
    expect(report?.insideInterval).toBe(660 >= (report?.lowSeconds ?? 0) && 660 <= (report?.highSeconds ?? 0));
    expect(roundTimeReport(W48, members, PRIOR_TIME_MODEL, { low: 0.8, high: 1.05 })?.withinBand).toBe(false);
    // Without the round record every stack that names the round (and has a prediction) counts.
    expect(roundMembers(W48, completed, undefined).map((c) => c.stackId)).toEqual(["done-001", "done-002", "done-003", "done-006"]);
    expect(
      roundTimeReport("select-2026-W49", roundMembers("select-2026-W49", completed, undefined), PRIOR_TIME_MODEL, { low: 0.8, high: 1.25 }),
    ).toBeUndefined();
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

  it("fits the completions, stores version 1 with its posterior and re-predicts the pool", async () => {
    const { records, timeModels } = await world(30, [pendingStack(100, 0), pendingStack(101, undefined), pendingStack(102, 0)]);
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toMatchObject({ version: 1, fitted: true, n: 30, completions: 30, repredicted: 3, excluded: [] });
    expect(distance(out, TRUTH)).toBeLessThan(0.25 * distance(PRIOR_TIME_MODEL, TRUTH));
    expect(out.r2).toBeGreaterThan(0.95);
    expect(out.annotatorSpeeds).toEqual([{ annotator: "a@x.org", factor: expect.any(Number), completions: 30 }]);
    const stored = timeModels.versions.get(1);
    expect(stored?.createdAt).toBe(NOW);
    expect(stored?.model).toMatchObject({ source: "fit", n: 30, excluded: [], prior: DEFAULT_TIME_PRIOR });
    for (const i of [100, 101, 102]) {
      const r = await records.getStack(`pool-${i}`);
      expect(r?.status).toBe("pending");
      expect(r?.prediction?.timeModelVersion).toBe(1);
      expect(r?.prediction?.predictedSeconds).toBeCloseTo(predictLabelingSeconds(stored?.model as TimeModel, features(i)).seconds, 6);
      expect(r?.updatedAt).toBe(NOW);
    }
  });

  it("stores no new version when nothing changed, and latest + 1 when completions arrive", async () => {
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

  it("keeps the prior (version 0) with no completions and changes nothing", async () => {
    const { records, timeModels } = await world(0, [pendingStack(100, 0)]);
    const before = await records.getStack("pool-100");
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toMatchObject({ version: 0, fitted: false, n: 0, completions: 0, repredicted: 0, lastRound: null });
    expect(out.calibration).toEqual({ rounds: 0, inside: 0, share: null });
    expect(timeModels.puts).toBe(0);
    expect(await records.getStack("pool-100")).toEqual(before);
  });

  it("excludes out-of-range and outlying completions written past the API, lists them, and stays within ×2 of the clean fit", async () => {
    const clean = await world(24, [pendingStack(100, 0), pendingStack(101, 0), pendingStack(102, 0)]);
    await runRefit(NOW, clean);
    const poisoned = await world(24, [pendingStack(100, 0), pendingStack(101, 0), pendingStack(102, 0)]);
    const shortest = Array.from({ length: 24 }, (_, i) => trueSeconds(features(i))).reduce((a, b) => Math.min(a, b));
    await seed(poisoned.records, [
      labeledStack(30, { seconds: 0.001 }),
      labeledStack(31, { seconds: 1e-100 }),
      labeledStack(32, { seconds: 8 * 3600 + 1 }),
      { ...labeledStack(33, { seconds: 50 * shortest }), scores: { ...(labeledStack(0).scores as NonNullable<StackRecord["scores"]>) } },
    ]);
    const out = await runRefit(NOW, poisoned);
    expect(out).toMatchObject({ version: 1, fitted: true, n: 24, completions: 28 });
    expect(out.excluded.map((e) => [e.stackId, e.reason])).toEqual([
      ["done-030", "out-of-range"],
      ["done-031", "out-of-range"],
      ["done-032", "out-of-range"],
      ["done-033", "outlier"],
    ]);
    expect(poisoned.timeModels.versions.get(1)?.model.excluded.map((e) => e.id)).toEqual(["done-030", "done-031", "done-032", "done-033"]);
    for (const id of ["pool-100", "pool-101", "pool-102"]) {
      const a = (await poisoned.records.getStack(id))?.prediction?.predictedSeconds as number;
      const b = (await clean.records.getStack(id))?.prediction?.predictedSeconds as number;
      expect(a / b).toBeGreaterThan(0.5);
      expect(a / b).toBeLessThan(2);
    }
  });

  it("refuses an implausible fit: the version in effect stays, the output says why, the refit returns", async () => {
    const records = new InMemoryRecordStore();
    const timeModels = new InMemoryTimeModels();
    const wild = Array.from({ length: 30 }, (_, i) => ({
      ...labeledStack(1, { seconds: i % 2 === 0 ? 1 : 8 * 3600 }),
      stackId: `wild-${i}`,
    }));
    await seed(records, [...wild, pendingStack(100, 0)]);
    const out = await runRefit(NOW, { records, timeModels });
    expect(out).toMatchObject({ version: 0, fitted: false, completions: 30, repredicted: 0 });
    expect(out.refused).toMatch(/outside \[1 s, 24 h\]/);
    expect(timeModels.puts).toBe(0);
    expect((await records.getStack("pool-100"))?.prediction?.timeModelVersion).toBe(0);
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
      model: { ...PRIOR_TIME_MODEL, source: "fit", n: 24, alpha: 0.3, beta: 0.2, gamma: 5 },
    };
    const racing: TimeModelRegistry = {
      latest: async () => (timeModels.versions.size > 0 ? timeModels.latest() : undefined),
      get: (version) => timeModels.get(version),
      put: async (entry, createdAt) => {
        await timeModels.put(winner, NOW); // the other refit gets there first
        return timeModels.put(entry, createdAt);
      },
    };
    const out = await runRefit(NOW, { records, timeModels: racing });
    expect(out).toMatchObject({ version: 1, fitted: false, alpha: 0.3, beta: 0.2, gamma: 5, repredicted: 1 });
    expect(timeModels.versions.get(1)?.model.alpha).toBe(0.3);
    const r = await records.getStack("pool-100");
    expect(r?.prediction?.medianSeconds).toBeCloseTo(trueSeconds(features(100), { alpha: 0.3, beta: 0.2, gamma: 5 }), 8);
  });

  it("throws RefitStateError when the version is refused but none can be read", async () => {
    const { records } = await world(24);
    const broken: TimeModelRegistry = { latest: async () => undefined, get: async () => undefined, put: async () => false };
    await expect(runRefit(NOW, { records, timeModels: broken })).rejects.toThrow(RefitStateError);
  });

  it("reports the newest round against its record, and the share of rounds inside their interval", async () => {
    const { records, timeModels } = await world(0);
    const W47 = "select-2026-W47";
    const W48 = "select-2026-W48";
    await seed(records, [
      labeledStack(1, { roundId: W47, predicted: 1000, seconds: 5000 }), // far outside any interval
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
    expect(out.lastRound).toMatchObject({
      roundId: W48,
      stacks: 2,
      predictedSeconds: 1000,
      actualSeconds: 1100,
      insideInterval: true,
      withinBand: true,
    });
    expect(out.lastRound?.ratio).toBeCloseTo(1.1, 12);
    expect(out.calibration).toEqual({ rounds: 2, inside: 1, share: 0.5 });

    // A newest round whose record lists none of them falls back to the previous round.
    await seed(records, [labeledStack(4, { roundId: "select-2026-W49", predicted: 10, seconds: 10 })]);
    await records.createRound(roundOf("select-2026-W49", ["other"]));
    expect((await runRefit(NOW, { records, timeModels })).lastRound).toMatchObject({ roundId: W48 });
  });
});
