/**
 * The annotator worklist page against the local stack: moto server, the records table and studies
 * bucket written through the real adapters and the real selection + notify code, key-frame thumbnails
 * rendered by the scoring container's own renderer (make-overlays.py → ichal.thumbnails),
 * scripts/lib/worklist-server.ts in front of the REAL complete handler, and real headless Chromium
 * (playwright-core; the executable from test/support/chromium.ts: CHROMIUM_PATH, Debian's chromium or
 * the build in the npm devDependency @sparticuz/chromium) with the page's clock controlled by `page.clock`.
 *
 * The HTTP tests of the local API Gateway stand-in need no browser. The browser tests are skipped,
 * with the reason printed, only where no Chromium can be found at all.
 *
 * WORKLIST_SCREENSHOT=docs/worklist.png npx vitest run --project browser   also writes the README screenshot
 * (EMAIL_SCREENSHOT=docs/email.png the weekly e-mail's).
 */
import "./handler-environment.js";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { Page, Request } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { OverlayResponseSchema, WorklistResponseSchema } from "../../lambdas/contracts/completion-api.js";
import type { AnnotatorShare } from "../../lambdas/contracts/records.js";
import { overlayKeyOf } from "../../lambdas/domain/completion.js";
import { checkMask, encodeMask } from "../../lambdas/domain/nifti-mask.js";
import { notifyAnnotators } from "../../lambdas/domain/notify.js";
import { runRefit } from "../../lambdas/domain/refit.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { RecordingMailer } from "../support/in-memory-ports.js";
import { AMY, FIXTURE_GEOMETRY, fixtureLabels, fixtureMaskBytes, parseMime, pendingStack, ZED } from "../support/round-fixtures.js";
import { BUCKET, chromiumMissing, resetLocalStack, runFixtureScript, signInAs, TABLE, useLocalStack } from "./local-stack.js";

const NO_CHROMIUM = chromiumMissing("worklist");

const STACKS = 8;
const studyOf = (i: number) => `study-${String(i).padStart(3, "0")}`;

const local = useLocalStack({ label: "worklist", overlays: true });
let overlayDir: string;
let roundId: string;
let amy: AnnotatorShare;
let zed: AnnotatorShare;
/** The round's e-mails, as SES would have received them. */
let mailer: RecordingMailer;

beforeAll(async () => {
  overlayDir = mkdtempSync(join(tmpdir(), "worklist-overlays-"));
  const stacks = Array.from({ length: STACKS }, (_, i) => `${studyOf(i)}:${i + 11}`);
  runFixtureScript("make-overlays.py", [overlayDir, ...stacks], { cwd: resolve("model-container") });
});

afterAll(async () => {
  if (overlayDir !== undefined) rmSync(overlayDir, { recursive: true, force: true });
});

/** A fresh table and bucket: 8 scored stacks, this week's round selected and shared out by the real code, overlays in S3. */
beforeEach(async () => {
  await resetLocalStack(local);
  for (let i = 0; i < STACKS; i++) {
    const base = pendingStack(i, 300 + 90 * i);
    const scores = { ...(base.scores as NonNullable<typeof base.scores>), stackScore: Math.min(0.99, 0.41 + 0.08 * i) };
    const stack = { ...base, stackId: `${studyOf(i)}-s0`, scores };
    expect(await local.store.createStack(stack)).toBe(true);
    const folder = (overlayKeyOf(stack.stackId) as string).replace(/[^/]+$/, "");
    for (const file of readdirSync(join(overlayDir, studyOf(i)))) {
      await local.s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: folder + file, Body: readFileSync(join(overlayDir, studyOf(i), file)) }),
      );
    }
  }
  const now = new Date().toISOString();
  const round = await runSelectionRound(now, {
    records: local.store,
    settings: { budgetSeconds: 3 * 3600, resolutionSeconds: 1, timeZone: "UTC" },
  });
  roundId = round.roundId;
  let n = 0;
  mailer = new RecordingMailer();
  await notifyAnnotators(roundId, {
    records: local.store,
    mailer,
    settings: { sender: "ich-al@example.org", annotators: [AMY, ZED], budgetSeconds: 3 * 3600, worklistUrl: local.server.url },
    clock: () => now,
    newToken: () => `t${n++}`,
  });
  const shares = (await local.store.getRound(roundId))?.assignment?.annotators ?? [];
  amy = shares.find((s) => s.annotator === AMY) as AnnotatorShare;
  zed = shares.find((s) => s.annotator === ZED) as AnnotatorShare;
  expect(amy.stackIds.length).toBeGreaterThanOrEqual(2);
  expect(zed.stackIds.length).toBeGreaterThanOrEqual(1);
});

