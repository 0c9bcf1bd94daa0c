import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BudgetItem } from "../../lambdas/domain/budget-items.js";
import { STRATEGIES, selectRandom, selectStacks, selectUniformCost } from "../../lambdas/domain/selection-strategies.js";
import { makePool } from "../support/pools.js";

const poolArb = fc
  .array(fc.record({ value: fc.double({ min: 0, max: 1, noNaN: true }), seconds: fc.double({ min: 1, max: 4000, noNaN: true }) }), {
    maxLength: 60,
  })
  .map((rows) => rows.map((r, i) => ({ id: `s${i}`, ...r })));

/** "Until nothing more fits": no unselected item fits in what is left of the budget. */
function expectMaximal(items: readonly BudgetItem[], selected: readonly string[], budget: number) {
  const chosen = new Set(selected);
  const used = items.filter((it) => chosen.has(it.id)).reduce((s, it) => s + Math.ceil(it.seconds), 0);
  expect(used).toBeLessThanOrEqual(budget);
  for (const it of items) if (!chosen.has(it.id)) expect(used + Math.ceil(it.seconds)).toBeGreaterThan(budget);
}

describe("selection strategies", () => {
  it("every strategy respects the budget and the knapsack is never beaten", () => {
    fc.assert(
      fc.property(poolArb, fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 0, max: 1000 }), (items, budget, seed) => {
        const results = STRATEGIES.map((s) => selectStacks(s, items, { budgetSeconds: budget, seed }));
        for (const r of results) expect(r.totalSeconds).toBeLessThanOrEqual(budget);
        const [knapsack, uniform, random] = results.map((r) => r.totalValue) as [number, number, number];
        expect(knapsack).toBeGreaterThanOrEqual(uniform - 1e-9);
        expect(knapsack).toBeGreaterThanOrEqual(random - 1e-9);
      }),
      { numRuns: 200 },
    );
  });

  it("uniform-cost takes the highest values first and stops only when nothing more fits", () => {
    fc.assert(
      fc.property(poolArb, fc.integer({ min: 0, max: 40_000 }), (items, budget) => {
        const { selected } = selectUniformCost(items, { budgetSeconds: budget });
        expectMaximal(items, selected, budget);
        // Any unselected item of higher value than a selected one must not have fitted when its turn came:
        // in particular the single most valuable item that fits alone is always selected.
        const fitting = items.filter((it) => Math.ceil(it.seconds) <= budget);
        if (fitting.length > 0) {
          const top = fitting.reduce((a, b) => (b.value > a.value || (b.value === a.value && b.id < a.id) ? b : a));
          const topOverall = [...items].sort((a, b) => b.value - a.value || (a.id < b.id ? -1 : 1))[0] as BudgetItem;
          if (top.id === topOverall.id) expect(selected).toContain(top.id);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("reproduces the paper's UAL bias: few long stacks where the knapsack picks many", () => {
    // High-uncertainty stacks are the big bleeds, which also take longest to label (paper §5.2, Fig. 6).
    const items = makePool("realistic", 2000, 7);
    const budget = 20 * 3600;
    const uniform = selectUniformCost(items, { budgetSeconds: budget });
    const knapsack = selectStacks("knapsack", items, { budgetSeconds: budget });
    expect(knapsack.selected.length).toBeGreaterThan(2 * uniform.selected.length);
    expect(knapsack.totalValue).toBeGreaterThan(uniform.totalValue);
  });

  it("random is reproducible with a seed, varies with it, ignores input order, and fills until nothing fits", () => {
    const items = makePool("realistic", 300, 3);
    const budget = 10 * 3600;
    const a = selectRandom(items, { budgetSeconds: budget, seed: 42 });
    const again = selectRandom([...items].reverse(), { budgetSeconds: budget, seed: 42 });
    const other = selectRandom(items, { budgetSeconds: budget, seed: 43 });
    expect(again.selected).toEqual(a.selected);
    expect(other.selected).not.toEqual(a.selected);
    expectMaximal(items, a.selected, budget);
  });

  it("rejects an unknown strategy by name", () => {
    expect(() => selectStacks("greedy" as never, [], { budgetSeconds: 1 })).toThrow(/unknown strategy "greedy"/);
  });
});
