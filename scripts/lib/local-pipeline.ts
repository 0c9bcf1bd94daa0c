/**
 * The whole loop on one machine (README "What the local run shows"), shared by `npm start`
 * (scripts/local-run.ts) and the end-to-end test (test/e2e/local-pipeline.test.ts). `runLocalPipeline`
 * lists the stages in order; each lives in its own module: local-run-context.ts (the synthesized stack in
 * moto), local-intake.ts (uploads, ingest and scoring), local-weekly-rounds.ts (the weekly workflow),
 * local-annotation.ts (simulated annotators), local-learning.ts (retraining) and local-run-result.ts.
 * Every handler is the real one from lambdas/handlers; these modules only adapt event sources.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { STUDIES_BUCKET } from "../../lambdas/contracts/studies-bucket.js";
import { DEFAULT_VALIDATION_SHARE } from "../../lambdas/domain/labeled-set.js";
import type { RescoreOutput } from "../../lambdas/domain/rescore.js";
import { bindHandler, setLambdaRuntimeEnvironment } from "./lambda-bindings.js";
import { invokeLambda } from "./lambda-runtime.js";
import { annotate } from "./local-annotation.js";
import { ingestAndScore, type PhantomPool, startIntake } from "./local-intake.js";
import { type LearningOutcome, learnFromMasks } from "./local-learning.js";
import {
  createLocalAws,
  identity,
  type LocalAws,
  type LocalRunOptions,
  type RunContext,
  runContext,
  scanRecords,
} from "./local-run-context.js";
import { type LocalRunResult, localRunResult, writeSummary } from "./local-run-result.js";
import { runFirstWeek, runSecondWeek } from "./local-weekly-rounds.js";
import { type ModelServer, type ModelServerOptions, startModelServer } from "./model-server.js";
import { PROJECT_ROOT, startMotoServer } from "./moto-server.js";
import { sentEmails, writeOutbox } from "./outbox.js";
import { ensureEnsemble, generatePhantomPool, killPythonJobs } from "./python-jobs.js";
import { scanObjects } from "./s3-object-scan.js";

export type { CompletionOutcome } from "./local-annotation.js";
export type { UploadOutcome } from "./local-intake.js";
export type { LocalRunOptions } from "./local-run-context.js";
export type { Coefficients, FitComparison, LocalRunResult, RoundSummary } from "./local-run-result.js";
export { identifierOccurrences, runSummary } from "./local-run-result.js";

export const DEFAULT_CACHE_DIR = join(PROJECT_ROOT, ".cache", "ich-al-local");
export const DEFAULT_OUTPUT_DIR = join(PROJECT_ROOT, "local-output");

/** Runs the loop; always stops what it started (moto, the model server, Python jobs, event sources). */
export async function runLocalPipeline(options: LocalRunOptions): Promise<LocalRunResult> {
  if (!Number.isSafeInteger(options.poolSize) || options.poolSize < 4) throw new Error("poolSize must be an integer ≥ 4");
  const { report } = options;
  const timer = new StageTimer();
  const output = await prepareOutputDir(options.outputDir);
  const model = new ModelService();
  const log = new RunLog(output.logDir, model);
  setLambdaRuntimeEnvironment();
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // 1. local AWS from the synthesized template
    report("1/8 starting moto server and creating the stack's resources from the synthesized template…");
    const moto = await startMotoServer({ s3EventVersionIds: true });
    cleanups.push(() => moto.stop());
    const aws = await createLocalAws(options, moto.endpoint);
    for (const line of aws.createdResources) report(`      ${line}`);
    timer.lap("aws");

    // 2. ensemble and model server; 3. phantom pool (generated while training)
    report("2/8 training a small ensemble on phantoms (cached after the first run) and generating the pool…");
    const { ensemble, pool } = await prepareEnsembleAndPool(options);
    report(`      ensemble ${ensemble.cached ? "from cache" : "trained"}: ${ensemble.modelDir}`);
    timer.lap("train+pool");
    cleanups.push(() => model.stop());
    const server = await startScoringModel(model, ensemble.modelDir, options, aws, moto.endpoint);
    const run = runContext(options, aws, cleanups, {
      awsEndpoint: moto.endpoint,
      writeLog: (line) => log.write(line),
      modelServerEndpoint: server.endpoint,
    });

    // 3. uploads; 4. event sources into the real handlers until every upload settled
    const { uploads, deadLetters } = await ingestAndScore(run, pool);
    timer.lap("ingest+score");

    // 5. weekly workflow, week 1; 6. outbox
    const week1 = await runFirstWeek(run);
    timer.lap("week1");
    const firstEmails = await deliverEmails(run, output.outboxDir);
    report(`6/8 ${firstEmails.length} e-mail(s) sent through SES, written to ${output.outboxDir}`);

    // 7. annotators complete their stacks
    const completions = await annotate(run, uploads, pool, week1.records);
    timer.lap("annotate");

    // 8. the loop closes: retrain on the masks, evaluate, promote, re-score the pool; next week's workflow refits
    const learning = await learnBetweenRounds(run, ensemble.modelDir, model);
    timer.lap("learn");
    const week2 = await runSecondWeek(run, week1, completions.length);
    const emails = await deliverEmails(run, output.outboxDir);
    timer.lap("annotate+week2");

    const { records, objectScan } = await readWhatRemains(run, pool.plantedName);
    await log.flush();
    const result = localRunResult({
      options,
      createdResources: aws.createdResources,
      modelCached: ensemble.cached,
      plantedName: pool.plantedName,
      uploads,
      deadLetters,
      week1,
      emails,
      completions,
      learning,
      week2,
      records,
      objectScan,
      paths: output,
      timings: timer.finish(),
    });
    await writeSummary(result);
    return result;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    killPythonJobs();
    await log.flush().catch(() => undefined);
  }
}

