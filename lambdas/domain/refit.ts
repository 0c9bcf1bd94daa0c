/**
 * The weekly refit of the labeling-time model (domain/labeling-time-model.ts: Bayesian regression of
 * log t on log(1+B), log(1+M) with annotator speed factors), first state of the weekly workflow so that
 * the selection that follows budgets with the newest T. One bad record never stops the round:
 *
 *  1. Observations: every `labeled` stack with scores (B, M) and a completion (t, annotator) whose time
 *     the page measured; `external` completions (a desktop tool's mask: the page did not see the work)
 *     are left out and counted.
 *  2. Fit: the posterior after all of them (out-of-range times and outliers excluded and listed). A new
 *     version is stored only when what is fitted changed (completions fitted, exclusions, prior), and
 *     only if it is plausible (finite, predictions within [1 s, 24 h] over the observed B and M);
 *     otherwise the version in effect stays and the output says why (`refused`; an alarm watches it).
 *     version = newest + 1, written conditionally: of two concurrent refits one writes, the other adopts.
 *  3. Re-predict: every `pending` stack whose prediction comes from an older version gets T from the
 *     version in effect, by a conditional write (RecordStore.repredict).
 *  4. Calibration: for every round with completed stacks, Σ T predicted at selection with the 80 %
 *     interval of that version's posterior predictive against Σ actual seconds; the newest round is
 *     reported with actual / predicted against the configured band, and the share of rounds whose actual
 *     fell inside their interval.
 *
 * Pure apart from the ports passed in: no SDK, no clock (`now` comes from the execution), no env.
 */
import type { Prediction, Scores, SelectionRound, StackRecord } from "../contracts/records.js";
import { DomainError } from "./errors.js";
import {
  DEFAULT_INTERVAL_LEVEL,
  DEFAULT_MAX_ACTIVE_SECONDS,
  DEFAULT_TIME_PRIOR,
  type ExcludedTiming,
  fitTimeModel,
  implausibility,
  type LabelingFeatures,
  predictLabelingSeconds,
  predictTotalSeconds,
  type TimeModel,
  type TimePrior,
  type TimingObservation,
} from "./labeling-time-model.js";
import type { RecordStore } from "./record-store.js";
import { modelInEffect, modelVersion, priorVersion, type TimeModelRegistry, type VersionedTimeModel } from "./time-model-store.js";

/** The newest version could not be stored and could not be read back either. */
export class RefitStateError extends DomainError {}

/** The built-in prior as version 0 (in effect until the first fit is stored). */
export const PRIOR_VERSION: VersionedTimeModel = Object.freeze(priorVersion(DEFAULT_TIME_PRIOR));

/** A completed stack as the refit uses it. */
export interface CompletedStack {
  readonly stackId: string;
  readonly selectedBy: string | undefined;
  /** T predicted for it when it was selected (undefined when it had no prediction). */
  readonly predictedSeconds: number | undefined;
  /** The time-model version of that prediction. */
  readonly timeModelVersion: number | undefined;
  readonly observation: TimingObservation;
}

/**
 * Pure: the labeled stacks that can be fitted on (scores and a page-timed completion present); those
 * completed with an external mask are `external`, the rest `skipped`.
 */
export function completedStacks(labeled: readonly StackRecord[]): { completed: CompletedStack[]; skipped: string[]; external: string[] } {
  const completed: CompletedStack[] = [];
  const skipped: string[] = [];
  const external: string[] = [];
  const seen = new Set<string>();
  for (const record of labeled) {
    if (record.status !== "labeled" || record.kind === "study" || !record.scores || !record.completion || seen.has(record.stackId)) {
      skipped.push(record.stackId);
      continue;
    }
    if (record.completion.source === "external") {
      external.push(record.stackId);
      continue;
    }
    seen.add(record.stackId);
    completed.push({
      stackId: record.stackId,
      selectedBy: record.selectedBy,
      predictedSeconds: record.prediction?.predictedSeconds,
      timeModelVersion: record.prediction?.timeModelVersion,
      observation: {
        boundaryLength: record.scores.boundaryLength,
        components: record.scores.components,
        seconds: record.completion.activeSeconds,
        annotator: record.completion.annotator,
        id: record.stackId,
      },
    });
  }
  // Completion order does not change the posterior; a fixed order makes exclusions and output stable.
  completed.sort((a, b) => (a.stackId < b.stackId ? -1 : a.stackId > b.stackId ? 1 : 0));
  return { completed, skipped, external };
}

