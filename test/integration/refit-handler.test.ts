/**
 * The refit handler end to end against moto server with the real SDK v3 clients and adapters: labeled
 * and pending stacks in the records table (by-status GSI), TIMEMODEL versions written with a conditional
 * put, re-predictions by conditional same-status updates, the round record for the last-round report.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.hoisted(() => {
  // The module-scope composition root parses these at import (no AWS call is made).
  Object.assign(process.env, { TABLE_NAME: "records", AWS_REGION: process.env.AWS_REGION ?? "us-east-1" });
});

import { DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import type { SelectionRound, StackRecord } from "../../lambdas/contracts/records.js";
import { recordKeys } from "../../lambdas/contracts/records-table.js";
import { PRIOR_TIME_MODEL } from "../../lambdas/domain/labeling-time-model.js";
import type { RefitOutput } from "../../lambdas/domain/refit.js";
import type { TimeModelRegistry } from "../../lambdas/domain/time-model-store.js";
import { createRefitHandler } from "../../lambdas/handlers/refit-handler.js";
import { jsonLogger } from "../../lambdas/handlers/shared/logger.js";
import { lambdaContext } from "../handlers/ingest-fakes.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const NOW = "2026-11-30T06:00:00.000Z"; // Monday of 2026-W49
const W48 = "select-2026-W48";
const TRUTH = { alpha: 0.66, beta: 0.45, gamma: Math.log(55) };

let store: DynamoRecordStore;
let timeModels: DynamoTimeModelStore;
let doc: DynamoDBDocumentClient;
let refit: (event: unknown) => Promise<RefitOutput>;

function featuresOf(i: number) {
  if (i % 6 === 0) return { boundaryLength: 0, components: 0 };
  return { boundaryLength: 25 + ((i * 389) % 1201) * 3.25, components: 1 + ((i * 7) % 10) };
}

/** Noise-free seconds from the true model, computed independently of the code under test. */
function trueSeconds(f: { boundaryLength: number; components: number }, m = TRUTH) {
  return Math.exp(m.alpha * Math.log1p(f.boundaryLength) + m.beta * Math.log1p(f.components) + m.gamma);
}

function stack(id: string, i: number, status: StackRecord["status"], extra: Partial<StackRecord> = {}): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:${String(i % 60).padStart(2, "0")}:00.000Z`;
  return {
    stackId: id,
    kind: "stack",
    status,
    source: { bucket: "studies", key: `uploads/s${i}.zip`, versionId: "v1", seriesUid: `1.2.${i}` },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: 0.1 + (i % 9) / 10, topK: 8, ...featuresOf(i), stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: 400 + i, medianSeconds: 380, low: 100, high: 1200, level: 0.9, timeModelVersion: 0 },
    ...extra,
  };
}

function labeled(i: number, roundId = W48): StackRecord {
  return stack(`done-${String(i).padStart(3, "0")}`, i, "labeled", {
    selectedBy: roundId,
    completion: {
      activeSeconds: trueSeconds(featuresOf(i)),
      annotator: "a@x.org",
      labelLocation: `s3://labels/${i}.nii.gz`,
      completedAt: "2026-11-27T12:00:00.000Z",
    },
  });
}

const pendingId = (i: number) => `pool-${String(i).padStart(3, "0")}`;

function round(roundId: string, selected: string[]): SelectionRound {
  return {
    roundId,
    strategy: "knapsack",
    budgetSeconds: 36_000,
    resolutionSeconds: 1,
    poolSize: 100,
    selected,
    totalUncertainty: 3,
    totalPredictedSeconds: 12_345,
    optimal: true,
    timeModelVersion: 0,
    createdAt: "2026-11-23T06:00:00.000Z",
    status: "completed",
  };
}

async function seed(records: StackRecord[]) {
  for (const r of records) expect(await store.createStack(r)).toBe(true);
}

async function storedVersions(): Promise<Record<string, unknown>[]> {
  const out = await doc.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": "TIMEMODEL" },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  timeModels = new DynamoTimeModelStore(dynamo, TABLE);
  doc = DynamoDBDocumentClient.from(dynamo);
  const handler = createRefitHandler({ records: store, timeModels, log: jsonLogger({ lambda: "refit" }, () => {}) });
  refit = (event) => handler(event, lambdaContext);
});