/** Seconds each stage took (one decimal), and the whole run's as `total`. */
class StageTimer {
  private readonly started = performance.now();
  private lapStarted = this.started;
  private readonly timings: Record<string, number> = {};

  lap(name: string): void {
    this.timings[name] = Math.round((performance.now() - this.lapStarted) / 100) / 10;
    this.lapStarted = performance.now();
  }

  finish(): Record<string, number> {
    this.timings.total = Math.round((performance.now() - this.started) / 100) / 10;
    return this.timings;
  }
}

/** The output folder emptied, with its logs/ and the outbox's path. */
async function prepareOutputDir(dir: string) {
  const outputDir = resolve(dir);
  await rm(outputDir, { recursive: true, force: true });
  const logDir = join(outputDir, "logs");
  await mkdir(logDir, { recursive: true });
  return { outputDir, logDir, outboxDir: join(outputDir, "outbox"), logFile: join(logDir, "lambdas.jsonl") };
}

/** The handlers' log lines, written to logs/lambdas.jsonl with the model server's log beside them. */
class RunLog {
  private readonly lines: string[] = [];

  constructor(
    private readonly logDir: string,
    private readonly model: ModelService,
  ) {}

  write(line: string): void {
    this.lines.push(line);
  }

  async flush(): Promise<void> {
    await writeFile(join(this.logDir, "lambdas.jsonl"), this.lines.map((l) => `${l}\n`).join(""));
    const modelLog = this.model.log();
    if (modelLog !== undefined) await writeFile(join(this.logDir, "model-server.log"), modelLog);
  }
}

/** The model server in service: started on the ensemble, restarted on a promoted model by the learning step. */
class ModelService {
  private server: ModelServer | undefined;
  private settings: Omit<ModelServerOptions, "modelDir"> | undefined;

  async start(modelDir: string, settings: Omit<ModelServerOptions, "modelDir">): Promise<ModelServer> {
    this.settings = settings;
    this.server = await startModelServer({ ...settings, modelDir });
    return this.server;
  }

