import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SelectionRoundSchema } from "../../lambdas/contracts/records.js";
import { DomainError } from "../../lambdas/domain/errors.js";
import {
  InvalidTimestampError,
  InvalidTimeZoneError,
  type IsoWeek,
  isoWeekOf,
  roundIdOf,
  shiftIsoWeek,
} from "../../lambdas/domain/iso-week.js";

// ---------------------------------------------------------------------------------------------------
// An oracle independent of the implementation: ISO weeks from the calendar date by the ordinal-day
// rule (week = ⌊(ordinal − weekday + 10) / 7⌋), and the UTC instant of a wall-clock time in a zone found
// by trying the zone's offsets around it and keeping those whose wall clock reads the wanted time.
// ---------------------------------------------------------------------------------------------------

interface LocalDate {
  readonly year: number;
  readonly month: number; // 1–12
  readonly day: number;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
/** Sakamoto's day of week, ISO numbering (Monday 1 … Sunday 7). */
function isoWeekday({ year, month, day }: LocalDate): number {
  const t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4] as const;
  const y = month < 3 ? year - 1 : year;
  const sunday0 = (y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + (t[month - 1] as number) + day) % 7;
  return sunday0 === 0 ? 7 : sunday0;
}
/** 53 when 1 January is a Thursday, or a Wednesday in a leap year. */
function weeksIn(year: number): number {
  const p = (y: number) => (y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400)) % 7;
  return p(year) === 4 || p(year - 1) === 3 ? 53 : 52;
}
function expectedIsoWeek(date: LocalDate): IsoWeek {
  const ordinal = (DAYS_BEFORE_MONTH[date.month - 1] as number) + date.day + (date.month > 2 && isLeap(date.year) ? 1 : 0);
  const week = Math.floor((ordinal - isoWeekday(date) + 10) / 7);
  if (week < 1) return { year: date.year - 1, week: weeksIn(date.year - 1) };
  if (week > weeksIn(date.year)) return { year: date.year + 1, week: 1 };
  return { year: date.year, week };
}
const nextWeek = ({ year, week }: IsoWeek): IsoWeek => (week < weeksIn(year) ? { year, week: week + 1 } : { year: year + 1, week: 1 });
const idOf = ({ year, week }: IsoWeek) => `select-${year}-W${String(week).padStart(2, "0")}`;

/** Calendar arithmetic (the proleptic Gregorian calendar, no time zone involved). */
function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

const wallClocks = new Map<string, Intl.DateTimeFormat>();
/** The wall clock in `zone` at `ms`, minute precision, as if it were a UTC instant. */
function wallClockAsUtc(ms: number, zone: string): number {
  let f = wallClocks.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
    });
    wallClocks.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(ms).map((part) => [part.type, Number(part.value)]));
  return Date.UTC(p.year as number, (p.month as number) - 1, p.day as number, p.hour as number, p.minute as number);
}

/**
 * When a schedule set to `date` `hour`:`minute` in `zone` fires, as EventBridge Scheduler does it: the
 * earliest instant whose wall clock reads that time (a repeated wall time, at the autumn change, fires
 * once, the first time), or undefined when the time does not exist (the spring-forward gap): Scheduler
 * then SKIPS that invocation (it does not shift it to after the gap).
 */
function firingInstant(zone: string, date: LocalDate, hour: number, minute: number): string | undefined {
  const wanted = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  // The offsets in force a day either side (a change in between gives two; none of these zones changes twice in two days).
  const offsets = new Set([-1, 1].map((d) => wallClockAsUtc(wanted + d * 86_400_000, zone) - (wanted + d * 86_400_000)));
  const hits = [...offsets].map((offset) => wanted - offset).filter((ms) => wallClockAsUtc(ms, zone) === wanted);
  return hits.length === 0 ? undefined : new Date(Math.min(...hits)).toISOString();
}

interface Firing {
  readonly date: LocalDate;
  readonly instant: string | undefined;
}
/** `count` weekly firings at `hour`:`minute` local in `zone`, the first on `start`. */
function weeklyFirings(zone: string, start: LocalDate, hour: number, minute: number, count: number): Firing[] {
  return Array.from({ length: count }, (_, k) => {
    const date = addDays(start, 7 * k);
    return { date, instant: firingInstant(zone, date, hour, minute) };
  });
}

/**
 * The property: each firing's round id is the ISO week of its local date, and successive weeks of the
 * schedule give successive ISO weeks (week 52/53 → week 1 of the next year), so no two firings share an
 * id and none is skipped — except a firing Scheduler itself skips (a time in the spring-forward gap).
 * Returns how many firings were skipped and how many year boundaries were crossed.
 */
