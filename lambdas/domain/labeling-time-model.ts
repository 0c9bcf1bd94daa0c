/**
 * Labeling-time model (paper §3.2, eq. 2):  log t = α log B + β log M + γ
 * with B the boundary length and M the number of connected components of the thresholded mean
 * heatmap, fitted by least squares on stacks annotators have completed.
 *
 * Zeros. A negative stack has B = 0 and M = 0, where log is undefined, yet it still costs the
 * annotator a scroll through every frame. We therefore use log(1 + B) and log(1 + M): identical to
 * log B, log M up to O(1/B) for real lesions, and exactly 0 for an empty heatmap, so e^γ is the
 * time to review a stack with nothing to draw. (B is in pixels, M a count; both are means over
 * thresholds and may be fractional.)
 *
 * Prediction. ŷ = α log(1+B) + β log(1+M) + γ is the mean of log t. The predicted seconds used for
 * budgeting is the log-normal mean e^(ŷ + s²/2), because annotators' hours add up as means, not
 * medians; the median e^ŷ and a prediction interval e^(ŷ ± q·s·√(1 + 1/n + x₀ᵀS⁻¹x₀)) (q a Student-t
 * quantile with n − 3 degrees of freedom) are reported beside it.
 *
 * Prior. Until `minCompletions` stacks are completed, {@link PRIOR_TIME_MODEL} is used. Its numbers
 * are assumptions, not measurements: about 45 s to review a negative stack, ~15 min for a single
 * bleed of 500 px boundary, ~2.5 h for 10 bleeds totalling 20,000 px — a span of about three orders
 * of magnitude, as the paper reports (Fig. 3).
 */
import { DegenerateFitError, InvalidTimingError } from "./errors.js";
import { studentTQuantile } from "./statistics.js";

/** One completed stack: features of its mean heatmap and the annotator's active seconds. */
export interface TimingObservation {
  readonly boundaryLength: number;
  readonly components: number;
  readonly seconds: number;
}

export interface LabelingFeatures {
  /** B: total boundary length (pixels) of the thresholded mean heatmap, averaged over thresholds. */
  readonly boundaryLength: number;
  /** M: number of connected components, averaged over thresholds. */
  readonly components: number;
}

/** A fitted (or prior) model, with what is needed to predict with an interval. */
export interface TimeModel {
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  readonly source: "fit" | "prior";
  /** Completed stacks fitted on (0 for the prior). */
  readonly n: number;
  /** R² of the fit on the log scale (null for the prior). */
  readonly r2: number | null;
  /** s: residual standard deviation of log t (natural log). */
  readonly residualSd: number;
  /** Feature means and inverse centred cross-product matrix [a, b, c] for [[a, b], [b, c]]; null for the prior. */
  readonly design: { readonly meanLogB: number; readonly meanLogM: number; readonly inverse: readonly [number, number, number] } | null;
}

export const PRIOR_TIME_MODEL: TimeModel = Object.freeze({
  alpha: 0.45,
  beta: 0.35,
  gamma: Math.log(45),
  source: "prior",
  n: 0,
  r2: null,
  residualSd: 0.6,
  design: null,
});

/** Fewest completions for which the fit replaces the prior (the paper fitted on 61). */
export const DEFAULT_MIN_COMPLETIONS = 20;
/** Three coefficients and one residual degree of freedom. */
export const MIN_FIT_OBSERVATIONS = 4;

const logB = (f: LabelingFeatures) => Math.log1p(f.boundaryLength);
const logM = (f: LabelingFeatures) => Math.log1p(f.components);

