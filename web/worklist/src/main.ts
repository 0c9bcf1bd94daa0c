/**
 * The annotator worklist page: the signed-in annotator's stacks of the latest round, their key-frame
 * overlays, per-stack start / pause / finish with active-time measurement (active-time.ts), and
 * completions that survive network failures (completion-sync.ts). No framework, no external requests.
 * This module wires the page's events to the modules that do the work; the state is in page-state.ts.
 */
import { DEFAULT_CONFIG, type PageConfig, WorklistApi } from "./api.js";
import { resolveAuth } from "./auth.js";
import { flushOutbox } from "./completion-sync.js";
import { $ } from "./dom.js";
import { now, page, saveMeters } from "./page-state.js";
import { scheduleRenewal, signOut, takeToken } from "./session.js";
import { onShortcut } from "./shortcuts.js";
import { updateAll } from "./stack-cards.js";
import { loadWorklist } from "./worklist-loader.js";

const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"] as const;

async function loadConfig(): Promise<PageConfig> {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) return { ...DEFAULT_CONFIG, ...((await response.json()) as Partial<PageConfig>) };
  } catch {
    // The defaults serve a page whose config.json is missing.
  }
  return DEFAULT_CONFIG;
}

/** Input and visibility feed the active-time meters; the clocks tick and the meters are saved every second. */
function watchActivity(): void {
  for (const type of INPUT_EVENTS) {
    window.addEventListener(
      type,
      () => {
        const t = now();
        for (const meter of page.meters.values()) meter.input(t);
      },
      { capture: true, passive: true },
    );
  }
  document.addEventListener("visibilitychange", () => {
    const t = now();
    for (const meter of page.meters.values()) meter.setVisible(document.visibilityState === "visible", t);
    saveMeters();
    updateAll();
  });
  window.addEventListener("pagehide", saveMeters);
  window.setInterval(() => {
    updateAll();
    saveMeters();
  }, 1000);
}

async function boot(): Promise<void> {
  page.config = await loadConfig();
  page.auth = resolveAuth(page.config.auth, location.href);
  watchActivity();
  window.addEventListener("online", () => void flushOutbox());
  document.addEventListener("keydown", onShortcut);
  $("sign-out").addEventListener("click", () => {
    saveMeters();
    signOut();
  });
  const token = await takeToken();
  if (!token) return;
  scheduleRenewal();
  page.api = new WorklistApi(page.config.apiBase, token);
  await loadWorklist();
}

void boot();
