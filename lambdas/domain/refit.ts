/**
 * The weekly refit of the labeling-time model (paper §3.2, eq. 2: log t = α log B + β log M + γ, with
 * log(1 + ·) as domain/labeling-time-model.ts explains), first state of the weekly workflow so that the
 * selection that follows budgets with the newest T.
 *
 *  1. Observations: every `labeled` stack with scores (B, M) and a completion (active seconds t).
 *  2. Fit: the least-squares fit once there are DEFAULT_MIN_COMPLETIONS completions, the documented
 *     prior before (chooseTimeModel). A new version is stored only when the number of completions
 *     differs from the newest stored version's n (or none is stored): version = newest + 1, written
 *     conditionally, so of two concurrent refits exactly one writes version k and the other adopts it.
 *  3. Re-predict: every `pending` stack whose prediction comes from an older version (or has none)
 *     gets T from the version in effect, by a conditional write (RecordStore.repredict) — a stack that
 *     left `pending` meanwhile, or already carries a newer version's T, is skipped, never overwritten.
 *  4. Report: for the newest round (by ISO week, from the labeled stacks' `selectedBy`) with completed
 *     stacks, the predicted and the actual total seconds over those stacks and actual / predicted (the
 *     paper's estimate was within 10 %: a ratio in [0.9, 1.1]).
 *
 * Pure apart from the ports passed in: no SDK, no clock (`now` comes from the execution), no env.
 */
import type { Prediction, Scores, SelectionRound, StackRecord } from "../contracts/records.js";
import { DegenerateFitError, DomainError } from "./errors.js";
import {
  DEFAULT_MIN_COMPLETIONS,
  fitTimeModel,
  MIN_FIT_OBSERVATIONS,
  PRIOR_TIME_MODEL,
  predictLabelingSeconds,
  type TimingObservation,
} from "./labeling-time-model.js";
import type { RecordStore } from "./record-store.js";
import type { TimeModelRegistry, VersionedTimeModel } from "./time-model-store.js";

/** The newest version could not be stored and could not be read back either. */
export class RefitStateError extends DomainError {}

/** The built-in prior as version 0 (in effect until the first fit is stored). */
export const PRIOR_VERSION: VersionedTimeModel = Object.freeze({ version: 0, model: PRIOR_TIME_MODEL });

/** A completed stack as the refit uses it. */
export interface CompletedStack {
  readonly stackId: string;
  readonly selectedBy: string | undefined;
  /** T predicted for it when it was selected (undefined when it had no prediction). */
  readonly predictedSeconds: number | undefined;
  readonly observation: TimingObservation;
}

/** Pure: the labeled stacks that can be fitted on (scores and completion present); the rest are `skipped`. */
export function completedStacks(labeled: readonly StackRecord[]): { completed: CompletedStack[]; skipped: string[] } {
  const completed: CompletedStack[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const record of labeled) {
    if (record.status !== "labeled" || record.kind === "study" || !record.scores || !record.completion || seen.has(record.stackId)) {
      skipped.push(record.stackId);
      continue;
    }
    seen.add(record.stackId);
    completed.push({
      stackId: record.stackId,
      selectedBy: record.selectedBy,
      predictedSeconds: record.prediction?.predictedSeconds,
      observation: {
        boundaryLength: record.scores.boundaryLength,
        components: record.scores.components,
        seconds: record.completion.activeSeconds,
      },
    });
  }
  return { completed, skipped };
}

/** What the refit does with the model: store a new version, or keep the one in effect (and why). */
export type RefitPlan =
  | { readonly action: "store"; readonly candidate: VersionedTimeModel }
  | {
      readonly action: "keep";
      readonly current: VersionedTimeModel;
      /** `too-few`: below the minimum for a fit; `unchanged`: n equals the stored n; `degenerate`: the fit is impossible. */
      readonly reason: "too-few" | "unchanged" | "degenerate";
      /** The DegenerateFitError message (counts only) when `reason` is `degenerate`. */
      readonly detail?: string;
    };

