/**
 * Re-score Lambda: after a new model is in service (a promotion), asks the scoring endpoint to score
 * again every study whose pending stacks another model scored (domain/rescore.ts); the answers come back
 * through the score queue to record-score, which writes them on the stacks still pending.
 *
 * Event: `{}` (anything else is ignored; an operator invokes it with `aws lambda invoke`, the learning
 * workflow after an endpoint update). Output: `{ modelVersion, studies, stacks }`. Idempotent: a repeat
 * sends the same requests again, and record-score writes each stack once per model.
 * Environment: contracts/env.ts RescoreEnvSchema, parsed at cold start (EnvironmentError).
 */
import middy from "@middy/core";
import { parseEnvironment, RescoreEnvSchema } from "../contracts/env.js";
import { type RescoreDeps, type RescoreOutput, requestRescoring } from "../domain/rescore.js";
import { jsonLogger, type Logger } from "./shared/logger.js";
import { scoringRequestDeps } from "./shared/scoring-request.js";

export interface RescoreHandlerDeps extends Omit<RescoreDeps, "log"> {
  readonly log: Logger;
}

export function createRescoreHandler(deps: RescoreHandlerDeps) {
  return middy<unknown, RescoreOutput>().handler(async () => {
    const output = await requestRescoring({ ...deps, log: (message, fields) => deps.log.info(message, fields) });
    deps.log.info("re-scoring requested", { studies: output.studies, stacks: output.stacks, modelVersion: output.modelVersion ?? null });
    return output;
  });
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function rescoreDepsFromEnvironment(env: Record<string, string | undefined>): RescoreHandlerDeps {
  const config = parseEnvironment("rescore", RescoreEnvSchema, env);
  return { ...scoringRequestDeps(config), log: jsonLogger({ lambda: "rescore" }) };
}

export const handler = createRescoreHandler(rescoreDepsFromEnvironment(process.env));
