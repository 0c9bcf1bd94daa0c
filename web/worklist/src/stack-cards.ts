/**
 * The worklist as the annotator sees it: the round's summary (done, actual vs predicted, budget) and one
 * card per stack with its facts, controls, status and active-time clock, kept up to date from the page state.
 */
import { $, h } from "./dom.js";
import { formatClock, formatDeviation, formatDuration } from "./format.js";
import { loadOverlays } from "./overlays.js";
import { now, page, type Stack, stackOf } from "./page-state.js";
import { ViewerPanel } from "./viewer-panel.js";

/** What a card's buttons do. */
export interface CardActions {
  start(stackId: string): void;
  pause(stackId: string): void;
  finish(stackId: string): Promise<void>;
  retry(stackId: string): Promise<void>;
}

/** The e-mail links each stack as `…#<stackId>`: that card gets the focus (so the shortcuts act on it). */
export function focusLinkedStack(): void {
  const id = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";
  const card = page.cards.get(id);
  if (!card) return;
  card.root.scrollIntoView({ block: "center" });
  card.root.focus();
}

/** The summary and one card per stack, replacing what #main showed; then the overlays. */
export function render(actions: CardActions): void {
  const worklist = page.worklist;
  if (!worklist) return;
  page.cards.clear();
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
  for (const stack of worklist.stacks) list.append(h("li", {}, renderCard(stack, actions)));
  main.replaceChildren(h("section", { class: "summary panel", "aria-labelledby": "summary-title", id: "summary" }), list);
  renderSummary();
  for (const stack of worklist.stacks) updateCard(stack.stackId);
  void loadOverlays(worklist.stacks.map((s) => s.stackId));
}

export function renderSummary(): void {
  const worklist = page.worklist;
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

function renderCard(stack: Stack, actions: CardActions): HTMLElement {
  const id = stack.stackId;
  const safe = id.replace(/[^A-Za-z0-9_-]/g, "_");
  const title = h("h2", { id: `title-${safe}` }, id);
  const badge = h("span", { class: "badge", "data-role": "status" });
  const clock = h("span", { class: "clock", "aria-label": "Active time" }, "00:00");
  const { start, pause, finish, retry, mask, negative, controls } = cardControls(safe);
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const outcome = h("p", { class: "outcome", hidden: true });
  const thumbs = h(
    "div",
    { class: "thumbs", role: "group", "aria-label": `Key frames of ${id}` },
    h("p", { class: "muted" }, "Loading overlays…"),
  );
  const viewer = new ViewerPanel(id, page.worklist?.annotator ?? "", () => page.api, h);
  const root = h(
    "article",
    { class: "stack", id: `stack-${safe}`, "data-stack-id": id, tabindex: "-1", "aria-labelledby": `title-${safe}` },
    h(
      "div",
      { class: "stack-info" },
      h("header", { class: "stack-head" }, title, badge),
      stackFacts(stack, clock),
      controls,
      outcome,
      message,
    ),
    thumbs,
    viewer.root,
  );
  start.addEventListener("click", () => actions.start(id));
  pause.addEventListener("click", () => actions.pause(id));
  finish.addEventListener("click", () => void actions.finish(id));
  retry.addEventListener("click", () => void actions.retry(id));
  page.cards.set(id, { root, badge, clock, start, pause, finish, retry, mask, negative, controls, message, outcome, thumbs, viewer });
  return root;
}

/** The card's mask file, "no hemorrhage" box and buttons (their shortcuts in aria-keyshortcuts). */
function cardControls(safe: string) {
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
  return { start, pause, finish, retry, mask, negative, controls };
}

/** Predicted time, stack score, uncertainty V and the active-time clock. */
function stackFacts(stack: Stack, clock: HTMLElement): HTMLElement {
  return h(
    "dl",
    { class: "facts compact" },
    h("div", { class: "fact" }, h("dt", {}, "Predicted"), h("dd", {}, formatDuration(stack.predictedSeconds))),
    h("div", { class: "fact" }, h("dt", {}, "Stack score"), h("dd", {}, stack.stackScore.toFixed(2))),
    h("div", { class: "fact" }, h("dt", {}, "Uncertainty V"), h("dd", {}, stack.stackUncertainty.toFixed(4))),
    h("div", { class: "fact" }, h("dt", {}, "Active"), h("dd", {}, clock)),
  );
}

function statusOf(stack: Stack, t: number): { text: string; tone: string } {
  const meter = page.meters.get(stack.stackId);
  if (stack.status === "labeled") return { text: "Done", tone: "done" };
  if (page.sending.has(stack.stackId)) return { text: "Sending…", tone: "busy" };
  if (page.outbox?.get(stack.stackId)) return { text: "Not sent yet", tone: "warn" };
  if (meter?.idle(t)) return { text: "Idle — not counting", tone: "warn" };
  if (meter?.counting(t)) return { text: "In progress", tone: "active" };
  if (meter?.state(t).open) return { text: "Open — tab hidden", tone: "warn" };
  if ((meter?.state(t).activeMs ?? 0) > 0) return { text: "Paused", tone: "paused" };
  return { text: "To do", tone: "todo" };
}

export function updateCard(stackId: string): void {
  const stack = stackOf(stackId);
  const card = page.cards.get(stackId);
  if (!stack || !card) return;
  const t = now();
  const meter = page.meters.get(stackId);
  const state = meter?.state(t) ?? { activeMs: 0, open: false };
  const status = statusOf(stack, t);
  card.badge.textContent = status.text;
  card.badge.dataset.tone = status.tone;
  card.root.dataset.state = status.tone;
  const done = stack.status === "labeled";
  const held = page.sending.has(stackId) || page.outbox?.get(stackId) !== undefined;
  card.clock.textContent = formatClock(done && stack.completion ? stack.completion.activeSeconds * 1000 : state.activeMs);
  card.controls.hidden = done;
  card.start.textContent = state.activeMs > 0 ? "Resume" : "Start";
  card.start.disabled = done || held || state.open;
  card.pause.disabled = done || held || !state.open;
  card.finish.disabled = done || held;
  card.mask.disabled = done || held;
  card.negative.disabled = done || held;
  card.retry.hidden = done || !held || page.sending.has(stackId);
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

export function updateAll(): void {
  for (const id of page.cards.keys()) updateCard(id);
}
