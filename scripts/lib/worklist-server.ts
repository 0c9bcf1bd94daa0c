/**
 * The annotators' worklist page on localhost: the local stand-in for what the stack does in AWS
 * (static hosting of web/worklist + API Gateway REST API with a Cognito user-pool authorizer in front
 * of the complete handler). It serves
 *
 *   GET  /, /index.html, /worklist.css, /app.js   the page (app.js bundled from web/worklist/src by esbuild)
 *   GET  /config.json                             the page's PageConfig (apiBase `api`, auth = this server, idle seconds)
 *   GET  /oauth2/authorize, POST /oauth2/authorize, POST /oauth2/token, GET /logout
 *                                                 the Cognito hosted UI's authorization code + PKCE flow, with a
 *                                                 local sign-in form (pick one of the configured annotators) —
 *                                                 local-oauth.ts
 *   ANY  /api/<resource>                          an API Gateway proxy event (payload 1.0) for the REAL handler
 *   PUT  /storage/<bucket>/<key>?<presigned query> a mask upload, passed to the S3 emulator (`storageEndpoint`)
 *                                                 unchanged: the stand-in for the browser's PUT to S3 (in AWS the
 *                                                 page PUTs to the bucket, allowed by its CORS rule and the page's
 *                                                 CSP); presigned URLs the handler answers are rewritten to this
 *                                                 origin, so the page's CSP stays `connect-src 'self'` locally
 *
 * Auth adapter: the page sends the token as `Authorization` (raw, or `Bearer …`), as it sends the Cognito
 * ID token in AWS. A known token becomes `requestContext.authorizer.claims` = { sub (the annotator's
 * entry in the directory the handler was given), email, cognito:username, email_verified, token_use }; a missing or unknown token is answered 401
 * `{"message":"Unauthorized"}` without invoking the handler, as the Cognito authorizer does. Tokens live
 * in this process only (lost on restart: sign in again). Overlay images come from the handler's
 * GET /overlays/{stackId} (the studies bucket in moto), so nothing is served around the handler.
 *
 * Binds 127.0.0.1 only; every response carries a Content-Security-Policy that allows nothing outside
 * this origin (no external fonts or scripts can load), `nosniff` and `no-referrer`.
 *
 *   TABLE_NAME=… STUDIES_BUCKET=… SCHEDULE_TIMEZONE=UTC AWS_ENDPOINT_URL=http://127.0.0.1:PORT ANNOTATORS=a@x.org,b@x.org \
 *     npx tsx scripts/lib/worklist-server.ts [--port 8088]       (standalone, against a running moto)
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { AnnotatorDirectory } from "../../lambdas/contracts/completion-api.js";
import { MAX_MASK_BYTES } from "../../lambdas/contracts/masks.js";
import { buildWorklistAssets } from "../../web/worklist/build.js";
import { type AuthorizeRequest, LOCAL_CLIENT_ID, LocalAuthorizationServer, OAuthError } from "./local-oauth.js";

/** The complete handler as the Lambda runtime calls it (createCompleteHandler(…) or a bound instance). */
export type ProxyHandler = (
  event: unknown,
  context: never,
) => Promise<{ statusCode: number; headers?: Record<string, string | number | boolean>; body?: string; isBase64Encoded?: boolean }>;

export interface WorklistServerOptions {
  /** The real complete handler, wired to the local AWS emulator. */
  readonly handler: ProxyHandler;
  /**
   * Who may sign in locally: the annotator directory the handler was given (contracts/completion-api.ts), so
   * that a signed-in annotator's token carries the `sub` the handler knows them by (and their `email`).
   */
  readonly annotators: AnnotatorDirectory;
  /**
   * The S3 emulator the handler presigns mask uploads for (AWS_ENDPOINT_URL): its presigned URLs are
   * answered as this server's `/storage/…`, which passes the PUT on. Unset: URLs pass unchanged.
   */
  readonly storageEndpoint?: string;
  /** Seconds without input after which active time stops counting. Default 120. */
  readonly idleSeconds?: number;
  /** Seconds an ID token of the local sign-in is valid (default 3600, as the stack's); the API refuses it afterwards. */
  readonly tokenLifetimeSeconds?: number;
  /** Port on 127.0.0.1; default 0 (a free one). */
  readonly port?: number;
}