/** Ticks the card's "No hemorrhage" box (finish without a mask). */
const noHemorrhage = (c: ReturnType<typeof card>) => c.getByLabel(/No hemorrhage/).check();

/** Chooses `bytes` as the card's mask file (a .nii.gz from a desktop tool). */
const attachMask = (c: ReturnType<typeof card>, bytes: Uint8Array) =>
  c.locator("input[type=file]").setInputFiles({ name: "mask.nii.gz", mimeType: "application/gzip", buffer: Buffer.from(bytes) });

const api = (path: string, token: string | undefined, init: RequestInit = {}) =>
  fetch(new URL(`api${path}`, local.server.url), {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
  });

describe("local API Gateway stand-in (no browser)", () => {
  it("401 without a token; the worklist, overlays and completions through the real handler; 403 for someone else's stack", async () => {
    expect((await api("/worklist", undefined)).status).toBe(401);
    expect((await api("/worklist", "made-up-token")).status).toBe(401);
    const token = local.server.tokenFor(AMY);
    const worklist = WorklistResponseSchema.parse(await (await api("/worklist", token)).json());
    expect(worklist.roundId).toBe(roundId);
    expect(worklist.stacks.map((s) => s.stackId)).toEqual(amy.stackIds);

    const overlays = await api(`/overlays/${encodeURIComponent(amy.stackIds[0] as string)}`, token);
    expect(overlays.status).toBe(200);
    const body = OverlayResponseSchema.parse(await overlays.json());
    expect(body.keyFrames).toHaveLength(3);
    // Presigned GETs of the container's PNGs, passed through this origin's storage stand-in.
    const url = new URL(body.keyFrames[0]?.heatmapPng ?? "");
    expect(`${url.origin}/`).toBe(local.server.url);
    expect(url.pathname).toMatch(/^\/storage\/studies\/overlays\/study-\d{3}\/stack-0-key-\d+-heatmap\.png$/);
    const png = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    const foreign = await api(`/overlays/${encodeURIComponent(zed.stackIds[0] as string)}`, token);
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ code: "NOT_ASSIGNED" });

    const post = (stackId: string) =>
      api("/completions", token, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ stackId, activeSeconds: 61, noHemorrhage: true }),
      });
    expect((await post(zed.stackIds[0] as string)).status).toBe(403);
    expect((await local.store.getStack(zed.stackIds[0] as string))?.completion).toBeUndefined();
    const first = await post(amy.stackIds[0] as string);
    const replay = await post(amy.stackIds[0] as string);
    expect([first.status, replay.status]).toEqual([200, 200]);
    expect(await replay.json()).toEqual(await first.json());
  });

  it("serves the page with a CSP that allows nothing off this origin", async () => {
    const page = await fetch(local.server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'.*connect-src 'self'/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    // The page's own code names no outside address. (The bundled viewer libraries carry documentation and
    // namespace URLs in strings; that nothing is requested off this origin is checked in every browser test.)
    const app = await (await fetch(new URL("app.js", local.server.url))).text();
    expect(app.length).toBeGreaterThan(0);
    for (const file of readdirSync(resolve("web/worklist/src"))) {
      const code = readFileSync(resolve("web/worklist/src", file), "utf8").replace(/\/\*[\s\S]*?\*\/|(^|\s)\/\/.*$/gm, "");
      expect(code, file).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    }
  });

  it("local sign-in is the authorization code grant with PKCE: codes are single-use and bound to the verifier", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const authorize = {
      client_id: "local-worklist",
      response_type: "code",
      redirect_uri: local.server.url,
      state: "s-123",
      code_challenge: challenge,
      code_challenge_method: "S256",
      scope: "openid email",
    };
    const form = await fetch(new URL(`oauth2/authorize?${new URLSearchParams(authorize)}`, local.server.url));
    expect(form.status).toBe(200);
    expect(await form.text()).toContain(`value="${challenge}"`);
    for (const [field, value] of [
      ["code_challenge_method", "plain"],
      ["redirect_uri", "http://127.0.0.1:1/elsewhere"],
      ["client_id", "someone-else"],
      ["response_type", "token"],
    ]) {
      const refused = await fetch(
        new URL(`oauth2/authorize?${new URLSearchParams({ ...authorize, [field as string]: value as string })}`, local.server.url),
      );
      expect(refused.status, field).toBe(400);
    }
    const signIn = (annotator: string) =>
      fetch(new URL("oauth2/authorize", local.server.url), {
        method: "POST",
        body: new URLSearchParams({ ...authorize, annotator }),
        redirect: "manual",
      });
    expect((await signIn("eve@example.org")).status).toBe(403);
    const answer = await signIn(AMY);
    expect(answer.status).toBe(302);
    const back = new URL(answer.headers.get("location") ?? "");
    expect(`${back.origin}${back.pathname}`).toBe(local.server.url);
    expect(back.searchParams.get("state")).toBe("s-123");
    const code = back.searchParams.get("code") ?? "";
    const token = (body: Record<string, string>) =>
      fetch(new URL("oauth2/token", local.server.url), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          client_id: "local-worklist",
          redirect_uri: local.server.url,
          ...body,
        }),
      });
    // A wrong verifier spends the code: the right one cannot use it afterwards.
    const wrong = await token({ code, code_verifier: randomBytes(32).toString("base64url") });
    expect([wrong.status, ((await wrong.json()) as { error: string }).error]).toEqual([400, "invalid_grant"]);
    expect((await token({ code, code_verifier: verifier })).status).toBe(400);

    const again = new URL((await signIn(AMY)).headers.get("location") ?? "").searchParams.get("code") ?? "";
    const granted = await token({ code: again, code_verifier: verifier });
    expect(granted.status).toBe(200);
    const idToken = ((await granted.json()) as { id_token: string }).id_token;
    expect((await api("/worklist", idToken)).status).toBe(200);
    expect((await token({ code: again, code_verifier: verifier })).status).toBe(400); // spent

    const logout = await fetch(
      new URL(`logout?${new URLSearchParams({ client_id: "local-worklist", logout_uri: local.server.url })}`, local.server.url),
      {
        redirect: "manual",
      },
    );
    expect([logout.status, logout.headers.get("location")]).toEqual([302, local.server.url]);
  });
});

