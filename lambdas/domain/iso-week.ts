/**
 * ISO 8601 week dates in UTC: weeks start on Monday and week 1 is the week holding the year's first
 * Thursday, so the days around New Year may belong to the neighbouring week-year (2027-01-01 is
 * 2026-W53; 2024-12-30 is 2025-W01). The weekly selection round is named after it.
 */
import { DomainError } from "./errors.js";

/** The timestamp is not a valid ISO 8601 date-time. */
export class InvalidTimestampError extends DomainError {}

export interface IsoWeek {
  readonly year: number;
  readonly week: number;
}

const DAY_MS = 86_400_000;

/** The ISO week (in UTC) that holds `timestamp`. */
export function isoWeekOf(timestamp: string | Date): IsoWeek {
  const ms = typeof timestamp === "string" ? Date.parse(timestamp) : timestamp.getTime();
  if (!Number.isFinite(ms)) throw new InvalidTimestampError(`not a valid timestamp: ${JSON.stringify(String(timestamp))}`);
  const date = new Date(ms);
  const midnight = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  // The Thursday of this week decides the week-year.
  const thursday = new Date(midnight + (3 - weekday) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { year, week };
}

/** `YYYY-Www`, e.g. `2026-W48`. */
export function formatIsoWeek({ year, week }: IsoWeek): string {
  return `${String(year).padStart(4, "0")}-W${String(week).padStart(2, "0")}`;
}

/** The weekly round id for `now`, e.g. `select-2026-W48`. */
export function roundIdOf(now: string | Date): string {
  return `select-${formatIsoWeek(isoWeekOf(now))}`;
}
