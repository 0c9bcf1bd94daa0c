/** What a stack card's buttons (and their shortcuts) do: start, pause, finish with a mask or "no hemorrhage", retry. */

import { send } from "./completion-sync.js";
import { say } from "./notices.js";
import { now, page, saveMeters, stackOf } from "./page-state.js";
import { showSignIn } from "./session.js";
import { type CardActions, updateAll, updateCard } from "./stack-cards.js";

export function startStack(stackId: string): void {
  const stack = stackOf(stackId);
  if (!stack || stack.status === "labeled" || page.sending.has(stackId) || page.outbox?.get(stackId)) return;
  const t = now();
  for (const [id, meter] of page.meters) {
    if (id !== stackId && meter.state(t).open) {
      meter.pause(t);
      say(id, "Paused: another stack was started.");
    }
  }
  page.meters.get(stackId)?.start(t);
  say(stackId, "");
  saveMeters();
  updateAll();
}

export function pauseStack(stackId: string): void {
  page.meters.get(stackId)?.pause(now());
  saveMeters();
  updateCard(stackId);
}

export async function finishStack(stackId: string): Promise<void> {
  const stack = stackOf(stackId);
  const card = page.cards.get(stackId);
  const outbox = page.outbox;
  if (!stack || !card || !outbox) return;
  if (stack.status === "labeled") return say(stackId, "Already finished: the completion is recorded.", "ok");
  if (page.sending.has(stackId)) return say(stackId, "Already sending this completion; wait for the answer.");
  let pending = outbox.get(stackId);
  if (!pending) {
    const meter = page.meters.get(stackId);
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
  const api = page.api;
  if (!api) return undefined;
  page.sending.add(stackId);
  say(stackId, `Uploading the mask (${Math.ceil(file.size / 1024)} KiB)…`);
  updateCard(stackId);
  const outcome = await api.uploadMask(stackId, file, gzip);
  page.sending.delete(stackId);
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
  const pending = page.outbox?.get(stackId);
  if (pending && !page.sending.has(stackId)) await send(pending);
}

/** The buttons of every card. */
export const STACK_ACTIONS: CardActions = { start: startStack, pause: pauseStack, finish: finishStack, retry: retryStack };
