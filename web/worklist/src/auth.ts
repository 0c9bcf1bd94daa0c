/**
 * Sign-in for the worklist page: OAuth 2.0 authorization code grant with PKCE (RFC 7636, S256), the
 * flow the OAuth 2.0 Security Best Current Practice (RFC 9700) asks of browser apps instead of the
 * implicit grant, whose tokens travel in the URL.
 *
 *   1. beginSignIn: a random `state` and code verifier are kept in sessionStorage with the page address
 *      the annotator was on (the e-mail's `?round=…#stack` included); the browser goes to the
 *      authorization endpoint with the verifier's SHA-256 challenge.
 *   2. The authorization server (the Cognito hosted UI in AWS, scripts/lib/worklist-server.ts locally)
 *      signs the annotator in and sends the browser back to `redirectUri?code=…&state=…`.
 *   3. completeSignIn: the `state` must be the one kept (else the answer is refused); the code and the
 *      verifier are exchanged at the token endpoint (a CORS POST) for an ID token; the code leaves the
 *      address bar and the kept page address is restored.
 *   4. refreshIdToken: before the ID token expires (an hour), the refresh token the code exchange gave
 *      (Cognito: 12 h, this tab only) buys a new one at the token endpoint, so an annotator an hour into
 *      a stack is not signed out; when it fails, the page asks to sign in again (nothing unsent is lost:
 *      outbox and mask drafts stay in the browser).
 *   5. signOutUrl: the authorization server's logout endpoint, which ends its own session too and
 *      returns to the page.
 *
 * No framework; Web Crypto only (browsers, and Node ≥ 20 for the tests).
 */
import type { KeyValueStore } from "./outbox.js";

/** Where and how the page signs in (config.json's `auth`; written by the stack in AWS, by the local server locally). */
export interface OAuthConfig {
  /** Authorization endpoint, e.g. `https://<domain>.auth.<region>.amazoncognito.com/oauth2/authorize`. */
  readonly authorizeUrl: string;
  /** Token endpoint (`…/oauth2/token`). */
  readonly tokenUrl: string;
  /** Logout endpoint (`…/logout`); called with `client_id` and `logout_uri` = `redirectUri`. */
  readonly logoutUrl: string;
  /** The page's app client (public: no secret). */
  readonly clientId: string;
  /** The page's own address, registered as the client's callback and sign-out URL. */
  readonly redirectUri: string;
  /** Space-separated scopes, e.g. `openid email`. */
  readonly scope: string;
}

/**
 * The config with every URL absolute: relative ones (the defaults, e.g. `oauth2/authorize`) are resolved
 * against the page's address, and an empty `redirectUri` becomes the page itself (origin + path).
 */
export function resolveAuth(auth: OAuthConfig, pageUrl: string): OAuthConfig {
  const page = new URL(pageUrl);
  const self = `${page.origin}${page.pathname}`;
  return {
    ...auth,
    authorizeUrl: new URL(auth.authorizeUrl, page).toString(),
    tokenUrl: new URL(auth.tokenUrl, page).toString(),
    logoutUrl: new URL(auth.logoutUrl, page).toString(),
    redirectUri: auth.redirectUri ? new URL(auth.redirectUri, page).toString() : self,
  };
}

/** sessionStorage key of the sign-in in progress. */
export const PENDING_SIGN_IN_KEY = "ich-al.worklist.sign-in";

interface PendingSignIn {
  readonly state: string;
  readonly verifier: string;
  /** Path, query and fragment of the page when sign-in began. */
  readonly returnTo: string;
}

export type SignInOutcome =
  | { readonly kind: "none" }
  | {
      readonly kind: "signed-in";
      readonly idToken: string;
      readonly returnTo: string;
      /** Seconds the ID token is valid (`expires_in`; 3600 when absent). */
      readonly expiresIn: number;
      readonly refreshToken?: string;
    }
  | { readonly kind: "failed"; readonly message: string };

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

export function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes: number): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** The S256 code challenge of a verifier: BASE64URL(SHA-256(ASCII(verifier))). */
export async function codeChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

/**
 * Keeps a new state and verifier (with `returnTo`) in `store` and returns the authorization URL to go to.
 * A sign-in begun earlier in this tab and never finished is replaced.
 */