export interface WorklistServer {
  /** e.g. http://127.0.0.1:43121/ */
  readonly url: string;
  /** Mints a local ID token for `email` (as the token endpoint does); throws for someone not in `annotators`. */
  tokenFor(email: string): string;
  close(): Promise<void>;
}

/** The API resources the handler serves (contracts/completion-api.ts COMPLETION_API_PATHS), with path parameters. */
const RESOURCES: readonly { readonly resource: string; readonly pattern: RegExp; readonly params: readonly string[] }[] = [
  { resource: "/completions", pattern: /^\/completions$/, params: [] },
  { resource: "/worklist", pattern: /^\/worklist$/, params: [] },
  { resource: "/overlays/{stackId}", pattern: /^\/overlays\/([^/]+)$/, params: ["stackId"] },
  { resource: "/stacks/{stackId}/mask-uploads", pattern: /^\/stacks\/([^/]+)\/mask-uploads$/, params: ["stackId"] },
  { resource: "/stacks/{stackId}/viewer", pattern: /^\/stacks\/([^/]+)\/viewer$/, params: ["stackId"] },
];

/** Largest mask upload passed to the emulator (contracts/masks.ts MAX_MASK_BYTES). */
const MAX_STORAGE_BYTES = MAX_MASK_BYTES;

const MAX_BODY_BYTES = 1024 * 1024;

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "worklist.css": "text/css; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
};

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What the routes share: the options, who may sign in, the tokens minted, and this server's base URL once listening. */
interface ServerState {
  readonly options: WorklistServerOptions;
  readonly subByEmail: ReadonlyMap<string, string>;
  readonly tokens: Map<string, { email: string; expiresAt: number }>;
  readonly authorization: LocalAuthorizationServer;
  /** http://127.0.0.1:<port>/ once listening. */
  base: string;
}

export async function startWorklistServer(options: WorklistServerOptions): Promise<WorklistServer> {
  const assets = await buildWorklistAssets();
  const subByEmail = new Map(options.annotators.map((a) => [a.email.trim().toLowerCase(), a.sub]));
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const tokens = new Map<string, { email: string; expiresAt: number }>();
  const mint = (email: string) => {
    const normalized = email.trim().toLowerCase();
    if (!subByEmail.has(normalized)) throw new Error(`${email} is not a local annotator of this server`);
    const token = randomBytes(24).toString("base64url");
    tokens.set(token, { email: normalized, expiresAt: Date.now() + lifetime * 1000 });
    return token;
  };
  const state: ServerState = {
    options,
    subByEmail,
    tokens,
    base: "",
    authorization: new LocalAuthorizationServer(
      () => state.base,
      mint,
      (email) => subByEmail.has(email.trim().toLowerCase()),
      Date.now,
      lifetime,
    ),
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const route = async () => {
      if (url.pathname.startsWith("/api/")) return api(state, req, res, url);
      if (url.pathname.startsWith("/storage/")) return storage(options.storageEndpoint, req, res, url);
      if (await oauth(state, req, res, url)) return;
      if (req.method !== "GET" && req.method !== "HEAD") return json(res, 405, { message: "Method Not Allowed" });
      if (url.pathname === "/config.json") return send(res, 200, "application/json", pageConfig(state));
      const name = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
      const asset = assets.files.get(name);
      if (asset !== undefined) return send(res, 200, CONTENT_TYPES[name] ?? "application/octet-stream", asset);
      return send(res, 404, "text/plain; charset=utf-8", "not found");
    };
    route().catch(() => {
      if (!res.headersSent) json(res, 500, { message: "local server error" });
      else res.destroy();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 0, "127.0.0.1", () => done());
  });
  const { port } = server.address() as AddressInfo;
  state.base = `http://127.0.0.1:${port}/`;
  return {
    url: state.base,
    tokenFor: mint,
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((error) => (error ? fail(error) : done()));
      }),
  };
}

