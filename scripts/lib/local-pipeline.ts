/**
 * The whole loop on one machine (README "What the local run shows"), shared by `npm start`
 * (scripts/local-run.ts) and the end-to-end test (test/e2e/local-pipeline.test.ts):
 *
 *  1. moto server on 127.0.0.1; the synthesized InstitutionStack's buckets, queues (+ DLQs), topics,
 *     subscriptions, table (+ GSI), bucket notification and SES identity created in it (local-wiring.ts);
 *  2. a small ensemble trained on phantoms unless cached, served by the model container on CPU
 *     (SageMaker paths; asynchronous results to the studies bucket, notifications to the endpoint's
 *     success / error topics);
 *  3. a pool of phantom DICOM studies (mixed sizes, some negative, one corrupt upload, one study that
 *     still carries a patient name) uploaded to the bucket's upload prefix;
 *  4. the ingest queue drained into the ingest handler and the score queue into record-score, as
 *     Lambda's SQS event source mapping does (sqs-event-source.ts);
 *  5. the weekly workflow's synthesized definition executed with its Tasks bound to the handlers;
 *  6. the e-mails SES accepted written to an outbox (.eml, .html);
 *  7. annotators simulated through the completion API handler (their worklist, then one completion
 *     per stack with a time drawn from the true mask, simulated-annotators.ts), and the next week's
 *     workflow run, whose first state refits the time model.
 * Every handler is the real one from lambdas/handlers; this module only adapts event sources.
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { AnnotatorDirectorySchema, COMPLETION_API_PATHS, MaskUploadResponseSchema } from "../../lambdas/contracts/completion-api.js";
import { STUDIES_BUCKET } from "../../lambdas/contracts/studies-bucket.js";
import { WEEKLY_WORKFLOW_RESULT_PATHS, WEEKLY_WORKFLOW_STATES } from "../../lambdas/contracts/weekly-workflow.js";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import { roundIdOf } from "../../lambdas/domain/iso-week.js";
import { DEFAULT_VALIDATION_SHARE } from "../../lambdas/domain/labeled-set.js";
import { PRIOR_TIME_MODEL, predictLabelingSeconds, type TimeModel } from "../../lambdas/domain/labeling-time-model.js";
import type { RefitOutput } from "../../lambdas/domain/refit.js";
import type { RescoreOutput } from "../../lambdas/domain/rescore.js";
import type { SelectOutput } from "../../lambdas/domain/selection-round.js";
import { type BindingOptions, bindHandler, type HandlerKind, setLambdaRuntimeEnvironment } from "./lambda-bindings.js";
import { type FunctionIdentity, invokeLambda } from "./lambda-runtime.js";
import { type LearningOutcome, learnFromMasks } from "./local-learning.js";
import { createLocalResources, deriveWiring, type LocalFunction, type LocalWiring } from "./local-wiring.js";
import { type ModelServer, startModelServer } from "./model-server.js";
import { LOCAL_AWS, type MotoServer, PROJECT_ROOT, startMotoServer } from "./moto-server.js";
import { type SentEmail, sentEmails, writeOutbox } from "./outbox.js";
import { type EnsembleSettings, ensureEnsemble, generatePhantomPool, killPythonJobs, type PhantomEntry } from "./python-jobs.js";
import { type ObjectScan, scanObjects, versionsOfKey } from "./s3-object-scan.js";
import { SIMULATED_SPEEDS, simulatedActiveSeconds, TRUE_TIME_MODEL, trueLogSeconds } from "./simulated-annotators.js";
import { SqsEventSource } from "./sqs-event-source.js";
import { LocalTemplate, synthesizeInstitutionTemplate } from "./synthesized-stack.js";
import { runWorkflow, type TaskBinding, taskStates, type WorkflowExecution } from "./workflow-runner.js";

export interface LocalRunOptions {
  /** Phantom studies uploaded (including the corrupt one and the one with a patient name); ≥ 4. */
  poolSize: number;
  /** Q: the weekly budget in hours (the institution config's weeklyBudgetHours). */
  budgetHours: number;
  seed: number;
  /** Where the outbox, logs and summary go (emptied first). */
  outputDir: string;
  /** Cache of trained ensembles and phantom pools. */
  cacheDir: string;
  ensemble: EnsembleSettings;
  /** Frame sizes of the pool's phantoms (cycled). */
  phantomSizes: number[];
  annotators: string[];
  /** Progress lines for a person watching. */
  report: (line: string) => void;
  /** Training progress (fraction 0–1). */
  trainingProgress?: (fraction: number) => void;
  /** CPU threads of the model server and training. */
  threads?: number;
  /** When the first weekly round runs (ISO); the second runs 7 days later. Default: now. */
  firstRoundAt?: string;
}