export async function beginSignIn(auth: OAuthConfig, store: KeyValueStore, returnTo: string): Promise<string> {
  const pending: PendingSignIn = { state: randomToken(16), verifier: randomToken(32), returnTo };
  store.setItem(PENDING_SIGN_IN_KEY, JSON.stringify(pending));
  const url = new URL(auth.authorizeUrl);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: auth.clientId,
    redirect_uri: auth.redirectUri,
    scope: auth.scope,
    state: pending.state,
    code_challenge: await codeChallenge(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  return url.toString();
}

function takePending(store: KeyValueStore): PendingSignIn | undefined {
  const raw = store.getItem(PENDING_SIGN_IN_KEY);
  store.removeItem(PENDING_SIGN_IN_KEY); // one answer per sign-in, whatever it is
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<PendingSignIn>;
    if (typeof parsed.state === "string" && typeof parsed.verifier === "string" && typeof parsed.returnTo === "string")
      return parsed as PendingSignIn;
  } catch {
    // a damaged entry is no sign-in in progress
  }
  return undefined;
}

/**
 * Finishes a sign-in when `pageUrl` is the authorization server's answer (`?code=&state=` or `?error=`);
 * `{kind: "none"}` for any other address. Never throws: a refused or failed sign-in is `failed` with a
 * message for the annotator.
 */
export async function completeSignIn(
  auth: OAuthConfig,
  store: KeyValueStore,
  pageUrl: URL,
  fetchImpl: Fetch = (input, init) => fetch(input, init),
): Promise<SignInOutcome> {
  const params = pageUrl.searchParams;
  const code = params.get("code");
  const error = params.get("error");
  if (!code && !error) return { kind: "none" };
  const pending = takePending(store);
  if (error) {
    const detail = params.get("error_description") ?? error;
    return { kind: "failed", message: `Sign-in was not completed (${detail}).` };
  }
  if (!pending || params.get("state") !== pending.state) {
    return { kind: "failed", message: "This sign-in answer does not belong to a sign-in started in this tab. Sign in again." };
  }
  let response: Response;
  try {
    response = await fetchImpl(auth.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: auth.clientId,
        code: code as string,
        redirect_uri: auth.redirectUri,
        code_verifier: pending.verifier,
      }).toString(),
      credentials: "omit",
    });
  } catch {
    return { kind: "failed", message: "The sign-in service did not answer. Check the connection and sign in again." };
  }
  const answer = await tokenAnswer(response);
  if ("failed" in answer) return { kind: "failed", message: `The sign-in service refused the sign-in (${answer.failed}). Sign in again.` };
  return { kind: "signed-in", returnTo: pending.returnTo, ...answer };
}

type TokenAnswer = { idToken: string; expiresIn: number; refreshToken?: string } | { failed: string };

async function tokenAnswer(response: Response): Promise<TokenAnswer> {
  let body: { id_token?: unknown; refresh_token?: unknown; expires_in?: unknown; error?: unknown } | undefined;
  try {
    body = (await response.json()) as typeof body;
  } catch {
    body = undefined;
  }
  if (!response.ok || typeof body?.id_token !== "string" || body.id_token.length === 0) {
    return { failed: typeof body?.error === "string" ? body.error : `HTTP ${response.status}` };
  }
  const expiresIn = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 3600;
  return {
    idToken: body.id_token,
    expiresIn,
    ...(typeof body.refresh_token === "string" && body.refresh_token ? { refreshToken: body.refresh_token } : {}),
  };
}

/** A new ID token for the refresh token (grant_type=refresh_token); `failed` with the reason otherwise. Never throws. */
export async function refreshIdToken(
  auth: OAuthConfig,
  refreshToken: string,
  fetchImpl: Fetch = (input, init) => fetch(input, init),
): Promise<TokenAnswer> {
  try {
    const response = await fetchImpl(auth.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", client_id: auth.clientId, refresh_token: refreshToken }).toString(),
      credentials: "omit",
    });
    return await tokenAnswer(response);
  } catch {
    return { failed: "no answer" };
  }
}

/** Seconds after which to renew a token valid for `expiresIn`: five minutes early, or halfway for short ones. */
export const renewAfterSeconds = (expiresIn: number): number => (expiresIn > 600 ? expiresIn - 300 : expiresIn / 2);

/** The authorization server's logout URL: ends its session as well, then returns to the page. */
export function signOutUrl(auth: OAuthConfig): string {
  const url = new URL(auth.logoutUrl);
  url.search = new URLSearchParams({ client_id: auth.clientId, logout_uri: auth.redirectUri }).toString();
  return url.toString();
}
