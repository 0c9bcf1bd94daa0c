/**
 * The record-score core: from one SageMaker asynchronous-inference notification (SNS envelope in an SQS
 * message) to the scored stacks of a study, or the study's rejection / failure. Talks to AWS only through
 * ports (RecordStore, ScoringOutputs, TimeModelStore); the clock is passed in.
 *
 * Join key. Ingest writes each study's request at `scoring-requests/<studyId>.json` and invokes with that
 * location, which SageMaker echoes as `requestParameters.inputLocation`; the studyId is read from it. The
 * `inferenceId` is only cross-checked against the study's `scoring` (a mismatch is the second invocation
 * of ingest's at-least-once window: same request, same result, processed like the first).
 *
 * States (the status enum is shared, so no new status): the study record goes `received → pending` once
 * its stacks exist (as domain/ingest.ts announces), with `stackIds` naming them; `received → rejected`
 * (container 4xx, `rejection {code, reason, quarantineKey}`: the upload is moved to quarantine — copied,
 * recorded, its original version deleted, domain/quarantine.ts) or `received → failed` (anything else,
 * `lastError`). Study records are `kind: "study"`: the selection pool is the `pending` records of kind `stack`.
 *
 * Exactly once, step by step: (1) a study no longer `received` ends the delivery (duplicate or late
 * notification; nothing read, nothing written, only the original version of a quarantined study deleted
 * again, which a crash may have left) — except a `failed` study without `scoring`: ingest gave
 * up on it when invokeEndpointAsync failed on its last delivery, and a result means SageMaker had accepted
 * the request after all, so the result settles it (`failed → …`, guarded by the absence of `scoring`; a
 * re-drive that claimed it meanwhile wins, and its own result settles it). (2) Success: read and parse the result,
 * then create each stack record with a conditional put, a stack with a content key (the sha256 of its voxels)
 * in one transaction with the claim of that key (the first stack to claim it holds it for good) — `pending`,
 * or `duplicate` pointing to the holder when another stack had the same voxels; a redelivery's puts change
 * nothing — then the conditional `received → pending`. A crash between (2)'s puts and the transition is completed by the redelivery.
 * (3) Failure: read the container's `{status, code, reason}` at the failure location; a 4xx first copies
 * the upload's version to quarantine; then one conditional transition; after a 4xx's, the original
 * version is deleted. A result that breaks the scoring contract is recorded as `failed` (retrying cannot fix it).
 */
import type { z } from "zod";
import { AsyncInferenceNotificationSchema, SnsEnvelopeSchema } from "../contracts/events.js";
import { INTAKE_METRICS, type IntakeCounter } from "../contracts/metrics.js";
import type { LastError, Scores, StackRecord } from "../contracts/records.js";
import {
  type ScoredStack,
  type ScoringFailure,
  ScoringFailureSchema,
  type ScoringResult,
  ScoringResultSchema,
} from "../contracts/scoring.js";
import { DomainError } from "./errors.js";
import { SCORING_REQUESTS_PREFIX } from "./ingest.js";
import type { TimePrior } from "./labeling-time-model.js";
import { copyToQuarantine, finishQuarantine, type QuarantineObjects } from "./quarantine.js";
import type { RecordStore } from "./record-store.js";
import { predictionFor } from "./refit.js";
import { studyOfRescoreKey } from "./rescore.js";
import { modelInEffect, type TimeModelStore, type VersionedTimeModel } from "./time-model-store.js";

/** Base of the record-score core's errors. */
export class RecordScoreError extends DomainError {}

