/**
 * The completion API handler against moto server (real SDK v3 DynamoDB client and adapter): a round
 * selected and shared out by the real select and notify code, then API Gateway proxy events as the
 * Cognito authorizer delivers them. Exactly one completion under concurrent identical posts; no write
 * for someone else's stack; the worklist shows the caller's stacks; a mask PUT through the presigned URL
 * (real presigner, moto's S3) is checked and kept under labels/, a bad one refused and recorded.
 * (moto does not verify signatures: that the URL signs type and length is checked on the URL itself.)
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { beforeEach, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { maskObjectsClient, S3MaskObjects, S3ViewerObjects } from "../../lambdas/adapters/s3-mask-objects.js";
import {
  type CompletionResponse,
  MaskUploadResponseSchema,
  ViewerResponseSchema,
  WorklistResponseSchema,
} from "../../lambdas/contracts/completion-api.js";
import type { AnnotatorShare } from "../../lambdas/contracts/records.js";
import { checkMask, encodeMask } from "../../lambdas/domain/nifti-mask.js";
import { notifyAnnotators } from "../../lambdas/domain/notify.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { createCompleteHandler } from "../../lambdas/handlers/complete-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";
import { lambdaContext, RecordingMailer } from "../support/in-memory-ports.js";
import { useLocalAws } from "../support/local-aws.js";
import {
  AMY,
  ANNOTATORS_BY_SUB,
  apiEvent,
  FIXTURE_GEOMETRY,
  fixtureLabels,
  fixtureMaskBytes,
  fixtureUploadKey,
  PLANTED_KEY,
  pendingStack,
  ZED,
} from "../support/round-fixtures.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const BUCKET = "studies";
const NOW = "2026-11-26T06:00:00.000Z";
const ROUND = "select-2026-W48";

let store: DynamoRecordStore;
let updates: number;
let call: (event: unknown) => Promise<{ statusCode: number; body: string; json: Record<string, unknown> }>;
let amy: AnnotatorShare;
let zed: AnnotatorShare;
let s3: S3Client;

beforeEach(async () => {
  const dynamo = aws.dynamo();
  updates = 0;
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (/Update/.test(context.commandName ?? "")) updates++; // a failed condition throws before this line
      return out;
    },
    { step: "initialize", name: "countUpdates" },
  );
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  for (let i = 0; i < 10; i++) expect(await store.createStack(pendingStack(i, 400 + 50 * i))).toBe(true);
  await runSelectionRound(NOW, { records: store, settings: { budgetSeconds: 2 * 3600, resolutionSeconds: 1, timeZone: "UTC" } });
  let n = 0;
  await notifyAnnotators(ROUND, {
    records: store,
    mailer: new RecordingMailer(),
    settings: { sender: "ich-al@example.org", annotators: [AMY, ZED], budgetSeconds: 7200, worklistUrl: "https://x.org/w" },
    clock: () => NOW,
    newToken: () => `t${n++}`,
  });
  const shares = (await store.getRound(ROUND))?.assignment?.annotators ?? [];
  amy = shares.find((s) => s.annotator === AMY) as AnnotatorShare;
  zed = shares.find((s) => s.annotator === ZED) as AnnotatorShare;
  expect(amy.stackIds.length).toBeGreaterThan(0);
  expect(zed.stackIds.length).toBeGreaterThan(0);
  s3 = aws.s3();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
  // Every stack's fixture upload 1 is a good mask (the presigned path has its own test below).
  const mask = fixtureMaskBytes();
  for (let i = 0; i < 10; i++) {
    const stackId = pendingStack(i, 0).stackId;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: fixtureUploadKey(stackId), Body: mask }));
  }
  const handler = createCompleteHandler({
    records: store,
    annotators: ANNOTATORS_BY_SUB,
    clock: () => new Date().toISOString(),
    timeZone: "UTC",
    log: lambdaLogger("test", () => {}),
    masks: new S3MaskObjects(maskObjectsClient({ ...LOCAL_AWS, endpoint: aws.endpoint, forcePathStyle: true }), BUCKET),
    viewer: new S3ViewerObjects(maskObjectsClient({ ...LOCAL_AWS, endpoint: aws.endpoint, forcePathStyle: true }), BUCKET),
  });
  call = async (event) => {
    const res = await handler(event, lambdaContext);
    return { ...res, json: JSON.parse(res.body) as Record<string, unknown> };
  };
  updates = 0;
});

const post = (stackId: string, activeSeconds = 512, email: string | null = AMY, maskUploadKey = fixtureUploadKey(stackId)) =>
  apiEvent("POST", "/completions", { stackId, activeSeconds, maskUploadKey }, email);

async function objectBytes(key: string): Promise<Uint8Array> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await out.Body?.transformToByteArray()) ?? new Uint8Array(0);
}

describe("complete handler on moto: masks", () => {
  it("a mask PUT through the presigned URL is checked and kept normalised under labels/; the URL signs type and length", async () => {
    const stackId = amy.stackIds[0] as string;
    const mask = fixtureMaskBytes();
    const issued = await call(
      apiEvent("POST", "/stacks/{stackId}/mask-uploads", { bytes: mask.byteLength, gzip: true }, AMY, false, { stackId }),
    );
    expect(issued.statusCode).toBe(200);
    const upload = MaskUploadResponseSchema.parse(issued.json);
    const url = new URL(upload.url);
    expect(url.searchParams.get("X-Amz-SignedHeaders")?.split(";")).toEqual(
      expect.arrayContaining(["content-length", "content-type", "host"]),
    );
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect([...url.searchParams.keys()].filter((k) => k.toLowerCase().startsWith("x-amz-checksum"))).toEqual([]);
    const put = await fetch(upload.url, { method: "PUT", headers: upload.headers, body: mask });
    expect(put.status).toBe(200);
    const res = await call(post(stackId, 300, AMY, upload.uploadKey));
    expect(res.statusCode).toBe(200);
    const completion = (res.json as unknown as CompletionResponse).completion;
    expect(completion.mask).toMatchObject({ uploadKey: upload.uploadKey, labeledVoxels: 6, values: [0, 3] });
    const stored = checkMask(await objectBytes(completion.mask?.key ?? ""), FIXTURE_GEOMETRY);
    expect(stored.ok && Buffer.from(stored.labels).equals(Buffer.from(fixtureLabels()))).toBe(true);
    expect(completion.mask?.key).toMatch(/^labels\/stack-\d{3}\/[0-9a-f-]{36}\.nii\.gz$/);
    expect((await objectBytes(upload.uploadKey)).byteLength).toBe(mask.byteLength);
  });

  it("a refused mask: 422 with the reason, a MASKREFUSAL item beside the stack, the stack still selected", async () => {
    const stackId = amy.stackIds[0] as string;
    const short = encodeMask(new Uint8Array(3 * 6 * 8), { ...FIXTURE_GEOMETRY, shape: [3, 6, 8] });
    const key = fixtureUploadKey(stackId, 2);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: short }));
    const res = await call(post(stackId, 300, AMY, key));
    expect([res.statusCode, res.json.code, res.json.maskCode]).toEqual([422, "MASK_REFUSED", "GEOMETRY_MISMATCH"]);
    expect(res.json.message).toMatch(/frames/);
    expect((await store.getStack(stackId))?.status).toBe("selected");
    expect(await store.listMaskRefusals(stackId)).toEqual([
      { code: "GEOMETRY_MISMATCH", reason: res.json.message, uploadKey: key, annotator: AMY, at: expect.any(String) },
    ]);
    // The refusal item never shows up as a stack.
    expect((await store.listByStatus("selected")).map((r) => r.stackId)).toContain(stackId);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "labels/" }));
    expect(listed.KeyCount ?? 0).toBe(0);
  });
});

describe("complete handler on moto: the viewer's volumes", () => {
  const study = "ab".repeat(16);
  const stackId = `${study}-s0`;
  const volumes = { ct: "ct volume", heatmap: "heatmap volume", js: "js volume" };

  beforeEach(async () => {
    const base = pendingStack(42, 600);
    expect(await store.createStack({ ...base, stackId, status: "selected", selectedBy: ROUND, assignedTo: AMY })).toBe(true);
    for (const [name, body] of Object.entries(volumes)) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `overlays/${study}/stack-0-${name}.nii.gz`, Body: body }));
    }
  });

  it("presigned GETs of the CT and overlay volumes, for the stack's annotator only, with the mask grid", async () => {
    const res = await call(apiEvent("GET", "/stacks/{stackId}/viewer", undefined, AMY, false, { stackId }));
    expect(res.statusCode).toBe(200);
    const viewer = ViewerResponseSchema.parse(res.json);
    expect(viewer.geometry).toEqual(FIXTURE_GEOMETRY);
    for (const [name, body] of Object.entries(volumes)) {
      const url = viewer.volumes[name as keyof typeof volumes];
      expect(new URL(url).searchParams.get("X-Amz-Expires")).toBe("900");
      expect(new URL(url).pathname).toBe(`/${BUCKET}/overlays/${study}/stack-0-${name}.nii.gz`);
      expect(await (await fetch(url)).text()).toBe(body);
    }
    const other = await call(apiEvent("GET", "/stacks/{stackId}/viewer", undefined, ZED, false, { stackId }));
    expect([other.statusCode, other.json.code]).toEqual([403, "NOT_ASSIGNED"]);
  });

  it("404 for a stack scored before the container wrote viewer volumes", async () => {
    const res = await call(apiEvent("GET", "/stacks/{stackId}/viewer", undefined, AMY, false, { stackId: amy.stackIds[0] as string }));
    expect([res.statusCode, res.json.code]).toEqual([404, "NOT_FOUND"]);
  });
});

describe("complete handler on moto", () => {
  it("10 concurrent identical completions: exactly one write, ten identical 200s", async () => {
    const stackId = amy.stackIds[0] as string;
    const results = await Promise.all(Array.from({ length: 10 }, () => call(post(stackId))));
    for (const r of results) {
      expect(r.statusCode).toBe(200);
      expect(r.body).toBe(results[0]?.body);
    }
    expect(updates).toBe(1);
    const stored = await store.getStack(stackId);
    expect(stored).toMatchObject({ status: "labeled", assignedTo: AMY, selectedBy: ROUND });
    const first = results[0]?.json as unknown as CompletionResponse | undefined;
    expect(first?.completion).toMatchObject({ activeSeconds: 512, annotator: AMY });
    expect(stored?.completion).toEqual(first?.completion);
    expect((await store.listByStatus("labeled")).map((r) => r.stackId)).toEqual([stackId]);
  });

  it("completing someone else's stack: 403 NOT_ASSIGNED and no write", async () => {
    const stackId = zed.stackIds[0] as string;
    const before = await store.getStack(stackId);
    const res = await call(post(stackId));
    expect(res.statusCode).toBe(403);
    expect(res.json.code).toBe("NOT_ASSIGNED");
    expect(updates).toBe(0);
    expect(await store.getStack(stackId)).toEqual(before);
  });

  it("different values after completion → 409 CONFLICT; unknown → 404; unauthenticated → 401", async () => {
    const stackId = amy.stackIds[0] as string;
    expect((await call(post(stackId, 100))).statusCode).toBe(200);
    const conflict = await call(post(stackId, 101));
    expect([conflict.statusCode, conflict.json.code]).toEqual([409, "CONFLICT"]);
    expect((await store.getStack(stackId))?.completion?.activeSeconds).toBe(100);
    expect((await call(post("stack-999"))).statusCode).toBe(404);
    expect((await call(post(stackId, 100, null))).statusCode).toBe(401);
  });

  it("GET /worklist: the caller's stacks of the round, labeled ones with their completion", async () => {
    const done = amy.stackIds[0] as string;
    await call(post(done, 321));
    const res = await call(apiEvent("GET", "/worklist", undefined));
    expect(res.statusCode).toBe(200);
    const list = WorklistResponseSchema.parse(res.json);
    expect(list.roundId).toBe(ROUND);
    expect(list.stacks.map((s) => s.stackId)).toEqual(amy.stackIds);
    expect(list.stacks.find((s) => s.stackId === done)).toMatchObject({
      status: "labeled",
      completion: { activeSeconds: 321, annotator: AMY },
    });
    expect(list.predictedSeconds).toBeCloseTo(amy.predictedSeconds, 6);
    expect(list.budgetSeconds).toBe(7200);
    expect(res.body).not.toContain(PLANTED_KEY);
  });
});

describe("complete handler on moto: activeSeconds outside [1 s, 8 h]", () => {
  /** The body as raw JSON text, so that 1e-100 and 5e-324 travel as the JSON numbers an annotator's page could send. */
  const rawPost = (stackId: string, seconds: string) =>
    apiEvent(
      "POST",
      "/completions",
      `{"stackId":${JSON.stringify(stackId)},"activeSeconds":${seconds},"maskUploadKey":${JSON.stringify(fixtureUploadKey(stackId))}}`,
    );

  it.each(["0.001", "1e-100", "5e-324", "28801"])(
    "activeSeconds %s → 400 BAD_REQUEST naming activeSeconds, nothing written",
    async (seconds) => {
      const stackId = amy.stackIds[0] as string;
      const before = await store.getStack(stackId);
      const res = await call(rawPost(stackId, seconds));
      expect(res.statusCode).toBe(400);
      expect(res.json.code).toBe("BAD_REQUEST");
      expect(res.json.message).toEqual(expect.stringContaining("activeSeconds"));
      expect(updates).toBe(0);
      expect(await store.getStack(stackId)).toEqual(before);
      expect(before?.status).toBe("selected");
      expect(await store.listByStatus("labeled")).toEqual([]);
    },
  );

  it("exactly 1 s and exactly 8 h are accepted and stored", async () => {
    expect(amy.stackIds.length).toBeGreaterThanOrEqual(2);
    const [short, long] = amy.stackIds as [string, string];
    for (const [stackId, seconds] of [
      [short, 1],
      [long, 8 * 3600],
    ] as const) {
      const res = await call(rawPost(stackId, String(seconds)));
      expect(res.statusCode).toBe(200);
      expect(await store.getStack(stackId)).toMatchObject({ status: "labeled", completion: { activeSeconds: seconds, annotator: AMY } });
    }
    expect(updates).toBe(2);
  });
});
