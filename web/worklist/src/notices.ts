/** Messages to the annotator: the page's notice line, or a stack card's message. */
import { $ } from "./dom.js";
import { page } from "./page-state.js";

export function notice(text: string, tone: "info" | "error" = "info"): void {
  const el = $("notice");
  el.textContent = text;
  el.dataset.tone = tone;
  el.hidden = text.length === 0;
}

/** On the stack's card; on the notice line while the stack has no card. */
export function say(stackId: string, text: string, tone: "info" | "error" | "ok" = "info"): void {
  const card = page.cards.get(stackId);
  if (!card) {
    notice(text, tone === "error" ? "error" : "info");
    return;
  }
  card.message.textContent = text;
  card.message.dataset.tone = tone;
}