/** The page's PageConfig: the API beside it, this server as the sign-in, the idle limit. */
function pageConfig(state: ServerState): string {
  const { base } = state;
  return JSON.stringify({
    apiBase: "api",
    auth: {
      authorizeUrl: `${base}oauth2/authorize`,
      tokenUrl: `${base}oauth2/token`,
      logoutUrl: `${base}logout`,
      clientId: LOCAL_CLIENT_ID,
      redirectUri: base,
      scope: "openid email",
    },
    idleSeconds: state.options.idleSeconds ?? 120,
  });
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    "content-type": type,
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    ...extra,
  });
  res.end(body);
}

const json = (res: ServerResponse, status: number, body: unknown) => send(res, status, "application/json", JSON.stringify(body));

async function readBody(req: IncomingMessage): Promise<Buffer | "too-large"> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return "too-large";
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const body = await readBody(req);
  return new URLSearchParams(body === "too-large" ? "" : body.toString("utf8"));
}

// ---- the local sign-in (the Cognito hosted UI's authorization code + PKCE flow; local-oauth.ts) -------

const page = (body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Local sign-in — labeling worklist</title><link rel="stylesheet" href="/worklist.css"></head>
<body><header class="top"><div class="brand"><h1>Labeling worklist</h1><p class="sub">Local sign-in (development) — stands in for the institution's Cognito sign-in</p></div></header>
<main id="main">${body}</main></body></html>`;

const hidden = (request: AuthorizeRequest) =>
  Object.entries({
    client_id: LOCAL_CLIENT_ID,
    response_type: "code",
    redirect_uri: request.redirectUri,
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: "S256",
    scope: request.scope,
  })
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`)
    .join("");

const signInPage = (state: ServerState, request: AuthorizeRequest, message = "") =>
  page(`<form class="panel sign-in" method="post" action="/oauth2/authorize">${hidden(request)}
<h2>Sign in as</h2>${message ? `<p role="alert">${escapeHtml(message)}</p>` : ""}
<label for="annotator">Annotator</label>
<select id="annotator" name="annotator">${[...state.subByEmail.keys()].map((a) => `<option>${escapeHtml(a)}</option>`).join("")}</select>
<button class="primary" type="submit">Sign in</button></form>`);

const oauthErrorPage = (error: OAuthError) =>
  page(`<section class="panel sign-in"><h2>Sign-in request refused</h2><p role="alert">${escapeHtml(error.message)}</p></section>`);

/** The sign-in routes; false when the request is not one of them. */
async function oauth(state: ServerState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const html = "text/html; charset=utf-8";
  const { authorization } = state;
  try {
    if (url.pathname === "/oauth2/authorize" && req.method === "GET") {
      send(res, 200, html, signInPage(state, authorization.authorizeRequest(url.searchParams)));
      return true;
    }
    if (url.pathname === "/oauth2/authorize" && req.method === "POST") {
      const form = await readForm(req);
      const request = authorization.authorizeRequest(form);
      const chosen = (form.get("annotator") ?? "").trim().toLowerCase();
      if (!state.subByEmail.has(chosen)) send(res, 403, html, signInPage(state, request, "Not a local annotator."));
      else send(res, 302, "text/plain; charset=utf-8", "signed in", { location: authorization.issueCode(chosen, request) });
      return true;
    }
    if (url.pathname === "/oauth2/token" && req.method === "POST") {
      json(res, 200, authorization.exchange(await readForm(req)));
      return true;
    }
    if (url.pathname === "/logout" && req.method === "GET") {
      send(res, 302, "text/plain; charset=utf-8", "signed out", { location: authorization.logout(url.searchParams) });
      return true;
    }
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    if (url.pathname === "/oauth2/token") json(res, error.status, { error: error.error, error_description: error.description });
    else send(res, error.status, html, oauthErrorPage(error));
    return true;
  }
  return false;
}

