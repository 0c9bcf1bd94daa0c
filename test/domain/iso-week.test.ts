import { describe, expect, it } from "vitest";
import { SelectionRoundSchema } from "../../lambdas/contracts/records.js";
import { InvalidTimestampError, isoWeekOf, roundIdOf } from "../../lambdas/domain/iso-week.js";

// Known ISO week dates (checked against the ISO 8601 calendar), including year boundaries.
const TABLE: [string, string][] = [
  ["2026-11-26T12:00:00Z", "2026-W48"],
  ["2026-01-01T00:00:00Z", "2026-W01"], // Thursday
  ["2025-12-29T00:00:00Z", "2026-W01"], // Monday of 2026-W01
  ["2025-12-28T23:59:59Z", "2025-W52"], // Sunday
  ["2026-12-28T00:00:00Z", "2026-W53"],
  ["2026-12-31T00:00:00Z", "2026-W53"],
  ["2027-01-01T00:00:00Z", "2026-W53"], // Friday
  ["2027-01-03T23:59:59Z", "2026-W53"], // Sunday
  ["2027-01-04T00:00:00Z", "2027-W01"], // Monday
  ["2024-12-30T00:00:00Z", "2025-W01"],
  ["2021-01-03T00:00:00Z", "2020-W53"],
  ["2021-01-04T00:00:00Z", "2021-W01"],
  ["2020-12-31T00:00:00Z", "2020-W53"],
  ["2016-01-01T00:00:00Z", "2015-W53"],
  ["2008-12-29T00:00:00Z", "2009-W01"],
  ["2010-01-03T00:00:00Z", "2009-W53"],
  ["2023-01-01T00:00:00Z", "2022-W52"],
  ["2024-02-29T00:00:00Z", "2024-W09"],
  // UTC decides: Sunday 23:30 in UTC−05:00 is Monday in UTC.
  ["2026-11-29T23:30:00-05:00", "2026-W49"],
  ["2026-11-30T00:30:00+02:00", "2026-W48"],
];

describe("isoWeekOf / roundIdOf", () => {
  it.each(TABLE)("%s is %s", (timestamp, week) => {
    const { year, week: w } = isoWeekOf(timestamp);
    expect(`${year}-W${String(w).padStart(2, "0")}`).toBe(week);
    expect(roundIdOf(timestamp)).toBe(`select-${week}`);
    expect(SelectionRoundSchema.shape.roundId.safeParse(roundIdOf(timestamp)).success).toBe(true);
  });

  it("every day of 2015–2030 is in week 1..52 or 53 and weeks advance on Mondays only", () => {
    let previous = roundIdOf("2015-01-01T00:00:00Z");
    for (let ms = Date.UTC(2015, 0, 2); ms < Date.UTC(2031, 0, 1); ms += 86_400_000) {
      const date = new Date(ms);
      const { week } = isoWeekOf(date);
      expect(week).toBeGreaterThanOrEqual(1);
      expect(week).toBeLessThanOrEqual(53);
      const id = roundIdOf(date);
      if (id !== previous) expect(date.getUTCDay()).toBe(1);
      previous = id;
    }
  });

  it("rejects invalid timestamps with a named error", () => {
    expect(() => isoWeekOf("not a date")).toThrow(InvalidTimestampError);
  });
});
