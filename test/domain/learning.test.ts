import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { tarEntry } from "../../lambdas/adapters/s3-training-objects.js";
import type { TrainingRun } from "../../lambdas/contracts/learning.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { planTraining } from "../../lambdas/domain/learning.js";
import { pendingStack } from "../support/round-fixtures.js";

function labeled(i: number, completedAt: string): StackRecord {
  const stackId = `${String(i).padStart(32, "0")}-s0`;
  return {
    ...pendingStack(i, 600),
    stackId,
    status: "labeled",
    assignedTo: "amy@x.org",
    completion: {
      activeSeconds: 300,
      annotator: "amy@x.org",
      completedAt,
      source: "page",
      mask: { key: `labels/${stackId}/u.nii.gz`, labeledVoxels: 12, values: [0, 2], reoriented: false },
    },
  };
}

const run = (status: TrainingRun["status"], labelsUntil: string): TrainingRun => ({
  jobName: `job-${status}-${labelsUntil}`,
  status,
  startedAt: labelsUntil,
  updatedAt: labelsUntil,
  labelsUntil,
  newMasks: 1,
  trainStacks: [],
  validationStacks: [],
});

describe("planTraining", () => {
  const records = [1, 2, 3, 4, 5].map((i) => labeled(i, `2026-12-0${i}T10:00:00.000Z`));

  it("counts every mask as new before any job was judged, and the latest completion as the cut-off", () => {
    const plan = planTraining(records, [], 0.2);
    expect(plan.newMasks).toBe(5);
    expect(plan.labelsUntil).toBe("2026-12-05T10:00:00.000Z");
    expect(plan.train.length + plan.validation.length).toBe(5);
  });

  it("counts only masks completed after the latest judged job's labels; failed and running jobs do not count", () => {
    expect(planTraining(records, [run("rejected", "2026-12-02T10:00:00.000Z")], 0.2).newMasks).toBe(3);
    expect(
      planTraining(records, [run("promoted", "2026-12-01T10:00:00.000Z"), run("deploying", "2026-12-04T10:00:00.000Z")], 0.2).newMasks,
    ).toBe(1);
    expect(
      planTraining(records, [run("failed", "2026-12-05T10:00:00.000Z"), run("training", "2026-12-05T10:00:00.000Z")], 0.2).newMasks,
    ).toBe(5);
  });
});

describe("tarEntry (a job's output.tar.gz)", () => {
  const python = resolve("model-container/.venv/bin/python");
  /** A tar.gz written by Python's tarfile in `format`, with `files` (name → text). */
  const archive = (format: string, files: Record<string, string>) =>
    gunzipSync(
      execFileSync(python, [
        "-c",
        "import io, json, sys, tarfile\nfiles = json.loads(sys.argv[2]); buf = io.BytesIO()\n" +
          "with tarfile.open(fileobj=buf, mode='w:gz', format=getattr(tarfile, sys.argv[1])) as tar:\n" +
          "    for name, text in files.items():\n" +
          "        data = text.encode(); info = tarfile.TarInfo(name); info.size = len(data); tar.addfile(info, io.BytesIO(data))\n" +
          "sys.stdout.buffer.write(buf.getvalue())",
        format,
        JSON.stringify(files),
      ]),
    );

  it.each(["USTAR_FORMAT", "GNU_FORMAT", "PAX_FORMAT"])(
    "finds evaluation.json among other files (%s), also as ./evaluation.json",
    (format) => {
      const body = JSON.stringify({ candidate: { x: "é".repeat(700) } });
      const files = { [`${"d".repeat(120)}/long-name.txt`]: "x".repeat(1000), "./evaluation.json": body, failure: "" };
      expect(tarEntry(archive(format, files), "evaluation.json")?.toString("utf8")).toBe(body);
      expect(tarEntry(archive(format, { "other.json": "{}" }), "evaluation.json")).toBeUndefined();
    },
  );
});
