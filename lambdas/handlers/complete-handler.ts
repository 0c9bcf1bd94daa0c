/**
 * Completion API Lambda (API Gateway REST API, proxy integration, Cognito user-pool authorizer):
 *
 *   POST /completions  body CompletionRequest → 200 `{ stackId, status: "labeled", completion }`
 *                      (the same for an identical replay) · 400 BAD_REQUEST naming the field ·
 *                      401 UNAUTHENTICATED · 403 NOT_ASSIGNED · 404 NOT_FOUND · 409 NOT_SELECTED | CONFLICT
 *   GET  /worklist     → 200 the caller's stacks of the latest round that assigned them any (rounds
 *                      are ISO weeks in the schedule's time zone, SCHEDULE_TIMEZONE)
 *   GET  /overlays/{stackId}
 *                      → 200 key-frame thumbnails (presigned GETs of the container's PNGs) of one of the
 *                      caller's stacks · 403 NOT_ASSIGNED · 404 NOT_FOUND (no such stack, or none stored)
 *   POST /stacks/{stackId}/mask-uploads
 *                      body MaskUploadRequest → 200 a presigned PUT for one mask upload (domain/masks.ts)
 *   GET  /stacks/{stackId}/viewer
 *                      → 200 presigned GETs of the stack's CT and overlay volumes and its grid (domain/completion.ts viewerOf)
 *   POST /completions with a mask that fails its checks → 422 MASK_REFUSED with `maskCode`
 *
 * The event is parsed at the edge (contracts/completion-api.ts ApiGatewayProxyEventSchema); the caller
 * is the token's immutable `sub` claim mapped through the annotator directory (ANNOTATOR_DIRECTORY) to the
 * annotator's configured e-mail — 401 without a `sub`, 403 NOT_ANNOTATOR for a `sub` not in it; the
 * mutable `email` claim is never read. The outcomes and the single conditional write are in
 * domain/completion.ts and domain/masks.ts. Errors are JSON `{ code, message }`; an unexpected fault is logged by name and
 * answered 500 INTERNAL without detail. Logs carry stack ids and codes, never addresses or label paths.
 * Environment: contracts/env.ts CompleteEnvSchema, parsed at cold start (EnvironmentError).
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import middy, { type MiddlewareObj } from "@middy/core";
import { z } from "zod";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { maskObjectsClient, S3MaskObjects, S3ViewerObjects } from "../adapters/s3-mask-objects.js";
import { S3OverlayObjects } from "../adapters/s3-overlay-objects.js";
import {
  API_ERROR_STATUS,
  type ApiErrorCode,
  type ApiGatewayProxyEvent,
  ApiGatewayProxyEventSchema,
  type ApiGatewayProxyResult,
  annotatorsBySub,
  COMPLETION_API_PATHS,
  CompletionRequestSchema,
  MaskUploadRequestSchema,
} from "../contracts/completion-api.js";
import { CompleteEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { MaskRefusalCode } from "../contracts/masks.js";
import { completeStack, type OverlayObjects, overlaysOf, type ViewerObjects, viewerOf, worklistOf } from "../domain/completion.js";
import { type MaskObjects, startMaskUpload } from "../domain/masks.js";
import type { RecordStore } from "../domain/record-store.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

/** The Lambda event is not an API Gateway proxy event (a wiring error). */
export class InvalidApiEventError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`event is not an API Gateway proxy event: ${detail}`, options);
    this.name = "InvalidApiEventError";
  }
}

export interface CompleteHandlerDeps {
  readonly records: RecordStore;
  /** Cognito `sub` → the annotator's configured e-mail (lower case): contracts/completion-api.ts annotatorsBySub. */
  readonly annotators: ReadonlyMap<string, string>;
  readonly clock: () => string;
  /** The schedule's IANA time zone: GET /worklist looks back through the ISO weeks read there. */
  readonly timeZone: string;
  /** Longest active time a completion may report (seconds; default 8 h). */
  readonly maxActiveSeconds?: number;
  readonly log: Logger;
  /** The studies bucket's overlay objects; without it GET /overlays/{stackId} answers 404. */
  readonly overlays?: OverlayObjects;
  /** The studies bucket's mask uploads and accepted masks. */
  readonly masks: MaskObjects;
  /** A fresh UUID per mask upload. */
  readonly newId?: () => string;
  /** The viewer's volumes (presigned GETs); GET /stacks/{stackId}/viewer answers 404 without it. */
  readonly viewer?: ViewerObjects;
}

