/**
 * The local default (README, first command: `npm start`): the whole pipeline on this machine — moto
 * server as AWS with the resources of the synthesized CDK stack, the model container on CPU, the real
 * Lambda handlers fed by local SQS event sources, the synthesized weekly workflow executed locally,
 * simulated annotators, and the refit. The steps are in scripts/lib/local-pipeline.ts.
 *
 * Options: --pool-size N (phantom studies uploaded, default 30) --budget-hours H (weekly budget Q,
 * default 4) --seed S (default 1). Outputs: local-output/ (outbox, logs, summary.json); trained
 * ensembles are cached in .cache/ich-al-local/.
 */
import { relative } from "node:path";
import { parseArgs } from "node:util";
import {
  DEFAULT_CACHE_DIR,
  DEFAULT_OUTPUT_DIR,
  identifierOccurrences,
  type LocalRunResult,
  runLocalPipeline,
} from "./lib/local-pipeline.js";
import { PROJECT_ROOT } from "./lib/moto-server.js";
import { killPythonJobs, LOCAL_ENSEMBLE } from "./lib/python-jobs.js";

const ANNOTATORS = ["annotator-1@example.org", "annotator-2@example.org"];

function progressBar(fraction: number): string {
  const width = 30;
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.round(fraction * 100)}%`;
}

async function main() {
  const { values } = parseArgs({
    options: { "pool-size": { type: "string" }, "budget-hours": { type: "string" }, seed: { type: "string" } },
  });
  const poolSize = Number(values["pool-size"] ?? 30);
  const budgetHours = Number(values["budget-hours"] ?? 4);
  const seed = Number(values.seed ?? 1);
  if (!Number.isSafeInteger(poolSize) || poolSize < 4) throw new Error(`--pool-size must be an integer ≥ 4, got ${values["pool-size"]}`);
  if (!(budgetHours > 0)) throw new Error(`--budget-hours must be a number > 0, got ${values["budget-hours"]}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);

  const out = (line: string) => process.stdout.write(`${line}\n`);
  let lastBar = -1;
  const tty = process.stdout.isTTY;
  const result = await runLocalPipeline({
    poolSize,
    budgetHours,
    seed,
    outputDir: DEFAULT_OUTPUT_DIR,
    cacheDir: DEFAULT_CACHE_DIR,
    ensemble: LOCAL_ENSEMBLE,
    phantomSizes: [96, 128],
    annotators: ANNOTATORS,
    report: (line) => {
      if (tty && lastBar >= 0) process.stdout.write("\n");
      lastBar = -1;
      out(line);
    },
    trainingProgress: (fraction) => {
      const step = Math.floor(fraction * 20);
      if (step === lastBar) return;
      lastBar = step;
      if (tty) process.stdout.write(`\r      training ${progressBar(fraction)}`);
      else out(`      training ${progressBar(fraction)}`);
    },
  });
  const hits = await identifierOccurrences(result, result.plantedName);
  printSummary(result, budgetHours, hits);
}

const h = (s: number) => (s / 3600).toFixed(2);

