/**
 * Completions not yet acknowledged by the server, kept in the browser (localStorage) per annotator, so
 * a network failure, a closed tab or a reload loses nothing. An entry is written before the first POST
 * and removed only when the server answers: 200 (stored, or an identical replay) or a refusal that no
 * retry can change (400, 403, 404, 409, and 422 for a refused mask). Every retry sends the entry's body unchanged, so the server's
 * idempotency on identical replays makes a doubled completion impossible.
 */

/** The part of the Web Storage API used (localStorage in the page, a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A completion as POSTed (contracts/completion-api.ts CompletionRequest): a mask already uploaded, or "no hemorrhage". */
export type PendingCompletion =
  | {
      readonly stackId: string;
      readonly activeSeconds: number;
      readonly maskUploadKey: string;
      readonly source: "page" | "external";
      /** The viewer's counts, for a mask drawn in the page. */
      readonly work?: { strokes: number; edits: number; startedFromSuggestion: boolean };
    }
  | { readonly stackId: string; readonly activeSeconds: number; readonly noHemorrhage: true };

export class CompletionOutbox {
  private readonly key: string;

  constructor(
    private readonly store: KeyValueStore,
    annotator: string,
  ) {
    this.key = `ich-al.worklist.outbox.${annotator.toLowerCase()}`;
  }

  list(): PendingCompletion[] {
    try {
      const parsed: unknown = JSON.parse(this.store.getItem(this.key) ?? "[]");
      return Array.isArray(parsed) ? parsed.filter(isPending) : [];
    } catch {
      return [];
    }
  }

  get(stackId: string): PendingCompletion | undefined {
    return this.list().find((p) => p.stackId === stackId);
  }

  /** Keeps `completion` unless one for the stack is already kept: the first body is the one sent, always. */
  add(completion: PendingCompletion): PendingCompletion {
    const existing = this.get(completion.stackId);
    if (existing) return existing;
    this.store.setItem(this.key, JSON.stringify([...this.list(), completion]));
    return completion;
  }

  remove(stackId: string): void {
    const rest = this.list().filter((p) => p.stackId !== stackId);
    if (rest.length === 0) this.store.removeItem(this.key);
    else this.store.setItem(this.key, JSON.stringify(rest));
  }
}

function isPending(value: unknown): value is PendingCompletion {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.stackId !== "string" || typeof v.activeSeconds !== "number") return false;
  return (typeof v.maskUploadKey === "string" && (v.source === "page" || v.source === "external")) || v.noHemorrhage === true;
}

/** What to do with a kept completion after a POST attempt. */
export type SendVerdict =
  | { readonly kind: "acknowledged" }
  | { readonly kind: "refused"; readonly code: string; readonly message: string }
  | { readonly kind: "retry"; readonly reason: string };

/** Classifies a POST /completions outcome: `status` undefined means the request never got an answer. */
export function verdictOf(status: number | undefined, body: { code?: unknown; message?: unknown } | undefined): SendVerdict {
  if (status === undefined) return { kind: "retry", reason: "network failure: no answer from the server" };
  if (status >= 200 && status < 300) return { kind: "acknowledged" };
  const code = typeof body?.code === "string" ? body.code : `HTTP_${status}`;
  const message = typeof body?.message === "string" ? body.message : `HTTP ${status}`;
  if (status === 401) return { kind: "retry", reason: "signed out: sign in again to send it" };
  if ([400, 403, 404, 409, 422].includes(status)) return { kind: "refused", code, message };
  return { kind: "retry", reason: `server error (${message})` };
}
