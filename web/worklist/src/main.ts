/**
 * The annotator worklist page: the signed-in annotator's stacks of the latest round, their
 * key-frame overlays, per-stack start / pause / finish with active-time measurement (active-time.ts),
 * and completions that survive network failures (outbox.ts). No framework, no external requests.
 *
 * Keyboard: every control is a native button or input in reading order; shortcuts (ignored while typing
 * in a text field): j / k next / previous stack · s start or resume · p pause · f finish · ? shortcuts.
 * They act on the stack that holds the focus, else the open one, else the first one not yet done.
 */
import { ActiveTimeMeter } from "./active-time.js";
import {
  type CompletionResponse,
  DEFAULT_CONFIG,
  type OverlayResponse,
  type PageConfig,
  WorklistApi,
  type WorklistResponse,
} from "./api.js";
import { beginSignIn, completeSignIn, type OAuthConfig, refreshIdToken, renewAfterSeconds, resolveAuth, signOutUrl } from "./auth.js";
import { formatClock, formatDeviation, formatDuration } from "./format.js";
import { CompletionOutbox, type PendingCompletion, verdictOf } from "./outbox.js";
import { ViewerPanel } from "./viewer-panel.js";

type Stack = WorklistResponse["stacks"][number];

const TOKEN_KEY = "ich-al.worklist.token";
const REFRESH_KEY = "ich-al.worklist.refresh";
const EXPIRES_KEY = "ich-al.worklist.token-expires-at";
const SIGNED_OUT_KEY = "ich-al.worklist.signed-out";
const RETRY_MS = 15_000;
const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"] as const;

let config: PageConfig = DEFAULT_CONFIG;
let auth: OAuthConfig = DEFAULT_CONFIG.auth;
let api: WorklistApi | undefined;
let worklist: WorklistResponse | undefined;
let outbox: CompletionOutbox | undefined;
const meters = new Map<string, ActiveTimeMeter>();
const sending = new Set<string>();
const cards = new Map<string, Card>();
let retryTimer: number | undefined;

interface Card {
  readonly root: HTMLElement;
  readonly badge: HTMLElement;
  readonly clock: HTMLElement;
  readonly start: HTMLButtonElement;
  readonly pause: HTMLButtonElement;
  readonly finish: HTMLButtonElement;
  readonly retry: HTMLButtonElement;
  /** The mask file (NIfTI from a desktop tool) and the "no hemorrhage" choice. */
  readonly mask: HTMLInputElement;
  readonly negative: HTMLInputElement;
  readonly controls: HTMLElement;
  readonly message: HTMLElement;
  readonly outcome: HTMLElement;
  readonly thumbs: HTMLElement;
  /** The CT viewer and drawing tools (opened on demand). */
  readonly viewer: ViewerPanel;
}

// --- tiny DOM helper ----------------------------------------------------------------------------

type Attrs = Record<string, string | boolean | undefined>;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children);
  return el;
}

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const now = () => Date.now();

// --- storage ------------------------------------------------------------------------------------

function metersKey(): string {
  return `ich-al.worklist.meters.${worklist?.annotator ?? ""}`;
}

function saveMeters(): void {
  if (!worklist) return;
  const t = now();
  const saved: Record<string, number> = {};
  for (const [stackId, meter] of meters) saved[stackId] = meter.state(t).activeMs;
  localStorage.setItem(metersKey(), JSON.stringify(saved));
}

function loadMeters(): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(metersKey()) ?? "{}");
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, number>) : {};
  } catch {
    return {};
  }
}

// --- sign-in --------------------------------------------------------------------------------------

/**
 * Finishes a sign-in the authorization server has just answered. Returns the ID token of this tab, or
 * undefined with the sign-in panel shown (saying why: a refused sign-in, a sign-out, or none yet).
 */
