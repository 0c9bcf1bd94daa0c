/** Display helpers (pure). */

/** `1 h 05 min`, `12 min`, `45 s` — durations an annotator reads at a glance. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Running clock `mm:ss` (or `h:mm:ss`). */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/** Actual vs predicted as a signed percentage, e.g. `−12 %` (faster) or `+30 %`. */
export function formatDeviation(actualSeconds: number, predictedSeconds: number): string {
  if (!(predictedSeconds > 0)) return "";
  const pct = Math.round((actualSeconds / predictedSeconds - 1) * 100);
  return pct === 0 ? "±0 %" : `${pct > 0 ? "+" : "−"}${Math.abs(pct)} %`;
}
