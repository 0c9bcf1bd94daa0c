/**
 * The learning loop's steps in AWS (contracts/learning.ts has the workflow and its states):
 *
 *   prepareTraining   records ─ labeledSet (domain/labeled-set.ts) ─ ≥ N masks since the last judged job?
 *                     ─ claim the week's job name ─ copy each stack's study version, mask and stack.json
 *                     into training-channels/<job>/{train,validation}/ → the plan
 *   (SageMaker training job: model-container `train`, channels train / validation / model → evaluation.json)
 *   judgeCandidate    evaluation.json ─ promotionDecision ─ model-evaluations/<job>.json ─ model package
 *                     (Approved | Rejected) ─ the run's record → judgement
 *   (deploy: a Model and an EndpointConfig copied from the endpoint's, UpdateEndpoint — adapters)
 *   putInService      the table's model in service replaced, conditionally on its sequence
 *   recordTrainingFailure  the run failed; an approved package not deployed is rejected; the model in
 *                     service is untouched
 *
 * Every step is idempotent: a retried step finds its own record (same execution, same job) and does the
 * same again or nothing. No SDK here: ports below, adapters in lambdas/adapters.
 */
import type { EvaluationReport, Judgement, RunMetrics, TrainingPlan, TrainingRun } from "../contracts/learning.js";
import {
  EvaluationReportSchema,
  MODEL_EVALUATIONS_PREFIX,
  TRAINING_CHANNELS_PREFIX,
  TRAINING_OUTPUT_PREFIX,
  trainingJobName,
} from "../contracts/learning.js";
import type { StackRecord, StackSource } from "../contracts/records.js";
import { isoWeekOf } from "./iso-week.js";
import { channelFiles, type LabeledStack, labeledSet, promotionDecision, type ValidationMetrics } from "./labeled-set.js";
import type { RecordStore } from "./record-store.js";

/** Training runs in the records table (one per job; `pk TRAINING`). */
export interface TrainingLedger {
  list(): Promise<TrainingRun[]>;
  get(jobName: string): Promise<TrainingRun | undefined>;
  /** Creates the run unless one with its job name exists; false (nothing written) if one does. */
  create(run: TrainingRun & { execution: string }): Promise<boolean>;
  /** The execution that created the run (so that a retry of the same execution may go on). */
  executionOf(jobName: string): Promise<string | undefined>;
  /** Sets `fields` while the run's status is one of `expected`; false (nothing written) otherwise. */
  update(jobName: string, fields: Partial<TrainingRun>, expected: readonly TrainingRun["status"][]): Promise<boolean>;
}

/** The studies bucket as the learning steps use it. */
export interface TrainingObjects {
  readonly bucket: string;
  /** Copies one version of an object to `targetKey` (same bucket). */
  copy(source: Pick<StackSource, "key"> & { versionId?: string }, targetKey: string): Promise<void>;
  putText(key: string, body: string, contentType: string): Promise<void>;
  /** `output/data/evaluation.json` of a finished job (inside its output.tar.gz), parsed as JSON. */
  readEvaluation(jobName: string): Promise<unknown>;
}

/** The SageMaker model registry (one model package group per institution). */
export interface ModelRegistry {
  /** Registers a candidate with its metrics; idempotent per job name. Returns the package ARN. */
  register(candidate: {
    jobName: string;
    modelData: string;
    modelVersion: string;
    approved: boolean;
    description: string;
    evaluationUri: string;
  }): Promise<string>;
  /** Sets a package to Rejected with the reason. */
  reject(modelPackageArn: string, reason: string): Promise<void>;
}

export interface LearningSettings {
  readonly institution: string;
  /** IANA zone the week of `now` is read in (the schedule's). */
  readonly timeZone: string;
  /** N: masks since the last judged job that start a new one. */
  readonly minNewMasks: number;
  readonly validationShare: number;
  /** How much worse than the model in service (pixel or stack AP) a candidate may be and still be promoted. */
  readonly tolerance: number;
  /** The stack's first model (`scoring.modelArtifact`): the warm start while no promoted model has its own. */
  readonly initialModelData?: string;
}

const uri = (bucket: string, key: string) => `s3://${bucket}/${key}`;

/** The latest completion time among masks a judged run used; masks completed after it are new. */
function labelsCutoff(runs: readonly TrainingRun[]): string | undefined {
  const judged = runs.filter((r) => r.status === "rejected" || r.status === "deploying" || r.status === "promoted");
  return judged.map((r) => r.labelsUntil).reduce<string | undefined>((a, b) => (b && (!a || b > a) ? b : a), undefined);
}

/** Pure: the labeled set and how many of its masks are new since the last judged run. */
export function planTraining(records: readonly StackRecord[], runs: readonly TrainingRun[], share: number) {
  const set = labeledSet(records, share);
  const all = [...set.train, ...set.validation];
  const cutoff = labelsCutoff(runs);
  const newMasks = all.filter((s) => !cutoff || s.completedAt > cutoff).length;
  const labelsUntil = all.map((s) => s.completedAt).reduce<string | undefined>((a, b) => (!a || b > a ? b : a), undefined);
  return { ...set, newMasks, labelsUntil, cutoff };
}