/** What the refit settles from the institution's configuration. */
export interface RefitSettings {
  readonly prior: TimePrior;
  /** Longest credible active time (seconds); longer completions are not fitted. */
  readonly maxActiveSeconds: number;
  /** actual / predicted outside [low, high] for the last round raises the calibration alarm. */
  readonly calibrationBand: { readonly low: number; readonly high: number };
}

export const DEFAULT_REFIT_SETTINGS: RefitSettings = Object.freeze({
  prior: DEFAULT_TIME_PRIOR,
  maxActiveSeconds: DEFAULT_MAX_ACTIVE_SECONDS,
  calibrationBand: { low: 0.8, high: 1.25 },
});

/** What the refit does with the model: store a new version, or keep the one in effect (and why). */
export type RefitPlan =
  | { readonly action: "store"; readonly candidate: VersionedTimeModel }
  | {
      readonly action: "keep";
      readonly current: VersionedTimeModel;
      /** `unchanged`: the same completions, exclusions and prior as the stored version; `refused`: the fit is implausible. */
      readonly reason: "unchanged" | "refused";
      /** Why a fit was refused (numbers only, no ids). */
      readonly detail?: string;
    };

const samePrior = (a: TimePrior, b: TimePrior) =>
  a.alpha === b.alpha && a.beta === b.beta && a.gamma === b.gamma && a.residualSd === b.residualSd && a.strength === b.strength;

/** Pure: decides from the observations and the version in effect (see the module comment, step 2). */
export function planRefit(
  observations: readonly TimingObservation[],
  current: VersionedTimeModel,
  settings: RefitSettings = DEFAULT_REFIT_SETTINGS,
): RefitPlan {
  const fit = fitTimeModel(observations, { prior: settings.prior, maxSeconds: settings.maxActiveSeconds });
  const stored = current.model;
  if (
    stored.n === fit.n &&
    stored.excluded.length === fit.excluded.length &&
    samePrior(stored.prior, fit.prior) &&
    (current.version > 0 || fit.n === 0)
  ) {
    return { action: "keep", current, reason: "unchanged" };
  }
  const included = observations.filter((_, i) => !fit.excluded.some((e) => e.index === i));
  const problem = implausibility(fit, included);
  if (problem) return { action: "keep", current, reason: "refused", detail: problem };
  return { action: "store", candidate: { version: current.version + 1, model: fit } };
}

/** Pure: T for one stack from a model version (posterior predictive mean, median and 80 % interval). */
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
  /** The interval of that total at `level` (posterior predictive of the version that predicted it). */
  readonly lowSeconds: number;
  readonly highSeconds: number;
  readonly level: number;
  /** Σ annotators' active seconds. */
  readonly actualSeconds: number;
  /** actualSeconds / predictedSeconds (1.0 is a perfect budget; the paper reports within 10 %). */
  readonly ratio: number;
  /** The actual total lies in [lowSeconds, highSeconds]. */
  readonly insideInterval: boolean;
  /** ratio lies in the configured calibration band. */
  readonly withinBand: boolean;
}

const ROUND_ID = /^select-\d{4}-W\d{2}$/;

/** Pure: round ids named by completed stacks' `selectedBy`, newest ISO week first. */
export function roundsWithCompletions(completed: readonly CompletedStack[]): string[] {
  const ids = new Set<string>();
  for (const c of completed) if (c.selectedBy && ROUND_ID.test(c.selectedBy)) ids.add(c.selectedBy);
  // select-YYYY-Www is zero-padded: string order is week order.
  return [...ids].sort().reverse();
}

