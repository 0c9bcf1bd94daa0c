/**
 * The record-score handler end to end against moto server with the real SDK v3 clients and adapters:
 * a study record as ingest leaves it (`received` with `scoring`), the container's result / failure JSON
 * in the studies bucket, and SageMaker's async-inference notifications in SNS envelopes as SQS delivers
 * them (raw message delivery off). Success, duplicates, 4xx rejection (the upload moved to quarantine:
 * copied version-exactly, its original version deleted), 5xx failure, malformed messages, and the newest
 * TIMEMODEL version.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { S3StudyObjects } from "../../lambdas/adapters/s3-study-objects.js";
import { type StackRecord, TimeModelVersionSchema } from "../../lambdas/contracts/records.js";
import { recordKeys } from "../../lambdas/contracts/records-table.js";
import type { ScoringFailure, ScoringResult } from "../../lambdas/contracts/scoring.js";
import { PRIOR_TIME_MODEL, predictLabelingSeconds } from "../../lambdas/domain/labeling-time-model.js";
import { createRecordScoreHandler } from "../../lambdas/handlers/record-score-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { lambdaContext, sqsEvent } from "../support/in-memory-ports.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const BUCKET = "studies";
const PLANTED = "Doe^Jane^Planted";
const STUDY = "0123456789abcdef0123456789abcdef";

let s3: S3Client;
let store: DynamoRecordStore;
let lines: string[];
let invoke: (bodies: string[]) => Promise<string[]>;

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  s3 = aws.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
  store = new DynamoRecordStore(dynamo, TABLE);
  lines = [];
  const objects = new S3StudyObjects(s3);
  const handler = createRecordScoreHandler({
    records: store,
    outputs: objects,
    objects,
    timeModels: new DynamoTimeModelStore(dynamo, TABLE),
    config: { studiesBucket: BUCKET },
    now: () => new Date().toISOString(),
    log: lambdaLogger("record-score", (line) => lines.push(line)),
  });
  invoke = async (bodies) =>
    (await handler(sqsEvent(bodies), lambdaContext)).batchItemFailures.map((f: { itemIdentifier: string }) => f.itemIdentifier);
});

/** A study record exactly as ingest leaves it after invokeAsync (its upload at `versionId`; "v1" names no real version). */
async function scoringStudy(studyId = STUDY, versionId = "v1"): Promise<StackRecord> {
  const at = "2026-11-26T11:00:00.000Z";
  const record: StackRecord = {
    stackId: studyId,
    kind: "study",
    status: "received",
    source: { bucket: BUCKET, key: `uploads/${PLANTED}.zip`, versionId },
    receivedAt: at,
    updatedAt: at,
    scoring: {
      requestLocation: `s3://${BUCKET}/scoring-requests/${studyId}.json`,
      inferenceId: `inference-${studyId}`,
      outputLocation: `s3://${BUCKET}/async-out/${studyId}.out`,
      failureLocation: `s3://${BUCKET}/async-failures/${studyId}-error.out`,
      invokedAt: at,
    },
  };
  expect(await store.createStack(record)).toBe(true);
  return record;
}

async function putJson(key: string, body: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(body), ContentType: "application/json" }));
}

function result(stacks: number): ScoringResult {
  return {
    modelVersion: "drn_d_38-w1.0-x4-abc",
    input: `s3://${BUCKET}/uploads/${PLANTED}.zip`,
    versionId: "v1",
    stacks: Array.from({ length: stacks }, (_, index) => ({
      index,
      seriesUid: `1.2.840.${index}`,
      frames: 32,
      stackUncertainty: 0.05 * (index + 1),
      topK: 8,
      boundaryLength: 250 * index,
      components: 0.5 * index,
      perThreshold: [
        { threshold: 0.3, boundaryLength: 300 * index, components: index },
        { threshold: 0.7, boundaryLength: 200 * index, components: 0 },
      ],
      stackScore: 0.9,
      frameScores: [0.1, 0.9],
      nRegions: index,
      regions: [],
      topPatches: [[1, 0, 0]],
      overlays: `s3://${BUCKET}/overlays/${STUDY}/stack-${index}.npz`,
      timings: { total: 1.5, forward: 1 },
    })),
    timings: { total: 4 },
  };
}

