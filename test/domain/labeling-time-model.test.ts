import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidTimingError } from "../../lambdas/domain/errors.js";
import {
  DEFAULT_TIME_PRIOR,
  designRow,
  fitTimeModel,
  implausibility,
  nonNegativeMode,
  PRIOR_TIME_MODEL,
  predictLabelingSeconds,
  predictTotalSeconds,
  priorPrecision,
  type TimeModel,
  type TimingObservation,
} from "../../lambdas/domain/labeling-time-model.js";
import type { Mat3, Vec3 } from "../../lambdas/domain/matrix3.js";
import { normalDraw, seededRandom } from "../../lambdas/domain/seeded-random.js";
import { normalCdf, studentTCdf, studentTQuantile } from "../../lambdas/domain/statistics.js";
import "../support/fast-check-seed.js";

const TRUTH = { alpha: 0.62, beta: 0.41, gamma: 3.0, sd: 0.35 };
type Truth = typeof TRUTH;

/** Stacks like the pool's: ~15 % negative, B from e^4 to e^8.5 px, 1–12 components. */
function features(random: () => number) {
  const negative = random() < 0.15;
  return {
    components: negative ? 0 : 1 + Math.floor(random() * 12),
    boundaryLength: negative ? 0 : Math.exp(4 + 4.5 * random()),
  };
}

function logMean(truth: Truth, f: { boundaryLength: number; components: number }): number {
  return truth.alpha * Math.log1p(f.boundaryLength) + truth.beta * Math.log1p(f.components) + truth.gamma;
}

function simulate(n: number, seed: number, truth: Truth = TRUTH, annotators: Record<string, number> = {}): TimingObservation[] {
  const random = seededRandom(seed);
  const names = Object.keys(annotators);
  return Array.from({ length: n }, (_, i) => {
    const f = features(random);
    const annotator = names.length > 0 ? names[i % names.length] : undefined;
    const speed = annotator ? (annotators[annotator] as number) : 1;
    const seconds = Math.exp(logMean(truth, f) + Math.log(speed) + truth.sd * normalDraw(random));
    return { ...f, seconds, ...(annotator ? { annotator } : {}), id: `s${i}` };
  });
}

// --- An independent closed form: the textbook expressions with a general Gauss–Jordan inverse. -------
function inverse(m: number[][]): number[][] {
  const n = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]?.[c] ?? 0) > Math.abs(a[p]?.[c] ?? 0)) p = r;
    [a[c], a[p]] = [a[p] as number[], a[c] as number[]];
    const pivot = a[c] as number[];
    const d = pivot[c] as number;
    for (let k = 0; k < 2 * n; k++) pivot[k] = (pivot[k] as number) / d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const row = a[r] as number[];
      const f = row[c] as number;
      for (let k = 0; k < 2 * n; k++) row[k] = (row[k] as number) - f * (pivot[k] as number);
    }
  }
  return a.map((row) => row.slice(n));
}
const matVec = (m: readonly (readonly number[])[], v: readonly number[]) =>
  m.map((row) => row.reduce((s, x, j) => s + x * (v[j] as number), 0));
const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

function textbookPosterior(obs: readonly TimingObservation[]) {
  const prior = DEFAULT_TIME_PRIOR;
  const p0 = priorPrecision(prior.strength).map((r) => [...r]);
  const m0 = [prior.alpha, prior.beta, prior.gamma];
  const X = obs.map((o) => [Math.log1p(o.boundaryLength), Math.log1p(o.components), 1]);
  const y = obs.map((o) => Math.log(o.seconds));
  const pn = p0.map((row, i) => row.map((v, j) => v + X.reduce((s, x) => s + (x[i] as number) * (x[j] as number), 0)));
  const vn = inverse(pn);
  const rhs = matVec(p0, m0).map((v, i) => v + X.reduce((s, x, k) => s + (x[i] as number) * (y[k] as number), 0));
  const mn = matVec(vn, rhs);
  const a0 = 1 + prior.strength / 2;
  const b0 = (a0 - 1) * prior.residualSd ** 2;
  const sse = X.reduce((s, x, k) => s + ((y[k] as number) - dot(x, mn)) ** 2, 0);
  const d = mn.map((v, i) => v - (m0[i] as number));
  return { mean: mn, covariance: vn, shape: a0 + obs.length / 2, scale: b0 + 0.5 * (sse + dot(d, matVec(p0, d))) };
}

