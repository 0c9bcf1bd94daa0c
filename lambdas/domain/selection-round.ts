/**
 * The weekly selection round: choose the pending stacks of maximum total uncertainty ΣV whose
 * predicted labeling time ΣT fits the week's budget (exact knapsack), and mark them `selected`.
 *
 * Exactly once per ISO week. The round id is `select-<ISO week of now>`, the week read in the
 * schedule's time zone (`settings.timeZone`; `now` is the execution's scheduled time, passed in;
 * nothing here reads a clock). The protocol:
 *  1. Plan: load the pool (`pending` stacks with scores and a prediction, scored by the model in
 *     service: ModelInService; stacks another model scored wait to be scored again and are counted in
 *     `waitingForRescore`, so V from two models is never compared) and solve the knapsack.
 *  2. Claim: create the round record conditionally (attribute_not_exists) in status `selecting`,
 *     holding the plan. If the round already exists, this run plans nothing new (see below).
 *  3. Mark: move each planned stack `pending → selected` with `selectedBy = roundId`, conditionally on
 *     `pending`, so a stack can never be selected twice or by two rounds. A stack that is no longer
 *     pending counts as selected only if it is already `selectedBy` this round (a re-run); otherwise
 *     it lost a race and is dropped from the round.
 *  4. Complete: replace the round, conditionally on `selecting`, with the final list and totals.
 *
 * Repeats and crashes. A run that finds the round `completed` returns its stored result with
 * `repeated: true` and changes nothing (no second e-mail downstream). A run that finds it `failed` (the
 * failure path, domain/round-failure.ts, put its stacks back in the pool) is an operator's retry: it
 * puts back any stack still marked by the round, plans afresh from the pool, re-claims the round
 * (conditionally on `failed`, so of concurrent retries one claims and the others finish its plan) and
 * continues at step 3. A run that finds it
 * `selecting` — an earlier run crashed between 2 and 4, or another run is in the middle of it —
 * finishes it from the stored plan (steps 3–4; re-marking is idempotent). Of several runs finishing the
 * same round, only the one whose step 4 wins returns `repeated: false`; the others re-read the round and
 * return it with `repeated: true`.
 */
import type { SelectionRound, StackRecord } from "../contracts/records.js";
import type { BudgetItem } from "./budget-items.js";
import { DomainError } from "./errors.js";
import { roundIdOf } from "./iso-week.js";
import { solveKnapsack } from "./knapsack.js";
import { predictTotalSeconds, type TimePrior } from "./labeling-time-model.js";
import type { RecordStore } from "./record-store.js";
import { restoreRoundStacks } from "./round-failure.js";
import { modelVersion, type TimeModelStore } from "./time-model-store.js";

/** The round record disappeared or holds a status this run cannot continue from. */
export class RoundStateError extends DomainError {}

export interface RoundSettings {
  /** Q in seconds. */
  readonly budgetSeconds: number;
  /** r in seconds. */
  readonly resolutionSeconds: number;
  /** The schedule's IANA time zone: the round is the ISO week of `now` there. */
  readonly timeZone: string;
}

export interface SelectedStack {
  readonly stackId: string;
  readonly predictedSeconds: number;
  readonly stackUncertainty: number;
  readonly stackScore: number;
}

/** The select state's output, consumed by the next states of the weekly workflow. */
export interface SelectOutput {
  readonly roundId: string;
  /** True when this run selected nothing because the week's round was already done. */
  readonly repeated: boolean;
  readonly selected: SelectedStack[];
  readonly totalPredictedSeconds: number;
  readonly budgetSeconds: number;
  readonly poolSize: number;
  /** The 80 % interval of totalPredictedSeconds, when the round recorded one. */
  readonly predictedInterval?: SelectionRound["predictedInterval"];
  /** The model every stack of the pool was scored by, and how many pending stacks wait for it. */
  readonly modelVersion?: string;
  readonly waitingForRescore?: number;
}

export interface RoundPlan {
  /** The round record to claim (status `selecting`, `selected` = the knapsack's choice). */
  readonly round: SelectionRound;
  /** The scored pool by stack id. */
  readonly pool: ReadonlyMap<string, StackRecord>;
  /** Pending records left out because they lack scores or a prediction (or are not stacks). */
  readonly skipped: string[];
  /** Pending stacks left out because another model than `modelVersion` scored them. */
  readonly waiting: string[];
}

