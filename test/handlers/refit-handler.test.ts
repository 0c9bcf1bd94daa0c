import { describe, expect, it } from "vitest";

import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { EnvironmentError } from "../../lambdas/contracts/env.js";
import { REFIT_METRICS } from "../../lambdas/contracts/metrics.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { DEFAULT_TIME_PRIOR, fitTimeModel, predictLabelingSeconds } from "../../lambdas/domain/labeling-time-model.js";
import type { TimeModelRegistry } from "../../lambdas/domain/time-model-store.js";
import { createRefitHandler, refitDepsFromEnvironment } from "../../lambdas/handlers/refit-handler.js";
import {
  InvalidInputError,
  lambdaLogger,
  lambdaMetrics,
  type MetricsWriter,
  metricsWriter,
} from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryRecordStore, lambdaContext } from "../support/in-memory-ports.js";
import { InMemoryTimeModels } from "../support/in-memory-time-models.js";

const NOW = "2026-11-30T06:00:00Z";
const TRUTH = { alpha: 0.7, beta: 0.5, gamma: Math.log(50) };
const EMAIL = "a@x.org";

type Features = { boundaryLength: number; components: number };

function featuresOf(i: number): Features {
  const boundaryLength = i % 5 === 0 ? 0 : 30 * i + ((i * 17) % 11) * 40;
  const components = i % 5 === 0 ? 0 : 1 + ((i * 3) % 7);
  return { boundaryLength, components };
}

/** log t under the coefficients m (computed here, independently of the code under test). */
const logSeconds = (f: Features, m: { alpha: number; beta: number; gamma: number }) =>
  m.alpha * Math.log1p(f.boundaryLength) + m.beta * Math.log1p(f.components) + m.gamma;

function stack(
  i: number,
  status: "labeled" | "pending",
  seconds = Math.exp(logSeconds(featuresOf(i), TRUTH)),
  features = featuresOf(i),
): StackRecord {
  const at = "2026-11-20T10:00:00.000Z";
  return {
    stackId: `${status}-${i}`,
    kind: "stack",
    status,
    source: { bucket: "studies", key: `uploads/secret-name-${i}.zip`, versionId: "v1" },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: 0.2, topK: 8, ...features, stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: 500, medianSeconds: 450, low: 100, high: 900, level: 0.9, timeModelVersion: 0 },
    ...(status === "labeled"
      ? {
          selectedBy: "select-2026-W48",
          completion: { activeSeconds: seconds, annotator: EMAIL, labelLocation: `s3://labels/secret-${i}`, completedAt: at },
        }
      : {}),
  };
}

type MetricsCall = Parameters<MetricsWriter>[0];

async function setup(labeled: number, pending: number, labeledStack: (i: number) => StackRecord = (i) => stack(i, "labeled")) {
  const records = new InMemoryRecordStore();
  const timeModels = new InMemoryTimeModels();
  for (let i = 1; i <= labeled; i++) await records.createStack(labeledStack(i));
  for (let i = 1; i <= pending; i++) await records.createStack(stack(100 + i, "pending"));
  const lines: string[] = [];
  const metrics: MetricsCall[] = [];
  const handler = createRefitHandler({
    records,
    timeModels,
    log: lambdaLogger("refit", (line) => lines.push(line)),
    count: (m) => metrics.push(m),
  });
  return { records, timeModels, lines, metrics, handler };
}

/** Root mean square of log-scale prediction errors against the truth over the given features. */
function rmsLogError(features: readonly Features[], m: { alpha: number; beta: number; gamma: number }): number {
  return Math.sqrt(features.reduce((s, f) => s + (logSeconds(f, m) - logSeconds(f, TRUTH)) ** 2, 0) / features.length);
}

/** The prior's centre (the posterior without completions, up to rounding of P₀⁻¹P₀m₀). */
function expectPriorCoefficients(out: { alpha: number; beta: number; gamma: number }) {
  expect(out.alpha).toBeCloseTo(DEFAULT_TIME_PRIOR.alpha, 10);
  expect(out.beta).toBeCloseTo(DEFAULT_TIME_PRIOR.beta, 10);
  expect(out.gamma).toBeCloseTo(DEFAULT_TIME_PRIOR.gamma, 10);
}

