/**
 * What the worklist page holds while it is open: its configuration, the API client of the signed-in
 * annotator, their worklist, unsent completions (outbox.ts), one active-time meter per stack
 * (active-time.ts, kept in localStorage across reloads) and the rendered cards.
 */
import type { ActiveTimeMeter } from "./active-time.js";
import { DEFAULT_CONFIG, type PageConfig, type WorklistApi, type WorklistResponse } from "./api.js";
import type { OAuthConfig } from "./auth.js";
import type { CompletionOutbox } from "./outbox.js";
import type { ViewerPanel } from "./viewer-panel.js";

export type Stack = WorklistResponse["stacks"][number];

export interface Card {
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

interface PageState {
  config: PageConfig;
  auth: OAuthConfig;
  /** Undefined while no one is signed in. */
  api: WorklistApi | undefined;
  worklist: WorklistResponse | undefined;
  outbox: CompletionOutbox | undefined;
  readonly meters: Map<string, ActiveTimeMeter>;
  /** Stacks whose mask upload or completion is in flight. */
  readonly sending: Set<string>;
  readonly cards: Map<string, Card>;
}

export const page: PageState = {
  config: DEFAULT_CONFIG,
  auth: DEFAULT_CONFIG.auth,
  api: undefined,
  worklist: undefined,
  outbox: undefined,
  meters: new Map(),
  sending: new Set(),
  cards: new Map(),
};

export const now = () => Date.now();

export function stackOf(stackId: string): Stack | undefined {
  return page.worklist?.stacks.find((s) => s.stackId === stackId);
}

function metersKey(): string {
  return `ich-al.worklist.meters.${page.worklist?.annotator ?? ""}`;
}

/** Every meter's active time, kept in localStorage under the annotator's key. */
export function saveMeters(): void {
  if (!page.worklist) return;
  const t = now();
  const saved: Record<string, number> = {};
  for (const [stackId, meter] of page.meters) saved[stackId] = meter.state(t).activeMs;
  localStorage.setItem(metersKey(), JSON.stringify(saved));
}

export function loadMeters(): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(metersKey()) ?? "{}");
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, number>) : {};
  } catch {
    return {};
  }
}