/**
 * Pure: the round for `now` from the pending records. With `modelVersion` (the model in service) only
 * stacks it scored are in the pool; the others are `waiting`.
 */
export function planRound(pending: readonly StackRecord[], now: string, settings: RoundSettings, modelVersion?: string): RoundPlan {
  const roundId = roundIdOf(now, settings.timeZone);
  const pool = new Map<string, StackRecord>();
  const skipped: string[] = [];
  const waiting: string[] = [];
  const items: BudgetItem[] = [];
  let timeModelVersion = 0;
  for (const record of pending) {
    if (record.status !== "pending" || record.kind === "study" || !record.scores || !record.prediction || pool.has(record.stackId)) {
      skipped.push(record.stackId);
      continue;
    }
    if (modelVersion !== undefined && record.scores.modelVersion !== modelVersion) {
      waiting.push(record.stackId);
      continue;
    }
    pool.set(record.stackId, record);
    items.push({ id: record.stackId, value: record.scores.stackUncertainty, seconds: record.prediction.predictedSeconds });
    timeModelVersion = Math.max(timeModelVersion, record.prediction.timeModelVersion);
  }
  const solution = solveKnapsack(items, { budgetSeconds: settings.budgetSeconds, resolutionSeconds: settings.resolutionSeconds });
  const round: SelectionRound = {
    roundId,
    strategy: "knapsack",
    budgetSeconds: settings.budgetSeconds,
    resolutionSeconds: settings.resolutionSeconds,
    poolSize: pool.size,
    selected: solution.selected,
    totalUncertainty: solution.totalValue,
    totalPredictedSeconds: solution.totalSeconds,
    optimal: solution.optimal,
    timeModelVersion,
    createdAt: new Date(Date.parse(now)).toISOString(),
    status: "selecting",
    ...(modelVersion !== undefined ? { modelVersion, waitingForRescore: waiting.length } : {}),
  };
  return { round, pool, skipped, waiting };
}

/** Pure: the completed round for the stacks actually marked (sorted like the plan). */
export function completeRoundRecord(round: SelectionRound, marked: readonly StackRecord[]): SelectionRound {
  const stacks = toSelectedStacks(marked);
  return {
    ...round,
    selected: stacks.map((s) => s.stackId),
    totalUncertainty: sum(stacks.map((s) => s.stackUncertainty)),
    totalPredictedSeconds: sum(stacks.map((s) => s.predictedSeconds)),
    status: "completed",
  };
}

/** Pure: the output of the select state for a round and its selected stack records. */
export function selectOutput(round: SelectionRound, stacks: readonly StackRecord[], repeated: boolean): SelectOutput {
  const selected = toSelectedStacks(stacks);
  return {
    roundId: round.roundId,
    repeated,
    selected,
    totalPredictedSeconds: sum(selected.map((s) => s.predictedSeconds)),
    budgetSeconds: round.budgetSeconds,
    poolSize: round.poolSize,
    ...(round.predictedInterval ? { predictedInterval: round.predictedInterval } : {}),
    ...(round.modelVersion !== undefined ? { modelVersion: round.modelVersion, waitingForRescore: round.waitingForRescore ?? 0 } : {}),
  };
}