describe("fitTimeModel: the conjugate update", () => {
  it("equals the textbook closed form on fixed data", () => {
    const obs = simulate(25, 4);
    const fit = fitTimeModel(obs, { outlierThreshold: Number.POSITIVE_INFINITY });
    const want = textbookPosterior(obs);
    for (const [i, v] of fit.posterior.mean.entries()) expect(v).toBeCloseTo(want.mean[i] as number, 10);
    for (const [i, row] of fit.posterior.covariance.entries()) {
      for (const [j, v] of row.entries()) expect(v).toBeCloseTo(want.covariance[i]?.[j] as number, 10);
    }
    expect(fit.posterior.shape).toBe(want.shape);
    expect(fit.posterior.scale).toBeCloseTo(want.scale, 9);
    expect(fit.atBound).toEqual([]);
    expect([fit.alpha, fit.beta, fit.gamma]).toEqual(fit.posterior.mean);
    expect(fit).toMatchObject({ source: "fit", n: 25, excluded: [] });
  });

  it("is the prior with no completions, and every completion moves it", () => {
    const prior = fitTimeModel([]);
    expect(prior).toMatchObject({ source: "prior", n: 0, r2: null, excluded: [] });
    expect(prior.alpha).toBeCloseTo(0.45, 12);
    expect(prior.beta).toBeCloseTo(0.35, 12);
    expect(prior.gamma).toBeCloseTo(Math.log(45), 12);
    expect(prior.residualSd).toBeCloseTo(DEFAULT_TIME_PRIOR.residualSd, 12);
    expect(PRIOR_TIME_MODEL.posterior).toEqual(prior.posterior);
    const obs = simulate(6, 9);
    let previous = prior;
    for (let n = 1; n <= obs.length; n++) {
      const fit = fitTimeModel(obs.slice(0, n));
      expect(fit.n).toBe(n);
      expect([fit.alpha, fit.beta, fit.gamma]).not.toEqual([previous.alpha, previous.beta, previous.gamma]);
      previous = fit;
    }
  });

  it("converges to the truth: 10,000 completions from a known law give coefficients within 0.02", () => {
    const fit = fitTimeModel(simulate(10_000, 2));
    expect(Math.abs(fit.alpha - TRUTH.alpha)).toBeLessThan(0.02);
    expect(Math.abs(fit.beta - TRUTH.beta)).toBeLessThan(0.02);
    expect(Math.abs(fit.gamma - TRUTH.gamma)).toBeLessThan(0.02);
    expect(Math.abs(fit.residualSd - TRUTH.sd)).toBeLessThan(0.02);
    expect(fit.r2).toBeGreaterThan(0.8);
  });

  it("keeps α, β ≥ 0 when the data say 0 (β = 0, and α = β = 0)", () => {
    for (const [truth, seeds] of [
      [{ ...TRUTH, beta: 0 }, [11, 12, 13, 14, 15, 16]],
      [{ ...TRUTH, alpha: 0, beta: 0 }, [21, 22, 23, 24, 25, 26]],
    ] as const) {
      let held = 0;
      for (const seed of seeds) {
        const fit = fitTimeModel(simulate(40, seed, truth));
        expect(fit.alpha).toBeGreaterThanOrEqual(0);
        expect(fit.beta).toBeGreaterThanOrEqual(0);
        expect(Math.abs(fit.beta)).toBeLessThan(0.2);
        if (fit.atBound.length > 0) held++;
      }
      // With a true zero the unconstrained estimate is negative about half the time: the constraint acts.
      expect(held).toBeGreaterThan(0);
    }
  });
});