function respond(statusCode: number, body: unknown): ApiGatewayProxyResult {
  return { statusCode, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(body) };
}

function refuse(code: ApiErrorCode, message: string, maskCode?: MaskRefusalCode): ApiGatewayProxyResult {
  return respond(API_ERROR_STATUS[code], { code, message, ...(maskCode ? { maskCode } : {}) });
}

/** "field: problem; …" for a body that failed its schema. */
function schemaMessage(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const keys = "keys" in issue && Array.isArray(issue.keys) ? ` (${issue.keys.join(", ")})` : "";
      return `${issue.path.join(".") || "(body)"}: ${issue.message}${keys}`;
    })
    .join("; ");
}

/** Replaces `request.event` with the parsed proxy event, or throws InvalidApiEventError. */
function apiEventParser(): MiddlewareObj<unknown, ApiGatewayProxyResult> {
  return {
    name: "apiEventParser",
    before: (request) => {
      const parsed = ApiGatewayProxyEventSchema.safeParse(request.event);
      if (!parsed.success) throw new InvalidApiEventError(z.prettifyError(parsed.error), { cause: parsed.error });
      request.event = parsed.data;
    },
  };
}

/** Any fault not answered by the route: logged by name, answered 500 INTERNAL without detail. */
function internalErrors(log: Logger): MiddlewareObj<unknown, ApiGatewayProxyResult> {
  return {
    name: "internalErrors",
    onError: (request) => {
      log.error("request failed", { code: request.error instanceof Error ? request.error.name : "Error" });
      request.response = refuse("INTERNAL", "internal error");
    },
  };
}

/** The caller's configured e-mail, from the token's `sub`; the refusal when there is no `sub` or it is no annotator's. */
function callerOf(
  event: ApiGatewayProxyEvent,
  annotators: ReadonlyMap<string, string>,
): { email: string } | { code: "UNAUTHENTICATED" | "NOT_ANNOTATOR"; message: string } {
  const sub = event.requestContext.authorizer?.claims?.sub;
  if (typeof sub !== "string" || sub.trim() === "") return { code: "UNAUTHENTICATED", message: "no authenticated annotator" };
  const email = annotators.get(sub);
  return email ? { email } : { code: "NOT_ANNOTATOR", message: "the signed-in user is not one of this institution's annotators" };
}

function parseBody(event: ApiGatewayProxyEvent): { ok: true; value: unknown } | { ok: false; message: string } {
  if (event.body === null || event.body === "") return { ok: false, message: "body: required" };
  const text = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, message: "body: not valid JSON" };
  }
}

