/**
 * The ingest core: from one S3 event notification (an SQS message body) to exactly one study record
 * and at most one asynchronous scoring request per uploaded object version. Talks to AWS only
 * through ports (RecordStore, StudyObjects, ScoringEndpoint); the clock and claim tokens are passed in.
 *
 * Exactly once, step by step (idempotency key = bucket + decoded key + versionId → studyId):
 * 1. A record that already has `scoring`, or is neither `received` nor `failed` (rejected, scored, …),
 *    ends the delivery: it is a duplicate. (`failed` without `scoring` is a study whose last delivery
 *    could not invoke scoring, see 4: a re-driven message retries it.) A `rejected` record that names
 *    a quarantined copy has its original version deleted again (idempotent; domain/quarantine.ts).
 * 2. No record yet: HeadObject that version. Not scorable → move it to quarantine: copy that version to
 *    `quarantine/<code>/<studyId>/…`, create the record as `rejected` with the reason code and the
 *    copy's key, then delete the original version (the order that makes it crash-safe is argued in
 *    domain/quarantine.ts); never scored. Scorable →
 *    create the record as `received` (conditional put: one winner, losers carry on to step 3 too,
 *    which is what makes the crash window safe).
 * 3. Claim the invocation: a conditional update that succeeds only for a `received` (or `failed`)
 *    record without `scoring` and without an unexpired claim, and leaves it `received`. Of N
 *    concurrent deliveries exactly one wins; the others re-read the record: `scoring` present →
 *    duplicate, done; else the delivery fails with InvocationInProgressError so SQS redelivers it
 *    later (never acknowledged while nobody has invoked).
 * 4. The winner writes the scoring request JSON at a deterministic key (the study, its version, the
 *    overlay prefix, and the institution's K and thresholds), calls invokeAsync once, and records
 *    `scoring` only while it still holds the claim. If writing the request or invokeAsync throws, it
 *    releases the claim with `lastError` and the delivery fails (retried); the redelivery claims and
 *    invokes. On the last delivery before the DLQ (SQS ApproximateReceiveCount ≥ the queue's
 *    maxReceiveCount) it records the study `failed` with that `lastError` instead, so the study ends
 *    visibly; the delivery still fails, the message lands in the DLQ, and a re-drive claims it again.
 * 5. Crash between the put of step 2 and the invoke: the record stays `received` with no `scoring`;
 *    the redelivery finds the lapsed claim (or none) and completes step 3–4. The claim lease
 *    (INVOKE_CLAIM_SECONDS) is ≥ the Lambda timeout, so a live holder is never overtaken, and ≤ the
 *    queue's visibility timeout, so a crashed holder's redelivery finds the lease lapsed.
 * The one window left: a crash after invokeAsync returned and before `scoring` was written. The
 * redelivery then invokes again (at-least-once is all an external call allows); both requests read
 * the same object version from the same request JSON, and record-score advances the record only
 * once (conditional `received → scored`), so the duplicate costs one scoring run, never a second record.
 */
import { createHash } from "node:crypto";
import { S3EventNotificationSchema, type S3EventRecord, S3TestEventSchema } from "../contracts/events.js";
import { INTAKE_METRICS, type IntakeCounter } from "../contracts/metrics.js";
import type { LastError, StackRecord, StackSource } from "../contracts/records.js";
import { type ScoringRequest, ScoringRequestSchema } from "../contracts/scoring.js";
import { STUDIES_BUCKET } from "../contracts/studies-bucket.js";
import { DomainError } from "./errors.js";
import { copyToQuarantine, finishQuarantine, type ObjectVersion, type QuarantineObjects } from "./quarantine.js";
import type { RecordStore } from "./record-store.js";
import type { ScoringEndpoint } from "./scoring-endpoint.js";
import { ScoringRejectedError } from "./scoring-endpoint.js";

const UPLOADS_PREFIX = STUDIES_BUCKET.uploadsPrefix;
export const SCORING_REQUESTS_PREFIX = "scoring-requests/";
export const OVERLAYS_PREFIX = "overlays/";