function expectConsecutiveRounds(zone: string, firings: readonly Firing[]): { skipped: number; newYears: number } {
  let expected = expectedIsoWeek(firings[0]?.date as LocalDate);
  let skipped = 0;
  let newYears = 0;
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const [k, firing] of firings.entries()) {
    if (k > 0) {
      const next = nextWeek(expected);
      if (next.year !== expected.year) newYears++;
      expected = next;
    }
    // The oracle agrees with itself: the local date a week on is the next ISO week.
    if (idOf(expectedIsoWeek(firing.date)) !== idOf(expected)) problems.push(`oracle: ${JSON.stringify(firing.date)}`);
    if (firing.instant === undefined) {
      skipped++;
      continue;
    }
    const id = roundIdOf(firing.instant, zone);
    if (id !== idOf(expected)) problems.push(`${zone} ${firing.instant}: ${id}, expected ${idOf(expected)}`);
    if (seen.has(id)) problems.push(`${zone} ${firing.instant}: ${id} twice`);
    seen.add(id);
  }
  expect(problems).toEqual([]);
  return { skipped, newYears };
}

const date = (iso: string): LocalDate => {
  const [year, month, day] = iso.split("-").map(Number) as [number, number, number];
  return { year, month, day };
};

// ---------------------------------------------------------------------------------------------------

// Known ISO week dates (checked against the ISO 8601 calendar), including year boundaries, in UTC.
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
  // In UTC, the instant's UTC date decides: Sunday 23:30 in UTC−05:00 is Monday in UTC.
  ["2026-11-29T23:30:00-05:00", "2026-W49"],
  ["2026-11-30T00:30:00+02:00", "2026-W48"],
];

describe("isoWeekOf / roundIdOf in UTC", () => {
  it.each(TABLE)("%s is %s", (timestamp, week) => {
    const { year, week: w } = isoWeekOf(timestamp, "UTC");
    expect(`${year}-W${String(w).padStart(2, "0")}`).toBe(week);
    expect(roundIdOf(timestamp, "UTC")).toBe(`select-${week}`);
    expect(SelectionRoundSchema.shape.roundId.safeParse(roundIdOf(timestamp, "UTC")).success).toBe(true);
  });

  it("every day of 2015–2030 is in week 1..52 or 53 and weeks advance on Mondays only", () => {
    let previous = roundIdOf("2015-01-01T00:00:00Z", "UTC");
    for (let ms = Date.UTC(2015, 0, 2); ms < Date.UTC(2031, 0, 1); ms += 86_400_000) {
      const day = new Date(ms);
      const { week } = isoWeekOf(day, "UTC");
      expect(week).toBeGreaterThanOrEqual(1);
      expect(week).toBeLessThanOrEqual(53);
      const id = roundIdOf(day, "UTC");
      if (id !== previous) expect(day.getUTCDay()).toBe(1);
      previous = id;
    }
  });

  it("rejects invalid timestamps with a named error", () => {
    expect(() => isoWeekOf("not a date", "UTC")).toThrow(InvalidTimestampError);
  });
});

