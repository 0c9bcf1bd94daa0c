import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { RECORDS_TABLE } from "../../lambdas/contracts/records-table.js";
import { useLocalAws } from "../support/local-aws.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";

function received(stackId: string, receivedAt: string): StackRecord {
  return {
    stackId,
    status: "received",
    source: { bucket: "studies", key: `uploads/${stackId}.zip`, versionId: "v1" },
    receivedAt,
    updatedAt: receivedAt,
  };
}

async function freshStore() {
  const client = aws.dynamo();
  await createRecordsTable(client, TABLE);
  return { client, store: new DynamoRecordStore(client, TABLE) };
}

describe("DynamoRecordStore on moto server (real SDK v3)", () => {
  it("creates the records table with the by-status GSI", async () => {
    const { client } = await freshStore();
    const table = await client.send(new DescribeTableCommand({ TableName: TABLE }));
    const gsi = table.Table?.GlobalSecondaryIndexes?.[0];
    expect(gsi?.IndexName).toBe(RECORDS_TABLE.statusIndex.name);
    expect(gsi?.KeySchema?.map((k) => k.AttributeName)).toEqual([
      RECORDS_TABLE.statusIndex.partitionKey,
      RECORDS_TABLE.statusIndex.sortKey,
    ]);
  });

  it("re-predicts a pending stack only with a newer time-model version", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    const prediction = (version: number, seconds: number) => ({
      predictedSeconds: seconds,
      medianSeconds: seconds * 0.9,
      low: seconds / 2,
      high: seconds * 2,
      level: 0.9,
      timeModelVersion: version,
    });
    await store.createStack({ ...received("p", at), status: "pending", prediction: prediction(3, 300) });
    await store.createStack({ ...received("s", at), status: "selected", prediction: prediction(1, 100) });
    expect(await store.repredict("p", prediction(5, 500), at)).toBe(true);
    // A refit that read an older version arrives late: refused, the newer T stays.
    expect(await store.repredict("p", prediction(4, 400), at)).toBe(false);
    expect(await store.repredict("p", prediction(5, 999), at)).toBe(false);
    expect((await store.getStack("p"))?.prediction?.predictedSeconds).toBe(500);
    // A stack that left `pending` is never re-predicted.
    expect(await store.repredict("s", prediction(9, 900), at)).toBe(false);
    expect((await store.getStack("s"))?.prediction?.predictedSeconds).toBe(100);
    expect(await store.repredict("missing", prediction(9, 900), at)).toBe(false);
  });

  it("keeps one model in service: the first claim holds, racers agree, a promotion needs the sequence it read", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    expect(await store.getModelInService()).toBeUndefined();
    const claims = await Promise.all(
      ["a", "b", "c", "d"].map((v) => store.claimModelInService({ modelVersion: `m-${v}`, sequence: 1, since: at, source: "first-score" })),
    );
    expect(new Set(claims.map((c) => c.modelVersion)).size).toBe(1);
    expect(await store.getModelInService()).toEqual(claims[0]);
    const next = { modelVersion: "m-next", sequence: 2, since: at, source: "promotion" as const };
    expect(await store.promoteModel(next, 1)).toBe(true);
    // A second promotion that read sequence 1 lost: the first stays.
    expect(await store.promoteModel({ ...next, modelVersion: "m-other" }, 1)).toBe(false);
    expect(await store.getModelInService()).toEqual(next);
    expect(await store.claimModelInService({ modelVersion: "m-late", sequence: 1, since: at, source: "first-score" })).toEqual(next);
  });

  it("re-scores a pending stack once per model, never a stack that left the pool", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    const scores = (modelVersion: string, v: number) => ({
      stackUncertainty: v,
      topK: 8,
      boundaryLength: 10,
      components: 2,
      stackScore: 0.5,
      modelVersion,
    });
    const prediction = { predictedSeconds: 300, medianSeconds: 280, low: 150, high: 600, level: 0.8, timeModelVersion: 1 };
    await store.createStack({ ...received("p", at), status: "pending", scores: scores("m1", 0.1), prediction });
    await store.createStack({ ...received("s", at), status: "selected", scores: scores("m1", 0.1), prediction });
    const geometry = {
      shape: [2, 3, 4] as [number, number, number],
      affine: [
        [-1, 0, 0, 0],
        [0, -1, 0, 0],
        [0, 0, 5, 0],
        [0, 0, 0, 1],
      ],
    };
    expect(await store.rescoreStack("p", { scores: scores("m2", 0.7), prediction, geometry }, at)).toBe(true);
    expect(await store.rescoreStack("p", { scores: scores("m2", 0.9), prediction }, at)).toBe(false);
    expect(await store.getStack("p")).toMatchObject({ status: "pending", scores: { modelVersion: "m2", stackUncertainty: 0.7 }, geometry });
    expect(await store.rescoreStack("s", { scores: scores("m2", 0.7), prediction }, at)).toBe(false);
    expect((await store.getStack("s"))?.scores?.modelVersion).toBe("m1");
    expect(await store.rescoreStack("missing", { scores: scores("m2", 0.7), prediction }, at)).toBe(false);
    // The model record and stacks share the table: the pool lists stacks only.
    await store.claimModelInService({ modelVersion: "m2", sequence: 1, since: at, source: "first-score" });
    expect((await store.listByStatus("pending")).map((r) => r.stackId)).toEqual(["p"]);
  });

  it("creates a stack with its content claim atomically: the first holds the key, a redelivery changes nothing, racers agree", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    const withKey = (stackId: string, key: string) => ({ ...received(stackId, at), status: "pending" as const, contentSha256: key });
    const key = "ab".repeat(32);
    expect(await store.createStackWithContent(withKey("first-s0", key), at)).toBe("first-s0");
    const stored = await store.getStack("first-s0");
    expect(stored?.contentSha256).toBe(key);
    expect(await store.createStackWithContent(withKey("first-s0", key), at)).toBe("first-s0");
    expect(await store.getStack("first-s0")).toEqual(stored);
    // Another stack with the same voxels: told the holder, and nothing of it is written.
    expect(await store.createStackWithContent(withKey("second-s0", key), at)).toBe("first-s0");
    expect(await store.getStack("second-s0")).toBeUndefined();
    // Eight stacks with the same new voxels at once: exactly one holds the key and exists, and every caller is told which.
    const other = "cd".repeat(32);
    const holders = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.createStackWithContent(withKey(`racer-${i}-s0`, other), at)),
    );
    expect(new Set(holders).size).toBe(1);
    const existing = await Promise.all(Array.from({ length: 8 }, (_, i) => store.getStack(`racer-${i}-s0`)));
    expect(existing.filter(Boolean).map((r) => r?.stackId)).toEqual([holders[0]]);
    // A stack recorded before content keys existed keeps its record; no claim is invented for it.
    await store.createStack(received("legacy-s0", at));
    expect(await store.createStackWithContent(withKey("legacy-s0", "ef".repeat(32)), at)).toBe("legacy-s0");
    expect(await store.createStackWithContent(withKey("later-s0", "ef".repeat(32)), at)).toBe("later-s0");
    // Claims are not stacks: only the created stacks are in the by-status index.
    expect((await store.listByStatus("pending")).map((r) => r.stackId).sort()).toEqual(["first-s0", holders[0], "later-s0"].sort());
  });

  it("creates a stack once: a repeated create changes nothing", async () => {
    const { store } = await freshStore();
    expect(await store.createStack(received("a", "2026-11-20T10:00:00.000Z"))).toBe(true);
    expect(await store.createStack({ ...received("a", "2026-11-21T10:00:00.000Z") })).toBe(false);
    expect((await store.getStack("a"))?.receivedAt).toBe("2026-11-20T10:00:00.000Z");
    expect(await store.getStack("missing")).toBeUndefined();
  });

  it("lists stacks by status through the GSI, oldest first, across pages", async () => {
    const { client, store } = await freshStore();
    let queries = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "QueryCommand") queries++;
        return next(args);
      },
      { step: "initialize", name: "countQueries" },
    );
    // Large items force DynamoDB's 1 MB query pages, exercising LastEvaluatedKey paging.
    const padding = "x".repeat(40_000);
    const ids = Array.from({ length: 60 }, (_, i) => `stack-${String(i).padStart(3, "0")}`);
    for (const [i, id] of [...ids].reverse().entries()) {
      const record = received(id, `2026-11-20T10:${String(59 - i).padStart(2, "0")}:00.000Z`);
      await store.createStack({ ...record, source: { ...record.source, key: `uploads/${id}-${padding}` } });
    }
    const now = "2026-11-21T00:00:00.000Z";
    const scores = { stackUncertainty: 0.2, topK: 200, boundaryLength: 10, components: 1, stackScore: 0.9, modelVersion: "m1" };
    for (const id of ids.slice(0, 45)) expect(await store.transition(id, "received", "pending", { scores }, now)).toBe(true);

    const pending = await store.listByStatus("pending");
    expect(pending.map((r) => r.stackId)).toEqual(ids.slice(0, 45));
    expect(pending[0]?.scores).toEqual(scores);
    expect(queries).toBeGreaterThan(1);
    expect((await store.listByStatus("received")).map((r) => r.stackId)).toEqual(ids.slice(45));
  });

  it("with the uninvoked guard, moves a failed record only while it has no scoring", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    await store.createStack({ ...received("never-invoked", at), status: "failed" });
    const scoring = { requestLocation: "s3://b/r.json", inferenceId: "i-1", outputLocation: "s3://b/o.out", invokedAt: at };
    await store.createStack({ ...received("invoked", at), status: "failed", scoring });
    expect(await store.transition("invoked", "failed", "scored", { stackIds: [] }, at, { uninvoked: true })).toBe(false);
    expect(await store.transition("never-invoked", "failed", "scored", { stackIds: [] }, at, { uninvoked: true })).toBe(true);
    expect((await store.getStack("invoked"))?.status).toBe("failed");
    expect((await store.getStack("never-invoked"))?.status).toBe("scored");
  });

  it("refuses a transition from a state the stack is no longer in (late or repeated event)", async () => {
    const { store } = await freshStore();
    await store.createStack(received("b", "2026-11-20T10:00:00.000Z"));
    const t1 = "2026-11-20T11:00:00.000Z";
    expect(await store.transition("b", "received", "pending", {}, t1)).toBe(true);
    expect(await store.transition("b", "pending", "selected", { selectedBy: "select-2026-W48" }, t1)).toBe(true);
    // A second round must not select it again, and a late scoring result must not move it back.
    expect(await store.transition("b", "pending", "selected", { selectedBy: "select-2026-W49" }, t1)).toBe(false);
    expect(await store.transition("b", "received", "pending", {}, t1)).toBe(false);
    const b = await store.getStack("b");
    expect(b).toMatchObject({ status: "selected", selectedBy: "select-2026-W48" });
    expect(await store.listByStatus("pending")).toEqual([]);
  });

  it("fails an invocation only under its own claim and without scoring; a failed study without scoring is claimable again", async () => {
    const { store } = await freshStore();
    const at = "2026-11-20T10:00:00.000Z";
    const later = "2026-11-20T10:01:00.000Z";
    const error = { code: "ServiceUnavailable", message: "last delivery (5 of 5): endpoint down", at: later };
    await store.createStack(received("f", at));
    expect(await store.claimInvocation("f", { token: "t1", expiresAt: "2026-11-20T10:05:00.000Z" }, at)).toBe(true);
    expect(await store.failInvocation("f", "someone-else", error, later)).toBe(false);
    expect(await store.failInvocation("f", "t1", error, later)).toBe(true);
    const failed = await store.getStack("f");
    expect(failed).toMatchObject({ status: "failed", lastError: error, updatedAt: later });
    expect(failed?.invokeClaim).toBeUndefined();
    expect((await store.listByStatus("failed")).map((r) => r.stackId)).toEqual(["f"]);
    // Without a claim there is nothing to fail.
    expect(await store.failInvocation("f", "t1", error, later)).toBe(false);

    // A re-drive claims it back to `received` (and into the received index).
    expect(await store.claimInvocation("f", { token: "t2", expiresAt: "2026-11-20T10:10:00.000Z" }, later)).toBe(true);
    expect((await store.getStack("f"))?.status).toBe("received");
    expect((await store.listByStatus("received")).map((r) => r.stackId)).toEqual(["f"]);
    expect(await store.listByStatus("failed")).toEqual([]);
    const scoring = {
      requestLocation: "s3://studies/scoring-requests/f.json",
      inferenceId: "i-1",
      outputLocation: "s3://studies/out/i-1.out",
      invokedAt: later,
    };
    expect(await store.completeInvocation("f", "t2", scoring, later)).toBe(true);
    // Scoring requested: failing the invocation is refused even under a (new) claim.
    expect(await store.failInvocation("f", "t2", error, later)).toBe(false);

    // A study that record-score failed (scoring was requested, the container failed) is never re-claimed.
    await store.createStack({ ...received("g", at), status: "failed", scoring, lastError: error });
    expect(await store.claimInvocation("g", { token: "t3", expiresAt: "2026-11-20T10:10:00.000Z" }, later)).toBe(false);
    expect((await store.getStack("g"))?.status).toBe("failed");
  });
});
