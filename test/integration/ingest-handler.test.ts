/**
 * The ingest handler end to end against moto server with the real SDK v3 clients and adapters (records
 * table as the CDK construct defines it, a versioned studies bucket) and a counting fake scoring
 * endpoint: duplicate deliveries in sequence and concurrently, quarantine moves of unscorable objects
 * beside good ones (copied version-exactly, the original version deleted), an endpoint outage followed by a redelivery, the last delivery before the DLQ marking the
 * study `failed` and a re-drive retrying it, and the environment's K and thresholds in the request JSON.
 * Events follow AWS's documented S3 notification format (moto's own notifications omit versionId, which a
 * versioned bucket sends).
 */
import { randomUUID } from "node:crypto";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { beforeEach, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { S3StudyObjects } from "../../lambdas/adapters/s3-study-objects.js";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import { createIngestHandler, ingestDepsFromEnvironment } from "../../lambdas/handlers/ingest-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { CountingScoringEndpoint, claimedStudy, lambdaContext, s3EventBody, sqsEvent } from "../support/in-memory-ports.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const BUCKET = "studies";
const PLANTED = "Doe^Jane^Planted";
const MAX_RECEIVES = 3;
const TOP_K = 150;
const THRESHOLDS = [0.35, 0.55, 0.75];

interface Harness {
  s3: S3Client;
  store: DynamoRecordStore;
  scoring: CountingScoringEndpoint;
  lines: string[];
  /** Delivers the bodies as one SQS batch; `receiveCount` is each message's ApproximateReceiveCount (default 1). */
  invoke(bodies: string[], receiveCount?: number): Promise<string[]>;
  upload(key: string, body: Uint8Array | string, contentType?: string): Promise<{ body: string; studyId: string }>;
}

let h: Harness;

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  const s3 = aws.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
  const store = new DynamoRecordStore(dynamo, TABLE);
  const scoring = new CountingScoringEndpoint();
  const lines: string[] = [];
  const handler = createIngestHandler({
    records: store,
    objects: new S3StudyObjects(s3),
    scoring,
    config: {
      studiesBucket: BUCKET,
      maxObjectBytes: 1024,
      claimSeconds: 900,
      maxReceiveCount: MAX_RECEIVES,
      topK: TOP_K,
      thresholds: THRESHOLDS,
    },
    now: () => new Date().toISOString(),
    newToken: randomUUID,
    log: lambdaLogger("ingest", (line) => lines.push(line)),
  });
  h = {
    s3,
    store,
    scoring,
    lines,
    async invoke(bodies, receiveCount = 1) {
      const response = await handler(sqsEvent(bodies, undefined, receiveCount), lambdaContext);
      return response.batchItemFailures.map((f: { itemIdentifier: string }) => f.itemIdentifier);
    },
    async upload(key, body, contentType) {
      const bytes = typeof body === "string" ? Buffer.from(body) : body;
      const out = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, ContentType: contentType }));
      const versionId = out.VersionId;
      if (!versionId) throw new Error("bucket is not versioned");
      return { body: s3EventBody(BUCKET, key, versionId, bytes.length), studyId: studyIdOf({ bucket: BUCKET, key, versionId }) };
    },
  };
});

/** Every version and delete marker of `key` left in the bucket (ListObjectVersions). */
async function versionsOf(key: string): Promise<string[]> {
  const out = await h.s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }));
  return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])].filter((v) => v.Key === key).map((v) => v.VersionId ?? "");
}

async function bytesAt(key: string): Promise<Buffer> {
  const out = await h.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
}

async function recordCount(): Promise<number> {
  const all = await Promise.all((["received", "pending", "rejected", "failed"] as const).map((s) => h.store.listByStatus(s)));
  return all.flat().length;
}

