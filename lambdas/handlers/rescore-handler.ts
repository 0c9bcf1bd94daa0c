/**
 * Re-score Lambda: after a promotion, every study whose pending stacks another model scored is sent to the
 * endpoint again (domain/rescore.ts). Event `{}` (anything else is ignored); output `{ modelVersion, studies, stacks }`.
 * Environment: contracts/env.ts RescoreEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { parseEnvironment, RescoreEnvSchema } from "../contracts/env.js";
import { type RescoreDeps, type RescoreOutput, requestRescoring } from "../domain/rescore.js";
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";
import { scoringRequestDeps } from "./shared/scoring-request.js";

export interface RescoreHandlerDeps extends Omit<RescoreDeps, "log"> {
  readonly log: Logger;
  readonly metrics?: Metrics;
}

export function createRescoreHandler(deps: RescoreHandlerDeps) {
  const parts = { ...deps, name: "rescore" };
  return lambdaHandler(parts, async (): Promise<RescoreOutput> => {
    const output = await requestRescoring({ ...deps, log: (message, fields) => deps.log.info(message, fields) });
    deps.log.info("re-scoring requested", { studies: output.studies, stacks: output.stacks, modelVersion: output.modelVersion ?? null });
    return output;
  });
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function rescoreDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): RescoreHandlerDeps {
  const config = parseEnvironment("rescore", RescoreEnvSchema, env);
  return { ...scoringRequestDeps(config, sink), log: lambdaLogger("rescore", sink) };
}

export const handler = createRescoreHandler(rescoreDepsFromEnvironment(process.env));
