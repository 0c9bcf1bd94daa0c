/**
 * What the local run returns and writes to summary.json: each stage's outcome, the time model judged
 * before and after the refit against the simulated annotators, and the identifier search over everything
 * the run left. The stages are listed in local-pipeline.ts.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PRIOR_TIME_MODEL, predictLabelingSeconds, type TimeModel } from "../../lambdas/domain/labeling-time-model.js";
import type { RefitOutput } from "../../lambdas/domain/refit.js";
import type { SelectOutput } from "../../lambdas/domain/selection-round.js";
import { type CompletionOutcome, simulatedSpeedOf } from "./local-annotation.js";
import type { UploadOutcome } from "./local-intake.js";
import type { LearningOutcome } from "./local-learning.js";
import type { LocalRunOptions } from "./local-run-context.js";
import type { FirstWeek, LatestTimeModel, PoolEntry, SecondWeek } from "./local-weekly-rounds.js";
import type { SentEmail } from "./outbox.js";
import type { ObjectScan } from "./s3-object-scan.js";
import { TRUE_TIME_MODEL, trueLogSeconds } from "./simulated-annotators.js";
import type { WorkflowExecution } from "./workflow-runner.js";

/**
 * How close each time model comes to the simulated annotators on the completed stacks: its log-time
 * prediction from the predicted B̂, M̂ against the truth's mean log-time from the true B, M (RMS, in
 * log units), and its predicted hours against the simulated hours.
 */
export interface FitComparison {
  stacks: number;
  simulatedHours: number;
  predictedHoursBefore: number;
  predictedHoursAfter: number;
  rmsLogErrorBefore: number;
  rmsLogErrorAfter: number;
  /** Euclidean distance of (α, β, γ) to the truth's. */
  coefficientDistanceBefore: number;
  coefficientDistanceAfter: number;
}

export interface Coefficients {
  version: number;
  source: string;
  alpha: number;
  beta: number;
  gamma: number;
  n: number;
}

export interface LocalRunResult {
  uploads: UploadOutcome[];
  /** The pending stacks the first round selected from, with the V and T it used. */
  pool: PoolEntry[];
  executions: WorkflowExecution[];
  selection: {
    roundId: string;
    selected: string[];
    budgetSeconds: number;
    totalPredictedSeconds: number;
    predictedInterval?: { lowSeconds: number; highSeconds: number; level: number };
    /** The model in service the round selected under, and the pending stacks another model scored. */
    modelVersion?: string;
    waitingForRescore?: number;
  };
  emails: SentEmail[];
  completions: CompletionOutcome[];
  /** The learning step between the rounds: the model versions with their validation AP, and the re-score. */
  learning: LearningOutcome;
  /** The second round: what it selected, under which model, and how many stacks still waited. */
  secondRound: RoundSummary;
  coefficientsBefore: Coefficients;
  coefficientsAfter: Coefficients;
  truth: typeof TRUE_TIME_MODEL;
  /** The time model before and after the refit, judged on the completed stacks against the simulation. */
  fit: FitComparison;
  /** What the refit reported for the first round (predicted with its 80 % interval vs actual seconds). */
  lastRound: RefitOutput["lastRound"];
  /** The second week's refit output (exclusions, speed factors, calibration). */
  refit: RefitOutput;
  /** The simulated annotators' true speed factors. */
  simulatedSpeeds: Record<string, number>;
  records: Record<string, unknown>[];
  deadLetters: Record<string, number>;
  /** The planted patient name (for identifier checks; never printed). */
  plantedName: string;
  /** The planted name in every S3 object version at the end of the run (read before moto stops), inside and outside quarantine/. */
  objectScan: ObjectScan;
  outboxDir: string;
  logFile: string;
  outputDir: string;
  createdResources: string[];
  timings: Record<string, number>;
  modelCached: boolean;
}

export interface RoundSummary {
  readonly roundId: string;
  readonly selected: number;
  readonly predictedSeconds: number;
  readonly modelVersion?: string;
  readonly waitingForRescore?: number;
}

function roundSummary(selection: SelectOutput): RoundSummary {
  return {
    roundId: selection.roundId,
    selected: selection.selected.length,
    predictedSeconds: selection.totalPredictedSeconds,
    ...(selection.modelVersion ? { modelVersion: selection.modelVersion, waitingForRescore: selection.waitingForRescore ?? 0 } : {}),
  };
}

/**
 * Occurrences of `needle` (the planted patient name) in the records, the handler and model-server
 * logs, the e-mails SES accepted, every file under the output folder, and every S3 object version outside
 * the studies bucket's quarantine/ (scanned during the run, for the planted name: moto is gone by now).
 */
export async function identifierOccurrences(result: LocalRunResult, needle: string): Promise<Record<string, number>> {
  if (needle !== result.plantedName) throw new Error("identifierOccurrences: S3 objects were scanned for the run's planted name only");
  const count = (text: string) => text.split(needle).length - 1;
  const files = await readdir(result.outputDir, { recursive: true, withFileTypes: true });
  let outputs = 0;
  for (const entry of files) {
    if (entry.isFile()) outputs += count(await readFile(join(entry.parentPath, entry.name), "latin1"));
  }
  return {
    records: count(JSON.stringify(result.records)),
    logs: count(await readFile(result.logFile, "utf8")) + count(await readFile(join(dirname(result.logFile), "model-server.log"), "utf8")),
    // The MIME text may be base64 or quoted-printable: search the decoded parts too.
    emails: count(JSON.stringify(result.emails.map((e) => [e.mime, e.subject, e.text, e.html]))),
    outputs,
    s3: result.objectScan.outsideQuarantine,
  };
}

