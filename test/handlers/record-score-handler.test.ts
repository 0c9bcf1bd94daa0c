/**
 * The record-score handler's middy chain and batch semantics with in-memory fakes of every port:
 * parsing at the edge, idempotent success, 4xx rejection vs 5xx failure, late notifications, partial
 * batch failures, and logs that carry ids and codes but never object keys.
 */
import { beforeEach, describe, expect, it } from "vitest";

import { EnvironmentError } from "../../lambdas/contracts/env.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import type { ScoringResult } from "../../lambdas/contracts/scoring.js";
import { PRIOR_TIME_MODEL, predictLabelingSeconds, type TimePrior, timeModelFromPrior } from "../../lambdas/domain/labeling-time-model.js";
import type { ScoringOutputs } from "../../lambdas/domain/record-score.js";
import { rescoreRequestKey } from "../../lambdas/domain/rescore.js";
import type { TimeModelStore, VersionedTimeModel } from "../../lambdas/domain/time-model-store.js";
import { createRecordScoreHandler, handler, recordScoreDepsFromEnvironment } from "../../lambdas/handlers/record-score-handler.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryRecordStore, InMemoryStudyObjects, lambdaContext, sqsEvent } from "../support/in-memory-ports.js";

const STUDY = "0123456789abcdef0123456789abcdef";
const PLANTED = "uploads/Doe^Jane^Planted.zip";

class InMemoryOutputs implements ScoringOutputs {
  readonly objects = new Map<string, string>();
  failNext = 0;
  async getText(bucket: string, key: string): Promise<string | undefined> {
    if (this.failNext > 0) {
      this.failNext--;
      const error = new Error("slow down");
      error.name = "SlowDown";
      throw error;
    }
    return this.objects.get(`s3://${bucket}/${key}`);
  }
}

class FixedTimeModels implements TimeModelStore {
  constructor(public current: VersionedTimeModel | undefined = undefined) {}
  async latest() {
    return this.current;
  }
  async get(version: number) {
    return this.current?.version === version ? this.current : undefined;
  }
}

function notification(status: "Completed" | "Failed", studyId = STUDY, extra: Record<string, unknown> = {}): string {
  const message = {
    awsRegion: "us-east-1",
    eventTime: "2026-11-26T12:00:00.608Z",
    receivedTime: "2026-11-26T12:00:00.455Z",
    invocationStatus: status,
    requestParameters: { endpointName: "scoring", inputLocation: `s3://studies/scoring-requests/${studyId}.json` },
    responseParameters:
      status === "Completed"
        ? { contentType: "application/json", outputLocation: `s3://studies/async-out/${studyId}.out` }
        : { contentType: "application/json", failureLocation: `s3://studies/async-failures/${studyId}-error.out` },
    inferenceId: `inference-${studyId}`,
    eventVersion: "1.0",
    ...extra,
  };
  return JSON.stringify({
    Type: "Notification",
    MessageId: "sns-1",
    TopicArn: "arn:aws:sns:us-east-1:1:t",
    Message: JSON.stringify(message),
  });
}

function result(stacks: number): ScoringResult {
  return {
    modelVersion: "drn_d_38-w1.0-x4-abc",
    input: `s3://studies/${PLANTED}`,
    versionId: "v1",
    stacks: Array.from({ length: stacks }, (_, index) => ({
      index,
      seriesUid: `1.2.${index}`,
      frames: 20,
      stackUncertainty: 0.2,
      topK: 5,
      boundaryLength: 100 * index,
      components: index,
      perThreshold: [{ threshold: 0.5, boundaryLength: 100 * index, components: index }],
      stackScore: 0.4,
      frameScores: [0.4],
      nRegions: 0,
      regions: [],
      timings: { total: 0.5 },
    })),
    timings: { total: 1 },
  };
}

