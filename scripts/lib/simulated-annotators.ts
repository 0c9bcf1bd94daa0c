/**
 * Simulated annotators: how long a stack really takes to label, drawn from the phantom's exact mask.
 *
 * Model (an assumption of the simulation, not a measurement): the paper's labeling-time law (§3.2,
 * eq. 2) holds for the TRUE lesion outlines, with log-normal noise,
 *
 *     log t = α log(1 + B) + β log(1 + M) + γ + σ·ε,   ε ~ N(0, 1),
 *
 * where B is the boundary length and M the number of connected components of the phantom's
 * ground-truth mask, measured per frame on the model's grid exactly as the scoring container
 * measures its predicted heatmap (`python -m ichal phantoms --true-features-grid`). The true
 * coefficients differ on purpose from the built-in prior (α 0.45, β 0.35, γ = log 45 s): e^γ = 2 min
 * to page through a negative stack of ~30 frames (about 4 s a frame), about 25 min for one small
 * bleed (B ≈ 80 px, M ≈ 10 outlines), about 1.5 h for a large multifocal one (B ≈ 600, M ≈ 40).
 *
 * What the refit can recover: it regresses the completed times on the *predicted* B̂ and M̂ of the
 * ensemble's heatmap, not on the true B and M. A small CPU ensemble under-segments (B̂ < B) and
 * merges fragments (M̂ ≪ M for subarachnoid blood), so the fit moves from the prior toward these
 * coefficients but keeps a bias (γ̂ above γ, β̂ near 0): the paper's point that T is predicted from
 * the model's own masks, measured here rather than assumed away.
 *
 * Annotators differ: the k-th simulated annotator works SIMULATED_SPEEDS[k mod 2] times as long as the
 * law says (×0.8 and ×1.25, geometric mean 1), which the refit's speed factors should pick up.
 *
 * Draws come from a seeded generator (same seed, same times).
 */
import { normalDraw, seededRandom } from "../../lambdas/domain/seeded-random.js";

export const TRUE_TIME_MODEL = { alpha: 0.45, beta: 0.25, gamma: Math.log(120), sd: 0.25 } as const;

export interface TrueFeatures {
  boundaryLength: number;
  components: number;
}

/** The mean of log t under the true model. */
export function trueLogSeconds(features: TrueFeatures): number {
  const { alpha, beta, gamma } = TRUE_TIME_MODEL;
  return alpha * Math.log1p(features.boundaryLength) + beta * Math.log1p(features.components) + gamma;
}

/** Speed factors of the simulated annotators, by their position in the annotator list (cycled). */
export const SIMULATED_SPEEDS = [0.8, 1.25] as const;

/**
 * Draws active seconds for stacks in the order given (one normal draw each, seeded), whole seconds as
 * the worklist page reports them; `speeds[i]` multiplies stack i's time (its annotator's factor).
 */
export function simulatedActiveSeconds(features: readonly TrueFeatures[], seed: number, speeds: readonly number[] = []): number[] {
  const random = seededRandom(seed);
  return features.map((f, i) =>
    Math.max(1, Math.round(Math.exp(trueLogSeconds(f) + Math.log(speeds[i] ?? 1) + TRUE_TIME_MODEL.sd * normalDraw(random)))),
  );
}
