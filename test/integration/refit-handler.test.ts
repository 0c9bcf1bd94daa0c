/**
 * The refit handler end to end against moto server with the real SDK v3 clients and adapters: labeled
 * and pending stacks in the records table (by-status GSI), TIMEMODEL versions written with a conditional
 * put, re-predictions by conditional same-status updates, the round record for the last-round report.
 */

import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { CorruptTimeModelError, DynamoTimeModelStore, InvalidTimeModelError } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import type { SelectionRound, StackRecord } from "../../lambdas/contracts/records.js";
import { recordKeys } from "../../lambdas/contracts/records-table.js";
import {
  DEFAULT_TIME_PRIOR,
  fitTimeModel,
  PRIOR_TIME_MODEL,
  predictLabelingSeconds,
  type TimeModel,
  type TimingObservation,
} from "../../lambdas/domain/labeling-time-model.js";
import type { RefitOutput } from "../../lambdas/domain/refit.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import type { TimeModelRegistry } from "../../lambdas/domain/time-model-store.js";
import { createRefitHandler } from "../../lambdas/handlers/refit-handler.js";
import type { MetricsWriter } from "../../lambdas/handlers/shared/lambda-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { lambdaContext } from "../support/in-memory-ports.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const NOW = "2026-11-30T06:00:00.000Z"; // Monday of 2026-W49
const W48 = "select-2026-W48";
const TRUTH = { alpha: 0.66, beta: 0.45, gamma: Math.log(55) };

let store: DynamoRecordStore;
let timeModels: DynamoTimeModelStore;
let doc: DynamoDBDocumentClient;
let refit: (event: unknown) => Promise<RefitOutput>;
let metrics: Parameters<MetricsWriter>[0][];

function featuresOf(i: number) {
  if (i % 6 === 0) return { boundaryLength: 0, components: 0 };
  // Up to ~1,200 px and 10 components: the longest true time (~5 h) stays under the 8 h limit.
  return { boundaryLength: 25 + ((i * 389) % 1201), components: 1 + ((i * 7) % 10) };
}

type Features = { boundaryLength: number; components: number };
type Coefficients = { alpha: number; beta: number; gamma: number };

/** log of the noise-free seconds under m, computed independently of the code under test. */
const logSeconds = (f: Features, m: Coefficients) => m.alpha * Math.log1p(f.boundaryLength) + m.beta * Math.log1p(f.components) + m.gamma;

/** Noise-free seconds from the true model. */
function trueSeconds(f: Features, m: Coefficients = TRUTH) {
  return Math.exp(logSeconds(f, m));
}

/** Root mean square of the log-scale error of m against the truth over the features. */
function rmsLogError(features: readonly Features[], m: Coefficients, truth: Coefficients = TRUTH): number {
  return Math.sqrt(features.reduce((s, f) => s + (logSeconds(f, m) - logSeconds(f, truth)) ** 2, 0) / features.length);
}

function stack(id: string, i: number, status: StackRecord["status"], extra: Partial<StackRecord> = {}): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:${String(i % 60).padStart(2, "0")}:00.000Z`;
  return {
    stackId: id,
    kind: "stack",
    status,
    source: { bucket: "studies", key: `uploads/s${i}.zip`, versionId: "v1", seriesUid: `1.2.${i}` },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: 0.1 + (i % 9) / 10, topK: 8, ...featuresOf(i), stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: 400 + i, medianSeconds: 380, low: 100, high: 1200, level: 0.9, timeModelVersion: 0 },
    ...extra,
  };
}

function labeled(i: number, roundId = W48): StackRecord {
  return stack(`done-${String(i).padStart(3, "0")}`, i, "labeled", {
    selectedBy: roundId,
    completion: {
      activeSeconds: trueSeconds(featuresOf(i)),
      annotator: "a@x.org",
      labelLocation: `s3://labels/${i}.nii.gz`,
      completedAt: "2026-11-27T12:00:00.000Z",
    },
  });
}

/** A labeled record as the refit sees it (features, seconds, annotator, stack id). */
function observationOf(r: StackRecord): TimingObservation {
  return {
    boundaryLength: r.scores?.boundaryLength as number,
    components: r.scores?.components as number,
    seconds: r.completion?.activeSeconds as number,
    annotator: r.completion?.annotator as string,
    id: r.stackId,
  };
}