/**
 * Pure: decides from the observations and the newest stored version. Below `minCompletions` the model
 * in effect stays (the prior while nothing is stored). A fit that cannot be made (no spread in B or M,
 * collinear features) keeps the model in effect rather than failing the week's round; the reason is
 * reported in the output.
 */
export function planRefit(
  observations: readonly TimingObservation[],
  latest: VersionedTimeModel | undefined,
  minCompletions: number = DEFAULT_MIN_COMPLETIONS,
): RefitPlan {
  const current = latest ?? PRIOR_VERSION;
  const n = observations.length;
  if (n < Math.max(minCompletions, MIN_FIT_OBSERVATIONS)) return { action: "keep", current, reason: "too-few" };
  if (latest && latest.model.n === n) return { action: "keep", current, reason: "unchanged" };
  try {
    return { action: "store", candidate: { version: current.version + 1, model: fitTimeModel(observations) } };
  } catch (error) {
    if (error instanceof DegenerateFitError) return { action: "keep", current, reason: "degenerate", detail: error.message };
    throw error;
  }
}

/** Pure: T for one stack from a model version (the log-normal mean and its 90 % interval; same as scoring). */
export function predictionFor(scores: Pick<Scores, "boundaryLength" | "components">, current: VersionedTimeModel): Prediction {
  const p = predictLabelingSeconds(current.model, { boundaryLength: scores.boundaryLength, components: scores.components });
  return {
    predictedSeconds: p.seconds,
    medianSeconds: p.medianSeconds,
    low: p.low,
    high: p.high,
    level: p.level,
    timeModelVersion: current.version,
  };
}

/**
 * Pure: the new predictions for pending stacks predicted with a version older than `current` (or
 * without a prediction). Stacks already on `current` or a newer version, and records without scores,
 * are left alone.
 */
export function repredictions(pending: readonly StackRecord[], current: VersionedTimeModel): { stackId: string; prediction: Prediction }[] {
  const updates: { stackId: string; prediction: Prediction }[] = [];
  for (const record of pending) {
    if (record.status !== "pending" || record.kind === "study" || !record.scores) continue;
    if (record.prediction && record.prediction.timeModelVersion >= current.version) continue;
    updates.push({ stackId: record.stackId, prediction: predictionFor(record.scores, current) });
  }
  return updates;
}

/** Predicted against actual labeling time of one round's completed stacks. */
export interface RoundTimeReport {
  readonly roundId: string;
  /** Completed stacks of the round compared (those with a prediction). */
  readonly stacks: number;
  /** Σ T predicted when the stacks were selected. */
  readonly predictedSeconds: number;
  /** Σ annotators' active seconds. */
  readonly actualSeconds: number;
  /** actualSeconds / predictedSeconds (1.0 is a perfect budget; the paper reports within 10 %). */
  readonly ratio: number;
}

const ROUND_ID = /^select-\d{4}-W\d{2}$/;

/** Pure: round ids named by completed stacks' `selectedBy`, newest ISO week first. */
export function roundsWithCompletions(completed: readonly CompletedStack[]): string[] {
  const ids = new Set<string>();
  for (const c of completed) if (c.selectedBy && ROUND_ID.test(c.selectedBy)) ids.add(c.selectedBy);
  // select-YYYY-Www is zero-padded: string order is week order.
  return [...ids].sort().reverse();
}

/**
 * Pure: the report for `roundId` over its completed stacks that have a prediction and, when the round
 * record is known, that the round actually selected. Undefined when there is none.
 */
