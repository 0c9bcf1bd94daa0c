/**
 * ISO 8601 week dates of the calendar date in an IANA time zone: weeks start on Monday and week 1 is
 * the week holding the year's first Thursday, so the days around New Year may belong to the
 * neighbouring week-year (2027-01-01 is 2026-W53; 2024-12-30 is 2025-W01). The weekly selection round
 * is named after the ISO week of its scheduled time in the schedule's own time zone — the zone
 * EventBridge Scheduler reads the cron in — so that every weekly firing names a different week even
 * when the zone's UTC offset changes (in UTC, Monday 01:30 Vienna is Monday in winter, Sunday in summer).
 */
import { DomainError } from "./errors.js";

/** The timestamp is not a valid ISO 8601 date-time. */
export class InvalidTimestampError extends DomainError {}

/** The time zone is not one the runtime knows as an IANA zone (e.g. "Europe/Vienna", "UTC"). */
export class InvalidTimeZoneError extends DomainError {
  constructor(
    readonly timeZone: string,
    options?: { cause?: unknown },
  ) {
    super(`not an IANA time zone: ${JSON.stringify(timeZone)}`, options);
  }
}

export interface IsoWeek {
  readonly year: number;
  readonly week: number;
}

const DAY_MS = 86_400_000;

/** Midnight UTC of a proleptic Gregorian date (`month0` 0–11; day may overflow), valid for years < 100 too. */
const utcDate = (year: number, month0: number, day: number): number => new Date(0).setUTCFullYear(year, month0, day);

/** One formatter per zone (constructing one is the expensive part); only valid zones are kept. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function dateFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter) return formatter;
  // An empty or missing zone would silently mean the runtime's own zone.
  if (typeof timeZone !== "string" || timeZone.trim() === "") throw new InvalidTimeZoneError(String(timeZone));
  try {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      calendar: "gregory",
      numberingSystem: "latn",
      year: "numeric",
      month: "numeric",
      day: "numeric",
    });
  } catch (error) {
    throw new InvalidTimeZoneError(timeZone, { cause: error });
  }
  formatters.set(timeZone, formatter);
  return formatter;
}

/** The calendar date (as midnight UTC of that date) that `ms` falls on in `timeZone`. */
function localDate(ms: number, timeZone: string): number {
  const parts = dateFormatter(timeZone).formatToParts(ms);
  const part = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  return utcDate(part("year"), part("month") - 1, part("day"));
}

/** The ISO week of the calendar date held as midnight UTC in `date`. */
function isoWeekOfDate(date: number): IsoWeek {
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  // The Thursday of this week decides the week-year.
  const thursday = date + (3 - weekday) * DAY_MS;
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - utcDate(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { year, week };
}

/** The ISO week that holds `timestamp`'s calendar date in the IANA zone `timeZone` (InvalidTimeZoneError otherwise). */
export function isoWeekOf(timestamp: string | Date, timeZone: string): IsoWeek {
  const ms = typeof timestamp === "string" ? Date.parse(timestamp) : timestamp.getTime();
  if (!Number.isFinite(ms)) throw new InvalidTimestampError(`not a valid timestamp: ${JSON.stringify(String(timestamp))}`);
  return isoWeekOfDate(localDate(ms, timeZone));
}

/** The ISO week `weeks` weeks after `week` (before it when negative), across week-years. */
export function shiftIsoWeek({ year, week }: IsoWeek, weeks: number): IsoWeek {
  const january4 = utcDate(year, 0, 4); // always in week 1
  const monday1 = january4 - ((new Date(january4).getUTCDay() + 6) % 7) * DAY_MS;
  return isoWeekOfDate(monday1 + (week - 1 + weeks) * 7 * DAY_MS);
}

/** `YYYY-Www`, e.g. `2026-W48`. */
export function formatIsoWeek({ year, week }: IsoWeek): string {
  return `${String(year).padStart(4, "0")}-W${String(week).padStart(2, "0")}`;
}

/** The weekly round id of an ISO week, e.g. `select-2026-W48`. */
export function roundIdOfWeek(week: IsoWeek): string {
  return `select-${formatIsoWeek(week)}`;
}

/** The weekly round id for `now` read in the schedule's time zone `timeZone`, e.g. `select-2026-W48`. */
export function roundIdOf(now: string | Date, timeZone: string): string {
  return roundIdOfWeek(isoWeekOf(now, timeZone));
}
