/**
 * Exact 0/1 knapsack for the weekly selection (paper §3, Fig. 1): choose the stacks that maximise
 * ΣV subject to ΣT ≤ Q.
 *
 * Method — an expanding-core dynamic programme in the manner of Pisinger's MINKNAP (Pisinger,
 * "A minimal algorithm for the 0-1 knapsack problem", Operations Research 45(5), 1997):
 *  1. Items are sorted by efficiency V/w (ties: id ascending). The greedy "break solution" takes
 *     items in that order until the first one that does not fit (the break item b).
 *  2. The core starts empty and grows one item at a time, alternately adding the next item at or
 *     right of b and removing the next item left of b. The DP keeps a list of states (weight,
 *     value, decisions that differ from the break solution) sorted by weight.
 *  3. Dominance: a state with more weight and no more value than another is dropped (Pareto list).
 *  4. Bounds: a state whose LP (Dembo–Hammer) upper bound is below the best value found is
 *     dropped. When the list is empty, the best state is optimal.
 * The list never holds two states of equal weight, so its length is at most the number of distinct
 * weights reachable, and usually tiny: no n × W table is built. Decisions are stored once, as
 * a shared tree of (item, parent) nodes in typed arrays that is compacted when it grows.
 *
 * Exactness and ties. Values are converted to integers on a fixed-point grid of quantum
 * q = 2^⌈log2(ΣV / 2^48)⌉ (values below q/2 count as zero), so sums and comparisons are exact
 * integer arithmetic in doubles. The result is a set of maximum total value on that grid; among
 * those, one of least total weight; remaining ties are broken by the efficiency order above, so
 * the result depends only on the items, never on their input order. Zero-value items are never
 * chosen (they would only spend time). Items longer than the budget are never chosen.
 *
 * Graceful fallback. If the state list would exceed `maxStates`, the search stops before expanding
 * the next item and returns the best feasible set found so far with `optimal: false` and a proven
 * `upperBound`, instead of running out of memory. On the grid, no set beats the larger of the best
 * value and the largest LP bound over the remaining states, taken with the first items still outside
 * the core (states already dropped cannot beat the best value). Each item's value exceeds its grid
 * value by at most q/2, so `upperBound` adds (number of candidate items) × q/2 to that bound.
 */

import { type BudgetItem, type BudgetOptions, compareIds, type Selection, selectionOf, weighPool } from "./budget-items.js";
import { InvalidBudgetError } from "./errors.js";

export interface KnapsackOptions extends BudgetOptions {
  /** Most DP states held at once before falling back to the best set found (default 4,000,000 ≈ 160 MB). */
  readonly maxStates?: number;
}

export interface KnapsackStats {
  /** Items considered (value > 0 and not longer than the budget). */
  readonly eligible: number;
  /** floor(Q / r). */
  readonly capacityUnits: number;
  /** Items the core grew to before the state list emptied. */
  readonly coreSize: number;
  /** Largest state list held at once. */
  readonly peakStates: number;
}

export interface KnapsackSelection extends Selection {
  /** True when the selection is proven to have maximum value. */
  readonly optimal: boolean;
  /** A proven upper bound on ΣV of any set that fits (equals totalValue up to the grid when optimal). */
  readonly upperBound: number;
  readonly stats: KnapsackStats;
}

const DEFAULT_MAX_STATES = 4_000_000;
/** Integer values stay below 2^48 in total, so bound arithmetic errs by far less than 0.5. */
const VALUE_GRID_BITS = 48;

