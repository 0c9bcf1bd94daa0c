/**
 * End to end, the path `npm start` takes (scripts/lib/local-pipeline.ts) with a small pool: moto server
 * holding the synthesized stack's resources, the local default's small ensemble trained in this run (cached under
 * .cache/ich-al-e2e/) served by the model container, the real handlers behind local SQS event sources,
 * the synthesized weekly workflow executed twice (selection, then refit), simulated annotators
 * through the completion API. The rounds' dates are fixed, and the assertions are properties that hold
 * whatever the CPU does to the trained ensemble's last bits (no counts that training decides).
 * ICH_AL_E2E_TRAINING_SEED trains the ensemble with another seed (default 0), to check exactly that.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_VALIDATION_SHARE, splitOf } from "../../lambdas/domain/labeled-set.js";
import type { ModelVersionReport } from "../../scripts/lib/local-learning.js";
import { identifierOccurrences, type LocalRunResult, runLocalPipeline } from "../../scripts/lib/local-pipeline.js";
import { PROJECT_ROOT } from "../../scripts/lib/moto-server.js";
import { LOCAL_ENSEMBLE } from "../../scripts/lib/python-jobs.js";
import { solveWithHighs } from "../support/highs-knapsack.js";

const ANNOTATORS = ["reader-a@example.org", "reader-b@example.org"];
const POOL_SIZE = 26;
const BUDGET_HOURS = 4;
/** A Monday morning in the schedule's zone (UTC in the local config), so the round ids never depend on the date. */
const FIRST_ROUND_AT = "2026-11-30T06:00:00.000Z";
const TRAINING_SEED = Number(process.env.ICH_AL_E2E_TRAINING_SEED ?? 0);
const RESOLUTION_SECONDS = 1;

let run: LocalRunResult;
const progress: string[] = [];

beforeAll(async () => {
  const outputDir = join(PROJECT_ROOT, ".cache", "ich-al-e2e", "output");
  await rm(outputDir, { recursive: true, force: true });
  run = await runLocalPipeline({
    poolSize: POOL_SIZE,
    budgetHours: BUDGET_HOURS,
    seed: 3,
    outputDir,
    cacheDir: join(PROJECT_ROOT, ".cache", "ich-al-e2e"),
    // The ensemble `npm start` uses: a smaller one under-segments so much that predicted B̂, M̂ carry
    // little of the labeling time (the refit regresses on them — errors in variables).
    ensemble: { ...LOCAL_ENSEMBLE, seed: TRAINING_SEED },
    firstRoundAt: FIRST_ROUND_AT,
    phantomSizes: [96, 128],
    annotators: ANNOTATORS,
    report: (line) => progress.push(line),
  });
}, 600_000);