function printSummary(r: LocalRunResult, budgetHours: number, identifierHits: Record<string, number>) {
  const out = (line = "") => process.stdout.write(`${line}\n`);
  const rejected = r.uploads.filter((u) => u.status === "rejected");
  const byCode = new Map<string, number>();
  for (const u of rejected) byCode.set(u.rejectionCode ?? "?", (byCode.get(u.rejectionCode ?? "?") ?? 0) + 1);
  const scored = r.uploads.filter((u) => u.status === "scored");
  const failed = r.uploads.filter((u) => u.status === "failed");
  const lost = r.uploads.filter((u) => !["scored", "rejected", "failed"].includes(u.status));
  const duplicates = scored.flatMap((u) => u.duplicates.map((d) => ({ ...d, key: u.key })));
  const stacks = scored.reduce((n, u) => n + u.stackIds.length, 0) - duplicates.length;
  const simulated = r.completions.reduce((s, c) => s + c.activeSeconds, 0);
  const predicted = r.completions.reduce((s, c) => s + c.predictedSeconds, 0);
  const coefficient = (c: LocalRunResult["coefficientsBefore"]) =>
    `α=${c.alpha.toFixed(3)} β=${c.beta.toFixed(3)} γ=${c.gamma.toFixed(3)} (e^γ=${Math.exp(c.gamma).toFixed(0)} s)`;
  out();
  out("== Summary (synthetic phantoms and simulated annotators: not clinical results)");
  out(`studies received   ${r.uploads.length}`);
  out(`rejected           ${rejected.length}${rejected.length ? `: ${[...byCode].map(([code, n]) => `${code} ×${n}`).join(", ")}` : ""}`);
  for (const u of rejected) out(`                   - ${u.key.split("/").pop()}: ${u.rejectionCode} — ${u.rejectionReason}`);
  const moved = rejected.filter((u) => u.quarantineKey);
  out(
    `quarantine         ${moved.length} moved to quarantine/<code>/<studyId>/ (operator role only); ` +
      `${moved.reduce((n, u) => n + u.versionsLeft, 0)} version(s) of them left in uploads/`,
  );
  out(
    `scored             ${scored.length} studies → ${stacks} pending stacks${failed.length ? `; failed ${failed.length}` : ""}; lost ${lost.length}`,
  );
  const keyOf = (stackId: string) =>
    r.uploads
      .find((u) => u.stackIds.includes(stackId))
      ?.key.split("/")
      .pop() ?? "?";
  out(`duplicates         ${duplicates.length} stack(s) whose voxels were recorded before, kept out of the pool`);
  for (const d of duplicates) out(`                   - ${d.key.split("/").pop()}: same voxels as ${keyOf(d.duplicateOf)}`);
  out(
    `selected (${r.selection.roundId})  ${r.selection.selected.length} of ${r.pool.length} stacks, predicted ${h(r.selection.totalPredictedSeconds)} h` +
      `${r.selection.predictedInterval ? ` (80 % interval ${h(r.selection.predictedInterval.lowSeconds)}–${h(r.selection.predictedInterval.highSeconds)} h)` : ""}` +
      ` of ${budgetHours} h budget (exact knapsack on V, T)`,
  );
  if (r.selection.modelVersion) {
    out(
      `model in service   ${r.selection.modelVersion}: every stack of the pool scored by it; ${r.selection.waitingForRescore ?? 0} wait to be scored again`,
    );
  }
  out(`e-mails            ${r.emails.length} (one per annotator per round) → ${relative(PROJECT_ROOT, r.outboxDir)}/`);
  out(`completed          ${r.completions.length} stacks: predicted ${h(predicted)} h (at selection) vs simulated ${h(simulated)} h`);
  const withMask = r.completions.filter((c) => !c.noHemorrhage);
  out(
    `masks              ${withMask.length} exact label maps uploaded (presigned PUT), checked and kept under labels/ ` +
      `(${withMask.reduce((n, c) => n + c.trueMaskVoxels, 0)} labeled voxels); ${r.completions.length - withMask.length} finished "no hemorrhage"`,
  );
  const ap = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "n/a");
  out(`model versions     validation split: ${r.learning.validationStacks} labeled stacks held out by stack id (synthetic phantoms)`);
  for (const v of r.learning.versions) {
    out(
      `                   - ${v.modelVersion}: trained on ${v.trainingStacks ? `${v.trainingStacks} labeled stacks (warm start)` : "phantoms (offline)"}; ` +
        `validation pixel AP ${ap(v.validation.pixelAp)}, stack AP ${ap(v.validation.stackAp)}; ${v.trainingStacks ? (v.promoted ? "promoted" : `rejected (${v.reasons.join("; ")})`) : "in service before"}`,
    );
  }
  if (r.learning.rescore) {
    const { stacks, studies, seconds } = r.learning.rescore;
    out(
      `re-scored          ${stacks} pending stacks of ${studies} studies in ${seconds.toFixed(0)} s (${stacks ? (seconds / stacks).toFixed(1) : "0"} s per stack on this CPU)`,
    );
  }
  const second = r.secondRound;
  out(
    `round 2 (${second.roundId})  ${second.selected} stacks, predicted ${h(second.predictedSeconds)} h` +
      `${second.modelVersion ? ` under ${second.modelVersion}; ${second.waitingForRescore ?? 0} stacks waited for re-scoring` : ""}`,
  );
  out(`time model before  v${r.coefficientsBefore.version} ${r.coefficientsBefore.source}: ${coefficient(r.coefficientsBefore)}`);
  const refit = r.refit;
  out(
    refit.fitted
      ? `time model after   v${r.coefficientsAfter.version} posterior after ${r.coefficientsAfter.n} completions: ${coefficient(r.coefficientsAfter)}` +
          `${refit.atBound.length ? ` (${refit.atBound.join(", ")} held at 0)` : ""}; residual SD ${refit.residualSd.toFixed(2)}`
      : `time model after   unchanged (v${refit.version})${refit.refused ? `: the fit was refused — ${refit.refused}` : ""}`,
  );
  out(
    `excluded           ${refit.excluded.length ? refit.excluded.map((e) => `${e.stackId} (${e.reason})`).join(", ") : "none"} of ${refit.completions} completions`,
  );
  out(
    `annotator speeds   ${refit.annotatorSpeeds
      .map(
        (a) => `${a.annotator} ×${a.factor.toFixed(2)} (${a.completions}; simulated ×${(r.simulatedSpeeds[a.annotator] ?? 1).toFixed(2)})`,
      )
      .join(", ")}`,
  );
  if (r.lastRound) {
    const lr = r.lastRound;
    out(
      `round ${lr.roundId} predicted ${h(lr.predictedSeconds)} h (80 % interval ${h(lr.lowSeconds)}–${h(lr.highSeconds)} h) vs actual ${h(lr.actualSeconds)} h: ` +
        `actual/predicted ${lr.ratio.toFixed(2)}, ${lr.insideInterval ? "inside" : "outside"} the interval, ${lr.withinBand ? "within" : "outside"} the alarm band`,
    );
  }
  out(
    `refit vs truth     on the completed stacks: predicted ${r.fit.predictedHoursBefore.toFixed(2)} h (prior) → ${r.fit.predictedHoursAfter.toFixed(2)} h (posterior) ` +
      `vs simulated ${r.fit.simulatedHours.toFixed(2)} h; RMS log error vs the true law ${r.fit.rmsLogErrorBefore.toFixed(2)} → ${r.fit.rmsLogErrorAfter.toFixed(2)}`,
  );
  out(
    `simulated truth    α=${r.truth.alpha} β=${r.truth.beta} γ=${r.truth.gamma.toFixed(3)} σ=${r.truth.sd} (on the true masks' B, M; the fit sees the predicted ones)`,
  );
  out(
    `dead letters       ${
      Object.entries(r.deadLetters)
        .map(([q, n]) => `${q}: ${n}`)
        .join(", ") || "none"
    }`,
  );
  out(
    `planted name       found ${Object.values(identifierHits).reduce((a, b) => a + b, 0)} time(s) ` +
      `(${Object.entries(identifierHits)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")}) — the study was quarantined, never scored`,
  );
  out(`outputs            ${relative(PROJECT_ROOT, r.outputDir)}/ (outbox/, logs/, summary.json)`);
  out(
    `time               ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${v} s`)
      .join(", ")}${r.modelCached ? " (ensemble from cache)" : ""}`,
  );
}

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping moto server, the model server and Python jobs…\n`);
  killPythonJobs();
  // The child processes are also killed by the exit hooks of moto-server.ts and model-server.ts.
  process.exit(130);
};
process.once("SIGINT", () => stop("SIGINT"));
process.once("SIGTERM", () => stop("SIGTERM"));

main().catch((error) => {
  console.error(`local run failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