export interface UploadOutcome {
  phantomIndex: number;
  key: string;
  studyId: string;
  /** `repeat`: the first good study's bytes uploaded again under another key (recorded once: its stack is a duplicate). */
  kind: "study" | "corrupt" | "identifier" | "repeat";
  status: string;
  rejectionCode: string | undefined;
  rejectionReason: string | undefined;
  stackIds: string[];
  deadLettered: boolean;
  /** Where a refused study was moved (the record's `rejection.quarantineKey`). */
  quarantineKey: string | undefined;
  /** Versions and delete markers of the upload's key left in the bucket once every upload settled. */
  versionsLeft: number;
  /** Versions under `quarantineKey` (0 when the study was not moved). */
  quarantinedVersions: number;
  /** This study's stacks recorded `duplicate`, with the stack recorded first with the same voxels. */
  duplicates: { stackId: string; duplicateOf: string }[];
}

export interface CompletionOutcome {
  stackId: string;
  annotator: string;
  activeSeconds: number;
  predictedSeconds: number;
  /** B̂, M̂: what the model measured on its heatmap (the features the refit regresses on). */
  boundaryLength: number;
  components: number;
  /** B, M of the phantom's exact mask (what the simulated time was drawn from). */
  trueBoundaryLength: number;
  trueComponents: number;
  /** Voxels of the phantom's exact mask (what the uploaded label map holds); 0 for a negative phantom. */
  trueMaskVoxels: number;
  /** Finished with "no hemorrhage" (a negative phantom) rather than a mask upload. */
  noHemorrhage: boolean;
  statusCode: number;
}

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
  pool: { stackId: string; value: number; seconds: number }[];
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

/** Runs the loop; always stops what it started (moto, the model server, Python jobs, event sources). */
export async function runLocalPipeline(options: LocalRunOptions): Promise<LocalRunResult> {
  if (!Number.isSafeInteger(options.poolSize) || options.poolSize < 4) throw new Error("poolSize must be an integer ≥ 4");
  const started = performance.now();
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    timings[name] = Math.round((performance.now() - t) / 100) / 10;
    t = performance.now();
  };
  const { report } = options;
  const outputDir = resolve(options.outputDir);
  await rm(outputDir, { recursive: true, force: true });
  const logDir = join(outputDir, "logs");
  const outboxDir = join(outputDir, "outbox");
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, "lambdas.jsonl");
  const logLines: string[] = [];
  const flushLogs = async () => {
    await writeFile(logFile, logLines.map((l) => `${l}\n`).join(""));
    if (model) await writeFile(join(logDir, "model-server.log"), model.log());
  };
  setLambdaRuntimeEnvironment();

  const cleanups: (() => Promise<void>)[] = [];
  let moto: MotoServer | undefined;
  let model: ModelServer | undefined;
  try {
    // 1. local AWS from the synthesized template ----------------------------------------------
    report("1/8 starting moto server and creating the stack's resources from the synthesized template…");
    moto = await startMotoServer({ s3EventVersionIds: true });
    const aws = await createLocalAws(options, moto.endpoint);
    for (const line of aws.createdResources) report(`      ${line}`);
    lap("aws");

    // 2. ensemble and model server; 3. phantom pool (generated while training) ------------------
    report("2/8 training a small ensemble on phantoms (cached after the first run) and generating the pool…");
    const { ensemble, pool } = await prepareEnsembleAndPool(options);
    report(`      ensemble ${ensemble.cached ? "from cache" : "trained"}: ${ensemble.modelDir}`);
    lap("train+pool");
    const endpoint = aws.roles.scoringEndpoint;
    const modelServerOptions = {
      modelDir: ensemble.modelDir,
      s3Endpoint: moto.endpoint,
      asyncOutput: endpoint.asyncOutput,
      successTopic: endpoint.successTopicArn,
      errorTopic: endpoint.errorTopicArn,
      environment: endpoint.environment,
      device: "cpu",
      cpuThreads: options.threads ?? 1,
      timeoutMs: 120_000,
    };
    model = await startModelServer(modelServerOptions);
    report(
      `      model server on ${model.endpoint} (async output ${endpoint.asyncOutput}, topics: success + error, ${endpoint.environment.ICHAL_CONCURRENT_REQUESTS ?? "default"} requests at a time)`,
    );
    const run = runContext(options, aws, cleanups, {
      awsEndpoint: moto.endpoint,
      writeLog: (line) => logLines.push(line),
      modelServerEndpoint: model.endpoint,
    });

    // 3. uploads; 4. event sources into the real handlers until every upload settled -------------
    const intake = await startIntake(run);
    const uploads = await uploadPool(run, pool);
    const deadLetters = await awaitSettled(run, uploads, intake);
    await readUploadOutcomes(run, uploads);
    lap("ingest+score");

    // 5. weekly workflow, week 1; 6. outbox -----------------------------------------------------
    const week1 = await runFirstWeek(run);
    lap("week1");
    let emails = await sentEmails(run.awsEndpoint);
    await writeOutbox(outboxDir, emails);
    report(`6/8 ${emails.length} e-mail(s) sent through SES, written to ${outboxDir}`);

    // 7. annotators complete their stacks; next week's workflow refits -------------------------
    const completions = await annotate(run, uploads, pool, week1.records);
    lap("annotate");

    // 8. the loop closes: retrain on the masks, evaluate, promote, re-score the pool ------------
    const serverOptions = modelServerOptions;
    // The re-scores' answers come back through SNS → score queue → record-score: poll again meanwhile.
    const rescoreIntake = await startIntake(run);
    const learning = await learn(run, options, ensemble.modelDir, async (modelDir) => {
      await model?.stop();
      model = undefined;
      model = await startModelServer({ ...serverOptions, modelDir });
      return model;
    });
    for (const source of rescoreIntake.sources) await source.stop();
    if (rescoreIntake.invocationErrors.length > 0) throw new Error(`re-scoring: ${rescoreIntake.invocationErrors.slice(-3).join(" | ")}`);
    lap("learn");
    const week2 = await runSecondWeek(run, week1, completions);
    emails = await sentEmails(run.awsEndpoint);
    await writeOutbox(outboxDir, emails);
    lap("annotate+week2");

    const allRecords = await scanRecords(run.dynamo, run.roles.tableName);
    const objectScan = await scanObjects(run.s3, pool.plantedName, {
      bucket: run.roles.studiesBucket,
      prefix: STUDIES_BUCKET.quarantinePrefix,
    });
    await flushLogs();
    timings.total = Math.round((performance.now() - started) / 100) / 10;
    const { selection } = week1;
    const result: LocalRunResult = {
      uploads,
      pool: week1.pool,
      executions: [week1.execution, week2.execution],
      selection: {
        roundId: selection.roundId,
        selected: selection.selected.map((s) => s.stackId),
        budgetSeconds: selection.budgetSeconds,
        totalPredictedSeconds: selection.totalPredictedSeconds,
        ...(selection.predictedInterval ? { predictedInterval: selection.predictedInterval } : {}),
        ...(selection.modelVersion ? { modelVersion: selection.modelVersion, waitingForRescore: selection.waitingForRescore ?? 0 } : {}),
      },
      emails,
      completions,
      learning,
      secondRound: roundSummary(resultAt(week2.execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.select) as SelectOutput),
      coefficientsBefore: coefficientsOf(week1.modelBefore),
      coefficientsAfter: coefficientsOf(week2.modelAfter),
      truth: TRUE_TIME_MODEL,
      fit: compareFits(completions, week1.modelBefore?.model ?? PRIOR_TIME_MODEL, week2.modelAfter?.model ?? PRIOR_TIME_MODEL),
      lastRound: week2.refit.lastRound ?? null,
      refit: week2.refit,
      simulatedSpeeds: Object.fromEntries(options.annotators.map((a) => [a, simulatedSpeedOf(options, a)])),
      records: allRecords,
      deadLetters,
      plantedName: pool.plantedName,
      objectScan,
      outboxDir,
      logFile,
      outputDir,
      createdResources: aws.createdResources,
      timings,
      modelCached: ensemble.cached,
    };
    await writeFile(join(outputDir, "summary.json"), `${JSON.stringify(runSummary(result), null, 2)}\n`);
    return result;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await model?.stop().catch(() => undefined);
    await moto?.stop().catch(() => undefined);
    killPythonJobs();
    await flushLogs().catch(() => undefined);
  }
}

