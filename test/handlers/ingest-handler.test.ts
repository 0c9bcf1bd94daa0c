/**
 * The ingest handler's middy chain and batch semantics with in-memory fakes of every port:
 * event parsing at the edge, per-message partial failures, the test event, the claim race, and
 * that logs carry study ids and codes but never object keys.
 */
import { beforeEach, describe, expect, it } from "vitest";

import { EnvironmentError, IngestEnvSchema, parseEnvironment } from "../../lambdas/contracts/env.js";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import { createIngestHandler, handler, ingestDepsFromEnvironment } from "../../lambdas/handlers/ingest-handler.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import {
  CountingScoringEndpoint,
  claimedStudy,
  InMemoryRecordStore,
  InMemoryStudyObjects,
  lambdaContext,
  s3EventBody,
  sqsEvent,
} from "../support/in-memory-ports.js";

const PATIENT_KEY = "uploads/Doe Jane^Planted 1950.zip";
const MAX_RECEIVES = 5;

function setup() {
  const records = new InMemoryRecordStore();
  const objects = new InMemoryStudyObjects();
  const scoring = new CountingScoringEndpoint();
  const lines: string[] = [];
  let tokens = 0;
  const run = createIngestHandler({
    records,
    objects,
    scoring,
    config: {
      studiesBucket: "studies",
      maxObjectBytes: 1000,
      claimSeconds: 900,
      maxReceiveCount: MAX_RECEIVES,
      topK: 120,
      thresholds: [0.25, 0.5],
    },
    now: () => "2026-11-26T12:00:00.000Z",
    newToken: () => `token-${++tokens}`,
    log: lambdaLogger("ingest", (line) => lines.push(line)),
  });
  return { records, objects, scoring, lines, invoke: (event: unknown) => run(event, lambdaContext) };
}

/** The environment infra gives the ingest Lambda (all required variables). */
const INGEST_ENV = {
  TABLE_NAME: "records",
  METRICS_NAMESPACE: "IchAl/test",
  STUDIES_BUCKET: "studies",
  SCORING_ENDPOINT_NAME: "scoring",
  MAX_RECEIVE_COUNT: "4",
  SCORING_TOP_K: "37",
  SCORING_THRESHOLDS: "0.2,0.45,0.9",
};

function environmentError(env: Record<string, string>): EnvironmentError {
  try {
    parseEnvironment("ingest", IngestEnvSchema, env);
  } catch (error) {
    if (error instanceof EnvironmentError) return error;
    throw error;
  }
  throw new Error("the environment parsed");
}

let t: ReturnType<typeof setup>;
beforeEach(() => {
  t = setup();
});

