/**
 * PutInService: after the endpoint serves the candidate, the table's model in service is replaced
 * (conditionally on the sequence read) and the run marked promoted (domain/learning.ts putInService).
 * Input `{ now, judgement }`; output `{ modelVersion, sequence }`. The next state invokes the re-score
 * Lambda. Environment: contracts/env.ts PutInServiceEnvSchema.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTrainingLedger } from "../adapters/dynamo-training-ledger.js";
import { PutInServiceEnvSchema, parseEnvironment } from "../contracts/env.js";
import { PutInServiceInputSchema } from "../contracts/learning.js";
import { type PutInServiceDeps, putInService } from "../domain/learning.js";
import { learningStep } from "./shared/learning-step.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export function createPutInServiceHandler(deps: PutInServiceDeps & { log: Logger }) {
  return learningStep("put-in-service", PutInServiceInputSchema, deps.log, async (input) => {
    const result = await putInService(deps, input);
    deps.log.info("model in service", { ...result, jobName: input.judgement.jobName });
    return result;
  });
}

export function putInServiceDepsFromEnvironment(env: Record<string, string | undefined>) {
  const config = parseEnvironment("put-in-service", PutInServiceEnvSchema, env);
  const dynamo = new DynamoDBClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {});
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    ledger: new DynamoTrainingLedger(dynamo, config.TABLE_NAME),
    log: jsonLogger({ lambda: "put-in-service" }),
  };
}

export const handler = createPutInServiceHandler(putInServiceDepsFromEnvironment(process.env));