/** The stack synthesized for the local institution, and what moto holds of it. */
interface LocalAws {
  readonly wiring: LocalWiring;
  readonly roles: ReturnType<typeof identifyRoles>;
  /** Rounds are ISO weeks in the schedule's time zone, as the Lambdas (SCHEDULE_TIMEZONE) name them. */
  readonly scheduleTimeZone: string;
  readonly createdResources: string[];
}

async function createLocalAws(options: LocalRunOptions, awsEndpoint: string): Promise<LocalAws> {
  const { template, config } = synthesizeInstitutionTemplate({
    institution: "local",
    annotatorEmails: options.annotators,
    senderAddress: "ich-al@example.org",
    weeklyBudgetHours: options.budgetHours,
    // Ingest sends K with every scoring request: the local ensemble's K (its manifest's top_k), not the paper's 200.
    topK: options.ensemble.topK,
    scoring: { modelArtifact: "s3://ich-al-local-models/ensemble/model.tar.gz" },
  });
  const wiring = deriveWiring(new LocalTemplate(template, awsEndpoint));
  const createdResources = await createLocalResources(wiring, awsEndpoint);
  return { wiring, roles: identifyRoles(wiring), scheduleTimeZone: config.schedule.timezone, createdResources };
}

/** The phantom pool with its two bad studies: one cut off halfway, one carrying a patient name. */
interface PhantomPool {
  readonly phantoms: PhantomEntry[];
  readonly dir: string;
  /** A name no phantom, header or log could carry by chance; searched for in everything the run leaves. */
  readonly plantedName: string;
  readonly plantIndex: number;
  readonly corruptIndex: number;
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

/** What the stages share: the local AWS, its clients (closed by the run's cleanups) and the handlers' bindings. */
interface RunContext extends LocalAws {
  readonly options: LocalRunOptions;
  /** What the run stops in its `finally`, last registered first. */
  readonly cleanups: (() => Promise<void>)[];
  readonly report: (line: string) => void;
  readonly awsEndpoint: string;
  readonly bindingOptions: BindingOptions;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly dynamo: DynamoDBClient;
  readonly records: DynamoRecordStore;
}

function runContext(
  options: LocalRunOptions,
  aws: LocalAws,
  cleanups: (() => Promise<void>)[],
  bindingOptions: BindingOptions,
): RunContext {
  const endpoint = bindingOptions.awsEndpoint;
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint });
  const s3 = new S3Client({ ...LOCAL_AWS, endpoint, forcePathStyle: true });
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  cleanups.push(
    async () => sqs.destroy(),
    async () => s3.destroy(),
    async () => dynamo.destroy(),
  );
  return {
    ...aws,
    options,
    cleanups,
    report: options.report,
    awsEndpoint: endpoint,
    bindingOptions,
    sqs,
    s3,
    dynamo,
    records: new DynamoRecordStore(dynamo, aws.roles.tableName),
  };
}

