/**
 * Labeling-time model (paper §3.2, eq. 2), learned by Bayesian linear regression:
 *
 *     log t = α log(1+B) + β log(1+M) + γ + log s_a + ε,    ε ~ N(0, σ²)
 *
 * B, M: boundary length and component count of the thresholded mean heatmap (log(1 + ·) so that a
 * negative stack, B = M = 0, costs e^γ: the time to page through it). s_a: annotator a's speed factor.
 *
 * Prior and update (conjugate normal–inverse-gamma; Gelman et al., Bayesian Data Analysis, ch. 14):
 * θ = (α, β, γ) | σ² ~ N(m₀, σ² P₀⁻¹), σ² ~ IG(a₀, b₀). The prior is centred on the documented
 * coefficients (DEFAULT_TIME_PRIOR) and is worth `strength` completions: P₀ = strength · G, with G the
 * mean of x xᵀ over four reference stacks (negative; one 500 px bleed; three bleeds, 3,000 px; ten
 * bleeds, 20,000 px), a₀ = 1 + strength/2, b₀ = (a₀ − 1)·s₀² (so E[σ²] = s₀²). Each completion updates
 * it exactly: Pₙ = P₀ + XᵀX, mₙ = Pₙ⁻¹(P₀m₀ + Xᵀy), aₙ = a₀ + n/2,
 * bₙ = b₀ + ½(yᵀy + m₀ᵀP₀m₀ − mₙᵀPₙmₙ). No completions: the prior; many: least squares.
 *
 * α ≥ 0, β ≥ 0 (more boundary or more components never take less time): the coefficients used are the
 * posterior mode under these constraints, i.e. mₙ projected onto the orthant in the posterior's own
 * metric, argmin (θ − mₙ)ᵀPₙ(θ − mₙ) — when α̂ < 0 this sets α = 0 and moves β, γ to their conditional
 * posterior means given α = 0. The projection's misfit is added to bₙ, so the residual scale widens.
 *
 * Prediction (posterior predictive, Student-t with 2aₙ degrees of freedom in log space): location
 * μ = xᵀθ + log s_a, scale² = (bₙ/aₙ)(1 + xᵀPₙ⁻¹x). The median is e^μ and the interval e^(μ ± q·scale).
 * T, the figure budgets add up, is the mean seconds; the mean of e^t for a Student-t t is infinite, so
 * T is the log-normal mean with the predictive's own mean and variance, e^(μ + v/2) with
 * v = bₙ/(aₙ − 1)·(1 + xᵀPₙ⁻¹x). A round's total interval is drawn jointly (predictTotalSeconds).
 *
 * Robustness: a completion counts only if 1 s ≤ t ≤ maxSeconds (default 8 h); then, one at a time,
 * the completion whose externally studentized residual (its residual under the posterior of all the
 * other completions) exceeds `outlierThreshold` (4) in absolute value is excluded, at most a quarter
 * of them. The residual scale in that test is at least MIN_RESIDUAL_SD (0.1: no one predicts a
 * person's labeling time better than ±10 %), so a near-perfect fit does not turn every small
 * residual into an outlier. Every exclusion is listed with its reason. Annotator speeds are random effects
 * log s_a ~ N(0, τ²), τ = SPEED_SPREAD: their estimate is the mean residual shrunk toward 1 by
 * n_a / (n_a + σ²/τ²), centred on the team (completion-weighted mean of log s_a = 0, so T without an
 * annotator is the team's typical time), alternated with the coefficients' update.
 */
import { DomainError, InvalidTimingError } from "./errors.js";

/** A prior that cannot be used (non-finite, α or β < 0, residual SD or strength too small). */
export class InvalidTimePriorError extends DomainError {}

import { addMat, addVec, cholesky3, dot3, invert3, type Mat3, mulMatVec, outer, quadratic, scaleMat, type Vec3, ZERO3 } from "./matrix3.js";
import { normalDraw, seededRandom } from "./seeded-random.js";
import { studentTQuantile } from "./statistics.js";

