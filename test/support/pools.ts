/** Seeded synthetic pools for selection tests and benchmarks (not patient data). */
import type { BudgetItem } from "../../lambdas/domain/budget-items.js";
import { normalDraw, seededRandom } from "../../lambdas/domain/seeded-random.js";

export type PoolShape = "uncorrelated" | "weakly-correlated" | "strongly-correlated" | "many-tiny" | "near-budget" | "realistic";

/**
 * Classic knapsack benchmark shapes (Pisinger, "Where are the hard knapsack problems?", 2005) plus
 * `realistic`: stack uncertainties ~ |N(0.1, 0.09)| and log-normal labeling times (median 10 min,
 * σ = 1.1, about three orders of magnitude as in the paper's Fig. 3).
 */
export function makePool(shape: PoolShape, n: number, seed: number, range = 1000): BudgetItem[] {
  const random = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const items: BudgetItem[] = [];
  for (let i = 0; i < n; i++) {
    let seconds: number;
    let value: number;
    switch (shape) {
      case "uncorrelated":
        seconds = int(1, range);
        value = random() * range;
        break;
      case "weakly-correlated":
        seconds = int(1, range);
        value = Math.max(0, seconds + (random() - 0.5) * range * 0.2);
        break;
      case "strongly-correlated":
        seconds = int(1, range);
        value = seconds + range / 10;
        break;
      case "many-tiny":
        seconds = int(1, 5);
        value = random();
        break;
      case "near-budget":
        seconds = int(Math.floor(range * 0.8), range);
        value = random();
        break;
      case "realistic": {
        const z = normalDraw(random);
        seconds = Math.exp(Math.log(600) + 1.1 * z);
        value = Math.abs(0.1 + 0.08 * z + 0.05 * normalDraw(random));
        break;
      }
    }
    items.push({ id: `stack-${String(i).padStart(6, "0")}`, value, seconds });
  }
  return items;
}

/** Exhaustive search: maximum value, then least weight, over all subsets that fit (n ≤ ~22). */
export function bruteForce(items: readonly BudgetItem[], capacityUnits: number, resolution = 1) {
  const w = items.map((it) => Math.ceil(it.seconds / resolution));
  let bestValue = 0;
  let bestWeight = 0;
  const n = items.length;
  for (let mask = 0; mask < 1 << n; mask++) {
    let value = 0;
    let weight = 0;
    for (let i = 0; i < n; i++) {
      if (mask & (1 << i)) {
        value += (items[i] as BudgetItem).value;
        weight += w[i] as number;
      }
    }
    if (weight > capacityUnits) continue;
    const tol = 1e-12 * Math.max(Math.abs(value), Math.abs(bestValue));
    if (value > bestValue + tol || (Math.abs(value - bestValue) <= tol && weight < bestWeight)) {
      bestValue = value;
      bestWeight = weight;
    }
  }
  return { value: bestValue, weight: bestWeight };
}
