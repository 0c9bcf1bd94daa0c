/**
 * The annotators' API (API Gateway REST API, Cognito user-pool authorizer: only the institution's
 * annotators, no anonymous calls). The complete-handler serves it; the local runner adapts local HTTP
 * requests into the same API Gateway proxy events.
 *
 *   POST /completions   body CompletionRequest  → 200 CompletionResponse (also for an identical replay)
 *                       400 bad body · 403 stack not assigned to the caller · 404 unknown stack
 *                       409 stack not selected, or already completed with different values
 *   GET  /worklist      → 200 the caller's stacks in the latest round (issue 7)
 *
 * The annotator is the authenticated identity (`requestContext.authorizer.claims.email`); a body
 * `annotator` that differs is refused (403). Errors are JSON `{ code, message }`.
 */
import { z } from "zod";

export const COMPLETION_API_PATHS = { completions: "/completions", worklist: "/worklist" } as const;

export const CompletionRequestSchema = z
  .object({
    stackId: z.string().min(1).max(200),
    /** Seconds the annotator actively spent on the stack (page-measured; > 0, < 1 day). */
    activeSeconds: z.number().finite().positive().max(86_400),
    /** Optional; when present it must equal the authenticated annotator. */
    annotator: z.email().optional(),
    /** Where the finished label lives (e.g. s3://…/labels/<stackId>.nii.gz). */
    labelLocation: z.string().min(1).max(1024),
  })
  .strict();
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

export const ApiErrorCodeSchema = z.enum([
  "BAD_REQUEST",
  "UNAUTHENTICATED",
  "NOT_ASSIGNED",
  "NOT_FOUND",
  "NOT_SELECTED",
  "CONFLICT",
  "INTERNAL",
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCodeSchema>;
export const ApiErrorBodySchema = z.object({ code: ApiErrorCodeSchema, message: z.string() });
export type ApiErrorBody = z.infer<typeof ApiErrorBodySchema>;