/** A message that can never be recorded as it is: reported failed, it reaches the DLQ after maxReceiveCount. */
export class MalformedNotificationError extends RecordScoreError {
  constructor(
    /** NOT_JSON, NOT_SNS_NOTIFICATION, NOT_ASYNC_INFERENCE_EVENT, UNKNOWN_REQUEST_LOCATION, FOREIGN_BUCKET, UNKNOWN_STUDY. */
    readonly code: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed notification (${code}): ${detail}`, options);
  }
}

/** The endpoint reported success but its output object is not there (yet): retried by SQS. */
export class ScoringOutputMissingError extends RecordScoreError {}

/** Port for reading the endpoint's output and failure objects; the S3 adapter implements it. */
export interface ScoringOutputs {
  /** The object's UTF-8 text, or undefined when it does not exist. */
  getText(bucket: string, key: string): Promise<string | undefined>;
}

export interface RecordScoreLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface RecordScoreDeps {
  records: RecordStore;
  outputs: ScoringOutputs;
  /** The studies bucket's copy and delete, for moving a refused study's upload to quarantine. */
  objects: QuarantineObjects;
  timeModels: TimeModelStore;
  /** `timePrior`: T of new stacks until the first fit is stored (default: the documented prior). */
  config: { studiesBucket: string; timePrior?: TimePrior };
  /** ISO-8601 UTC timestamp of "now". */
  now: () => string;
  log: RecordScoreLog;
  /** Counts scored, refused (by code) and failed studies and the stacks pooled or found duplicate; none when absent. */
  count?: IntakeCounter;
}

export type RecordScoreOutcome = "scored" | "rejected" | "failed" | "duplicate" | "rescored" | "stale";

/** A parsed notification: which study, and what happened to its scoring (`rescore`: a re-score request, domain/rescore.ts). */
export type ScoringNotification = { rescore?: boolean } & (
  | { kind: "completed"; studyId: string; inferenceId: string; outputLocation: string }
  | { kind: "failed"; studyId: string; inferenceId: string; failureLocation: string | undefined; failureReason: string | undefined }
);

/** Splits `s3://bucket/key`; undefined for anything else. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return match ? { bucket: match[1] as string, key: match[2] as string } : undefined;
}

const STUDY_ID = /^[0-9a-f]{32}$/;

/**
 * Parses one SQS body: SNS envelope → SageMaker async-inference notification → study id from the request location.
 * @throws MalformedNotificationError when any layer is not what it should be
 */
export function parseScoringNotification(body: string, studiesBucket: string): ScoringNotification {
  const envelope = SnsEnvelopeSchema.safeParse(parseJson(body, "body"));
  if (!envelope.success) throw new MalformedNotificationError("NOT_SNS_NOTIFICATION", fieldsOf(envelope.error), { cause: envelope.error });
  const parsed = AsyncInferenceNotificationSchema.safeParse(parseJson(envelope.data.Message, "SNS Message"));
  if (!parsed.success) throw new MalformedNotificationError("NOT_ASYNC_INFERENCE_EVENT", fieldsOf(parsed.error), { cause: parsed.error });
  const event = parsed.data;
  const request = parseS3Uri(event.requestParameters.inputLocation);
  const rescoreOf = request ? studyOfRescoreKey(request.key) : undefined;
  const name = request?.key.startsWith(SCORING_REQUESTS_PREFIX) ? request.key.slice(SCORING_REQUESTS_PREFIX.length) : "";
  const studyId = rescoreOf ?? (name.endsWith(".json") ? name.slice(0, -".json".length) : "");
  const rescore = rescoreOf !== undefined ? { rescore: true } : {};
  if (!request || !STUDY_ID.test(studyId)) {
    throw new MalformedNotificationError("UNKNOWN_REQUEST_LOCATION", "inputLocation is not a scoring request written by ingest");
  }
  if (request.bucket !== studiesBucket) throw new MalformedNotificationError("FOREIGN_BUCKET", "inputLocation names another bucket");
  if (event.invocationStatus === "Completed") {
    const outputLocation = event.responseParameters?.outputLocation;
    if (!outputLocation) throw new MalformedNotificationError("NOT_ASYNC_INFERENCE_EVENT", "completed invocation without outputLocation");
    return { kind: "completed", studyId, inferenceId: event.inferenceId, outputLocation, ...rescore };
  }
  return {
    ...rescore,
    kind: "failed",
    studyId,
    inferenceId: event.inferenceId,
    failureLocation: event.responseParameters?.failureLocation,
    failureReason: event.failureReason,
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MalformedNotificationError("NOT_JSON", `${what} is not JSON (${text.length} characters)`, { cause: error });
  }
}

function fieldsOf(error: z.ZodError): string {
  return `fields: ${[...new Set(error.issues.map((issue) => issue.path.join(".") || "(root)"))].join(", ")}`;
}

/** Stack id of the `index`-th series of a study. */
export const stackIdOf = (studyId: string, index: number) => `${studyId}-s${index}`;

/**
 * The pending stack records of a scored study (pure): scores copied from the result, predicted labeling
 * time from `timeModel` (paper §3.2), source = the study's source plus the series UID, and the content key.
 */
export function stackRecordsFor(study: StackRecord, result: ScoringResult, timeModel: VersionedTimeModel, now: string): StackRecord[] {
  return result.stacks.map((stack) => ({
    stackId: stackIdOf(study.stackId, stack.index),
    kind: "stack",
    status: "pending",
    source: { ...study.source, seriesUid: stack.seriesUid },
    receivedAt: study.receivedAt,
    updatedAt: now,
    ...(stack.contentSha256 ? { contentSha256: stack.contentSha256 } : {}),
    ...(stack.geometry ? { geometry: stack.geometry } : {}),
    scores: scoresOf(stack, result.modelVersion),
    prediction: predictionFor({ boundaryLength: stack.boundaryLength, components: stack.components }, timeModel),
  }));
}

/** A stack whose voxels `holder` was recorded with first (pure): `duplicate`, without scores or prediction, never pooled. */
export function asDuplicate(stack: StackRecord, holder: string): StackRecord {
  const { scores: _scores, prediction: _prediction, ...rest } = stack;
  return { ...rest, status: "duplicate", duplicateOf: holder };
}

/**
 * Records each stack, in stack order (so two identical series of one study resolve to the first): a stack with a
 * content key is created together with its claim, or, when another stack holds the key, as its duplicate. A
 * redelivery finds its own records and claims and changes nothing.
 */
async function recordStacks(stacks: readonly StackRecord[], deps: RecordScoreDeps, now: string): Promise<StackRecord[]> {
  const recorded: StackRecord[] = [];
  for (const stack of stacks) {
    const { contentSha256 } = stack;
    if (!contentSha256) {
      await deps.records.createStack(stack);
      recorded.push(stack);
      continue;
    }
    const holder = await deps.records.createStackWithContent({ ...stack, contentSha256 }, now);
    if (holder === stack.stackId) {
      recorded.push(stack);
      continue;
    }
    const duplicate = asDuplicate(stack, holder);
    await deps.records.createStack(duplicate);
    deps.log.warn("duplicate stack", { stackId: stack.stackId, duplicateOf: holder });
    recorded.push(duplicate);
  }
  return recorded;
}

function scoresOf(stack: ScoredStack, modelVersion: string): Scores {
  return {
    stackUncertainty: stack.stackUncertainty,
    topK: stack.topK,
    boundaryLength: stack.boundaryLength,
    components: stack.components,
    stackScore: stack.stackScore,
    modelVersion,
  };
}

/** What a failure notification does to the study: 4xx from the container → rejected, anything else → failed. */
export function failureOutcome(
  failure: ScoringFailure | undefined,
  failureReason: string | undefined,
  at: string,
): { status: "rejected"; rejection: { code: string; reason: string } } | { status: "failed"; lastError: LastError } {
  if (failure?.status !== undefined && failure.status < 500) {
    return { status: "rejected", rejection: { code: failure.code, reason: failure.reason } };
  }
  const code = failure?.code ?? "ASYNC_INFERENCE_FAILED";
  // failureReason is SageMaker's one line ("ClientError: Received server error (500) from model…"): no keys.
  const message = (failure?.reason ?? failureReason ?? "asynchronous inference failed without a reason").slice(0, 300);
  return { status: "failed", lastError: { code, message, at } };
}

/** Processes one SQS message body; throws to have that message (only) retried. */
export async function recordScoreMessage(body: string, deps: RecordScoreDeps): Promise<RecordScoreOutcome> {
  const notification = parseScoringNotification(body, deps.config.studiesBucket);
  const { studyId } = notification;
  const study = await deps.records.getStack(studyId);
  if (!study) throw new MalformedNotificationError("UNKNOWN_STUDY", `no record for study ${studyId}`);
  if (notification.rescore) return recordRescore(study, notification, deps);
  // A `failed` study without `scoring` is one whose last ingest delivery saw invokeEndpointAsync fail; if
  // SageMaker had accepted the request after all, this is its result, and it settles the study.
  const lateForFailedInvocation = study.status === "failed" && study.scoring === undefined;
  if (study.status !== "received" && !lateForFailedInvocation) {
    const quarantined = await finishQuarantine(deps.objects, study);
    deps.log.info("duplicate or late notification", {
      studyId,
      status: study.status,
      inferenceId: notification.inferenceId,
      ...(quarantined ? { quarantined } : {}),
    });
    return "duplicate";
  }
  if (lateForFailedInvocation) {
    deps.log.warn("result for a study recorded failed before its invocation was confirmed", {
      studyId,
      inferenceId: notification.inferenceId,
    });
  }
  if (study.scoring && study.scoring.inferenceId !== notification.inferenceId) {
    deps.log.warn("notification for a second invocation of the same request", { studyId, inferenceId: notification.inferenceId });
  }
  return notification.kind === "completed"
    ? recordResult(study, notification.outputLocation, deps)
    : recordFailure(study, notification, deps);
}

async function recordResult(study: StackRecord, outputLocation: string, deps: RecordScoreDeps): Promise<RecordScoreOutcome> {
  const studyId = study.stackId;
  const text = await readLocation(outputLocation, deps);
  if (text === undefined) throw new ScoringOutputMissingError(`study ${studyId}: the endpoint's output object is missing`);
  let result: ScoringResult;
  try {
    result = ScoringResultSchema.parse(JSON.parse(text));
  } catch {
    const lastError = {
      code: "ScoringResponseError",
      message: "the scoring result is not JSON or breaks the scoring contract",
      at: deps.now(),
    };
    return settle(study, "failed", { lastError }, "failed", deps, { code: lastError.code });
  }
  const timeModel = await modelInEffect(deps.timeModels, deps.config.timePrior);
  const now = deps.now();
  // The first model that scores anything is in service until a promotion replaces it (ModelInService).
  const inService = await deps.records.claimModelInService({
    modelVersion: result.modelVersion,
    sequence: 1,
    since: now,
    source: "first-score",
  });
  if (inService.modelVersion !== result.modelVersion) {
    deps.log.warn("scored by a model that is not in service; its stacks wait to be scored again", { studyId });
  }
  const stacks = await recordStacks(stackRecordsFor(study, result, timeModel, now), deps, now);
  const duplicates = stacks.filter((s) => s.status === "duplicate").length;
  deps.log.info("stacks recorded", { studyId, stacks: stacks.length, duplicates, timeModelVersion: timeModel.version });
  const outcome = await settle(study, "scored", { stackIds: stacks.map((s) => s.stackId) }, "scored", deps, {});
  if (outcome === "scored") {
    deps.count?.(INTAKE_METRICS.studiesScored);
    deps.count?.(INTAKE_METRICS.stacksPooled, stacks.length - duplicates);
    deps.count?.(INTAKE_METRICS.stacksDuplicate, duplicates);
  }
  return outcome;
}

/**
 * A re-score's answer (domain/rescore.ts): each series' scores and T replace the stack's, only while
 * it is `pending` and only for the model in service (a result of a model promoted away since is
 * `stale`). A failure changes nothing: the stacks keep waiting and the next re-score request retries.
 */
async function recordRescore(study: StackRecord, notification: ScoringNotification, deps: RecordScoreDeps): Promise<RecordScoreOutcome> {
  const studyId = study.stackId;
  if (notification.kind === "failed") {
    deps.log.warn("re-score failed; the study's stacks keep waiting", { studyId, inferenceId: notification.inferenceId });
    return "failed";
  }
  const text = await readLocation(notification.outputLocation, deps);
  if (text === undefined) throw new ScoringOutputMissingError(`study ${studyId}: the endpoint's output object is missing`);
  const parsed = ScoringResultSchema.safeParse(parseJsonOrUndefined(text));
  if (!parsed.success) {
    deps.log.warn("re-score result breaks the scoring contract; the study's stacks keep waiting", { studyId });
    return "failed";
  }
  const result = parsed.data;
  const inService = await deps.records.getModelInService();
  if (inService?.modelVersion !== result.modelVersion) {
    deps.log.info("re-score result of a model not in service; dropped", { studyId });
    deps.count?.(INTAKE_METRICS.rescoreResultsStale);
    return "stale";
  }
  const timeModel = await modelInEffect(deps.timeModels, deps.config.timePrior);
  const now = deps.now();
  let rescored = 0;
  for (const stack of stackRecordsFor(study, result, timeModel, now)) {
    const { scores, prediction, geometry } = stack;
    if (await deps.records.rescoreStack(stack.stackId, { scores, prediction, ...(geometry ? { geometry } : {}) }, now)) rescored++;
  }
  deps.log.info("stacks re-scored", { studyId, rescored, series: result.stacks.length, timeModelVersion: timeModel.version });
  deps.count?.(INTAKE_METRICS.stacksRescored, rescored);
  return "rescored";
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function recordFailure(
  study: StackRecord,
  notification: Extract<ScoringNotification, { kind: "failed" }>,
  deps: RecordScoreDeps,
): Promise<RecordScoreOutcome> {
  const location = notification.failureLocation ?? study.scoring?.failureLocation;
  const text = location ? await readLocation(location, deps) : undefined;
  let failure: ScoringFailure | undefined;
  if (text !== undefined) {
    try {
      failure = ScoringFailureSchema.parse(JSON.parse(text));
    } catch {
      failure = undefined; // not the container's {status, code, reason}: SageMaker's failureReason is all we have
    }
  }
  const outcome = failureOutcome(failure, notification.failureReason, deps.now());
  if (outcome.status === "rejected") return rejectAndQuarantine(study, outcome.rejection, deps);
  return settle(study, "failed", { lastError: outcome.lastError }, "failed", deps, { code: outcome.lastError.code });
}

/**
 * The container refused the study: copy its upload's version to quarantine, record `rejected` naming the
 * copy, then delete the original version (domain/quarantine.ts). A source already gone is recorded without
 * a copy. Only the delivery that recorded the rejection deletes; a crash before that is finished by the
 * redelivery (the duplicate path of recordScoreMessage).
 */
async function rejectAndQuarantine(
  study: StackRecord,
  rejection: { code: string; reason: string },
  deps: RecordScoreDeps,
): Promise<RecordScoreOutcome> {
  const { bucket, key, versionId } = study.source;
  const original = { bucket, key, versionId };
  const quarantineKey = await copyToQuarantine(deps.objects, original, rejection.code, study.stackId);
  const outcome = await settle(
    study,
    "rejected",
    { rejection: { ...rejection, ...(quarantineKey ? { quarantineKey } : {}) } },
    "rejected",
    deps,
    {
      code: rejection.code,
      quarantined: quarantineKey !== undefined,
    },
  );
  if (outcome === "rejected" && quarantineKey) await deps.objects.deleteVersion(original);
  return outcome;
}

async function readLocation(location: string, deps: RecordScoreDeps): Promise<string | undefined> {
  const object = parseS3Uri(location);
  if (!object) throw new MalformedNotificationError("NOT_ASYNC_INFERENCE_EVENT", "output or failure location is not an s3:// URI");
  return deps.outputs.getText(object.bucket, object.key);
}

/**
 * The conditional `received → to` (or `failed → to` for a study whose invocation was never recorded,
 * guarded by the absence of `scoring`); a lost race with another delivery is a duplicate, never an overwrite.
 */
async function settle(
  study: StackRecord,
  to: "scored" | "rejected" | "failed",
  fields: Partial<StackRecord>,
  outcome: RecordScoreOutcome,
  deps: RecordScoreDeps,
  logFields: Record<string, unknown>,
): Promise<RecordScoreOutcome> {
  const from = study.status === "failed" ? "failed" : "received";
  const moved = await deps.records.transition(study.stackId, from, to, fields, deps.now(), { uninvoked: from === "failed" });
  if (!moved) {
    deps.log.info("study already settled by another delivery", { studyId: study.stackId });
    return "duplicate";
  }
  if (to === "rejected" && fields.rejection) deps.count?.(INTAKE_METRICS.studiesRefused, 1, fields.rejection.code);
  // A study ingest had recorded failed was counted then; its late failure result does not count it again.
  if (to === "failed" && from !== "failed" && fields.lastError) deps.count?.(INTAKE_METRICS.studiesFailed, 1, fields.lastError.code);
  if (to === "scored") deps.log.info(`study ${outcome}`, { studyId: study.stackId, ...logFields });
  else deps.log.warn(`study ${outcome}`, { studyId: study.stackId, ...logFields });
  return outcome;
}