/** Extensions the scoring container reads (DICOM zip or file, NIfTI, npz); matched case-insensitively. */
export const SUPPORTED_EXTENSIONS = [".zip", ".dcm", ".nii", ".nii.gz", ".npz"] as const;
/** Content types accepted beside a supported extension (generic binary types and the formats' own). */
export const SUPPORTED_CONTENT_TYPES = new Set([
  "binary/octet-stream",
  "application/octet-stream",
  "application/zip",
  "application/x-zip-compressed",
  "application/dicom",
  "application/gzip",
  "application/x-gzip",
]);

/** Why an object is quarantined instead of scored. */
export type RejectionCode = "EMPTY_OBJECT" | "OBJECT_TOO_LARGE" | "UNSUPPORTED_TYPE" | "OBJECT_NOT_FOUND";

/** Base of the ingest core's errors. */
export class IngestError extends DomainError {}

/**
 * A message that can never be ingested as it is (not an S3 event, no versionId, bad key encoding,
 * foreign bucket). Retrying gives the same answer: it is reported failed and reaches the DLQ after
 * the queue's maxReceiveCount, where an operator can inspect and re-drive it.
 */
export class MalformedMessageError extends IngestError {
  constructor(
    /** Machine-readable: NOT_JSON, NOT_S3_EVENT, MISSING_VERSION_ID, BAD_KEY_ENCODING, FOREIGN_BUCKET. */
    readonly code: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed message (${code}): ${detail}`, options);
  }
}

/** Another delivery holds the invocation claim and has not recorded `scoring` yet: retry later. */
export class InvocationInProgressError extends IngestError {}

/** An S3 object version named by an event, key decoded. */
export type { ObjectVersion } from "./quarantine.js";

/** What HeadObject says about one object version. */
export interface ObjectHead {
  sizeBytes: number;
  contentType: string | undefined;
}

/** Port for the studies bucket (with the quarantine moves' copy and delete); the S3 adapter implements it. */
export interface StudyObjects extends QuarantineObjects {
  /** The version's size and content type, or undefined when that version does not exist. */
  head(object: ObjectVersion): Promise<ObjectHead | undefined>;
  /** Writes a JSON document (idempotent for the same body). */
  putJson(bucket: string, key: string, body: unknown): Promise<void>;
}

/** Structured logger: fields only, never object keys or other identifiers from a study. */
export interface IngestLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface IngestConfig {
  studiesBucket: string;
  maxObjectBytes: number;
  claimSeconds: number;
  /** The ingest queue's redrive maxReceiveCount: a delivery received this often is the last before the DLQ. */
  maxReceiveCount: number;
  /** K sent with every scoring request (the institution config's `topK`). */
  topK: number;
  /** Heatmap thresholds sent with every scoring request (the institution config's `thresholds`). */
  thresholds: readonly number[];
  /**
   * Private creators whose private DICOM elements the container's PHI check lets pass (the institution config's
   * `deidentification.allowedPrivateCreators`); sent when non-empty (absent, the container allows none).
   */
  allowedPrivateCreators?: readonly string[];
}

/** The scoring request of one study version (also what a re-score sends: domain/rescore.ts). */
export function scoringRequestFor(
  studyId: string,
  object: ObjectVersion,
  config: Pick<IngestConfig, "studiesBucket" | "topK" | "thresholds" | "allowedPrivateCreators">,
): ScoringRequest {
  return ScoringRequestSchema.parse({
    input: `s3://${object.bucket}/${object.key}`,
    versionId: object.versionId,
    overlayPrefix: `s3://${config.studiesBucket}/${OVERLAYS_PREFIX}${studyId}/`,
    topK: config.topK,
    thresholds: [...config.thresholds],
    ...(config.allowedPrivateCreators?.length ? { allowedPrivateCreators: [...config.allowedPrivateCreators] } : {}),
  });
}

/** What SQS says about one delivery of a message. */
export interface Delivery {
  /** ApproximateReceiveCount (1 on the first delivery); undefined when SQS did not say. */
  receiveCount?: number;
}

export interface IngestDeps {
  records: RecordStore;
  objects: StudyObjects;
  scoring: ScoringEndpoint;
  config: IngestConfig;
  /** ISO-8601 UTC timestamp of "now" (e.g. `() => new Date().toISOString()`). */
  now: () => string;
  /** A fresh unique claim token (e.g. `randomUUID`). */
  newToken: () => string;
  log: IngestLog;
  /** Counts received, refused (by code) and failed studies (contracts/metrics.ts); none when absent. */
  count?: IntakeCounter;
}

