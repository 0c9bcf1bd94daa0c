/**
 * The worklist page's CT viewer (web/worklist/src/viewer.ts, Cornerstone3D) in real headless Chromium,
 * against moto server, the real complete handler behind scripts/lib/worklist-server.ts, and volumes
 * written by the scoring container's own NIfTI writer (make-viewer-volumes.py: a phantom's CT, its exact
 * mask as the "heatmap", zeros as JS). Synthetic phantoms only.
 *
 * Independent truth: the phantom's mask in the mask file's voxel order, written by Python. "Start from
 * the model's suggestion" (heatmap > 0.5) must come back from the page — through Cornerstone's volume
 * and labelmap, the page's NIfTI writer, the presigned PUT and the API's checks — voxel for voxel as
 * that mask; so the viewer's voxel order is the grid the API checks. Brush strokes, undo and redo act
 * on it; the completion carries the work counts; a reload keeps the unsaved mask.
 *
 * VIEWER_SCREENSHOT=docs/annotate.png npx vitest run --project browser test/browser/viewer.test.ts   also writes the README screenshot.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

vi.hoisted(() => {
  Object.assign(process.env, {
    TABLE_NAME: "ich-al-records",
    ANNOTATOR_DIRECTORY: JSON.stringify([{ sub: "hoisted-sub", email: "amy@example.org" }]),
    SCHEDULE_TIMEZONE: "UTC",
    STUDIES_BUCKET: "studies",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
  });
});

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { type Browser, chromium, type Page } from "playwright-core";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { maskObjectsClient, S3MaskObjects, S3ViewerObjects } from "../../lambdas/adapters/s3-mask-objects.js";
import type { StackGeometry } from "../../lambdas/contracts/masks.js";
import { checkMask } from "../../lambdas/domain/nifti-mask.js";
import { notifyAnnotators } from "../../lambdas/domain/notify.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { createCompleteHandler } from "../../lambdas/handlers/complete-handler.js";
import { jsonLogger } from "../../lambdas/handlers/shared/logger.js";
import { LOCAL_AWS, type MotoServer, startMotoServer } from "../../scripts/lib/moto-server.js";
import { type ProxyHandler, startWorklistServer, type WorklistServer } from "../../scripts/lib/worklist-server.js";
import { decodeRuns } from "../../web/worklist/src/run-length.js";
import { findChromium } from "../support/chromium.js";
import { RecordingMailer } from "../support/in-memory-ports.js";
import { AMY, ANNOTATOR_DIRECTORY, ANNOTATORS_BY_SUB, pendingStack } from "../support/round-fixtures.js";

const CHROMIUM = await findChromium();
const NO_CHROMIUM = "missing" in CHROMIUM ? CHROMIUM.missing : undefined;
if (NO_CHROMIUM) console.warn(`viewer browser tests skipped: ${NO_CHROMIUM}`);

const TABLE = "ich-al-records";
const BUCKET = "studies";
const STUDY = "5e".repeat(16);
const STACK = `${STUDY}-s0`;

let moto: MotoServer;
let server: WorklistServer;
let browser: Browser | undefined;
let store: DynamoRecordStore;
let dynamo: DynamoDBClient;
let s3: S3Client;
let volumesDir: string;
let geometry: StackGeometry;
let truth: Uint8Array;

beforeAll(async () => {
  moto = await startMotoServer();
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: moto.endpoint });
  s3 = new S3Client({ ...LOCAL_AWS, endpoint: moto.endpoint, forcePathStyle: true });
  store = new DynamoRecordStore(dynamo, TABLE);
  volumesDir = mkdtempSync(join(tmpdir(), "viewer-volumes-"));
  execFileSync(resolve("model-container/.venv/bin/python"), [resolve("test/browser/make-viewer-volumes.py"), volumesDir, "4"], {
    env: { ...process.env, PYTHONPATH: resolve("model-container") },
    stdio: ["ignore", "ignore", "inherit"],
  });
  geometry = JSON.parse(readFileSync(join(volumesDir, "geometry.json"), "utf8")) as StackGeometry;
  truth = new Uint8Array(readFileSync(join(volumesDir, "mask.bin")));
  const client = maskObjectsClient({ ...LOCAL_AWS, endpoint: moto.endpoint, forcePathStyle: true });
  const handler = createCompleteHandler({
    records: store,
    annotators: ANNOTATORS_BY_SUB,
    clock: () => new Date().toISOString(),
    timeZone: "UTC",
    log: jsonLogger({ lambda: "complete" }, () => {}),
    masks: new S3MaskObjects(client, BUCKET),
    viewer: new S3ViewerObjects(client, BUCKET),
  });
  server = await startWorklistServer({
    handler: handler as unknown as ProxyHandler,
    annotators: ANNOTATOR_DIRECTORY,
    storageEndpoint: moto.endpoint,
  });
  if ("executablePath" in CHROMIUM) {
    browser = await chromium.launch({
      executablePath: CHROMIUM.executablePath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      headless: true,
    });
  }
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await moto?.stop();
  if (volumesDir !== undefined) rmSync(volumesDir, { recursive: true, force: true });
});

/** One scored stack with the phantom's grid, selected for AMY by the real selection and notify code; its volumes in S3. */
beforeEach(async () => {
  await moto.reset();
  await createRecordsTable(dynamo, TABLE);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  expect(await store.createStack({ ...pendingStack(1, 600), stackId: STACK, geometry })).toBe(true);
  for (const name of ["ct", "heatmap", "js"]) {
    const body = readFileSync(join(volumesDir, `${name}.nii.gz`));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `overlays/${STUDY}/stack-0-${name}.nii.gz`, Body: body }));
  }
  const now = new Date().toISOString();
  const round = await runSelectionRound(now, { records: store, settings: { budgetSeconds: 3600, resolutionSeconds: 1, timeZone: "UTC" } });
  await notifyAnnotators(round.roundId, {
    records: store,
    mailer: new RecordingMailer(),
    settings: { sender: "ich-al@example.org", annotators: [AMY], budgetSeconds: 3600, worklistUrl: server.url },
    clock: () => now,
    newToken: () => "t0",
  });
  expect((await store.getStack(STACK))?.assignedTo).toBe(AMY);
});