export function solveKnapsack(items: readonly BudgetItem[], options: KnapsackOptions): KnapsackSelection {
  const pool = weighPool(items, options);
  const maxStates = options.maxStates ?? DEFAULT_MAX_STATES;
  const capacity = pool.capacity;

  // Eligible items: positive value, fits alone.
  let valueSum = 0;
  const candidates: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as BudgetItem;
    if (item.value > 0 && (pool.weights[i] as number) <= capacity) {
      candidates.push(i);
      valueSum += item.value;
    }
  }
  const emptyStats = { eligible: 0, capacityUnits: capacity, coreSize: 0, peakStates: 0 };
  if (candidates.length === 0) {
    return { ...selectionOf(pool, []), optimal: true, upperBound: 0, stats: emptyStats };
  }

  if (!Number.isFinite(valueSum)) throw new InvalidBudgetError("the values sum to more than a double can hold; rescale them");
  const quantum = Math.max(2 ** Math.ceil(Math.log2(valueSum / 2 ** VALUE_GRID_BITS)), 2 ** -1000);
  const eligible = candidates.filter((i) => Math.round((items[i] as BudgetItem).value / quantum) > 0);
  const n = eligible.length;
  const w = new Float64Array(n);
  const p = new Float64Array(n);
  const ratio = new Float64Array(n);
  {
    const order = eligible.slice();
    const eff = new Map<number, number>();
    for (const i of order) eff.set(i, (items[i] as BudgetItem).value / (pool.weights[i] as number));
    order.sort((a, b) => {
      const d = (eff.get(b) as number) - (eff.get(a) as number);
      return d !== 0 ? d : compareIds((items[a] as BudgetItem).id, (items[b] as BudgetItem).id);
    });
    order.forEach((orig, k) => {
      w[k] = pool.weights[orig] as number;
      p[k] = Math.round((items[orig] as BudgetItem).value / quantum);
      ratio[k] = (p[k] as number) / (w[k] as number);
      eligible[k] = orig;
    });
  }

  // Break solution.
  let breakItem = 0;
  let breakWeight = 0;
  let breakValue = 0;
  while (breakItem < n && breakWeight + (w[breakItem] as number) <= capacity) {
    breakWeight += w[breakItem] as number;
    breakValue += p[breakItem] as number;
    breakItem++;
  }
  const stats = { eligible: n, capacityUnits: capacity, coreSize: 0, peakStates: 1 };
  if (breakItem === n) {
    return { ...selectionOf(pool, eligible), optimal: true, upperBound: selectionOf(pool, eligible).totalValue, stats };
  }

  const dp = new StateList();
  dp.reset(breakWeight, breakValue);
  let bestValue = breakValue;
  let bestWeight = breakWeight;
  let next = breakItem; // next item that may be added
  let prev = breakItem - 1; // next item that may be removed
  let optimal = true;
  let upper = Number.POSITIVE_INFINITY;
  let addTurn = true;
  // LP ratios of the first items outside the core [prev + 1, next): the best left to add, the worst left to remove.
  const addRatioAt = (k: number) => (k < n ? (ratio[k] as number) : 0);
  const removeRatioAt = (k: number) => (k >= 0 ? (ratio[k] as number) : Number.POSITIVE_INFINITY);

  while (dp.length > 0 && (next < n || prev >= 0)) {
    if (dp.length * 2 > maxStates) {
      // Stop before taking the next item: it is still outside the core, so the bound must use its ratio.
      // The grid optimum is an integer and the bound errs by far less than 0.5, hence the rounding.
      optimal = false;
      upper = Math.max(bestValue, Math.floor(dp.maxBound(capacity, addRatioAt(next), removeRatioAt(prev)) + 0.5));
      break;
    }
    const adding = (addTurn && next < n) || prev < 0;
    addTurn = !addTurn;
    const item = adding ? next++ : prev--;
    const dw = adding ? (w[item] as number) : -(w[item] as number);
    const dv = adding ? (p[item] as number) : -(p[item] as number);
    stats.coreSize++;

    const found = dp.expand(item, dw, dv, capacity, addRatioAt(next), removeRatioAt(prev), bestValue, bestWeight);
    if (found !== null) {
      bestValue = found.value;
      bestWeight = found.weight;
    }
    if (dp.length > stats.peakStates) stats.peakStates = dp.length;
  }

  // Reconstruct: break solution with the recorded flips applied.
  const inSolution = new Uint8Array(n);
  for (let k = 0; k < breakItem; k++) inSolution[k] = 1;
  for (let node = dp.bestNode; node >= 0; node = dp.parentOf(node)) {
    const k = dp.itemOf(node);
    inSolution[k] = inSolution[k] ? 0 : 1;
  }
  const chosen: number[] = [];
  for (let k = 0; k < n; k++) if (inSolution[k]) chosen.push(eligible[k] as number);
  const selection = selectionOf(pool, chosen);
  // Grid values are round(V / q) (items below q/2 count as zero), so each V exceeds q × its grid value by ≤ q/2.
  const upperBound = optimal ? selection.totalValue : Math.max(selection.totalValue, (upper + candidates.length / 2) * quantum);
  return { ...selection, optimal, upperBound, stats };
}

