/**
 * PutInService: the deployed candidate becomes the model in service, conditional on the sequence
 * (domain/learning.ts putInService). Input `{ now, judgement }`; output `{ modelVersion, sequence }`.
 * Environment: contracts/env.ts PutInServiceEnvSchema.
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { PutInServiceEnvSchema, parseEnvironment } from "../contracts/env.js";
import { PutInServiceInputSchema } from "../contracts/learning.js";
import { LEARNING_METRICS } from "../contracts/metrics.js";
import { type PutInServiceDeps, putInService } from "../domain/learning.js";
import { type LineSink, type Logger, lambdaHandler, type MetricsWriter } from "./shared/lambda-handler.js";
import { learningPorts } from "./shared/learning-ports.js";

export type PutInServiceHandlerDeps = PutInServiceDeps & { log: Logger; metrics?: Metrics; count?: MetricsWriter };

export function createPutInServiceHandler(deps: PutInServiceHandlerDeps) {
  return lambdaHandler({ ...deps, name: "put-in-service", input: PutInServiceInputSchema }, async (input) => {
    const result = await putInService(deps, input);
    deps.log.info("model in service", { ...result, jobName: input.judgement.jobName });
    deps.count?.({ [LEARNING_METRICS.modelsPutInService]: { value: 1, unit: "Count" } });
    return result;
  });
}

export function putInServiceDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): PutInServiceHandlerDeps {
  const { endpoint: _, ...ports } = learningPorts("put-in-service", parseEnvironment("put-in-service", PutInServiceEnvSchema, env), sink);
  return ports;
}

export const handler = createPutInServiceHandler(putInServiceDepsFromEnvironment(process.env));