/** What happened to one S3 event record. */
export type IngestOutcome = "ignored" | "duplicate" | "rejected" | "invoked";

/**
 * Decodes an S3 event key: URL-encoded with `+` for space (so a literal `+` arrives as `%2B`);
 * some emitters also encode `/` as `%2F`, which decodeURIComponent restores.
 * @throws MalformedMessageError (BAD_KEY_ENCODING) for an invalid percent sequence
 */
export function decodeS3Key(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, " "));
  } catch (error) {
    throw new MalformedMessageError("BAD_KEY_ENCODING", "object key is not valid URL encoding", { cause: error });
  }
}

/** The study id: first 32 hex digits of sha256(bucket, key, versionId), stable across deliveries. */
export function studyIdOf(object: ObjectVersion): string {
  return createHash("sha256")
    .update(JSON.stringify([object.bucket, object.key, object.versionId]))
    .digest("hex")
    .slice(0, 32);
}

/** A parsed message: S3's test event, or the object versions it announces (created under uploads/). */
export type ParsedMessage = { kind: "test" } | { kind: "objects"; objects: ObjectVersion[]; ignored: number };

/**
 * Parses one SQS message body as an S3 event notification. Records other than `ObjectCreated:*` and
 * keys outside `uploads/` (or folder markers ending in `/`) are counted as ignored.
 * @throws MalformedMessageError when the body is not an S3 event, a created object has no versionId
 * (the bucket is versioned, so that is a misconfiguration), or a key is badly encoded
 */
export function parseS3Message(body: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new MalformedMessageError("NOT_JSON", `body is not JSON (${body.length} characters)`, { cause: error });
  }
  if (S3TestEventSchema.safeParse(json).success) return { kind: "test" };
  const parsed = S3EventNotificationSchema.safeParse(json);
  if (!parsed.success) {
    const paths = parsed.error.issues.map((issue) => issue.path.join(".") || "(root)");
    throw new MalformedMessageError("NOT_S3_EVENT", `not an S3 event notification (fields: ${[...new Set(paths)].join(", ")})`, {
      cause: parsed.error,
    });
  }
  const objects: ObjectVersion[] = [];
  let ignored = 0;
  for (const record of parsed.data.Records) {
    const object = createdUpload(record);
    if (object) objects.push(object);
    else ignored++;
  }
  return { kind: "objects", objects, ignored };
}

function createdUpload(record: S3EventRecord): ObjectVersion | undefined {
  if (!record.eventName.startsWith("ObjectCreated:")) return undefined;
  const key = decodeS3Key(record.s3.object.key);
  if (!key.startsWith(UPLOADS_PREFIX) || key.endsWith("/")) return undefined;
  const versionId = record.s3.object.versionId;
  if (!versionId) throw new MalformedMessageError("MISSING_VERSION_ID", "created object has no versionId; the bucket must be versioned");
  return { bucket: record.s3.bucket.name, key, versionId };
}

/** The rejection code for an object that must not be scored, or undefined when it may be. */
export function rejectionFor(key: string, head: ObjectHead, maxObjectBytes: number): RejectionCode | undefined {
  if (head.sizeBytes <= 0) return "EMPTY_OBJECT";
  if (head.sizeBytes > maxObjectBytes) return "OBJECT_TOO_LARGE";
  const lower = key.toLowerCase();
  if (!SUPPORTED_EXTENSIONS.some((ext) => lower.endsWith(ext))) return "UNSUPPORTED_TYPE";
  const contentType = head.contentType?.split(";")[0]?.trim().toLowerCase();
  if (contentType && !SUPPORTED_CONTENT_TYPES.has(contentType)) return "UNSUPPORTED_TYPE";
  return undefined;
}

const REJECTION_REASONS: Record<RejectionCode, string> = {
  EMPTY_OBJECT: "the uploaded object is empty",
  OBJECT_TOO_LARGE: "the uploaded object is larger than the configured maximum",
  UNSUPPORTED_TYPE: "not a DICOM zip/file, NIfTI or npz object (extension or content type)",
  OBJECT_NOT_FOUND: "the object version named by the event no longer exists",
};