function study(studyId = STUDY): StackRecord {
  const at = "2026-11-26T11:00:00.000Z";
  return {
    stackId: studyId,
    kind: "study",
    status: "received",
    source: { bucket: "studies", key: PLANTED, versionId: "v1" },
    receivedAt: at,
    updatedAt: at,
    scoring: {
      requestLocation: `s3://studies/scoring-requests/${studyId}.json`,
      inferenceId: `inference-${studyId}`,
      outputLocation: `s3://studies/async-out/${studyId}.out`,
      invokedAt: at,
    },
  };
}

function setup(timePrior?: TimePrior) {
  const records = new InMemoryRecordStore();
  const outputs = new InMemoryOutputs();
  // The study's upload as S3 keeps it (study(): PLANTED at version v1), for quarantine moves.
  const objects = new InMemoryStudyObjects();
  objects.heads.set(`${PLANTED}@v1`, { sizeBytes: 10, contentType: "application/zip" });
  const timeModels = new FixedTimeModels();
  const lines: string[] = [];
  const counts: [string, number][] = [];
  const run = createRecordScoreHandler({
    records,
    outputs,
    objects,
    timeModels,
    count: (metric, value = 1) => void counts.push([metric, value]),
    config: { studiesBucket: "studies", ...(timePrior ? { timePrior } : {}) },
    now: () => "2026-11-26T12:00:01.000Z",
    log: lambdaLogger("record-score", (line) => lines.push(line)),
  });
  return {
    records,
    outputs,
    objects,
    timeModels,
    lines,
    counts,
    invoke: async (bodies: string[]) =>
      (await run(sqsEvent(bodies), lambdaContext)).batchItemFailures.map((f: { itemIdentifier: string }) => f.itemIdentifier),
  };
}

let t: ReturnType<typeof setup>;
beforeEach(async () => {
  t = setup();
  await t.records.createStack(study());
});