describe("the local pipeline end to end", () => {
  it("ends every upload scored or rejected with a reason; none lost, nothing dead-lettered", () => {
    // The pool's phantoms, and the first good study uploaded once more under another key.
    expect(run.uploads).toHaveLength(POOL_SIZE + 1);
    for (const upload of run.uploads) {
      expect(["scored", "rejected"], `${upload.key}: ${upload.status}`).toContain(upload.status);
      if (upload.status === "rejected") {
        expect(upload.rejectionCode).toMatch(/^[A-Z][A-Z0-9_]+$/);
        expect(upload.rejectionReason?.length).toBeGreaterThan(0);
      } else {
        expect(upload.stackIds.length).toBeGreaterThan(0);
      }
      expect(upload.deadLettered).toBe(false);
    }
    expect(
      Object.values(run.deadLetters).every((n) => n === 0),
      JSON.stringify(run.deadLetters),
    ).toBe(true);
    const byKind = (kind: string) => run.uploads.filter((u) => u.kind === kind);
    expect(byKind("identifier").map((u) => [u.status, u.rejectionCode])).toEqual([["rejected", "PHI_PRESENT"]]);
    // Cut off halfway: the zip's central directory is gone, so the container's reader refuses it.
    expect(byKind("corrupt").map((u) => [u.status, u.rejectionCode])).toEqual([["rejected", "UNREADABLE_ARCHIVE"]]);
    expect(byKind("study").every((u) => u.status === "scored")).toBe(true);
    const stackRecords = run.records.filter((r) => r.kind === "stack");
    expect(stackRecords).toHaveLength(run.uploads.reduce((n, u) => n + u.stackIds.length, 0));
  });

  it("records the same series uploaded twice once: the later stack is a duplicate of the first and never in the pool", () => {
    const [repeat] = run.uploads.filter((u) => u.kind === "repeat");
    const original = run.uploads.find((u) => u.kind === "study" && repeat && u.key === repeat.key.replace(/-again\.zip$/, ".zip"));
    expect(repeat?.status).toBe("scored");
    expect(original?.status).toBe("scored");
    if (!repeat || !original) return;
    // Whichever result was recorded first holds the voxels (almost always the original, uploaded first).
    const pair = [...repeat.duplicates, ...original.duplicates];
    expect(pair).toHaveLength(1);
    const [duplicate] = pair;
    const ids = new Set([...repeat.stackIds, ...original.stackIds]);
    expect(ids.has(duplicate?.stackId ?? "")).toBe(true);
    expect(ids.has(duplicate?.duplicateOf ?? "")).toBe(true);
    expect(duplicate?.stackId).not.toBe(duplicate?.duplicateOf);
    const poolIds = new Set(run.pool.map((s) => s.stackId));
    expect(poolIds.has(duplicate?.stackId ?? "")).toBe(false);
    expect(poolIds.has(duplicate?.duplicateOf ?? "")).toBe(true);
    // No other upload of the run has a duplicate: different phantoms never share a content key.
    expect(run.uploads.filter((u) => u.duplicates.length > 0)).toHaveLength(1);
  });

  it("never lets the planted patient name reach records, logs, e-mails, outputs or any S3 object outside quarantine/", async () => {
    expect(run.plantedName.length).toBeGreaterThan(10);
    expect(await identifierOccurrences(run, run.plantedName)).toEqual({ records: 0, logs: 0, emails: 0, outputs: 0, s3: 0 });
    expect(JSON.stringify(progress)).not.toContain(run.plantedName);
    expect(run.objectScan.foundOutside).toEqual([]);
    // The scan reads inside the zips: it finds the name where the refused study now is (so 0 above means absent).
    expect(run.objectScan.insideQuarantine).toBeGreaterThan(0);
    expect(run.objectScan.versions).toBeGreaterThan(run.uploads.length);
  });

  it("moves every refused upload to quarantine/<code>/<studyId>/: no version of it is left in uploads/", () => {
    const rejected = run.uploads.filter((u) => u.status === "rejected");
    expect(rejected.map((u) => u.kind).sort()).toEqual(["corrupt", "identifier"]);
    for (const upload of rejected) {
      expect(upload.quarantineKey, upload.key).toBe(
        `quarantine/${upload.rejectionCode}/${upload.studyId}/${upload.key.slice("uploads/".length)}`,
      );
      expect(upload.quarantinedVersions, upload.key).toBeGreaterThan(0);
      expect(upload.versionsLeft, upload.key).toBe(0);
    }
    for (const upload of run.uploads.filter((u) => u.status === "scored")) {
      expect(upload.quarantineKey).toBeUndefined();
      expect(upload.versionsLeft).toBe(1);
    }
  });

  it("selects within the budget exactly the knapsack optimum for the recorded V and T", async () => {
    const budgetSeconds = BUDGET_HOURS * 3600;
    expect(run.selection.budgetSeconds).toBe(budgetSeconds);
    const byId = new Map(run.pool.map((s) => [s.stackId, s]));
    const chosen = run.selection.selected.map((id) => byId.get(id));
    expect(chosen.every(Boolean)).toBe(true);
    const weights = run.pool.map((s) => Math.ceil(s.seconds / RESOLUTION_SECONDS));
    const capacity = Math.floor(budgetSeconds / RESOLUTION_SECONDS);
    const selectedWeight = run.selection.selected.reduce(
      (sum, id) => sum + Math.ceil((byId.get(id)?.seconds ?? 0) / RESOLUTION_SECONDS),
      0,
    );
    expect(selectedWeight).toBeLessThanOrEqual(capacity);
    const selectedValue = run.selection.selected.reduce((sum, id) => sum + (byId.get(id)?.value ?? 0), 0);
    const optimum = await solveWithHighs(
      run.pool.map((s) => s.value),
      weights,
      capacity,
    );
    expect(optimum.status).toBe("Optimal");
    expect(selectedValue).toBeCloseTo(optimum.objective, 9);
  });

  it("e-mails each annotator once per round", () => {
    const rounds = run.executions.map((e) => e.name);
    const about = (roundId: string) => (m: (typeof run.emails)[number]) => `${m.text ?? ""}${m.html ?? ""}`.includes(roundId);
    for (const annotator of ANNOTATORS) {
      const [first, ...later] = rounds.map((roundId) => run.emails.filter((m) => m.to.includes(annotator) && about(roundId)(m)).length);
      expect(first, `${annotator} in ${rounds[0]}`).toBe(1);
      for (const n of later) expect(n).toBeLessThanOrEqual(1);
    }
    expect(run.emails.every((m) => m.to.length === 1 && ANNOTATORS.includes(m.to[0] as string))).toBe(true);
  });

  it("selects under one model: the one that scored the pool is in service, no stack waits", () => {
    expect(run.selection.modelVersion).toMatch(/^drn_d_38-/);
    expect(run.selection.waitingForRescore).toBe(0);
    // The first model: the one the learning step found in service and compared the candidate with.
    expect(run.learning.versions[0]?.modelVersion).toBe(run.selection.modelVersion);
  });

  it("closes the loop: retrains on the accepted masks, judges the candidate on the fixed validation split, and round 2 selects only under the model in service", () => {
    const { learning, secondRound } = run;
    const [first, candidate] = learning.versions as [ModelVersionReport, ModelVersionReport];
    expect(learning.versions).toHaveLength(2);
    // The split is the stack id's alone: the candidate trained on exactly the labeled stacks outside it.
    const labeled = run.records.filter((r) => r.sk === "RECORD" && r.status === "labeled").map((r) => String(r.stackId));
    const held = labeled.filter((id) => splitOf(id, DEFAULT_VALIDATION_SHARE) === "validation");
    expect(learning.validationStacks).toBe(held.length);
    expect(candidate.trainingStacks).toBe(labeled.length - held.length);
    expect(candidate.validation.stackIds).toEqual([...held].sort());
    expect(candidate.reasons.length).toBeGreaterThan(0);
    const model = run.records.find((r) => r.pk === "MODEL" && r.sk === "IN_SERVICE");
    const pending = run.records.filter((r) => r.sk === "RECORD" && r.status === "pending" && r.kind !== "study");
    if (candidate.promoted) {
      expect(model).toMatchObject({ modelVersion: candidate.modelVersion, sequence: 2, source: "promotion" });
      // Every stack still in the pool was re-scored by it before round 2 selected.
      expect(learning.rescore?.stacks).toBeGreaterThan(0);
      for (const r of pending) expect((r.scores as { modelVersion: string }).modelVersion).toBe(candidate.modelVersion);
    } else {
      expect(model).toMatchObject({ modelVersion: first.modelVersion, sequence: 1 });
      expect(learning.rescore).toBeUndefined();
    }
    expect(secondRound).toMatchObject({ modelVersion: (model as { modelVersion: string }).modelVersion, waitingForRescore: 0 });
    expect(secondRound.roundId).toBe(run.executions[1]?.name);
  });

  it("names the rounds after the fixed dates' ISO weeks", () => {
    expect(run.executions.map((e) => e.name)).toEqual(["select-2026-W49", "select-2026-W50"]);
  });

  it("completes the selected stacks through the API and learns a time model closer to the simulated annotators than the prior", () => {
    expect(run.completions.length).toBe(run.selection.selected.length);
    expect(run.completions.length).toBeGreaterThan(0);
    expect(run.completions.every((c) => c.statusCode === 200)).toBe(true);
    // Each positive phantom's exact label map went through the presigned upload and the checks: the mask
    // kept under labels/ holds exactly the phantom's voxels (numpy's count in the manifest); negatives
    // finished with "no hemorrhage".
    for (const c of run.completions) {
      const record = run.records.find((r) => r.stackId === c.stackId && r.sk === "RECORD") as
        | { completion?: { noHemorrhage?: boolean; source?: string; mask?: { key: string; labeledVoxels: number } } }
        | undefined;
      const completion = record?.completion;
      expect(completion?.mask?.key, c.stackId).toMatch(new RegExp(`^labels/${c.stackId}/`));
      expect(completion?.mask?.labeledVoxels, c.stackId).toBe(c.noHemorrhage ? 0 : c.trueMaskVoxels);
      expect(completion?.noHemorrhage ?? false).toBe(c.noHemorrhage);
      expect(completion?.source).toBe("page");
    }
    expect(run.completions.some((c) => !c.noHemorrhage && c.trueMaskVoxels > 0)).toBe(true);
    const { coefficientsBefore: before, coefficientsAfter: after, fit, refit } = run;
    expect(before).toMatchObject({ source: "prior", version: 0 });
    // Every completion moves the posterior (no threshold): version 1 after the first round.
    expect(after).toMatchObject({ source: "fit", version: 1 });
    expect(after.n + refit.excluded.length).toBe(run.completions.length);
    expect(refit.completions).toBe(run.completions.length);
    // More boundary or more components never take less time.
    expect(after.alpha).toBeGreaterThanOrEqual(0);
    expect(after.beta).toBeGreaterThanOrEqual(0);
    // On the completed stacks, the posterior's hours and log-times are closer to the simulation than the prior's.
    expect(Math.abs(fit.predictedHoursAfter - fit.simulatedHours)).toBeLessThan(Math.abs(fit.predictedHoursBefore - fit.simulatedHours));
    expect(fit.rmsLogErrorAfter).toBeLessThan(fit.rmsLogErrorBefore);
    // Both simulated annotators are reported with a speed factor, and none of the simulated times is refused.
    expect(refit.annotatorSpeeds.map((s) => s.annotator).sort()).toEqual([...ANNOTATORS].sort());
    expect(refit.excluded.filter((e) => e.reason === "out-of-range")).toEqual([]);
    expect(refit.refused).toBeUndefined();
  });

  it("reports the first round's predicted hours with an 80 % interval against the actual hours", () => {
    const lastRound = run.refit.lastRound;
    expect(lastRound?.roundId).toBe(run.selection.roundId);
    expect(lastRound?.stacks).toBe(run.completions.length);
    const actual = run.completions.reduce((s, c) => s + c.activeSeconds, 0);
    expect(lastRound?.actualSeconds).toBeCloseTo(actual, 6);
    expect(lastRound?.level).toBe(0.8);
    expect(lastRound?.lowSeconds).toBeLessThan(lastRound?.predictedSeconds ?? 0);
    expect(lastRound?.highSeconds).toBeGreaterThan(lastRound?.predictedSeconds ?? 0);
    expect(lastRound?.insideInterval).toBe(actual >= (lastRound?.lowSeconds ?? 0) && actual <= (lastRound?.highSeconds ?? 0));
    expect(run.refit.calibration).toEqual({
      rounds: 1,
      inside: lastRound?.insideInterval ? 1 : 0,
      share: lastRound?.insideInterval ? 1 : 0,
    });
  });
});
