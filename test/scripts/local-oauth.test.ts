/** The local authorization server's rules that the HTTP tests (test/browser/worklist.test.ts) do not reach: expiry and bad verifiers. */
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LOCAL_CLIENT_ID, LocalAuthorizationServer, OAuthError } from "../../scripts/lib/local-oauth.js";

const PAGE = "http://127.0.0.1:8088/";

function setUp() {
  let clock = 1_000_000;
  const server = new LocalAuthorizationServer(
    () => PAGE,
    (email) => `token-for-${email}`,
    (email) => email === "amy@example.org",
    () => clock,
  );
  const verifier = randomBytes(32).toString("base64url");
  const request = server.authorizeRequest(
    new URLSearchParams({
      client_id: LOCAL_CLIENT_ID,
      response_type: "code",
      redirect_uri: PAGE,
      state: "st",
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    }),
  );
  const codeFor = () => new URL(server.issueCode("amy@example.org", request)).searchParams.get("code") ?? "";
  const exchange = (code: string, codeVerifier = verifier) =>
    server.exchange(
      new URLSearchParams({
        grant_type: "authorization_code",
        client_id: LOCAL_CLIENT_ID,
        code,
        redirect_uri: PAGE,
        code_verifier: codeVerifier,
      }),
    );
  return { server, request, codeFor, exchange, advance: (ms: number) => (clock += ms) };
}

const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof OAuthError) return error.error;
    throw error;
  }
  return "no error";
};

describe("local authorization server", () => {
  it("honours a code for 5 minutes, not after", () => {
    const { codeFor, exchange, advance } = setUp();
    const early = codeFor();
    advance(5 * 60_000);
    expect(exchange(early).id_token).toBe("token-for-amy@example.org");
    const late = codeFor();
    advance(5 * 60_000 + 1);
    expect(errorOf(() => exchange(late))).toBe("invalid_grant");
  });

  it("refuses a short verifier, a stranger, a missing state and an unknown grant type", () => {
    const { server, request, codeFor, exchange } = setUp();
    expect(errorOf(() => exchange(codeFor(), "short"))).toBe("invalid_grant");
    expect(() => server.issueCode("eve@example.org", request)).toThrow(/not an annotator/);
    const withoutState = new URLSearchParams({
      client_id: LOCAL_CLIENT_ID,
      response_type: "code",
      redirect_uri: PAGE,
      code_challenge: request.codeChallenge,
      code_challenge_method: "S256",
    });
    expect(() => server.authorizeRequest(withoutState)).toThrow(/state is required/);
    expect(errorOf(() => server.exchange(new URLSearchParams({ grant_type: "password", client_id: LOCAL_CLIENT_ID })))).toBe(
      "unsupported_grant_type",
    );
  });
});

describe("local authorization server: refresh tokens", () => {
  it("the code exchange gives a refresh token that buys new ID tokens for 12 h, for the same annotator; unknown or expired ones are refused", () => {
    const { server, codeFor, exchange, advance } = setUp();
    const first = exchange(codeFor());
    expect(first).toMatchObject({ id_token: "token-for-amy@example.org", token_type: "Bearer", expires_in: 3600 });
    const refresh = first.refresh_token ?? "";
    expect(refresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const renew = (token: string) =>
      server.exchange(new URLSearchParams({ grant_type: "refresh_token", client_id: LOCAL_CLIENT_ID, refresh_token: token }));
    advance(11 * 3600_000);
    expect(renew(refresh)).toEqual({ id_token: "token-for-amy@example.org", token_type: "Bearer", expires_in: 3600 });
    expect(() => renew("not-a-token")).toThrow(OAuthError);
    advance(2 * 3600_000);
    expect(() => renew(refresh)).toThrow(/refresh token is unknown or expired/);
  });
});
