/** Fakes implementing the ports (records, objects, scoring, mail) (so they cannot drift from the real adapters), for handler tests. */

import type { MaskRefusal } from "../../lambdas/contracts/masks.js";
import type {
  Completion,
  InvokeClaim,
  LastError,
  ModelInService,
  NotificationMark,
  Prediction,
  RoundAssignment,
  RoundStatus,
  ScoringInvocation,
  SelectionRound,
  StackRecord,
  StackStatus,
} from "../../lambdas/contracts/records.js";
import type { ScoringRequest, ScoringResult } from "../../lambdas/contracts/scoring.js";
import type { ObjectHead, ObjectVersion, StudyObjects } from "../../lambdas/domain/ingest.js";
import type { Mailer, OutgoingMail } from "../../lambdas/domain/mailer.js";
import type { MaskObjects } from "../../lambdas/domain/masks.js";
import type { RecordStore, RoundFailureFields } from "../../lambdas/domain/record-store.js";
import type { AsyncInvocation, ScoringEndpoint } from "../../lambdas/domain/scoring-endpoint.js";
import { fixtureMaskBytes, fixtureUploadKey } from "./round-fixtures.js";

/** Counts invokeAsync calls; `failNext(n)` makes the next n calls throw a throttling error. */
export class CountingScoringEndpoint implements ScoringEndpoint {
  readonly calls: string[] = [];
  private failures = 0;

  failNext(times: number): void {
    this.failures = times;
  }

  invoke(_request: ScoringRequest): Promise<ScoringResult> {
    return Promise.reject(new Error("synchronous scoring is not used by ingest"));
  }

  async invokeAsync(inputLocation: string): Promise<AsyncInvocation> {
    await new Promise((resolve) => setTimeout(resolve, 5)); // widen the race window for concurrent deliveries
    if (this.failures > 0) {
      this.failures--;
      const error = new Error("Rate exceeded");
      error.name = "ThrottlingException";
      throw error;
    }
    this.calls.push(inputLocation);
    const n = this.calls.length;
    return { inferenceId: `inference-${n}`, outputLocation: `s3://studies/async-out/${n}.out`, failureLocation: undefined };
  }
}

/** In-memory records with the same conditional semantics as DynamoRecordStore. */
export class InMemoryRecordStore implements RecordStore {
  readonly items = new Map<string, StackRecord>();
  readonly rounds = new Map<string, SelectionRound>();
  /** Content key → the stack that claimed it first. */
  readonly contents = new Map<string, string>();

  async createStackWithContent(record: StackRecord & { contentSha256: string }): Promise<string> {
    const holder = this.contents.get(record.contentSha256);
    if (holder !== undefined) return holder;
    if (this.items.has(record.stackId)) return record.stackId;
    this.contents.set(record.contentSha256, record.stackId);
    this.items.set(record.stackId, structuredClone(record));
    return record.stackId;
  }

  async createRound(round: SelectionRound): Promise<boolean> {
    if (this.rounds.has(round.roundId)) return false;
    this.rounds.set(round.roundId, structuredClone(round));
    return true;
  }

  async getRound(roundId: string): Promise<SelectionRound | undefined> {
    const round = this.rounds.get(roundId);
    return round ? structuredClone(round) : undefined;
  }

  async completeRound(round: SelectionRound): Promise<boolean> {
    if (this.rounds.get(round.roundId)?.status !== "selecting") return false;
    this.rounds.set(round.roundId, structuredClone(round));
    return true;
  }

  async createStack(record: StackRecord): Promise<boolean> {
    if (this.items.has(record.stackId)) return false;
    this.items.set(record.stackId, structuredClone(record));
    return true;
  }

  async getStack(stackId: string): Promise<StackRecord | undefined> {
    const record = this.items.get(stackId);
    return record ? structuredClone(record) : undefined;
  }

  async listByStatus(status: StackStatus): Promise<StackRecord[]> {
    return [...this.items.values()].filter((r) => r.status === status).sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
  }

