/**
 * The worklist page's CT viewer (web/worklist/src/viewer.ts, Cornerstone3D) in real headless Chromium,
 * against moto server, the real complete handler behind scripts/lib/worklist-server.ts, and volumes
 * written by the scoring container's own NIfTI writer (make-viewer-volumes.py: a phantom's CT, its exact
 * mask as the "heatmap", zeros as JS). Synthetic phantoms only.
 *
 * Independent truth: the phantom's mask in the mask file's voxel order, written by Python. "Start from
 * the model's suggestion" (heatmap > 0.5) must come back from the page — through Cornerstone's volume
 * and labelmap, the page's NIfTI writer, the presigned PUT and the API's checks — voxel for voxel as
 * that mask; so the viewer's voxel order is the grid the API checks. A stroke painted on a chosen frame,
 * partly erased and the erasure undone, is stored (read back by nibabel) exactly as the page showed it,
 * on that frame and under the stroke, zero elsewhere; active time counts while drawing, not while idle
 * (the page's idle limit is 2 s here); a reload keeps the unsaved mask. A 32 × 512² stack's time from
 * "Open viewer" to its first frame is measured and printed.
 *
 * VIEWER_SCREENSHOT=docs/annotate.png npx vitest run --project browser test/browser/viewer.test.ts   also writes the README
 * screenshot (the 32 × 512² stack: CT, heatmap overlay, a drawn mask).
 */
import "./handler-environment.js";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StackGeometry } from "../../lambdas/contracts/masks.js";
import { recordKeys } from "../../lambdas/contracts/records-table.js";
import { checkMask } from "../../lambdas/domain/nifti-mask.js";
import { notifyAnnotators } from "../../lambdas/domain/notify.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { decodeRuns } from "../../web/worklist/src/run-length.js";
import { RecordingMailer } from "../support/in-memory-ports.js";
import { AMY, pendingStack } from "../support/round-fixtures.js";
import { BUCKET, chromiumMissing, resetLocalStack, runFixtureScript, signInAs, TABLE, useLocalStack } from "./local-stack.js";

const NO_CHROMIUM = chromiumMissing("viewer");

const STUDY = "5e".repeat(16);
const STACK = `${STUDY}-s0`;
/** The page's idle limit in this file: active time stops 2 s after the last input. */
const IDLE_SECONDS = 2;
/** ID tokens of the local sign-in last 8 s in this file: the page must renew them to finish a stack. */
const TOKEN_SECONDS = 8;

const local = useLocalStack({ label: "viewer", idleSeconds: IDLE_SECONDS, tokenLifetimeSeconds: TOKEN_SECONDS });
let volumesDir: string;
let geometry: StackGeometry;
let truth: Uint8Array;

beforeAll(async () => {
  volumesDir = mkdtempSync(join(tmpdir(), "viewer-volumes-"));
  runFixtureScript("make-viewer-volumes.py", [volumesDir, "4", "64", "12", "exact"]);
  runFixtureScript("make-viewer-volumes.py", [join(volumesDir, "large"), "7", "512", "32", "smooth"]);
  geometry = JSON.parse(readFileSync(join(volumesDir, "geometry.json"), "utf8")) as StackGeometry;
  truth = new Uint8Array(readFileSync(join(volumesDir, "mask.bin")));
});

afterAll(async () => {
  if (volumesDir !== undefined) rmSync(volumesDir, { recursive: true, force: true });
});

/** One scored stack with the phantom's grid, selected for AMY by the real selection and notify code; its volumes in S3. */
beforeEach(async () => {
  await resetLocalStack(local);
  expect(await local.store.createStack({ ...pendingStack(1, 600), stackId: STACK, geometry })).toBe(true);
  for (const name of ["ct", "heatmap", "js"]) {
    const body = readFileSync(join(volumesDir, `${name}.nii.gz`));
    await local.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `overlays/${STUDY}/stack-0-${name}.nii.gz`, Body: body }));
  }
  const now = new Date().toISOString();
  const round = await runSelectionRound(now, {
    records: local.store,
    settings: { budgetSeconds: 3600, resolutionSeconds: 1, timeZone: "UTC" },
  });
  await notifyAnnotators(round.roundId, {
    records: local.store,
    mailer: new RecordingMailer(),
    settings: { sender: "ich-al@example.org", annotators: [AMY], budgetSeconds: 3600, worklistUrl: local.server.url },
    clock: () => now,
    newToken: () => "t0",
  });
  expect((await local.store.getStack(STACK))?.assignedTo).toBe(AMY);
});