/** Ordinary least squares of log t on [log(1+B), log(1+M), 1]. Errors name the bad observation or the degeneracy. */
export function fitTimeModel(observations: readonly TimingObservation[]): TimeModel {
  observations.forEach(validateObservation);
  const n = observations.length;
  if (n < MIN_FIT_OBSERVATIONS) {
    throw new DegenerateFitError(
      `need at least ${MIN_FIT_OBSERVATIONS} completed stacks to fit α, β, γ with a residual estimate, got ${n}`,
    );
  }
  const x1 = observations.map(logB);
  const x2 = observations.map(logM);
  const y = observations.map((o) => Math.log(o.seconds));
  const mean = (v: number[]) => v.reduce((s, a) => s + a, 0) / v.length;
  const m1 = mean(x1);
  const m2 = mean(x2);
  const my = mean(y);
  let s11 = 0;
  let s12 = 0;
  let s22 = 0;
  let s1y = 0;
  let s2y = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = (x1[i] as number) - m1;
    const b = (x2[i] as number) - m2;
    const c = (y[i] as number) - my;
    s11 += a * a;
    s12 += a * b;
    s22 += b * b;
    s1y += a * c;
    s2y += b * c;
    syy += c * c;
  }
  const scale = (v: number[]) => Math.max(1, ...v.map(Math.abs));
  if (s11 <= 1e-12 * n * scale(x1) ** 2) {
    throw new DegenerateFitError(`boundary length is the same for all ${n} stacks: α cannot be estimated`);
  }
  if (s22 <= 1e-12 * n * scale(x2) ** 2) {
    throw new DegenerateFitError(`component count is the same for all ${n} stacks: β cannot be estimated`);
  }
  const det = s11 * s22 - s12 * s12;
  if (det <= 1e-10 * s11 * s22) {
    throw new DegenerateFitError(
      `log boundary length and log component count are collinear across the ${n} stacks: α and β cannot be separated`,
    );
  }
  const inverse: [number, number, number] = [s22 / det, -s12 / det, s11 / det];
  const alpha = inverse[0] * s1y + inverse[1] * s2y;
  const beta = inverse[1] * s1y + inverse[2] * s2y;
  const gamma = my - alpha * m1 - beta * m2;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const r = (y[i] as number) - (alpha * (x1[i] as number) + beta * (x2[i] as number) + gamma);
    ssRes += r * r;
  }
  return {
    alpha,
    beta,
    gamma,
    source: "fit",
    n,
    r2: syy > 0 ? 1 - ssRes / syy : 1,
    residualSd: Math.sqrt(ssRes / (n - 3)),
    design: { meanLogB: m1, meanLogM: m2, inverse },
  };
}

/** The fitted model once there are `minCompletions` observations, otherwise the prior. */
export function chooseTimeModel(observations: readonly TimingObservation[], minCompletions: number = DEFAULT_MIN_COMPLETIONS): TimeModel {
  if (observations.length < Math.max(minCompletions, MIN_FIT_OBSERVATIONS)) return PRIOR_TIME_MODEL;
  return fitTimeModel(observations);
}

export interface TimePrediction {
  /** Log-normal mean e^(ŷ + s²/2): the figure budgets add up. */
  readonly seconds: number;
  /** e^ŷ. */
  readonly medianSeconds: number;
  /** Prediction interval at `level` for one stack's time. */
  readonly low: number;
  readonly high: number;
  readonly level: number;
}

/** Predicts a stack's labeling seconds with a prediction interval (default 90 %). */
export function predictLabelingSeconds(model: TimeModel, features: LabelingFeatures, level = 0.9): TimePrediction {
  const { boundaryLength, components } = features;
  if (!Number.isFinite(boundaryLength) || boundaryLength < 0) {
    throw new RangeError(`boundaryLength must be a finite number ≥ 0, got ${boundaryLength}`);
  }
  if (!Number.isFinite(components) || components < 0) {
    throw new RangeError(`components must be a finite number ≥ 0, got ${components}`);
  }
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  const a = logB(features);
  const b = logM(features);
  const mu = model.alpha * a + model.beta * b + model.gamma;
  const s = model.residualSd;
  let spread = s;
  let dof = Number.POSITIVE_INFINITY;
  if (model.design) {
    const da = a - model.design.meanLogB;
    const db = b - model.design.meanLogM;
    const [i11, i12, i22] = model.design.inverse;
    spread = s * Math.sqrt(1 + 1 / model.n + da * da * i11 + 2 * da * db * i12 + db * db * i22);
    dof = model.n - 3;
  }
  const q = studentTQuantile(0.5 + level / 2, dof);
  return {
    seconds: Math.exp(mu + (s * s) / 2),
    medianSeconds: Math.exp(mu),
    low: Math.exp(mu - q * spread),
    high: Math.exp(mu + q * spread),
    level,
  };
}

function validateObservation(o: TimingObservation, index: number): void {
  const check = (name: keyof TimingObservation, ok: (v: number) => boolean, want: string) => {
    const v = o?.[name];
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      throw new InvalidTimingError(index, `${name} must be ${want}, got ${v}`);
    }
  };
  check("boundaryLength", (v) => v >= 0, "a finite number ≥ 0");
  check("components", (v) => v >= 0, "a finite number ≥ 0");
  check("seconds", (v) => v > 0, "a finite number > 0");
}