/**
 * The DP state list (weight-sorted Pareto frontier) in ping-pong typed arrays, plus the decision
 * tree: node k flips item `item[k]` relative to the break solution, on top of node `parent[k]`.
 */
class StateList {
  length = 0;
  private weight = new Float64Array(1024);
  private value = new Float64Array(1024);
  private node = new Int32Array(1024);
  private nextWeight = new Float64Array(1024);
  private nextValue = new Float64Array(1024);
  private nextNode = new Int32Array(1024);
  private nodeItem = new Int32Array(1 << 16);
  private nodeParent = new Int32Array(1 << 16);
  private nodeCount = 0;
  /** Decision node of the best feasible state (-1: the break solution), kept alive across compactions. */
  bestNode = -1;

  reset(weight: number, value: number): void {
    this.length = 1;
    this.weight[0] = weight;
    this.value[0] = value;
    this.node[0] = -1;
  }

  itemOf(node: number): number {
    return this.nodeItem[node] as number;
  }

  parentOf(node: number): number {
    return this.nodeParent[node] as number;
  }

  /** Largest LP bound over the current list (used when the search stops early). */
  maxBound(capacity: number, addRatio: number, removeRatio: number): number {
    let best = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < this.length; i++) {
      best = Math.max(best, bound(this.weight[i] as number, this.value[i] as number, capacity, addRatio, removeRatio));
    }
    return best;
  }

  /**
   * Replaces the list with its merge with a copy shifted by (dw, dv) (the states that flip `item`),
   * dropping dominated states and states whose bound cannot reach the best value. Returns the new
   * best feasible state if one improves on (bestValue, bestWeight), else null.
   */
  expand(
    item: number,
    dw: number,
    dv: number,
    capacity: number,
    addRatio: number,
    removeRatio: number,
    bestValue: number,
    bestWeight: number,
  ): { value: number; weight: number } | null {
    const len = this.length;
    this.ensureNext(2 * len);
    this.ensureNodes(len);
    const { weight, value, node, nextWeight, nextValue, nextNode } = this;
    let improved: { value: number; weight: number } | null = null;
    let out = 0;
    let lastValue = Number.NEGATIVE_INFINITY;
    let i = 0;
    let j = 0;
    while (i < len || j < len) {
      let sw: number;
      let sv: number;
      let fromShift: boolean;
      if (j >= len) {
        fromShift = false;
      } else if (i >= len) {
        fromShift = true;
      } else {
        const wa = weight[i] as number;
        const wb = (weight[j] as number) + dw;
        fromShift = wb < wa || (wb === wa && (value[j] as number) + dv > (value[i] as number));
      }
      if (fromShift) {
        sw = (weight[j] as number) + dw;
        sv = (value[j] as number) + dv;
      } else {
        sw = weight[i] as number;
        sv = value[i] as number;
      }
      // Pareto dominance: the list is ascending in weight, so a state must beat every lighter one.
      if (sv > lastValue) {
        lastValue = sv;
        if (mayImprove(sw, sv, capacity, addRatio, removeRatio, bestValue, bestWeight)) {
          let stateNode: number;
          if (fromShift) {
            stateNode = this.nodeCount++;
            this.nodeItem[stateNode] = item;
            this.nodeParent[stateNode] = node[j] as number;
          } else {
            stateNode = node[i] as number;
          }
          if (sw <= capacity && (sv > bestValue || (sv === bestValue && sw < bestWeight))) {
            bestValue = sv;
            bestWeight = sw;
            improved = { value: sv, weight: sw };
            this.bestNode = stateNode;
          }
          nextWeight[out] = sw;
          nextValue[out] = sv;
          nextNode[out] = stateNode;
          out++;
        }
      }
      if (fromShift) j++;
      else i++;
    }
    // States kept before the best improved may now be below the bound: filter once more.
    let kept = 0;
    for (let k = 0; k < out; k++) {
      const sw = nextWeight[k] as number;
      const sv = nextValue[k] as number;
      if (mayImprove(sw, sv, capacity, addRatio, removeRatio, bestValue, bestWeight)) {
        nextWeight[kept] = sw;
        nextValue[kept] = sv;
        nextNode[kept] = nextNode[k] as number;
        kept++;
      }
    }
    this.swap(kept);
    return improved;
  }

  private swap(length: number): void {
    [this.weight, this.nextWeight] = [this.nextWeight, this.weight];
    [this.value, this.nextValue] = [this.nextValue, this.value];
    [this.node, this.nextNode] = [this.nextNode, this.node];
    this.length = length;
  }

  private ensureNext(size: number): void {
    if (this.nextWeight.length >= size) return;
    const cap = Math.max(size, this.nextWeight.length * 2);
    this.nextWeight = new Float64Array(cap);
    this.nextValue = new Float64Array(cap);
    this.nextNode = new Int32Array(cap);
    // The current arrays become `next` after the swap: grow them too so the pair stays balanced.
    this.weight = grow(this.weight, cap, this.length);
    this.value = grow(this.value, cap, this.length);
    this.node = grow(this.node, cap, this.length);
  }

  /** Makes room for `extra` new nodes, compacting away nodes no live state refers to first. */
  private ensureNodes(extra: number): void {
    if (this.nodeCount + extra <= this.nodeItem.length) return;
    this.compact();
    if (this.nodeCount + extra <= this.nodeItem.length && this.nodeCount * 2 <= this.nodeItem.length) return;
    const cap = Math.max(this.nodeItem.length * 2, this.nodeCount + extra);
    this.nodeItem = grow(this.nodeItem, cap, this.nodeCount);
    this.nodeParent = grow(this.nodeParent, cap, this.nodeCount);
  }

  /** Mark nodes reachable from live states and the best state; renumber in order (parents precede children). */
  private compact(): void {
    const count = this.nodeCount;
    const live = new Uint8Array(count);
    const mark = (start: number) => {
      for (let k = start; k >= 0 && !live[k]; k = this.nodeParent[k] as number) live[k] = 1;
    };
    for (let s = 0; s < this.length; s++) mark(this.node[s] as number);
    mark(this.bestNode);
    const renumber = new Int32Array(count);
    let kept = 0;
    for (let k = 0; k < count; k++) {
      if (!live[k]) continue;
      const parent = this.nodeParent[k] as number;
      this.nodeItem[kept] = this.nodeItem[k] as number;
      this.nodeParent[kept] = parent >= 0 ? (renumber[parent] as number) : -1;
      renumber[k] = kept++;
    }
    this.nodeCount = kept;
    for (let s = 0; s < this.length; s++) {
      const k = this.node[s] as number;
      if (k >= 0) this.node[s] = renumber[k] as number;
    }
    if (this.bestNode >= 0) this.bestNode = renumber[this.bestNode] as number;
  }
}