async function takeToken(): Promise<string | undefined> {
  const outcome = await completeSignIn(auth, sessionStorage, new URL(location.href));
  if (outcome.kind === "signed-in") {
    keepToken(outcome.idToken, outcome.expiresIn, outcome.refreshToken);
    history.replaceState(null, "", outcome.returnTo); // the code leaves the address bar; the e-mail's link is back
  } else if (outcome.kind === "failed") {
    history.replaceState(null, "", location.pathname);
    showSignIn(outcome.message);
    return undefined;
  }
  const token = sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  if (token) return token;
  const signedOut = sessionStorage.getItem(SIGNED_OUT_KEY) !== null;
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  showSignIn(
    signedOut
      ? "Signed out. Unsent completions stay in this browser until you sign in again."
      : "Sign in with your institution account to see the stacks assigned to you.",
  );
  return undefined;
}

let renewTimer: number | undefined;

/** Keeps the tab's ID token (and refresh token) and schedules its renewal before it expires. */
function keepToken(idToken: string, expiresIn: number, refreshToken?: string): void {
  sessionStorage.setItem(TOKEN_KEY, idToken);
  sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresIn * 1000));
  if (refreshToken) sessionStorage.setItem(REFRESH_KEY, refreshToken);
  scheduleRenewal();
}

/** Renews the ID token with the refresh token before it expires (also after a reload, from the kept expiry). */
function scheduleRenewal(): void {
  if (renewTimer !== undefined) window.clearTimeout(renewTimer);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) ?? Number.NaN);
  if (!sessionStorage.getItem(REFRESH_KEY) || !Number.isFinite(expiresAt)) return;
  const lifetime = Math.max(0, (expiresAt - Date.now()) / 1000);
  renewTimer = window.setTimeout(() => void renewToken(), renewAfterSeconds(lifetime) * 1000);
}

async function renewToken(): Promise<void> {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return;
  const answer = await refreshIdToken(auth, refresh);
  if ("failed" in answer) return; // the next API call answers 401 and asks to sign in; nothing unsent is lost
  keepToken(answer.idToken, answer.expiresIn, answer.refreshToken);
  if (api) api = new WorklistApi(config.apiBase, answer.idToken);
}

async function signIn(): Promise<void> {
  location.assign(await beginSignIn(auth, sessionStorage, location.pathname + location.search + location.hash));
}

function showSignIn(reason: string): void {
  api = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  if (renewTimer !== undefined) window.clearTimeout(renewTimer);
  $("who").textContent = "";
  $("who-line").hidden = true;
  $("sign-out").hidden = true;
  const link = h("button", { type: "button", class: "primary" }, "Sign in");
  link.addEventListener("click", () => void signIn());
  $("main").replaceChildren(
    h(
      "section",
      { class: "panel sign-in", "aria-labelledby": "sign-in-title" },
      h("h2", { id: "sign-in-title" }, "Sign in"),
      h("p", {}, reason),
      link,
    ),
  );
  link.focus();
}

// --- notices --------------------------------------------------------------------------------------

function notice(text: string, tone: "info" | "error" = "info"): void {
  const el = $("notice");
  el.textContent = text;
  el.dataset.tone = tone;
  el.hidden = text.length === 0;
}

function say(stackId: string, text: string, tone: "info" | "error" | "ok" = "info"): void {
  const card = cards.get(stackId);
  if (!card) {
    notice(text, tone === "error" ? "error" : "info");
    return;
  }
  card.message.textContent = text;
  card.message.dataset.tone = tone;
}

// --- worklist -------------------------------------------------------------------------------------

async function loadWorklist(): Promise<void> {
  if (!api) return;
  const answer = await api.worklist();
  if (answer.status === 401) return showSignIn("Your session has ended. Sign in again; unsent completions are kept in this browser.");
  if (answer.status !== 200 || !answer.body || !("stacks" in answer.body)) {
    notice(
      answer.status === undefined
        ? "The worklist could not be loaded: no answer from the server. Check the connection and reload."
        : `The worklist could not be loaded (HTTP ${answer.status}).`,
      "error",
    );
    return;
  }
  worklist = answer.body;
  outbox = new CompletionOutbox(localStorage, worklist.annotator);
  $("who").textContent = worklist.annotator;
  $("who-line").hidden = false;
  $("sign-out").hidden = false;
  const saved = loadMeters();
  const visible = document.visibilityState === "visible";
  for (const stack of worklist.stacks) {
    if (!meters.has(stack.stackId))
      meters.set(stack.stackId, new ActiveTimeMeter(now(), config.idleSeconds * 1000, { activeMs: saved[stack.stackId] ?? 0, visible }));
  }
  render();
  focusLinkedStack();
  void flushOutbox();
}