describe("the week is read in the schedule's time zone", () => {
  it("cron(30 1 ? * MON *) in Europe/Vienna: 2027-03-22 (CET) is W12 and 2027-03-29 (CEST) is W13, not W12 twice", () => {
    const before = "2027-03-22T00:30:00Z"; // Monday 01:30 CET
    const after = "2027-03-28T23:30:00Z"; // Monday 01:30 CEST — still Sunday in UTC
    expect(roundIdOf(before, "Europe/Vienna")).toBe("select-2027-W12");
    expect(roundIdOf(after, "Europe/Vienna")).toBe("select-2027-W13");
    // The bug this fixes: read in UTC, the second Monday is taken for a repeat of the first.
    expect(roundIdOf(after, "UTC")).toBe(roundIdOf(before, "UTC"));
    // The same instants written with their local offsets name the same weeks.
    expect(roundIdOf("2027-03-29T01:30:00+02:00", "Europe/Vienna")).toBe("select-2027-W13");
  });

  // Literal firing instants (checked by hand against the zones' 2027 rules: EU summer time from Sunday
  // 28 March to Sunday 31 October; US daylight time from Sunday 14 March to Sunday 7 November).
  const LITERAL: { zone: string; schedule: string; firings: [string, string][] }[] = [
    {
      zone: "Europe/Vienna",
      schedule: "Monday 01:30, spring",
      firings: [
        ["2027-03-15T00:30:00Z", "select-2027-W11"],
        ["2027-03-22T00:30:00Z", "select-2027-W12"],
        ["2027-03-28T23:30:00Z", "select-2027-W13"],
        ["2027-04-04T23:30:00Z", "select-2027-W14"],
      ],
    },
    {
      zone: "Europe/Vienna",
      schedule: "Monday 01:30, autumn (read in UTC, W43 would be skipped)",
      firings: [
        ["2027-10-17T23:30:00Z", "select-2027-W42"],
        ["2027-10-24T23:30:00Z", "select-2027-W43"],
        ["2027-11-01T00:30:00Z", "select-2027-W44"],
        ["2027-11-08T00:30:00Z", "select-2027-W45"],
      ],
    },
    {
      zone: "Europe/Vienna",
      schedule: "Monday 00:05 and Sunday 23:55 around both changes",
      firings: [
        ["2027-03-21T23:05:00Z", "select-2027-W12"], // Monday 00:05 CET
        ["2027-03-28T22:05:00Z", "select-2027-W13"], // Monday 00:05 CEST
        ["2027-03-21T22:55:00Z", "select-2027-W11"], // Sunday 23:55 CET
        ["2027-03-28T21:55:00Z", "select-2027-W12"], // Sunday 23:55 CEST, the day summer time began
        ["2027-10-31T22:55:00Z", "select-2027-W43"], // Sunday 23:55 CET, the day summer time ended
        ["2027-10-31T23:05:00Z", "select-2027-W44"], // Monday 00:05 CET, ten minutes later
      ],
    },
    {
      zone: "America/New_York",
      schedule: "Monday 01:30, Sunday 19:30 (read in UTC, W10 would repeat), Sunday 23:55",
      firings: [
        ["2027-03-08T06:30:00Z", "select-2027-W10"], // Monday 01:30 EST
        ["2027-03-15T05:30:00Z", "select-2027-W11"], // Monday 01:30 EDT
        ["2027-03-08T00:30:00Z", "select-2027-W09"], // Sunday 19:30 EST (= Monday in UTC)
        ["2027-03-14T23:30:00Z", "select-2027-W10"], // Sunday 19:30 EDT (= Sunday in UTC)
        ["2027-11-01T03:55:00Z", "select-2027-W43"], // Sunday 23:55 EDT (= Monday in UTC)
        ["2027-11-08T04:55:00Z", "select-2027-W44"], // Sunday 23:55 EST (= Monday in UTC)
        ["2027-11-08T05:05:00Z", "select-2027-W45"], // Monday 00:05 EST
      ],
    },
  ];
  it.each(LITERAL)("$zone, $schedule", ({ zone, firings }) => {
    for (const [instant, id] of firings) expect(roundIdOf(instant, zone), instant).toBe(id);
  });

  it("read in UTC (the old behaviour), those schedules repeat or skip a week across the change", () => {
    expect(roundIdOf("2027-03-08T00:30:00Z", "UTC")).toBe(roundIdOf("2027-03-14T23:30:00Z", "UTC")); // New York, Sunday 19:30
    expect(roundIdOf("2027-10-24T23:30:00Z", "UTC")).toBe("select-2027-W42"); // Vienna Monday 01:30 CEST: W43 never named
    expect(roundIdOf("2027-11-01T00:30:00Z", "UTC")).toBe("select-2027-W44");
  });

  // Both changes of 2027 for a zone east of UTC and one west of it, with schedules just after and just
  // before local midnight (and 01:30, 19:30): eight firings either side of each change.
  const SCHEDULES = [
    { name: "Monday 01:30", weekday: 1, hour: 1, minute: 30 },
    { name: "Monday 00:05", weekday: 1, hour: 0, minute: 5 },
    { name: "Sunday 23:55", weekday: 7, hour: 23, minute: 55 },
    { name: "Sunday 19:30", weekday: 7, hour: 19, minute: 30 },
  ];
  const CHANGES = [
    { zone: "Europe/Vienna", spring: "2027-03-28", autumn: "2027-10-31" },
    { zone: "America/New_York", spring: "2027-03-14", autumn: "2027-11-07" },
    { zone: "America/Los_Angeles", spring: "2026-03-08", autumn: "2026-11-01" },
  ];
  const DST_CASES = CHANGES.flatMap((c) =>
    SCHEDULES.flatMap((s) => [
      { ...c, ...s, change: "spring forward", day: c.spring },
      { ...c, ...s, change: "fall back", day: c.autumn },
    ]),
  );
  it.each(DST_CASES)("$zone, $change on $day, $name: consecutive weekly firings get consecutive, distinct ids", (c) => {
    // The change is on a Sunday; start on the schedule's weekday eight weeks before.
    const start = addDays(date(c.day), -56 + (c.weekday - 7));
    expect(isoWeekday(start)).toBe(c.weekday);
    const firings = weeklyFirings(c.zone, start, c.hour, c.minute, 17);
    // None of these wall times falls in a gap (the changes are at 02:00 local).
    expect(firings.every((f) => f.instant !== undefined)).toBe(true);
    // The UTC offset really changes within the span.
    const offsets = new Set(firings.map((f) => wallClockAsUtc(Date.parse(f.instant as string), c.zone) - Date.parse(f.instant as string)));
    expect(offsets.size).toBe(2);
    expect(expectConsecutiveRounds(c.zone, firings)).toEqual({ skipped: 0, newYears: 0 });
  });

  it("far east and far west of UTC, around local midnight (Kiritimati +14, Auckland +12/+13, Pago Pago −11)", () => {
    // Monday 00:05 in Kiritimati is Sunday 10:05 UTC; at New Year it is already 2027-W01 there.
    expect(roundIdOf("2027-01-03T10:05:00Z", "Pacific/Kiritimati")).toBe("select-2027-W01");
    expect(roundIdOf("2027-01-03T10:05:00Z", "UTC")).toBe("select-2026-W53");
    expect(roundIdOf("2027-01-03T09:55:00Z", "Pacific/Kiritimati")).toBe("select-2026-W53"); // Sunday 23:55 there
    // Sunday 23:55 in Pago Pago is Monday 10:55 UTC; still 2026-W53 there.
    expect(roundIdOf("2027-01-04T10:55:00Z", "Pacific/Pago_Pago")).toBe("select-2026-W53");
    expect(roundIdOf("2027-01-04T10:55:00Z", "UTC")).toBe("select-2027-W01");
    expect(roundIdOf("2027-01-04T11:05:00Z", "Pacific/Pago_Pago")).toBe("select-2027-W01"); // Monday 00:05 there
    // Auckland, Monday 00:05 NZDT (+13) and, after summer time ends on Sunday 2027-04-04, NZST (+12).
    expect(roundIdOf("2027-03-28T11:05:00Z", "Pacific/Auckland")).toBe("select-2027-W13");
    expect(roundIdOf("2027-04-04T12:05:00Z", "Pacific/Auckland")).toBe("select-2027-W14");
    for (const zone of ["Pacific/Kiritimati", "Pacific/Auckland", "Pacific/Pago_Pago"]) {
      for (const [weekday, hour, minute] of [
        [1, 0, 5],
        [7, 23, 55],
      ] as const) {
        // 60 weeks from the first such weekday of 2026: through Auckland's changes and New Year 2026/27.
        const start = addDays(date("2026-01-04"), (weekday - 7 + 7) % 7);
        expect(isoWeekday(start)).toBe(weekday);
        expect(expectConsecutiveRounds(zone, weeklyFirings(zone, start, hour, minute, 60))).toMatchObject({ skipped: 0, newYears: 1 });
      }
    }
  });

  // Zones with something to trip over: DST east and west, south (DST across New Year), changes at
  // midnight (Santiago, Havana, Beirut: a Sunday/Monday 00:xx time may not exist), half-hour DST (Lord
  // Howe), two-hour DST (Troll), Ramadan changes (Casablanca), negative DST (Dublin), :45 offsets,
  // ±12 to +14 and zones without DST.
  const ZONES = [
    "UTC",
    "Europe/Vienna",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Africa/Casablanca",
    "Asia/Beirut",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
    "Pacific/Tongatapu",
    "Pacific/Pago_Pago",
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/New_York",
    "America/Havana",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Antarctica/Troll",
  ];

  it("property: for any zone and weekly schedule (weekday, hour, minute local) in 2020–2035, 60 consecutive firings give consecutive ISO weeks, none twice", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: 1, max: 7 }), // ISO weekday
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 14 * 365 }), // days after 2020-01-01
        (zone, weekday, hour, minute, offset) => {
          const near = addDays({ year: 2020, month: 1, day: 1 }, offset);
          const start = addDays(near, (weekday - isoWeekday(near) + 7) % 7);
          const firings = weeklyFirings(zone, start, hour, minute, 60);
          const { skipped, newYears } = expectConsecutiveRounds(zone, firings);
          // 60 weeks always span one New Year (52/53 → 1), sometimes two.
          expect(newYears).toBeGreaterThanOrEqual(1);
          // Scheduler skips at most the one spring-forward firing a year (two in a 60-week span).
          expect(skipped).toBeLessThanOrEqual(2);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a schedule inside the spring-forward gap is skipped by Scheduler; the next week still gets the next id", () => {
    // Sunday 02:30 in Vienna does not exist on 2027-03-28.
    const firings = weeklyFirings("Europe/Vienna", date("2027-03-14"), 2, 30, 4);
    expect(firings.map((f) => f.instant)).toEqual([
      "2027-03-14T01:30:00.000Z",
      "2027-03-21T01:30:00.000Z",
      undefined,
      "2027-04-04T00:30:00.000Z",
    ]);
    expect(expectConsecutiveRounds("Europe/Vienna", firings)).toEqual({ skipped: 1, newYears: 0 });
    // Sunday 00:30 in Santiago does not exist on 2026-09-06 (clocks go from 00:00 to 01:00 at midnight).
    const santiago = weeklyFirings("America/Santiago", date("2026-08-30"), 0, 30, 3);
    expect(santiago[1]?.instant).toBeUndefined();
    expect(expectConsecutiveRounds("America/Santiago", santiago)).toEqual({ skipped: 1, newYears: 0 });
  });

  it("every zone the runtime knows: Monday 00:05 and Sunday 23:55 weekly from mid-2026 to mid-2027 give consecutive ids", () => {
    for (const zone of Intl.supportedValuesOf("timeZone")) {
      for (const [start, hour, minute] of [
        ["2026-06-29", 0, 5],
        ["2026-07-05", 23, 55],
      ] as const) {
        // 56 weeks: both of a zone's changes (north or south) and 2026-W53 → 2027-W01.
        const { skipped, newYears } = expectConsecutiveRounds(zone, weeklyFirings(zone, date(start), hour, minute, 56));
        expect(newYears).toBe(1);
        expect(skipped, zone).toBeLessThanOrEqual(1);
      }
    }
  });

  it("a DST-free zone and UTC agree when the offset keeps the same calendar day", () => {
    expect(roundIdOf("2026-11-26T12:00:00Z", "Asia/Tokyo")).toBe(roundIdOf("2026-11-26T12:00:00Z", "UTC"));
    expect(roundIdOf(new Date("2026-11-29T15:30:00Z"), "Asia/Tokyo")).toBe("select-2026-W49"); // Monday 00:30 in Tokyo
  });
});

