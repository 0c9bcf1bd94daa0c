/**
 * The weekly worklist e-mail, built as plain data: one message per annotator per round,
 * multipart/alternative with a text and an HTML part (both UTF-8, base64), sent raw through SES.
 *
 * Content is limited to what an annotator needs and what cannot identify a patient: each stack as
 * "Stack 3 of 11 · 7 min · 32 frames" in the worklist page's order (the stack id only as a secondary
 * detail), one link to the worklist, the annotator's predicted hours, the round's predicted hours
 * against the weekly budget Q, and the week the next round is selected in.
 * Never object keys, series UIDs or any other field of the stack record. Every interpolated value
 * is HTML-escaped in the HTML part.
 */
import { DomainError } from "./errors.js";
import { formatIsoWeek, shiftIsoWeek } from "./iso-week.js";

/** A header value would break the message (CR/LF in an address). */
export class InvalidMailHeaderError extends DomainError {}

export interface WorklistStack {
  readonly stackId: string;
  readonly predictedSeconds: number;
  readonly stackScore: number;
  readonly stackUncertainty: number;
  /** Frames of the stack, when its grid is known. */
  readonly frames?: number;
}

export interface WorklistEmailInput {
  readonly roundId: string;
  /** The annotator's stacks (any order; shown sorted by stack id, as the worklist page lists them). */
  readonly stacks: readonly WorklistStack[];
  /** ΣT of the whole round. */
  readonly roundPredictedSeconds: number;
  /** Q, the weekly budget. */
  readonly budgetSeconds: number;
  /** The worklist page; each stack links to `<url>?round=<roundId>#<stackId>`. */
  readonly worklistUrl: string;
}

export interface WorklistEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** `<worklistUrl>?round=<roundId>[#<stackId>]`, keeping any query the page URL already has. */
export function worklistLink(worklistUrl: string, roundId: string, stackId?: string): string {
  const url = new URL(worklistUrl);
  url.searchParams.set("round", roundId);
  if (stackId !== undefined) url.hash = encodeURIComponent(stackId);
  return url.toString();
}