// ---- the API: API Gateway + the Cognito authorizer in front of the real handler ---------------------

async function api(state: ServerState, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const header = req.headers.authorization ?? "";
  const held = state.tokens.get(header.replace(/^Bearer\s+/i, "").trim());
  if (!held || held.expiresAt < Date.now()) return json(res, 401, { message: "Unauthorized" });
  const body = await readBody(req);
  if (body === "too-large") return json(res, 413, { message: "Request Entity Too Large" });
  const event = proxyEvent(req, url, body, { email: held.email, sub: state.subByEmail.get(held.email) });
  const context = {
    functionName: "complete",
    awsRequestId: event.requestContext.requestId,
    getRemainingTimeInMillis: () => 29_000,
  } as never;
  let result: Awaited<ReturnType<ProxyHandler>>;
  try {
    result = await state.options.handler(event, context);
  } catch {
    // What API Gateway answers when the Lambda invocation itself fails.
    return json(res, 502, { message: "Internal server error" });
  }
  const storageEndpoint = state.options.storageEndpoint?.replace(/\/$/, "");
  const out =
    storageEndpoint && result.statusCode === 200
      ? throughThisOrigin(event.resource, result.body ?? "", storageEndpoint, state.base)
      : (result.body ?? "");
  const responseHeaders = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const { "content-type": type = "application/json", ...rest } = responseHeaders;
  send(res, result.statusCode, type, result.isBase64Encoded ? Buffer.from(out, "base64") : out, rest);
}

/** The API Gateway proxy event (payload 1.0) for this request, with the Cognito authorizer's claims of the caller. */
function proxyEvent(req: IncomingMessage, url: URL, body: Buffer, caller: { email: string; sub: string | undefined }) {
  const path = url.pathname.slice("/api".length) || "/";
  const match = RESOURCES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  const pathParameters = match
    ? Object.fromEntries(match.r.params.map((name, i) => [name, decodeURIComponent(match.m?.[i + 1] ?? "")]))
    : null;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string" && name !== "authorization") headers[name] = value;
  const query = Object.fromEntries(url.searchParams);
  const resource = match?.r.resource ?? path;
  const method = req.method ?? "GET";
  const { email, sub } = caller;
  return {
    resource,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: {},
    queryStringParameters: Object.keys(query).length ? query : null,
    pathParameters: pathParameters && Object.keys(pathParameters).length ? pathParameters : null,
    stageVariables: null,
    requestContext: {
      resourcePath: resource,
      httpMethod: method,
      stage: "local",
      requestId: randomUUID(),
      authorizer: { claims: { sub, email, "cognito:username": sub, email_verified: "true", token_use: "id" } },
    },
    body: body.length ? body.toString("utf8") : null,
    isBase64Encoded: false,
  };
}

/** The presigned emulator URLs in an answer, rewritten to this origin's /storage/… (the page's CSP stays 'self'). */
function throughThisOrigin(resource: string, body: string, storageEndpoint: string, base: string): string {
  const local = (url: string) => (url.startsWith(`${storageEndpoint}/`) ? `${base}storage/${url.slice(storageEndpoint.length + 1)}` : url);
  if (resource === "/stacks/{stackId}/mask-uploads") {
    const upload = JSON.parse(body) as { url: string };
    upload.url = local(upload.url);
    return JSON.stringify(upload);
  }
  if (resource === "/overlays/{stackId}") {
    const overlay = JSON.parse(body) as { keyFrames: { heatmapPng: string; jsDivergencePng: string }[] };
    for (const k of overlay.keyFrames) {
      k.heatmapPng = local(k.heatmapPng);
      k.jsDivergencePng = local(k.jsDivergencePng);
    }
    return JSON.stringify(overlay);
  }
  if (resource === "/stacks/{stackId}/viewer") {
    const viewer = JSON.parse(body) as { volumes: Record<string, string> };
    for (const name of Object.keys(viewer.volumes)) viewer.volumes[name] = local(viewer.volumes[name] as string);
    return JSON.stringify(viewer);
  }
  return body;
}

