/**
 * The selection strategies compared in the paper (§5.2, Fig. 5):
 *  - `knapsack` (CAL, cost-sensitive AL): maximum ΣV within the budget, exact (see knapsack.ts);
 *  - `uniform` (UAL, uniform-cost AL): highest V first, each stack taken if it still fits, until
 *    nothing more fits — what selection looks like when every stack is assumed to cost the same;
 *  - `random`: a seeded random order, each stack taken if it still fits, until nothing more fits.
 * All three use the same weights (ceil(seconds / r)) and capacity, so all respect the budget.
 */
import { type BudgetItem, type BudgetOptions, compareIds, type Selection, selectionOf, weighPool } from "./budget-items.js";
import { solveKnapsack } from "./knapsack.js";
import { seededRandom } from "./seeded-random.js";

export const STRATEGIES = ["knapsack", "uniform", "random"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface StrategyOptions extends BudgetOptions {
  /** Seed of the `random` strategy (default 0). */
  readonly seed?: number;
}

export interface StrategySelection extends Selection {
  readonly strategy: Strategy;
}

export function selectStacks(strategy: Strategy, items: readonly BudgetItem[], options: StrategyOptions): StrategySelection {
  switch (strategy) {
    case "knapsack": {
      const { selected, totalValue, totalSeconds, budgetSeconds } = solveKnapsack(items, options);
      return { strategy, selected, totalValue, totalSeconds, budgetSeconds };
    }
    case "uniform":
      return { strategy, ...selectUniformCost(items, options) };
    case "random":
      return { strategy, ...selectRandom(items, options) };
    default:
      throw new RangeError(`unknown strategy ${JSON.stringify(strategy)}; expected one of ${STRATEGIES.join(", ")}`);
  }
}

/** UAL: descending value (ties: id ascending), take each stack that still fits. */
export function selectUniformCost(items: readonly BudgetItem[], options: BudgetOptions): Selection {
  const pool = weighPool(items, options);
  const order = items.map((_, i) => i);
  order.sort((a, b) => {
    const d = (items[b] as BudgetItem).value - (items[a] as BudgetItem).value;
    return d !== 0 ? d : compareIds((items[a] as BudgetItem).id, (items[b] as BudgetItem).id);
  });
  return selectionOf(pool, firstFit(pool.weights, pool.capacity, order));
}

/** Random baseline: a seeded shuffle of the id-sorted pool (so input order does not matter), then first fit. */
export function selectRandom(items: readonly BudgetItem[], options: StrategyOptions): Selection {
  const pool = weighPool(items, options);
  const order = items.map((_, i) => i);
  order.sort((a, b) => compareIds((items[a] as BudgetItem).id, (items[b] as BudgetItem).id));
  const random = seededRandom(options.seed ?? 0);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return selectionOf(pool, firstFit(pool.weights, pool.capacity, order));
}

function firstFit(weights: Float64Array, capacity: number, order: readonly number[]): number[] {
  const chosen: number[] = [];
  let used = 0;
  for (const i of order) {
    const w = weights[i] as number;
    if (used + w <= capacity) {
      chosen.push(i);
      used += w;
    }
  }
  return chosen;
}