/** The ingest and score queues drained into the real handlers, as Lambda's event source mappings do. */
interface Intake {
  readonly sources: SqsEventSource[];
  readonly invocationErrors: string[];
}

async function startIntake(run: RunContext): Promise<Intake> {
  const sources: SqsEventSource[] = [];
  const invocationErrors: string[] = [];
  for (const [kind, role] of [
    ["ingest", run.roles.ingest],
    ["recordScore", run.roles.recordScore],
  ] as const) {
    const handler = await bindHandler(kind, role.fn.environment, run.bindingOptions);
    const queue = run.wiring.queues.find((q) => q.arn === role.mapping.queueArn);
    if (!queue) throw new Error(`event source ${role.mapping.logicalId}: its queue is not in the template`);
    const source = new SqsEventSource({
      sqs: run.sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      batchSize: role.mapping.batchSize,
      maximumBatchingWindowSeconds: role.mapping.maximumBatchingWindowSeconds,
      reportBatchItemFailures: role.mapping.reportBatchItemFailures,
      concurrency: Math.min(2, role.mapping.maximumConcurrency ?? 2),
      fn: identity(role.fn),
      handler,
      retryDelaySeconds: 2,
      onInvocationError: (error) => invocationErrors.push(`${kind}: ${(error as Error).name}: ${(error as Error).message}`),
    });
    source.start();
    sources.push(source);
    // Stopped on every path: a run that fails before the uploads settle must not leave pollers behind.
    run.cleanups.push(() => source.stop());
  }
  return { sources, invocationErrors };
}

/** Uploads every phantom (the corrupt one cut off halfway), then the first good one again under another key. */
async function uploadPool(run: RunContext, pool: PhantomPool): Promise<UploadOutcome[]> {
  const { roles, report } = run;
  const bucket = roles.studiesBucket;
  report(
    `3/8 uploading ${pool.phantoms.length} phantom studies to s3://${bucket}/${roles.uploadsPrefix} ` +
      `(${pool.phantoms.filter((p) => p.negative).length} negative, 1 corrupt, 1 with a patient name, 1 uploaded twice)…`,
  );
  const uploads: UploadOutcome[] = [];
  const batch = `run-${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14)}`;
  const repeated = pool.phantoms.find((p) => p.index !== pool.corruptIndex && p.index !== pool.plantIndex);
  if (!repeated) throw new Error("the pool has no good study to upload twice");
  for (const [phantom, again] of [...pool.phantoms.map((p) => [p, false] as const), [repeated, true] as const]) {
    const file = phantom.files.dicom;
    if (!file) throw new Error(`phantom ${phantom.index} has no DICOM file`);
    let body: Uint8Array = await readFile(join(pool.dir, file));
    const kind = again
      ? "repeat"
      : phantom.index === pool.corruptIndex
        ? "corrupt"
        : phantom.index === pool.plantIndex
          ? "identifier"
          : "study";
    if (kind === "corrupt") body = body.subarray(0, Math.floor(body.length / 2)); // a transfer cut off halfway
    const key = `${roles.uploadsPrefix}${batch}/study-${String(phantom.index).padStart(3, "0")}${again ? "-again" : ""}.zip`;
    const put = await run.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/zip" }));
    if (!put.VersionId) throw new Error("the studies bucket returned no versionId: it must be versioned");
    uploads.push({
      phantomIndex: phantom.index,
      key,
      studyId: studyIdOf({ bucket, key, versionId: put.VersionId }),
      kind,
      status: "uploaded",
      rejectionCode: undefined,
      rejectionReason: undefined,
      stackIds: [],
      deadLettered: false,
      quarantineKey: undefined,
      versionsLeft: 1,
      quarantinedVersions: 0,
      duplicates: [],
    });
  }
  return uploads;
}

const SETTLED_STATUSES = new Set(["scored", "rejected", "failed"]);