  async restart(modelDir: string): Promise<ModelServer> {
    if (!this.settings) throw new Error("the model server was never started");
    await this.server?.stop();
    this.server = undefined;
    return this.start(modelDir, this.settings);
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  /** The running (or last stopped) server's log; undefined before it started. */
  log(): string | undefined {
    return this.server?.log();
  }
}

/** The model server on the ensemble, as the stack's asynchronous endpoint configures it; reported. */
async function startScoringModel(model: ModelService, modelDir: string, options: LocalRunOptions, aws: LocalAws, awsEndpoint: string) {
  const server = await model.start(modelDir, modelServerSettings(options, aws, awsEndpoint));
  const endpoint = aws.roles.scoringEndpoint;
  options.report(
    `      model server on ${server.endpoint} (async output ${endpoint.asyncOutput}, topics: success + error, ${endpoint.environment.ICHAL_CONCURRENT_REQUESTS ?? "default"} requests at a time)`,
  );
  return server;
}

/** The model container as the stack's asynchronous endpoint configures it, on the CPU. */
function modelServerSettings(options: LocalRunOptions, aws: LocalAws, awsEndpoint: string): Omit<ModelServerOptions, "modelDir"> {
  const endpoint = aws.roles.scoringEndpoint;
  return {
    s3Endpoint: awsEndpoint,
    asyncOutput: endpoint.asyncOutput,
    successTopic: endpoint.successTopicArn,
    errorTopic: endpoint.errorTopicArn,
    environment: endpoint.environment,
    device: "cpu",
    cpuThreads: options.threads ?? 1,
    timeoutMs: 120_000,
  };
}

async function prepareEnsembleAndPool(options: LocalRunOptions) {
  const plantedName = `Zzplanted^Patient^Seed${options.seed}`;
  const plantIndex = 1;
  const dir = join(options.cacheDir, "pool");
  const [ensemble, phantoms] = await Promise.all([
    ensureEnsemble(options.cacheDir, options.ensemble, (f) => options.trainingProgress?.(f), options.threads ?? 1),
    generatePhantomPool({
      outDir: dir,
      count: options.poolSize,
      seed: options.seed,
      sizes: options.phantomSizes,
      gridSize: options.ensemble.gridSize,
      plantName: plantedName,
      plantIndex,
    }),
  ]);
  const pool: PhantomPool = { phantoms, dir, plantedName, plantIndex, corruptIndex: 0 };
  return { ensemble, pool };
}

/** Every record, and the planted name searched for in every S3 object version (before moto stops). */
async function readWhatRemains(run: RunContext, plantedName: string) {
  const records = await scanRecords(run.dynamo, run.roles.tableName);
  const objectScan = await scanObjects(run.s3, plantedName, { bucket: run.roles.studiesBucket, prefix: STUDIES_BUCKET.quarantinePrefix });
  return { records, objectScan };
}

/** The e-mails SES accepted so far, written to the outbox. */
async function deliverEmails(run: RunContext, outboxDir: string) {
  const emails = await sentEmails(run.awsEndpoint);
  await writeOutbox(outboxDir, emails);
  return emails;
}

/**
 * The learning step with the event sources polling again: a promotion's re-scores come back through
 * SNS → score queue → record-score.
 */
async function learnBetweenRounds(run: RunContext, currentModelDir: string, model: ModelService): Promise<LearningOutcome> {
  const rescoreIntake = await startIntake(run);
  const learning = await learn(run, run.options, currentModelDir, (modelDir) => model.restart(modelDir));
  for (const source of rescoreIntake.sources) await source.stop();
  if (rescoreIntake.invocationErrors.length > 0) throw new Error(`re-scoring: ${rescoreIntake.invocationErrors.slice(-3).join(" | ")}`);
  return learning;
}

/** Fine-tuning steps per member when the loop retrains locally (warm start; the first model took 500). */
const LOCAL_FINE_TUNING_STEPS = 120;

/** The learning step (scripts/lib/local-learning.ts) in a temporary /opt/ml-like folder, removed afterwards. */
async function learn(
  run: RunContext,
  options: LocalRunOptions,
  currentModelDir: string,
  restartModelServer: (modelDir: string) => Promise<ModelServer>,
): Promise<LearningOutcome> {
  const workDir = await mkdtemp(join(tmpdir(), "ich-al-learning-"));
  try {
    run.report("8/8 the loop closes: retraining on the accepted masks (warm start), validation, promotion, re-scoring…");
    return await learnFromMasks({
      s3: run.s3,
      records: run.records,
      items: await scanRecords(run.dynamo, run.roles.tableName),
      workDir,
      currentModelDir,
      ensemble: options.ensemble,
      iterations: LOCAL_FINE_TUNING_STEPS,
      validationShare: DEFAULT_VALIDATION_SHARE,
      tolerance: PROMOTION_TOLERANCE,
      threads: options.threads ?? 1,
      report: run.report,
      restartModelServer,
      rescore: async (modelServerEndpoint) => {
        const fn = run.roles.rescore;
        const bound = await bindHandler("rescore", fn.environment, { ...run.bindingOptions, modelServerEndpoint });
        return (await invokeLambda(bound, {}, identity(fn))) as RescoreOutput;
      },
      awaitRescored: () => awaitRescored(run),
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Default tolerance of the promotion rule (pixel and stack AP) in the local run. */
const PROMOTION_TOLERANCE = 0.05;

/** Waits until no pending stack is scored by another model than the one in service (5 minutes at most). */
async function awaitRescored(run: RunContext): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const inService = (await run.records.getModelInService())?.modelVersion;
    const waiting = (await run.records.listByStatus("pending")).filter((r) => r.kind !== "study" && r.scores?.modelVersion !== inService);
    if (waiting.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${waiting.length} pending stacks were not re-scored within 5 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
