import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { channelFiles, labeledSet, promotionDecision, splitOf, type ValidationMetrics } from "../../lambdas/domain/labeled-set.js";
import { pendingStack } from "../support/round-fixtures.js";

const AT = "2026-12-01T10:00:00.000Z";

function labeled(stackId: string, withMask = true): StackRecord {
  return {
    ...pendingStack(1, 600),
    stackId,
    status: "labeled",
    assignedTo: "amy@x.org",
    completion: {
      activeSeconds: 300,
      annotator: "amy@x.org",
      completedAt: AT,
      ...(withMask
        ? { source: "page" as const, mask: { key: `labels/${stackId}/u.nii.gz`, labeledVoxels: 12, values: [0, 3], reoriented: false } }
        : { labelLocation: "s3://old/place" }),
    },
  };
}

describe("splitOf", () => {
  it("is the sha256 of the stack id read as a fraction, as Python's hashlib reads it", () => {
    const ids = ["study-a-s0", "b", "ünïcode-s3", "x".repeat(200)];
    const script =
      "import hashlib, sys, json; print(json.dumps([int.from_bytes(hashlib.sha256(i.encode()).digest()[:4], 'big') / 2**32 for i in sys.argv[1:]]))";
    const fractions = JSON.parse(execFileSync(resolve("model-container/.venv/bin/python"), ["-c", script, ...ids]).toString()) as number[];
    ids.forEach((id, i) => {
      const f = fractions[i] as number;
      expect(splitOf(id, Math.min(0.999, f + 1e-9))).toBe("validation");
      expect(splitOf(id, f)).toBe("train");
    });
  });

  it("holds out about the share, and a larger share only moves stacks from train to validation", () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `study-${i.toString(16)}-s${i % 3}`);
    const held = ids.filter((id) => splitOf(id, 0.15) === "validation").length / ids.length;
    const sd = Math.sqrt((0.15 * 0.85) / ids.length);
    expect(Math.abs(held - 0.15)).toBeLessThan(5 * sd);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        (id, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          if (splitOf(id, low) === "validation") expect(splitOf(id, high)).toBe("validation");
          expect(splitOf(id, 0)).toBe("train");
        },
      ),
    );
    expect(() => splitOf("x", 1)).toThrow(RangeError);
    expect(() => splitOf("x", Number.NaN)).toThrow(RangeError);
  });
});

describe("labeledSet", () => {
  it("keeps labeled stacks with an accepted mask, sorted, each on its fixed side; lists those without a mask", () => {
    const records = [
      labeled("study-c-s1"),
      labeled("study-a-s0"),
      labeled("study-old-s0", false),
      pendingStack(4, 100),
      { ...labeled("study-d-s0"), kind: "study" as const },
    ];
    const set = labeledSet(records, 0.5);
    const all = [...set.train, ...set.validation];
    expect(all.map((s) => s.stackId).sort()).toEqual(["study-a-s0", "study-c-s1"]);
    for (const s of all) expect(s.split).toBe(splitOf(s.stackId, 0.5));
    expect(set.withoutMask).toEqual(["study-old-s0"]);
    const c = all.find((s) => s.stackId === "study-c-s1");
    expect(c).toMatchObject({ seriesIndex: 1, maskKey: "labels/study-c-s1/u.nii.gz", labeledVoxels: 12, completedAt: AT });
    expect(c?.study).toEqual(records[0]?.source);
    // Reordering the records changes nothing.
    expect(labeledSet([...records].reverse(), 0.5)).toEqual(set);
  });
});

describe("channelFiles", () => {
  it.each([
    ["uploads/a/study.zip", "study.zip"],
    ["uploads/a/head.NII.GZ", "study.nii.gz"],
    ["uploads/a/head.nii", "study.nii"],
    ["uploads/a/head.npz", "study.npz"],
    ["uploads/a/export", "study"],
  ])("%s → %s", (key, name) => {
    const [stack] = labeledSet([{ ...labeled("study-a-s2"), source: { bucket: "b", key, versionId: "v" } }], 0).train;
    const files = channelFiles(stack as NonNullable<typeof stack>);
    expect(files).toEqual({
      study: `study-a-s2/${name}`,
      mask: "study-a-s2/mask.nii.gz",
      stackJson: "study-a-s2/stack.json",
      stackJsonBody: JSON.stringify({ stackId: "study-a-s2", seriesIndex: 2 }),
    });
  });
});

describe("promotionDecision", () => {
  const ids = ["s1", "s2", "s3"];
  const m = (pixelAp: number, stackAp: number, stackIds = ids): ValidationMetrics => ({ pixelAp, stackAp, frameAp: 0.5, stackIds });
  it.each([
    ["no model in service", m(0.1, 0.1), undefined, true],
    ["better", m(0.6, 0.9), m(0.5, 0.9), true],
    ["worse within the tolerance", m(0.49, 0.89), m(0.5, 0.9), true],
    ["pixel AP worse beyond the tolerance", m(0.47, 0.95), m(0.5, 0.9), false],
    ["stack AP worse beyond the tolerance", m(0.6, 0.8), m(0.5, 0.9), false],
    ["other validation stacks", m(0.9, 0.9, ["s1", "s2"]), m(0.5, 0.5), false],
    ["metrics not finite", m(Number.NaN, 0.9), m(0.5, 0.9), false],
    ["no validation stacks yet", m(Number.NaN, Number.NaN, []), m(Number.NaN, Number.NaN, []), true],
    ["the current model's AP is undefined", m(0.4, 0.7), m(Number.NaN, 0.7), true],
  ])("%s → promote %s", (_name, candidate, current, promote) => {
    const decision = promotionDecision(candidate, current, 0.02);
    expect(decision.promote).toBe(promote);
    expect(decision.reasons.length).toBeGreaterThan(0);
  });
});