/** One completed stack: features of its mean heatmap, the annotator's active seconds, who and which. */
export interface TimingObservation {
  readonly boundaryLength: number;
  readonly components: number;
  readonly seconds: number;
  /** Normalised annotator id; without it the observation carries no speed factor. */
  readonly annotator?: string;
  /** Stack id (or any label) reported with an exclusion. */
  readonly id?: string;
}

export interface LabelingFeatures {
  /** B: total boundary length (pixels) of the thresholded mean heatmap, averaged over thresholds. */
  readonly boundaryLength: number;
  /** M: number of connected components, averaged over thresholds. */
  readonly components: number;
}

/** The prior: its centre (α, β, γ, residual SD s₀ of log t) and its weight in completions. */
export interface TimePrior {
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  readonly residualSd: number;
  /**
   * How many completions the prior is worth (≥ MIN_PRIOR_STRENGTH), spread like the reference stacks;
   * 4 by default: a handful of completions moves it. In a direction where the completions spread less
   * than the reference stacks (e.g. few distinct component counts) the prior weighs more.
   */
  readonly strength: number;
}

/**
 * Assumptions, not measurements: about 45 s to review a negative stack, ~15 min for one bleed of
 * 500 px boundary, ~2.5 h for 10 bleeds totalling 20,000 px — three orders of magnitude, as in the
 * paper's Fig. 3 — with a residual SD of 0.6 (a factor of ~1.8).
 */
export const DEFAULT_TIME_PRIOR: TimePrior = Object.freeze({ alpha: 0.45, beta: 0.35, gamma: Math.log(45), residualSd: 0.6, strength: 4 });

/** Weakest prior accepted: below it the posterior precision can be singular with a few completions. */
export const MIN_PRIOR_STRENGTH = 0.1;
/** Completions outside [MIN_ACTIVE_SECONDS, maxSeconds] are never fitted (the API refuses them too). */
export const MIN_ACTIVE_SECONDS = 1;
export const DEFAULT_MAX_ACTIVE_SECONDS = 8 * 3600;
export const DEFAULT_OUTLIER_THRESHOLD = 4;
/** τ: prior SD of log speed factors (most annotators within ×0.55–×1.8 of the typical one). */
export const SPEED_SPREAD = 0.3;
/** Floor of the residual SD (log scale) when judging outliers. */
export const MIN_RESIDUAL_SD = 0.1;
/** Default level of prediction intervals. */
export const DEFAULT_INTERVAL_LEVEL = 0.8;

/** The posterior: θ | σ² ~ N(mean, σ²·covariance), σ² ~ IG(shape, scale). */
export interface TimePosterior {
  readonly mean: Vec3;
  readonly covariance: Mat3;
  readonly shape: number;
  readonly scale: number;
}

export interface AnnotatorSpeed {
  readonly annotator: string;
  /** s_a: multiplies the typical annotator's time (> 1: slower). */
  readonly factor: number;
  readonly completions: number;
}

export interface ExcludedTiming {
  /** Position in the observations given to the fit. */
  readonly index: number;
  readonly id?: string;
  readonly reason: "out-of-range" | "outlier";
  /** For outliers: the externally studentized residual. */
  readonly studentizedResidual?: number;
}

/** A fitted (or prior) model. */
export interface TimeModel {
  /** The coefficients used: the posterior mode under α, β ≥ 0. */
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  readonly source: "fit" | "prior";
  /** Completions fitted on (0 for the prior). */
  readonly n: number;
  /** R² of the fitted completions on the log scale, speed factors applied (null below 3 completions). */
  readonly r2: number | null;
  /** √E[σ²]: residual SD of log t. */
  readonly residualSd: number;
  readonly posterior: TimePosterior;
  /** Coefficients held at 0 by the constraint α, β ≥ 0. */
  readonly atBound: readonly ("alpha" | "beta")[];
  readonly annotatorSpeeds: readonly AnnotatorSpeed[];
  readonly excluded: readonly ExcludedTiming[];
  readonly prior: TimePrior;
}

export interface FitOptions {
  readonly prior?: TimePrior;
  /** Longest credible active time in seconds (default 8 h). */
  readonly maxSeconds?: number;
  readonly outlierThreshold?: number;
}