/** The e-mail links each stack as `…#<stackId>`: that card gets the focus (so the shortcuts act on it). */
function focusLinkedStack(): void {
  const id = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";
  const card = cards.get(id);
  if (!card) return;
  card.root.scrollIntoView({ block: "center" });
  card.root.focus();
}

function render(): void {
  if (!worklist) return;
  cards.clear();
  const main = $("main");
  if (worklist.roundId === null || worklist.stacks.length === 0) {
    main.replaceChildren(
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Nothing to label"),
        h(
          "p",
          {},
          worklist.roundId === null ? "No recent round assigned you any stacks." : `Round ${worklist.roundId} assigned you no stacks.`,
        ),
      ),
    );
    return;
  }
  const list = h("ol", { class: "stacks", "aria-label": "Your stacks" });
  for (const stack of worklist.stacks) list.append(h("li", {}, renderCard(stack)));
  main.replaceChildren(h("section", { class: "summary panel", "aria-labelledby": "summary-title", id: "summary" }), list);
  renderSummary();
  for (const stack of worklist.stacks) updateCard(stack.stackId);
  void loadOverlays(worklist.stacks.map((s) => s.stackId));
}

function renderSummary(): void {
  if (!worklist) return;
  const stacks = worklist.stacks;
  const done = stacks.filter((s) => s.status === "labeled" && s.completion);
  const actual = done.reduce((n, s) => n + (s.completion?.activeSeconds ?? 0), 0);
  const predictedDone = done.reduce((n, s) => n + s.predictedSeconds, 0);
  const budget = worklist.budgetSeconds;
  const share = budget > 0 ? Math.min(1, worklist.roundPredictedSeconds / budget) : 0;
  const fact = (term: string, value: string, id: string, detail?: string) =>
    h("div", { class: "fact" }, h("dt", {}, term), h("dd", { id }, value, ...(detail ? [h("span", { class: "detail" }, detail)] : [])));
  const bar = h("div", {
    class: "budget-bar",
    role: "meter",
    "aria-label": "Round predicted time as a share of the budget",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": String(Math.round(share * 100)),
  });
  bar.style.setProperty("--share", `${(share * 100).toFixed(1)}%`); // CSSOM, allowed by a CSP without 'unsafe-inline'
  $("summary").replaceChildren(
    h("h2", { id: "summary-title" }, `Round ${worklist.roundId ?? ""}`),
    h(
      "dl",
      { class: "facts" },
      fact("Done", `${done.length} of ${stacks.length}`, "total-done"),
      fact("Your predicted time", formatDuration(worklist.predictedSeconds), "total-predicted"),
      fact(
        "Done: actual vs predicted",
        done.length ? `${formatDuration(actual)} vs ${formatDuration(predictedDone)}` : "—",
        "total-actual",
        done.length ? formatDeviation(actual, predictedDone) : undefined,
      ),
      fact("Round: predicted vs budget", `${formatDuration(worklist.roundPredictedSeconds)} of ${formatDuration(budget)}`, "total-budget"),
    ),
    bar,
  );
}