// --- in Chromium ------------------------------------------------------------------------------------

const T0 = new Date("2026-11-26T09:00:00Z");
const externalRequests = new WeakMap<Page, string[]>();

/** Closes the page after checking that it asked for nothing outside the local server. */
async function closePage(page: Page) {
  expect(externalRequests.get(page)).toEqual([]);
  await page.context().close();
}

async function openPage(email = AMY, options: { viewport?: { width: number; height: number }; path?: string } = {}): Promise<Page> {
  if (!local.browser) throw new Error("no browser");
  const context = await local.browser.newContext({ viewport: options.viewport ?? { width: 1366, height: 768 } });
  const page = await context.newPage();
  const external = recordRequests(page, (r) =>
    !r.url().startsWith(local.server.url) && !r.url().startsWith("data:") ? r.url() : undefined,
  );
  externalRequests.set(page, external);
  await page.clock.install({ time: T0 });
  await page.goto(options.path ? new URL(options.path, local.server.url).toString() : local.server.url);
  await signInAs(page, email);
  await page.locator("article.stack").first().waitFor();
  return page;
}

/** What `pick` gives for each request the page sends from now on, in order (undefined: left out). */
function recordRequests(page: Page, pick: (request: Request) => string | undefined): string[] {
  const kept: string[] = [];
  page.on("request", (r) => {
    const value = pick(r);
    if (value !== undefined) kept.push(value);
  });
  return kept;
}