export function roundTimeReport(
  roundId: string,
  completed: readonly CompletedStack[],
  round: SelectionRound | undefined,
): RoundTimeReport | undefined {
  const members = round ? new Set(round.selected) : undefined;
  let stacks = 0;
  let predictedSeconds = 0;
  let actualSeconds = 0;
  for (const c of completed) {
    if (c.selectedBy !== roundId || c.predictedSeconds === undefined) continue;
    if (members && !members.has(c.stackId)) continue;
    stacks++;
    predictedSeconds += c.predictedSeconds;
    actualSeconds += c.observation.seconds;
  }
  if (stacks === 0) return undefined;
  return { roundId, stacks, predictedSeconds, actualSeconds, ratio: actualSeconds / predictedSeconds };
}

/** The refit state's output (at `$.refit` in the execution state). */
export interface RefitOutput {
  /** Version in effect after this run (0: the built-in prior). */
  readonly version: number;
  /** True when this run stored a new version. */
  readonly fitted: boolean;
  /** Completed stacks found (the observations a fit uses). */
  readonly n: number;
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  /** R² on the log scale of the version in effect (null for the prior). */
  readonly r2: number | null;
  readonly residualSd: number;
  /** Pending stacks whose T this run re-predicted. */
  readonly repredicted: number;
  readonly lastRound: RoundTimeReport | null;
  /** Present when a fit was due but impossible (DegenerateFitError message: counts only, no ids). */
  readonly fitError?: string;
}

export type RefitLog = (message: string, fields: Record<string, unknown>) => void;

export interface RefitDeps {
  readonly records: RecordStore;
  readonly timeModels: TimeModelRegistry;
  /** Completions needed before the fit replaces the prior (default DEFAULT_MIN_COMPLETIONS = 20). */
  readonly minCompletions?: number;
  /** Re-predictions in flight at once (default 16). */
  readonly concurrency?: number;
  readonly log?: RefitLog;
}

/** Runs the refit for the execution time `now` (ISO 8601); see the module comment. */
export async function runRefit(now: string, deps: RefitDeps): Promise<RefitOutput> {
  const log = deps.log ?? (() => {});
  const at = new Date(Date.parse(now)).toISOString();

  const { completed, skipped } = completedStacks(await deps.records.listByStatus("labeled"));
  if (skipped.length > 0) log("labeled records skipped (no scores or completion)", { skipped: skipped.length });
  const latest = await deps.timeModels.latest();
  const plan = planRefit(
    completed.map((c) => c.observation),
    latest,
    deps.minCompletions,
  );

  let current: VersionedTimeModel;
  let fitted = false;
  if (plan.action === "store") {
    if (await deps.timeModels.put(plan.candidate, at)) {
      current = plan.candidate;
      fitted = true;
      log("time model stored", { version: current.version, n: current.model.n });
    } else {
      // Another refit stored this version first: adopt the newest stored version.
      const winner = await deps.timeModels.latest();
      if (!winner) throw new RefitStateError(`version ${plan.candidate.version} was refused as existing but no version can be read`);
      current = winner;
      log("time model version taken by a concurrent refit; adopting it", { version: current.version });
    }
  } else {
    current = plan.current;
    log("time model kept", { version: current.version, reason: plan.reason, n: completed.length });
  }

  const updates = repredictions(await deps.records.listByStatus("pending"), current);
  const moved = await mapConcurrently(updates, deps.concurrency ?? 16, (u) => deps.records.repredict(u.stackId, u.prediction, at));
  const repredicted = moved.filter(Boolean).length;
  if (repredicted < updates.length) log("stacks left pending before re-prediction; skipped", { skipped: updates.length - repredicted });

  let lastRound: RoundTimeReport | null = null;
  for (const roundId of roundsWithCompletions(completed)) {
    const report = roundTimeReport(roundId, completed, await deps.records.getRound(roundId));
    if (report) {
      lastRound = report;
      break;
    }
  }

  const { model } = current;
  return {
    version: current.version,
    fitted,
    n: completed.length,
    alpha: model.alpha,
    beta: model.beta,
    gamma: model.gamma,
    r2: model.r2,
    residualSd: model.residualSd,
    repredicted,
    lastRound,
    ...(plan.action === "keep" && plan.detail ? { fitError: plan.detail } : {}),
  };
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