const REFERENCE_STACKS: readonly LabelingFeatures[] = [
  { boundaryLength: 0, components: 0 },
  { boundaryLength: 500, components: 1 },
  { boundaryLength: 3000, components: 3 },
  { boundaryLength: 20000, components: 10 },
];

/** x = [log(1+B), log(1+M), 1]. */
export const designRow = (f: LabelingFeatures): Vec3 => [Math.log1p(f.boundaryLength), Math.log1p(f.components), 1];

/** P₀ = strength · mean of x xᵀ over the reference stacks. */
export function priorPrecision(strength: number): Mat3 {
  let g: Mat3 = ZERO3;
  for (const s of REFERENCE_STACKS) g = addMat(g, outer(designRow(s)));
  return scaleMat(g, strength / REFERENCE_STACKS.length);
}

/** Sufficient statistics of a set of (x, y) rows. */
interface Stats {
  readonly xtx: Mat3;
  readonly xty: Vec3;
  readonly yty: number;
  readonly n: number;
}

function statsOf(rows: readonly { x: Vec3; y: number }[]): Stats {
  let xtx: Mat3 = ZERO3;
  let xty: Vec3 = [0, 0, 0];
  let yty = 0;
  for (const { x, y } of rows) {
    xtx = addMat(xtx, outer(x));
    xty = addVec(xty, x, y);
    yty += y * y;
  }
  return { xtx, xty, yty, n: rows.length };
}

/** The conjugate update of the prior with the statistics (module comment). */
export function conjugatePosterior(prior: TimePrior, stats: Stats): TimePosterior & { precision: Mat3 } {
  checkPrior(prior);
  const p0 = priorPrecision(prior.strength);
  const m0: Vec3 = [prior.alpha, prior.beta, prior.gamma];
  const a0 = 1 + prior.strength / 2;
  const b0 = (a0 - 1) * prior.residualSd ** 2;
  const precision = addMat(p0, stats.xtx);
  const covariance = invert3(precision);
  if (!covariance) throw new InvalidTimePriorError("the posterior precision is singular: raise the prior's strength");
  // With no completions the posterior mean is m₀ itself (not P₀⁻¹P₀m₀ rounded).
  const mean = stats.n === 0 ? m0 : mulMatVec(covariance, addVec(mulMatVec(p0, m0), stats.xty));
  // bₙ ≥ b₀ exactly (a sum of squares is added); rounding can only take it below.
  const scale = Math.max(b0, b0 + 0.5 * (stats.yty + quadratic(p0, m0) - quadratic(precision, mean)));
  return { mean, covariance, precision, shape: a0 + stats.n / 2, scale };
}

/** The model with no completions: the prior itself. */
export function timeModelFromPrior(prior: TimePrior = DEFAULT_TIME_PRIOR): TimeModel {
  return finish(prior, statsOf([]), [], [], [], null);
}

export const PRIOR_TIME_MODEL: TimeModel = Object.freeze(timeModelFromPrior(DEFAULT_TIME_PRIOR));

/**
 * The posterior after `observations` (module comment: range rule, outliers, speeds, constraint).
 * Malformed observations (NaN, negative features, seconds ≤ 0) throw InvalidTimingError naming the
 * entry; out-of-range times and outliers are excluded and listed, never thrown.
 */