/** SageMaker's notification (AWS docs format) in the SNS envelope SQS receives with raw delivery off. */
function notification(status: "Completed" | "Failed", studyId = STUDY): string {
  const message = {
    awsRegion: "us-east-1",
    eventTime: "2026-11-26T12:00:00.608Z",
    receivedTime: "2026-11-26T12:00:00.455Z",
    invocationStatus: status,
    ...(status === "Failed" ? { failureReason: "ClientError: Received client error from model." } : {}),
    requestParameters: {
      contentType: "application/json",
      endpointName: "scoring",
      inputLocation: `s3://${BUCKET}/scoring-requests/${studyId}.json`,
    },
    responseParameters:
      status === "Completed"
        ? { contentType: "application/json", sentContentLength: 1234, outputLocation: `s3://${BUCKET}/async-out/${studyId}.out` }
        : { contentType: "application/json", failureLocation: `s3://${BUCKET}/async-failures/${studyId}-error.out` },
    inferenceId: `inference-${studyId}`,
    eventVersion: "1.0",
    eventSource: "aws:sagemaker",
    eventName: "InferenceResult",
  };
  return JSON.stringify({
    Type: "Notification",
    MessageId: "22222222-3333-4444-5555-666666666666",
    TopicArn: `arn:aws:sns:us-east-1:123456789012:scoring-${status === "Completed" ? "success" : "error"}`,
    Message: JSON.stringify(message),
    Timestamp: "2026-11-26T12:00:00.700Z",
    SignatureVersion: "1",
    Signature: "EXAMPLE",
    SigningCertURL: "https://sns.us-east-1.amazonaws.com/cert.pem",
    UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
  });
}

async function all(): Promise<StackRecord[]> {
  const lists = await Promise.all((["received", "pending", "scored", "rejected", "failed"] as const).map((s) => store.listByStatus(s)));
  return lists.flat();
}