/** Processes one SQS message body; throws to have that message (only) retried. */
export async function ingestMessage(body: string, deps: IngestDeps, delivery: Delivery = {}): Promise<IngestOutcome[]> {
  const message = parseS3Message(body);
  if (message.kind === "test") {
    deps.log.info("s3 test event acknowledged");
    return [];
  }
  const outcomes: IngestOutcome[] = Array.from({ length: message.ignored }, () => "ignored" as const);
  for (const object of message.objects) outcomes.push(await ingestObject(object, deps, delivery));
  return outcomes;
}

/** Ingests one uploaded object version (see the header for the exactly-once argument). */
export async function ingestObject(object: ObjectVersion, deps: IngestDeps, delivery: Delivery = {}): Promise<IngestOutcome> {
  const { records, config, log } = deps;
  if (object.bucket !== config.studiesBucket) {
    throw new MalformedMessageError("FOREIGN_BUCKET", "event names a bucket other than the configured studies bucket");
  }
  const studyId = studyIdOf(object);
  const existing = await records.getStack(studyId);
  if (existing && isSettled(existing)) {
    const quarantined = await finishQuarantine(deps.objects, existing);
    log.info("duplicate delivery", { studyId, status: existing.status, ...(quarantined ? { quarantined } : {}) });
    return "duplicate";
  }
  if (!existing) {
    const head = await deps.objects.head(object);
    const code = head ? rejectionFor(object.key, head, config.maxObjectBytes) : "OBJECT_NOT_FOUND";
    if (code) return reject(studyId, object, code, deps);
    const now = deps.now();
    const created = await records.createStack({
      stackId: studyId,
      kind: "study",
      status: "received",
      source: sourceOf(object),
      receivedAt: now,
      updatedAt: now,
    });
    log.info(created ? "study received" : "study already received", { studyId });
    if (created) deps.count?.(INTAKE_METRICS.studiesReceived);
  }
  return invokeOnce(studyId, object, deps, delivery);
}

/**
 * Nothing left for ingest to do: scoring was requested, or the study moved on (rejected, scored, …).
 * A `failed` study without `scoring` is not settled: its last delivery could not invoke, a re-drive retries.
 */
function isSettled(record: StackRecord): boolean {
  return record.scoring !== undefined || (record.status !== "received" && record.status !== "failed");
}

/** True when SQS will not deliver this message again (it goes to the DLQ if this delivery fails). */
export function isLastDelivery(delivery: Delivery, maxReceiveCount: number): boolean {
  return delivery.receiveCount !== undefined && delivery.receiveCount >= maxReceiveCount;
}

function sourceOf(object: ObjectVersion): StackSource {
  return { bucket: object.bucket, key: object.key, versionId: object.versionId };
}

/** Moves a refused version to quarantine: copy, record `rejected` (naming the copy), delete the original version. */
async function reject(studyId: string, object: ObjectVersion, code: RejectionCode, deps: IngestDeps): Promise<IngestOutcome> {
  // Undefined for OBJECT_NOT_FOUND, or when the version vanished between HeadObject and the copy.
  const quarantineKey = code === "OBJECT_NOT_FOUND" ? undefined : await copyToQuarantine(deps.objects, object, code, studyId);
  const now = deps.now();
  const created = await deps.records.createStack({
    stackId: studyId,
    kind: "study",
    status: "rejected",
    source: sourceOf(object),
    receivedAt: now,
    updatedAt: now,
    rejection: { code, reason: REJECTION_REASONS[code], ...(quarantineKey ? { quarantineKey } : {}) },
  });
  // Only the delivery whose record names the copy deletes the original; a crash before this line leaves
  // that record, and the event's redelivery deletes it (step 1 of the header).
  if (created && quarantineKey) await deps.objects.deleteVersion(object);
  if (created) deps.count?.(INTAKE_METRICS.studiesRefused, 1, code);
  deps.log.warn(created ? "study rejected" : "study already recorded", { studyId, code, quarantined: quarantineKey !== undefined });
  return created ? "rejected" : "duplicate";
}