export interface PrepareDeps {
  readonly records: Pick<RecordStore, "listByStatus" | "getModelInService">;
  readonly ledger: TrainingLedger;
  readonly objects: TrainingObjects;
  readonly settings: Omit<LearningSettings, "tolerance">;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** PrepareTraining: decides whether this week trains and, if so, writes the channels. */
export async function prepareTraining(deps: PrepareDeps, now: string, execution: string): Promise<TrainingPlan> {
  const log = deps.log ?? (() => {});
  const { settings } = deps;
  const jobName = trainingJobName(settings.institution, isoWeekOf(now, settings.timeZone));
  const required = settings.minNewMasks;
  const runs = await deps.ledger.list();
  const plan = planTraining(await deps.records.listByStatus("labeled"), runs, settings.validationShare);
  const skip = (reason: string): TrainingPlan => {
    log("no training this time", { reason, newMasks: plan.newMasks, required });
    return { train: false, reason, newMasks: plan.newMasks, required };
  };
  const owner = await deps.ledger.executionOf(jobName);
  if (owner !== undefined && owner !== execution) return skip(`${jobName} was started this week already (one job per week)`);
  if (owner === undefined) {
    if (plan.newMasks < required) return skip(`${plan.newMasks} new masks since the last model; ${required} start a training job`);
    if (plan.validation.length === 0) return skip("no labeled stack falls in the validation split yet");
    if (plan.train.length === 0) return skip("no labeled stack falls in the training split yet");
  }
  const inService = await deps.records.getModelInService();
  const modelData = inService?.modelData ?? settings.initialModelData;
  if (!inService || !modelData) return skip("no model in service to start from");

  const channels = `${TRAINING_CHANNELS_PREFIX}${jobName}/`;
  for (const stack of [...plan.train, ...plan.validation]) await writeChannelStack(deps.objects, `${channels}${stack.split}/`, stack);
  if (owner === undefined) {
    const created = await deps.ledger.create({
      jobName,
      execution,
      status: "training",
      startedAt: now,
      updatedAt: now,
      ...(plan.labelsUntil ? { labelsUntil: plan.labelsUntil } : {}),
      newMasks: plan.newMasks,
      trainStacks: plan.train.map((s) => s.stackId),
      validationStacks: plan.validation.map((s) => s.stackId),
      baseModel: inService.modelVersion,
    });
    if (!created && (await deps.ledger.executionOf(jobName)) !== execution) {
      return skip(`${jobName} was started this week already (one job per week)`);
    }
  }
  log("training planned", { jobName, train: plan.train.length, validation: plan.validation.length, newMasks: plan.newMasks });
  const bucket = deps.objects.bucket;
  return {
    train: true,
    jobName,
    newMasks: plan.newMasks,
    trainStacks: plan.train.length,
    validationStacks: plan.validation.length,
    trainUri: uri(bucket, `${channels}train/`),
    validationUri: uri(bucket, `${channels}validation/`),
    modelUri: modelData,
    outputUri: uri(bucket, TRAINING_OUTPUT_PREFIX),
  };
}

async function writeChannelStack(objects: TrainingObjects, prefix: string, stack: LabeledStack): Promise<void> {
  const files = channelFiles(stack);
  await objects.copy({ key: stack.study.key, versionId: stack.study.versionId }, prefix + files.study);
  await objects.copy({ key: stack.maskKey }, prefix + files.mask);
  await objects.putText(prefix + files.stackJson, files.stackJsonBody, "application/json");
}

const finiteOrNaN = (value: number | null) => (value === null ? Number.NaN : value);
const asValidation = (row: NonNullable<EvaluationReport["current"]>): ValidationMetrics => ({
  pixelAp: finiteOrNaN(row.metrics.pixel_ap),
  stackAp: finiteOrNaN(row.metrics.stack_ap),
  frameAp: finiteOrNaN(row.metrics.frame_ap),
  stackIds: row.stack_ids,
});
const asRunMetrics = (row: NonNullable<EvaluationReport["current"]>): RunMetrics => ({
  modelVersion: row.model_version,
  pixelAp: row.metrics.pixel_ap,
  frameAp: row.metrics.frame_ap,
  stackAp: row.metrics.stack_ap,
});

export interface JudgeDeps {
  readonly records: Pick<RecordStore, "getModelInService">;
  readonly ledger: TrainingLedger;
  readonly objects: TrainingObjects;
  readonly registry: ModelRegistry;
  readonly settings: Pick<LearningSettings, "tolerance">;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** JudgeCandidate: the job's evaluation → promote or not → metrics JSON, model package, the run's record. */
export async function judgeCandidate(deps: JudgeDeps, input: { now: string; jobName: string; modelData: string }): Promise<Judgement> {
  const { jobName, modelData } = input;
  const report = EvaluationReportSchema.parse(await deps.objects.readEvaluation(jobName));
  const inService = await deps.records.getModelInService();
  let decision = promotionDecision(
    asValidation(report.candidate),
    report.current ? asValidation(report.current) : undefined,
    deps.settings.tolerance,
  );
  if (inService && report.current?.model_version !== inService.modelVersion) {
    decision = {
      promote: false,
      reasons: [`the model in service (${inService.modelVersion}) is not the one the candidate was compared with`],
    };
  }
  const evaluationKey = `${MODEL_EVALUATIONS_PREFIX}${jobName}.json`;
  const evaluationUri = uri(deps.objects.bucket, evaluationKey);
  const candidate = asRunMetrics(report.candidate);
  const current = report.current ? asRunMetrics(report.current) : undefined;
  const document = {
    jobName,
    judgedAt: input.now,
    tolerance: deps.settings.tolerance,
    promote: decision.promote,
    reasons: decision.reasons,
    trainingStacks: report.training_stacks,
    validationStacks: report.candidate.stack_ids,
    candidate: { ...candidate, metrics: report.candidate.metrics },
    current: report.current ? { ...current, metrics: report.current.metrics } : null,
  };
  await deps.objects.putText(evaluationKey, JSON.stringify(document, null, 2), "application/json");
  const modelPackageArn = await deps.registry.register({
    jobName,
    modelData,
    modelVersion: candidate.modelVersion,
    approved: decision.promote,
    description: decision.reasons.join("; ").slice(0, 1000),
    evaluationUri,
  });
  const fields: Partial<TrainingRun> = {
    status: decision.promote ? "deploying" : "rejected",
    updatedAt: input.now,
    candidate,
    ...(current ? { current } : {}),
    reasons: decision.reasons,
    modelData,
    modelPackageArn,
    evaluationUri,
  };
  if (!(await deps.ledger.update(jobName, fields, ["training"]))) {
    const run = await deps.ledger.get(jobName);
    if (!run || run.status !== fields.status) throw new Error(`training run ${jobName} is ${run?.status ?? "missing"}, not training`);
  }
  deps.log?.("candidate judged", { jobName, promote: decision.promote, pixelAp: candidate.pixelAp, stackAp: candidate.stackAp });
  return {
    promote: decision.promote,
    reasons: decision.reasons,
    jobName,
    modelVersion: candidate.modelVersion,
    modelData,
    modelPackageArn,
    evaluationUri,
  };
}

export interface PutInServiceDeps {
  readonly records: Pick<RecordStore, "getModelInService" | "promoteModel">;
  readonly ledger: TrainingLedger;
}

/** PutInService: the deployed candidate becomes the model in service (sequence + 1); idempotent. */
export async function putInService(
  deps: PutInServiceDeps,
  input: { now: string; judgement: Judgement },
): Promise<{ modelVersion: string; sequence: number }> {
  const { judgement } = input;
  const current = await deps.records.getModelInService();
  let sequence = current?.sequence ?? 0;
  if (current?.modelVersion !== judgement.modelVersion) {
    sequence += 1;
    const next = {
      modelVersion: judgement.modelVersion,
      sequence,
      since: input.now,
      source: "promotion" as const,
      modelData: judgement.modelData,
      modelPackageArn: judgement.modelPackageArn,
      trainingJob: judgement.jobName,
    };
    if (!(await deps.records.promoteModel(next, sequence - 1))) {
      throw new Error(`the model in service changed while ${judgement.jobName} was deployed; not promoted`);
    }
  }
  await deps.ledger.update(judgement.jobName, { status: "promoted", updatedAt: input.now }, ["deploying", "promoted"]);
  return { modelVersion: judgement.modelVersion, sequence };
}

export interface FailureDeps {
  readonly ledger: TrainingLedger;
  readonly registry: Pick<ModelRegistry, "reject">;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * RecordTrainingFailure: the run is `failed` with the error; a package approved for a deployment that
 * did not happen is rejected. The model in service stays; the weekly round goes on without this job.
 */
export async function recordTrainingFailure(
  deps: FailureDeps,
  input: { now: string; jobName?: string; modelPackageArn?: string; error: { Error: string; Cause?: string } },
): Promise<{ jobName: string | null; recorded: boolean; packageRejected: boolean }> {
  const error = { Error: input.error.Error.slice(0, 200), ...(input.error.Cause ? { Cause: input.error.Cause.slice(0, 2000) } : {}) };
  const recorded = input.jobName
    ? await deps.ledger.update(input.jobName, { status: "failed", updatedAt: input.now, error }, ["training", "deploying", "failed"])
    : false;
  let packageRejected = false;
  if (input.modelPackageArn) {
    await deps.registry.reject(input.modelPackageArn, `not deployed: ${error.Error}`);
    packageRejected = true;
  }
  deps.log?.("training failed", { jobName: input.jobName ?? null, error: error.Error, packageRejected });
  return { jobName: input.jobName ?? null, recorded, packageRejected };
}