  async transition(
    stackId: string,
    from: StackStatus,
    to: StackStatus,
    fields: Partial<StackRecord>,
    now: string,
    guard: { readonly uninvoked?: boolean } = {},
  ): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== from) return false;
    if (guard.uninvoked && record.scoring !== undefined) return false;
    this.items.set(stackId, { ...record, ...fields, status: to, updatedAt: now });
    return true;
  }

  async repredict(stackId: string, prediction: Prediction, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== "pending") return false;
    if (record.prediction && record.prediction.timeModelVersion >= prediction.timeModelVersion) return false;
    this.items.set(stackId, { ...record, prediction, updatedAt: now });
    return true;
  }

  async claimInvocation(stackId: string, claim: InvokeClaim, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (!record || (record.status !== "received" && record.status !== "failed") || record.scoring) return false;
    if (record.invokeClaim && record.invokeClaim.expiresAt > now) return false;
    this.items.set(stackId, { ...record, status: "received", invokeClaim: claim, updatedAt: now });
    return true;
  }

  async completeInvocation(stackId: string, token: string, scoring: ScoringInvocation, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (!record || record.invokeClaim?.token !== token || record.scoring) return false;
    const { invokeClaim: _claim, lastError: _error, ...rest } = record;
    this.items.set(stackId, { ...rest, scoring, updatedAt: now });
    return true;
  }

  async releaseInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (!record || record.invokeClaim?.token !== token) return false;
    const { invokeClaim: _claim, ...rest } = record;
    this.items.set(stackId, { ...rest, lastError: error, updatedAt: now });
    return true;
  }

  async failInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== "received" || record.invokeClaim?.token !== token || record.scoring) return false;
    const { invokeClaim: _claim, ...rest } = record;
    this.items.set(stackId, { ...rest, status: "failed", lastError: error, updatedAt: now });
    return true;
  }

  readonly notifications = new Map<string, NotificationMark>();

  async reclaimRound(round: SelectionRound): Promise<boolean> {
    if (this.rounds.get(round.roundId)?.status !== "failed") return false;
    this.rounds.set(round.roundId, structuredClone(round));
    return true;
  }

  async recordRoundFailure(roundId: string, expected: RoundStatus, fields: RoundFailureFields): Promise<boolean> {
    const round = this.rounds.get(roundId);
    if (round?.status !== expected) return false;
    this.rounds.set(roundId, { ...round, ...fields });
    return true;
  }

  async releaseSelection(stackId: string, roundId: string, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (this.rounds.get(roundId)?.status !== "failed") return false;
    if (record?.status !== "selected" || record.selectedBy !== roundId) return false;
    const { selectedBy: _by, assignedTo: _to, ...rest } = record;
    this.items.set(stackId, { ...rest, status: "pending", updatedAt: now });
    return true;
  }

  async assignRound(roundId: string, assignment: RoundAssignment): Promise<boolean> {
    const round = this.rounds.get(roundId);
    if (round?.status !== "completed" || round.assignment) return false;
    this.rounds.set(roundId, { ...round, assignment: structuredClone(assignment) });
    return true;
  }

  async assignStack(stackId: string, roundId: string, annotator: string, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== "selected" || record.selectedBy !== roundId) return false;
    if (record.assignedTo !== undefined && record.assignedTo !== annotator) return false;
    this.items.set(stackId, { ...record, assignedTo: annotator, updatedAt: now });
    return true;
  }

  async completeStack(stackId: string, completion: Completion, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== "selected" || record.assignedTo !== completion.annotator) return false;
    this.items.set(stackId, { ...record, status: "labeled", completion: structuredClone(completion), updatedAt: now });
    return true;
  }

  modelInService: ModelInService | undefined;

  async getModelInService(): Promise<ModelInService | undefined> {
    return structuredClone(this.modelInService);
  }

  async claimModelInService(model: ModelInService): Promise<ModelInService> {
    this.modelInService ??= structuredClone(model);
    return structuredClone(this.modelInService);
  }

  async promoteModel(next: ModelInService, expectedSequence: number): Promise<boolean> {
    if (this.modelInService?.sequence !== expectedSequence) return false;
    this.modelInService = structuredClone(next);
    return true;
  }

  async rescoreStack(stackId: string, fields: Pick<StackRecord, "scores" | "prediction" | "geometry">, now: string): Promise<boolean> {
    const record = this.items.get(stackId);
    if (record?.status !== "pending" || record.scores?.modelVersion === fields.scores?.modelVersion) return false;
    const { scores, prediction, geometry } = structuredClone(fields);
    this.items.set(stackId, { ...record, scores, prediction, ...(geometry ? { geometry } : {}), updatedAt: now });
    return true;
  }

  readonly maskRefusals = new Map<string, MaskRefusal>();

  async recordMaskRefusal(stackId: string, uploadId: string, refusal: MaskRefusal): Promise<void> {
    this.maskRefusals.set(`${stackId}/${uploadId}`, structuredClone(refusal));
  }

  async listMaskRefusals(stackId: string): Promise<MaskRefusal[]> {
    return [...this.maskRefusals.entries()]
      .filter(([key]) => key.startsWith(`${stackId}/`))
      .map(([, refusal]) => structuredClone(refusal))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  async claimNotification(mark: NotificationMark): Promise<boolean> {
    const key = `${mark.roundId}/${mark.annotator}`;
    if (this.notifications.has(key)) return false;
    this.notifications.set(key, structuredClone(mark));
    return true;
  }

  async markNotificationSent(roundId: string, annotator: string, token: string, messageId: string, sentAt: string): Promise<boolean> {
    const mark = this.notifications.get(`${roundId}/${annotator}`);
    if (mark?.status !== "sending" || mark.token !== token) return false;
    this.notifications.set(`${roundId}/${annotator}`, { ...mark, status: "sent", messageId, sentAt });
    return true;
  }

  async releaseNotification(roundId: string, annotator: string, token: string): Promise<boolean> {
    const mark = this.notifications.get(`${roundId}/${annotator}`);
    if (mark?.status !== "sending" || mark.token !== token) return false;
    this.notifications.delete(`${roundId}/${annotator}`);
    return true;
  }

  async getNotification(roundId: string, annotator: string): Promise<NotificationMark | undefined> {
    const mark = this.notifications.get(`${roundId}/${annotator}`);
    return mark ? structuredClone(mark) : undefined;
  }
}

