/**
 * The annotators' e-mails as SES accepted them: read from moto server (`GET /moto-api/data.json`,
 * where the emulator keeps every sent message) and written to an outbox folder, one `.eml` (the MIME
 * message as sent, openable in any mail client) and one `.html` (the HTML part, or the text part in
 * <pre>) per message.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface SentEmail {
  /** Position in the emulator's list of sent messages (stable across reads). */
  index: number;
  from: string;
  to: string[];
  subject: string;
  /** The message as RFC 5322 text (raw sends as sent; simple sends assembled). */
  mime: string;
  html: string | undefined;
  text: string | undefined;
}

/** Every message the emulator's SES (v1 or v2) accepted, oldest first. */
export async function sentEmails(emulatorEndpoint: string): Promise<SentEmail[]> {
  const res = await fetch(`${emulatorEndpoint}/moto-api/data.json`);
  if (!res.ok) throw new Error(`moto data.json: HTTP ${res.status}`);
  const data = (await res.json()) as Record<string, unknown>;
  const found: Record<string, unknown>[] = [];
  for (const service of ["ses", "sesv2"]) collect(data[service], found);
  return found.map((m, index) => toEmail(m, index));
}

function collect(node: unknown, out: Record<string, unknown>[]): void {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, out);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  if ("raw_data" in record || ("destinations" in record && "body" in record)) {
    out.push(record);
    return;
  }
  for (const value of Object.values(record)) collect(value, out);
}

function toEmail(m: Record<string, unknown>, index: number): SentEmail {
  if (typeof m.raw_data === "string") {
    const mime = m.raw_data;
    const headers = headerBlock(mime);
    return {
      index,
      from: String(m.source ?? headers.from ?? ""),
      // moto adds the header recipients to the API's destinations: each address once.
      to: [
        ...new Set(
          Array.isArray(m.destinations) && m.destinations.length > 0 ? m.destinations.map(String) : splitAddresses(headers.to ?? ""),
        ),
      ],
      subject: decodeHeader(headers.subject ?? ""),
      mime,
      html: mimePart(mime, "text/html"),
      text: mimePart(mime, "text/plain"),
    };
  }
  const destinations = (m.destinations ?? {}) as Record<string, unknown>;
  const to = Object.values(destinations)
    .flatMap((v) => (Array.isArray(v) ? v : []))
    .map(String);
  const body = String(m.body ?? "");
  const html = /<html|<p|<table|<div/i.test(body) ? body : undefined;
  const subject = String(m.subject ?? "");
  const mime = [
    `From: ${String(m.source ?? "")}`,
    `To: ${to.join(", ")}`,
    `Subject: ${subject}`,
    "MIME-Version: 1.0",
    `Content-Type: ${html ? "text/html" : "text/plain"}; charset=UTF-8`,
    "",
    body,
  ].join("\r\n");
  return { index, from: String(m.source ?? ""), to, subject, mime, html, text: html ? undefined : body };
}

function headerBlock(mime: string): Record<string, string> {
  const head = mime.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  const headers: Record<string, string> = {};
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] ??= line.slice(i + 1).trim();
  }
  return headers;
}

function splitAddresses(value: string): string[] {
  return value
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
}

/** RFC 2047 encoded words (=?UTF-8?B?…?= / =?UTF-8?Q?…?=) decoded. */
function decodeHeader(value: string): string {
  return value.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, _charset: string, encoding: string, text: string) =>
    encoding.toUpperCase() === "B"
      ? Buffer.from(text, "base64").toString("utf8")
      : Buffer.from(decodeQuotedPrintable(text.replace(/_/g, " ")), "latin1").toString("utf8"),
  );
}

function decodeQuotedPrintable(text: string): string {
  return text.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The decoded body of the first part with this content type (walks multipart bodies). */
function mimePart(mime: string, contentType: string): string | undefined {
  const [head = "", ...rest] = mime.split(/\r?\n\r?\n/);
  const body = rest.join("\r\n\r\n");
  const headers = headerBlock(`${head}\r\n\r\n`);
  const type = headers["content-type"] ?? "text/plain";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (type.toLowerCase().startsWith("multipart/") && boundary) {
    for (const part of body.split(`--${boundary}`).slice(1)) {
      if (part.startsWith("--")) break;
      const found = mimePart(part.replace(/^\r?\n/, ""), contentType);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!type.toLowerCase().startsWith(contentType)) return undefined;
  const encoding = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  const bytes =
    encoding === "base64"
      ? Buffer.from(body.replace(/\s+/g, ""), "base64")
      : encoding === "quoted-printable"
        ? Buffer.from(decodeQuotedPrintable(body), "latin1")
        : Buffer.from(body, "utf8");
  return bytes.toString("utf8");
}

/** Writes each message as `<nn>-<recipient>.eml` and `.html` into `dir`; returns the files written. */
export async function writeOutbox(dir: string, emails: readonly SentEmail[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const email of emails) {
    const recipient = (email.to[0] ?? "unknown").replace(/[^A-Za-z0-9@._-]/g, "_");
    const stem = join(dir, `${String(email.index + 1).padStart(2, "0")}-${recipient}`);
    await writeFile(`${stem}.eml`, email.mime);
    const html = email.html ?? `<!doctype html><meta charset="utf-8"><pre>${escapeHtml(email.text ?? "")}</pre>`;
    await writeFile(`${stem}.html`, html);
    files.push(`${stem}.eml`, `${stem}.html`);
  }
  return files;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);
}