/** Waits until every upload is settled (or dead-lettered), reporting progress; stops the event sources; the dead letters by queue. */
async function awaitSettled(run: RunContext, uploads: UploadOutcome[], intake: Intake): Promise<Record<string, number>> {
  run.report("4/8 ingest queue → ingest λ → model container (async) → SNS → score queue → record-score λ…");
  const deadLetterQueues = run.wiring.queues.filter((q) => run.wiring.queues.some((o) => o.redrive?.deadLetterTargetArn === q.arn));
  const deadline = Date.now() + (120 + 15 * uploads.length) * 1000;
  let lastLine = "";
  for (;;) {
    for (const upload of uploads) {
      if (SETTLED_STATUSES.has(upload.status)) continue;
      const record = await run.records.getStack(upload.studyId);
      if (record) upload.status = record.status;
    }
    const settled = uploads.filter((u) => SETTLED_STATUSES.has(u.status)).length;
    const dead = await countMessages(
      run.sqs,
      deadLetterQueues.map((q) => q.url),
    );
    const line = `      settled ${settled}/${uploads.length} (scored ${uploads.filter((u) => u.status === "scored").length}, dead letters ${dead})`;
    if (line !== lastLine) run.report(line);
    lastLine = line;
    if (settled === uploads.length) break;
    if (dead > 0 && settled + dead >= uploads.length && !intake.sources.some((s) => s.busy)) break;
    if (Date.now() > deadline) {
      throw new Error(
        `uploads not settled in time: ${uploads.filter((u) => !SETTLED_STATUSES.has(u.status)).length} left; ` +
          `invocation errors: ${intake.invocationErrors.slice(-3).join(" | ") || "none"}`,
      );
    }
    await sleep(1000);
  }
  for (const source of intake.sources) await source.stop();
  const deadLetters: Record<string, number> = {};
  for (const q of deadLetterQueues) deadLetters[q.name] = await countMessages(run.sqs, [q.url]);
  return deadLetters;
}

/** Fills in each upload's record: status, rejection and quarantine, its stacks and duplicates, versions left. */
async function readUploadOutcomes(run: RunContext, uploads: UploadOutcome[]): Promise<void> {
  const bucket = run.roles.studiesBucket;
  for (const upload of uploads) {
    const record = await run.records.getStack(upload.studyId);
    upload.status = record?.status ?? "missing";
    upload.rejectionCode = record?.rejection?.code;
    upload.rejectionReason = record?.rejection?.reason;
    upload.stackIds = record?.stackIds ?? [];
    upload.deadLettered = !record || !SETTLED_STATUSES.has(record.status);
    upload.quarantineKey = record?.rejection?.quarantineKey;
    upload.versionsLeft = (await versionsOfKey(run.s3, bucket, upload.key)).length;
    upload.quarantinedVersions = upload.quarantineKey ? (await versionsOfKey(run.s3, bucket, upload.quarantineKey)).length : 0;
    for (const stackId of upload.stackIds) {
      const stack = await run.records.getStack(stackId);
      if (stack?.status === "duplicate" && stack.duplicateOf) upload.duplicates.push({ stackId, duplicateOf: stack.duplicateOf });
    }
  }
}

interface FirstWeek {
  readonly definition: Record<string, unknown>;
  readonly stateMachineArn: string;
  readonly bindings: Record<string, TaskBinding>;
  readonly timeModels: DynamoTimeModelStore;
  readonly modelBefore: Awaited<ReturnType<DynamoTimeModelStore["latest"]>>;
  readonly now: string;
  readonly execution: WorkflowExecution;
  readonly selection: {
    roundId: string;
    selected: { stackId: string }[];
    budgetSeconds: number;
    totalPredictedSeconds: number;
    predictedInterval?: { lowSeconds: number; highSeconds: number; level: number };
    modelVersion?: string;
    waitingForRescore?: number;
  };
  /** The pending stacks the round selected from, with the V and T it used. */
  readonly pool: LocalRunResult["pool"];
  /** Every record right after the round. */
  readonly records: Record<string, unknown>[];
}

/** The synthesized state machine run locally for the first week: refit (the prior), select, notify. */
async function runFirstWeek(run: RunContext): Promise<FirstWeek> {
  const machine = run.wiring.stateMachine;
  if (!machine) throw new Error("the synthesized stack has no AWS::StepFunctions::StateMachine (weekly workflow) yet");
  const bindings = await workflowBindings(machine.definition, run.wiring, run.bindingOptions);
  const timeModels = new DynamoTimeModelStore(run.dynamo, run.roles.tableName);
  const modelBefore = await timeModels.latest();
  const now = new Date(run.options.firstRoundAt ?? Date.now()).toISOString();
  const round = roundIdOf(now, run.scheduleTimeZone);
  run.report(`5/8 weekly workflow ${round}: the synthesized state machine run locally (Tasks ${Object.keys(bindings).join(", ")})…`);
  const execution = await runWorkflow(machine.definition, bindings, { name: round, now, stateMachineArn: machine.arn });
  if (execution.status !== "SUCCEEDED") throw new Error(`workflow ${round} failed: ${execution.error}`);
  const selection = resultAt(execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.select) as FirstWeek["selection"];
  const records = await scanRecords(run.dynamo, run.roles.tableName);
  const pool = records
    .filter((r) => isStack(r) && (r.status === "pending" || (r.status === "selected" && r.selectedBy === round)))
    .map((r) => ({
      stackId: String(r.stackId),
      value: (r.scores as { stackUncertainty: number }).stackUncertainty,
      seconds: (r.prediction as { predictedSeconds: number }).predictedSeconds,
    }));
  return {
    definition: machine.definition,
    stateMachineArn: machine.arn,
    bindings,
    timeModels,
    modelBefore,
    now,
    execution,
    selection,
    pool,
    records,
  };
}