function renderCard(stack: Stack): HTMLElement {
  const id = stack.stackId;
  const safe = id.replace(/[^A-Za-z0-9_-]/g, "_");
  const title = h("h2", { id: `title-${safe}` }, id);
  const badge = h("span", { class: "badge", "data-role": "status" });
  const clock = h("span", { class: "clock", "aria-label": "Active time" }, "00:00");
  const start = h(
    "button",
    { type: "button", "data-action": "start", "aria-keyshortcuts": "s", "aria-describedby": `title-${safe}` },
    "Start",
  );
  const pause = h(
    "button",
    { type: "button", "data-action": "pause", "aria-keyshortcuts": "p", "aria-describedby": `title-${safe}` },
    "Pause",
  );
  const finish = h(
    "button",
    { type: "button", class: "primary", "data-action": "finish", "aria-keyshortcuts": "f", "aria-describedby": `title-${safe}` },
    "Finish",
  );
  const retry = h("button", { type: "button", "data-action": "retry", hidden: true }, "Retry now");
  const mask = h("input", { type: "file", id: `mask-${safe}`, name: "mask", accept: ".nii,.nii.gz,.gz" });
  const negative = h("input", { type: "checkbox", id: `negative-${safe}`, name: "noHemorrhage" });
  const controls = h(
    "div",
    { class: "controls" },
    h("label", { for: `mask-${safe}` }, "Mask (NIfTI from 3D Slicer or ITK-SNAP)"),
    mask,
    h("label", { class: "check" }, negative, " No hemorrhage (finish without a mask)"),
    h("div", { class: "buttons" }, start, pause, finish, retry),
  );
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const outcome = h("p", { class: "outcome", hidden: true });
  const thumbs = h(
    "div",
    { class: "thumbs", role: "group", "aria-label": `Key frames of ${id}` },
    h("p", { class: "muted" }, "Loading overlays…"),
  );
  const facts = h(
    "dl",
    { class: "facts compact" },
    h("div", { class: "fact" }, h("dt", {}, "Predicted"), h("dd", {}, formatDuration(stack.predictedSeconds))),
    h("div", { class: "fact" }, h("dt", {}, "Stack score"), h("dd", {}, stack.stackScore.toFixed(2))),
    h("div", { class: "fact" }, h("dt", {}, "Uncertainty V"), h("dd", {}, stack.stackUncertainty.toFixed(4))),
    h("div", { class: "fact" }, h("dt", {}, "Active"), h("dd", {}, clock)),
  );
  const viewer = new ViewerPanel(id, worklist?.annotator ?? "", () => api, h);
  const root = h(
    "article",
    { class: "stack", id: `stack-${safe}`, "data-stack-id": id, tabindex: "-1", "aria-labelledby": `title-${safe}` },
    h("div", { class: "stack-info" }, h("header", { class: "stack-head" }, title, badge), facts, controls, outcome, message),
    thumbs,
    viewer.root,
  );
  start.addEventListener("click", () => startStack(id));
  pause.addEventListener("click", () => pauseStack(id));
  finish.addEventListener("click", () => void finishStack(id));
  retry.addEventListener("click", () => void retryStack(id));
  cards.set(id, { root, badge, clock, start, pause, finish, retry, mask, negative, controls, message, outcome, thumbs, viewer });
  return root;
}

function statusOf(stack: Stack, t: number): { text: string; tone: string } {
  const meter = meters.get(stack.stackId);
  if (stack.status === "labeled") return { text: "Done", tone: "done" };
  if (sending.has(stack.stackId)) return { text: "Sending…", tone: "busy" };
  if (outbox?.get(stack.stackId)) return { text: "Not sent yet", tone: "warn" };
  if (meter?.idle(t)) return { text: "Idle — not counting", tone: "warn" };
  if (meter?.counting(t)) return { text: "In progress", tone: "active" };
  if (meter?.state(t).open) return { text: "Open — tab hidden", tone: "warn" };
  if ((meter?.state(t).activeMs ?? 0) > 0) return { text: "Paused", tone: "paused" };
  return { text: "To do", tone: "todo" };
}

function updateCard(stackId: string): void {
  const stack = worklist?.stacks.find((s) => s.stackId === stackId);
  const card = cards.get(stackId);
  if (!stack || !card) return;
  const t = now();
  const meter = meters.get(stackId);
  const state = meter?.state(t) ?? { activeMs: 0, open: false };
  const status = statusOf(stack, t);
  card.badge.textContent = status.text;
  card.badge.dataset.tone = status.tone;
  card.root.dataset.state = status.tone;
  const done = stack.status === "labeled";
  const held = sending.has(stackId) || outbox?.get(stackId) !== undefined;
  card.clock.textContent = formatClock(done && stack.completion ? stack.completion.activeSeconds * 1000 : state.activeMs);
  card.controls.hidden = done;
  card.start.textContent = state.activeMs > 0 ? "Resume" : "Start";
  card.start.disabled = done || held || state.open;
  card.pause.disabled = done || held || !state.open;
  card.finish.disabled = done || held;
  card.mask.disabled = done || held;
  card.negative.disabled = done || held;
  card.retry.hidden = done || !held || sending.has(stackId);
  if (done && stack.completion) {
    const c = stack.completion;
    card.outcome.hidden = false;
    card.outcome.replaceChildren(
      h("strong", {}, "Predicted "),
      formatDuration(stack.predictedSeconds),
      h("strong", {}, " · actual "),
      formatDuration(c.activeSeconds),
      ` (${formatDeviation(c.activeSeconds, stack.predictedSeconds)})`,
    );
  } else card.outcome.hidden = true;
}