/** What summary.json holds: the result without the raw records, e-mail bodies and the planted name. */
export function runSummary(r: LocalRunResult) {
  const { records: _records, emails, plantedName: _planted, ...rest } = r;
  return { ...rest, emails: emails.map((e) => ({ to: e.to, subject: e.subject })) };
}

/** Judges two time models on the completed stacks (reporting only: the refit itself is the refit handler's). */
function compareFits(completions: readonly CompletionOutcome[], before: TimeModel, after: TimeModel): FitComparison {
  const truthLog = completions.map((c) => trueLogSeconds({ boundaryLength: c.trueBoundaryLength, components: c.trueComponents }));
  const judge = (model: TimeModel) => {
    const predictions = completions.map((c) =>
      predictLabelingSeconds(model, { boundaryLength: c.boundaryLength, components: c.components }),
    );
    const squared = predictions.reduce((sum, p, i) => sum + (Math.log(p.medianSeconds) - (truthLog[i] as number)) ** 2, 0);
    return {
      hours: predictions.reduce((sum, p) => sum + p.seconds, 0) / 3600,
      rms: Math.sqrt(squared / Math.max(1, predictions.length)),
      distance: Math.hypot(model.alpha - TRUE_TIME_MODEL.alpha, model.beta - TRUE_TIME_MODEL.beta, model.gamma - TRUE_TIME_MODEL.gamma),
    };
  };
  const b = judge(before);
  const a = judge(after);
  return {
    stacks: completions.length,
    simulatedHours: completions.reduce((sum, c) => sum + c.activeSeconds, 0) / 3600,
    predictedHoursBefore: b.hours,
    predictedHoursAfter: a.hours,
    rmsLogErrorBefore: b.rms,
    rmsLogErrorAfter: a.rms,
    coefficientDistanceBefore: b.distance,
    coefficientDistanceAfter: a.distance,
  };
}

function coefficientsOf(latest: LatestTimeModel): Coefficients {
  const model = latest?.model ?? PRIOR_TIME_MODEL;
  return { version: latest?.version ?? 0, source: model.source, alpha: model.alpha, beta: model.beta, gamma: model.gamma, n: model.n };
}

/** What each stage of the run returned, as runLocalPipeline hands it over. */
export interface RunStages {
  readonly options: LocalRunOptions;
  readonly createdResources: string[];
  readonly modelCached: boolean;
  readonly plantedName: string;
  readonly uploads: UploadOutcome[];
  readonly deadLetters: Record<string, number>;
  readonly week1: FirstWeek;
  readonly emails: SentEmail[];
  readonly completions: CompletionOutcome[];
  readonly learning: LearningOutcome;
  readonly week2: SecondWeek;
  readonly records: Record<string, unknown>[];
  readonly objectScan: ObjectScan;
  readonly paths: { readonly outboxDir: string; readonly logFile: string; readonly outputDir: string };
  readonly timings: Record<string, number>;
}

export function localRunResult(s: RunStages): LocalRunResult {
  const { week1, week2, completions, options } = s;
  return {
    uploads: s.uploads,
    pool: week1.pool,
    executions: [week1.execution, week2.execution],
    selection: firstSelection(week1),
    emails: s.emails,
    completions,
    learning: s.learning,
    secondRound: roundSummary(week2.selection),
    coefficientsBefore: coefficientsOf(week1.modelBefore),
    coefficientsAfter: coefficientsOf(week2.modelAfter),
    truth: TRUE_TIME_MODEL,
    fit: compareFits(completions, week1.modelBefore?.model ?? PRIOR_TIME_MODEL, week2.modelAfter?.model ?? PRIOR_TIME_MODEL),
    lastRound: week2.refit.lastRound ?? null,
    refit: week2.refit,
    simulatedSpeeds: Object.fromEntries(options.annotators.map((a) => [a, simulatedSpeedOf(options, a)])),
    records: s.records,
    deadLetters: s.deadLetters,
    plantedName: s.plantedName,
    objectScan: s.objectScan,
    outboxDir: s.paths.outboxDir,
    logFile: s.paths.logFile,
    outputDir: s.paths.outputDir,
    createdResources: s.createdResources,
    timings: s.timings,
    modelCached: s.modelCached,
  };
}

/** What the first round selected, under which model, and how many pending stacks waited for a re-score. */
function firstSelection({ selection }: FirstWeek): LocalRunResult["selection"] {
  return {
    roundId: selection.roundId,
    selected: selection.selected.map((s) => s.stackId),
    budgetSeconds: selection.budgetSeconds,
    totalPredictedSeconds: selection.totalPredictedSeconds,
    ...(selection.predictedInterval ? { predictedInterval: selection.predictedInterval } : {}),
    ...(selection.modelVersion ? { modelVersion: selection.modelVersion, waitingForRescore: selection.waitingForRescore ?? 0 } : {}),
  };
}

/** Writes summary.json into the output folder. */
export async function writeSummary(result: LocalRunResult): Promise<void> {
  await writeFile(join(result.outputDir, "summary.json"), `${JSON.stringify(runSummary(result), null, 2)}\n`);
}