async function openPage(): Promise<{ page: Page; errors: string[] }> {
  if (!browser) throw new Error("no browser");
  const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("request", (request) => {
    if (!request.url().startsWith(server.url) && !request.url().startsWith("data:") && !request.url().startsWith("blob:")) {
      errors.push(`external request ${request.url()}`);
    }
  });
  await page.goto(server.url);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/oauth2\/authorize\?/);
  await page.locator("#annotator").selectOption(AMY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("article.stack").first().waitFor();
  return { page, errors };
}

async function openViewer(page: Page, start = true) {
  const card = page.locator(`article[data-stack-id="${STACK}"]`);
  if (start) await card.getByRole("button", { name: "Start" }).click();
  await card.getByRole("button", { name: "Open viewer" }).click();
  await card.locator("section.viewer[data-ready]").waitFor({ timeout: 40_000 });
  return card;
}

async function storedMask(): Promise<Uint8Array> {
  const stack = await store.getStack(STACK);
  const key = stack?.completion?.mask?.key;
  if (!key) throw new Error("no mask recorded");
  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const check = checkMask((await object.Body?.transformToByteArray()) ?? new Uint8Array(0), geometry);
  if (!check.ok) throw new Error(`stored mask refused: ${check.reason}`);
  return check.labels;
}

const labeled = (a: Uint8Array) => a.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);

/** Labeled voxels of the mask the page keeps in this browser, once the kept draft is up to date (300 ms after an edit). */
async function draftLabels(page: Page): Promise<number> {
  await page.waitForTimeout(450);
  const text = await page.evaluate<string | null>(`localStorage.getItem(${JSON.stringify(`ich-al.worklist.mask.${AMY}.${STACK}`)})`);
  if (!text) return 0;
  const { runs } = JSON.parse(text) as { runs: string };
  const decoded = decodeRuns(runs, truth.length);
  if (!decoded) throw new Error("the kept draft does not decode");
  return labeled(decoded);
}