export function fitTimeModel(observations: readonly TimingObservation[], options: FitOptions = {}): TimeModel {
  const prior = options.prior ?? DEFAULT_TIME_PRIOR;
  const maxSeconds = options.maxSeconds ?? DEFAULT_MAX_ACTIVE_SECONDS;
  const threshold = options.outlierThreshold ?? DEFAULT_OUTLIER_THRESHOLD;
  observations.forEach(validateObservation);
  const excluded: ExcludedTiming[] = [];
  const exclude = (index: number, reason: ExcludedTiming["reason"], studentizedResidual?: number) => {
    const id = (observations[index] as TimingObservation).id;
    excluded.push({
      index,
      ...(id !== undefined ? { id } : {}),
      reason,
      ...(studentizedResidual !== undefined ? { studentizedResidual } : {}),
    });
  };
  let included: number[] = [];
  observations.forEach((o, i) => {
    if (o.seconds >= MIN_ACTIVE_SECONDS && o.seconds <= maxSeconds) included.push(i);
    else exclude(i, "out-of-range");
  });
  const maxOutliers = Math.floor(included.length / 4);
  let fit = fitWithSpeeds(observations, included, prior);
  for (let dropped = 0; dropped < maxOutliers; dropped++) {
    const worst = worstStudentized(observations, included, fit);
    if (!worst || Math.abs(worst.z) <= threshold) break;
    exclude(worst.index, "outlier", worst.z);
    included = included.filter((i) => i !== worst.index);
    fit = fitWithSpeeds(observations, included, prior);
  }
  const rows = included.map((i) => rowOf(observations[i] as TimingObservation, fit.logSpeed));
  return finish(prior, statsOf(rows), rows, speedsOf(observations, included, fit.logSpeed), excluded, "fit");
}

interface SpeedFit {
  readonly posterior: TimePosterior & { precision: Mat3 };
  readonly logSpeed: ReadonlyMap<string, number>;
}

function rowOf(o: TimingObservation, logSpeed: ReadonlyMap<string, number>): { x: Vec3; y: number } {
  const offset = o.annotator !== undefined ? (logSpeed.get(o.annotator) ?? 0) : 0;
  return { x: designRow(o), y: Math.log(o.seconds) - offset };
}

/** Alternates the coefficients' update and the shrunk speed estimates (a few passes converge). */
function fitWithSpeeds(observations: readonly TimingObservation[], included: readonly number[], prior: TimePrior): SpeedFit {
  let logSpeed = new Map<string, number>();
  let posterior = conjugatePosterior(prior, statsOf(included.map((i) => rowOf(observations[i] as TimingObservation, logSpeed))));
  for (let pass = 0; pass < 8; pass++) {
    const sigma2 = posterior.scale / (posterior.shape - 1);
    const shrink = sigma2 / SPEED_SPREAD ** 2;
    const sums = new Map<string, { total: number; count: number }>();
    for (const i of included) {
      const o = observations[i] as TimingObservation;
      if (o.annotator === undefined) continue;
      const residual = Math.log(o.seconds) - dot3(designRow(o), posterior.mean);
      const s = sums.get(o.annotator) ?? { total: 0, count: 0 };
      sums.set(o.annotator, { total: s.total + residual, count: s.count + 1 });
    }
    const raw = [...sums].map(([annotator, s]) => [annotator, s.total / (s.count + shrink), s.count] as const);
    // Speeds are relative to the team: centred so that their completion-weighted log mean is 0 (with one
    // annotator the factor is 1 and γ carries the team's level; otherwise γ and the speeds are confounded).
    const count = raw.reduce((n, [, , c]) => n + c, 0);
    const centre = count > 0 ? raw.reduce((m, [, v, c]) => m + v * c, 0) / count : 0;
    logSpeed = new Map(raw.map(([annotator, v]) => [annotator, v - centre]));
    posterior = conjugatePosterior(prior, statsOf(included.map((i) => rowOf(observations[i] as TimingObservation, logSpeed))));
  }
  return { posterior, logSpeed };
}

/**
 * The included observation with the largest |externally studentized residual|: e/√((1 − h)·b₋ᵢ/a₋ᵢ)
 * with e the residual, h = xᵀPₙ⁻¹x and the posterior without it, b₋ᵢ = bₙ − e²/(2(1 − h)), a₋ᵢ = aₙ − ½
 * (deleting one row of the regression augmented by the prior's pseudo-rows).
 */