const card = (page: Page, stackId: string) => page.locator(`article[data-stack-id="${stackId}"]`);
let mouseX = 10;
/** Some pointer input at the page's current (fake) time. */
async function wiggle(page: Page) {
  mouseX = mouseX === 10 ? 20 : 10;
  await page.mouse.move(mouseX, 700);
}
// Code below in template strings runs in the page (the test project's tsconfig has no DOM types).
/** Makes the page see itself hidden (or visible again), as a tab switch or a minimised window does. */
async function setHidden(page: Page, hidden: boolean) {
  await page.evaluate(`(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => ${hidden ? '"hidden"' : '"visible"'} });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => ${hidden} });
    document.dispatchEvent(new Event("visibilitychange"));
  })()`);
}
const outboxOf = (page: Page) => page.evaluate<string | null>(`localStorage.getItem(${JSON.stringify(`ich-al.worklist.outbox.${AMY}`)})`);
const focusedAttribute = (page: Page, expression: string) =>
  page.evaluate<string | null | undefined>(`document.activeElement?.${expression}`);

describe.skipIf(NO_CHROMIUM !== undefined)("worklist page in headless Chromium", () => {
  it("lists the annotator's selection with scores, predictions and loaded overlay images", async () => {
    const page = await openPage();
    await expect
      .poll(() => page.locator("article.stack").evaluateAll((els) => els.map((e) => e.getAttribute("data-stack-id"))))
      .toEqual(amy.stackIds);
    const records = await Promise.all(amy.stackIds.map((id) => local.store.getStack(id)));
    const first = card(page, amy.stackIds[0] as string);
    await expect.poll(() => first.locator("dd").first().textContent()).toMatch(/min|s$/);
    expect(await first.textContent()).toContain((records[0]?.scores?.stackScore ?? 0).toFixed(2));
    await expect.poll(() => page.locator(".key-frame img").count(), { timeout: 15_000 }).toBe(amy.stackIds.length * 6);
    await expect
      .poll(() => page.evaluate<boolean>(`[...document.querySelectorAll(".key-frame img")].every((i) => i.complete && i.naturalWidth > 0)`))
      .toBe(true);
    expect(await page.locator(".key-frame img").first().getAttribute("alt")).toMatch(/^Mean heatmap, frame \d+ of 24/);
    expect(await page.locator("#total-budget").textContent()).toContain("of 3 h 00 min");
    // Nothing is waiting to be sent, so no card offers "Retry now" (the hidden attribute must win over button CSS).
    expect(await page.locator("[data-action=retry]").count()).toBe(amy.stackIds.length);
    for (const retry of await page.locator("[data-action=retry]").all()) expect(await retry.isVisible()).toBe(false);
    expect(await first.getByRole("button", { name: "Start" }).isVisible()).toBe(true);
    await closePage(page);
  });

  it("start / pause / finish: one completion with the measured active seconds (hidden tab and idle time excluded); refit counts it", async () => {
    const page = await openPage();
    const id = amy.stackIds[0] as string;
    const c = card(page, id);
    await c.getByRole("button", { name: "Start" }).click(); // t = 0, input
    await page.clock.runFor(30_000);
    await wiggle(page); // t = 30
    await page.clock.runFor(30_000); // 60 s counted
    await setHidden(page, true);
    await wiggle(page);
    await page.clock.runFor(60_000); // hidden: nothing
    await setHidden(page, false);
    await wiggle(page);
    await page.clock.runFor(20_000); // 80 s
    await page.clock.runFor(300_000); // no input: counts 100 s more (idle after 120 s)
    expect(await c.locator(".badge").textContent()).toBe("Idle — not counting");
    await c.getByRole("button", { name: "Pause" }).click();
    await page.clock.runFor(5_000);
    await wiggle(page);
    await page.clock.runFor(60_000); // paused: nothing
    expect(await c.locator(".clock").textContent()).toBe("03:00");
    await noHemorrhage(c);
    await c.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => c.locator(".message").textContent()).toContain("Recorded: 3 min");
    const stored = await local.store.getStack(id);
    expect(stored?.status).toBe("labeled");
    expect(stored?.completion).toMatchObject({ activeSeconds: 180, annotator: AMY, noHemorrhage: true, source: "page" });
    expect(await c.locator(".outcome").textContent()).toMatch(/Predicted .* · actual 3 min/);
    expect(await c.locator(".outcome").isVisible()).toBe(true);
    expect(await c.locator(".controls").isVisible()).toBe(false); // a labeled stack has nothing left to press
    expect(await page.locator("#total-done").textContent()).toBe(`1 of ${amy.stackIds.length}`);
    await closePage(page);

    const refit = await runRefit(new Date().toISOString(), {
      records: local.store,
      timeModels: new DynamoTimeModelStore(local.dynamo, TABLE),
    });
    expect(refit.n).toBe(1);
    expect(refit.lastRound).toMatchObject({ roundId, stacks: 1, actualSeconds: 180 });
  });

  it("a double finish and a network failure mid-post (stored, answer lost) give exactly one completion", async () => {
    const page = await openPage();
    const id = amy.stackIds[1] as string;
    const c = card(page, id);
    const posts = recordRequests(page, (r) => (r.url().endsWith("/api/completions") ? (r.postData() ?? "") : undefined));
    await c.getByRole("button", { name: "Start" }).click();
    await page.clock.runFor(42_000);
    await noHemorrhage(c);
    // The server receives and stores the first POST, but its answer never reaches the page.
    let release = () => {};
    const held = new Promise<void>((done) => {
      release = done;
    });
    await page.route(
      "**/api/completions",
      async (route) => {
        await held;
        await route.fetch();
        await route.abort("failed");
      },
      { times: 1 },
    );
    await c.getByRole("button", { name: "Finish" }).click();
    await page.keyboard.press("f"); // finish again while the first post is in flight
    expect(await c.locator(".message").textContent()).toContain("Already sending");
    release();
    await expect.poll(() => c.locator(".message").textContent()).toMatch(/Not sent yet — network failure/);
    expect(JSON.parse((await outboxOf(page)) ?? "[]")).toEqual([{ stackId: id, activeSeconds: 42, noHemorrhage: true }]);
    expect((await local.store.getStack(id))?.completion?.activeSeconds).toBe(42);
    await c.getByRole("button", { name: "Retry now" }).click();
    await expect.poll(() => c.locator(".message").textContent()).toContain("Recorded: 42 s");
    expect(await outboxOf(page)).toBeNull();
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(posts).size).toBe(1); // every post carried the same body
    await c.focus();
    await page.keyboard.press("f");
    expect(await c.locator(".message").textContent()).toContain("Already finished");
    expect((await local.store.listByStatus("labeled")).map((s) => [s.stackId, s.completion?.activeSeconds])).toEqual([[id, 42]]);
    await closePage(page);
  });

  it("an unsent completion survives a reload and is sent from localStorage", async () => {
    const page = await openPage();
    const id = amy.stackIds[0] as string;
    const c = card(page, id);
    await page.route("**/api/completions", (route) => route.abort("internetdisconnected"));
    await c.getByRole("button", { name: "Start" }).click();
    await page.clock.runFor(25_000);
    await noHemorrhage(c);
    await c.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => c.locator(".badge").textContent()).toBe("Not sent yet");
    expect((await local.store.getStack(id))?.status).toBe("selected");
    await page.unroute("**/api/completions");
    await page.reload();
    await expect.poll(() => card(page, id).locator(".badge").textContent()).toBe("Done");
    expect((await local.store.getStack(id))?.completion?.activeSeconds).toBe(25);
    await closePage(page);
  });

  it("finishing a stack assigned to someone else: a clear message, nothing stored, nothing kept", async () => {
    const foreign = zed.stackIds[0] as string;
    const page = await openPage();
    // A stale or tampered worklist that shows zed's stack to amy.
    await page.route("**/api/worklist", async (route) => {
      const response = await route.fetch();
      const json = await response.json();
      json.stacks.push({ stackId: foreign, status: "selected", predictedSeconds: 300, stackScore: 0.5, stackUncertainty: 0.01 });
      await route.fulfill({ response, json });
    });
    await page.reload();
    const c = card(page, foreign);
    await c.getByRole("button", { name: "Start" }).click();
    await page.clock.runFor(10_000);
    await noHemorrhage(c);
    await c.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => c.locator(".message").textContent()).toContain("not assigned to you");
    expect(await c.locator(".message").getAttribute("data-tone")).toBe("error");
    expect(await outboxOf(page)).toBeNull();
    const record = await local.store.getStack(foreign);
    expect([record?.status, record?.completion]).toEqual(["selected", undefined]);
    await closePage(page);
  });

  it("a desktop tool's mask: uploaded through the presigned URL, a wrong frame count refused beside Finish with nothing recorded, the fixed mask accepted and kept", async () => {
    const page = await openPage();
    const id = amy.stackIds[0] as string;
    const c = card(page, id);
    const puts = recordRequests(page, (r) => (r.method() === "PUT" ? new URL(r.url()).pathname : undefined));
    await c.getByRole("button", { name: "Start" }).click();
    await page.clock.runFor(40_000);
    const [frames, rows, columns] = FIXTURE_GEOMETRY.shape;
    const short = encodeMask(new Uint8Array((frames - 1) * rows * columns), { ...FIXTURE_GEOMETRY, shape: [frames - 1, rows, columns] });
    await attachMask(c, short);
    await c.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => c.locator(".message").textContent()).toContain("the mask was refused");
    const message = (await c.locator(".message").textContent()) ?? "";
    expect(message).toMatch(/MASK_REFUSED: .*8×6×3 voxels.*frames/);
    expect(await c.locator(".message").getAttribute("data-tone")).toBe("error");
    expect((await local.store.getStack(id))?.status).toBe("selected");
    expect((await local.store.listMaskRefusals(id)).map((r) => r.code)).toEqual(["GEOMETRY_MISMATCH"]);
    expect(await outboxOf(page)).toBeNull();
    // Fixed and finished again: the kept active time goes with it.
    await attachMask(c, fixtureMaskBytes());
    await c.getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => c.locator(".message").textContent()).toContain("Recorded: 40 s");
    const stored = await local.store.getStack(id);
    expect(stored?.completion).toMatchObject({ activeSeconds: 40, source: "external", mask: { labeledVoxels: 6, values: [0, 3] } });
    const kept = await local.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: stored?.completion?.mask?.key }));
    const check = checkMask((await kept.Body?.transformToByteArray()) ?? new Uint8Array(0), FIXTURE_GEOMETRY);
    expect(check.ok && Buffer.from(check.labels).equals(Buffer.from(fixtureLabels()))).toBe(true);
    // Both uploads went through this origin's storage stand-in, one key each.
    expect(puts).toHaveLength(2);
    for (const path of puts) expect(path).toMatch(new RegExp(`^/storage/${BUCKET}/label-uploads/${id}/[0-9a-f-]{36}\\.nii\\.gz$`));
    await closePage(page);
  });

  it("is keyboard operable: Tab reaches the controls in order, shortcuts start, pause and finish", async () => {
    const page = await openPage();
    const id = amy.stackIds[0] as string;
    await page.keyboard.press("j"); // focus the first stack
    expect(await focusedAttribute(page, 'getAttribute("data-stack-id")')).toBe(id);
    await page.keyboard.press("Tab");
    expect(await focusedAttribute(page, "id")).toMatch(/^mask-/);
    await page.keyboard.press("Tab");
    expect(await focusedAttribute(page, "id")).toMatch(/^negative-/);
    await page.keyboard.press("Space"); // "No hemorrhage"
    await page.keyboard.press("Tab");
    expect(await focusedAttribute(page, "textContent")).toBe("Start");
    await page.keyboard.press("Enter");
    await page.clock.runFor(15_000);
    await page.keyboard.press("p");
    expect(await card(page, id).locator(".badge").textContent()).toBe("Paused");
    await page.keyboard.press("s");
    await page.clock.runFor(5_000);
    await page.keyboard.press("f");
    await expect.poll(() => card(page, id).locator(".message").textContent()).toContain("Recorded: 20 s");
    await closePage(page);
  });

  it("signs in with PKCE and returns to the e-mail's link (?round=…#stack), that stack focused; no code or token left in the address", async () => {
    const linked = amy.stackIds[1] as string;
    const path = `?round=${encodeURIComponent(roundId)}#${encodeURIComponent(linked)}`;
    const page = await openPage(AMY, { path });
    const address = new URL(page.url());
    expect(address.searchParams.get("round")).toBe(roundId);
    expect(decodeURIComponent(address.hash.slice(1))).toBe(linked);
    expect(address.searchParams.has("code")).toBe(false);
    expect(page.url()).not.toMatch(/id_token|code=|state=/);
    await expect.poll(() => focusedAttribute(page, 'getAttribute("data-stack-id")')).toBe(linked);
    await closePage(page);
  });

  it("sign-out ends the sign-in service's session and comes back to a signed-out page", async () => {
    const page = await openPage();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out.").waitFor();
    expect(new URL(page.url()).toString()).toBe(local.server.url);
    expect(await page.evaluate<string | null>(`sessionStorage.getItem("ich-al.worklist.token")`)).toBeNull();
    await expect.poll(() => page.locator("article.stack").count()).toBe(0);
    await closePage(page);
  });

  it("refuses a sign-in answer that this tab did not ask for (foreign state), without calling the token endpoint", async () => {
    if (!local.browser) throw new Error("no browser");
    const context = await local.browser.newContext();
    const page = await context.newPage();
    const tokenCalls = recordRequests(page, (r) => (r.url().includes("/oauth2/token") ? r.url() : undefined));
    await page.goto(`${local.server.url}?code=stolen-code&state=not-mine`);
    await page.getByText("does not belong to a sign-in started in this tab").waitFor();
    expect(tokenCalls).toEqual([]);
    expect(page.url()).toBe(local.server.url);
    await context.close();
  });

  it("screenshot of the weekly e-mail's HTML part as a mail client shows it; its one link opens this page", async () => {
    if (!local.browser) throw new Error("Chromium was found but did not start");
    const raw = mailer.sent.find((m) => m.to === AMY)?.raw ?? "";
    const [text, html] = parseMime(raw).parts.map((p) => p.body) as [string, string];
    expect(text).toContain(`Stack 1 of ${amy.stackIds.length} · `);
    const context = await local.browser.newContext({ viewport: { width: 760, height: 600 }, javaScriptEnabled: false });
    const page = await context.newPage();
    await page.setContent(html);
    const links = await page.locator("a").all();
    expect(links).toHaveLength(1);
    const href = (await links[0]?.getAttribute("href")) ?? "";
    expect(new URL(href).searchParams.get("round")).toBe(roundId);
    expect(href.startsWith(local.server.url)).toBe(true);
    expect(await page.locator("li").count()).toBe(amy.stackIds.length);
    const scratch = process.env.EMAIL_SCREENSHOT ? undefined : mkdtempSync(join(tmpdir(), "email-"));
    const out = scratch ? join(scratch, "email.png") : resolve(process.env.EMAIL_SCREENSHOT as string);
    await page.screenshot({ path: out, fullPage: true });
    expect(readFileSync(out).subarray(1, 4).toString()).toBe("PNG");
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    await context.close();
  });

  it("screenshot of a populated worklist", async () => {
    const page = await openPage(AMY, { viewport: { width: 1366, height: 900 } });
    const [done, open] = amy.stackIds as [string, string];
    await card(page, done).getByRole("button", { name: "Start" }).click();
    for (let i = 0; i < 9; i++) {
      await page.clock.runFor(55_000);
      await wiggle(page);
    }
    await attachMask(card(page, done), fixtureMaskBytes());
    await card(page, done).getByRole("button", { name: "Finish" }).click();
    await expect.poll(() => card(page, done).locator(".badge").textContent()).toBe("Done");
    await card(page, open).getByRole("button", { name: "Start" }).click();
    for (let i = 0; i < 3; i++) {
      await page.clock.runFor(50_000);
      await wiggle(page);
    }
    await expect.poll(() => page.locator(".key-frame img").count()).toBe(amy.stackIds.length * 6);
    await page.mouse.move(1300, 10);
    const scratch = process.env.WORKLIST_SCREENSHOT ? undefined : mkdtempSync(join(tmpdir(), "worklist-"));
    const out = scratch ? join(scratch, "worklist.png") : resolve(process.env.WORKLIST_SCREENSHOT as string);
    await page.screenshot({ path: out, fullPage: true });
    expect(readFileSync(out).subarray(1, 4).toString()).toBe("PNG");
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    await closePage(page);
  });
});
