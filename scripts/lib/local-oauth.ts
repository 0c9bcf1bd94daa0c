/**
 * The local stand-in for the Cognito hosted UI's OAuth 2.0 endpoints, as far as the worklist page uses
 * them: the authorization code grant with PKCE (RFC 7636, S256 only) for one public client.
 *
 *   GET  /oauth2/authorize   checks response_type=code, client_id, redirect_uri, state, code_challenge
 *                            and code_challenge_method=S256, then shows the local sign-in form
 *   POST /oauth2/authorize   (the form) an annotator of this server → a one-time code bound to them, the
 *                            challenge and the redirect URI (5 minutes) → 302 to redirect_uri?code=&state=
 *   POST /oauth2/token       grant_type=authorization_code, client_id, code, redirect_uri, code_verifier:
 *                            the code is spent on the first try; BASE64URL(SHA-256(verifier)) must equal
 *                            the challenge → {id_token, refresh_token, token_type, expires_in}; else 400
 *                            {error} (RFC 6749 §5.2)
 *                            grant_type=refresh_token, client_id, refresh_token (12 h, as the stack's app
 *                            client) → a new {id_token, token_type, expires_in}, as Cognito answers
 *   GET  /logout             client_id and logout_uri = the registered URI → 302 to it
 *
 * What it leaves out: Cognito's own session cookie (every authorize shows the form), refresh-token
 * revocation, JWTs (the ID token is an opaque random token the local API stand-in maps to the annotator).
 */
import { createHash, randomBytes } from "node:crypto";

export const LOCAL_CLIENT_ID = "local-worklist";
const CODE_LIFETIME_MS = 5 * 60_000;
const TOKEN_LIFETIME_S = 3600;
const REFRESH_LIFETIME_MS = 12 * 3600_000;

/** A request the server refuses; `status` and `body` are what it answers. */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(`${error}: ${description}`);
    this.name = "OAuthError";
  }
}

export interface AuthorizeRequest {
  readonly redirectUri: string;
  readonly state: string;
  readonly codeChallenge: string;
  readonly scope: string;
}

interface IssuedCode {
  readonly email: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly expiresAt: number;
}

const BASE64URL_43 = /^[A-Za-z0-9_-]{43}$/;

export interface TokenAnswer {
  readonly id_token: string;
  readonly refresh_token?: string;
  readonly token_type: "Bearer";
  readonly expires_in: number;
}

export class LocalAuthorizationServer {
  private readonly codes = new Map<string, IssuedCode>();
  private readonly refreshTokens = new Map<string, { email: string; expiresAt: number }>();

  /**
   * @param redirectUri the page's address, the only callback and sign-out URI of the client
   * @param mintToken issues an ID token for an annotator
   * @param allows whether someone may sign in (an annotator of this server)
   */
  constructor(
    private readonly redirectUri: () => string,
    private readonly mintToken: (email: string) => string,
    private readonly allows: (email: string) => boolean,
    private readonly now: () => number = Date.now,
    /** Seconds an ID token is valid (the answer's `expires_in`). */
    private readonly tokenLifetimeS: number = TOKEN_LIFETIME_S,
  ) {}

  /** Validates an authorization request (query of GET, or the form's hidden fields of POST). */
  authorizeRequest(params: URLSearchParams): AuthorizeRequest {
    const need = (name: string) => {
      const value = params.get(name);
      if (!value) throw new OAuthError(400, "invalid_request", `${name} is required`);
      return value;
    };
    if (need("client_id") !== LOCAL_CLIENT_ID) throw new OAuthError(400, "invalid_client", "unknown client_id");
    const redirectUri = need("redirect_uri");
    if (redirectUri !== this.redirectUri()) throw new OAuthError(400, "invalid_request", "redirect_uri is not registered for this client");
    if (need("response_type") !== "code") throw new OAuthError(400, "unsupported_response_type", "only response_type=code");
    if (need("code_challenge_method") !== "S256") throw new OAuthError(400, "invalid_request", "code_challenge_method must be S256");
    const codeChallenge = need("code_challenge");
    if (!BASE64URL_43.test(codeChallenge)) throw new OAuthError(400, "invalid_request", "code_challenge is not a base64url SHA-256");
    return { redirectUri, state: need("state"), codeChallenge, scope: params.get("scope") ?? "openid" };
  }

  /** The signed-in annotator's redirect: `redirect_uri?code=…&state=…` (throws for someone not allowed). */
  issueCode(email: string, request: AuthorizeRequest): string {
    if (!this.allows(email)) throw new Error(`${email} is not an annotator of this server`);
    const code = randomBytes(24).toString("base64url");
    this.codes.set(code, {
      email,
      redirectUri: request.redirectUri,
      codeChallenge: request.codeChallenge,
      expiresAt: this.now() + CODE_LIFETIME_MS,
    });
    const target = new URL(request.redirectUri);
    target.searchParams.set("code", code);
    target.searchParams.set("state", request.state);
    return target.toString();
  }

  /** The token endpoint (form body). */
  exchange(form: URLSearchParams): TokenAnswer {
    const grant = form.get("grant_type");
    if (grant !== "authorization_code" && grant !== "refresh_token")
      throw new OAuthError(400, "unsupported_grant_type", "only grant_type=authorization_code or refresh_token");
    if (form.get("client_id") !== LOCAL_CLIENT_ID) throw new OAuthError(400, "invalid_client", "unknown client_id");
    if (grant === "refresh_token") {
      const held = this.refreshTokens.get(form.get("refresh_token") ?? "");
      if (!held || held.expiresAt < this.now()) throw new OAuthError(400, "invalid_grant", "the refresh token is unknown or expired");
      return { id_token: this.mintToken(held.email), token_type: "Bearer", expires_in: this.tokenLifetimeS };
    }
    const code = form.get("code") ?? "";
    const issued = this.codes.get(code);
    this.codes.delete(code); // one try per code, right or wrong
    if (!issued || issued.expiresAt < this.now()) throw new OAuthError(400, "invalid_grant", "the code is unknown, spent or expired");
    if (form.get("redirect_uri") !== issued.redirectUri)
      throw new OAuthError(400, "invalid_grant", "redirect_uri differs from the authorization request");
    const verifier = form.get("code_verifier") ?? "";
    const challenge = createHash("sha256").update(verifier, "ascii").digest("base64url");
    if (verifier.length < 43 || challenge !== issued.codeChallenge)
      throw new OAuthError(400, "invalid_grant", "code_verifier does not match the code_challenge");
    const refresh = randomBytes(32).toString("base64url");
    this.refreshTokens.set(refresh, { email: issued.email, expiresAt: this.now() + REFRESH_LIFETIME_MS });
    return { id_token: this.mintToken(issued.email), refresh_token: refresh, token_type: "Bearer", expires_in: this.tokenLifetimeS };
  }

  /** The logout endpoint's redirect. */
  logout(params: URLSearchParams): string {
    if (params.get("client_id") !== LOCAL_CLIENT_ID) throw new OAuthError(400, "invalid_client", "unknown client_id");
    const target = params.get("logout_uri");
    if (target !== this.redirectUri()) throw new OAuthError(400, "invalid_request", "logout_uri is not registered for this client");
    return target;
  }
}
