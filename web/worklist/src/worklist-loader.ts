/** Loading the signed-in annotator's worklist: their outbox and meters, the cards, then unsent completions. */
import { ActiveTimeMeter } from "./active-time.js";
import { flushOutbox } from "./completion-sync.js";
import { $ } from "./dom.js";
import { notice } from "./notices.js";
import { CompletionOutbox } from "./outbox.js";
import { loadMeters, now, page } from "./page-state.js";
import { showSignIn } from "./session.js";
import { STACK_ACTIONS } from "./stack-actions.js";
import { focusLinkedStack, render } from "./stack-cards.js";

export async function loadWorklist(): Promise<void> {
  if (!page.api) return;
  const answer = await page.api.worklist();
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
  const worklist = answer.body;
  page.worklist = worklist;
  page.outbox = new CompletionOutbox(localStorage, worklist.annotator);
  $("who").textContent = worklist.annotator;
  $("who-line").hidden = false;
  $("sign-out").hidden = false;
  const saved = loadMeters();
  const visible = document.visibilityState === "visible";
  for (const stack of worklist.stacks) {
    if (!page.meters.has(stack.stackId))
      page.meters.set(
        stack.stackId,
        new ActiveTimeMeter(now(), page.config.idleSeconds * 1000, { activeMs: saved[stack.stackId] ?? 0, visible }),
      );
  }
  render(STACK_ACTIONS);
  focusLinkedStack();
  void flushOutbox();
}
