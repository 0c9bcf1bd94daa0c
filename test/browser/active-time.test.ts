/**
 * The worklist page's pure parts in Node: the active-time meter (web/worklist/src/active-time.ts), the
 * outbox of unacknowledged completions and its send verdicts (outbox.ts), and display formatting.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ActiveTimeMeter } from "../../web/worklist/src/active-time.js";
import { formatClock, formatDeviation, formatDuration } from "../../web/worklist/src/format.js";
import { CompletionOutbox, type KeyValueStore, verdictOf } from "../../web/worklist/src/outbox.js";

const IDLE = 120_000;

describe("ActiveTimeMeter", () => {
  it("counts open + visible + active time only", () => {
    const m = new ActiveTimeMeter(0, IDLE);
    m.input(5_000); // closed: nothing counts
    m.start(10_000);
    m.input(40_000);
    expect(m.state(70_000).activeMs).toBe(60_000);
    m.setVisible(false, 70_000);
    m.input(100_000);
    expect(m.state(130_000).activeMs).toBe(60_000); // hidden
    m.setVisible(true, 130_000);
    expect(m.counting(130_000)).toBe(true); // input at 100 s is within the idle window
    m.input(130_000);
    // no input for 300 s: counts up to lastInput + idle only
    expect(m.idle(430_000)).toBe(true);
    expect(m.state(430_000).activeMs).toBe(60_000 + 120_000);
    m.pause(440_000);
    m.input(450_000);
    expect(m.state(500_000).activeMs).toBe(180_000);
    expect(m.seconds(500_000)).toBe(180);
  });

  it("returning to a visible tab is not input: an idle gap stays uncounted", () => {
    const m = new ActiveTimeMeter(0, IDLE);
    m.start(0);
    m.setVisible(false, 10_000);
    m.setVisible(true, 1_000_000);
    expect(m.state(1_100_000).activeMs).toBe(10_000);
  });

  it("property: counted time never exceeds open, visible wall time, and a constant clock adds nothing", () => {
    const step = fc.record({
      dt: fc.integer({ min: 0, max: 400_000 }),
      op: fc.constantFrom("start", "pause", "input", "hide", "show", "tick"),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const m = new ActiveTimeMeter(0, IDLE);
        let t = 0;
        let open = false;
        let visible = true;
        let ceiling = 0;
        for (const { dt, op } of steps) {
          if (open && visible) ceiling += dt;
          t += dt;
          const before = m.state(t).activeMs;
          if (op === "start") {
            m.start(t);
            open = true;
          } else if (op === "pause") {
            m.pause(t);
            open = false;
          } else if (op === "input") m.input(t);
          else if (op === "hide" || op === "show") {
            visible = op === "show";
            m.setVisible(visible, t);
          }
          expect(m.state(t).activeMs).toBe(before);
        }
        expect(m.state(t).activeMs).toBeLessThanOrEqual(ceiling);
      }),
    );
  });
});

class MapStore implements KeyValueStore {
  readonly map = new Map<string, string>();
  getItem(key: string) {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.map.set(key, value);
  }
  removeItem(key: string) {
    this.map.delete(key);
  }
}

describe("CompletionOutbox", () => {
  it("keeps the first body per stack until removed, per annotator, surviving a new instance", () => {
    const store = new MapStore();
    const a = new CompletionOutbox(store, "Amy@example.org");
    const first = { stackId: "s1", activeSeconds: 42, maskUploadKey: "label-uploads/s1/a.nii.gz", source: "external" } as const;
    a.add(first);
    expect(a.add({ stackId: "s1", activeSeconds: 99, noHemorrhage: true })).toEqual(first);
    expect(new CompletionOutbox(store, "amy@example.org").list()).toEqual([first]);
    expect(new CompletionOutbox(store, "zed@example.org").list()).toEqual([]);
    // An entry of the old form (a free-text label location) is not a completion any more: dropped.
    store.setItem("ich-al.worklist.outbox.bob@example.org", JSON.stringify([{ stackId: "s9", activeSeconds: 5, labelLocation: "x" }]));
    expect(new CompletionOutbox(store, "bob@example.org").list()).toEqual([]);
    store.removeItem("ich-al.worklist.outbox.bob@example.org");
    a.remove("s1");
    expect(a.list()).toEqual([]);
    expect(store.map.size).toBe(0);
  });

  it("ignores corrupt storage instead of failing the page", () => {
    const store = new MapStore();
    store.setItem("ich-al.worklist.outbox.amy@example.org", "{not json");
    expect(new CompletionOutbox(store, "amy@example.org").list()).toEqual([]);
  });

  it("verdicts: 200 acknowledged; 400/403/404/409/422 refused; no answer, 401 and 5xx retried", () => {
    expect(verdictOf(200, {})).toEqual({ kind: "acknowledged" });
    expect(verdictOf(403, { code: "NOT_ASSIGNED", message: "m" })).toEqual({ kind: "refused", code: "NOT_ASSIGNED", message: "m" });
    expect(verdictOf(409, { code: "CONFLICT", message: "m" }).kind).toBe("refused");
    expect(verdictOf(422, { code: "MASK_REFUSED", message: "m" })).toEqual({ kind: "refused", code: "MASK_REFUSED", message: "m" });
    expect(verdictOf(400, undefined)).toEqual({ kind: "refused", code: "HTTP_400", message: "HTTP 400" });
    expect(verdictOf(undefined, undefined).kind).toBe("retry");
    expect(verdictOf(401, { message: "Unauthorized" }).kind).toBe("retry");
    expect(verdictOf(502, { message: "Internal server error" }).kind).toBe("retry");
  });
});

describe("formatting", () => {
  it("durations, clocks and deviations", () => {
    expect(formatDuration(45)).toBe("45 s");
    expect(formatDuration(600)).toBe("10 min");
    expect(formatDuration(3900)).toBe("1 h 05 min");
    expect(formatClock(180_000)).toBe("03:00");
    expect(formatClock(3_725_000)).toBe("1:02:05");
    expect(formatDeviation(90, 100)).toBe("−10 %");
    expect(formatDeviation(130, 100)).toBe("+30 %");
    expect(formatDeviation(100, 100)).toBe("±0 %");
  });
});