export interface SelectionRoundDeps {
  readonly records: RecordStore;
  readonly settings: RoundSettings;
  /** Time-model versions: with them the round records the 80 % interval of its total time. */
  readonly timeModels?: TimeModelStore;
  /** The prior (version 0) when `timeModels` is given (default: the documented prior). */
  readonly timePrior?: TimePrior;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Runs (or finishes, or repeats) the round of `now`'s ISO week; see the module comment. */
export async function runSelectionRound(now: string, deps: SelectionRoundDeps): Promise<SelectOutput> {
  const { records, settings } = deps;
  const log = deps.log ?? (() => {});
  const roundId = roundIdOf(now, settings.timeZone);

  let round = await records.getRound(roundId);
  let pool: ReadonlyMap<string, StackRecord> = new Map();
  const plan = async () => {
    const inService = (await records.getModelInService())?.modelVersion;
    const planned = planRound(await records.listByStatus("pending"), now, settings, inService);
    if (planned.skipped.length > 0) log("pending records skipped (no scores or prediction)", { roundId, skipped: planned.skipped.length });
    if (planned.waiting.length > 0)
      log("pending stacks wait to be scored by the model in service", { roundId, waiting: planned.waiting.length });
    return planned;
  };
  // Plans and writes the round with `write` (conditional); another run that won the write leaves its round to read.
  const claim = async (write: (round: SelectionRound) => Promise<boolean>, message: string) => {
    const planned = await plan();
    if (!(await write(planned.round))) return records.getRound(roundId);
    pool = planned.pool;
    const claimed = planned.round;
    log(message, { roundId, planned: claimed.selected.length, poolSize: claimed.poolSize, optimal: claimed.optimal });
    return claimed;
  };
  if (!round) round = await claim((r) => records.createRound(r), "round claimed");
  if (round?.status === "failed") {
    const restored = await restoreRoundStacks(records, round, now);
    if (restored > 0) log("stacks still marked by the failed round put back in the pool", { roundId, restored });
    round = await claim((r) => records.reclaimRound(r), "failed round re-claimed");
  }
  if (!round) throw new RoundStateError(`round ${roundId} vanished after it was created`);

  if (round.status === "completed") {
    return selectOutput(round, await loadStacks(records, round.selected), true);
  }
  if (round.status !== "selecting") {
    throw new RoundStateError(`round ${roundId} is ${round.status}${round.error ? `: ${round.error}` : ""}; it is not re-run`);
  }

  // Mark the plan; stacks already selectedBy this round (a re-run) count, those taken elsewhere drop out.
  const marked: StackRecord[] = [];
  for (const stackId of round.selected) {
    const record = await markSelected(records, roundId, stackId, pool.get(stackId), now);
    if (record) marked.push(record);
    else log("planned stack no longer pending; dropped from the round", { roundId, stackId });
  }
  const interval = deps.timeModels ? await totalInterval(deps.timeModels, deps.timePrior, round.timeModelVersion, marked) : undefined;
  const completed = { ...completeRoundRecord(round, marked), ...(interval ? { predictedInterval: interval } : {}) };
  if (await records.completeRound(completed)) {
    log("round completed", { roundId, selected: completed.selected.length, totalPredictedSeconds: completed.totalPredictedSeconds });
    return selectOutput(completed, marked, false);
  }
  // Another run finished this round first: report its result as a repeat.
  const stored = await records.getRound(roundId);
  if (stored?.status !== "completed")
    throw new RoundStateError(`round ${roundId} could not be completed (now ${stored?.status ?? "missing"})`);
  return selectOutput(stored, await loadStacks(records, stored.selected), true);
}

/** The 80 % interval of the marked stacks' total seconds under the version that predicted them. */
async function totalInterval(
  timeModels: TimeModelStore,
  prior: TimePrior | undefined,
  version: number,
  marked: readonly StackRecord[],
): Promise<SelectionRound["predictedInterval"]> {
  const model = (await modelVersion(timeModels, version, prior))?.model;
  const features = marked.flatMap((r) => (r.scores ? [r.scores] : []));
  if (!model || features.length === 0) return undefined;
  const total = predictTotalSeconds(model, features, { seed: features.length });
  return { lowSeconds: total.low, highSeconds: total.high, level: total.level };
}

async function markSelected(
  records: RecordStore,
  roundId: string,
  stackId: string,
  known: StackRecord | undefined,
  now: string,
): Promise<StackRecord | undefined> {
  if (await records.transition(stackId, "pending", "selected", { selectedBy: roundId }, now)) {
    const base = known ?? (await records.getStack(stackId));
    return base ? { ...base, status: "selected", selectedBy: roundId, updatedAt: now } : undefined;
  }
  const current = await records.getStack(stackId);
  return current?.selectedBy === roundId ? current : undefined;
}

async function loadStacks(records: RecordStore, stackIds: readonly string[]): Promise<StackRecord[]> {
  const found = await Promise.all(stackIds.map((id) => records.getStack(id)));
  return found.filter((r): r is StackRecord => r !== undefined);
}

function toSelectedStacks(stacks: readonly StackRecord[]): SelectedStack[] {
  return stacks
    .map((r) => ({
      stackId: r.stackId,
      predictedSeconds: r.prediction?.predictedSeconds ?? 0,
      stackUncertainty: r.scores?.stackUncertainty ?? 0,
      stackScore: r.scores?.stackScore ?? 0,
    }))
    .sort((a, b) => (a.stackId < b.stackId ? -1 : a.stackId > b.stackId ? 1 : 0));
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