function worstStudentized(observations: readonly TimingObservation[], included: readonly number[], fit: SpeedFit) {
  const { posterior } = fit;
  let worst: { index: number; z: number } | undefined;
  for (const i of included) {
    const { x, y } = rowOf(observations[i] as TimingObservation, fit.logSpeed);
    const e = y - dot3(x, posterior.mean);
    const h = quadratic(posterior.covariance, x);
    const shape = posterior.shape - 0.5;
    const scale = posterior.scale - (e * e) / (2 * (1 - h));
    const variance = scale > 0 ? Math.max(scale / shape, MIN_RESIDUAL_SD ** 2) : MIN_RESIDUAL_SD ** 2;
    const z = h < 1 ? e / Math.sqrt((1 - h) * variance) : Number.POSITIVE_INFINITY * Math.sign(e);
    if (!worst || Math.abs(z) > Math.abs(worst.z)) worst = { index: i, z };
  }
  return worst;
}

function speedsOf(
  observations: readonly TimingObservation[],
  included: readonly number[],
  logSpeed: ReadonlyMap<string, number>,
): AnnotatorSpeed[] {
  const counts = new Map<string, number>();
  for (const i of included) {
    const a = (observations[i] as TimingObservation).annotator;
    if (a !== undefined) counts.set(a, (counts.get(a) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([annotator, completions]) => ({ annotator, factor: Math.exp(logSpeed.get(annotator) ?? 0), completions }));
}

/** Posterior → model: constrained mode, widened scale, R². */
function finish(
  prior: TimePrior,
  stats: Stats,
  rows: readonly { x: Vec3; y: number }[],
  annotatorSpeeds: AnnotatorSpeed[],
  excluded: ExcludedTiming[],
  source: "fit" | null,
): TimeModel {
  const posterior = conjugatePosterior(prior, stats);
  const { theta, atBound, misfit } = nonNegativeMode(posterior.mean, posterior.precision);
  const scale = posterior.scale + misfit / 2;
  let r2: number | null = null;
  if (rows.length >= 3) {
    const meanY = rows.reduce((s, r) => s + r.y, 0) / rows.length;
    const ssTot = rows.reduce((s, r) => s + (r.y - meanY) ** 2, 0);
    const ssRes = rows.reduce((s, r) => s + (r.y - dot3(r.x, theta)) ** 2, 0);
    r2 = ssTot > 0 ? Math.min(1, 1 - ssRes / ssTot) : null;
  }
  return {
    alpha: theta[0],
    beta: theta[1],
    gamma: theta[2],
    source: source === "fit" && stats.n > 0 ? "fit" : "prior",
    n: stats.n,
    r2,
    residualSd: Math.sqrt(scale / (posterior.shape - 1)),
    posterior: { mean: posterior.mean, covariance: posterior.covariance, shape: posterior.shape, scale },
    atBound,
    annotatorSpeeds,
    excluded,
    prior,
  };
}

/**
 * argmin (θ − m)ᵀP(θ − m) subject to θ₀ ≥ 0, θ₁ ≥ 0, by enumerating the active sets (a convex problem
 * with two bounds: the best feasible candidate is the optimum).
 */
export function nonNegativeMode(m: Vec3, precision: Mat3): { theta: Vec3; atBound: ("alpha" | "beta")[]; misfit: number } {
  let best: { theta: Vec3; atBound: ("alpha" | "beta")[]; misfit: number } | undefined;
  for (const fixed of [[], [0], [1], [0, 1]] as number[][]) {
    const free = [0, 1, 2].filter((k) => !fixed.includes(k));
    // θ_F = m_F + P_FF⁻¹ P_FS m_S, θ_S = 0.
    const pff = free.map((i) => free.map((j) => (precision[i] as Vec3)[j as 0]));
    const rhs = free.map((i) => fixed.reduce((s, j) => s + (precision[i] as Vec3)[j as 0] * m[j as 0], 0));
    const delta = solveSmall(pff, rhs);
    if (!delta) continue;
    const theta = [0, 0, 0];
    free.forEach((k, idx) => {
      theta[k] = m[k as 0] + (delta[idx] as number);
    });
    if ((theta[0] as number) < 0 || (theta[1] as number) < 0) continue;
    const t = theta as unknown as Vec3;
    const d = addVec(t, m, -1);
    const misfit = Math.max(0, quadratic(precision, d));
    if (!best || misfit < best.misfit) best = { theta: t, atBound: fixed.map((k) => (k === 0 ? "alpha" : "beta")), misfit };
  }
  // [0, 0, γ] is always feasible; solveSmall fails only for a singular precision, which invert3 refused.
  return best as { theta: Vec3; atBound: ("alpha" | "beta")[]; misfit: number };
}

/** Gaussian elimination with partial pivoting for n ≤ 3. */
function solveSmall(a: number[][], b: number[]): number[] | undefined {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs((m[r] as number[])[c] as number) > Math.abs((m[pivot] as number[])[c] as number)) pivot = r;
    [m[c], m[pivot]] = [m[pivot] as number[], m[c] as number[]];
    const row = m[c] as number[];
    if (Math.abs(row[c] as number) < 1e-300) return undefined;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const other = m[r] as number[];
      const f = (other[c] as number) / (row[c] as number);
      for (let k = c; k <= n; k++) other[k] = (other[k] as number) - f * (row[k] as number);
    }
  }
  return m.map((row, i) => (row[n] as number) / (row[i] as number));
}