describe("record-score handler (fakes)", () => {
  it("exports a handler composed from the environment", () => {
    expect(typeof handler).toBe("function");
  });

  it("rejects an event that is not an SQS batch with a named error", async () => {
    await expect(
      createRecordScoreHandler({ log: lambdaLogger("test", () => {}) } as never)({ nope: 1 }, lambdaContext),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("creates one pending stack per scored series and marks the study scored, once however often it is told", async () => {
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(3)));
    for (let i = 0; i < 5; i++) expect(await t.invoke([notification("Completed")])).toEqual([]);
    const stacks = await t.records.listByStatus("pending");
    expect(stacks.filter((r) => r.kind === "stack").map((r) => r.stackId)).toEqual([`${STUDY}-s0`, `${STUDY}-s1`, `${STUDY}-s2`]);
    expect(t.records.items.get(STUDY)).toMatchObject({ status: "scored", stackIds: [`${STUDY}-s0`, `${STUDY}-s1`, `${STUDY}-s2`] });
    expect(t.records.items.size).toBe(4);
    expect(t.lines.join("\n")).not.toContain("Planted");
  });

  describe("a stack whose voxels were recorded before is a duplicate", () => {
    const OTHER = "fedcba9876543210fedcba9876543210";
    const sha = (n: number) => n.toString(16).padStart(64, "0");
    const withContent = (stacks: number, keys: number[]): ScoringResult => {
      const r = result(stacks);
      r.stacks.forEach((stack, i) => {
        stack.contentSha256 = sha(keys[i] as number);
      });
      return r;
    };

    it("a second upload of the same series is recorded duplicate, pointing to the first, and never enters the pool", async () => {
      await t.records.createStack({ ...study(OTHER), source: { bucket: "studies", key: "uploads/again.zip", versionId: "v9" } });
      t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(withContent(2, [1, 2])));
      t.outputs.objects.set(`s3://studies/async-out/${OTHER}.out`, JSON.stringify(withContent(2, [3, 2])));
      expect(await t.invoke([notification("Completed")])).toEqual([]);
      // The copy's result arrives later, and again (redelivery): same records, no second claim.
      for (let i = 0; i < 3; i++) expect(await t.invoke([notification("Completed", OTHER)])).toEqual([]);
      const duplicate = t.records.items.get(`${OTHER}-s1`);
      expect(duplicate).toMatchObject({ status: "duplicate", duplicateOf: `${STUDY}-s1`, contentSha256: sha(2), kind: "stack" });
      expect(duplicate?.scores).toBeUndefined();
      expect(duplicate?.prediction).toBeUndefined();
      expect(t.records.items.get(`${OTHER}-s0`)).toMatchObject({ status: "pending", contentSha256: sha(3) });
      const pool = (await t.records.listByStatus("pending")).filter((r) => r.kind === "stack").map((r) => r.stackId);
      expect(pool.sort()).toEqual([`${OTHER}-s0`, `${STUDY}-s0`, `${STUDY}-s1`].sort());
      expect(t.records.items.get(OTHER)).toMatchObject({ status: "scored", stackIds: [`${OTHER}-s0`, `${OTHER}-s1`] });
      const warnings = t.lines.filter((line) => line.includes("duplicate stack"));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0] as string)).toMatchObject({ stackId: `${OTHER}-s1`, duplicateOf: `${STUDY}-s1` });
      expect(t.lines.join("\n")).not.toContain("Planted");
    });

    it("two identical series in one study: the later one is the duplicate of the first", async () => {
      t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(withContent(3, [5, 6, 5])));
      expect(await t.invoke([notification("Completed")])).toEqual([]);
      expect(t.records.items.get(`${STUDY}-s2`)).toMatchObject({ status: "duplicate", duplicateOf: `${STUDY}-s0` });
      expect(t.records.items.get(`${STUDY}-s0`)?.status).toBe("pending");
      expect(t.records.items.get(`${STUDY}-s1`)?.status).toBe("pending");
    });

    it("a result without content keys (an older container) records every stack pending", async () => {
      t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(2)));
      expect(await t.invoke([notification("Completed")])).toEqual([]);
      expect(t.records.contents.size).toBe(0);
      expect((await t.records.listByStatus("pending")).filter((r) => r.kind === "stack")).toHaveLength(2);
    });
  });

  it("the first scoring result puts its model in service; a result of another model does not replace it", async () => {
    expect(await t.records.getModelInService()).toBeUndefined();
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(1)));
    expect(await t.invoke([notification("Completed")])).toEqual([]);
    const first = await t.records.getModelInService();
    expect(first).toMatchObject({ modelVersion: result(1).modelVersion, sequence: 1, source: "first-score" });
    const OTHER = "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb";
    await t.records.createStack({ ...study(OTHER), source: { bucket: "studies", key: "uploads/other.zip", versionId: "v7" } });
    t.outputs.objects.set(`s3://studies/async-out/${OTHER}.out`, JSON.stringify({ ...result(1), modelVersion: "another-model" }));
    expect(await t.invoke([notification("Completed", OTHER)])).toEqual([]);
    expect(await t.records.getModelInService()).toEqual(first);
    // Its stack is recorded (with its model's scores) and waits; the log says so without identifiers.
    expect(t.records.items.get(`${OTHER}-s0`)).toMatchObject({ status: "pending", scores: { modelVersion: "another-model" } });
    expect(t.lines.some((line) => line.includes("not in service"))).toBe(true);
  });

  describe("a re-score after a promotion", () => {
    const M2 = "drn_d_38-w1.0-x4-new";
    const rescoreNotification = (status: "Completed" | "Failed" = "Completed") =>
      notification(status, STUDY, {
        requestParameters: { endpointName: "scoring", inputLocation: `s3://studies/${rescoreRequestKey(STUDY, M2)}` },
        responseParameters:
          status === "Completed"
            ? { contentType: "application/json", outputLocation: `s3://studies/async-out/rescore-${STUDY}.out` }
            : { contentType: "application/json", failureLocation: `s3://studies/async-failures/rescore-${STUDY}.out` },
      });
    const rescored = (): ScoringResult => {
      const r = { ...result(3), modelVersion: M2 };
      r.stacks = r.stacks.map((stack) => ({ ...stack, stackUncertainty: 0.6 }));
      return r;
    };

    beforeEach(async () => {
      t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(3)));
      expect(await t.invoke([notification("Completed")])).toEqual([]);
      // Stack 1 was selected meanwhile; stack 0 and 2 wait in the pool. Then M2 is promoted.
      await t.records.transition(`${STUDY}-s1`, "pending", "selected", { selectedBy: "select-2026-W48" }, "2026-11-26T12:00:02.000Z");
      const first = (await t.records.getModelInService()) as NonNullable<Awaited<ReturnType<typeof t.records.getModelInService>>>;
      expect(
        await t.records.promoteModel(
          { modelVersion: M2, sequence: 2, since: "2026-11-27T00:00:00.000Z", source: "promotion" },
          first.sequence,
        ),
      ).toBe(true);
    });

    it("writes the new model's V, B, M and T on the stacks still pending, once however often it is told; never on a selected one", async () => {
      t.outputs.objects.set(`s3://studies/async-out/rescore-${STUDY}.out`, JSON.stringify(rescored()));
      for (let i = 0; i < 3; i++) expect(await t.invoke([rescoreNotification()])).toEqual([]);
      for (const index of [0, 2]) {
        expect(t.records.items.get(`${STUDY}-s${index}`)).toMatchObject({
          status: "pending",
          scores: { modelVersion: M2, stackUncertainty: 0.6 },
        });
      }
      expect(t.records.items.get(`${STUDY}-s1`)).toMatchObject({ status: "selected", scores: { modelVersion: result(1).modelVersion } });
      // The study record is not touched (it stays scored) and no stack is created twice.
      expect(t.records.items.get(STUDY)?.status).toBe("scored");
      expect(t.records.items.size).toBe(4);
      const logged = t.lines.filter((line) => line.includes("stacks re-scored")).map((line) => JSON.parse(line).rescored);
      expect(logged).toEqual([2, 0, 0]);
      expect(t.counts.filter(([m]) => m === "StacksRescored").reduce((n, [, v]) => n + v, 0)).toBe(2);
    });

    it("drops a result of a model that is not in service, and a failure leaves the stacks waiting", async () => {
      t.outputs.objects.set(`s3://studies/async-out/rescore-${STUDY}.out`, JSON.stringify({ ...rescored(), modelVersion: "yet-another" }));
      expect(await t.invoke([rescoreNotification()])).toEqual([]);
      expect(await t.invoke([rescoreNotification("Failed")])).toEqual([]);
      expect(t.records.items.get(`${STUDY}-s0`)?.scores?.modelVersion).toBe(result(1).modelVersion);
      expect(t.lines.some((line) => line.includes("not in service; dropped"))).toBe(true);
      expect(t.counts).toContainEqual(["RescoreResultsStale", 1]);
      expect(t.lines.some((line) => line.includes("re-score failed"))).toBe(true);
    });
  });

  it("uses the newest stored time model", async () => {
    const model = { ...PRIOR_TIME_MODEL, alpha: 0, beta: 0, gamma: Math.log(100), source: "fit" as const, n: 30, r2: 0.5 };
    t.timeModels.current = { version: 3, model };
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(1)));
    expect(await t.invoke([notification("Completed")])).toEqual([]);
    const prediction = t.records.items.get(`${STUDY}-s0`)?.prediction;
    expect(prediction).toMatchObject({ timeModelVersion: 3, level: 0.8 });
    // α = β = 0: the median is e^γ whatever the features; T (the mean) adds the predictive variance.
    expect(prediction?.medianSeconds).toBeCloseTo(100, 6);
    const expected = predictLabelingSeconds(model, { boundaryLength: 0, components: 0 });
    expect(prediction?.predictedSeconds).toBeCloseTo(expected.seconds, 6);
    expect(prediction?.predictedSeconds).toBeGreaterThan(100);
    expect(prediction?.low).toBeLessThan(100);
    expect(prediction?.high).toBeGreaterThan(100);
  });

  it("predicts with the configured prior (version 0) until a version is stored", async () => {
    const prior: TimePrior = { alpha: 0.2, beta: 0.1, gamma: Math.log(300), residualSd: 0.3, strength: 10 };
    const custom = setup(prior);
    await custom.records.createStack(study());
    custom.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(2)));
    expect(await custom.invoke([notification("Completed")])).toEqual([]);
    const features = { boundaryLength: 100, components: 1 };
    const prediction = custom.records.items.get(`${STUDY}-s1`)?.prediction;
    expect(prediction?.timeModelVersion).toBe(0);
    expect(prediction?.predictedSeconds).toBeCloseTo(predictLabelingSeconds(timeModelFromPrior(prior), features).seconds, 6);
    // Not the built-in prior's figure.
    expect(Math.abs((prediction?.predictedSeconds ?? 0) - predictLabelingSeconds(PRIOR_TIME_MODEL, features).seconds)).toBeGreaterThan(1);
  });

  it("parses TIME_MODEL_PRIOR at cold start and names it when it is bad", () => {
    const env = {
      TABLE_NAME: "t",
      METRICS_NAMESPACE: "IchAl/test",
      STUDIES_BUCKET: "b",
      TIME_MODEL_PRIOR: JSON.stringify({ alpha: 0.2, beta: 0.1, gamma: 5, residualSd: 0.3, strength: 10 }),
    };
    expect(recordScoreDepsFromEnvironment(env).config).toEqual({
      studiesBucket: "b",
      timePrior: { alpha: 0.2, beta: 0.1, gamma: 5, residualSd: 0.3, strength: 10 },
    });
    for (const bad of [undefined, "{", JSON.stringify({ alpha: 0.2, beta: 0.1, gamma: 5, residualSd: 0, strength: 10 })]) {
      expect(() => recordScoreDepsFromEnvironment({ ...env, TIME_MODEL_PRIOR: bad })).toThrow(EnvironmentError);
      expect(() => recordScoreDepsFromEnvironment({ ...env, TIME_MODEL_PRIOR: bad })).toThrow(/TIME_MODEL_PRIOR/);
    }
  });

  it("rejects on a 4xx failure and fails on a 5xx one; a late success changes nothing", async () => {
    const other = "fedcba9876543210fedcba9876543210";
    await t.records.createStack(study(other));
    t.outputs.objects.set(
      `s3://studies/async-failures/${STUDY}-error.out`,
      JSON.stringify({ status: 422, code: "PHI_PRESENT", reason: "PatientName present" }),
    );
    t.outputs.objects.set(
      `s3://studies/async-failures/${other}-error.out`,
      JSON.stringify({ status: 500, code: "INTERNAL", reason: "crash" }),
    );
    expect(await t.invoke([notification("Failed"), notification("Failed", other)])).toEqual([]);
    expect(t.records.items.get(STUDY)).toMatchObject({ status: "rejected", rejection: { code: "PHI_PRESENT" } });
    expect(t.records.items.get(other)).toMatchObject({ status: "failed", lastError: { code: "INTERNAL", message: "crash" } });
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(1)));
    expect(await t.invoke([notification("Completed")])).toEqual([]);
    expect(t.records.items.get(STUDY)?.status).toBe("rejected");
    expect(t.records.items.has(`${STUDY}-s0`)).toBe(false);
  });

  describe("a refused study's upload is moved to quarantine", () => {
    const quarantineKey = `quarantine/PHI_PRESENT/${STUDY}/Doe^Jane^Planted.zip`;
    const original = { bucket: "studies", key: PLANTED, versionId: "v1" };
    const refuse = () =>
      t.outputs.objects.set(
        `s3://studies/async-failures/${STUDY}-error.out`,
        JSON.stringify({ status: 422, code: "PHI_PRESENT", reason: "PatientName present" }),
      );

    it("copies that version, records the copy's key, then deletes the original version; redeliveries only repeat the delete", async () => {
      refuse();
      expect(await t.invoke([notification("Failed")])).toEqual([]);
      expect(t.objects.copies).toEqual([{ from: original, to: quarantineKey }]);
      expect(t.objects.deletions).toEqual([original]);
      expect(t.objects.heads.has(`${PLANTED}@v1`)).toBe(false);
      expect(t.records.items.get(STUDY)?.rejection).toEqual({ code: "PHI_PRESENT", reason: "PatientName present", quarantineKey });
      const before = structuredClone(t.records.items.get(STUDY));
      for (let i = 0; i < 3; i++) expect(await t.invoke([notification("Failed")])).toEqual([]);
      expect(t.objects.copies).toHaveLength(1);
      expect(t.objects.deletions).toEqual([original, original, original, original]);
      expect(t.records.items.get(STUDY)).toEqual(before);
      expect(t.lines.join("\n")).not.toContain("Planted");
    });

    it("a crash between the record and the delete is finished by the redelivery; the copy is never lost", async () => {
      refuse();
      t.objects.failDeletes = 1;
      expect(await t.invoke([notification("Failed")])).toEqual(["m0"]);
      expect(t.records.items.get(STUDY)?.rejection?.quarantineKey).toBe(quarantineKey);
      expect(t.objects.heads.has(`${PLANTED}@v1`)).toBe(true);
      expect(await t.invoke([notification("Failed")])).toEqual([]);
      expect(t.objects.heads.has(`${PLANTED}@v1`)).toBe(false);
      expect(t.objects.copies).toEqual([{ from: original, to: quarantineKey }]);
    });

    it("records the rejection without a quarantine key when the version is already gone", async () => {
      refuse();
      t.objects.heads.clear();
      expect(await t.invoke([notification("Failed")])).toEqual([]);
      expect(t.records.items.get(STUDY)).toMatchObject({ status: "rejected", rejection: { code: "PHI_PRESENT" } });
      expect(t.records.items.get(STUDY)?.rejection?.quarantineKey).toBeUndefined();
      expect(t.objects.deletions).toEqual([]);
    });

    it("moves nothing for a scored study or a 5xx failure", async () => {
      t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(1)));
      expect(await t.invoke([notification("Completed"), notification("Completed")])).toEqual([]);
      const failedStudy = "fedcba9876543210fedcba9876543210";
      await t.records.createStack(study(failedStudy));
      t.outputs.objects.set(
        `s3://studies/async-failures/${failedStudy}-error.out`,
        JSON.stringify({ status: 500, code: "X", reason: "crash" }),
      );
      expect(await t.invoke([notification("Failed", failedStudy), notification("Failed", failedStudy)])).toEqual([]);
      expect(t.objects.copies).toEqual([]);
      expect(t.objects.deletions).toEqual([]);
    });
  });

  it("fails a study whose result breaks the scoring contract instead of retrying forever", async () => {
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify({ modelVersion: "x", stacks: [] }));
    expect(await t.invoke([notification("Completed")])).toEqual([]);
    expect(t.records.items.get(STUDY)).toMatchObject({ status: "failed", lastError: { code: "ScoringResponseError" } });
  });

  it("reports only the failed messages: malformed, unknown study, missing output, transient S3 error", async () => {
    const unknown = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const missing = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const flaky = "cccccccccccccccccccccccccccccccc";
    await t.records.createStack(study(missing));
    await t.records.createStack(study(flaky));
    t.outputs.objects.set(`s3://studies/async-out/${STUDY}.out`, JSON.stringify(result(1)));
    t.outputs.failNext = 0;
    const failed = await t.invoke([
      notification("Completed"),
      "not json",
      notification("Completed", unknown),
      notification("Completed", missing),
    ]);
    expect(failed).toEqual(["m1", "m2", "m3"]);
    expect(t.records.items.get(STUDY)?.status).toBe("scored");
    t.outputs.failNext = 1;
    expect(await t.invoke([notification("Completed", flaky)])).toEqual(["m0"]);
    expect(t.records.items.get(flaky)?.status).toBe("received");
    const logs = t.lines.join("\n");
    expect(logs).toContain("NOT_JSON");
    expect(logs).toContain("UNKNOWN_STUDY");
    expect(logs).toContain("ScoringOutputMissingError");
    expect(logs).toContain("SlowDown");
  });
});