function updateAll(): void {
  for (const id of cards.keys()) updateCard(id);
}

// --- overlays -------------------------------------------------------------------------------------

async function loadOverlays(stackIds: string[]): Promise<void> {
  const queue = [...stackIds];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) await loadOverlay(id);
  };
  await Promise.all([worker(), worker(), worker()]);
}

async function loadOverlay(stackId: string): Promise<void> {
  const card = cards.get(stackId);
  if (!api || !card) return;
  const answer = await api.overlays(stackId);
  if (answer.status !== 200 || !answer.body || !("keyFrames" in answer.body)) {
    const text =
      answer.status === 404
        ? "No overlays stored for this stack."
        : answer.status === undefined
          ? "Overlays could not be loaded (no answer from the server)."
          : `Overlays could not be loaded (HTTP ${answer.status}).`;
    card.thumbs.replaceChildren(h("p", { class: "muted" }, text));
    return;
  }
  const overlay: OverlayResponse = answer.body;
  const size = { width: String(overlay.thumbnailWidth), height: String(overlay.thumbnailHeight) };
  const figures = overlay.keyFrames.map((k) => {
    const frame = `frame ${k.frame + 1} of ${overlay.frames}`;
    return h(
      "figure",
      { class: "key-frame" },
      h("img", { src: k.heatmapPng, alt: `Mean heatmap, ${frame} (frame score ${k.frameScore.toFixed(2)})`, class: "heatmap", ...size }),
      h("img", { src: k.jsDivergencePng, alt: `JS divergence, ${frame}`, class: "js", ...size }),
      h("figcaption", {}, `Frame ${k.frame + 1}`, h("span", { class: "detail" }, ` · ${k.frameScore.toFixed(2)}`)),
    );
  });
  card.thumbs.replaceChildren(
    h(
      "div",
      { class: "legend", "aria-hidden": "true" },
      h("span", { class: "swatch heat" }),
      "heatmap",
      h("span", { class: "swatch js" }),
      "JS divergence",
    ),
    h("div", { class: "frames" }, ...figures),
  );
}

// --- start / pause / finish -----------------------------------------------------------------------

function startStack(stackId: string): void {
  const stack = worklist?.stacks.find((s) => s.stackId === stackId);
  if (!stack || stack.status === "labeled" || sending.has(stackId) || outbox?.get(stackId)) return;
  const t = now();
  for (const [id, meter] of meters) {
    if (id !== stackId && meter.state(t).open) {
      meter.pause(t);
      say(id, "Paused: another stack was started.");
    }
  }
  meters.get(stackId)?.start(t);
  say(stackId, "");
  saveMeters();
  updateAll();
}

function pauseStack(stackId: string): void {
  meters.get(stackId)?.pause(now());
  saveMeters();
  updateCard(stackId);
}

async function finishStack(stackId: string): Promise<void> {
  const stack = worklist?.stacks.find((s) => s.stackId === stackId);
  const card = cards.get(stackId);
  if (!stack || !card || !outbox) return;
  if (stack.status === "labeled") return say(stackId, "Already finished: the completion is recorded.", "ok");
  if (sending.has(stackId)) return say(stackId, "Already sending this completion; wait for the answer.");
  let pending = outbox.get(stackId);
  if (!pending) {
    const meter = meters.get(stackId);
    const t = now();
    meter?.pause(t);
    const activeSeconds = meter?.seconds(t) ?? 0;
    if (activeSeconds < 1) {
      updateCard(stackId);
      return say(stackId, "Start the stack first: no active time has been measured yet.", "error");
    }
    const file = card.mask.files?.[0];
    if (card.negative.checked) {
      pending = outbox.add({ stackId, activeSeconds, noHemorrhage: true });
    } else if (file) {
      const uploadKey = await uploadMask(stackId, file, file.name.toLowerCase().endsWith(".gz"));
      if (!uploadKey) return;
      // A mask made in a desktop tool: the page did not see the work, so the refit leaves its time out.
      pending = outbox.add({ stackId, activeSeconds, maskUploadKey: uploadKey, source: "external" });
    } else if (card.viewer.isOpen && card.viewer.hasLabels()) {
      card.viewer.saveNow();
      const drawn = await card.viewer.maskFile();
      const uploadKey = drawn ? await uploadMask(stackId, drawn, true) : undefined;
      if (!uploadKey) return;
      const work = card.viewer.work;
      pending = outbox.add({ stackId, activeSeconds, maskUploadKey: uploadKey, source: "page", ...(work ? { work } : {}) });
    } else {
      updateCard(stackId);
      card.mask.focus();
      return say(stackId, "Draw the mask in the viewer, choose a mask file (NIfTI), or tick “No hemorrhage”.", "error");
    }
    saveMeters();
  }
  card.root.focus();
  await send(pending);
}