/**
 * Objects by `key@version` (as S3 keeps versions); copies, deletions and JSON writes are recorded. A copy
 * of a version that is not in `heads` answers false (S3's 404); deleting a version removes it from `heads`
 * (deleting one already gone succeeds, as S3's does). `failDeletes` makes the next n deletions throw.
 */
export class InMemoryStudyObjects implements StudyObjects {
  readonly heads = new Map<string, ObjectHead>();
  readonly copies: { from: ObjectVersion; to: string }[] = [];
  readonly deletions: ObjectVersion[] = [];
  readonly json = new Map<string, unknown>();
  failHeadFor: string | undefined;
  failDeletes = 0;

  async head(object: ObjectVersion): Promise<ObjectHead | undefined> {
    if (object.key === this.failHeadFor) {
      const error = new Error("We encountered an internal error. Please try again.");
      error.name = "InternalError";
      throw error;
    }
    return this.heads.get(`${object.key}@${object.versionId}`);
  }

  async copyVersion(object: ObjectVersion, destinationKey: string): Promise<boolean> {
    if (!this.heads.has(`${object.key}@${object.versionId}`)) return false;
    this.copies.push({ from: object, to: destinationKey });
    return true;
  }

  async deleteVersion(object: ObjectVersion): Promise<void> {
    if (this.failDeletes > 0) {
      this.failDeletes--;
      const error = new Error("We encountered an internal error. Please try again.");
      error.name = "InternalError";
      throw error;
    }
    this.deletions.push(object);
    this.heads.delete(`${object.key}@${object.versionId}`);
  }

  async putJson(bucket: string, key: string, body: unknown): Promise<void> {
    this.json.set(`${bucket}/${key}`, body);
  }
}

