/**
 * The learning step of the local run, between the annotators' week and the next round:
 *
 *   records ─ labeledSet (lambdas/domain/labeled-set.ts) ─→ train / validation channels: each stack's
 *   uploaded study (its S3 version) and accepted mask, downloaded from the emulator
 *   → `ichal train` warm-started from the model in service, SageMaker's /opt/ml layout in a folder
 *     (channels train, validation, model); the job evaluates both models on the validation channel
 *     (output/data/evaluation.json, what the AWS judge reads) → promotionDecision
 *   → promoted: the model server restarts on the new model, the table's model in service is replaced
 *     (conditionally on the sequence read), and the stack's re-score function asks the endpoint to score
 *     every pending stack again (lambdas/handlers/rescore-handler.ts; the answers come back through
 *     SNS → SQS → record-score)
 *
 * In AWS the same steps are a SageMaker training job and an endpoint update; here they run on the CPU.
 * Synthetic phantoms only.
 */

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { type EvaluationReport, EvaluationReportSchema } from "../../lambdas/contracts/learning.js";
import { type StackRecord, StackRecordSchema } from "../../lambdas/contracts/records.js";
import {
  channelFiles,
  type LabeledStack,
  labeledSet,
  promotionDecision,
  type ValidationMetrics,
} from "../../lambdas/domain/labeled-set.js";
import type { RescoreOutput } from "../../lambdas/domain/rescore.js";
import type { ModelServer } from "./model-server.js";
import { type EnsembleSettings, runIchal } from "./python-jobs.js";

export interface ModelVersionReport {
  readonly modelVersion: string;
  /** Stacks it was trained on (the labeled train split; 0 for the first model, trained on phantoms offline). */
  readonly trainingStacks: number;
  readonly validation: ValidationMetrics;
  readonly promoted: boolean;
  readonly reasons: string[];
}

export interface LearningOutcome {
  readonly validationStacks: number;
  /** The model in service before, then the candidate. */
  readonly versions: ModelVersionReport[];
  /** What was re-scored after a promotion, and how long it took (stacks × seconds on this CPU). */
  readonly rescore?: { readonly studies: number; readonly stacks: number; readonly seconds: number };
}

export interface LearningContext {
  readonly s3: S3Client;
  readonly records: DynamoRecordStore;
  readonly items: readonly Record<string, unknown>[];
  readonly workDir: string;
  readonly currentModelDir: string;
  readonly ensemble: EnsembleSettings;
  /** Fine-tuning steps per member (warm start). */
  readonly iterations: number;
  readonly validationShare: number;
  readonly tolerance: number;
  readonly threads: number;
  readonly report: (line: string) => void;
  /** Restarts the model server on `modelDir`; the new server (the old one is stopped). */
  readonly restartModelServer: (modelDir: string) => Promise<ModelServer>;
  /** Invokes the stack's re-score function (bound to the model server at `modelServerEndpoint`). */
  readonly rescore: (modelServerEndpoint: string) => Promise<RescoreOutput>;
  /** Resolves once no pending stack waits for the model in service (or throws after a timeout). */
  readonly awaitRescored: () => Promise<void>;
}