/** Uploads the chosen mask; the upload key, or undefined after saying why it failed. */
async function uploadMask(stackId: string, file: Blob, gzip: boolean): Promise<string | undefined> {
  if (!api) return undefined;
  sending.add(stackId);
  say(stackId, `Uploading the mask (${Math.ceil(file.size / 1024)} KiB)…`);
  updateCard(stackId);
  const outcome = await api.uploadMask(stackId, file, gzip);
  sending.delete(stackId);
  updateCard(stackId);
  if ("uploadKey" in outcome) return outcome.uploadKey;
  const body = outcome.answer.body as { code?: string; message?: string } | undefined;
  const why =
    outcome.answer.status === undefined
      ? "no answer (network failure)"
      : `${body?.code ?? `HTTP ${outcome.answer.status}`}: ${body?.message ?? ""}`;
  say(
    stackId,
    `The mask was not uploaded (${outcome.step === "put" ? "storage" : "API"} — ${why}). Nothing was recorded; finish again.`,
    "error",
  );
  if (outcome.answer.status === 401) showSignIn("Your session has ended. Sign in again, then finish the stack again.");
  return undefined;
}

async function retryStack(stackId: string): Promise<void> {
  const pending = outbox?.get(stackId);
  if (pending && !sending.has(stackId)) await send(pending);
}

async function send(pending: PendingCompletion): Promise<void> {
  if (!api || !outbox || sending.has(pending.stackId)) return;
  const id = pending.stackId;
  sending.add(id);
  say(id, `Sending the completion (${formatDuration(pending.activeSeconds)} active)…`);
  updateCard(id);
  const answer = await api.complete(pending);
  sending.delete(id);
  const body = answer.body as { code?: string; message?: string } | undefined;
  const verdict = verdictOf(answer.status, body);
  const stack = worklist?.stacks.find((s) => s.stackId === id);
  if (verdict.kind === "acknowledged") {
    outbox.remove(id);
    cards.get(id)?.viewer.recorded();
    const response = answer.body as CompletionResponse;
    if (stack) {
      stack.status = "labeled";
      stack.completion = response.completion;
    }
    say(id, `Recorded: ${formatDuration(response.completion.activeSeconds)} of active time.`, "ok");
    renderSummary();
  } else if (verdict.kind === "refused") {
    outbox.remove(id);
    const text: Record<string, string> = {
      NOT_ASSIGNED: "Not recorded: this stack is not assigned to you. Nothing was saved for it.",
      CONFLICT:
        "Not recorded: this stack was already completed with different values (another tab or device?). The stored completion is shown.",
      NOT_SELECTED: "Not recorded: this stack is no longer selected for labeling.",
      NOT_FOUND: "Not recorded: the server does not know this stack.",
      MASK_REFUSED: "Not recorded: the mask was refused. Fix it (or export it again on the stack's grid) and finish again.",
    };
    say(id, `${text[verdict.code] ?? "Not recorded."} (${verdict.code}: ${verdict.message})`, "error");
    if (verdict.code === "CONFLICT") await refreshStack(id);
  } else {
    say(
      id,
      `Not sent yet — ${verdict.reason}. The completion (${formatDuration(pending.activeSeconds)}) is kept in this browser and is sent again automatically; or press “Retry now”.`,
      "error",
    );
    scheduleRetry();
    if (answer.status === 401)
      showSignIn("Your session has ended. Sign in again; the unsent completion is kept in this browser and is sent after sign-in.");
  }
  updateCard(id);
}