describe("nonNegativeMode", () => {
  const spd = fc
    .tuple(
      fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 9, maxLength: 9 }),
      fc.double({ min: 0.05, max: 3, noNaN: true }),
    )
    .map(([a, ridge]) => {
      const m = [0, 1, 2].map((i) =>
        [0, 1, 2].map(
          (j) => [0, 1, 2].reduce((s, k) => s + (a[3 * i + k] as number) * (a[3 * j + k] as number), 0) + (i === j ? ridge : 0),
        ),
      );
      return m as unknown as Mat3;
    });
  const vec = fc.tuple(
    fc.double({ min: -3, max: 3, noNaN: true }),
    fc.double({ min: -3, max: 3, noNaN: true }),
    fc.double({ min: -3, max: 3, noNaN: true }),
  );

  it("is feasible, equals m when m is feasible, and no sampled feasible point is closer in the metric", () => {
    fc.assert(
      fc.property(spd, vec, (precision, mean) => {
        const m = mean as Vec3;
        const { theta, misfit } = nonNegativeMode(m, precision);
        expect(theta[0]).toBeGreaterThanOrEqual(0);
        expect(theta[1]).toBeGreaterThanOrEqual(0);
        const distance = (t: readonly number[]) => {
          const d = t.map((v, i) => v - (m[i] as number));
          return dot(d, matVec(precision, d));
        };
        if (m[0] >= 0 && m[1] >= 0) {
          for (const [i, v] of theta.entries()) expect(v).toBeCloseTo(m[i] as number, 12);
        }
        expect(misfit).toBeCloseTo(distance(theta), 8);
        const random = seededRandom(Math.round(Math.abs(m[2]) * 1e6));
        for (let k = 0; k < 300; k++) {
          const candidate = [
            Math.max(0, theta[0] + (random() - 0.5) * 2 ** -(k % 8)),
            Math.max(0, theta[1] + (random() - 0.5) * 2 ** -(k % 8)),
            theta[2] + (random() - 0.5) * 2 ** -(k % 8),
          ];
          expect(distance(candidate)).toBeGreaterThanOrEqual(misfit - 1e-9 * (1 + misfit));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("bad and outlying completions", () => {
  const good = simulate(24, 31, TRUTH, { "a@x.org": 1, "b@x.org": 1 });
  const clean = fitTimeModel(good);
  // 50× the shortest good completion (so that it stays within 8 h and only the residual can catch it).
  const shortest = good.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const outlier = { ...shortest, seconds: shortest.seconds * 50, id: "outlier" };
  const poisoned = [
    ...good,
    { boundaryLength: 800, components: 2, seconds: 0.001, id: "tiny" },
    { boundaryLength: 800, components: 2, seconds: 1e-100, id: "underflow" },
    { boundaryLength: 800, components: 2, seconds: 8 * 3600 + 1, id: "too-long" },
    outlier,
  ];

  it("excludes out-of-range times and the 50× outlier, lists each, and predicts within a factor of 2 of the clean fit", () => {
    const fit = fitTimeModel(poisoned);
    expect(fit.excluded.map((e) => [e.id, e.reason])).toEqual([
      ["tiny", "out-of-range"],
      ["underflow", "out-of-range"],
      ["too-long", "out-of-range"],
      ["outlier", "outlier"],
    ]);
    expect(Math.abs(fit.excluded[3]?.studentizedResidual ?? 0)).toBeGreaterThan(4);
    expect(fit.n).toBe(24);
    const random = seededRandom(5);
    for (let k = 0; k < 200; k++) {
      const f = features(random);
      const ratio = predictLabelingSeconds(fit, f).seconds / predictLabelingSeconds(clean, f).seconds;
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    }
    expect(implausibility(fit, good)).toBeUndefined();
  });

  it("excludes nothing from clean data and never more than a quarter", () => {
    for (const seed of [41, 42, 43, 44, 45]) expect(fitTimeModel(simulate(60, seed)).excluded).toEqual([]);
    const shifted = simulate(40, 46).map((o, i) => (i % 2 === 0 ? { ...o, seconds: o.seconds * 100 } : o));
    expect(fitTimeModel(shifted, { maxSeconds: 1e7 }).excluded.filter((e) => e.reason === "outlier").length).toBeLessThanOrEqual(10);
  });

  it("names the entry and field of a malformed observation", () => {
    const obs = simulate(10, 5);
    expect(() => fitTimeModel([...obs, { boundaryLength: 5, components: 1, seconds: 0 }])).toThrow(InvalidTimingError);
    expect(() => fitTimeModel([...obs, { boundaryLength: -1, components: 1, seconds: 9 }])).toThrow(
      /timing 10: boundaryLength must be a finite number ≥ 0, got -1/,
    );
    expect(() => fitTimeModel([...obs, { boundaryLength: 1, components: Number.NaN, seconds: 9 }])).toThrow(/timing 10: components/);
  });

  it("flags a model whose predictions are non-finite or outside [1 s, 24 h]", () => {
    const absurd: TimeModel = { ...clean, gamma: 40 };
    expect(implausibility(absurd, good)).toMatch(/outside \[1 s, 24 h\]/);
    expect(implausibility({ ...clean, gamma: -30 }, good)).toMatch(/outside/);
    expect(implausibility({ ...clean, alpha: Number.NaN }, good)).toMatch(/non-finite/);
    expect(implausibility(PRIOR_TIME_MODEL, good)).toBeUndefined();
  });
});

describe("annotator speed factors", () => {
  it("recovers a 1.5× slower annotator with many completions and shrinks toward 1 with few", () => {
    const many = fitTimeModel(simulate(400, 51, TRUTH, { "fast@x.org": 1, "slow@x.org": 1.5 }));
    const [fast, slow] = many.annotatorSpeeds;
    expect(fast).toMatchObject({ annotator: "fast@x.org", completions: 200 });
    expect((slow?.factor ?? 0) / (fast?.factor ?? 1)).toBeGreaterThan(1.35);
    expect((slow?.factor ?? 0) / (fast?.factor ?? 1)).toBeLessThan(1.65);
    // The slow annotator's stacks are predicted longer for them than for the typical annotator.
    const f = { boundaryLength: 900, components: 3 };
    expect(predictLabelingSeconds(many, f, { annotator: "slow@x.org" }).seconds).toBeGreaterThan(predictLabelingSeconds(many, f).seconds);

    const obs = simulate(40, 52, TRUTH, { "team@x.org": 1 });
    const lone = [...obs, { ...(obs[0] as TimingObservation), seconds: (obs[0] as TimingObservation).seconds * 3, annotator: "new@x.org" }];
    // With one annotator the factor is 1 by construction (speeds are relative to the team).
    expect(fitTimeModel(obs).annotatorSpeeds).toEqual([{ annotator: "team@x.org", factor: 1, completions: 40 }]);
    const fit = fitTimeModel(lone);
    const factor = fit.annotatorSpeeds.find((s) => s.annotator === "new@x.org")?.factor ?? 0;
    expect(factor).toBeGreaterThan(1);
    expect(factor).toBeLessThan(3 ** 0.5); // one completion moves the factor less than halfway (in log) to its raw ratio
  });
});

describe("predictions", () => {
  it("gives the mean, median and an 80 % interval that covers ~80 % of new stacks", () => {
    const fit = fitTimeModel(simulate(2000, 7));
    const fresh = simulate(4000, 8);
    let inside = 0;
    let predictedTotal = 0;
    let actualTotal = 0;
    for (const o of fresh) {
      const p = predictLabelingSeconds(fit, o);
      expect(p.level).toBe(0.8);
      expect(p.low).toBeLessThan(p.medianSeconds);
      expect(p.medianSeconds).toBeLessThan(p.seconds);
      expect(p.seconds).toBeLessThan(p.high);
      if (o.seconds >= p.low && o.seconds <= p.high) inside++;
      predictedTotal += p.seconds;
      actualTotal += o.seconds;
    }
    expect(inside / fresh.length).toBeGreaterThan(0.77);
    expect(inside / fresh.length).toBeLessThan(0.83);
    expect(Math.abs(predictedTotal / actualTotal - 1)).toBeLessThan(0.05);
  });

  it("prices a negative stack at the prior's e^γ and grows with boundary length and components", () => {
    const neg = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 0, components: 0 });
    expect(neg.medianSeconds).toBeCloseTo(45, 6);
    const small = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 500, components: 1 });
    const big = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 20000, components: 10 });
    expect(small.seconds).toBeGreaterThan(neg.seconds);
    expect(big.seconds / neg.seconds).toBeGreaterThan(100);
    expect(() => predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: Number.NaN, components: 0 })).toThrow(/boundaryLength/);
  });

  it("gives a round's total an interval that holds the actual total in ~80 % of rounds", () => {
    let inside = 0;
    const rounds = 200;
    for (let r = 0; r < rounds; r++) {
      const fit = fitTimeModel(simulate(40, 1000 + r));
      const random = seededRandom(5000 + r);
      const stacks = Array.from({ length: 20 }, () => features(random));
      const actual = stacks.reduce((s, f) => s + Math.exp(logMean(TRUTH, f) + TRUTH.sd * normalDraw(random)), 0);
      const total = predictTotalSeconds(fit, stacks, { draws: 1500, seed: r });
      expect(total.low).toBeLessThan(total.high);
      if (actual >= total.low && actual <= total.high) inside++;
    }
    expect(inside / rounds).toBeGreaterThan(0.7);
    expect(inside / rounds).toBeLessThan(0.9);
  });

  it("draws the total's interval reproducibly and wider at a higher level", () => {
    const fit = fitTimeModel(simulate(30, 61));
    const stacks = simulate(10, 62);
    const a = predictTotalSeconds(fit, stacks, { seed: 3 });
    expect(predictTotalSeconds(fit, stacks, { seed: 3 })).toEqual(a);
    const wide = predictTotalSeconds(fit, stacks, { seed: 3, level: 0.95 });
    expect(wide.low).toBeLessThan(a.low);
    expect(wide.high).toBeGreaterThan(a.high);
    expect(a.seconds).toBeCloseTo(
      stacks.reduce((s, f) => s + predictLabelingSeconds(fit, f).seconds, 0),
      6,
    );
    expect(predictTotalSeconds(fit, [])).toEqual({ seconds: 0, low: 0, high: 0, level: 0.8 });
  });

  it("uses x = [log(1+B), log(1+M), 1]", () => {
    expect(designRow({ boundaryLength: Math.E - 1, components: 0 })).toEqual([1, 0, 1]);
  });
});

describe("distribution functions", () => {
  it("matches published t and normal quantiles", () => {
    // Two-sided 95 % critical values of Student's t (standard tables).
    const table: Array<[number, number]> = [
      [1, 12.706],
      [2, 4.303],
      [5, 2.571],
      [10, 2.228],
      [30, 2.042],
      [120, 1.98],
    ];
    for (const [dof, q] of table) expect(studentTQuantile(0.975, dof)).toBeCloseTo(q, 2);
    expect(studentTQuantile(0.95, Number.POSITIVE_INFINITY)).toBeCloseTo(1.6449, 3);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(studentTCdf(0, 7)).toBeCloseTo(0.5, 12);
    expect(studentTCdf(-2.228, 10)).toBeCloseTo(0.025, 3);
  });
});
