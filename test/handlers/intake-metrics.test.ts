/**
 * Intake metrics in the embedded metric format: the EMF line shape (checked field by field against the
 * CloudWatch EMF specification's structure), the `Code` dimension, and that ingest and record-score count
 * what happened to each study — received, refused by code, scored, stacks pooled and found duplicate —
 * once however often a message is delivered.
 */
import { describe, expect, it } from "vitest";
import { CODE_DIMENSION, INTAKE_METRICS } from "../../lambdas/contracts/metrics.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { ingestMessage } from "../../lambdas/domain/ingest.js";
import { recordScoreMessage } from "../../lambdas/domain/record-score.js";
import { intakeCounter, lambdaMetrics, metricsWriter } from "../../lambdas/handlers/shared/lambda-handler.js";
import { CountingScoringEndpoint, InMemoryRecordStore, InMemoryStudyObjects, s3EventBody } from "../support/in-memory-ports.js";
import { InMemoryTimeModels } from "../support/in-memory-time-models.js";

const AT = "2026-11-26T12:00:00.000Z";
const quiet = { info: () => {}, warn: () => {} };

function emfLines() {
  const lines: string[] = [];
  const metrics = lambdaMetrics("IchAl/test", (line) => lines.push(line));
  const count = intakeCounter(metricsWriter(metrics));
  /** Counts without a code are buffered for the invocation; the handler bundle flushes them at its end. */
  const flush = () => metrics.publishStoredMetrics();
  /** metric → code ("" without one) → total. */
  const totals = () => {
    flush();
    const out = new Map<string, number>();
    for (const line of lines) {
      const parsed = JSON.parse(line);
      const [directive] = parsed._aws.CloudWatchMetrics;
      for (const { Name } of directive.Metrics) {
        const key = `${Name}:${parsed[CODE_DIMENSION] ?? ""}`;
        const values: number[] = [parsed[Name]].flat();
        out.set(key, (out.get(key) ?? 0) + values.reduce((a, b) => a + b, 0));
      }
    }
    return out;
  };
  return { lines, count, totals, flush };
}

describe("EMF intake counter", () => {
  it("writes a count with a code at once under service + Code; counts without one in the invocation's line under service", () => {
    const { lines, count, flush } = emfLines();
    count(INTAKE_METRICS.studiesRefused, 1, "PHI_PRESENT");
    count(INTAKE_METRICS.stacksPooled, 3);
    count(INTAKE_METRICS.stacksPooled, 2);
    expect(lines).toHaveLength(1);
    flush();
    const [refused, pooled] = lines.map((l) => JSON.parse(l));
    expect(refused).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [
          { Namespace: "IchAl/test", Dimensions: [["service", "Code"]], Metrics: [{ Name: "StudiesRefused", Unit: "Count" }] },
        ],
      },
      service: "ich-al",
      Code: "PHI_PRESENT",
      StudiesRefused: 1,
    });
    expect(pooled._aws.CloudWatchMetrics[0].Dimensions).toEqual([["service"]]);
    expect(pooled.service).toBe("ich-al");
    expect(pooled.StacksPooled).toEqual([3, 2]);
  });
});

describe("ingest and record-score count each study once", () => {
  it("ingest: received, and refused by code (redeliveries add nothing)", async () => {
    const { count, totals } = emfLines();
    const records = new InMemoryRecordStore();
    const objects = new InMemoryStudyObjects();
    objects.heads.set("uploads/a.zip@v1", { sizeBytes: 10, contentType: "application/zip" });
    objects.heads.set("uploads/b.txt@v1", { sizeBytes: 10, contentType: "text/plain" });
    const deps = {
      records,
      objects,
      scoring: new CountingScoringEndpoint(),
      config: { studiesBucket: "studies", maxObjectBytes: 100, claimSeconds: 60, maxReceiveCount: 5, topK: 5, thresholds: [0.5] },
      now: () => AT,
      newToken: () => "token",
      log: quiet,
      count,
    };
    for (let i = 0; i < 3; i++) {
      await ingestMessage(s3EventBody("studies", "uploads/a.zip", "v1"), deps);
      await ingestMessage(s3EventBody("studies", "uploads/b.txt", "v1"), deps);
    }
    expect(Object.fromEntries(totals())).toEqual({ "StudiesReceived:": 1, "StudiesRefused:UNSUPPORTED_TYPE": 1 });
  });

  it("record-score: scored with its pooled and duplicate stacks; refused by the container's code", async () => {
    const { count, totals } = emfLines();
    const records = new InMemoryRecordStore();
    const texts = new Map<string, string>();
    const study = (id: string, key: string): StackRecord => ({
      stackId: id,
      kind: "study",
      status: "received",
      source: { bucket: "studies", key, versionId: "v1" },
      receivedAt: AT,
      updatedAt: AT,
    });
    const scored = "a".repeat(32);
    const refused = "b".repeat(32);
    await records.createStack(study(scored, "uploads/a.zip"));
    await records.createStack(study(refused, "uploads/b.zip"));
    const stack = (index: number, sha: string) => ({
      index,
      seriesUid: `1.2.${index}`,
      contentSha256: sha.repeat(64),
      frames: 20,
      stackUncertainty: 0.1,
      topK: 5,
      boundaryLength: 10,
      components: 1,
      perThreshold: [{ threshold: 0.5, boundaryLength: 10, components: 1 }],
      stackScore: 0.5,
      frameScores: [0.5],
      nRegions: 0,
      regions: [],
      timings: {},
    });
    const result = {
      modelVersion: "m",
      input: "s3://studies/uploads/a.zip",
      versionId: "v1",
      stacks: [stack(0, "1"), stack(1, "2"), stack(2, "1")],
      timings: {},
    };
    texts.set(`s3://studies/out/${scored}.out`, JSON.stringify(result));
    texts.set(`s3://studies/fail/${refused}.out`, JSON.stringify({ status: 422, code: "WRONG_MODALITY", reason: "not CT" }));
    const notification = (studyId: string, status: "Completed" | "Failed") =>
      JSON.stringify({
        Type: "Notification",
        MessageId: "m",
        TopicArn: "arn:aws:sns:us-east-1:1:t",
        Message: JSON.stringify({
          awsRegion: "us-east-1",
          eventTime: AT,
          receivedTime: AT,
          invocationStatus: status,
          requestParameters: { endpointName: "scoring", inputLocation: `s3://studies/scoring-requests/${studyId}.json` },
          responseParameters:
            status === "Completed"
              ? { contentType: "application/json", outputLocation: `s3://studies/out/${studyId}.out` }
              : { contentType: "application/json", failureLocation: `s3://studies/fail/${studyId}.out` },
          inferenceId: `i-${studyId}`,
          eventVersion: "1.0",
        }),
      });
    const objects = new InMemoryStudyObjects();
    objects.heads.set("uploads/b.zip@v1", { sizeBytes: 10, contentType: "application/zip" });
    const deps = {
      records,
      outputs: { getText: async (bucket: string, key: string) => texts.get(`s3://${bucket}/${key}`) },
      objects,
      timeModels: new InMemoryTimeModels(),
      config: { studiesBucket: "studies" },
      now: () => AT,
      log: quiet,
      count,
    };
    for (let i = 0; i < 2; i++) {
      await recordScoreMessage(notification(scored, "Completed"), deps);
      await recordScoreMessage(notification(refused, "Failed"), deps);
    }
    expect(Object.fromEntries(totals())).toEqual({
      "StudiesScored:": 1,
      "StacksPooled:": 2,
      "StacksDuplicate:": 1,
      "StudiesRefused:WRONG_MODALITY": 1,
    });
  });
});
