import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AnnotatorShare } from "../../lambdas/contracts/records.js";
import {
  type AssignableStack,
  assignStacks,
  InvalidAssignmentInputError,
  normalizeAnnotator,
  roundAssignment,
  shareOf,
} from "../../lambdas/domain/assignment.js";

const stacksArb = (maxLength: number) =>
  fc
    .uniqueArray(fc.record({ stackId: fc.stringMatching(/^[a-z0-9]{1,6}$/), predictedSeconds: fc.integer({ min: 0, max: 5000 }) }), {
      selector: (s) => s.stackId,
      maxLength,
    })
    .map((xs) => xs as AssignableStack[]);
const annotatorsArb = (max: number) => fc.uniqueArray(fc.stringMatching(/^[a-z]{1,5}@x\.org$/), { minLength: 1, maxLength: max });

/** The best possible makespan by trying every way to give n stacks to m annotators (m^n ≤ 6561). */
function optimalMakespan(stacks: readonly AssignableStack[], m: number): number {
  let best = Number.POSITIVE_INFINITY;
  const loads = new Array<number>(m).fill(0);
  const go = (i: number) => {
    if (i === stacks.length) {
      best = Math.min(best, Math.max(...loads));
      return;
    }
    for (let a = 0; a < m; a++) {
      loads[a] = (loads[a] as number) + (stacks[i] as AssignableStack).predictedSeconds;
      if ((loads[a] as number) < best) go(i + 1);
      loads[a] = (loads[a] as number) - (stacks[i] as AssignableStack).predictedSeconds;
    }
  };
  go(0);
  return stacks.length === 0 ? 0 : best;
}

describe("assignStacks (LPT)", () => {
  it("gives the longest stacks first to the least-loaded annotator, ties by id and sorted annotators", () => {
    const shares = assignStacks(
      [
        { stackId: "d", predictedSeconds: 300 },
        { stackId: "a", predictedSeconds: 600 },
        { stackId: "b", predictedSeconds: 600 },
        { stackId: "c", predictedSeconds: 400 },
        { stackId: "e", predictedSeconds: 300 },
      ],
      ["Zed@X.org", " amy@x.org "],
    );
    // a → amy, b → zed (both 600); c → amy (tie: first) 1000; d → zed 900; e → zed 1200.
    expect(shares).toEqual([
      { annotator: "amy@x.org", stackIds: ["a", "c"], predictedSeconds: 1000 },
      { annotator: "zed@x.org", stackIds: ["b", "d", "e"], predictedSeconds: 1200 },
    ]);
  });

  it("assigns every stack exactly once, to a listed annotator, with correct loads", () => {
    fc.assert(
      fc.property(stacksArb(40), annotatorsArb(6), (stacks, annotators) => {
        const shares = assignStacks(stacks, annotators);
        expect(shares.map((s) => s.annotator)).toEqual([...new Set(annotators.map(normalizeAnnotator))].sort());
        const all = shares.flatMap((s) => s.stackIds);
        expect([...all].sort()).toEqual(stacks.map((s) => s.stackId).sort());
        const seconds = new Map(stacks.map((s) => [s.stackId, s.predictedSeconds]));
        for (const share of shares) {
          expect(share.stackIds).toEqual([...share.stackIds].sort());
          expect(share.predictedSeconds).toBe(share.stackIds.reduce((t, id) => t + (seconds.get(id) as number), 0));
        }
      }),
    );
  });

  it("is deterministic: the input order of stacks and annotators does not matter", () => {
    fc.assert(
      fc.property(stacksArb(30), annotatorsArb(5), fc.nat(), (stacks, annotators, seed) => {
        const shuffled = [...stacks].sort(
          (a, b) => ((a.stackId.charCodeAt(0) * (seed + 1)) % 7) - ((b.stackId.charCodeAt(0) * (seed + 1)) % 7),
        );
        expect(assignStacks(shuffled, [...annotators].reverse())).toEqual(assignStacks(stacks, annotators));
      }),
    );
  });

  it("makespan ≤ (4/3 − 1/(3m))·OPT against brute force on small rounds", () => {
    fc.assert(
      fc.property(stacksArb(8), annotatorsArb(3), (stacks, annotators) => {
        const shares = assignStacks(stacks, annotators);
        const m = shares.length;
        const makespan = Math.max(...shares.map((s) => s.predictedSeconds));
        const opt = optimalMakespan(stacks, m);
        expect(makespan).toBeLessThanOrEqual((4 / 3 - 1 / (3 * m)) * opt + 1e-9);
        expect(makespan).toBeGreaterThanOrEqual(opt);
      }),
      { numRuns: 300 },
    );
  });

  it("an annotator with nothing gets an empty share; no stacks gives everyone an empty share", () => {
    expect(assignStacks([{ stackId: "a", predictedSeconds: 10 }], ["b@x.org", "a@x.org"])).toEqual([
      { annotator: "a@x.org", stackIds: ["a"], predictedSeconds: 10 },
      { annotator: "b@x.org", stackIds: [], predictedSeconds: 0 },
    ]);
    expect(assignStacks([], ["a@x.org"])).toEqual([{ annotator: "a@x.org", stackIds: [], predictedSeconds: 0 }]);
  });

  it("refuses no annotators, duplicate stacks and unusable times", () => {
    expect(() => assignStacks([], [])).toThrow(InvalidAssignmentInputError);
    expect(() => assignStacks([], [" "])).toThrow(InvalidAssignmentInputError);
    expect(() =>
      assignStacks(
        [
          { stackId: "a", predictedSeconds: 1 },
          { stackId: "a", predictedSeconds: 2 },
        ],
        ["a@x.org"],
      ),
    ).toThrow(/twice/);
    expect(() => assignStacks([{ stackId: "a", predictedSeconds: Number.NaN }], ["a@x.org"])).toThrow(/finite/);
  });

  it("roundAssignment and shareOf", () => {
    const assignment = roundAssignment([{ stackId: "s", predictedSeconds: 5 }], ["A@x.org"], "2026-11-26T06:00:00.000Z");
    expect(assignment.assignedAt).toBe("2026-11-26T06:00:00.000Z");
    expect(shareOf(assignment, "a@X.ORG")?.stackIds).toEqual(["s"]);
    expect(shareOf(assignment, "b@x.org")).toBeUndefined();
  });
});