const pendingId = (i: number) => `pool-${String(i).padStart(3, "0")}`;

function round(roundId: string, selected: string[]): SelectionRound {
  return {
    roundId,
    strategy: "knapsack",
    budgetSeconds: 36_000,
    resolutionSeconds: 1,
    poolSize: 100,
    selected,
    totalUncertainty: 3,
    totalPredictedSeconds: 12_345,
    optimal: true,
    timeModelVersion: 0,
    createdAt: "2026-11-23T06:00:00.000Z",
    status: "completed",
  };
}

async function seed(records: StackRecord[]) {
  for (const r of records) expect(await store.createStack(r)).toBe(true);
}

async function storedVersions(): Promise<Record<string, unknown>[]> {
  const out = await doc.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": "TIMEMODEL" },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  timeModels = new DynamoTimeModelStore(dynamo, TABLE);
  doc = DynamoDBDocumentClient.from(dynamo);
  metrics = [];
  const handler = createRefitHandler({
    records: store,
    timeModels,
    log: lambdaLogger("refit", () => {}),
    count: (m) => metrics.push(m),
  });
  refit = (event) => handler(event, lambdaContext);
});

describe("refit handler on moto", () => {
  it("fits the known model, stores TIMEMODEL V#000001, re-predicts pending stacks, reports the last round", async () => {
    const done = Array.from({ length: 30 }, (_, i) => labeled(i + 1));
    await seed(done);
    await seed([0, 1, 2, 3].map((i) => stack(pendingId(i), 50 + i, "pending")));
    // A stack already selected (not pending) keeps its prediction.
    await seed([stack("picked", 60, "selected", { selectedBy: "select-2026-W49" })]);
    // The round selected 28 of the 30 completed stacks (2 came from elsewhere) plus one still open.
    await store.createRound(round(W48, [...done.slice(0, 28).map((r) => r.stackId), "still-open"]));

    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 1, fitted: true, n: 30, completions: 30, repredicted: 4, excluded: [], atBound: [] });
    // Noise-free data and a prior worth 4 completions: not the exact truth, but fitted log times far
    // closer to it than the prior's, and exactly the domain's posterior for these completions.
    const features = done.map((_, k) => featuresOf(k + 1));
    expect(rmsLogError(features, out)).toBeLessThan(rmsLogError(features, DEFAULT_TIME_PRIOR) / 3);
    const reference = fitTimeModel(done.map(observationOf));
    expect(out.alpha).toBeCloseTo(reference.alpha, 10);
    expect(out.beta).toBeCloseTo(reference.beta, 10);
    expect(out.gamma).toBeCloseTo(reference.gamma, 10);
    expect(out.alpha).toBeGreaterThanOrEqual(0);
    expect(out.beta).toBeGreaterThanOrEqual(0);
    expect(out.r2).toBeGreaterThan(0.9);
    expect(out.annotatorSpeeds).toEqual([{ annotator: "a@x.org", factor: expect.any(Number), completions: 30 }]);

    const predicted = done.slice(0, 28).reduce((s, r) => s + (r.prediction?.predictedSeconds ?? 0), 0);
    const actual = done.slice(0, 28).reduce((s, r) => s + (r.completion?.activeSeconds ?? 0), 0);
    const ratio = actual / predicted;
    expect(out.lastRound).toEqual({
      roundId: W48,
      stacks: 28,
      predictedSeconds: expect.closeTo(predicted, 6),
      lowSeconds: expect.any(Number),
      highSeconds: expect.any(Number),
      level: 0.8,
      actualSeconds: expect.closeTo(actual, 6),
      ratio: expect.closeTo(ratio, 10),
      insideInterval: expect.any(Boolean),
      withinBand: ratio >= 0.8 && ratio <= 1.25,
    });
    const { lowSeconds, highSeconds, insideInterval } = out.lastRound as NonNullable<RefitOutput["lastRound"]>;
    expect(lowSeconds).toBeLessThan(predicted);
    expect(highSeconds).toBeGreaterThan(predicted);
    expect(insideInterval).toBe(actual >= lowSeconds && actual <= highSeconds);
    expect(out.calibration).toEqual({ rounds: 1, inside: insideInterval ? 1 : 0, share: insideInterval ? 1 : 0 });

    // The stored item: key layout, fields (the posterior, no least-squares design), what the adapter reads back.
    const item = (await doc.send(new GetCommand({ TableName: TABLE, Key: recordKeys.timeModel(1), ConsistentRead: true }))).Item;
    expect(item).toMatchObject({ pk: "TIMEMODEL", sk: "V#000001", version: 1, createdAt: NOW, source: "fit", n: 30 });
    expect(item).not.toHaveProperty("design");
    expect(item?.alpha).toBeCloseTo(out.alpha, 12);
    expect(item?.posterior?.mean).toHaveLength(3);
    expect(item?.posterior?.covariance).toHaveLength(3);
    expect(item?.posterior?.shape).toBeCloseTo(1 + DEFAULT_TIME_PRIOR.strength / 2 + 30 / 2, 12);
    expect(item).toMatchObject({ atBound: [], excluded: [], prior: DEFAULT_TIME_PRIOR });
    expect(item?.annotatorSpeeds).toEqual([{ annotator: "a@x.org", factor: expect.any(Number), completions: 30 }]);
    const latest = await timeModels.latest();
    expect(latest?.version).toBe(1);
    expect(latest?.model).toMatchObject({ n: 30, source: "fit", residualSd: out.residualSd });
    expect(await timeModels.get(1)).toEqual(latest);

    for (let i = 0; i < 4; i++) {
      const r = await store.getStack(pendingId(i));
      expect(r).toMatchObject({ status: "pending", updatedAt: NOW });
      expect(r?.prediction?.timeModelVersion).toBe(1);
      const expected = predictLabelingSeconds(latest?.model as TimeModel, featuresOf(50 + i));
      expect(r?.prediction?.predictedSeconds).toBeCloseTo(expected.seconds, 6);
      expect(r?.prediction?.medianSeconds).toBeCloseTo(expected.medianSeconds, 6);
      // The median is within a factor 2 of the true time.
      const factor = (r?.prediction?.medianSeconds as number) / trueSeconds(featuresOf(50 + i));
      expect(factor).toBeGreaterThan(0.5);
      expect(factor).toBeLessThan(2);
    }
    expect((await store.listByStatus("pending")).map((r) => r.stackId)).toHaveLength(4);
    expect((await store.getStack("picked"))?.prediction).toEqual(stack("picked", 60, "selected").prediction);
    expect(metrics).toEqual([
      expect.objectContaining({
        TimeModelFitRefused: { value: 0, unit: "Count" },
        TimeModelExcludedCompletions: { value: 0, unit: "Count" },
        RoundActualOverPredicted: { value: expect.closeTo(ratio, 10), unit: "None" },
      }),
    ]);

    // Unchanged n: nothing new is stored and nothing is re-predicted.
    expect(await refit({ now: NOW })).toMatchObject({ version: 1, fitted: false, repredicted: 0 });
    expect(await storedVersions()).toHaveLength(1);
  });

  it("stores version latest + 1 when completions arrived, and re-predicts stacks on older versions only", async () => {
    await seed(Array.from({ length: 21 }, (_, i) => labeled(i + 1)));
    await seed([stack(pendingId(0), 70, "pending")]);
    expect((await refit({ now: NOW })).version).toBe(1);
    // New completions and a stack scored with version 1 after the first refit.
    await seed([labeled(22), labeled(23)]);
    const onV1 = stack(pendingId(1), 71, "pending");
    await seed([{ ...onV1, prediction: { ...(onV1.prediction as NonNullable<StackRecord["prediction"]>), timeModelVersion: 1 } }]);
    const out = await refit({ now: "2026-12-07T06:00:00Z" });
    expect(out).toMatchObject({ version: 2, fitted: true, n: 23, repredicted: 2 });
    expect((await storedVersions()).map((v) => [v.sk, v.n])).toEqual([
      ["V#000001", 21],
      ["V#000002", 23],
    ]);
    for (const id of [pendingId(0), pendingId(1)]) expect((await store.getStack(id))?.prediction?.timeModelVersion).toBe(2);
  });

  it("4 concurrent refits that all saw no version store exactly one new version and all report it", async () => {
    await seed(Array.from({ length: 26 }, (_, i) => labeled(i + 1)));
    await seed([0, 1, 2].map((i) => stack(pendingId(i), 80 + i, "pending")));
    // A barrier on the first read: every refit sees "no version yet" before any of them writes, so all
    // four race their conditional puts of V#000001 on the real table.
    const RUNS = 4;
    let arrived = 0;
    let release: () => void = () => {};
    const allRead = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handlers = Array.from({ length: RUNS }, () => {
      let first = true;
      const racing: TimeModelRegistry = {
        latest: async () => {
          const latest = await timeModels.latest();
          if (first) {
            first = false;
            if (++arrived === RUNS) release();
            await allRead;
          }
          return latest;
        },
        get: (version) => timeModels.get(version),
        put: (entry, createdAt) => timeModels.put(entry, createdAt),
      };
      return createRefitHandler({ records: store, timeModels: racing, log: lambdaLogger("refit", () => {}) });
    });
    const outs = await Promise.all(handlers.map((h) => h({ now: NOW }, lambdaContext)));
    expect(outs.filter((o) => o.fitted)).toHaveLength(1);
    for (const o of outs) expect(o).toMatchObject({ version: 1, n: 26 });
    const versions = await storedVersions();
    expect(versions.map((v) => v.sk)).toEqual(["V#000001"]);
    for (let i = 0; i < 3; i++) expect((await store.getStack(pendingId(i)))?.prediction?.timeModelVersion).toBe(1);
  });

  it("the adapter's put is conditional: an existing version is never overwritten", async () => {
    const model: TimeModel = { ...PRIOR_TIME_MODEL, source: "fit", n: 40, r2: 0.5 };
    expect(await timeModels.put({ version: 3, model }, NOW)).toBe(true);
    expect(await timeModels.put({ version: 3, model: { ...model, alpha: 9, n: 41 } }, "2026-12-01T00:00:00.000Z")).toBe(false);
    expect(await timeModels.latest()).toEqual({ version: 3, model });
    await expect(timeModels.put({ version: 0, model }, NOW)).rejects.toThrow(/version 0/);
  });

  it("get(version) returns exactly what put stored, and undefined for a version never stored", async () => {
    const fitted = fitTimeModel(Array.from({ length: 12 }, (_, k) => observationOf(labeled(k + 1))));
    const first: TimeModel = { ...PRIOR_TIME_MODEL, source: "fit", n: 40, r2: 0.5 };
    expect(await timeModels.put({ version: 1, model: first }, NOW)).toBe(true);
    expect(await timeModels.put({ version: 2, model: fitted }, NOW)).toBe(true);
    expect(await timeModels.get(1)).toEqual({ version: 1, model: first });
    expect(await timeModels.get(2)).toEqual({ version: 2, model: fitted });
    expect(await timeModels.latest()).toEqual(await timeModels.get(2));
    expect(await timeModels.get(99)).toBeUndefined();
    expect(await timeModels.get(0)).toBeUndefined();
  });

  it("put refuses a model that is not a valid version (nothing is written)", async () => {
    const negative: TimeModel = { ...PRIOR_TIME_MODEL, source: "fit", n: 3, alpha: -0.1 };
    await expect(timeModels.put({ version: 1, model: negative }, NOW)).rejects.toThrow(InvalidTimeModelError);
    const degenerate: TimeModel = { ...PRIOR_TIME_MODEL, posterior: { ...PRIOR_TIME_MODEL.posterior, shape: 1 } };
    await expect(timeModels.put({ version: 1, model: degenerate }, NOW)).rejects.toThrow(InvalidTimeModelError);
    expect(await storedVersions()).toHaveLength(0);
  });

  it("reads a version stored by the old least-squares refit as a posterior on its coefficients, and the next refit replaces it", async () => {
    await doc.send(
      new PutCommand({
        TableName: TABLE,
        Item: {
          ...recordKeys.timeModel(1),
          version: 1,
          createdAt: NOW,
          source: "fit",
          alpha: 0.5,
          beta: -0.3,
          gamma: 4,
          n: 25,
          r2: 0.6,
          residualSd: 0.4,
          design: { meanLogB: 5, meanLogM: 1, inverse: [0.1, 0, 0.2] },
        },
      }),
    );
    const legacy = await timeModels.get(1);
    expect(legacy?.model).toMatchObject({ source: "fit", n: 25, r2: 0.6, alpha: 0.5, beta: 0, gamma: 4 });
    expect(legacy?.model.residualSd).toBeCloseTo(0.4, 12);
    expect(await timeModels.latest()).toEqual(legacy);
    await seed([labeled(1)]);
    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 2, fitted: true, n: 1 });
  });

  it("a malformed TIMEMODEL item is a CorruptTimeModelError for get, latest and the refit", async () => {
    await doc.send(
      new PutCommand({ TableName: TABLE, Item: { ...recordKeys.timeModel(1), version: 1, createdAt: NOW, source: "fit", alpha: "x" } }),
    );
    await expect(timeModels.get(1)).rejects.toThrow(CorruptTimeModelError);
    await expect(timeModels.latest()).rejects.toThrow(CorruptTimeModelError);
    await expect(timeModels.latest()).rejects.toThrow(/V#000001/);
    await seed([labeled(1)]);
    await expect(refit({ now: NOW })).rejects.toThrow(CorruptTimeModelError);
  });

  it("no completions keep the prior (version 0) and write nothing; a few completions already store a fit", async () => {
    await seed([stack(pendingId(0), 90, "pending")]);
    const before = await store.getStack(pendingId(0));
    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 0, fitted: false, n: 0, completions: 0, repredicted: 0, lastRound: null });
    expect(out.alpha).toBeCloseTo(PRIOR_TIME_MODEL.alpha, 10);
    expect(await storedVersions()).toHaveLength(0);
    expect(await store.getStack(pendingId(0))).toEqual(before);

    // No hard switch at 20: 5 completions are a version of their own and move the fit toward the truth.
    await seed(Array.from({ length: 5 }, (_, i) => labeled(i + 1)));
    const moved = await refit({ now: NOW });
    expect(moved).toMatchObject({ version: 1, fitted: true, n: 5, repredicted: 1 });
    const features = Array.from({ length: 5 }, (_, i) => featuresOf(i + 1));
    expect(rmsLogError(features, moved)).toBeLessThan(rmsLogError(features, PRIOR_TIME_MODEL));
    expect((await store.getStack(pendingId(0)))?.prediction?.timeModelVersion).toBe(1);
  });
});