async function openPage(): Promise<{ page: Page; errors: string[] }> {
  if (!local.browser) throw new Error("no browser");
  const context = await local.browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("request", (request) => {
    if (!request.url().startsWith(local.server.url) && !request.url().startsWith("data:") && !request.url().startsWith("blob:")) {
      errors.push(`external request ${request.url()}`);
    }
  });
  await page.goto(local.server.url);
  await signInAs(page, AMY);
  await page.locator("article.stack").first().waitFor();
  return { page, errors };
}

async function openViewer(page: Page, start = true) {
  const card = page.locator(`article[data-stack-id="${STACK}"]`);
  if (start) await card.getByRole("button", { name: "Start" }).click();
  await card.getByRole("button", { name: "Open viewer" }).click();
  await card.locator("section.viewer[data-ready]").waitFor({ timeout: 40_000 });
  // The layout settles (frame label shown, canvas sized) before anything is clicked near the canvas.
  await expect.poll(() => card.locator("[data-frame]").textContent()).toMatch(/^Frame \d+ of \d+$/);
  await card.locator(".viewer-canvas canvas").first().scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  return card;
}

async function storedMask(): Promise<Uint8Array> {
  const stack = await local.store.getStack(STACK);
  const key = stack?.completion?.mask?.key;
  if (!key) throw new Error("no mask recorded");
  const object = await local.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const check = checkMask((await object.Body?.transformToByteArray()) ?? new Uint8Array(0), geometry);
  if (!check.ok) throw new Error(`stored mask refused: ${check.reason}`);
  return check.labels;
}

/** A six-step brush stroke across the canvas, from and to given as fractions of its box. */
async function stroke(page: Page, canvas: Locator, from: [number, number], to: [number, number]): Promise<void> {
  const box = await canvas.boundingBox();
  if (!box) throw new Error("no canvas box");
  await page.mouse.move(box.x + box.width * from[0], box.y + box.height * from[1]);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * to[0], box.y + box.height * to[1], { steps: 6 });
  await page.mouse.up();
}

const labeled = (a: Uint8Array) => a.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);

/**
 * The mask the page keeps in this browser, once the kept draft is up to date (it is written 300 ms after
 * the last edit): with `previous`, first until it differs from that (an edit was made: a loaded machine may
 * take seconds to process the pointer events), then until two reads 400 ms apart agree.
 */
async function draft(page: Page, previous?: Uint8Array): Promise<Uint8Array> {
  let last = await keptDraft(page);
  for (let i = 0; previous && Buffer.from(last).equals(Buffer.from(previous)) && i < 50; i++) {
    await page.waitForTimeout(300);
    last = await keptDraft(page);
  }
  for (let i = 0; i < 20; i++) {
    await page.waitForTimeout(400);
    const now = await keptDraft(page);
    if (Buffer.from(now).equals(Buffer.from(last))) return now;
    last = now;
  }
  return last;
}

async function keptDraft(page: Page): Promise<Uint8Array> {
  const text = await page.evaluate<string | null>(`localStorage.getItem(${JSON.stringify(`ich-al.worklist.mask.${AMY}.${STACK}`)})`);
  if (!text) return new Uint8Array(truth.length);
  const { runs } = JSON.parse(text) as { runs: string };
  const decoded = decodeRuns(runs, truth.length);
  if (!decoded) throw new Error("the kept draft does not decode");
  return decoded;
}
/** The labels of the kept draft once it has changed from `previous` (default: no draft, all zero) and settled. */
const draftLabels = async (page: Page, previous = new Uint8Array(truth.length)) => labeled(await draft(page, previous));

