/**
 * Keyboard shortcuts (ignored while typing in a text field or with a modifier held): j / k next / previous
 * stack · s start or resume · p pause · f finish · ? shortcuts. They act on the stack that holds the focus,
 * else the open one, else the first one not yet done.
 */
import { $ } from "./dom.js";
import { now, page } from "./page-state.js";
import { finishStack, pauseStack, startStack } from "./stack-actions.js";

function focusedStack(): string | undefined {
  return (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("article.stack")?.dataset.stackId;
}

/** The stack a shortcut acts on: the focused one, else the open one, else the first not yet done. */
function currentStack(): string | undefined {
  const focused = focusedStack();
  if (focused) return focused;
  const t = now();
  for (const [id, meter] of page.meters) if (meter.state(t).open) return id;
  return page.worklist?.stacks.find((s) => s.status !== "labeled")?.stackId ?? page.worklist?.stacks[0]?.stackId;
}

/** j / k: the next / previous stack; from outside the list, the current stack. */
function moveFocus(step: number): void {
  const ids = [...page.cards.keys()];
  const focused = focusedStack();
  const target = focused === undefined ? currentStack() : ids[Math.min(ids.length - 1, Math.max(0, ids.indexOf(focused) + step))];
  const card = target ? page.cards.get(target) : undefined;
  card?.root.focus();
  card?.root.scrollIntoView({ block: "nearest" });
}

export function onShortcut(event: KeyboardEvent): void {
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