async function invokeOnce(studyId: string, object: ObjectVersion, deps: IngestDeps, delivery: Delivery): Promise<IngestOutcome> {
  const { records, config, log } = deps;
  const token = deps.newToken();
  const now = deps.now();
  const expiresAt = new Date(Date.parse(now) + config.claimSeconds * 1000).toISOString();
  if (!(await records.claimInvocation(studyId, { token, expiresAt }, now))) {
    const current = await records.getStack(studyId);
    if (current && isSettled(current)) {
      log.info("duplicate delivery", { studyId, status: current.status });
      return "duplicate";
    }
    throw new InvocationInProgressError(`study ${studyId}: another delivery holds the scoring claim`);
  }
  const requestKey = `${SCORING_REQUESTS_PREFIX}${studyId}.json`;
  const requestLocation = `s3://${config.studiesBucket}/${requestKey}`;
  let accepted = false;
  try {
    const request = scoringRequestFor(studyId, object, config);
    await deps.objects.putJson(config.studiesBucket, requestKey, request);
    const invocation = await deps.scoring.invokeAsync(requestLocation);
    accepted = true;
    const recorded = await records.completeInvocation(
      studyId,
      token,
      {
        requestLocation,
        inferenceId: invocation.inferenceId,
        outputLocation: invocation.outputLocation,
        ...(invocation.failureLocation ? { failureLocation: invocation.failureLocation } : {}),
        invokedAt: deps.now(),
      },
      deps.now(),
    );
    if (!recorded) log.warn("scoring claim lapsed before the invocation was recorded", { studyId });
    log.info("scoring requested", { studyId, inferenceId: invocation.inferenceId });
    return "invoked";
  } catch (error) {
    if (error instanceof ScoringRejectedError) {
      log.warn("scoring refused the request", { studyId, code: error.code, status: error.status });
    }
    // The last delivery, and the endpoint never accepted the request: no result will ever come, so the
    // study ends `failed` (a re-drive can still retry it). Once accepted, the result settles the study.
    if (!accepted && isLastDelivery(delivery, config.maxReceiveCount)) {
      await failStudy(studyId, token, error, delivery, deps);
    } else {
      // If even the release fails, the claim lapses after claimSeconds and the redelivery takes over.
      await records.releaseInvocation(studyId, token, lastErrorOf(error, deps.now()), deps.now()).catch((releaseError: unknown) => {
        log.warn("could not release the scoring claim", { studyId, error: releaseError instanceof Error ? releaseError.name : "unknown" });
      });
    }
    throw error;
  }
}

/** Records `received → failed` after the last delivery's invocation failed; the caller still fails the delivery. */
async function failStudy(studyId: string, token: string, error: unknown, delivery: Delivery, deps: IngestDeps): Promise<void> {
  const { records, config, log } = deps;
  const receiveCount = delivery.receiveCount;
  const prefix = `scoring request failed on the last delivery (${receiveCount} of ${config.maxReceiveCount}); the upload event goes to the ingest DLQ for re-drive: `;
  const lastError = lastErrorOf(error, deps.now(), prefix);
  const failed = await records.failInvocation(studyId, token, lastError, deps.now()).catch((failError: unknown) => {
    // The claim then lapses after claimSeconds; the record stays `received` with its previous lastError.
    log.warn("could not record the study failed", { studyId, error: failError instanceof Error ? failError.name : "unknown" });
    return undefined;
  });
  if (failed) {
    deps.count?.(INTAKE_METRICS.studiesFailed, 1, lastError.code);
    log.warn("study failed: scoring request failed on the last delivery", {
      studyId,
      error: lastError.code,
      receiveCount,
      maxReceiveCount: config.maxReceiveCount,
    });
  } else if (failed === false) {
    log.warn("scoring claim lapsed before the study could be recorded failed", { studyId });
  }
}

function lastErrorOf(error: unknown, at: string, prefix = ""): LastError {
  const named = error instanceof Error ? error : new Error(String(error));
  // The message of an SDK or scoring error names services and codes, not object keys; cap its length.
  return { code: named.name || "Error", message: `${prefix}${named.message}`.slice(0, 300), at };
}
