import fc from "fast-check";
import { describe, expect, it } from "vitest";
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