/**
 * A study record as a delivery that died after taking its invoke claim leaves it: `received`, not scored,
 * holding the claim `token` until `expiresAt` (lapsed or live, as the test needs).
 */
export function claimedStudy(
  stackId: string,
  source: { bucket: string; key: string; versionId: string },
  at: string,
  claim: { token: string; expiresAt: string },
): StackRecord {
  return { stackId, kind: "study", status: "received", source, receivedAt: at, updatedAt: at, invokeClaim: claim };
}

/** A real S3 event notification body as AWS documents it (key encoded like S3: URL-encoding, `+` for space). */
export function s3EventBody(bucket: string, key: string, versionId: string | undefined, size = 1): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: "us-east-1",
        eventTime: "2026-11-26T12:00:00.000Z",
        eventName: "ObjectCreated:Put",
        userIdentity: { principalId: "AWS:AIDAEXAMPLE" },
        requestParameters: { sourceIPAddress: "127.0.0.1" },
        responseElements: { "x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE" },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: "ingest",
          bucket: { name: bucket, ownerIdentity: { principalId: "EXAMPLE" }, arn: `arn:aws:s3:::${bucket}` },
          object: {
            key: encodeURIComponent(key).replace(/%20/g, "+"),
            size,
            eTag: "0123456789abcdef0123456789abcdef",
            ...(versionId ? { versionId } : {}),
            sequencer: "0A1B2C3D4E5F678901",
          },
        },
      },
    ],
  });
}

/**
 * An SQS event (as the event source mapping delivers it) from message bodies; ids are `m0`, `m1`, … unless
 * given; every message carries `receiveCount` as its ApproximateReceiveCount (default 1: a first delivery).
 */
export function sqsEvent(bodies: string[], ids?: string[], receiveCount = 1) {
  return {
    Records: bodies.map((body, i) => ({
      messageId: ids?.[i] ?? `m${i}`,
      receiptHandle: `rh-${i}`,
      body,
      attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: "1764158400000" },
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:ingest",
      awsRegion: "us-east-1",
    })),
  };
}

/** A Lambda context good enough for middy (no getRemainingTimeInMillis: no early timeout). */
export const lambdaContext = {
  functionName: "ingest",
  awsRequestId: "test",
} as never;

/** Records every message; `failFor` makes sends to that address throw (a named SES-like error). */
export class RecordingMailer implements Mailer {
  readonly sent: (OutgoingMail & { messageId: string })[] = [];
  readonly failFor = new Set<string>();

  async send(mail: OutgoingMail): Promise<{ messageId: string }> {
    if (this.failFor.has(mail.to)) {
      const error = new Error("Mail service temporarily unavailable");
      error.name = "TooManyRequestsException";
      throw error;
    }
    const messageId = `message-${this.sent.length + 1}`;
    this.sent.push({ ...mail, messageId });
    return { messageId };
  }
}

/** Mask objects in memory; `presignPut` answers a `memory://` URL that names what it signed. */
export class InMemoryMaskObjects implements MaskObjects {
  readonly objects = new Map<string, Uint8Array>();

  /** Holding a good fixture upload (upload 1: fixtureMaskBytes) of each stack. */
  static holdingUploads(...stackIds: string[]): InMemoryMaskObjects {
    const masks = new InMemoryMaskObjects();
    for (const stackId of stackIds) masks.objects.set(fixtureUploadKey(stackId), fixtureMaskBytes());
    return masks;
  }
  readonly presigned: { key: string; contentType: string; bytes: number; expiresInSeconds: number }[] = [];

  async presignPut(key: string, contentType: string, bytes: number, expiresInSeconds: number): Promise<string> {
    this.presigned.push({ key, contentType, bytes, expiresInSeconds });
    return `https://memory.invalid/${key}?bytes=${bytes}`;
  }

  async get(key: string, maxBytes: number): ReturnType<MaskObjects["get"]> {
    const body = this.objects.get(key);
    if (!body) return { kind: "missing" };
    if (body.byteLength > maxBytes) return { kind: "tooLarge", bytes: body.byteLength };
    return { kind: "object", body: body.slice() };
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    this.objects.set(key, body.slice());
  }
}