function simulatedSpeedOf(options: LocalRunOptions, annotator: string): number {
  return SIMULATED_SPEEDS[options.annotators.indexOf(annotator) % SIMULATED_SPEEDS.length] ?? 1;
}

/**
 * The simulated annotators read their worklists and complete every selected stack through the real completion API,
 * each with an active time drawn from the true time law on the phantom's exact B and M and their own speed.
 */
async function annotate(
  run: RunContext,
  uploads: readonly UploadOutcome[],
  pool: { readonly phantoms: readonly PhantomEntry[]; readonly dir: string },
  recordsAfterSelection: readonly Record<string, unknown>[],
): Promise<CompletionOutcome[]> {
  const { phantoms, dir } = pool;
  const { options } = run;
  const complete = run.roles.complete;
  const completeHandler = await bindHandler("complete", complete.environment, run.bindingOptions);
  // The subs the template gives the annotators (locally, placeholders for what Cognito assigns at creation).
  const directory = AnnotatorDirectorySchema.parse(JSON.parse(complete.environment.ANNOTATOR_DIRECTORY ?? "[]"));
  const subOf = (annotator: string) => {
    const entry = directory.find((a) => a.email.toLowerCase() === annotator.toLowerCase());
    if (!entry) throw new Error(`annotator ${annotator} is not in the complete function's ANNOTATOR_DIRECTORY`);
    return entry.sub;
  };
  const api = (annotator: string, method: "GET" | "POST", resource: string, body?: unknown, pathParameters?: Record<string, string>) =>
    invokeLambda(
      completeHandler,
      apiGatewayEvent(annotator, subOf(annotator), method, resource, body, pathParameters ?? null),
      identity(complete),
    ) as Promise<{ statusCode: number; body: string }>;
  const phantomByStudy = new Map(uploads.map((u) => [u.studyId, phantoms[u.phantomIndex] as PhantomEntry]));
  const recordById = new Map(recordsAfterSelection.map((r) => [String(r.stackId), r]));
  const work: { annotator: string; stackId: string }[] = [];
  for (const annotator of options.annotators) {
    const response = await api(annotator, "GET", COMPLETION_API_PATHS.worklist);
    if (response.statusCode !== 200) throw new Error(`GET /worklist for an annotator answered ${response.statusCode}: ${response.body}`);
    const worklist = JSON.parse(response.body) as { stacks: { stackId: string; status: string }[] };
    for (const s of worklist.stacks) if (s.status === "selected") work.push({ annotator, stackId: s.stackId });
  }
  // Study ids hash the upload's S3 versionId, which the emulator draws at random: draw the simulated
  // times in phantom order, so the same seed gives every stack the same time on every run.
  const phantomIndexOf = (stackId: string) => uploads.find((u) => u.studyId === studyOfStack(stackId))?.phantomIndex ?? -1;
  work.sort((a, b) => phantomIndexOf(a.stackId) - phantomIndexOf(b.stackId) || a.stackId.localeCompare(b.stackId));
  const features = work.map(({ stackId }) => {
    const phantom = phantomByStudy.get(studyOfStack(stackId));
    if (!phantom) throw new Error(`stack ${stackId} does not come from an uploaded phantom`);
    return { boundaryLength: phantom.true_boundary_length, components: phantom.true_components };
  });
  const seconds = simulatedActiveSeconds(
    features,
    options.seed * 7919 + 17,
    work.map((w) => simulatedSpeedOf(options, w.annotator)),
  );
  run.report(
    `7/8 ${work.length} selected stacks completed by ${options.annotators.length} simulated annotators through the completion API…`,
  );
  const completions: CompletionOutcome[] = [];
  for (const [i, item] of work.entries()) {
    const activeSeconds = seconds[i] as number;
    const phantom = phantomByStudy.get(studyOfStack(item.stackId)) as PhantomEntry;
    // A negative phantom finishes with "no hemorrhage"; the others upload their exact label map as the
    // viewer would (presigned PUT, then the completion naming the upload).
    const finish = phantom.negative
      ? { noHemorrhage: true as const }
      : { maskUploadKey: await uploadMask(api, item, join(dir, phantom.files.mask ?? "")), source: "page" as const };
    const response = await api(item.annotator, "POST", COMPLETION_API_PATHS.completions, {
      stackId: item.stackId,
      activeSeconds,
      annotator: item.annotator,
      ...finish,
    });
    const record = recordById.get(item.stackId);
    completions.push({
      stackId: item.stackId,
      annotator: item.annotator,
      activeSeconds,
      predictedSeconds: (record?.prediction as { predictedSeconds?: number } | undefined)?.predictedSeconds ?? 0,
      boundaryLength: (record?.scores as { boundaryLength?: number } | undefined)?.boundaryLength ?? 0,
      components: (record?.scores as { components?: number } | undefined)?.components ?? 0,
      trueBoundaryLength: (features[i] as { boundaryLength: number }).boundaryLength,
      trueComponents: (features[i] as { components: number }).components,
      trueMaskVoxels: phantom.mask_voxels,
      noHemorrhage: phantom.negative,
      statusCode: response.statusCode,
    });
  }
  return completions;
}

