/**
 * Active labeling time of one stack. Time counts only while all three hold:
 *
 *   open     the annotator started (or resumed) the stack and has not paused or finished it;
 *   visible  the page is visible (`document.visibilityState === "visible"`);
 *   active   the annotator gave input (pointer, key, wheel, touch, scroll) within the last `idleMs`.
 *
 * The meter is event-driven and exact: every event first advances the count to its own time, so a
 * count never depends on how often a display timer ticks. An idle stretch counts only up to
 * `lastInput + idleMs`; returning to a visible tab is not input by itself. Starting counts as input.
 * Pure: the caller passes every `now` (ms since the epoch, from the page's clock).
 */

export interface MeterState {
  /** Milliseconds counted so far. */
  readonly activeMs: number;
  readonly open: boolean;
}

export class ActiveTimeMeter {
  private activeMs: number;
  private open = false;
  private visible: boolean;
  private lastInputAt = Number.NEGATIVE_INFINITY;
  private since: number;

  constructor(
    now: number,
    readonly idleMs: number,
    initial: { activeMs?: number; visible?: boolean } = {},
  ) {
    if (!(idleMs > 0)) throw new RangeError("idleMs must be positive");
    this.activeMs = Math.max(0, initial.activeMs ?? 0);
    this.visible = initial.visible ?? true;
    this.since = now;
  }

  /** Counts the time from the last event up to `now`. */
  advance(now: number): void {
    if (now <= this.since) return;
    if (this.open && this.visible) {
      const end = Math.min(now, this.lastInputAt + this.idleMs);
      if (end > this.since) this.activeMs += end - this.since;
    }
    this.since = now;
  }

  start(now: number): void {
    this.advance(now);
    this.open = true;
    this.lastInputAt = now;
  }

  pause(now: number): void {
    this.advance(now);
    this.open = false;
  }

  input(now: number): void {
    this.advance(now);
    this.lastInputAt = now;
  }

  setVisible(visible: boolean, now: number): void {
    this.advance(now);
    this.visible = visible;
  }

  /** True when time is being counted at `now` (open, visible, and not idle). */
  counting(now: number): boolean {
    return this.open && this.visible && now < this.lastInputAt + this.idleMs;
  }

  /** Open and visible but without input for `idleMs`: the page says so. */
  idle(now: number): boolean {
    return this.open && this.visible && now >= this.lastInputAt + this.idleMs;
  }

  state(now: number): MeterState {
    this.advance(now);
    return { activeMs: this.activeMs, open: this.open };
  }

  /** Whole seconds to report (`activeSeconds` of the completion), at least 1 once anything counted. */
  seconds(now: number): number {
    const ms = this.state(now).activeMs;
    return ms <= 0 ? 0 : Math.max(1, Math.round(ms / 1000));
  }
}
