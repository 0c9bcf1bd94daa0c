/**
 * Completion API Lambda (API Gateway REST proxy, Cognito authorizer): the routes, their requests and answers
 * are contracts/completion-api.ts; the outcomes and the single conditional write are domain/completion.ts and
 * domain/masks.ts. The caller is the token's `sub` through the annotator directory (never the `email` claim).
 * Errors are JSON `{ code, message }`; an unexpected fault is logged by name and answered 500 INTERNAL.
 * Environment: contracts/env.ts CompleteEnvSchema.
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import type { z } from "zod";
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
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";

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
  const parts = {
    name: "complete",
    input: ApiGatewayProxyEventSchema,
    log: deps.log,
    answerFailure: () => refuse("INTERNAL", "internal error"),
  };
  return lambdaHandler(parts, (event) => route(event, deps) as Promise<ApiGatewayProxyResult>);
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function completeDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): CompleteHandlerDeps {
  const config = parseEnvironment("complete", CompleteEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    annotators: annotatorsBySub(config.ANNOTATOR_DIRECTORY),
    clock: () => new Date().toISOString(),
    timeZone: config.SCHEDULE_TIMEZONE,
    maxActiveSeconds: config.MAX_ACTIVE_SECONDS,
    log: lambdaLogger("complete", sink),
    overlays: new S3OverlayObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    masks: new S3MaskObjects(maskObjectsClient({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }), config.STUDIES_BUCKET),
    viewer: new S3ViewerObjects(
      maskObjectsClient({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) }),
      config.STUDIES_BUCKET,
    ),
  };
}

export const handler = createCompleteHandler(completeDepsFromEnvironment(process.env));