/** Pure: the completed stacks of `roundId` that have a prediction and, when the round record is known, that it selected. */
export function roundMembers(roundId: string, completed: readonly CompletedStack[], round: SelectionRound | undefined): CompletedStack[] {
  const members = round ? new Set(round.selected) : undefined;
  return completed.filter((c) => c.selectedBy === roundId && c.predictedSeconds !== undefined && (!members || members.has(c.stackId)));
}

/**
 * Pure: the report for `roundId` over `stacks` (roundMembers) with the model version that predicted
 * them (undefined when there are none). Stacks whose prediction came from another version (a round
 * never mixes them, but records written by hand might) are priced by `model` for the interval.
 */
export function roundTimeReport(
  roundId: string,
  stacks: readonly CompletedStack[],
  model: TimeModel,
  band: RefitSettings["calibrationBand"],
): RoundTimeReport | undefined {
  if (stacks.length === 0) return undefined;
  const predictedSeconds = stacks.reduce((s, c) => s + (c.predictedSeconds ?? 0), 0);
  const actualSeconds = stacks.reduce((s, c) => s + c.observation.seconds, 0);
  const features: LabelingFeatures[] = stacks.map((c) => c.observation);
  const total = predictTotalSeconds(model, features, { level: DEFAULT_INTERVAL_LEVEL, seed: stacks.length });
  // The interval is of the total this model predicts; re-centre it on the recorded Σ T (they agree
  // unless a prediction was written with another version).
  const shift = predictedSeconds / total.seconds;
  const lowSeconds = total.low * shift;
  const highSeconds = total.high * shift;
  const ratio = actualSeconds / predictedSeconds;
  return {
    roundId,
    stacks: stacks.length,
    predictedSeconds,
    lowSeconds,
    highSeconds,
    level: total.level,
    actualSeconds,
    ratio,
    insideInterval: actualSeconds >= lowSeconds && actualSeconds <= highSeconds,
    withinBand: ratio >= band.low && ratio <= band.high,
  };
}

/** Running calibration over every round with completions. */
export interface CalibrationSummary {
  readonly rounds: number;
  /** Rounds whose actual total fell inside their predicted interval. */
  readonly inside: number;
  /** inside / rounds (null with no rounds); about the interval's level when the model is calibrated. */
  readonly share: number | null;
}

/** The refit state's output (at `$.refit` in the execution state). */
export interface RefitOutput {
  /** Version in effect after this run (0: the prior). */
  readonly version: number;
  /** True when this run stored a new version. */
  readonly fitted: boolean;
  /** Completed stacks fitted on by the version in effect. */
  readonly n: number;
  /** Completed stacks found. */
  readonly completions: number;
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  /** R² on the log scale of the version in effect (null for the prior). */
  readonly r2: number | null;
  readonly residualSd: number;
  /** Coefficients held at 0 by α, β ≥ 0. */
  readonly atBound: readonly string[];
  /** Completions the version in effect leaves out, with the reason (stack ids, no values). */
  readonly excluded: readonly { stackId: string; reason: ExcludedTiming["reason"]; studentizedResidual?: number }[];
  readonly annotatorSpeeds: TimeModel["annotatorSpeeds"];
  /** Pending stacks whose T this run re-predicted. */
  readonly repredicted: number;
  readonly lastRound: RoundTimeReport | null;
  readonly calibration: CalibrationSummary;
  /** Present when a new fit was refused as implausible: why (numbers only). The version in effect stays. */
  readonly refused?: string;
}

export type RefitLog = (message: string, fields: Record<string, unknown>) => void;

export interface RefitDeps {
  readonly records: RecordStore;
  readonly timeModels: TimeModelRegistry;
  readonly settings?: RefitSettings;
  /** Re-predictions in flight at once (default 16). */
  readonly concurrency?: number;
  readonly log?: RefitLog;
}