describe("assignStacks with annotator speed factors (LPT for uniform machines)", () => {
  const equalStacks = (n: number, seconds = 600): AssignableStack[] =>
    Array.from({ length: n }, (_, i) => ({ stackId: `s${String(i).padStart(3, "0")}`, predictedSeconds: seconds }));
  /** Σ T·s_a of a share, computed here from the inputs. */
  const loadOf = (stackIds: readonly string[], seconds: ReadonlyMap<string, number>, speed: number) =>
    stackIds.reduce((t, id) => t + (seconds.get(id) as number) * speed, 0);
  const speedsArb = (annotators: readonly string[]) =>
    fc
      .array(fc.double({ min: 0.25, max: 4, noNaN: true }), { minLength: annotators.length, maxLength: annotators.length })
      .map((factors) => new Map(annotators.map((a, i) => [normalizeAnnotator(a), factors[i] as number])));
  const withSpeeds = (max: number) =>
    annotatorsArb(max).chain((annotators) => speedsArb(annotators).map((speeds) => ({ annotators, speeds })));

  it("a twice-as-slow annotator gets about half as many equal stacks", () => {
    const speeds = new Map([
      ["a@x.org", 1],
      ["b@x.org", 2],
    ]);
    const shares = assignStacks(equalStacks(30), ["a@x.org", "b@x.org"], speeds);
    const [a, b] = shares as [AnnotatorShare, AnnotatorShare];
    expect(a.stackIds.length + b.stackIds.length).toBe(30);
    expect(Math.abs(a.stackIds.length - 2 * b.stackIds.length)).toBeLessThanOrEqual(2);
    expect(a.stackIds).toHaveLength(20);
    // Each share's predicted time is Σ T·s_a: both finish at 12,000 s.
    expect(a.predictedSeconds).toBe(20 * 600 * 1);
    expect(b.predictedSeconds).toBe(10 * 600 * 2);
  });

  it("each share's predictedSeconds is Σ T·s_a; every stack is assigned once", () => {
    fc.assert(
      fc.property(stacksArb(30), withSpeeds(5), (stacks, { annotators, speeds }) => {
        const shares = assignStacks(stacks, annotators, speeds);
        const seconds = new Map(stacks.map((s) => [s.stackId, s.predictedSeconds]));
        expect(shares.flatMap((s) => s.stackIds).sort()).toEqual(stacks.map((s) => s.stackId).sort());
        for (const share of shares) {
          expect(share.predictedSeconds).toBeCloseTo(loadOf(share.stackIds, seconds, speeds.get(share.annotator) as number), 6);
        }
      }),
    );
  });

  it("without speeds (or with all speeds 1, or unusable ones) the split is the plain LPT split", () => {
    fc.assert(
      fc.property(stacksArb(30), annotatorsArb(5), (stacks, annotators) => {
        const plain = assignStacks(stacks, annotators);
        const names = annotators.map(normalizeAnnotator);
        expect(assignStacks(stacks, annotators, new Map())).toEqual(plain);
        expect(assignStacks(stacks, annotators, new Map(names.map((a) => [a, 1])))).toEqual(plain);
        const unusable = [Number.NaN, 0, -2, Number.POSITIVE_INFINITY];
        expect(assignStacks(stacks, annotators, new Map(names.map((a, i) => [a, unusable[i % unusable.length] as number])))).toEqual(plain);
        // Speeds of people not on the list change nothing.
        expect(assignStacks(stacks, annotators, new Map([["nobody@elsewhere.org", 3]]))).toEqual(plain);
      }),
    );
  });

  it("is deterministic with speeds: the input order of stacks and annotators does not matter", () => {
    fc.assert(
      fc.property(stacksArb(30), withSpeeds(5), fc.nat(), (stacks, { annotators, speeds }, seed) => {
        const shuffled = [...stacks].sort(
          (a, b) => ((a.stackId.charCodeAt(0) * (seed + 1)) % 7) - ((b.stackId.charCodeAt(0) * (seed + 1)) % 7),
        );
        const reversedSpeeds = new Map([...speeds].reverse());
        expect(assignStacks(shuffled, [...annotators].reverse(), reversedSpeeds)).toEqual(assignStacks(stacks, annotators, speeds));
        expect(roundAssignment(stacks, annotators, "2026-11-26T06:00:00.000Z", speeds).annotators).toEqual(
          assignStacks(stacks, annotators, speeds),
        );
      }),
    );
  });

  /**
   * A lower bound on the best makespan with speeds: the k largest stacks need at least their total
   * work over the k fastest annotators' rates (k = 1 … m; rate = 1/s_a), and all the work needs the
   * total over all rates. (The weaker max(W/Σ rates, T_max·s_min) is not enough: LPT can exceed twice
   * it, e.g. stacks [100, 100, 100, 1] and speeds [4, 1, 3, 4, 3].)
   */
  function makespanLowerBound(stacks: readonly AssignableStack[], speeds: readonly number[]): number {
    const times = stacks.map((s) => s.predictedSeconds).sort((a, b) => b - a);
    const rates = speeds.map((s) => 1 / s).sort((a, b) => b - a);
    let bound = times.reduce((t, x) => t + x, 0) / rates.reduce((r, x) => r + x, 0);
    let work = 0;
    let rate = 0;
    for (let k = 0; k < Math.min(times.length, rates.length); k++) {
      work += times[k] as number;
      rate += rates[k] as number;
      bound = Math.max(bound, work / rate);
    }
    return bound;
  }

  it("makespan max_a Σ T·s_a ≤ 2 × a lower bound of the best split", () => {
    fc.assert(
      fc.property(stacksArb(25), withSpeeds(6), (stacks, { annotators, speeds }) => {
        const shares = assignStacks(stacks, annotators, speeds);
        const makespan = Math.max(...shares.map((s) => s.predictedSeconds));
        const bound = makespanLowerBound(
          stacks,
          shares.map((s) => speeds.get(s.annotator) as number),
        );
        expect(makespan).toBeLessThanOrEqual(2 * bound + 1e-6);
        expect(makespan).toBeGreaterThanOrEqual(bound - 1e-6);
      }),
      { numRuns: 500 },
    );
  });

  it("the lower bound is the best split on small rounds (brute force) and LPT stays within 2 of it", () => {
    fc.assert(
      fc.property(stacksArb(7), withSpeeds(3), (stacks, { annotators, speeds }) => {
        const shares = assignStacks(stacks, annotators, speeds);
        const factors = shares.map((s) => speeds.get(s.annotator) as number);
        let best = Number.POSITIVE_INFINITY;
        const loads = factors.map(() => 0);
        const go = (i: number) => {
          if (i === stacks.length) {
            best = Math.min(best, Math.max(...loads));
            return;
          }
          for (let a = 0; a < loads.length; a++) {
            const add = (stacks[i] as AssignableStack).predictedSeconds * (factors[a] as number);
            loads[a] = (loads[a] as number) + add;
            if ((loads[a] as number) < best) go(i + 1);
            loads[a] = (loads[a] as number) - add;
          }
        };
        go(0);
        const opt = stacks.length === 0 ? 0 : best;
        const makespan = Math.max(...shares.map((s) => s.predictedSeconds));
        expect(opt).toBeGreaterThanOrEqual(makespanLowerBound(stacks, factors) - 1e-6);
        expect(makespan).toBeGreaterThanOrEqual(opt - 1e-6);
        expect(makespan).toBeLessThanOrEqual(2 * opt + 1e-6);
      }),
      { numRuns: 200 },
    );
  });
});