/**
 * Whether some completion of the state may beat the best (value, weight) lexicographically: a
 * strictly larger value within the capacity, or the same value in strictly less weight (the LP
 * bound with capacity bestWeight − 1). Values and weights are integers; the 0.5 slack absorbs
 * floating-point error in the bounds, which stays far below it on the 2^48 grid.
 */
function mayImprove(
  weight: number,
  value: number,
  capacity: number,
  addRatio: number,
  removeRatio: number,
  bestValue: number,
  bestWeight: number,
): boolean {
  if (bound(weight, value, capacity, addRatio, removeRatio) >= bestValue + 0.5) return true;
  return bound(weight, value, bestWeight - 1, addRatio, removeRatio) >= bestValue - 0.5;
}

/** Dembo–Hammer LP bound for a state given the next item to add (ratio) and the next to remove. */
function bound(weight: number, value: number, capacity: number, addRatio: number, removeRatio: number): number {
  if (weight <= capacity) return value + (capacity - weight) * addRatio;
  return removeRatio === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : value - (weight - capacity) * removeRatio;
}

function grow<T extends Float64Array | Int32Array>(arr: T, size: number, keep: number): T {
  if (arr.length >= size) return arr;
  const bigger = new (arr.constructor as new (n: number) => T)(size);
  bigger.set(arr.subarray(0, keep));
  return bigger;
}