/** The stored mask object read by nibabel (Python), in [frame][row][column] order. */
async function storedMaskByNibabel(): Promise<Uint8Array> {
  const key = (await local.store.getStack(STACK))?.completion?.mask?.key;
  if (!key) throw new Error("no mask recorded");
  const object = await local.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const file = join(volumesDir, "stored.nii.gz");
  writeFileSync(file, (await object.Body?.transformToByteArray()) ?? new Uint8Array(0));
  const out = join(volumesDir, "stored.bin");
  runFixtureScript("make-viewer-volumes.py", ["--decode", file, out]);
  return new Uint8Array(readFileSync(out));
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
    let shown = await draft(page, new Uint8Array(truth.length));
    const suggested = labeled(shown);
    expect(suggested).toBe(labeled(truth));
    // A stroke in the middle of the CT, then undo: the labels are the suggestion again; redo brings the stroke back.
    await stroke(page, canvas, [0.3, 0.3], [0.35, 0.32]);
    shown = await draft(page, shown);
    const stroked = labeled(shown);
    expect(stroked).toBeGreaterThan(suggested);
    await card.getByRole("button", { name: "Undo" }).click();
    shown = await draft(page, shown);
    expect(labeled(shown)).toBe(suggested);
    await card.getByRole("button", { name: "Redo" }).click();
    expect(labeled(await draft(page, shown))).toBe(stroked);
    await card.getByRole("button", { name: "Undo" }).click();
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    const stack = await local.store.getStack(STACK);
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

  it("a stroke on a chosen frame, partly erased and the erasure undone, is stored exactly as shown, under the stroke; active time counts while drawing only", async () => {
    const { page } = await openPage();
    const started = Date.now(); // just before Start (openViewer)
    const card = await openViewer(page);
    const canvas = card.locator(".viewer-canvas canvas").first();
    await canvas.scrollIntoViewIfNeeded();
    const box = await canvas.boundingBox();
    if (!box) throw new Error("no canvas box");
    const at = (x: number, y: number) => [box.x + box.width * x, box.y + box.height * y] as const;
    // Go to another frame with the wheel; the page names the frame it shows.
    await page.mouse.move(...at(0.5, 0.5));
    const first = Number(await card.locator("[data-frame]").getAttribute("data-frame"));
    for (let i = 0; i < 3; i++) await page.mouse.wheel(0, 120);
    await expect.poll(async () => Number(await card.locator("[data-frame]").getAttribute("data-frame"))).not.toBe(first);
    const frame = Number(await card.locator("[data-frame]").getAttribute("data-frame"));
    // A stroke across the upper left of the image (screen), drawn over about 2 s.
    const drawStart = Date.now();
    await page.mouse.move(...at(0.25, 0.3));
    await page.mouse.down();
    for (let k = 1; k <= 20; k++) {
      await page.mouse.move(...at(0.25 + (0.1 * k) / 20, 0.3));
      await page.waitForTimeout(100);
    }
    await page.mouse.up();
    const drawSeconds = (Date.now() - drawStart) / 1000;
    const afterStroke = await draft(page, new Uint8Array(truth.length));
    const stroked = labeled(afterStroke);
    expect(stroked).toBeGreaterThan(10);
    // Erase the start of the stroke, then undo the erasure.
    await card.getByLabel("Eraser").check();
    await page.mouse.move(...at(0.25, 0.3));
    await page.mouse.down();
    await page.mouse.move(...at(0.27, 0.3), { steps: 3 });
    await page.mouse.up();
    const afterErase = await draft(page, afterStroke);
    const erased = labeled(afterErase);
    expect(erased).toBeLessThan(stroked);
    await card.getByRole("button", { name: "Undo" }).click();
    const shown = await draft(page, afterErase);
    expect(labeled(shown)).toBe(stroked);
    // Idle well past the limit before finishing: that time does not count.
    await page.waitForTimeout((IDLE_SECONDS + 3) * 1000);
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    const elapsed = (Date.now() - started) / 1000;

    const stored = await storedMaskByNibabel();
    expect(Buffer.from(stored).equals(Buffer.from(shown))).toBe(true);
    const [, rows, columns] = geometry.shape;
    const hit = [...stored.keys()].filter((i) => stored[i] !== 0);
    expect(new Set(hit.map((i) => Math.floor(i / (rows * columns))))).toEqual(new Set([frame]));
    // Under the stroke: rows at 30 % from the top (row 0 is anterior: affine y = −spacing · row + …, shown
    // up); columns at 25–35 % from the screen's left, the patient's right in the radiological view, where
    // the grid's columns start (affine x = −spacing · column + …: column 0 is the patient's right in RAS).
    const rowOf = (i: number) => Math.floor(i / columns) % rows;
    const columnOf = (i: number) => i % columns;
    const mean = (f: (i: number) => number) => hit.reduce((s, i) => s + f(i), 0) / hit.length;
    expect(Math.abs(mean(rowOf) / rows - 0.3)).toBeLessThan(0.08);
    expect(Math.abs(mean(columnOf) / columns - 0.3)).toBeLessThan(0.08);
    // Active time: the drawing (and the Start before it) counted, the idle stretch beyond 2 s did not.
    const active = (await local.store.getStack(STACK))?.completion?.activeSeconds ?? 0;
    expect(active).toBeGreaterThanOrEqual(Math.floor(drawSeconds));
    expect(active).toBeLessThanOrEqual(elapsed - 2);
    await page.context().close();
  });

  it("a stack worked on longer than the sign-in lasts is finished without signing in again (refresh token)", async () => {
    const { page, errors } = await openPage();
    const grants: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/oauth2/token")) grants.push(new URLSearchParams(request.postData() ?? "").get("grant_type") ?? "");
    });
    const card = await openViewer(page);
    await card.getByRole("button", { name: "Start from the model's suggestion" }).click();
    await page.waitForTimeout((TOKEN_SECONDS + 3) * 1000); // the first ID token has expired by now
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    expect(grants.filter((g) => g === "refresh_token").length).toBeGreaterThanOrEqual(1);
    expect(await page.getByRole("button", { name: "Sign in" }).count()).toBe(0);
    expect(errors.filter((e) => !/GPU stall|WebGL|status of 404/.test(e))).toEqual([]);
    await page.context().close();
  });

  it("paints the hemorrhage type chosen: a subdural stroke is stored as label 3", async () => {
    const { page } = await openPage();
    const card = await openViewer(page);
    await card.getByLabel("Label painted").selectOption({ label: "Subdural (SDH)" });
    const canvas = card.locator(".viewer-canvas canvas").first();
    await canvas.scrollIntoViewIfNeeded();
    await stroke(page, canvas, [0.4, 0.6], [0.5, 0.62]);
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    expect((await local.store.getStack(STACK))?.completion?.mask?.values).toEqual([0, 3]);
    expect(new Set(await storedMaskByNibabel())).toEqual(new Set([0, 3]));
    await page.context().close();
  });

  it("an unsaved mask survives a reload", async () => {
    const { page } = await openPage();
    let card = await openViewer(page);
    await card.getByRole("button", { name: "Start from the model's suggestion" }).click();
    expect(await draftLabels(page)).toBe(labeled(truth));
    await page.reload();
    await page.locator("article.stack").first().waitFor();
    card = await openViewer(page, false); // the active-time meter survives the reload too: still running
    await expect.poll(() => card.locator(".viewer-status").textContent()).toContain("unsaved mask was restored");
    await card.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card.locator(".message").textContent(), { timeout: 30_000 }).toContain("Recorded");
    expect(Buffer.from(await storedMaskByNibabel()).equals(Buffer.from(truth))).toBe(true);
    await page.context().close();
  });

  it("shows a 32 × 512² stack: time from Open viewer to its first frame (printed); screenshot with heatmap and a drawn mask", async () => {
    for (const name of ["ct", "heatmap", "js"]) {
      const body = readFileSync(join(volumesDir, "large", `${name}.nii.gz`));
      await local.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `overlays/${STUDY}/stack-0-${name}.nii.gz`, Body: body }));
    }
    const large = JSON.parse(readFileSync(join(volumesDir, "large", "geometry.json"), "utf8")) as StackGeometry;
    await DynamoDBDocumentClient.from(local.dynamo).send(
      new UpdateCommand({
        TableName: TABLE,
        Key: recordKeys.stack(STACK),
        UpdateExpression: "SET geometry = :g",
        ExpressionAttributeValues: { ":g": large },
      }),
    );
    const { page } = await openPage();
    const card = page.locator(`article[data-stack-id="${STACK}"]`);
    await card.getByRole("button", { name: "Start" }).click();
    const t0 = Date.now();
    await card.getByRole("button", { name: "Open viewer" }).click();
    await card.locator("section.viewer[data-ready]").waitFor({ timeout: 60_000 });
    const seconds = (Date.now() - t0) / 1000;
    const sizes = ["ct", "heatmap", "js"].map((n) => readFileSync(join(volumesDir, "large", `${n}.nii.gz`)).byteLength);
    console.info(
      `viewer: a 32 × 512² stack (${(sizes.reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(1)} MiB of gzip'd NIfTI) shown ${seconds.toFixed(2)} s after "Open viewer" (local server, moto, headless Chromium with software WebGL; target 2 s)`,
    );
    if (process.env.VIEWER_SCREENSHOT) {
      // The frame with the most blood, the heatmap over it, and a stroke drawn beside it.
      const mask = readFileSync(join(volumesDir, "large", "mask.bin"));
      const perFrame = Array.from({ length: 32 }, (_, f) =>
        mask.subarray(f * 512 * 512, (f + 1) * 512 * 512).reduce((n, v) => n + (v ? 1 : 0), 0),
      );
      const target = perFrame.indexOf(Math.max(...perFrame));
      const canvas = card.locator(".viewer-canvas canvas").first();
      await canvas.scrollIntoViewIfNeeded();
      const box = await canvas.boundingBox();
      if (!box) throw new Error("no canvas box");
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const shown = async () => Number(await card.locator("[data-frame]").getAttribute("data-frame"));
      for (let i = 0; i < 40 && (await shown()) !== target; i++) await page.mouse.wheel(0, (await shown()) < target ? 120 : -120);
      for (let i = 0; i < 40 && (await shown()) !== target; i++) await page.mouse.wheel(0, (await shown()) < target ? -120 : 120);
      await page.mouse.move(box.x + box.width * 0.36, box.y + box.height * 0.62);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.42, box.y + box.height * 0.66, { steps: 10 });
      await page.mouse.up();
      await card.getByLabel("Heatmap opacity").fill("60");
      await page.mouse.move(box.x + box.width + 40, box.y + 10);
      await card.screenshot({ path: process.env.VIEWER_SCREENSHOT });
    }
    await page.context().close();
  });
});
