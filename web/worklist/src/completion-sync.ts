/**
 * Sending completions: each one is kept in the browser's outbox (outbox.ts) until the API acknowledges
 * or refuses it, and sent again automatically (every 15 s after a failure, when the browser is back online,
 * after sign-in) or when the annotator asks.
 */
import type { CompletionResponse } from "./api.js";
import { formatDuration } from "./format.js";
import { say } from "./notices.js";
import { type PendingCompletion, verdictOf } from "./outbox.js";
import { page, stackOf } from "./page-state.js";
import { showSignIn } from "./session.js";
import { renderSummary, updateCard } from "./stack-cards.js";

const RETRY_MS = 15_000;

/** What the annotator is told when the API refuses a completion, by its code. */
const REFUSALS: Record<string, string> = {
  NOT_ASSIGNED: "Not recorded: this stack is not assigned to you. Nothing was saved for it.",
  CONFLICT:
    "Not recorded: this stack was already completed with different values (another tab or device?). The stored completion is shown.",
  NOT_SELECTED: "Not recorded: this stack is no longer selected for labeling.",
  NOT_FOUND: "Not recorded: the server does not know this stack.",
  MASK_REFUSED: "Not recorded: the mask was refused. Fix it (or export it again on the stack's grid) and finish again.",
};
let retryTimer: number | undefined;

/** Sends one completion unless it is already in flight, and says what the API answered. */
export async function send(pending: PendingCompletion): Promise<void> {
  const { api, outbox } = page;
  if (!api || !outbox || page.sending.has(pending.stackId)) return;
  const id = pending.stackId;
  page.sending.add(id);
  say(id, `Sending the completion (${formatDuration(pending.activeSeconds)} active)…`);
  updateCard(id);
  const answer = await api.complete(pending);
  page.sending.delete(id);
  const body = answer.body as { code?: string; message?: string } | undefined;
  const verdict = verdictOf(answer.status, body);
  const stack = stackOf(id);
  if (verdict.kind === "acknowledged") {
    outbox.remove(id);
    page.cards.get(id)?.viewer.recorded();
    const response = answer.body as CompletionResponse;
    if (stack) {
      stack.status = "labeled";
      stack.completion = response.completion;
    }
    say(id, `Recorded: ${formatDuration(response.completion.activeSeconds)} of active time.`, "ok");
    renderSummary();
  } else if (verdict.kind === "refused") {
    outbox.remove(id);
    say(id, `${REFUSALS[verdict.code] ?? "Not recorded."} (${verdict.code}: ${verdict.message})`, "error");
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
  const answer = await page.api?.worklist();
  const fresh =
    answer?.status === 200 && answer.body && "stacks" in answer.body ? answer.body.stacks.find((s) => s.stackId === stackId) : undefined;
  const stack = stackOf(stackId);
  if (fresh && stack) Object.assign(stack, fresh);
  renderSummary();
}

/** Sends every unsent completion, one at a time. */
export async function flushOutbox(): Promise<void> {
  for (const pending of page.outbox?.list() ?? []) await send(pending);
}

function scheduleRetry(): void {
  if (retryTimer !== undefined) return;
  retryTimer = window.setTimeout(() => {
    retryTimer = undefined;
    void flushOutbox();
  }, RETRY_MS);
}
