/**
 * The ingest handler's middy chain and batch semantics with in-memory fakes of every port:
 * event parsing at the edge, per-message partial failures, the test event, the claim race, and
 * that logs carry study ids and codes but never object keys.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.hoisted(() => {
  // The module-scope composition root parses these at import (no AWS call is made).
  Object.assign(process.env, {
    TABLE_NAME: "records",
    STUDIES_BUCKET: "studies",
    SCORING_ENDPOINT_NAME: "scoring",
    AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
  });
});

import { EnvironmentError, IngestEnvSchema, parseEnvironment } from "../../lambdas/contracts/env.js";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import { createIngestHandler, handler } from "../../lambdas/handlers/ingest-handler.js";
import { jsonLogger } from "../../lambdas/handlers/shared/logger.js";
import { InvalidSqsEventError } from "../../lambdas/handlers/shared/sqs-batch.js";
import {
  CountingScoringEndpoint,
  InMemoryRecordStore,
  InMemoryStudyObjects,
  lambdaContext,
  s3EventBody,
  sqsEvent,
} from "./ingest-fakes.js";

const PATIENT_KEY = "uploads/Doe Jane^Planted 1950.zip";

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
    config: { studiesBucket: "studies", maxObjectBytes: 1000, claimSeconds: 900 },
    now: () => "2026-11-26T12:00:00.000Z",
    newToken: () => `token-${++tokens}`,
    log: jsonLogger({ lambda: "ingest" }, (line) => lines.push(line)),
  });
  return { records, objects, scoring, lines, invoke: (event: unknown) => run(event, lambdaContext) };
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
    expect((error as EnvironmentError).variables.sort()).toEqual(["MAX_OBJECT_BYTES", "SCORING_ENDPOINT_NAME", "STUDIES_BUCKET"]);
    expect((error as Error).message).not.toContain("lots-secret");
  });

  it("rejects an event that is not an SQS batch with a named error", async () => {
    await expect(t.invoke({ detail: "not sqs" })).rejects.toBeInstanceOf(InvalidSqsEventError);
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
    await t.records.createStack({
      stackId: id,
      kind: "study",
      status: "received",
      source: { bucket: "studies", key: "uploads/a.zip", versionId: "v1" },
      receivedAt,
      updatedAt: receivedAt,
      invokeClaim: { token: "dead", expiresAt: "2026-11-26T11:15:00.000Z" },
    });
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
    await t.records.createStack({
      stackId: id,
      kind: "study",
      status: "received",
      source: { bucket: "studies", key: "uploads/a.zip", versionId: "v1" },
      receivedAt: at,
      updatedAt: at,
      invokeClaim: { token: "alive", expiresAt: "2026-11-26T12:10:00.000Z" },
    });
    const response = await t.invoke(sqsEvent([s3EventBody("studies", "uploads/a.zip", "v1")]));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m0" }]);
    expect(t.scoring.calls).toHaveLength(0);
    expect(t.lines.join("\n")).toContain("InvocationInProgressError");
  });
});