describe("ingest handler on moto server (real SDK v3)", () => {
  it.each([2, 5, 50])("the same event delivered %i times in sequence gives one record and one invocation", async (times) => {
    const { body, studyId } = await h.upload(`uploads/${PLANTED} study+1.zip`, "PK-zip-bytes", "application/zip");
    for (let i = 0; i < times; i++) expect(await h.invoke([body])).toEqual([]);
    expect(h.scoring.calls).toEqual([`s3://${BUCKET}/scoring-requests/${studyId}.json`]);
    expect(await recordCount()).toBe(1);
    const record = await h.store.getStack(studyId);
    expect(record).toMatchObject({ kind: "study", status: "received", scoring: { inferenceId: "inference-1" } });
    expect(record?.source.key).toBe(`uploads/${PLANTED} study+1.zip`);
    expect(record?.invokeClaim).toBeUndefined();
    const request = await h.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `scoring-requests/${studyId}.json` }));
    expect(JSON.parse(await (request.Body?.transformToString() ?? ""))).toEqual({
      input: `s3://${BUCKET}/uploads/${PLANTED} study+1.zip`,
      versionId: record?.source.versionId,
      overlayPrefix: `s3://${BUCKET}/overlays/${studyId}/`,
      topK: TOP_K,
      thresholds: THRESHOLDS,
    });
    expect(h.lines.join("\n")).not.toContain("Planted");
  });

  it.each([2, 5, 50])("the same event delivered %i times concurrently gives one record and one invocation", async (times) => {
    const { body, studyId } = await h.upload("uploads/concurrent é.nii.gz", "nifti-bytes");
    const firstRound = await Promise.all(Array.from({ length: times }, () => h.invoke([body])));
    expect(h.scoring.calls).toHaveLength(1);
    expect(await recordCount()).toBe(1);
    // Deliveries that met the winner's live claim were handed back to SQS; redelivered, they are duplicates.
    const retried = firstRound.filter((failed) => failed.length > 0).length;
    const errors = h.lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === "ERROR");
    expect(errors).toHaveLength(retried);
    for (const entry of errors) expect(entry.error).toBe("InvocationInProgressError");
    for (let i = 0; i < retried; i++) expect(await h.invoke([body])).toEqual([]);
    expect(h.scoring.calls).toHaveLength(1);
    expect(await h.store.getStack(studyId)).toMatchObject({ status: "received", scoring: { inferenceId: "inference-1" } });
  });

  it("moves unsupported, empty and oversized objects to quarantine with a reason, and still ingests the good ones in the batch", async () => {
    const good = await h.upload("uploads/good.npz", "npz-bytes");
    const text = await h.upload(`uploads/${PLANTED}.txt`, "hello", "text/plain");
    const empty = await h.upload("uploads/empty.zip", "");
    const hugeBytes = Uint8Array.from({ length: 2048 }, (_, i) => i % 251);
    const huge = await h.upload("uploads/huge.dcm", hugeBytes);
    const failed = await h.invoke([text.body, good.body, empty.body, huge.body, text.body]);
    expect(failed).toEqual([]);
    expect(h.scoring.calls).toEqual([`s3://${BUCKET}/scoring-requests/${good.studyId}.json`]);
    const expected = [
      [text, "UNSUPPORTED_TYPE", `${PLANTED}.txt`, Buffer.from("hello")],
      [empty, "EMPTY_OBJECT", "empty.zip", Buffer.alloc(0)],
      [huge, "OBJECT_TOO_LARGE", "huge.dcm", Buffer.from(hugeBytes)],
    ] as const;
    for (const [upload, code, name, content] of expected) {
      const record = await h.store.getStack(upload.studyId);
      expect(record).toMatchObject({ status: "rejected", rejection: { code } });
      expect(record?.rejection?.quarantineKey).toBe(`quarantine/${code}/${upload.studyId}/${name}`);
      // The copy holds the original's bytes; no version of the original is left in uploads/ (no delete marker either).
      expect(await bytesAt(record?.rejection?.quarantineKey ?? "")).toEqual(content);
      expect(await versionsOf(`uploads/${name}`)).toEqual([]);
    }
    expect(await versionsOf("uploads/good.npz")).toHaveLength(1);
    expect(await recordCount()).toBe(4);
    const logs = h.lines.join("\n");
    expect(logs).toContain("UNSUPPORTED_TYPE");
    expect(logs).not.toContain("Planted");
  });

  it("quarantines the version the event names, not a later upload to the same key, and deletes only that version", async () => {
    const first = await h.upload("uploads/reused.zip", "");
    const second = await h.upload("uploads/reused.zip", "second version, not empty");
    expect(await h.invoke([first.body])).toEqual([]);
    const record = await h.store.getStack(first.studyId);
    expect(record?.rejection?.code).toBe("EMPTY_OBJECT");
    const copy = await h.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: record?.rejection?.quarantineKey }));
    expect(copy.ContentLength).toBe(0);
    const secondVersion = JSON.parse(second.body).Records[0].s3.object.versionId as string;
    expect(await versionsOf("uploads/reused.zip")).toEqual([secondVersion]);
  });

  it("running again on the same event changes nothing and does not fail (the delete of a version already gone is fine)", async () => {
    const text = await h.upload(`uploads/${PLANTED} again.txt`, "notes", "text/plain");
    expect(await h.invoke([text.body])).toEqual([]);
    const record = await h.store.getStack(text.studyId);
    const quarantineKey = `quarantine/UNSUPPORTED_TYPE/${text.studyId}/${PLANTED} again.txt`;
    expect(record?.rejection).toMatchObject({ code: "UNSUPPORTED_TYPE", quarantineKey });
    const quarantined = await versionsOf(quarantineKey);
    expect(quarantined).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(await h.invoke([text.body, text.body])).toEqual([]);
    expect(await h.store.getStack(text.studyId)).toEqual(record);
    expect(await versionsOf(quarantineKey)).toEqual(quarantined);
    expect(await bytesAt(quarantineKey)).toEqual(Buffer.from("notes"));
    expect(await versionsOf(`uploads/${PLANTED} again.txt`)).toEqual([]);
    expect(await recordCount()).toBe(1);
  });

  it("a redelivery after a crash between the record and the delete deletes the original version, the copy kept", async () => {
    const text = await h.upload("uploads/crash-after-record.txt", "notes", "text/plain");
    const versionId = JSON.parse(text.body).Records[0].s3.object.versionId as string;
    const quarantineKey = `quarantine/UNSUPPORTED_TYPE/${text.studyId}/crash-after-record.txt`;
    // What a delivery that died after step 2 left: the copy and the rejected record naming it; the original still there.
    await new S3StudyObjects(h.s3).copyVersion({ bucket: BUCKET, key: "uploads/crash-after-record.txt", versionId }, quarantineKey);
    const at = new Date().toISOString();
    await h.store.createStack({
      stackId: text.studyId,
      kind: "study",
      status: "rejected",
      source: { bucket: BUCKET, key: "uploads/crash-after-record.txt", versionId },
      receivedAt: at,
      updatedAt: at,
      rejection: {
        code: "UNSUPPORTED_TYPE",
        reason: "not a DICOM zip/file, NIfTI or npz object (extension or content type)",
        quarantineKey,
      },
    });
    expect(await versionsOf("uploads/crash-after-record.txt")).toEqual([versionId]);
    expect(await h.invoke([text.body])).toEqual([]);
    expect(await versionsOf("uploads/crash-after-record.txt")).toEqual([]);
    expect(await bytesAt(quarantineKey)).toEqual(Buffer.from("notes"));
  });

  it("reports a message whose invoke failed, records the error, and invokes exactly once after the endpoint recovers", async () => {
    const failing = await h.upload("uploads/a.zip", "zip-a");
    const fine = await h.upload("uploads/b.zip", "zip-b");
    h.scoring.failNext(1);
    expect(await h.invoke([failing.body])).toEqual(["m0"]);
    expect(h.scoring.calls).toEqual([]);
    const afterFailure = await h.store.getStack(failing.studyId);
    expect(afterFailure).toMatchObject({ status: "received", lastError: { code: "ThrottlingException" } });
    expect(afterFailure?.scoring).toBeUndefined();
    expect(afterFailure?.invokeClaim).toBeUndefined();

    // Redelivery (the endpoint is back) together with an unrelated message, then once more.
    expect(await h.invoke([failing.body, fine.body])).toEqual([]);
    expect(await h.invoke([failing.body])).toEqual([]);
    expect(h.scoring.calls.sort()).toEqual(
      [`s3://${BUCKET}/scoring-requests/${failing.studyId}.json`, `s3://${BUCKET}/scoring-requests/${fine.studyId}.json`].sort(),
    );
    const recovered = await h.store.getStack(failing.studyId);
    expect(recovered?.scoring?.inferenceId).toMatch(/^inference-/);
    expect(recovered?.lastError).toBeUndefined();
  });

  it("completes the invoke after a crash between the record's put and the invoke, exactly once", async () => {
    const { body, studyId } = await h.upload("uploads/crashed.zip", "zip");
    const versionId = JSON.parse(body).Records[0].s3.object.versionId as string;
    const at = "2026-11-26T11:00:00.000Z";
    // What a delivery that died after the put and its claim leaves behind: received, no scoring, a lapsed claim.
    const source = { bucket: BUCKET, key: "uploads/crashed.zip", versionId };
    await h.store.createStack(claimedStudy(studyId, source, at, { token: "dead-delivery", expiresAt: "2026-11-26T11:05:00.000Z" }));
    const rounds = await Promise.all(Array.from({ length: 5 }, () => h.invoke([body])));
    expect(h.scoring.calls).toEqual([`s3://${BUCKET}/scoring-requests/${studyId}.json`]);
    const retried = rounds.filter((failed) => failed.length > 0).length;
    for (let i = 0; i < retried; i++) expect(await h.invoke([body])).toEqual([]);
    expect(h.scoring.calls).toHaveLength(1);
    const record = await h.store.getStack(studyId);
    expect(record).toMatchObject({ status: "received", receivedAt: at, scoring: { inferenceId: "inference-1" } });
    expect(record?.invokeClaim).toBeUndefined();
  });

  it("leaves a live claim to its holder: the delivery is retried and invokes nothing", async () => {
    const { body, studyId } = await h.upload("uploads/busy.zip", "zip");
    const versionId = JSON.parse(body).Records[0].s3.object.versionId as string;
    const now = new Date().toISOString();
    const live = { token: "live-delivery", expiresAt: new Date(Date.now() + 600_000).toISOString() };
    await h.store.createStack(claimedStudy(studyId, { bucket: BUCKET, key: "uploads/busy.zip", versionId }, now, live));
    expect(await h.invoke([body])).toEqual(["m0"]);
    expect(h.scoring.calls).toEqual([]);
    expect((await h.store.getStack(studyId))?.invokeClaim?.token).toBe("live-delivery");
  });

  it("reports a batch's failing message while the others succeed", async () => {
    const good = await h.upload("uploads/good.zip", "zip");
    const failed = await h.invoke([good.body, "{not json", s3EventBody(BUCKET, "uploads/x.zip", undefined)]);
    expect(failed).toEqual(["m1", "m2"]);
    expect(h.scoring.calls).toHaveLength(1);
  });

  it("writes the K and thresholds of the Lambda's environment into the scoring request JSON in S3", async () => {
    const fromEnvironment = ingestDepsFromEnvironment({
      TABLE_NAME: TABLE,
      METRICS_NAMESPACE: "IchAl/test",
      STUDIES_BUCKET: BUCKET,
      SCORING_ENDPOINT_NAME: "scoring",
      MAX_RECEIVE_COUNT: "5",
      SCORING_TOP_K: "64",
      SCORING_THRESHOLDS: "0.2,0.4,0.6,0.8",
      AWS_ENDPOINT_URL: aws.endpoint,
    });
    // The environment's configuration with this test's clients (moto) and a counting endpoint.
    const handler = createIngestHandler({
      ...fromEnvironment,
      records: h.store,
      objects: new S3StudyObjects(h.s3),
      scoring: h.scoring,
      log: lambdaLogger("ingest", () => {}),
    });
    const { body, studyId } = await h.upload("uploads/from-env.zip", "zip", "application/zip");
    expect((await handler(sqsEvent([body]), lambdaContext)).batchItemFailures).toEqual([]);
    const request = await h.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `scoring-requests/${studyId}.json` }));
    expect(JSON.parse(await (request.Body?.transformToString() ?? ""))).toMatchObject({
      input: `s3://${BUCKET}/uploads/from-env.zip`,
      topK: 64,
      thresholds: [0.2, 0.4, 0.6, 0.8],
    });
  });

  describe("an invocation that keeps failing", () => {
    it("before the last delivery: the study stays received with lastError and the message is reported", async () => {
      const { body, studyId } = await h.upload(`uploads/${PLANTED} early.zip`, "zip", "application/zip");
      for (let receive = 1; receive < MAX_RECEIVES; receive++) {
        h.scoring.failNext(1);
        expect(await h.invoke([body], receive)).toEqual(["m0"]);
        const record = await h.store.getStack(studyId);
        expect(record).toMatchObject({ status: "received", lastError: { code: "ThrottlingException" } });
        expect(record?.lastError?.message).not.toContain("last delivery");
        expect(record?.invokeClaim).toBeUndefined();
      }
      expect((await h.store.listByStatus("received")).map((r) => r.stackId)).toEqual([studyId]);
      expect(await h.store.listByStatus("failed")).toEqual([]);
      expect(h.scoring.calls).toEqual([]);
    });

    it("on the last delivery: the study ends failed with lastError, the message is still reported for the DLQ", async () => {
      const { body, studyId } = await h.upload(`uploads/${PLANTED} last.zip`, "zip", "application/zip");
      h.scoring.failNext(1);
      expect(await h.invoke([body], MAX_RECEIVES)).toEqual(["m0"]);
      const record = await h.store.getStack(studyId);
      expect(record).toMatchObject({ status: "failed", kind: "study", lastError: { code: "ThrottlingException" } });
      expect(record?.lastError?.message).toContain(`last delivery (${MAX_RECEIVES} of ${MAX_RECEIVES})`);
      expect(record?.lastError?.message).toContain("Rate exceeded");
      expect(record?.scoring).toBeUndefined();
      expect(record?.invokeClaim).toBeUndefined();
      // The by-status index lists it as failed, no longer as received.
      expect((await h.store.listByStatus("failed")).map((r) => r.stackId)).toEqual([studyId]);
      expect(await h.store.listByStatus("received")).toEqual([]);
      const logs = h.lines.join("\n");
      expect(logs).toContain("study failed: scoring request failed on the last delivery");
      expect(logs).not.toContain("Planted");
    });

    it("a re-driven message for the failed study is claimed and invoked once the endpoint is healthy", async () => {
      const { body, studyId } = await h.upload("uploads/redriven.zip", "zip", "application/zip");
      h.scoring.failNext(1);
      expect(await h.invoke([body], MAX_RECEIVES)).toEqual(["m0"]);
      expect((await h.store.getStack(studyId))?.status).toBe("failed");

      // Re-driven from the DLQ: a new message, first delivery; the endpoint is back. Then a duplicate.
      expect(await h.invoke([body])).toEqual([]);
      expect(await h.invoke([body])).toEqual([]);
      expect(h.scoring.calls).toEqual([`s3://${BUCKET}/scoring-requests/${studyId}.json`]);
      const record = await h.store.getStack(studyId);
      expect(record).toMatchObject({ status: "received", scoring: { inferenceId: "inference-1" } });
      expect(record?.lastError).toBeUndefined();
      expect(record?.invokeClaim).toBeUndefined();
      expect((await h.store.listByStatus("received")).map((r) => r.stackId)).toEqual([studyId]);
      expect(await h.store.listByStatus("failed")).toEqual([]);
    });

    it("a re-driven message that fails again before its own last delivery leaves the study received with the new lastError", async () => {
      const { body, studyId } = await h.upload("uploads/redriven-again.zip", "zip", "application/zip");
      h.scoring.failNext(2);
      expect(await h.invoke([body], MAX_RECEIVES)).toEqual(["m0"]);
      expect(await h.invoke([body], 1)).toEqual(["m0"]);
      const record = await h.store.getStack(studyId);
      expect(record).toMatchObject({ status: "received", lastError: { code: "ThrottlingException" } });
      expect(record?.lastError?.message).not.toContain("last delivery");
    });

    it("does not mark a study failed whose request the endpoint accepted, even on the last delivery", async () => {
      const { body, studyId } = await h.upload("uploads/accepted.zip", "zip", "application/zip");
      expect(await h.invoke([body], MAX_RECEIVES)).toEqual([]);
      expect(await h.store.getStack(studyId)).toMatchObject({ status: "received", scoring: { inferenceId: "inference-1" } });
    });
  });
});