describe("poisoned completions on moto (acceptance)", () => {
  // A law near the documented prior with ±15 % deterministic noise; 24 stacks with distinct features,
  // one of them negative (B = M = 0, the shortest good time).
  const LAW: Coefficients = { alpha: 0.5, beta: 0.4, gamma: Math.log(50) };
  const goodFeatures = (i: number): Features =>
    i === 0 ? { boundaryLength: 0, components: 0 } : { boundaryLength: 60 * i + ((i * 389) % 97) * 7, components: 1 + ((i * 7) % 9) };
  const goodSeconds = (i: number) => Math.exp(logSeconds(goodFeatures(i), LAW) + 0.15 * Math.sin(1.7 * i + 0.3));
  const goodId = (i: number) => `good-${String(i).padStart(3, "0")}`;
  const GOOD = Array.from({ length: 24 }, (_, i) => i);
  const shortest = GOOD.reduce((a, b) => (goodSeconds(a) <= goodSeconds(b) ? a : b));
  const poison: { id: string; features: Features; seconds: number; reason: "out-of-range" | "outlier" }[] = [
    { id: "poison-milli", features: goodFeatures(3), seconds: 0.001, reason: "out-of-range" },
    { id: "poison-tiny", features: goodFeatures(5), seconds: 1e-100, reason: "out-of-range" },
    { id: "poison-long", features: goodFeatures(7), seconds: 8 * 3600 + 1, reason: "out-of-range" },
    { id: "poison-slow", features: goodFeatures(shortest), seconds: 50 * goodSeconds(shortest), reason: "outlier" },
  ];
  const poolFeatures = (i: number): Features => ({ boundaryLength: 150 * i * i, components: i % 6 });

  function labeledAt(id: string, i: number, features: Features, seconds: number): StackRecord {
    const base = stack(id, i, "labeled", {
      selectedBy: W48,
      completion: {
        activeSeconds: seconds,
        annotator: "a@x.org",
        labelLocation: `s3://labels/${id}.nii.gz`,
        completedAt: "2026-11-27T12:00:00.000Z",
      },
    });
    return { ...base, scores: { ...(base.scores as NonNullable<StackRecord["scores"]>), ...features } };
  }

  it("excludes out-of-range and outlying times with reasons, keeps predictions near a clean fit, and the round runs", async () => {
    expect(new Set(GOOD.map((i) => JSON.stringify(goodFeatures(i)))).size).toBe(24);
    expect(shortest).toBe(0);
    expect(poison[3]?.seconds).toBeLessThan(8 * 3600);
    await seed(GOOD.map((i) => labeledAt(goodId(i), i, goodFeatures(i), goodSeconds(i))));
    // The poison bypasses the completion API (which refuses all but the outlier): raw items in the table.
    for (const [k, p] of poison.entries()) {
      const record = labeledAt(p.id, 30 + k, p.features, p.seconds);
      await doc.send(
        new PutCommand({
          TableName: TABLE,
          Item: { ...record, ...recordKeys.stack(p.id), ...recordKeys.statusIndex("labeled", record.receivedAt, p.id) },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    }
    expect((await store.getStack("poison-tiny"))?.completion?.activeSeconds).toBe(1e-100);
    const POOL = 10;
    await seed(
      Array.from({ length: POOL }, (_, i) => ({
        ...stack(pendingId(i), 70 + i, "pending"),
        scores: { ...(stack(pendingId(i), 70 + i, "pending").scores as NonNullable<StackRecord["scores"]>), ...poolFeatures(i) },
      })),
    );

    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 1, fitted: true, n: 24, completions: 28, repredicted: POOL });
    expect(out.refused).toBeUndefined();
    expect(out.excluded.map(({ stackId, reason }) => ({ stackId, reason })).sort((a, b) => a.stackId.localeCompare(b.stackId))).toEqual(
      poison.map(({ id, reason }) => ({ stackId: id, reason })).sort((a, b) => a.stackId.localeCompare(b.stackId)),
    );
    const outlier = out.excluded.find((e) => e.stackId === "poison-slow");
    expect(Math.abs(outlier?.studentizedResidual as number)).toBeGreaterThan(4);
    expect(metrics).toEqual([
      expect.objectContaining({
        TimeModelExcludedCompletions: { value: 4, unit: "Count" },
        TimeModelFitRefused: { value: 0, unit: "Count" },
      }),
    ]);

    // The stored version lists the same exclusions.
    const stored = await timeModels.get(1);
    expect(stored?.model.excluded.map((e) => [e.id, e.reason]).sort()).toEqual(poison.map((p) => [p.id, p.reason]).sort());
    const item = (await doc.send(new GetCommand({ TableName: TABLE, Key: recordKeys.timeModel(1), ConsistentRead: true }))).Item;
    expect(item?.excluded).toHaveLength(4);

    // Pending predictions: within a factor 2 of a clean fit on the 24 good completions alone.
    const clean = fitTimeModel(GOOD.map((i) => ({ ...goodFeatures(i), seconds: goodSeconds(i), annotator: "a@x.org", id: goodId(i) })));
    expect(clean.excluded).toEqual([]);
    for (let i = 0; i < POOL; i++) {
      const r = await store.getStack(pendingId(i));
      expect(r?.prediction?.timeModelVersion).toBe(1);
      const ratio = (r?.prediction?.predictedSeconds as number) / predictLabelingSeconds(clean, poolFeatures(i)).seconds;
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    }

    // The weekly round that follows the refit selects with the new predictions.
    const budgetSeconds = 6 * 3600;
    const round = await runSelectionRound(NOW, { records: store, settings: { budgetSeconds, resolutionSeconds: 1, timeZone: "UTC" } });
    expect(round).toMatchObject({ roundId: "select-2026-W49", repeated: false, poolSize: POOL, budgetSeconds });
    expect(round.selected.length).toBeGreaterThan(0);
    expect(round.totalPredictedSeconds).toBeLessThanOrEqual(budgetSeconds);
    for (const s of round.selected) {
      const r = await store.getStack(s.stackId);
      expect(r).toMatchObject({ status: "selected", selectedBy: "select-2026-W49" });
      expect(s.predictedSeconds).toBe(r?.prediction?.predictedSeconds);
      expect(r?.prediction?.timeModelVersion).toBe(1);
    }
    expect((await store.getRound("select-2026-W49"))?.timeModelVersion).toBe(1);
  });
});