/** One round of the loop's learning step (module comment). */
export async function learnFromMasks(ctx: LearningContext): Promise<LearningOutcome> {
  const stacks = ctx.items
    .filter((item) => item.sk === "RECORD")
    .map((item) => StackRecordSchema.safeParse(withoutKeys(item)))
    .flatMap((parsed) => (parsed.success ? [parsed.data as StackRecord] : []));
  const labeled = labeledSet(stacks, ctx.validationShare);
  await rm(ctx.workDir, { recursive: true, force: true });
  const train = join(ctx.workDir, "input/data/train");
  const validation = join(ctx.workDir, "input/data/validation");
  const evaluationFile = join(ctx.workDir, "output/data/evaluation.json");
  await writeChannel(ctx, train, labeled.train);
  await writeChannel(ctx, validation, labeled.validation);
  ctx.report(
    `      learning: ${labeled.train.length} labeled stacks to train on, ${labeled.validation.length} held out for validation (fixed by stack id)`,
  );

  const candidateDir = join(ctx.workDir, "model");
  const settings = ctx.ensemble;
  const hp = (k: string, v: number) => ["--set", `${k}=${v}`];
  await runIchal(
    ["train", "--train-dir", train, "--model-dir", candidateDir, "--warm-start-dir", ctx.currentModelDir, "--device", "cpu"]
      .concat(["--validation-dir", validation, "--evaluation-file", evaluationFile])
      .concat(["--hyperparameters", join(ctx.workDir, "input/config/hyperparameters.json")])
      .concat(hp("ensemble_size", settings.ensembleSize), hp("width", settings.width), hp("grid_size", settings.gridSize))
      .concat(hp("crop", settings.crop), hp("stride", settings.stride), hp("iterations", ctx.iterations))
      .concat(hp("batch_size", 16), hp("learning_rate", settings.learningRate / 4), hp("hemorrhage_weight", settings.hemorrhageWeight))
      .concat(hp("top_k", settings.topK), hp("seed", settings.seed), hp("log_every", Math.max(10, Math.round(ctx.iterations / 4)))),
    { threads: ctx.threads, onLine: (line) => (/step \d+\/\d+/.test(line) ? ctx.report(`      ${line}`) : undefined) },
  );

  // The job's own evaluation of both models on the validation channel, as the AWS judge reads it.
  const report = EvaluationReportSchema.parse(JSON.parse(await readFile(evaluationFile, "utf8")));
  if (!report.current) throw new Error("the training job did not evaluate the model it warm-started from");
  const current = asMetrics(report.current);
  const candidate = asMetrics(report.candidate);
  const decision = promotionDecision(candidate.metrics, current.metrics, ctx.tolerance);
  const versions: ModelVersionReport[] = [
    { modelVersion: current.modelVersion, trainingStacks: 0, validation: current.metrics, promoted: true, reasons: ["in service"] },
    {
      modelVersion: candidate.modelVersion,
      trainingStacks: labeled.train.length,
      validation: candidate.metrics,
      promoted: decision.promote,
      reasons: decision.reasons,
    },
  ];
  if (!decision.promote) {
    ctx.report(`      candidate ${candidate.modelVersion} rejected: ${decision.reasons.join("; ")}`);
    return { validationStacks: labeled.validation.length, versions };
  }

  ctx.report(`      candidate ${candidate.modelVersion} promoted (${decision.reasons.join("; ")}); restarting the model server on it…`);
  const server = await ctx.restartModelServer(candidateDir);
  const inService = await ctx.records.getModelInService();
  if (!inService) throw new Error("no model in service to promote over");
  const next = {
    modelVersion: candidate.modelVersion,
    sequence: inService.sequence + 1,
    since: new Date().toISOString(),
    source: "promotion" as const,
  };
  if (!(await ctx.records.promoteModel(next, inService.sequence))) throw new Error("another promotion replaced the model in service first");

  const started = Date.now();
  const requested = await ctx.rescore(server.endpoint);
  ctx.report(`      re-scoring ${requested.stacks} pending stacks of ${requested.studies} studies with ${candidate.modelVersion}…`);
  await ctx.awaitRescored();
  const seconds = (Date.now() - started) / 1000;
  return {
    validationStacks: labeled.validation.length,
    versions,
    rescore: { studies: requested.studies, stacks: requested.stacks, seconds },
  };
}

async function writeChannel(ctx: LearningContext, dir: string, stacks: readonly LabeledStack[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const stack of stacks) {
    const files = channelFiles(stack);
    await mkdir(join(dir, stack.stackId), { recursive: true });
    const { bucket, key, versionId } = stack.study;
    await writeFile(join(dir, files.study), await objectBytes(ctx, bucket, key, versionId));
    await writeFile(join(dir, files.mask), await objectBytes(ctx, bucket, stack.maskKey));
    await writeFile(join(dir, files.stackJson), files.stackJsonBody);
  }
}

async function objectBytes(ctx: LearningContext, bucket: string, key: string, versionId?: string): Promise<Uint8Array> {
  const out = await ctx.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
  return (await out.Body?.transformToByteArray()) ?? new Uint8Array(0);
}

function asMetrics(row: EvaluationReport["candidate"]): { modelVersion: string; metrics: ValidationMetrics } {
  const value = (v: number | null) => (typeof v === "number" ? v : Number.NaN);
  return {
    modelVersion: row.model_version,
    metrics: {
      pixelAp: value(row.metrics.pixel_ap),
      stackAp: value(row.metrics.stack_ap),
      frameAp: value(row.metrics.frame_ap),
      stackIds: row.stack_ids,
    },
  };
}

function withoutKeys(item: Record<string, unknown>): Record<string, unknown> {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest;
}
