import { InvalidBudgetError, InvalidItemError } from "./errors.js";

/** One candidate stack for a selection round: its value V (stack uncertainty) and predicted labeling time T. */
export interface BudgetItem {
  readonly id: string;
  /** V ≥ 0: the stack's uncertainty (mean JS divergence of its top-K patches, paper §3.1). */
  readonly value: number;
  /** T > 0: predicted labeling seconds (paper §3.2). */
  readonly seconds: number;
}

export interface BudgetOptions {
  /** Q: the annotators' time budget in seconds (≥ 0). */
  readonly budgetSeconds: number;
  /** r: time resolution in seconds (> 0, default 1). Item weights are ceil(seconds / r). */
  readonly resolutionSeconds?: number;
}

/** Items converted to integer weights against an integer capacity. */
export interface WeightedPool {
  readonly items: readonly BudgetItem[];
  /** ceil(seconds / r) per item, same order as `items`. */
  readonly weights: Float64Array;
  /** floor(Q / r): a set whose weights fit this capacity never exceeds Q seconds. */
  readonly capacity: number;
  readonly budgetSeconds: number;
  readonly resolutionSeconds: number;
}

export const DEFAULT_RESOLUTION_SECONDS = 1;

/**
 * Validates a pool and converts seconds to integer weights. Weights are rounded up and the capacity
 * down, so Σ ceil(sᵢ/r)·r ≤ floor(Q/r)·r ≤ Q: rounding can only make a selection more conservative.
 *
 * Errors name the item: duplicate ids, non-finite or negative values, non-finite or non-positive seconds.
 */
export function weighPool(items: readonly BudgetItem[], options: BudgetOptions): WeightedPool {
  const { budgetSeconds } = options;
  const resolutionSeconds = options.resolutionSeconds ?? DEFAULT_RESOLUTION_SECONDS;
  if (typeof budgetSeconds !== "number" || !Number.isFinite(budgetSeconds) || budgetSeconds < 0) {
    throw new InvalidBudgetError(`budget must be a finite number of seconds ≥ 0, got ${budgetSeconds}`);
  }
  if (typeof resolutionSeconds !== "number" || !Number.isFinite(resolutionSeconds) || resolutionSeconds <= 0) {
    throw new InvalidBudgetError(`resolution must be a finite number of seconds > 0, got ${resolutionSeconds}`);
  }
  const capacity = Math.floor(budgetSeconds / resolutionSeconds);
  if (capacity > Number.MAX_SAFE_INTEGER / 4) {
    throw new InvalidBudgetError(`budget / resolution = ${capacity} time units is too many; use a coarser --resolution-seconds`);
  }
  const weights = new Float64Array(items.length);
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const id = item?.id;
    if (typeof id !== "string" || id.length === 0) {
      throw new InvalidItemError(String(id), index, "id must be a non-empty string");
    }
    if (seen.has(id)) throw new InvalidItemError(id, index, "duplicate id");
    seen.add(id);
    const { value, seconds } = item;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new InvalidItemError(id, index, `value must be a finite number ≥ 0, got ${value}`);
    }
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) {
      throw new InvalidItemError(id, index, `seconds must be a finite number > 0, got ${seconds}`);
    }
    weights[index] = Math.ceil(seconds / resolutionSeconds);
  });
  return { items, weights, capacity, budgetSeconds, resolutionSeconds };
}

/** The outcome of any selection strategy. */
export interface Selection {
  /** Selected ids, sorted ascending (a canonical order: the set does not depend on input order). */
  readonly selected: string[];
  /** ΣV of the selected items. */
  readonly totalValue: number;
  /** ΣT (raw seconds, not rounded) of the selected items; never exceeds `budgetSeconds`. */
  readonly totalSeconds: number;
  readonly budgetSeconds: number;
}

/** Builds a {@link Selection} from chosen indices into `pool.items`. */
export function selectionOf(pool: WeightedPool, chosen: Iterable<number>): Selection {
  const picked = [...chosen].map((i) => pool.items[i] as BudgetItem);
  picked.sort((a, b) => compareIds(a.id, b.id));
  let totalValue = 0;
  let totalSeconds = 0;
  for (const item of picked) {
    totalValue += item.value;
    totalSeconds += item.seconds;
  }
  return {
    selected: picked.map((item) => item.id),
    totalValue,
    totalSeconds,
    budgetSeconds: pool.budgetSeconds,
  };
}

/** Canonical comparison of ids (code-unit order), used wherever ties need a stable rule. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