describe("record-score handler on moto server (real SDK v3)", () => {
  it("records N pending stacks with the prior's predictions and moves the study to pending", async () => {
    await scoringStudy();
    await putJson(`async-out/${STUDY}.out`, result(3));
    expect(await invoke([notification("Completed")])).toEqual([]);
    const listed = await store.listByStatus("pending");
    // Only stacks are ever pending: the by-status index lists exactly the selectable pool.
    expect(listed.every((r) => r.kind === "stack")).toBe(true);
    const pending = listed.filter((r) => r.kind === "stack");
    expect(pending.map((r) => r.stackId).sort()).toEqual([0, 1, 2].map((i) => `${STUDY}-s${i}`));
    for (const [i, stack] of pending.sort((a, b) => a.stackId.localeCompare(b.stackId)).entries()) {
      const expected = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 250 * i, components: 0.5 * i });
      const { seconds, ...rest } = expected;
      expect(stack.prediction).toEqual({ ...rest, predictedSeconds: seconds, timeModelVersion: 0 });
      expect(stack.scores).toMatchObject({ boundaryLength: 250 * i, components: 0.5 * i, topK: 8, modelVersion: "drn_d_38-w1.0-x4-abc" });
      expect(stack.source).toEqual({ bucket: BUCKET, key: `uploads/${PLANTED}.zip`, versionId: "v1", seriesUid: `1.2.840.${i}` });
    }
    expect(await store.getStack(STUDY)).toMatchObject({ status: "scored", kind: "study", stackIds: pending.map((r) => r.stackId).sort() });
    expect(lines.join("\n")).not.toContain("Planted");
  });

  it.each([2, 5])(
    "the same success notification delivered %i times (in sequence and concurrently) changes nothing after the first",
    async (times) => {
      await scoringStudy();
      await putJson(`async-out/${STUDY}.out`, result(2));
      expect(await invoke([notification("Completed")])).toEqual([]);
      const before = await all();
      for (let i = 1; i < times; i++) expect(await invoke([notification("Completed")])).toEqual([]);
      const concurrent = await Promise.all(Array.from({ length: times }, () => invoke([notification("Completed")])));
      expect(concurrent.flat()).toEqual([]);
      expect(await all()).toEqual(before);
      expect(before).toHaveLength(3);
    },
  );

  it("concurrent first deliveries create each stack once", async () => {
    await scoringStudy();
    await putJson(`async-out/${STUDY}.out`, result(2));
    const rounds = await Promise.all(Array.from({ length: 5 }, () => invoke([notification("Completed")])));
    expect(rounds.flat()).toEqual([]);
    expect(await all()).toHaveLength(3);
    expect((await store.getStack(STUDY))?.status).toBe("scored");
  });

  it("rejects the study on the container's 422 PHI_PRESENT and ignores a later success", async () => {
    await scoringStudy();
    const failure: ScoringFailure = { status: 422, code: "PHI_PRESENT", reason: "identifying attribute PatientName present" };
    await putJson(`async-failures/${STUDY}-error.out`, failure);
    expect(await invoke([notification("Failed"), notification("Failed")])).toEqual([]);
    expect(await store.getStack(STUDY)).toMatchObject({
      status: "rejected",
      rejection: { code: "PHI_PRESENT", reason: "identifying attribute PatientName present" },
    });
    await putJson(`async-out/${STUDY}.out`, result(1));
    expect(await invoke([notification("Completed")])).toEqual([]);
    expect(await all()).toHaveLength(1);
    expect((await store.getStack(STUDY))?.status).toBe("rejected");
  });

  describe("a study the container refused is moved to quarantine", () => {
    const UPLOAD_KEY = `uploads/${PLANTED}.zip`;
    const BYTES = Buffer.from(`PK\u0003\u0004 a DICOM zip naming ${PLANTED}`);

    /** Uploads the study (plus a later version at the same key) and records it as ingest does; returns the refused version. */
    async function refusedUpload(): Promise<{ versionId: string; laterVersionId: string }> {
      const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: UPLOAD_KEY, Body: BYTES, ContentType: "application/zip" }));
      const later = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: UPLOAD_KEY, Body: "a later upload to the same key" }));
      if (!put.VersionId || !later.VersionId) throw new Error("the bucket is not versioned");
      await scoringStudy(STUDY, put.VersionId);
      const failure: ScoringFailure = { status: 422, code: "PHI_PRESENT", reason: "identifying attribute PatientName present" };
      await putJson(`async-failures/${STUDY}-error.out`, failure);
      return { versionId: put.VersionId, laterVersionId: later.VersionId };
    }

    async function uploadVersions(): Promise<string[]> {
      const out = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: UPLOAD_KEY }));
      return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])].filter((v) => v.Key === UPLOAD_KEY).map((v) => v.VersionId ?? "");
    }

    async function bytesAt(key: string): Promise<Buffer> {
      const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
    }

    it("copies the refused version to quarantine/<code>/<studyId>/, records the key, deletes that version (and no other)", async () => {
      const { versionId, laterVersionId } = await refusedUpload();
      expect(await invoke([notification("Failed")])).toEqual([]);
      const quarantineKey = `quarantine/PHI_PRESENT/${STUDY}/${PLANTED}.zip`;
      expect(await store.getStack(STUDY)).toMatchObject({
        status: "rejected",
        rejection: { code: "PHI_PRESENT", reason: "identifying attribute PatientName present", quarantineKey },
      });
      expect(await bytesAt(quarantineKey)).toEqual(BYTES);
      // The refused version is gone for good (no delete marker); the later upload to the same key is untouched.
      expect(await uploadVersions()).toEqual([laterVersionId]);
      expect(await uploadVersions()).not.toContain(versionId);
      expect(lines.join("\n")).not.toContain("Planted");
    });

    it("running again on the same notification changes nothing and does not fail", async () => {
      await refusedUpload();
      expect(await invoke([notification("Failed")])).toEqual([]);
      const before = await all();
      const quarantined = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: "quarantine/" }));
      for (let i = 0; i < 3; i++) expect(await invoke([notification("Failed"), notification("Failed")])).toEqual([]);
      expect(await all()).toEqual(before);
      const after = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: "quarantine/" }));
      expect(after.Versions?.map((v) => v.VersionId)).toEqual(quarantined.Versions?.map((v) => v.VersionId));
      expect(await uploadVersions()).toHaveLength(1);
    });

    it("a redelivery after a crash between the copy and the record moves it once; the copy holds the original bytes", async () => {
      const { versionId } = await refusedUpload();
      // What the crashed delivery left: the copy, no record change, the original still there.
      const quarantineKey = `quarantine/PHI_PRESENT/${STUDY}/${PLANTED}.zip`;
      await new S3StudyObjects(s3).copyVersion({ bucket: BUCKET, key: UPLOAD_KEY, versionId }, quarantineKey);
      expect((await store.getStack(STUDY))?.status).toBe("received");
      expect(await invoke([notification("Failed")])).toEqual([]);
      expect((await store.getStack(STUDY))?.rejection?.quarantineKey).toBe(quarantineKey);
      expect(await bytesAt(quarantineKey)).toEqual(BYTES);
      expect(await uploadVersions()).not.toContain(versionId);
    });

    it("a redelivery after a crash between the record and the delete deletes the original version", async () => {
      const { versionId } = await refusedUpload();
      const quarantineKey = `quarantine/PHI_PRESENT/${STUDY}/${PLANTED}.zip`;
      await new S3StudyObjects(s3).copyVersion({ bucket: BUCKET, key: UPLOAD_KEY, versionId }, quarantineKey);
      const rejection = { code: "PHI_PRESENT", reason: "identifying attribute PatientName present", quarantineKey };
      expect(await store.transition(STUDY, "received", "rejected", { rejection }, new Date().toISOString())).toBe(true);
      expect(await uploadVersions()).toContain(versionId);
      expect(await invoke([notification("Failed")])).toEqual([]);
      expect(await uploadVersions()).not.toContain(versionId);
      expect(await bytesAt(quarantineKey)).toEqual(BYTES);
      expect((await store.getStack(STUDY))?.rejection).toEqual(rejection);
    });
  });

  it("settles a study ingest recorded failed (its invoke errored on the last delivery) when SageMaker had accepted it after all", async () => {
    // The state ingest leaves through the store: received, claimed, then failInvocation (no scoring recorded).
    const at = new Date().toISOString();
    expect(
      await store.createStack({
        stackId: STUDY,
        kind: "study",
        status: "received",
        source: { bucket: BUCKET, key: `uploads/${PLANTED}.zip`, versionId: "v1" },
        receivedAt: at,
        updatedAt: at,
      }),
    ).toBe(true);
    expect(await store.claimInvocation(STUDY, { token: "t1", expiresAt: new Date(Date.now() + 60_000).toISOString() }, at)).toBe(true);
    const lastError = { code: "TimeoutError", message: "scoring request failed on the last delivery", at };
    expect(await store.failInvocation(STUDY, "t1", lastError, at)).toBe(true);
    expect(await store.getStack(STUDY)).toMatchObject({ status: "failed", lastError });
    await putJson(`async-out/${STUDY}.out`, result(2));
    expect(await invoke([notification("Completed")])).toEqual([]);
    const study = await store.getStack(STUDY);
    expect(study?.status).toBe("scored");
    expect(study?.stackIds).toHaveLength(2);
    expect(await store.listByStatus("pending")).toHaveLength(2);
    expect(lines.some((l) => l.includes("recorded failed before its invocation was confirmed"))).toBe(true);

    // A study that failed after its invocation was recorded (its own async failure) ignores a later result.
    const invoked = "fedcba9876543210fedcba9876543210";
    await scoringStudy(invoked);
    await putJson(`async-failures/${invoked}-error.out`, { status: 500, code: "INTERNAL_ERROR", reason: "model crashed" });
    expect(await invoke([notification("Failed", invoked)])).toEqual([]);
    await putJson(`async-out/${invoked}.out`, result(1));
    expect(await invoke([notification("Completed", invoked)])).toEqual([]);
    expect(await store.getStack(invoked)).toMatchObject({ status: "failed", lastError: { code: "INTERNAL_ERROR" } });
    expect(await store.listByStatus("pending")).toHaveLength(2);
  });

  it("fails the study on a 500 with the container's code, and on a failure without a failure object", async () => {
    const bare = "fedcba9876543210fedcba9876543210";
    await scoringStudy();
    await scoringStudy(bare);
    await putJson(`async-failures/${STUDY}-error.out`, { status: 500, code: "INTERNAL_ERROR", reason: "model crashed" });
    expect(await invoke([notification("Failed"), notification("Failed", bare)])).toEqual([]);
    expect(await store.getStack(STUDY)).toMatchObject({
      status: "failed",
      lastError: { code: "INTERNAL_ERROR", message: "model crashed" },
    });
    expect(await store.getStack(bare)).toMatchObject({ status: "failed", lastError: { code: "ASYNC_INFERENCE_FAILED" } });
  });

  it("reports malformed messages and a missing output in batchItemFailures, and records the good one", async () => {
    await scoringStudy();
    const late = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    await scoringStudy(late);
    await putJson(`async-out/${STUDY}.out`, result(1));
    const failed = await invoke([
      "{not json",
      notification("Completed"),
      JSON.stringify({ Type: "Notification", Message: JSON.stringify({ invocationStatus: "Completed" }) }),
      notification("Completed", late), // output object not there yet: retried
    ]);
    expect(failed).toEqual(["m0", "m2", "m3"]);
    expect((await store.getStack(STUDY))?.status).toBe("scored");
    expect((await store.getStack(late))?.status).toBe("received");
    await putJson(`async-out/${late}.out`, result(1));
    expect(await invoke([notification("Completed", late)])).toEqual([]);
    expect((await store.getStack(late))?.status).toBe("scored");
  });

  it("predicts with the newest stored TIMEMODEL version", async () => {
    const doc = DynamoDBDocumentClient.from(aws.dynamo());
    // A stored item exactly as DynamoTimeModelStore.put writes it (checked against the schema).
    const version = (v: number, gamma: number): Record<string, unknown> => ({
      ...recordKeys.timeModel(v),
      ...TimeModelVersionSchema.parse({
        version: v,
        createdAt: "2026-11-20T00:00:00.000Z",
        ...PRIOR_TIME_MODEL,
        source: "fit",
        alpha: 0.5,
        beta: 0.3,
        gamma,
        n: 25,
        r2: 0.6,
      }),
    });
    await doc.send(new PutCommand({ TableName: TABLE, Item: version(1, Math.log(30)) }));
    await doc.send(new PutCommand({ TableName: TABLE, Item: version(12, Math.log(80)) }));
    await scoringStudy();
    await putJson(`async-out/${STUDY}.out`, result(1));
    expect(await invoke([notification("Completed")])).toEqual([]);
    const stack = await store.getStack(`${STUDY}-s0`);
    expect(stack?.prediction?.timeModelVersion).toBe(12);
    // Stack 0 has B = M = 0: the median is e^γ of version 12; T is the posterior predictive mean.
    expect(stack?.prediction?.medianSeconds).toBeCloseTo(80, 6);
    const { seconds, ...rest } = predictLabelingSeconds(
      { ...PRIOR_TIME_MODEL, alpha: 0.5, beta: 0.3, gamma: Math.log(80) },
      { boundaryLength: 0, components: 0 },
    );
    expect(stack?.prediction).toEqual({ ...rest, predictedSeconds: seconds, timeModelVersion: 12 });
  });
});