/**
 * PUT /storage/<path>?<query> → the emulator's /<path>?<query>, headers that S3 reads passed on;
 * GET of a presigned viewer volume (overlays/<study>/stack-<i>-<name>.nii.gz) or thumbnail
 * (overlays/<study>/stack-<i>-key-<f>-<map>.png) likewise.
 */
async function storage(storageEndpoint: string | undefined, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const endpoint = storageEndpoint?.replace(/\/$/, "");
  if (endpoint && req.method === "GET") {
    const viewerVolume = /^\/storage\/[^/]+\/overlays\/[^/]+\/stack-\d+-(ct|heatmap|js)\.nii\.gz$/;
    const thumbnail = /^\/storage\/[^/]+\/overlays\/[^/]+\/stack-\d+-key-\d+-(heatmap|js)\.png$/;
    if (!(viewerVolume.test(url.pathname) || thumbnail.test(url.pathname)) || !url.searchParams.has("X-Amz-Signature")) {
      return json(res, 403, { message: "only presigned viewer volumes and thumbnails pass here" });
    }
    const upstream = await fetch(`${endpoint}/${url.pathname.slice("/storage/".length)}${url.search}`);
    return send(
      res,
      upstream.status,
      upstream.headers.get("content-type") ?? "application/octet-stream",
      Buffer.from(await upstream.arrayBuffer()),
    );
  }
  if (!endpoint || req.method !== "PUT") return json(res, 405, { message: "Method Not Allowed" });
  // Only what the API presigns: one object under a bucket's label-uploads/, with a signature.
  if (!/^\/storage\/[^/]+\/label-uploads\/[^/]+\/[^/]+$/.test(url.pathname) || !url.searchParams.has("X-Amz-Signature")) {
    return json(res, 403, { message: "only presigned mask uploads pass here" });
  }
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (!(declared >= 0 && declared <= MAX_STORAGE_BYTES)) return json(res, 413, { message: "Request Entity Too Large" });
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const upstream = await fetch(`${endpoint}/${url.pathname.slice("/storage/".length)}${url.search}`, {
    method: "PUT",
    headers: { "content-type": req.headers["content-type"] ?? "application/octet-stream" },
    body,
  });
  send(res, upstream.status, upstream.headers.get("content-type") ?? "application/xml", Buffer.from(await upstream.arrayBuffer()));
}

/** Standalone: the real complete handler from its composition root, against the emulator in AWS_ENDPOINT_URL. */
async function main(): Promise<void> {
  const portArg = process.argv.indexOf("--port");
  const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8088;
  const emails = (process.env.ANNOTATORS ?? "").split(",").filter((a) => a.trim().length > 0);
  if (emails.length === 0) throw new Error("set ANNOTATORS to a comma-separated list of annotator e-mails");
  // Local stand-ins for the subs Cognito assigns when it creates each user.
  const annotators = emails.map((email) => ({ sub: `local-${randomUUID()}`, email: email.trim() }));
  Object.assign(process.env, {
    ANNOTATOR_DIRECTORY: JSON.stringify(annotators),
    AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? "local",
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
  });
  // The handler module builds its Lambda handler from process.env when imported, as in Lambda.
  const { createCompleteHandler, completeDepsFromEnvironment } = await import("../../lambdas/handlers/complete-handler.js");
  const handler = createCompleteHandler(completeDepsFromEnvironment(process.env));
  const server = await startWorklistServer({
    handler: handler as unknown as ProxyHandler,
    annotators,
    port,
    ...(process.env.AWS_ENDPOINT_URL ? { storageEndpoint: process.env.AWS_ENDPOINT_URL } : {}),
  });
  console.log(`worklist page: ${server.url} (local sign-in stands in for Cognito's hosted UI)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