type AnnotatorApi = (
  annotator: string,
  method: "GET" | "POST",
  resource: string,
  body?: unknown,
  pathParameters?: Record<string, string>,
) => Promise<{ statusCode: number; body: string }>;

/** A simulated annotator's mask upload: a presigned PUT from the API, the file PUT to the emulator; the upload key. */
async function uploadMask(api: AnnotatorApi, item: { annotator: string; stackId: string }, path: string): Promise<string> {
  const bytes = await readFile(path);
  const issued = await api(
    item.annotator,
    "POST",
    COMPLETION_API_PATHS.maskUploads,
    { bytes: bytes.byteLength, gzip: true },
    { stackId: item.stackId },
  );
  if (issued.statusCode !== 200) throw new Error(`POST mask-uploads for ${item.stackId} answered ${issued.statusCode}: ${issued.body}`);
  const upload = MaskUploadResponseSchema.parse(JSON.parse(issued.body));
  const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });
  if (!put.ok) throw new Error(`the mask PUT for ${item.stackId} answered HTTP ${put.status}`);
  return upload.uploadKey;
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

/** Next week's workflow: the refit learns from the completions, then selects and notifies again. */
async function runSecondWeek(run: RunContext, week1: FirstWeek, completions: readonly CompletionOutcome[]) {
  const now = new Date(Date.parse(week1.now) + 7 * 86_400_000).toISOString();
  const round = roundIdOf(now, run.scheduleTimeZone);
  run.report(`      next week's workflow ${round}: ${WEEKLY_WORKFLOW_STATES.refit} fits α, β, γ on the ${completions.length} completions…`);
  const execution = await runWorkflow(week1.definition, week1.bindings, { name: round, now, stateMachineArn: week1.stateMachineArn });
  if (execution.status !== "SUCCEEDED") throw new Error(`workflow ${round} failed: ${execution.error}`);
  const refit = resultAt(execution.output, WEEKLY_WORKFLOW_RESULT_PATHS.refit) as RefitOutput;
  return { execution, refit, modelAfter: await week1.timeModels.latest() };
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

/** Which template resources play which part, found from the wiring itself (not from names). */
function identifyRoles(wiring: LocalWiring) {
  const notification = wiring.bucketNotifications[0];
  const ingestQueueArn = notification?.queueConfigurations[0]?.QueueArn;
  if (!notification || !ingestQueueArn) throw new Error("the synthesized stack has no bucket notification to a queue");
  const prefix = notification.queueConfigurations[0]?.Filter?.Key?.FilterRules?.find((r) => r.Name.toLowerCase() === "prefix")?.Value ?? "";
  const fnOf = (logicalId: string) => wiring.functions.find((f) => f.logicalId === logicalId) as LocalFunction;
  const mappingFor = (queueArn: string) => wiring.eventSourceMappings.find((m) => m.queueArn === queueArn);
  const ingestMapping = mappingFor(ingestQueueArn);
  if (!ingestMapping) throw new Error("no Lambda event source mapping consumes the ingest queue in the synthesized stack");
  const scoringEndpoint = wiring.scoringEndpoint;
  if (!scoringEndpoint) throw new Error("the synthesized stack has no SageMaker endpoint with an asynchronous inference config");
  const topics = [scoringEndpoint.successTopicArn, scoringEndpoint.errorTopicArn].filter(Boolean);
  const scoreQueueArn = wiring.subscriptions.find((s) => s.protocol === "sqs" && topics.includes(s.topicArn))?.endpoint;
  const scoreMapping = scoreQueueArn ? mappingFor(scoreQueueArn) : undefined;
  if (!scoreMapping) throw new Error("no queue subscribed to the endpoint's topics is consumed by a Lambda in the synthesized stack");
  const ingestFn = fnOf(ingestMapping.functionLogicalId);
  const tableName = ingestFn.environment.TABLE_NAME;
  if (!tableName) throw new Error("the ingest function's environment has no TABLE_NAME");
  return {
    studiesBucket: notification.bucket,
    uploadsPrefix: prefix,
    scoringEndpoint,
    tableName,
    ingest: { fn: ingestFn, mapping: ingestMapping },
    recordScore: { fn: fnOf(scoreMapping.functionLogicalId), mapping: scoreMapping },
    get complete(): LocalFunction {
      return completionFunction(wiring);
    },
    /** The re-score function: the one that names the scoring endpoint but consumes no queue. */
    get rescore(): LocalFunction {
      const consumers = new Set(wiring.eventSourceMappings.map((m) => m.functionLogicalId));
      // The one with the scoring request's settings (deploy-candidate names the endpoint too, without them).
      const fn = wiring.functions.find(
        (f) => f.environment.SCORING_ENDPOINT_NAME && f.environment.SCORING_TOP_K && !consumers.has(f.logicalId),
      );
      if (!fn) throw new Error("the synthesized stack has no re-score function (SCORING_ENDPOINT_NAME without an ingest queue)");
      return fn;
    },
  };
}

/** The completion API's function: the one an API Gateway method integrates (by ARN in its URI). */
function completionFunction(wiring: LocalWiring): LocalFunction {
  const fn = wiring.functions.find((f) => wiring.apiIntegrations.some((uri) => uri.includes(f.arn)));
  if (!fn) throw new Error("the synthesized stack has no API Gateway method integrating a Lambda function (completion API)");
  return fn;
}

const STATE_HANDLERS: Record<string, HandlerKind> = {
  [WEEKLY_WORKFLOW_STATES.refit]: "refit",
  [WEEKLY_WORKFLOW_STATES.select]: "select",
  [WEEKLY_WORKFLOW_STATES.notify]: "notify",
  [WEEKLY_WORKFLOW_STATES.recordFailure]: "roundFailure",
};

/** Each Task state of the definition bound to its handler, created with the environment of the function the Task invokes. */
async function workflowBindings(
  definition: Record<string, unknown>,
  wiring: LocalWiring,
  options: Parameters<typeof bindHandler>[2],
): Promise<Record<string, TaskBinding>> {
  const bindings: Record<string, TaskBinding> = {};
  for (const task of taskStates(definition)) {
    const kind = STATE_HANDLERS[task.state];
    if (!kind) throw new Error(`Task state ${task.state} is not one of the weekly workflow's states (contracts/weekly-workflow.ts)`);
    const fn = wiring.functions.find((f) => f.arn === task.functionArn || f.name === task.functionArn);
    if (!fn) throw new Error(`Task state ${task.state} invokes ${task.functionArn}, which is not a function of the template`);
    bindings[task.state] = { fn: identity(fn), handler: await bindHandler(kind, fn.environment, options) };
  }
  return bindings;
}

function identity(fn: LocalFunction): FunctionIdentity {
  return { name: fn.name, arn: fn.arn, timeoutSeconds: fn.timeoutSeconds };
}

/** An API Gateway REST proxy event (payload 1.0) as the Cognito user-pool authorizer passes it. */
function apiGatewayEvent(
  email: string,
  sub: string,
  method: string,
  resource: string,
  body?: unknown,
  pathParameters: Record<string, string> | null = null,
) {
  const requestId = randomUUID();
  const path = resource.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(pathParameters?.[name] ?? ""));
  return {
    resource,
    path,
    httpMethod: method,
    headers: { "content-type": "application/json", host: "local.execute-api" },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters,
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      requestId,
      resourcePath: resource,
      httpMethod: method,
      path: `/local${path}`,
      stage: "local",
      accountId: "123456789012",
      identity: { sourceIp: "127.0.0.1" },
      authorizer: { claims: { email, sub, "cognito:username": sub, token_use: "id" } },
    },
  };
}

