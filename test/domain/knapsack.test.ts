import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BudgetItem } from "../../lambdas/domain/budget-items.js";
import { InvalidBudgetError, InvalidItemError } from "../../lambdas/domain/errors.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { seededRandom } from "../../lambdas/domain/seeded-random.js";
import { solveWithHighs } from "../support/highs-knapsack.js";
import { bruteForce, makePool, type PoolShape } from "../support/pools.js";

const secondsOf = (items: readonly BudgetItem[], ids: readonly string[]) => {
  const byId = new Map(items.map((it) => [it.id, it]));
  return ids.reduce((s, id) => s + (byId.get(id) as BudgetItem).seconds, 0);
};

const itemsArb = (maxN: number, valueArb: fc.Arbitrary<number>) =>
  fc
    .array(fc.record({ value: valueArb, seconds: fc.integer({ min: 1, max: 60 }) }), { maxLength: maxN })
    .map((rows) => rows.map((r, i) => ({ id: `s${i}`, ...r })));

describe("solveKnapsack against brute force", () => {
  it("finds the maximum value (real-valued V) for n ≤ 14", () => {
    fc.assert(
      fc.property(itemsArb(14, fc.double({ min: 0, max: 1, noNaN: true })), fc.integer({ min: 0, max: 400 }), (items, budget) => {
        const got = solveKnapsack(items, { budgetSeconds: budget });
        const want = bruteForce(items, budget);
        expect(got.optimal).toBe(true);
        expect(got.totalValue).toBeCloseTo(want.value, 9);
        expect(got.totalSeconds).toBeLessThanOrEqual(budget);
        expect(secondsOf(items, got.selected)).toBe(got.totalSeconds);
      }),
      { numRuns: 300 },
    );
  });

  it("breaks value ties by least total seconds (dyadic V, exact sums, many ties)", () => {
    fc.assert(
      fc.property(
        itemsArb(
          14,
          fc.integer({ min: 0, max: 6 }).map((k) => k / 4),
        ),
        fc.integer({ min: 0, max: 300 }),
        (items, budget) => {
          const got = solveKnapsack(items, { budgetSeconds: budget });
          const want = bruteForce(items, budget);
          expect(got.totalValue).toBe(want.value);
          expect(got.totalSeconds).toBe(want.weight);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("matches brute force on 20-item pools of every shape", () => {
    const shapes: PoolShape[] = ["uncorrelated", "weakly-correlated", "strongly-correlated", "many-tiny", "near-budget", "realistic"];
    for (const shape of shapes) {
      for (let seed = 1; seed <= 3; seed++) {
        const items = makePool(shape, 20, seed, 100);
        const total = items.reduce((s, it) => s + Math.ceil(it.seconds), 0);
        const budget = Math.floor(total * (0.2 + 0.25 * seed));
        const got = solveKnapsack(items, { budgetSeconds: budget });
        const want = bruteForce(items, budget);
        expect(got.totalValue, `${shape} seed ${seed}`).toBeCloseTo(want.value, 9);
      }
    }
  });

  it("rounds seconds up to the resolution, so the budget holds at any resolution", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ value: fc.double({ min: 0, max: 1, noNaN: true }), seconds: fc.double({ min: 0.5, max: 900, noNaN: true }) }),
          { maxLength: 12 },
        ),
        fc.double({ min: 0, max: 3000, noNaN: true }),
        fc.constantFrom(0.5, 1, 7, 60),
        (rows, budget, resolution) => {
          const items = rows.map((r, i) => ({ id: `s${i}`, ...r }));
          const got = solveKnapsack(items, { budgetSeconds: budget, resolutionSeconds: resolution });
          expect(got.totalSeconds).toBeLessThanOrEqual(budget + 1e-9);
          const want = bruteForce(items, Math.floor(budget / resolution), resolution);
          expect(got.totalValue).toBeCloseTo(want.value, 9);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("solveKnapsack against HiGHS (MIP, zero gap)", () => {
  const cases: Array<[PoolShape, number, number]> = [
    ["uncorrelated", 200, 0.3],
    ["weakly-correlated", 150, 0.5],
    ["strongly-correlated", 80, 0.4],
    ["many-tiny", 300, 0.1],
    ["near-budget", 120, 0.05],
    ["realistic", 300, 0.15],
  ];
  for (const [shape, n, fraction] of cases) {
    it(`${shape}: n=${n}, budget ${fraction * 100}% of total`, async () => {
      for (const seed of [11, 12]) {
        const items = makePool(shape, n, seed);
        const weights = items.map((it) => Math.ceil(it.seconds));
        const capacity = Math.floor(weights.reduce((a, b) => a + b, 0) * fraction);
        const got = solveKnapsack(items, { budgetSeconds: capacity });
        const highs = await solveWithHighs(
          items.map((it) => it.value),
          weights,
          capacity,
        );
        expect(highs.status).toBe("Optimal");
        expect(got.optimal).toBe(true);
        expect(got.totalValue).toBeCloseTo(highs.objective, 6);
        expect(got.totalSeconds).toBeLessThanOrEqual(capacity);
      }
    });
  }
});

describe("solveKnapsack normal cases", () => {
  it("selects nothing from an empty pool or with zero budget", () => {
    expect(solveKnapsack([], { budgetSeconds: 3600 }).selected).toEqual([]);
    const pool = makePool("realistic", 50, 3);
    const zero = solveKnapsack(pool, { budgetSeconds: 0 });
    expect(zero).toMatchObject({ selected: [], totalValue: 0, totalSeconds: 0, optimal: true });
  });

  it("never selects items longer than the budget or with zero value", () => {
    const items = [
      { id: "huge", value: 100, seconds: 5000 },
      { id: "free-but-worthless", value: 0, seconds: 1 },
      { id: "a", value: 1, seconds: 10 },
    ];
    expect(solveKnapsack(items, { budgetSeconds: 100 }).selected).toEqual(["a"]);
  });

  it("takes everything when everything fits", () => {
    const items = makePool("realistic", 30, 5);
    const total = items.reduce((s, it) => s + Math.ceil(it.seconds), 0);
    const got = solveKnapsack(items, { budgetSeconds: total });
    expect(got.selected).toHaveLength(30);
  });

  it("is deterministic and independent of input order", () => {
    const items = makePool("many-tiny", 400, 9).map((it, i) => ({ ...it, value: Math.round(it.value * 4) / 4 + (i % 3) / 4 }));
    const budget = 300;
    const first = solveKnapsack(items, { budgetSeconds: budget });
    const random = seededRandom(4);
    for (let round = 0; round < 5; round++) {
      const shuffled = [...items].sort(() => random() - 0.5);
      expect(solveKnapsack(shuffled, { budgetSeconds: budget }).selected).toEqual(first.selected);
    }
  });

  it("falls back to the best set found, with a proven bound, when the state cap is hit", () => {
    const items = makePool("strongly-correlated", 150, 21);
    const capacity = Math.floor(items.reduce((s, it) => s + it.seconds, 0) / 2);
    const capped = solveKnapsack(items, { budgetSeconds: capacity, maxStates: 50 });
    const exact = solveKnapsack(items, { budgetSeconds: capacity });
    expect(capped.optimal).toBe(false);
    expect(capped.totalSeconds).toBeLessThanOrEqual(capacity);
    expect(capped.totalValue).toBeLessThanOrEqual(exact.totalValue + 1e-9);
    expect(capped.upperBound).toBeGreaterThanOrEqual(exact.totalValue);
    expect(exact.optimal).toBe(true);
  });

  it("keeps the fallback bound proven in every capped run (brute force, small state caps)", () => {
    // Uniform draws (fc.noBias; fc.double is uniform over representable doubles, so mostly tiny):
    // real-valued V and seconds on a fine decimal grid, integer seconds half the time.
    const real = (min: number, max: number, steps = 1e6) =>
      fc.noBias(fc.integer({ min: 0, max: steps })).map((k) => min + ((max - min) * k) / steps);
    const seconds = (max: number) => fc.oneof(fc.noBias(fc.integer({ min: 1, max })), real(0.1, max));
    const rows = <T>(row: fc.Arbitrary<T>) => fc.noBias(fc.array(row, { minLength: 12, maxLength: 20 }));
    const poolArb = fc.oneof(
      // Uncorrelated: V independent of the time.
      rows(fc.record({ value: real(0, 100), seconds: seconds(100) })),
      // Strongly correlated: V = T + c, the classic hard shape (many near-equal efficiencies).
      fc.tuple(real(0.1, 20), rows(seconds(100))).map(([c, times]) => times.map((t) => ({ value: t + c, seconds: t }))),
      // Many tiny items: short times, V in [0, 1].
      rows(fc.record({ value: real(0, 1), seconds: seconds(5) })),
    );
    let runs = 0;
    let capped = 0;
    fc.assert(
      fc.property(poolArb, real(0.05, 0.95), fc.noBias(fc.integer({ min: 2, max: 16 })), (pool, fraction, maxStates) => {
        const items = pool.map((r, i) => ({ id: `s${i}`, ...r }));
        const budget = Math.floor(items.reduce((s, it) => s + Math.ceil(it.seconds), 0) * fraction);
        const got = solveKnapsack(items, { budgetSeconds: budget, maxStates });
        const optimum = bruteForce(items, budget).value;
        runs++;
        expect(got.totalSeconds).toBeLessThanOrEqual(budget);
        expect(secondsOf(items, got.selected)).toBe(got.totalSeconds);
        expect(got.totalValue).toBeLessThanOrEqual(optimum + 1e-12 * Math.max(1, optimum));
        expect(got.upperBound).toBeGreaterThanOrEqual(got.totalValue);
        if (got.optimal) {
          // Proven optimal: the same value as brute force, up to the order of summation.
          expect(got.totalValue).toBeGreaterThanOrEqual(optimum - 1e-12 * optimum);
          expect(got.upperBound).toBeGreaterThanOrEqual(optimum - 1e-12 * optimum);
        } else {
          capped++;
          // Capped: the bound must hold exactly (LP bound plus the value-grid slack).
          expect(got.upperBound).toBeGreaterThanOrEqual(optimum);
        }
      }),
      { numRuns: 600 },
    );
    // Guard against a vacuous pass: a good share of the runs must actually hit the cap.
    expect(capped / runs).toBeGreaterThanOrEqual(0.3);
  });
});

describe("solveKnapsack errors name the item", () => {
  const ok = { id: "ok", value: 1, seconds: 10 };
  it.each([
    [[ok, { id: "ok", value: 2, seconds: 5 }], /"ok" \(index 1\): duplicate id/],
    [[ok, { id: "b", value: Number.NaN, seconds: 5 }], /"b" \(index 1\): value must be a finite number ≥ 0, got NaN/],
    [[{ id: "c", value: -0.1, seconds: 5 }], /"c" \(index 0\): value must be/],
    [[{ id: "d", value: 1, seconds: Number.POSITIVE_INFINITY }], /"d" \(index 0\): seconds must be a finite number > 0, got Infinity/],
    [[{ id: "e", value: 1, seconds: 0 }], /"e" \(index 0\): seconds must be/],
    [[{ id: "", value: 1, seconds: 3 }], /index 0\): id must be a non-empty string/],
  ])("%#", (items, message) => {
    expect(() => solveKnapsack(items as BudgetItem[], { budgetSeconds: 100 })).toThrow(InvalidItemError);
    expect(() => solveKnapsack(items as BudgetItem[], { budgetSeconds: 100 })).toThrow(message);
  });

  it("rejects a bad budget or resolution", () => {
    expect(() => solveKnapsack([ok], { budgetSeconds: -1 })).toThrow(InvalidBudgetError);
    expect(() => solveKnapsack([ok], { budgetSeconds: Number.NaN })).toThrow(/budget must be/);
    expect(() => solveKnapsack([ok], { budgetSeconds: 10, resolutionSeconds: 0 })).toThrow(/resolution must be/);
  });
});