describe("refit handler on moto", () => {
  it("fits the known model, stores TIMEMODEL V#000001, re-predicts pending stacks, reports the last round", async () => {
    const done = Array.from({ length: 30 }, (_, i) => labeled(i + 1));
    await seed(done);
    await seed([0, 1, 2, 3].map((i) => stack(pendingId(i), 50 + i, "pending")));
    // A stack already selected (not pending) keeps its prediction.
    await seed([stack("picked", 60, "selected", { selectedBy: "select-2026-W49" })]);
    // The round selected 28 of the 30 completed stacks (2 came from elsewhere) plus one still open.
    await store.createRound(round(W48, [...done.slice(0, 28).map((r) => r.stackId), "still-open"]));

    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 1, fitted: true, n: 30, repredicted: 4 });
    expect(out.alpha).toBeCloseTo(TRUTH.alpha, 8);
    expect(out.beta).toBeCloseTo(TRUTH.beta, 8);
    expect(out.gamma).toBeCloseTo(TRUTH.gamma, 8);
    expect(out.r2).toBeCloseTo(1, 10);

    const predicted = done.slice(0, 28).reduce((s, r) => s + (r.prediction?.predictedSeconds ?? 0), 0);
    const actual = done.slice(0, 28).reduce((s, r) => s + (r.completion?.activeSeconds ?? 0), 0);
    expect(out.lastRound).toEqual({
      roundId: W48,
      stacks: 28,
      predictedSeconds: expect.closeTo(predicted, 6),
      actualSeconds: expect.closeTo(actual, 6),
      ratio: expect.closeTo(actual / predicted, 10),
    });

    // The stored item: key layout, fields, and what the adapter reads back.
    const item = (await doc.send(new GetCommand({ TableName: TABLE, Key: recordKeys.timeModel(1), ConsistentRead: true }))).Item;
    expect(item).toMatchObject({ pk: "TIMEMODEL", sk: "V#000001", version: 1, createdAt: NOW, source: "fit", n: 30 });
    expect(item?.alpha).toBeCloseTo(TRUTH.alpha, 8);
    expect(item?.design?.inverse).toHaveLength(3);
    const latest = await timeModels.latest();
    expect(latest?.version).toBe(1);
    expect(latest?.model).toMatchObject({ n: 30, source: "fit" });
    expect(latest?.model.residualSd).toBeLessThan(1e-7);

    for (let i = 0; i < 4; i++) {
      const r = await store.getStack(pendingId(i));
      expect(r).toMatchObject({ status: "pending", updatedAt: NOW });
      expect(r?.prediction?.timeModelVersion).toBe(1);
      expect(r?.prediction?.predictedSeconds).toBeCloseTo(trueSeconds(featuresOf(50 + i)), 5);
    }
    expect((await store.listByStatus("pending")).map((r) => r.stackId)).toHaveLength(4);
    expect((await store.getStack("picked"))?.prediction).toEqual(stack("picked", 60, "selected").prediction);

    // Unchanged n: nothing new is stored and nothing is re-predicted.
    expect(await refit({ now: NOW })).toMatchObject({ version: 1, fitted: false, repredicted: 0 });
    expect(await storedVersions()).toHaveLength(1);
  });

  it("stores version latest + 1 when completions arrived, and re-predicts stacks on older versions only", async () => {
    await seed(Array.from({ length: 21 }, (_, i) => labeled(i + 1)));
    await seed([stack(pendingId(0), 70, "pending")]);
    expect((await refit({ now: NOW })).version).toBe(1);
    // New completions and a stack scored with version 1 after the first refit.
    await seed([labeled(22), labeled(23)]);
    const onV1 = stack(pendingId(1), 71, "pending");
    await seed([{ ...onV1, prediction: { ...(onV1.prediction as NonNullable<StackRecord["prediction"]>), timeModelVersion: 1 } }]);
    const out = await refit({ now: "2026-12-07T06:00:00Z" });
    expect(out).toMatchObject({ version: 2, fitted: true, n: 23, repredicted: 2 });
    expect((await storedVersions()).map((v) => [v.sk, v.n])).toEqual([
      ["V#000001", 21],
      ["V#000002", 23],
    ]);
    for (const id of [pendingId(0), pendingId(1)]) expect((await store.getStack(id))?.prediction?.timeModelVersion).toBe(2);
  });

  it("4 concurrent refits that all saw no version store exactly one new version and all report it", async () => {
    await seed(Array.from({ length: 26 }, (_, i) => labeled(i + 1)));
    await seed([0, 1, 2].map((i) => stack(pendingId(i), 80 + i, "pending")));
    // A barrier on the first read: every refit sees "no version yet" before any of them writes, so all
    // four race their conditional puts of V#000001 on the real table.
    const RUNS = 4;
    let arrived = 0;
    let release: () => void = () => {};
    const allRead = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handlers = Array.from({ length: RUNS }, () => {
      let first = true;
      const racing: TimeModelRegistry = {
        latest: async () => {
          const latest = await timeModels.latest();
          if (first) {
            first = false;
            if (++arrived === RUNS) release();
            await allRead;
          }
          return latest;
        },
        put: (entry, createdAt) => timeModels.put(entry, createdAt),
      };
      return createRefitHandler({ records: store, timeModels: racing, log: jsonLogger({ lambda: "refit" }, () => {}) });
    });
    const outs = await Promise.all(handlers.map((h) => h({ now: NOW }, lambdaContext)));
    expect(outs.filter((o) => o.fitted)).toHaveLength(1);
    for (const o of outs) expect(o).toMatchObject({ version: 1, n: 26 });
    const versions = await storedVersions();
    expect(versions.map((v) => v.sk)).toEqual(["V#000001"]);
    for (let i = 0; i < 3; i++) expect((await store.getStack(pendingId(i)))?.prediction?.timeModelVersion).toBe(1);
  });

  it("the adapter's put is conditional: an existing version is never overwritten", async () => {
    const model = { ...PRIOR_TIME_MODEL, source: "fit" as const, n: 40, r2: 0.5 };
    expect(await timeModels.put({ version: 3, model }, NOW)).toBe(true);
    expect(await timeModels.put({ version: 3, model: { ...model, alpha: 9, n: 41 } }, "2026-12-01T00:00:00.000Z")).toBe(false);
    expect(await timeModels.latest()).toEqual({ version: 3, model });
    await expect(timeModels.put({ version: 0, model }, NOW)).rejects.toThrow(/version 0/);
  });

  it("below 20 completions keeps the prior (version 0) and writes nothing", async () => {
    await seed(Array.from({ length: 19 }, (_, i) => labeled(i + 1)));
    await seed([stack(pendingId(0), 90, "pending")]);
    const before = await store.getStack(pendingId(0));
    const out = await refit({ now: NOW });
    expect(out).toMatchObject({ version: 0, fitted: false, n: 19, alpha: PRIOR_TIME_MODEL.alpha, repredicted: 0 });
    expect(await storedVersions()).toHaveLength(0);
    expect(await store.getStack(pendingId(0))).toEqual(before);
  });
});