describe.skipIf(NO_CHROMIUM !== undefined)("CT viewer in headless Chromium (Cornerstone3D)", () => {
  it("draws, undoes and redoes; the model's suggestion comes back voxel for voxel as the mask the API stores, with the work counts", async () => {
    const { page, errors } = await openPage();
    const card = await openViewer(page);
    const canvas = card.locator(".viewer-canvas canvas").first();
    await expect.poll(() => canvas.isVisible()).toBe(true);
    await canvas.scrollIntoViewIfNeeded();
    for (const preset of ["Subdural", "Bone", "Brain"]) await card.getByRole("button", { name: preset }).click();
    await card.getByRole("button", { name: "Start from the model's suggestion" }).click();
    const suggested = await draftLabels(page);
    expect(suggested).toBe(labeled(truth));
    // A stroke in the middle of the CT, then undo: the labels are the suggestion again; redo brings the stroke back.
    const box = await canvas.boundingBox();
    if (!box) throw new Error("no canvas box");
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.35, box.y + box.height * 0.32, { steps: 6 });
    await page.mouse.up();
    const stroked = await draftLabels(page);
    expect(stroked).toBeGreaterThan(suggested);
    if (process.env.VIEWER_SCREENSHOT) await card.screenshot({ path: process.env.VIEWER_SCREENSHOT });
    await card.getByRole("button", { name: "Undo" }).click();
    expect(await draftLabels(page)).toBe(suggested);
    await card.getByRole("button", { name: "Redo" }).click();
    expect(await draftLabels(page)).toBe(stroked);
    await card.getByRole("button", { name: "Undo" }).click();
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    const stack = await store.getStack(STACK);
    expect(stack?.completion).toMatchObject({ source: "page", work: { startedFromSuggestion: true } });
    expect(stack?.completion?.work?.strokes).toBeGreaterThanOrEqual(1);
    expect(stack?.completion?.work?.edits).toBeGreaterThanOrEqual(4); // suggestion, undo, redo, undo
    const mask = await storedMask();
    expect(labeled(truth)).toBeGreaterThan(100);
    expect(Buffer.from(mask).equals(Buffer.from(truth))).toBe(true);
    // The only failed request: this test stores no thumbnail npz (GET /overlays answers 404).
    expect(errors.filter((e) => !/GPU stall|WebGL|status of 404/.test(e))).toEqual([]);
    await page.context().close();
  });

  it("a brush stroke adds labels where it is drawn, and an unsaved mask survives a reload", async () => {
    const { page } = await openPage();
    let card = await openViewer(page);
    const canvas = card.locator(".viewer-canvas canvas").first();
    await canvas.scrollIntoViewIfNeeded();
    const box = await canvas.boundingBox();
    if (!box) throw new Error("no canvas box");
    await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.5);
    await page.waitForTimeout(300);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.waitForTimeout(600); // the draft is kept 300 ms after the last edit
    await page.reload();
    await page.locator("article.stack").first().waitFor();
    card = await openViewer(page, false); // the active-time meter survives the reload too: still running
    await expect.poll(() => card.locator(".viewer-status").textContent()).toContain("unsaved mask was restored");
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    const mask = await storedMask();
    const [frames, rows, columns] = geometry.shape;
    // The stroke lies on one frame, in the middle rows, across the middle columns.
    const hit = [...mask.keys()].filter((i) => mask[i] !== 0);
    expect(hit.length).toBeGreaterThan(10);
    const frameOf = (i: number) => Math.floor(i / (rows * columns));
    expect(new Set(hit.map(frameOf)).size).toBe(1);
    const rowOf = (i: number) => Math.floor(i / columns) % rows;
    const mean = hit.reduce((s, i) => s + rowOf(i), 0) / hit.length;
    expect(Math.abs(mean - rows / 2)).toBeLessThan(rows / 4);
    expect(frameOf(hit[0] as number)).toBeLessThan(frames);
    await page.context().close();
  });
});