describe("ingest handler (fakes)", () => {
  it("exports a handler composed from the environment", () => {
    expect(typeof handler).toBe("function");
  });

  it("names every bad variable at cold start, never their values", () => {
    const env = { TABLE_NAME: "t", STUDIES_BUCKET: "", MAX_OBJECT_BYTES: "lots-secret" };
    const error = (() => {
      try {
        parseEnvironment("ingest", IngestEnvSchema, env);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(EnvironmentError);
    expect((error as EnvironmentError).variables.sort()).toEqual([
      "MAX_OBJECT_BYTES",
      "MAX_RECEIVE_COUNT",
      "METRICS_NAMESPACE",
      "SCORING_ENDPOINT_NAME",
      "SCORING_THRESHOLDS",
      "SCORING_TOP_K",
      "STUDIES_BUCKET",
    ]);
    expect((error as Error).message).not.toContain("lots-secret");
  });

  it("parses K, the thresholds and the redrive limit from the environment", () => {
    const env = parseEnvironment("ingest", IngestEnvSchema, INGEST_ENV);
    expect(env).toMatchObject({ MAX_RECEIVE_COUNT: 4, SCORING_TOP_K: 37, SCORING_THRESHOLDS: [0.2, 0.45, 0.9] });
  });

  it.each([
    ["SCORING_TOP_K", "0"],
    ["SCORING_TOP_K", "2.5"],
    ["SCORING_TOP_K", "many"],
    ["SCORING_THRESHOLDS", "0.6,0.4"],
    ["SCORING_THRESHOLDS", "0.3,,0.5"],
    ["SCORING_THRESHOLDS", "1.5"],
    ["SCORING_THRESHOLDS", ""],
    ["MAX_RECEIVE_COUNT", "0"],
    ["MAX_RECEIVE_COUNT", "x"],
  ])("refuses %s=%j at cold start, naming the variable", (name, value) => {
    expect(environmentError({ ...INGEST_ENV, [name]: value }).variables).toEqual([name]);
  });

  it("writes the environment's K and thresholds into every scoring request", async () => {
    const records = new InMemoryRecordStore();
    const objects = new InMemoryStudyObjects();
    const scoring = new CountingScoringEndpoint();
    const fromEnvironment = ingestDepsFromEnvironment(INGEST_ENV);
    const run = createIngestHandler({ ...fromEnvironment, records, objects, scoring, log: lambdaLogger("ingest", () => {}) });
    objects.heads.set("uploads/a.zip@v1", { sizeBytes: 10, contentType: "application/zip" });
    expect((await run(sqsEvent([s3EventBody("studies", "uploads/a.zip", "v1")]), lambdaContext)).batchItemFailures).toEqual([]);
    const id = studyIdOf({ bucket: "studies", key: "uploads/a.zip", versionId: "v1" });
    expect(objects.json.get(`studies/scoring-requests/${id}.json`)).toEqual({
      input: "s3://studies/uploads/a.zip",
      versionId: "v1",
      overlayPrefix: `s3://studies/overlays/${id}/`,
      topK: 37,
      thresholds: [0.2, 0.45, 0.9],
    });
  });

  it("parses the allowed private creators (JSON; default none) and sends them with every scoring request", async () => {
    expect(parseEnvironment("ingest", IngestEnvSchema, INGEST_ENV).PRIVATE_CREATOR_ALLOW_LIST).toEqual([]);
    const creators = ["GEMS_IDEN_01", "SIEMENS CSA HEADER", "Vendor, Inc. 1"];
    const env = { ...INGEST_ENV, PRIVATE_CREATOR_ALLOW_LIST: JSON.stringify(creators) };
    expect(parseEnvironment("ingest", IngestEnvSchema, env).PRIVATE_CREATOR_ALLOW_LIST).toEqual(creators);
    const objects = new InMemoryStudyObjects();
    const run = createIngestHandler({
      ...ingestDepsFromEnvironment(env),
      records: new InMemoryRecordStore(),
      objects,
      scoring: new CountingScoringEndpoint(),
      log: lambdaLogger("ingest", () => {}),
    });
    objects.heads.set("uploads/a.zip@v1", { sizeBytes: 10, contentType: "application/zip" });
    expect((await run(sqsEvent([s3EventBody("studies", "uploads/a.zip", "v1")]), lambdaContext)).batchItemFailures).toEqual([]);
    const id = studyIdOf({ bucket: "studies", key: "uploads/a.zip", versionId: "v1" });
    expect(objects.json.get(`studies/scoring-requests/${id}.json`)).toMatchObject({ topK: 37, allowedPrivateCreators: creators });
  });

  it.each([
    "GEMS_IDEN_01",
    '"GEMS_IDEN_01"',
    "[7]",
    '[""]',
    '["   "]',
    JSON.stringify(["GEMS\\IDEN"]),
    JSON.stringify(["GEMS\tIDEN"]),
    JSON.stringify(["x".repeat(65)]),
    JSON.stringify(Array.from({ length: 101 }, (_, i) => `GEMS_${i}`)),
  ])("refuses PRIVATE_CREATOR_ALLOW_LIST=%j at cold start, naming the variable, never its value", (value) => {
    const error = environmentError({ ...INGEST_ENV, PRIVATE_CREATOR_ALLOW_LIST: value });
    expect(error.variables).toEqual(["PRIVATE_CREATOR_ALLOW_LIST"]);
    expect(error.message).not.toContain("GEMS");
  });

  it("rejects an event that is not an SQS batch with a named error", async () => {
    await expect(t.invoke({ detail: "not sqs" })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("reports only the failed messages of a batch", async () => {
    t.objects.heads.set(`${PATIENT_KEY}@v1`, { sizeBytes: 10, contentType: "application/zip" });
    t.objects.heads.set("uploads/b.zip@v1", { sizeBytes: 10, contentType: "application/zip" });
    t.objects.failHeadFor = "uploads/b.zip";
    const event = sqsEvent([
      s3EventBody("studies", PATIENT_KEY, "v1"), // good
      JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-11-26T12:00:00Z", Bucket: "studies" }), // ignored
      "not json", // malformed → DLQ eventually
      s3EventBody("studies", "uploads/c.zip", undefined), // no versionId → malformed
      s3EventBody("studies", "uploads/b.zip", "v1"), // transient S3 error
      s3EventBody("studies", "other/ignored.zip", "v1"), // outside uploads/: ignored
    ]);
    const response = await t.invoke(event);
    expect(response.batchItemFailures.map((f: { itemIdentifier: string }) => f.itemIdentifier).sort()).toEqual(["m2", "m3", "m4"]);
    expect(t.scoring.calls).toHaveLength(1);
    const id = studyIdOf({ bucket: "studies", key: PATIENT_KEY, versionId: "v1" });
    expect(t.records.items.get(id)).toMatchObject({ status: "received", kind: "study", scoring: { inferenceId: "inference-1" } });
    expect(t.objects.json.get(`studies/scoring-requests/${id}.json`)).toEqual({
      input: `s3://studies/${PATIENT_KEY}`,
      versionId: "v1",
      overlayPrefix: `s3://studies/overlays/${id}/`,
      topK: 120,
      thresholds: [0.25, 0.5],
    });
    const logs = t.lines.join("\n");
    expect(logs).toContain("NOT_JSON");
    expect(logs).toContain("MISSING_VERSION_ID");
    expect(logs).toContain(id);
    expect(logs).not.toContain("Planted");
    expect(logs).not.toContain("Doe");
  });

  it("completes the invoke when a previous attempt died between the put and the invoke", async () => {
    t.objects.heads.set("uploads/a.zip@v1", { sizeBytes: 10, contentType: undefined });
    const id = studyIdOf({ bucket: "studies", key: "uploads/a.zip", versionId: "v1" });
    const receivedAt = "2026-11-26T11:00:00.000Z";
    // The dead attempt created the record and took a claim that has since lapsed.
    const source = { bucket: "studies", key: "uploads/a.zip", versionId: "v1" };
    await t.records.createStack(claimedStudy(id, source, receivedAt, { token: "dead", expiresAt: "2026-11-26T11:15:00.000Z" }));
    const body = s3EventBody("studies", "uploads/a.zip", "v1");
    expect((await t.invoke(sqsEvent([body]))).batchItemFailures).toEqual([]);
    expect((await t.invoke(sqsEvent([body]))).batchItemFailures).toEqual([]);
    expect(t.scoring.calls).toHaveLength(1);
    expect(t.records.items.get(id)?.invokeClaim).toBeUndefined();
  });

  it("retries, without invoking, a delivery that finds another delivery's live claim", async () => {
    t.objects.heads.set("uploads/a.zip@v1", { sizeBytes: 10, contentType: undefined });
    const id = studyIdOf({ bucket: "studies", key: "uploads/a.zip", versionId: "v1" });
    const at = "2026-11-26T11:59:00.000Z";
    const source = { bucket: "studies", key: "uploads/a.zip", versionId: "v1" };
    await t.records.createStack(claimedStudy(id, source, at, { token: "alive", expiresAt: "2026-11-26T12:10:00.000Z" }));
    const response = await t.invoke(sqsEvent([s3EventBody("studies", "uploads/a.zip", "v1")]));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
    expect(t.scoring.calls).toHaveLength(0);
    expect(t.lines.join("\n")).toContain("InvocationInProgressError");
  });

  describe("an unscorable upload is moved to quarantine", () => {
    const key = "uploads/Doe Jane^Planted notes.txt";
    const id = studyIdOf({ bucket: "studies", key, versionId: "v1" });
    const original = { bucket: "studies", key, versionId: "v1" };
    const quarantineKey = `quarantine/UNSUPPORTED_TYPE/${id}/Doe Jane^Planted notes.txt`;
    beforeEach(() => {
      t.objects.heads.set(`${key}@v1`, { sizeBytes: 10, contentType: "text/plain" });
    });

    it("copies that version, records the copy's key, then deletes the original version; never scored", async () => {
      expect((await t.invoke(sqsEvent([s3EventBody("studies", key, "v1")]))).batchItemFailures).toEqual([]);
      expect(t.objects.copies).toEqual([{ from: original, to: quarantineKey }]);
      expect(t.objects.deletions).toEqual([original]);
      expect(t.objects.heads.has(`${key}@v1`)).toBe(false);
      expect(t.records.items.get(id)).toMatchObject({ status: "rejected", rejection: { code: "UNSUPPORTED_TYPE", quarantineKey } });
      expect(t.scoring.calls).toEqual([]);
      const logs = t.lines.join("\n");
      expect(logs).toContain("UNSUPPORTED_TYPE");
      expect(logs).not.toContain("Planted");
    });

    it("the same event again changes nothing but repeating the delete (a version already gone is fine)", async () => {
      const body = s3EventBody("studies", key, "v1");
      expect((await t.invoke(sqsEvent([body]))).batchItemFailures).toEqual([]);
      const record = structuredClone(t.records.items.get(id));
      expect((await t.invoke(sqsEvent([body, body]))).batchItemFailures).toEqual([]);
      expect(t.records.items.get(id)).toEqual(record);
      expect(t.objects.copies).toHaveLength(1);
      expect(t.objects.deletions).toEqual([original, original, original]);
    });

    it("a crash between the record and the delete is finished by the redelivery, the copy kept", async () => {
      t.objects.failDeletes = 1;
      const body = s3EventBody("studies", key, "v1");
      expect((await t.invoke(sqsEvent([body]))).batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
      expect(t.records.items.get(id)?.rejection?.quarantineKey).toBe(quarantineKey);
      expect(t.objects.heads.has(`${key}@v1`)).toBe(true);
      expect((await t.invoke(sqsEvent([body]))).batchItemFailures).toEqual([]);
      expect(t.objects.heads.has(`${key}@v1`)).toBe(false);
      expect(t.objects.copies).toEqual([{ from: original, to: quarantineKey }]);
    });

    it("deletes nothing for a version that is not there (OBJECT_NOT_FOUND) or a scorable one", async () => {
      const scorable = "uploads/fine.zip";
      t.objects.heads.set(`${scorable}@v1`, { sizeBytes: 10, contentType: "application/zip" });
      const bodies = [s3EventBody("studies", "uploads/gone.zip", "v1"), s3EventBody("studies", scorable, "v1")];
      for (let i = 0; i < 2; i++) expect((await t.invoke(sqsEvent(bodies))).batchItemFailures).toEqual([]);
      expect(t.records.items.get(studyIdOf({ bucket: "studies", key: "uploads/gone.zip", versionId: "v1" }))?.rejection).toEqual({
        code: "OBJECT_NOT_FOUND",
        reason: "the object version named by the event no longer exists",
      });
      expect(t.objects.copies).toEqual([]);
      expect(t.objects.deletions).toEqual([]);
    });
  });

  describe("a scoring request that fails on the last delivery", () => {
    const key = "uploads/Doe Jane^Planted last.zip";
    const id = studyIdOf({ bucket: "studies", key, versionId: "v1" });
    beforeEach(() => {
      t.objects.heads.set(`${key}@v1`, { sizeBytes: 10, contentType: "application/zip" });
    });

    it("before the last delivery: stays received with lastError, reported for redelivery", async () => {
      t.scoring.failNext(1);
      const response = await t.invoke(sqsEvent([s3EventBody("studies", key, "v1")], undefined, MAX_RECEIVES - 1));
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
      const record = t.records.items.get(id);
      expect(record).toMatchObject({ status: "received", lastError: { code: "ThrottlingException" } });
      expect(record?.invokeClaim).toBeUndefined();
    });

    it("on the last delivery: ends failed with a lastError that says so, still reported (→ DLQ), logs without the key", async () => {
      t.scoring.failNext(1);
      const response = await t.invoke(sqsEvent([s3EventBody("studies", key, "v1")], undefined, MAX_RECEIVES));
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
      const record = t.records.items.get(id);
      expect(record).toMatchObject({ status: "failed", lastError: { code: "ThrottlingException" } });
      expect(record?.lastError?.message).toMatch(/last delivery \(5 of 5\).*DLQ.*Rate exceeded/);
      expect(record?.invokeClaim).toBeUndefined();
      expect(record?.scoring).toBeUndefined();
      const logs = t.lines.join("\n");
      expect(logs).toContain("study failed: scoring request failed on the last delivery");
      expect(logs).toContain(id);
      expect(logs).not.toContain("Planted");
      expect(logs).not.toContain("Doe");

      // A re-drive (a new message, first delivery) with the endpoint back: claimed, invoked, received again.
      const redriven = await t.invoke(sqsEvent([s3EventBody("studies", key, "v1")]));
      expect(redriven.batchItemFailures).toEqual([]);
      expect(t.scoring.calls).toEqual([`s3://studies/scoring-requests/${id}.json`]);
      const retried = t.records.items.get(id);
      expect(retried).toMatchObject({ status: "received", scoring: { inferenceId: "inference-1" } });
      expect(retried?.lastError).toBeUndefined();
    });

    it("counts a delivery past the limit as the last, and an unknown count never as the last", async () => {
      t.scoring.failNext(1);
      await t.invoke(sqsEvent([s3EventBody("studies", key, "v1")], undefined, MAX_RECEIVES + 2));
      expect(t.records.items.get(id)?.status).toBe("failed");

      const other = "uploads/unknown-count.zip";
      t.objects.heads.set(`${other}@v1`, { sizeBytes: 10, contentType: "application/zip" });
      t.scoring.failNext(1);
      const event = sqsEvent([s3EventBody("studies", other, "v1")]);
      for (const record of event.Records) (record as { attributes: Record<string, string> }).attributes = {};
      expect((await t.invoke(event)).batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
      expect(t.records.items.get(studyIdOf({ bucket: "studies", key: other, versionId: "v1" }))?.status).toBe("received");
    });
  });
});
