/**
 * The annotator's session in this tab: finishing a sign-in the authorization server answered, keeping
 * the ID token and renewing it with the refresh token before it expires, the sign-in panel, sign-out.
 * The OAuth exchanges themselves are in auth.ts.
 */
import { WorklistApi } from "./api.js";
import { beginSignIn, completeSignIn, refreshIdToken, renewAfterSeconds, signOutUrl } from "./auth.js";
import { $, h } from "./dom.js";
import { page } from "./page-state.js";

const TOKEN_KEY = "ich-al.worklist.token";
const REFRESH_KEY = "ich-al.worklist.refresh";
const EXPIRES_KEY = "ich-al.worklist.token-expires-at";
const SIGNED_OUT_KEY = "ich-al.worklist.signed-out";

let renewTimer: number | undefined;

/**
 * Finishes a sign-in the authorization server has just answered. Returns the ID token of this tab, or
 * undefined with the sign-in panel shown (saying why: a refused sign-in, a sign-out, or none yet).
 */
export async function takeToken(): Promise<string | undefined> {
  const outcome = await completeSignIn(page.auth, sessionStorage, new URL(location.href));
  if (outcome.kind === "signed-in") {
    keepToken(outcome.idToken, outcome.expiresIn, outcome.refreshToken);
    history.replaceState(null, "", outcome.returnTo); // the code leaves the address bar; the e-mail's link is back
  } else if (outcome.kind === "failed") {
    history.replaceState(null, "", location.pathname);
    showSignIn(outcome.message);
    return undefined;
  }
  const token = sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  if (token) return token;
  const signedOut = sessionStorage.getItem(SIGNED_OUT_KEY) !== null;
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  showSignIn(
    signedOut
      ? "Signed out. Unsent completions stay in this browser until you sign in again."
      : "Sign in with your institution account to see the stacks assigned to you.",
  );
  return undefined;
}

/** Keeps the tab's ID token (and refresh token) and schedules its renewal before it expires. */
function keepToken(idToken: string, expiresIn: number, refreshToken?: string): void {
  sessionStorage.setItem(TOKEN_KEY, idToken);
  sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresIn * 1000));
  if (refreshToken) sessionStorage.setItem(REFRESH_KEY, refreshToken);
  scheduleRenewal();
}

/** Renews the ID token with the refresh token before it expires (also after a reload, from the kept expiry). */
export function scheduleRenewal(): void {
  if (renewTimer !== undefined) window.clearTimeout(renewTimer);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) ?? Number.NaN);
  if (!sessionStorage.getItem(REFRESH_KEY) || !Number.isFinite(expiresAt)) return;
  const lifetime = Math.max(0, (expiresAt - Date.now()) / 1000);
  renewTimer = window.setTimeout(() => void renewToken(), renewAfterSeconds(lifetime) * 1000);
}

async function renewToken(): Promise<void> {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return;
  const answer = await refreshIdToken(page.auth, refresh);
  if ("failed" in answer) return; // the next API call answers 401 and asks to sign in; nothing unsent is lost
  keepToken(answer.idToken, answer.expiresIn, answer.refreshToken);
  if (page.api) page.api = new WorklistApi(page.config.apiBase, answer.idToken);
}

async function signIn(): Promise<void> {
  location.assign(await beginSignIn(page.auth, sessionStorage, location.pathname + location.search + location.hash));
}

/** Forgets the tab's tokens and shows the sign-in panel with the reason. */
export function showSignIn(reason: string): void {
  page.api = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  if (renewTimer !== undefined) window.clearTimeout(renewTimer);
  $("who").textContent = "";
  $("who-line").hidden = true;
  $("sign-out").hidden = true;
  const link = h("button", { type: "button", class: "primary" }, "Sign in");
  link.addEventListener("click", () => void signIn());
  $("main").replaceChildren(
    h(
      "section",
      { class: "panel sign-in", "aria-labelledby": "sign-in-title" },
      h("h2", { id: "sign-in-title" }, "Sign in"),
      h("p", {}, reason),
      link,
    ),
  );
  link.focus();
}

/** Forgets the tab's tokens and ends the sign-in service's session too, which then comes back here. */
export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.setItem(SIGNED_OUT_KEY, "1");
  location.assign(signOutUrl(page.auth));
}