function resultAt(output: Record<string, unknown> | undefined, path: string): unknown {
  let node: unknown = output;
  for (const key of path
    .replace(/^\$\.?/, "")
    .split(".")
    .filter(Boolean))
    node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
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

function coefficientsOf(latest: Awaited<ReturnType<DynamoTimeModelStore["latest"]>>): Coefficients {
  const model = latest?.model ?? PRIOR_TIME_MODEL;
  return { version: latest?.version ?? 0, source: model.source, alpha: model.alpha, beta: model.beta, gamma: model.gamma, n: model.n };
}

function studyOfStack(stackId: string): string {
  return stackId.replace(/-s\d+$/, "");
}

function isStack(r: Record<string, unknown>): boolean {
  return typeof r.stackId === "string" && r.kind !== "study" && r.scores !== undefined;
}

async function scanRecords(dynamo: DynamoDBClient, table: string): Promise<Record<string, unknown>[]> {
  const documents = DynamoDBDocumentClient.from(dynamo);
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

async function countMessages(sqs: SQSClient, urls: string[]): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const r = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    total += Number(r.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }
  return total;
}

export const DEFAULT_CACHE_DIR = join(PROJECT_ROOT, ".cache", "ich-al-local");
export const DEFAULT_OUTPUT_DIR = join(PROJECT_ROOT, "local-output");

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
