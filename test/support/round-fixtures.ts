/** Stack fixtures and a small independent MIME reader for the round / notify / complete tests. */
import { createHash } from "node:crypto";
import { type AnnotatorDirectory, annotatorsBySub } from "../../lambdas/contracts/completion-api.js";
import { maskUploadKey, type StackGeometry } from "../../lambdas/contracts/masks.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { encodeMask } from "../../lambdas/domain/nifti-mask.js";

/** Identifiers planted in the fixtures' source fields: they must never reach an e-mail, log or response. */
export const PLANTED_KEY = "uploads/DOE^JOHN 1957-03-02 MRN0042.zip";
export const PLANTED_SERIES = "1.2.840.99999.4242";

/** The grid of every fixture stack: 4 frames of 6 × 8 pixels (0.5 mm, 5 mm slices). */
export const FIXTURE_GEOMETRY: StackGeometry = {
  shape: [4, 6, 8],
  affine: [
    [-0.5, 0, 0, 20],
    [0, -0.5, 0, 10],
    [0, 0, 5, -30],
    [0, 0, 0, 1],
  ],
};

/** A label map on FIXTURE_GEOMETRY: a 2 × 3 patch of subdural (3) on frame 2, the rest background. */
export function fixtureLabels(): Uint8Array {
  const [, rows, columns] = FIXTURE_GEOMETRY.shape;
  const labels = new Uint8Array(FIXTURE_GEOMETRY.shape[0] * rows * columns);
  for (let r = 2; r < 4; r++) for (let c = 3; c < 6; c++) labels[(2 * rows + r) * columns + c] = 3;
  return labels;
}

/** fixtureLabels() as the .nii.gz an annotator uploads. */
export const fixtureMaskBytes = (): Uint8Array => encodeMask(fixtureLabels(), FIXTURE_GEOMETRY);

/** The upload key of fixture upload `n` of a stack (a UUID-shaped id). */
export const fixtureUploadKey = (stackId: string, n = 1) =>
  maskUploadKey(stackId, `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`, true);

export function pendingStack(i: number, seconds: number, value = 0.1 + (i % 7) / 50): StackRecord {
  const at = `2026-11-${String(1 + (i % 20)).padStart(2, "0")}T10:00:00.000Z`;
  return {
    stackId: `stack-${String(i).padStart(3, "0")}`,
    kind: "stack",
    status: "pending",
    source: { bucket: "studies", key: PLANTED_KEY, versionId: `v${i}`, seriesUid: PLANTED_SERIES },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: value, topK: 8, boundaryLength: 10, components: 2, stackScore: (i % 10) / 10, modelVersion: "m1" },
    prediction: { predictedSeconds: seconds, medianSeconds: seconds, low: seconds / 2, high: seconds * 2, level: 0.9, timeModelVersion: 0 },
    geometry: FIXTURE_GEOMETRY,
  };
}

/** The annotator the API fixtures sign in as, and a second one. */
export const AMY = "amy@example.org";
export const ZED = "zed@example.org";

/** A Cognito-like `sub` (a UUID that says nothing about the address) for a fixture annotator. */
export function subOf(email: string): string {
  const hex = createHash("sha256").update(email).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The fixture annotators as the complete Lambda's ANNOTATOR_DIRECTORY lists them. */
export const ANNOTATOR_DIRECTORY: AnnotatorDirectory = [AMY, ZED].map((email) => ({ sub: subOf(email), email }));
export const ANNOTATORS_BY_SUB = annotatorsBySub(ANNOTATOR_DIRECTORY);

/** An API Gateway REST proxy event (payload 1.0) as the Cognito user-pool authorizer passes it. */
export function apiEvent(
  method: string,
  resource: string,
  body: unknown,
  email: string | null = AMY,
  base64 = false,
  pathParameters: Record<string, string> | null = null,
) {
  const text = body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body);
  const path = resource.replace(/\{(\w+)\}/g, (_, name: string) => pathParameters?.[name] ?? `{${name}}`);
  return {
    resource,
    path,
    httpMethod: method,
    headers: { "content-type": "application/json" },
    multiValueHeaders: {},
    queryStringParameters: null,
    pathParameters,
    stageVariables: null,
    requestContext: {
      resourcePath: resource,
      httpMethod: method,
      stage: "prod",
      requestId: "req-1",
      authorizer:
        email === null
          ? null
          : { claims: { sub: email === "" ? "" : subOf(email), email, "cognito:username": subOf(email), email_verified: "true" } },
    },
    body: text !== null && base64 ? Buffer.from(text).toString("base64") : text,
    isBase64Encoded: base64,
  };
}

export interface ParsedMime {
  readonly headers: Map<string, string>;
  readonly boundary: string;
  readonly parts: { readonly headers: Map<string, string>; readonly body: string }[];
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Reads a multipart message the way a mail client does: headers, boundary, parts, base64 decoding. */
export function parseMime(raw: string): ParsedMime {
  const split = raw.indexOf("\r\n\r\n");
  if (split < 0) throw new Error("no header/body separator");
  const headers = parseHeaders(raw.slice(0, split));
  const match = /boundary="([^"]+)"/.exec(headers.get("content-type") ?? "");
  if (!match?.[1]) throw new Error("no boundary");
  const boundary = match[1];
  const body = raw.slice(split + 4);
  const close = body.indexOf(`\r\n--${boundary}--`);
  if (close < 0) throw new Error("no closing boundary");
  const sections = body.slice(0, close).split(`--${boundary}\r\n`).slice(1);
  const parts = sections.map((section) => {
    const end = section.indexOf("\r\n\r\n");
    const partHeaders = parseHeaders(section.slice(0, end));
    const content = section.slice(end + 4).replace(/\r\n$/, "");
    for (const line of content.split("\r\n")) if (line.length > 76) throw new Error("body line longer than 76");
    const decoded =
      partHeaders.get("content-transfer-encoding") === "base64"
        ? Buffer.from(content.replace(/\r\n/g, ""), "base64").toString("utf8")
        : content;
    return { headers: partHeaders, body: decoded };
  });
  return { headers, boundary, parts };
}