/** Re-reads the worklist and takes the stored state of one stack (after a conflict). */
async function refreshStack(stackId: string): Promise<void> {
  const answer = await api?.worklist();
  const fresh =
    answer?.status === 200 && answer.body && "stacks" in answer.body ? answer.body.stacks.find((s) => s.stackId === stackId) : undefined;
  const stack = worklist?.stacks.find((s) => s.stackId === stackId);
  if (fresh && stack) Object.assign(stack, fresh);
  renderSummary();
}

async function flushOutbox(): Promise<void> {
  for (const pending of outbox?.list() ?? []) await send(pending);
}

function scheduleRetry(): void {
  if (retryTimer !== undefined) return;
  retryTimer = window.setTimeout(() => {
    retryTimer = undefined;
    void flushOutbox();
  }, RETRY_MS);
}

// --- keyboard -------------------------------------------------------------------------------------

function focusedStack(): string | undefined {
  return (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("article.stack")?.dataset.stackId;
}

/** The stack a shortcut acts on: the focused one, else the open one, else the first not yet done. */
function currentStack(): string | undefined {
  const focused = focusedStack();
  if (focused) return focused;
  const t = now();
  for (const [id, meter] of meters) if (meter.state(t).open) return id;
  return worklist?.stacks.find((s) => s.status !== "labeled")?.stackId ?? worklist?.stacks[0]?.stackId;
}

/** j / k: the next / previous stack; from outside the list, the current stack. */
function moveFocus(step: number): void {
  const ids = [...cards.keys()];
  const focused = focusedStack();
  const target = focused === undefined ? currentStack() : ids[Math.min(ids.length - 1, Math.max(0, ids.indexOf(focused) + step))];
  const card = target ? cards.get(target) : undefined;
  card?.root.focus();
  card?.root.scrollIntoView({ block: "nearest" });
}

function onShortcut(event: KeyboardEvent): void {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof Element && target.closest("input, textarea, select, [contenteditable]")) return;
  const id = currentStack();
  const actions: Record<string, () => void> = {
    j: () => moveFocus(1),
    k: () => moveFocus(-1),
    s: () => id && startStack(id),
    p: () => id && pauseStack(id),
    f: () => id && void finishStack(id),
    "?": () => {
      const help = $("shortcuts") as HTMLDetailsElement;
      help.open = !help.open;
    },
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

// --- start-up -------------------------------------------------------------------------------------

async function loadConfig(): Promise<PageConfig> {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) return { ...DEFAULT_CONFIG, ...((await response.json()) as Partial<PageConfig>) };
  } catch {
    // The defaults serve a page whose config.json is missing.
  }
  return DEFAULT_CONFIG;
}

async function boot(): Promise<void> {
  config = await loadConfig();
  auth = resolveAuth(config.auth, location.href);
  for (const type of INPUT_EVENTS) {
    window.addEventListener(
      type,
      () => {
        const t = now();
        for (const meter of meters.values()) meter.input(t);
      },
      { capture: true, passive: true },
    );
  }
  document.addEventListener("visibilitychange", () => {
    const t = now();
    for (const meter of meters.values()) meter.setVisible(document.visibilityState === "visible", t);
    saveMeters();
    updateAll();
  });
  window.addEventListener("pagehide", saveMeters);
  window.addEventListener("online", () => void flushOutbox());
  document.addEventListener("keydown", onShortcut);
  $("sign-out").addEventListener("click", () => {
    saveMeters();
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    sessionStorage.removeItem(EXPIRES_KEY);
    sessionStorage.setItem(SIGNED_OUT_KEY, "1");
    location.assign(signOutUrl(auth)); // ends the sign-in service's session too, then comes back here
  });
  window.setInterval(() => {
    updateAll();
    saveMeters();
  }, 1000);
  const token = await takeToken();
  if (!token) return;
  scheduleRenewal();
  api = new WorklistApi(config.apiBase, token);
  await loadWorklist();
}

void boot();
