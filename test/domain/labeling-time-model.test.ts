import { describe, expect, it } from "vitest";
import { DegenerateFitError, InvalidTimingError } from "../../lambdas/domain/errors.js";
import {
  chooseTimeModel,
  fitTimeModel,
  PRIOR_TIME_MODEL,
  predictLabelingSeconds,
  type TimingObservation,
} from "../../lambdas/domain/labeling-time-model.js";
import { normalDraw, seededRandom } from "../../lambdas/domain/seeded-random.js";
import { normalCdf, studentTCdf, studentTQuantile } from "../../lambdas/domain/statistics.js";

const TRUTH = { alpha: 0.62, beta: 0.41, gamma: 3.4, sd: 0.35 };

function simulate(n: number, seed: number, truth = TRUTH): TimingObservation[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const negative = random() < 0.15;
    const components = negative ? 0 : 1 + Math.floor(random() * 12);
    const boundaryLength = negative ? 0 : Math.exp(4 + 5 * random());
    const mu = truth.alpha * Math.log1p(boundaryLength) + truth.beta * Math.log1p(components) + truth.gamma;
    return { boundaryLength, components, seconds: Math.exp(mu + truth.sd * normalDraw(random)) };
  });
}

describe("fitTimeModel", () => {
  it("recovers known coefficients exactly from noise-free data", () => {
    const obs = simulate(40, 1, { ...TRUTH, sd: 0 });
    const fit = fitTimeModel(obs);
    expect(fit.alpha).toBeCloseTo(TRUTH.alpha, 10);
    expect(fit.beta).toBeCloseTo(TRUTH.beta, 10);
    expect(fit.gamma).toBeCloseTo(TRUTH.gamma, 9);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.residualSd).toBeLessThan(1e-9);
  });

  it("recovers known coefficients within their sampling error from noisy data (paper: 61 stacks)", () => {
    const fit = fitTimeModel(simulate(2000, 2));
    expect(fit.alpha).toBeCloseTo(TRUTH.alpha, 1);
    expect(fit.beta).toBeCloseTo(TRUTH.beta, 1);
    expect(fit.gamma).toBeCloseTo(TRUTH.gamma, 1);
    expect(fit.residualSd).toBeCloseTo(TRUTH.sd, 1);
    const small = fitTimeModel(simulate(61, 3));
    expect(small.n).toBe(61);
    expect(small.r2).toBeGreaterThan(0.8);
  });

  it("agrees with the normal equations solved independently (Cramer's rule on the raw design)", () => {
    const obs = simulate(25, 4);
    const X = obs.map((o) => [Math.log1p(o.boundaryLength), Math.log1p(o.components), 1]);
    const y = obs.map((o) => Math.log(o.seconds));
    const A = [0, 1, 2].map((r) => [0, 1, 2].map((c) => X.reduce((s, x) => s + (x[r] as number) * (x[c] as number), 0)));
    const b = [0, 1, 2].map((r) => X.reduce((s, x, i) => s + (x[r] as number) * (y[i] as number), 0));
    const det3 = (m: number[][]) => {
      const e = (r: number, c: number) => m[r]?.[c] ?? Number.NaN;
      return (
        e(0, 0) * (e(1, 1) * e(2, 2) - e(1, 2) * e(2, 1)) -
        e(0, 1) * (e(1, 0) * e(2, 2) - e(1, 2) * e(2, 0)) +
        e(0, 2) * (e(1, 0) * e(2, 1) - e(1, 1) * e(2, 0))
      );
    };
    const D = det3(A);
    const solve = (col: number) => det3(A.map((row, r) => row.map((v, c) => (c === col ? (b[r] as number) : v)))) / D;
    const fit = fitTimeModel(obs);
    expect(fit.alpha).toBeCloseTo(solve(0), 8);
    expect(fit.beta).toBeCloseTo(solve(1), 8);
    expect(fit.gamma).toBeCloseTo(solve(2), 8);
  });

  it("gives clear errors on degenerate input", () => {
    const obs = simulate(10, 5);
    expect(() => fitTimeModel(obs.slice(0, 2))).toThrow(DegenerateFitError);
    expect(() => fitTimeModel(obs.slice(0, 2))).toThrow(/at least 4 completed stacks .* got 2/);
    expect(() => fitTimeModel(obs.map((o) => ({ ...o, boundaryLength: 300 })))).toThrow(/boundary length is the same for all 10 stacks/);
    expect(() => fitTimeModel(obs.map((o) => ({ ...o, components: 2 })))).toThrow(/component count is the same/);
    expect(() => fitTimeModel(obs.map((o) => ({ ...o, components: o.boundaryLength })))).toThrow(/collinear/);
    expect(() => fitTimeModel([...obs, { boundaryLength: 5, components: 1, seconds: 0 }])).toThrow(InvalidTimingError);
    expect(() => fitTimeModel([...obs, { boundaryLength: -1, components: 1, seconds: 9 }])).toThrow(
      /timing 10: boundaryLength must be a finite number ≥ 0, got -1/,
    );
  });
});

describe("chooseTimeModel and predictLabelingSeconds", () => {
  it("uses the prior until enough completions exist", () => {
    expect(chooseTimeModel(simulate(19, 6))).toBe(PRIOR_TIME_MODEL);
    expect(chooseTimeModel(simulate(20, 6)).source).toBe("fit");
    expect(chooseTimeModel(simulate(5, 6), 5).source).toBe("fit");
  });

  it("predicts the log-normal mean, the median and an interval that covers ~90 % of new stacks", () => {
    const fit = fitTimeModel(simulate(200, 7));
    const fresh = simulate(4000, 8);
    let inside = 0;
    let predictedTotal = 0;
    let actualTotal = 0;
    for (const o of fresh) {
      const p = predictLabelingSeconds(fit, o);
      expect(p.low).toBeLessThan(p.medianSeconds);
      expect(p.medianSeconds).toBeLessThan(p.seconds);
      expect(p.seconds).toBeLessThan(p.high);
      if (o.seconds >= p.low && o.seconds <= p.high) inside++;
      predictedTotal += p.seconds;
      actualTotal += o.seconds;
    }
    expect(inside / fresh.length).toBeGreaterThan(0.87);
    expect(inside / fresh.length).toBeLessThan(0.93);
    // Sums of log-normal means track the actual total (the paper's "within 10 %").
    expect(Math.abs(predictedTotal / actualTotal - 1)).toBeLessThan(0.05);
  });

  it("prices a negative stack at e^γ and grows with boundary length and components", () => {
    const neg = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 0, components: 0 });
    expect(neg.medianSeconds).toBeCloseTo(45, 6);
    const small = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 500, components: 1 });
    const big = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 20000, components: 10 });
    expect(small.seconds).toBeGreaterThan(neg.seconds);
    expect(big.seconds / neg.seconds).toBeGreaterThan(100);
    expect(() => predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: Number.NaN, components: 0 })).toThrow(/boundaryLength/);
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