export interface TimePrediction {
  /** T: the mean seconds (log-normal with the predictive's mean and variance): what budgets add up. */
  readonly seconds: number;
  /** e^μ. */
  readonly medianSeconds: number;
  /** Posterior predictive interval at `level` for one stack's time. */
  readonly low: number;
  readonly high: number;
  readonly level: number;
}

/** A stack's labeling seconds for the typical annotator, or for `annotator` with their speed factor. */
export function predictLabelingSeconds(
  model: TimeModel,
  features: LabelingFeatures,
  options: { readonly level?: number; readonly annotator?: string } = {},
): TimePrediction {
  const level = options.level ?? DEFAULT_INTERVAL_LEVEL;
  checkFeatures(features);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  const x = designRow(features);
  const { shape, scale, covariance } = model.posterior;
  const speed = options.annotator !== undefined ? (model.annotatorSpeeds.find((s) => s.annotator === options.annotator)?.factor ?? 1) : 1;
  const mu = dot3(x, [model.alpha, model.beta, model.gamma]) + Math.log(speed);
  const inflation = 1 + quadratic(covariance, x);
  const variance = (scale / (shape - 1)) * inflation;
  const spread = Math.sqrt((scale / shape) * inflation);
  const q = studentTQuantile(0.5 + level / 2, 2 * shape);
  return {
    seconds: Math.exp(mu + variance / 2),
    medianSeconds: Math.exp(mu),
    low: Math.exp(mu - q * spread),
    high: Math.exp(mu + q * spread),
    level,
  };
}

export interface TotalPrediction {
  /** Σ T of the stacks (means add). */
  readonly seconds: number;
  /** Interval at `level` of the total, from joint posterior predictive draws. */
  readonly low: number;
  readonly high: number;
  readonly level: number;
}

/**
 * The total labeling seconds of a set of stacks: Σ T, and an interval from `draws` joint draws of
 * (σ², θ, each stack's time) — the stacks share θ and σ², so their errors are correlated and the
 * interval is wider than independent intervals would give. θ is drawn around the constrained mode.
 * Seeded: the same inputs give the same interval on every machine.
 */
export function predictTotalSeconds(
  model: TimeModel,
  features: readonly LabelingFeatures[],
  options: { readonly level?: number; readonly draws?: number; readonly seed?: number } = {},
): TotalPrediction {
  const level = options.level ?? DEFAULT_INTERVAL_LEVEL;
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  features.forEach(checkFeatures);
  const seconds = features.reduce((s, f) => s + predictLabelingSeconds(model, f).seconds, 0);
  if (features.length === 0) return { seconds: 0, low: 0, high: 0, level };
  const draws = options.draws ?? 4000;
  const random = seededRandom(options.seed ?? 1);
  const rows = features.map(designRow);
  const chol = cholesky3(model.posterior.covariance);
  const theta: Vec3 = [model.alpha, model.beta, model.gamma];
  const totals = new Float64Array(draws);
  for (let d = 0; d < draws; d++) {
    const sigma2 = model.posterior.scale / gammaDraw(model.posterior.shape, random);
    const sigma = Math.sqrt(sigma2);
    const z: Vec3 = [normalDraw(random), normalDraw(random), normalDraw(random)];
    const t = addVec(theta, mulMatVec(chol, z), sigma);
    let total = 0;
    for (const x of rows) total += Math.exp(dot3(x, t) + sigma * normalDraw(random));
    totals[d] = total;
  }
  totals.sort();
  const at = (p: number) => totals[Math.min(draws - 1, Math.max(0, Math.round(p * (draws - 1))))] as number;
  return { seconds, low: at(0.5 - level / 2), high: at(0.5 + level / 2), level };
}

/** Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape < 1 by the boost u^(1/shape)). */
function gammaDraw(shape: number, random: () => number): number {
  if (shape < 1) return gammaDraw(shape + 1, random) * (1 - random()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normalDraw(random);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/**
 * Why a model must not be stored, or undefined when it may: every posterior number finite, and the
 * mean and median seconds finite and within [1 s, 24 h] at the corners of the observed ranges of B and
 * M (with α, β ≥ 0 the extremes of a prediction lie at those corners).
 */
export function implausibility(model: TimeModel, observed: readonly LabelingFeatures[]): string | undefined {
  const numbers = [
    model.alpha,
    model.beta,
    model.gamma,
    model.residualSd,
    model.posterior.shape,
    model.posterior.scale,
    ...model.posterior.mean,
    ...model.posterior.covariance.flat(),
  ];
  if (!numbers.every(Number.isFinite)) return "the posterior holds a non-finite number";
  if (observed.length === 0) return undefined;
  const bs = observed.map((f) => f.boundaryLength);
  const ms = observed.map((f) => f.components);
  for (const boundaryLength of [Math.min(...bs), Math.max(...bs)]) {
    for (const components of [Math.min(...ms), Math.max(...ms)]) {
      const p = predictLabelingSeconds(model, { boundaryLength, components });
      for (const [name, v] of [
        ["mean", p.seconds],
        ["median", p.medianSeconds],
      ] as const) {
        if (!Number.isFinite(v) || v < 1 || v > 86_400) {
          return `the ${name} prediction at B=${boundaryLength.toFixed(1)}, M=${components.toFixed(2)} is ${v.toPrecision(3)} s, outside [1 s, 24 h]`;
        }
      }
    }
  }
  return undefined;
}

function checkPrior(prior: TimePrior): void {
  for (const key of ["alpha", "beta", "gamma", "residualSd", "strength"] as const) {
    if (!Number.isFinite(prior[key])) throw new InvalidTimePriorError(`prior.${key} must be a finite number, got ${prior[key]}`);
  }
  if (prior.alpha < 0 || prior.beta < 0) throw new InvalidTimePriorError("prior.alpha and prior.beta must be ≥ 0");
  if (!(prior.residualSd > 0)) throw new InvalidTimePriorError(`prior.residualSd must be > 0, got ${prior.residualSd}`);
  if (!(prior.strength >= MIN_PRIOR_STRENGTH)) {
    throw new InvalidTimePriorError(`prior.strength must be ≥ ${MIN_PRIOR_STRENGTH}, got ${prior.strength}`);
  }
}

function checkFeatures(f: LabelingFeatures): void {
  if (!Number.isFinite(f.boundaryLength) || f.boundaryLength < 0) {
    throw new RangeError(`boundaryLength must be a finite number ≥ 0, got ${f.boundaryLength}`);
  }
  if (!Number.isFinite(f.components) || f.components < 0) {
    throw new RangeError(`components must be a finite number ≥ 0, got ${f.components}`);
  }
}

function validateObservation(o: TimingObservation, index: number): void {
  const check = (name: "boundaryLength" | "components" | "seconds", ok: (v: number) => boolean, want: string) => {
    const v = o?.[name];
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      throw new InvalidTimingError(index, `${name} must be ${want}, got ${v}`);
    }
  };
  check("boundaryLength", (v) => v >= 0, "a finite number ≥ 0");
  check("components", (v) => v >= 0, "a finite number ≥ 0");
  check("seconds", (v) => v > 0, "a finite number > 0");
}