async function route(event: ApiGatewayProxyEvent, deps: CompleteHandlerDeps): Promise<ApiGatewayProxyResult> {
  const identity = callerOf(event, deps.annotators);
  if (!("email" in identity)) {
    deps.log.info("caller refused", { code: identity.code });
    return refuse(identity.code, identity.message);
  }
  const caller = identity.email;
  const resource = event.resource;
  if (event.httpMethod === "POST" && resource === COMPLETION_API_PATHS.completions) {
    const body = parseBody(event);
    if (!body.ok) return refuse("BAD_REQUEST", body.message);
    const request = CompletionRequestSchema.safeParse(body.value);
    if (!request.success) return refuse("BAD_REQUEST", schemaMessage(request.error));
    const outcome = await completeStack(request.data, caller, {
      records: deps.records,
      masks: deps.masks,
      clock: deps.clock,
      ...(deps.maxActiveSeconds !== undefined ? { maxActiveSeconds: deps.maxActiveSeconds } : {}),
    });
    if (outcome.kind === "refused") {
      deps.log.info("completion refused", {
        stackId: request.data.stackId,
        code: outcome.code,
        ...(outcome.maskCode ? { maskCode: outcome.maskCode } : {}),
      });
      return refuse(outcome.code, outcome.message, outcome.maskCode);
    }
    deps.log.info(outcome.kind === "completed" ? "stack completed" : "identical completion replayed", { stackId: request.data.stackId });
    return respond(200, outcome.response);
  }
  if (event.httpMethod === "GET" && resource === COMPLETION_API_PATHS.worklist) {
    return respond(200, await worklistOf(caller, deps.clock(), deps.records, deps.timeZone));
  }
  if (event.httpMethod === "GET" && resource === COMPLETION_API_PATHS.overlays) {
    const stackId = event.pathParameters?.stackId;
    if (!stackId) return refuse("BAD_REQUEST", "stackId: required in the path");
    const outcome = await overlaysOf(stackId, caller, { records: deps.records, overlays: deps.overlays, viewer: deps.viewer });
    if (outcome.kind === "refused") {
      deps.log.info("overlays refused", { stackId, code: outcome.code });
      return refuse(outcome.code, outcome.message);
    }
    return respond(200, outcome.response);
  }
  if (event.httpMethod === "POST" && resource === COMPLETION_API_PATHS.maskUploads) {
    const stackId = event.pathParameters?.stackId;
    if (!stackId) return refuse("BAD_REQUEST", "stackId: required in the path");
    const body = parseBody(event);
    if (!body.ok) return refuse("BAD_REQUEST", body.message);
    const request = MaskUploadRequestSchema.safeParse(body.value);
    if (!request.success) return refuse("BAD_REQUEST", schemaMessage(request.error));
    const outcome = await startMaskUpload(stackId, caller, request.data, {
      records: deps.records,
      masks: deps.masks,
      clock: deps.clock,
      newId: deps.newId ?? randomUUID,
    });
    if (outcome.kind === "refused") {
      deps.log.info("mask upload refused", { stackId, code: outcome.code });
      return refuse(outcome.code, outcome.message);
    }
    deps.log.info("mask upload issued", { stackId });
    return respond(200, outcome.response);
  }
  if (event.httpMethod === "GET" && resource === COMPLETION_API_PATHS.viewer) {
    const stackId = event.pathParameters?.stackId;
    if (!stackId) return refuse("BAD_REQUEST", "stackId: required in the path");
    if (!deps.viewer) return refuse("NOT_FOUND", "no viewer volumes here");
    const outcome = await viewerOf(stackId, caller, { records: deps.records, viewer: deps.viewer, clock: deps.clock });
    if (outcome.kind === "refused") {
      deps.log.info("viewer refused", { stackId, code: outcome.code });
      return refuse(outcome.code, outcome.message);
    }
    return respond(200, outcome.response);
  }
  return refuse("NOT_FOUND", `no route ${event.httpMethod} ${resource}`);
}

export function createCompleteHandler(deps: CompleteHandlerDeps) {
  return middy<unknown, ApiGatewayProxyResult>()
    .use(internalErrors(deps.log))
    .use(apiEventParser())
    .handler((event) => route(event as ApiGatewayProxyEvent, deps));
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function completeDepsFromEnvironment(env: Record<string, string | undefined>): CompleteHandlerDeps {
  const config = parseEnvironment("complete", CompleteEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    annotators: annotatorsBySub(config.ANNOTATOR_DIRECTORY),
    clock: () => new Date().toISOString(),
    timeZone: config.SCHEDULE_TIMEZONE,
    maxActiveSeconds: config.MAX_ACTIVE_SECONDS,
    log: jsonLogger({ lambda: "complete" }),
    overlays: new S3OverlayObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    masks: new S3MaskObjects(maskObjectsClient({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    viewer: new S3ViewerObjects(
      maskObjectsClient({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }),
      config.STUDIES_BUCKET,
    ),
  };
}

export const handler = createCompleteHandler(completeDepsFromEnvironment(process.env));
