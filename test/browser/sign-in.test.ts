/**
 * The worklist page's sign-in (web/worklist/src/auth.ts) in Node: PKCE against RFC 7636's own test
 * vector, the authorization request, and every way an answer can be refused. The whole flow in Chromium
 * against the local authorization server is in worklist.test.ts.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  base64Url,
  beginSignIn,
  codeChallenge,
  completeSignIn,
  type OAuthConfig,
  PENDING_SIGN_IN_KEY,
  refreshIdToken,
  renewAfterSeconds,
  resolveAuth,
  signOutUrl,
} from "../../web/worklist/src/auth.js";
import type { KeyValueStore } from "../../web/worklist/src/outbox.js";

const AUTH: OAuthConfig = {
  authorizeUrl: "https://idp.example/oauth2/authorize",
  tokenUrl: "https://idp.example/oauth2/token",
  logoutUrl: "https://idp.example/logout",
  clientId: "client-1",
  redirectUri: "https://worklist.example/",
  scope: "openid email",
};

function memoryStore(): KeyValueStore & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

const answer = (params: Record<string, string>) => new URL(`https://worklist.example/?${new URLSearchParams(params)}`);

describe("PKCE sign-in (auth.ts)", () => {
  it("computes the S256 challenge of RFC 7636 Appendix B's verifier, and agrees with node:crypto on random ones", async () => {
    expect(await codeChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    for (let i = 0; i < 20; i++) {
      const verifier = base64Url(crypto.getRandomValues(new Uint8Array(32)));
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await codeChallenge(verifier)).toBe(createHash("sha256").update(verifier).digest("base64url"));
    }
  });

  it("begins with a fresh state and verifier kept in the tab, and asks for a code with the S256 challenge", async () => {
    const store = memoryStore();
    const url = new URL(await beginSignIn(AUTH, store, "/?round=r1#s1"));
    const kept = JSON.parse(store.getItem(PENDING_SIGN_IN_KEY) ?? "{}") as { state: string; verifier: string; returnTo: string };
    expect(`${url.origin}${url.pathname}`).toBe(AUTH.authorizeUrl);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: "code",
      client_id: "client-1",
      redirect_uri: "https://worklist.example/",
      scope: "openid email",
      state: kept.state,
      code_challenge: await codeChallenge(kept.verifier),
      code_challenge_method: "S256",
    });
    expect(kept.returnTo).toBe("/?round=r1#s1");
    const second = new URL(await beginSignIn(AUTH, store, "/"));
    expect(second.searchParams.get("state")).not.toBe(kept.state);
  });

  it("exchanges the code with the kept verifier and gives back the ID token and the page address", async () => {
    const store = memoryStore();
    const state = new URL(await beginSignIn(AUTH, store, "/?round=r1#s1")).searchParams.get("state") ?? "";
    const { verifier } = JSON.parse(store.getItem(PENDING_SIGN_IN_KEY) ?? "{}") as { verifier: string };
    const calls: { url: string; body: string }[] = [];
    const fetchImpl = async (url: string, init: RequestInit) => {
      calls.push({ url, body: String(init.body) });
      return new Response(JSON.stringify({ id_token: "id-1", token_type: "Bearer" }), { status: 200 });
    };
    const outcome = await completeSignIn(AUTH, store, answer({ code: "c1", state }), fetchImpl);
    // No expires_in in this answer: an hour is assumed; no refresh token, none kept.
    expect(outcome).toEqual({ kind: "signed-in", idToken: "id-1", returnTo: "/?round=r1#s1", expiresIn: 3600 });
    expect(calls.map((c) => c.url)).toEqual([AUTH.tokenUrl]);
    expect(Object.fromEntries(new URLSearchParams(calls[0]?.body))).toEqual({
      grant_type: "authorization_code",
      client_id: "client-1",
      code: "c1",
      redirect_uri: "https://worklist.example/",
      code_verifier: verifier,
    });
    expect(store.getItem(PENDING_SIGN_IN_KEY)).toBeNull(); // one answer per sign-in
    // The same answer again (reload of the address): nothing kept any more, refused.
    expect((await completeSignIn(AUTH, store, answer({ code: "c1", state }), fetchImpl)).kind).toBe("failed");
    expect(calls).toHaveLength(1);
  });

  it("refuses a foreign state, an error answer, a refused or failed exchange — never throwing", async () => {
    const unreachable = async (): Promise<Response> => {
      throw new Error("the token endpoint must not be called");
    };
    const store = memoryStore();
    await beginSignIn(AUTH, store, "/");
    const foreign = await completeSignIn(AUTH, store, answer({ code: "c", state: "not-mine" }), unreachable);
    expect(foreign).toMatchObject({ kind: "failed", message: expect.stringContaining("does not belong") });

    await beginSignIn(AUTH, store, "/");
    const denied = await completeSignIn(AUTH, store, answer({ error: "access_denied", error_description: "user cancelled" }), unreachable);
    expect(denied).toMatchObject({ kind: "failed", message: expect.stringContaining("user cancelled") });

    const withState = async () => new URL(await beginSignIn(AUTH, store, "/")).searchParams.get("state") ?? "";
    const refused = await completeSignIn(AUTH, store, answer({ code: "c", state: await withState() }), async () =>
      Response.json({ error: "invalid_grant" }, { status: 400 }),
    );
    expect(refused).toMatchObject({ kind: "failed", message: expect.stringContaining("invalid_grant") });
    const offline = await completeSignIn(AUTH, store, answer({ code: "c", state: await withState() }), async () => {
      throw new TypeError("Failed to fetch");
    });
    expect(offline).toMatchObject({ kind: "failed", message: expect.stringContaining("did not answer") });
    const noToken = await completeSignIn(AUTH, store, answer({ code: "c", state: await withState() }), async () => Response.json({}));
    expect(noToken.kind).toBe("failed");

    expect(await completeSignIn(AUTH, store, new URL("https://worklist.example/?round=r1"), unreachable)).toEqual({ kind: "none" });
  });

  it("renews the ID token with the refresh token (grant_type=refresh_token) five minutes early, halfway for short ones; a refusal is reported, not thrown", async () => {
    const calls: { url: string; body: string }[] = [];
    const ok = await refreshIdToken(AUTH, "rt-1", async (url, init) => {
      calls.push({ url, body: String(init.body) });
      return new Response(JSON.stringify({ id_token: "id-2", expires_in: 3600, token_type: "Bearer" }), { status: 200 });
    });
    expect(ok).toEqual({ idToken: "id-2", expiresIn: 3600 });
    expect(calls.map((c) => c.url)).toEqual([AUTH.tokenUrl]);
    expect(Object.fromEntries(new URLSearchParams(calls[0]?.body))).toEqual({
      grant_type: "refresh_token",
      client_id: "client-1",
      refresh_token: "rt-1",
    });
    const refused = await refreshIdToken(
      AUTH,
      "rt-1",
      async () => new Response(JSON.stringify({ error: "invalid_grant" }), { status: 400 }),
    );
    expect(refused).toEqual({ failed: "invalid_grant" });
    expect(
      await refreshIdToken(AUTH, "rt-1", async () => {
        throw new TypeError("offline");
      }),
    ).toEqual({ failed: "no answer" });
    expect([renewAfterSeconds(3600), renewAfterSeconds(600), renewAfterSeconds(8)]).toEqual([3300, 300, 4]);
  });

  it("resolves relative endpoints against the page, the page itself as the default redirect; logout returns to it", () => {
    const resolved = resolveAuth(
      { ...AUTH, authorizeUrl: "oauth2/authorize", tokenUrl: "oauth2/token", logoutUrl: "logout", redirectUri: "" },
      "http://127.0.0.1:8088/?round=r1#s1",
    );
    expect(resolved).toMatchObject({
      authorizeUrl: "http://127.0.0.1:8088/oauth2/authorize",
      tokenUrl: "http://127.0.0.1:8088/oauth2/token",
      logoutUrl: "http://127.0.0.1:8088/logout",
      redirectUri: "http://127.0.0.1:8088/",
    });
    const out = new URL(signOutUrl(AUTH));
    expect(Object.fromEntries(out.searchParams)).toEqual({ client_id: "client-1", logout_uri: "https://worklist.example/" });
  });
});