describe("refit handler", () => {
  it("fits, stores a version, re-predicts the pool and reports the last round", async () => {
    const { records, timeModels, lines, handler } = await setup(24, 3);
    const out = await handler({ now: NOW }, lambdaContext);
    expect(out).toMatchObject({ version: 1, fitted: true, n: 24, completions: 24, repredicted: 3, excluded: [], atBound: [] });
    // Noise-free data: the posterior lies between the prior (worth 4 completions) and the truth. Its
    // coefficients are the conjugate posterior's (P₀ + XᵀX)⁻¹(P₀m₀ + Xᵀy), not the truth; what the
    // 24 completions must achieve is fitted log times far closer to the truth than the prior's.
    const features = Array.from({ length: 24 }, (_, k) => featuresOf(k + 1));
    const priorError = rmsLogError(features, DEFAULT_TIME_PRIOR);
    expect(priorError).toBeGreaterThan(1);
    expect(rmsLogError(features, out)).toBeLessThan(priorError / 3);
    expect(out.alpha).toBeGreaterThanOrEqual(0);
    expect(out.beta).toBeGreaterThanOrEqual(0);
    // The handler reports exactly the domain's fit of the same completions.
    const reference = fitTimeModel(features.map((f) => ({ ...f, seconds: Math.exp(logSeconds(f, TRUTH)), annotator: EMAIL })));
    expect(out.alpha).toBeCloseTo(reference.alpha, 12);
    expect(out.beta).toBeCloseTo(reference.beta, 12);
    expect(out.gamma).toBeCloseTo(reference.gamma, 12);
    expect(out.residualSd).toBeGreaterThan(0);
    expect(out.annotatorSpeeds).toEqual([{ annotator: EMAIL, factor: expect.any(Number), completions: 24 }]);

    // The round: Σ T recorded at selection (version 0, the prior) against Σ actual, with the prior's 80 % interval.
    const actual = [...records.items.values()].reduce((s, r) => s + (r.completion?.activeSeconds ?? 0), 0);
    const lastRound = out.lastRound;
    expect(lastRound).toMatchObject({ roundId: "select-2026-W48", stacks: 24, predictedSeconds: 24 * 500, level: 0.8 });
    expect(lastRound?.actualSeconds).toBeCloseTo(actual, 6);
    expect(lastRound?.ratio).toBeCloseTo(actual / (24 * 500), 12);
    expect(lastRound?.lowSeconds).toBeLessThan(24 * 500);
    expect(lastRound?.highSeconds).toBeGreaterThan(24 * 500);
    const inside = actual >= (lastRound?.lowSeconds ?? 0) && actual <= (lastRound?.highSeconds ?? 0);
    expect(lastRound?.insideInterval).toBe(inside);
    const ratio = actual / (24 * 500);
    expect(lastRound?.withinBand).toBe(ratio >= 0.8 && ratio <= 1.25);
    expect(out.calibration).toEqual({ rounds: 1, inside: inside ? 1 : 0, share: inside ? 1 : 0 });

    expect(timeModels.versions.get(1)?.model.n).toBe(24);
    expect(timeModels.versions.get(1)?.createdAt).toBe("2026-11-30T06:00:00.000Z");
    const stored = timeModels.versions.get(1)?.model;
    for (const r of await records.listByStatus("pending")) {
      expect(r.prediction?.timeModelVersion).toBe(1);
      expect(r.prediction?.predictedSeconds).toBeCloseTo(
        predictLabelingSeconds(stored as NonNullable<typeof stored>, r.scores as NonNullable<typeof r.scores>).seconds,
        6,
      );
      expect(r.prediction?.level).toBe(0.8);
    }
    // JSON-serialisable for Step Functions, and logs carry ids and counts only.
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    const log = lines.join("\n");
    expect(log).not.toContain("secret");
    expect(log).not.toContain(EMAIL);
    // The fixture's predictions (500 s each) are far from the actual times: the band alarm's WARN line.
    expect(ratio < 0.8 || ratio > 1.25).toBe(true);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
      level: "WARN",
      message: "last round's actual hours left the calibration band",
      version: 1,
      repredicted: 3,
      lastRoundWithinBand: false,
      lastRoundRatio: expect.closeTo(ratio, 12),
    });

    expect(await handler({ now: NOW }, lambdaContext)).toMatchObject({ version: 1, fitted: false, repredicted: 0 });
    expect(timeModels.versions.size).toBe(1);
  });

  it("with no completions keeps the prior (version 0) and stores nothing; a few completions already move it", async () => {
    const empty = await setup(0, 1);
    const prior = await empty.handler({ now: NOW }, lambdaContext);
    expect(prior).toMatchObject({ version: 0, fitted: false, n: 0, completions: 0, repredicted: 0, lastRound: null });
    expectPriorCoefficients(prior);
    expect(prior.calibration).toEqual({ rounds: 0, inside: 0, share: null });
    expect(empty.timeModels.puts).toBe(0);

    const few = await setup(3, 1);
    const out = await few.handler({ now: NOW }, lambdaContext);
    expect(out).toMatchObject({ version: 1, fitted: true, n: 3, repredicted: 1 });
    const features = [1, 2, 3].map(featuresOf);
    expect(rmsLogError(features, out)).toBeLessThan(rmsLogError(features, DEFAULT_TIME_PRIOR));
  });

  it("writes the refit's metrics as one EMF line: no refusal and the last round's actual / predicted", async () => {
    const { records, timeModels, metrics: calls } = await setup(24, 1);
    const emf: string[] = [];
    const metrics = lambdaMetrics("IchAl/test", (line) => emf.push(line));
    const handler = createRefitHandler({
      records,
      timeModels,
      log: lambdaLogger("test", () => {}),
      metrics,
      count: metricsWriter(metrics),
    });
    const out = await handler({ now: NOW }, lambdaContext);
    expect(emf).toHaveLength(1);
    const line = JSON.parse(emf[0] as string);
    expect(line._aws).toMatchObject({
      Timestamp: expect.any(Number),
      CloudWatchMetrics: [{ Namespace: "IchAl/test", Dimensions: [["service"]] }],
    });
    const names = line._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name);
    expect(names).toEqual(
      expect.arrayContaining([REFIT_METRICS.fitRefused, REFIT_METRICS.excludedCompletions, REFIT_METRICS.roundActualOverPredicted]),
    );
    expect(line.TimeModelFitRefused).toBe(0);
    expect(line.TimeModelExcludedCompletions).toBe(0);
    expect(line.RoundActualOverPredicted).toBeCloseTo(out.lastRound?.ratio as number, 12);
    expect(line.RoundOutsideTimeBand).toBe(out.lastRound?.withinBand ? 0 : 1);
    expect(line.RoundPredictedHours).toBeCloseTo((out.lastRound?.predictedSeconds as number) / 3600, 12);
    expect(line.RoundActualHours).toBeCloseTo((out.lastRound?.actualSeconds as number) / 3600, 12);
    expect(emf[0]).not.toContain(EMAIL);

    // The plain writer port receives the same figures with their units.
    const other = await setup(24, 1);
    await other.handler({ now: NOW }, lambdaContext);
    expect(other.metrics).toHaveLength(1);
    expect(other.metrics[0]).toMatchObject({
      TimeModelFitRefused: { value: 0, unit: "Count" },
      RoundActualOverPredicted: { value: expect.closeTo(out.lastRound?.ratio as number, 12), unit: "None" },
    });
    expect(calls).toHaveLength(0);
  });

  it("refuses an implausible fit: the version in effect stays, an ERROR is logged, the metric is 1 and the round goes on", async () => {
    // Identical features, times alternating 1 s and 8 h (both in range, none an outlier against the
    // others): the posterior predictive mean is far beyond 24 h.
    const same = { boundaryLength: 500, components: 1 };
    const { records, timeModels, lines, metrics, handler } = await setup(24, 2, (i) =>
      stack(i, "labeled", i % 2 === 0 ? 1 : 8 * 3600, same),
    );
    const out = await handler({ now: NOW }, lambdaContext);
    expect(out.refused).toEqual(expect.any(String));
    expect(out.refused).toMatch(/outside \[1 s, 24 h\]|non-finite/);
    expect(out).toMatchObject({ version: 0, fitted: false, completions: 24, repredicted: 0 });
    expectPriorCoefficients(out);
    expect(timeModels.puts).toBe(0);
    expect(timeModels.versions.size).toBe(0);
    for (const r of await records.listByStatus("pending")) expect(r.prediction?.timeModelVersion).toBe(0);
    const errors = lines.map((l) => JSON.parse(l)).filter((l) => l.level === "ERROR");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ message: expect.stringMatching(/refused/), version: 0, refused: out.refused });
    expect(metrics).toEqual([expect.objectContaining({ TimeModelFitRefused: { value: 1, unit: "Count" } })]);
    const log = lines.join("\n");
    expect(log).not.toContain("secret");
    expect(log).not.toContain(EMAIL);
    // The calibration report still runs on the prior's predictions.
    expect(out.lastRound).toMatchObject({ roundId: "select-2026-W48", stacks: 24 });
  });

  it("a refused fit keeps a stored version in effect too", async () => {
    const { records, timeModels, handler } = await setup(24, 1);
    expect((await handler({ now: NOW }, lambdaContext)).version).toBe(1);
    const same = { boundaryLength: 500, components: 1 };
    for (let i = 1; i <= 24; i++) {
      const record = records.items.get(`labeled-${i}`) as StackRecord;
      const poisoned = stack(i, "labeled", i % 2 === 0 ? 1 : 8 * 3600, same);
      records.items.set(record.stackId, poisoned);
    }
    await records.createStack(stack(200, "labeled", 1, same));
    const out = await handler({ now: "2026-12-07T06:00:00Z" }, lambdaContext);
    expect(out.refused).toEqual(expect.any(String));
    expect(out).toMatchObject({ version: 1, fitted: false, n: 24 });
    expect([...timeModels.versions.keys()]).toEqual([1]);
  });

  it.each([{}, { now: "last monday" }, null, { now: 17 }, "2026-11-30T06:00:00Z"])(
    "rejects input %j with InvalidInputError",
    async (input) => {
      const { handler, timeModels } = await setup(24, 1);
      await expect(handler(input, lambdaContext)).rejects.toThrow(InvalidInputError);
      expect(timeModels.versions.size).toBe(0);
    },
  );

  it("logs the error's name and rethrows it for the state machine's Retry / Catch", async () => {
    const { records, lines } = await setup(24, 1);
    const fail = async (): Promise<never> => {
      const error = new Error("Throughput exceeds the current capacity");
      error.name = "ProvisionedThroughputExceededException";
      throw error;
    };
    const failing: TimeModelRegistry = { latest: fail, get: fail, put: async () => true };
    const handler = createRefitHandler({ records, timeModels: failing, log: lambdaLogger("test", (line) => lines.push(line)) });
    await expect(handler({ now: NOW }, lambdaContext)).rejects.toThrow(/capacity/);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ level: "ERROR", code: "ProvisionedThroughputExceededException" });
  });

  describe("composition root", () => {
    const GOOD = {
      TABLE_NAME: "t",
      TIME_MODEL_PRIOR: JSON.stringify({ alpha: 0.5, beta: 0.25, gamma: 4, residualSd: 0.5, strength: 6 }),
      MAX_ACTIVE_SECONDS: "14400",
      CALIBRATION_BAND: "0.9,1.1",
      METRICS_NAMESPACE: "IchAl/demo",
      AWS_ENDPOINT_URL: "http://127.0.0.1:5000",
    };

    it("parses the environment at cold start into the refit's settings", () => {
      const deps = refitDepsFromEnvironment(GOOD);
      expect(deps.timeModels).toBeInstanceOf(DynamoTimeModelStore);
      expect(deps.settings).toEqual({
        prior: { alpha: 0.5, beta: 0.25, gamma: 4, residualSd: 0.5, strength: 6 },
        maxActiveSeconds: 14_400,
        calibrationBand: { low: 0.9, high: 1.1 },
      });
      expect(typeof deps.count).toBe("function");
    });

    const variablesOf = (env: Record<string, string | undefined>): string[] => {
      try {
        refitDepsFromEnvironment(env);
      } catch (error) {
        expect(error).toBeInstanceOf(EnvironmentError);
        return (error as EnvironmentError).variables;
      }
      throw new Error("expected an EnvironmentError");
    };

    it.each([
      ["TIME_MODEL_PRIOR", "not json"],
      ["TIME_MODEL_PRIOR", JSON.stringify({ ...DEFAULT_TIME_PRIOR, strength: 0 })],
      ["TIME_MODEL_PRIOR", JSON.stringify({ ...DEFAULT_TIME_PRIOR, alpha: -0.1 })],
      ["TIME_MODEL_PRIOR", JSON.stringify({ alpha: 0.4, beta: 0.3, gamma: 4, residualSd: 0.6 })],
      ["TIME_MODEL_PRIOR", undefined],
      ["CALIBRATION_BAND", "1.25,0.8"],
      ["CALIBRATION_BAND", "0.8"],
      ["CALIBRATION_BAND", "low,high"],
      ["CALIBRATION_BAND", "0,1.25"],
      ["CALIBRATION_BAND", undefined],
      ["MAX_ACTIVE_SECONDS", "8h"],
      ["MAX_ACTIVE_SECONDS", "30"],
      ["MAX_ACTIVE_SECONDS", "90000"],
      ["METRICS_NAMESPACE", ""],
      ["AWS_ENDPOINT_URL", "not a url"],
    ])("%s=%j is an EnvironmentError naming the variable", (name, value) => {
      expect(variablesOf({ ...GOOD, [name]: value })).toEqual([name]);
      expect(() => refitDepsFromEnvironment({ ...GOOD, [name]: value })).toThrow(new RegExp(name));
    });

    it("names every missing variable, never a value", () => {
      expect(variablesOf({})).toEqual(expect.arrayContaining(["TABLE_NAME", "TIME_MODEL_PRIOR", "CALIBRATION_BAND", "METRICS_NAMESPACE"]));
      // MAX_ACTIVE_SECONDS defaults to 8 h.
      const { MAX_ACTIVE_SECONDS: _max, ...withoutMax } = GOOD;
      expect(refitDepsFromEnvironment(withoutMax).settings?.maxActiveSeconds).toBe(8 * 3600);
      expect(() => refitDepsFromEnvironment({ ...GOOD, TIME_MODEL_PRIOR: "secret-prior-text" })).toThrow(
        expect.objectContaining({ message: expect.not.stringContaining("secret-prior-text") }),
      );
    });
  });
});