/** Runs the refit for the execution time `now` (ISO 8601); see the module comment. */
export async function runRefit(now: string, deps: RefitDeps): Promise<RefitOutput> {
  const log = deps.log ?? (() => {});
  const settings = deps.settings ?? DEFAULT_REFIT_SETTINGS;
  const at = new Date(Date.parse(now)).toISOString();

  const { completed, skipped, external } = completedStacks(await deps.records.listByStatus("labeled"));
  if (skipped.length > 0) log("labeled records skipped (no scores or completion)", { skipped: skipped.length });
  if (external.length > 0) log("external completions left out of the fit (time not measured by the page)", { external: external.length });
  const inEffect = await modelInEffect(deps.timeModels, settings.prior);
  const plan = planRefit(
    completed.map((c) => c.observation),
    inEffect,
    settings,
  );

  let current: VersionedTimeModel;
  let fitted = false;
  if (plan.action === "store") {
    if (await deps.timeModels.put(plan.candidate, at)) {
      current = plan.candidate;
      fitted = true;
      log("time model stored", { version: current.version, n: current.model.n, excluded: current.model.excluded.length });
    } else {
      // Another refit stored this version first: adopt the newest stored version.
      const winner = await deps.timeModels.latest();
      if (!winner) throw new RefitStateError(`version ${plan.candidate.version} was refused as existing but no version can be read`);
      current = winner;
      log("time model version taken by a concurrent refit; adopting it", { version: current.version });
    }
  } else {
    current = plan.current;
    if (plan.reason === "refused")
      log("implausible fit refused; the version in effect stays", { version: current.version, detail: plan.detail });
    else log("time model kept", { version: current.version, reason: plan.reason, n: completed.length });
  }

  const updates = repredictions(await deps.records.listByStatus("pending"), current);
  const moved = await mapConcurrently(updates, deps.concurrency ?? 16, (u) => deps.records.repredict(u.stackId, u.prediction, at));
  const repredicted = moved.filter(Boolean).length;
  if (repredicted < updates.length) log("stacks left pending before re-prediction; skipped", { skipped: updates.length - repredicted });

  const reports = await calibrationReports(completed, deps, settings, current);
  const inside = reports.filter((r) => r.insideInterval).length;

  const { model } = current;
  const stackIdOf = (e: ExcludedTiming) => e.id ?? String(e.index);
  return {
    version: current.version,
    fitted,
    n: model.n,
    completions: completed.length,
    alpha: model.alpha,
    beta: model.beta,
    gamma: model.gamma,
    r2: model.r2,
    residualSd: model.residualSd,
    atBound: model.atBound,
    excluded: model.excluded.map((e) => ({
      stackId: stackIdOf(e),
      reason: e.reason,
      ...(e.studentizedResidual !== undefined ? { studentizedResidual: e.studentizedResidual } : {}),
    })),
    annotatorSpeeds: model.annotatorSpeeds,
    repredicted,
    lastRound: reports[0] ?? null,
    calibration: { rounds: reports.length, inside, share: reports.length > 0 ? inside / reports.length : null },
    ...(plan.action === "keep" && plan.reason === "refused" ? { refused: plan.detail ?? "implausible" } : {}),
  };
}

/** Reports for every round with completed stacks, newest first, each priced by the version that predicted it. */
async function calibrationReports(
  completed: readonly CompletedStack[],
  deps: RefitDeps,
  settings: RefitSettings,
  current: VersionedTimeModel,
): Promise<RoundTimeReport[]> {
  const reports: RoundTimeReport[] = [];
  const versions = new Map<number, TimeModel>();
  for (const roundId of roundsWithCompletions(completed)) {
    const round = await deps.records.getRound(roundId);
    const stacks = roundMembers(roundId, completed, round);
    if (stacks.length === 0) continue;
    const version = round?.timeModelVersion ?? stacks[0]?.timeModelVersion ?? current.version;
    if (!versions.has(version)) {
      versions.set(version, (await modelVersion(deps.timeModels, version, settings.prior))?.model ?? current.model);
    }
    const report = roundTimeReport(roundId, stacks, versions.get(version) as TimeModel, settings.calibrationBand);
    if (report) reports.push(report);
  }
  return reports;
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