describe("shiftIsoWeek", () => {
  it.each([
    [{ year: 2026, week: 48 }, 1, { year: 2026, week: 49 }],
    [{ year: 2026, week: 53 }, 1, { year: 2027, week: 1 }],
    [{ year: 2027, week: 1 }, -1, { year: 2026, week: 53 }],
    [{ year: 2025, week: 1 }, -1, { year: 2024, week: 52 }],
    [{ year: 2027, week: 12 }, -11, { year: 2027, week: 1 }],
    [{ year: 2027, week: 12 }, -12, { year: 2026, week: 53 }],
    [{ year: 2026, week: 10 }, 0, { year: 2026, week: 10 }],
  ])("%j shifted by %d is %j", (week, by, expected) => {
    expect(shiftIsoWeek(week, by)).toEqual(expected);
  });

  it("agrees with stepping the calendar a week at a time (2015–2035)", () => {
    let week = expectedIsoWeek(date("2015-01-05"));
    for (let k = 1; k < 21 * 53; k++) {
      const next = nextWeek(week);
      expect(shiftIsoWeek(week, 1)).toEqual(next);
      expect(shiftIsoWeek(next, -1)).toEqual(week);
      week = next;
    }
  });
});

describe("bad time zones", () => {
  it.each(["Mars/Olympus_Mons", "Europe/Viena", "CEST+2", "", " "])("%j is an InvalidTimeZoneError naming the zone", (zone) => {
    expect(() => roundIdOf("2027-03-22T00:30:00Z", zone)).toThrow(InvalidTimeZoneError);
    expect(() => isoWeekOf("2027-03-22T00:30:00Z", zone)).toThrow(`not an IANA time zone: ${JSON.stringify(zone)}`);
    try {
      isoWeekOf("2027-03-22T00:30:00Z", zone);
    } catch (error) {
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ name: "InvalidTimeZoneError", timeZone: zone });
    }
  });

  it("a missing zone (from untyped callers) is refused, never read as the runtime's own zone", () => {
    expect(() => roundIdOf("2027-03-22T00:30:00Z", undefined as unknown as string)).toThrow(InvalidTimeZoneError);
  });
});
