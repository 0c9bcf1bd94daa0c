/**
 * The page's side of the completion API (lambdas/contracts/completion-api.ts): the same types, the
 * token sent as `Authorization` (a Cognito ID token in AWS, a local token from scripts/lib/worklist-server.ts
 * on localhost). Network failures are reported as `status: undefined`, never thrown.
 */
import type {
  CompletionRequest,
  MaskUploadRequest,
  MaskUploadResponse,
  OverlayResponse,
  ViewerResponse,
  WorklistResponse,
} from "../../../lambdas/contracts/completion-api.js";
import type { OAuthConfig } from "./auth.js";

export type {
  CompletionRequest,
  CompletionResponse,
  MaskUploadResponse,
  OverlayResponse,
  ViewerResponse,
  WorklistResponse,
} from "../../../lambdas/contracts/completion-api.js";

/** What `config.json` next to the page says (written by the local server, or by the stack in AWS). */
export interface PageConfig {
  /** Base of the API, relative to the page (`api`) or absolute. */
  readonly apiBase: string;
  /**
   * Sign-in: authorization code grant with PKCE (auth.ts) against the Cognito hosted UI in AWS, or the
   * local server's stand-in. Relative URLs are resolved against the page; an empty redirectUri is the page.
   */
  readonly auth: OAuthConfig;
  /** Seconds without input after which active time stops counting (default 120). */
  readonly idleSeconds: number;
}

export const DEFAULT_CONFIG: PageConfig = {
  apiBase: "api",
  auth: {
    authorizeUrl: "oauth2/authorize",
    tokenUrl: "oauth2/token",
    logoutUrl: "logout",
    clientId: "local-worklist",
    redirectUri: "",
    scope: "openid email",
  },
  idleSeconds: 120,
};

export interface ApiAnswer<T> {
  /** HTTP status; undefined when no answer arrived (network failure, aborted request). */
  readonly status: number | undefined;
  readonly body: T | { code?: string; message?: string } | undefined;
}

export class WorklistApi {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  private async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<ApiAnswer<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.base.replace(/\/$/, "")}${path}`, {
        method,
        headers: { authorization: this.token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? null : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      return { status: undefined, body: undefined };
    }
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed as T };
  }

  worklist(): Promise<ApiAnswer<WorklistResponse>> {
    return this.call("GET", "/worklist");
  }

  overlays(stackId: string): Promise<ApiAnswer<OverlayResponse>> {
    return this.call("GET", `/overlays/${encodeURIComponent(stackId)}`);
  }

  /** Presigned GETs of the stack's CT and overlay volumes, and its grid. */
  viewer(stackId: string): Promise<ApiAnswer<ViewerResponse>> {
    return this.call("GET", `/stacks/${encodeURIComponent(stackId)}/viewer`);
  }

  complete(request: CompletionRequest): Promise<ApiAnswer<unknown>> {
    return this.call("POST", "/completions", request);
  }

  /**
   * Uploads a mask file for `stackId`: a presigned PUT from the API, then the file itself to storage.
   * Answers the upload key, or why not (`step` says which request failed).
   */
  async uploadMask(
    stackId: string,
    file: Blob,
    gzip: boolean,
  ): Promise<{ uploadKey: string } | { step: "presign" | "put"; answer: ApiAnswer<unknown> }> {
    const request: MaskUploadRequest = { bytes: file.size, gzip };
    const issued = await this.call<MaskUploadResponse>("POST", `/stacks/${encodeURIComponent(stackId)}/mask-uploads`, request);
    if (issued.status !== 200 || !issued.body || !("uploadKey" in issued.body)) return { step: "presign", answer: issued };
    const upload = issued.body;
    try {
      const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: file, credentials: "omit" });
      if (!put.ok) return { step: "put", answer: { status: put.status, body: { message: `storage answered HTTP ${put.status}` } } };
    } catch {
      return { step: "put", answer: { status: undefined, body: undefined } };
    }
    return { uploadKey: upload.uploadKey };
  }
}