export function escapeHtml(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const hours = (seconds: number) => (seconds / 3600).toFixed(1);
const minutes = (seconds: number) => Math.max(1, Math.round(seconds / 60));

/** The week after the round's ISO week, e.g. select-2026-W52 → 2026-W53 or 2027-W01. */
function nextWeekOf(roundId: string): string | undefined {
  const match = /^select-(\d{4})-W(\d{2})$/.exec(roundId);
  return match ? formatIsoWeek(shiftIsoWeek({ year: Number(match[1]), week: Number(match[2]) }, 1)) : undefined;
}

/** Pure: subject, text and HTML of one annotator's e-mail for one round. */
export function worklistEmail(input: WorklistEmailInput): WorklistEmail {
  const week = input.roundId.replace(/^select-/, "");
  const stacks = [...input.stacks].sort((a, b) => (a.stackId < b.stackId ? -1 : a.stackId > b.stackId ? 1 : 0));
  let mine = 0;
  for (const s of stacks) mine += s.predictedSeconds;
  const next = nextWeekOf(input.roundId);
  const roundLine =
    `The whole round: ${hours(input.roundPredictedSeconds)} h predicted of the ${hours(input.budgetSeconds)} h weekly budget.` +
    (next ? ` The next round is selected in week ${next}.` : "");
  const pageLink = worklistLink(input.worklistUrl, input.roundId);
  const footer = "Research use only: predictions and scores come from a research model, not a diagnosis.";

  if (stacks.length === 0) {
    const subject = `Labeling ${week}: nothing for you this week`;
    const lead = `Nothing for you this week: round ${input.roundId} assigned you no stacks.`;
    const text = [`Hello,`, ``, lead, roundLine, ``, footer, ``].join("\n");
    const html = page(subject, [
      `<p>Hello,</p>`,
      `<p>${escapeHtml(lead)}</p>`,
      `<p>${escapeHtml(roundLine)}</p>`,
      `<p><small>${escapeHtml(footer)}</small></p>`,
    ]);
    return { subject, text, html };
  }

  const subject = `Labeling ${week}: ${stacks.length} ${stacks.length === 1 ? "stack" : "stacks"}, ${hours(mine)} h predicted`;
  const lead = `Your worklist for round ${input.roundId}: ${stacks.length} ${stacks.length === 1 ? "stack" : "stacks"}, ${hours(mine)} h predicted.`;
  const rows = stacks.map((s, i) => ({
    label: [`Stack ${i + 1} of ${stacks.length}`, `${minutes(s.predictedSeconds)} min`, ...(s.frames ? [`${s.frames} frames`] : [])].join(
      " · ",
    ),
    detail: `id ${s.stackId}, stack score ${s.stackScore.toFixed(2)}, uncertainty ${s.stackUncertainty.toFixed(4)}`,
  }));
  const text = [
    "Hello,",
    "",
    lead,
    roundLine,
    "",
    `Open your worklist: ${pageLink}`,
    "",
    ...rows.map((r) => `- ${r.label}   (${r.detail})`),
    "",
    footer,
    "",
  ].join("\n");
  const items = rows.map((r) => `<li>${escapeHtml(r.label)} <small style="color:#666">(${escapeHtml(r.detail)})</small></li>`);
  const html = page(subject, [
    "<p>Hello,</p>",
    `<p>${escapeHtml(lead)}<br>${escapeHtml(roundLine)}</p>`,
    `<p><a href="${escapeHtml(pageLink)}" style="font-weight:bold">Open your worklist</a></p>`,
    `<ol style="list-style:none;padding-left:0">${items.join("")}</ol>`,
    `<p><small>${escapeHtml(footer)}</small></p>`,
  ]);
  return { subject, text, html };
}

function page(title: string, body: string[]): string {
  return [
    "<!DOCTYPE html>",
    '<html><head><meta charset="utf-8"><title>',
    escapeHtml(title),
    "</title></head><body>",
    ...body,
    "</body></html>",
    "",
  ].join("\n");
}

export interface MimeMessageInput {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** When the message is sent (ISO); the Date header. */
  readonly date: string;
}

/**
 * Pure: the RFC 5322 / MIME message (CRLF line endings): multipart/alternative, text part first and
 * HTML second (clients show the last one they can render), each UTF-8 in base64 lines of 76. The
 * boundary is derived from the content (deterministic) and, containing `=` and `_`, cannot occur in
 * base64 bodies. A non-ASCII subject is RFC 2047-encoded.
 */
export function buildMimeMessage(input: MimeMessageInput): string {
  for (const [name, value] of [
    ["From", input.from],
    ["To", input.to],
  ] as const) {
    if (/[\r\n]/.test(value) || value.length === 0) throw new InvalidMailHeaderError(`${name} header must be one non-empty line`);
  }
  const boundary = `=_ichal_${fnv1a(`${input.to}\n${input.subject}\n${input.text}\n${input.html}`)}`;
  const headers = [
    `From: ${input.from}`,
    `To: ${input.to}`,
    `Subject: ${encodeHeader(input.subject.replace(/[\r\n]+/g, " "))}`,
    `Date: ${rfc5322Date(input.date)}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
  ];
  const part = (type: string, body: string) => [
    `--${boundary}`,
    `Content-Type: ${type}; charset=UTF-8`,
    "Content-Transfer-Encoding: base64",
    "",
    ...base64Lines(body),
  ];
  return [
    ...headers,
    "",
    "This is a multi-part message in MIME format.",
    "",
    ...part("text/plain", input.text),
    ...part("text/html", input.html),
    `--${boundary}--`,
    "",
  ].join("\r\n");
}

function base64Lines(body: string): string[] {
  const encoded = Buffer.from(body, "utf8").toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < encoded.length; i += 76) lines.push(encoded.slice(i, i + 76));
  return lines;
}

function encodeHeader(value: string): string {
  if (/^[ -~]*$/.test(value)) return value; // printable ASCII as it is

  return `=?UTF-8?B?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

function rfc5322Date(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new InvalidMailHeaderError(`Date header: not a timestamp: ${JSON.stringify(iso)}`);
  return new Date(ms).toUTCString().replace(/GMT$/, "+0000");
}

/** 32-bit FNV-1a as 8 hex digits (a boundary, not a security measure). */
function fnv1a(value: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}
