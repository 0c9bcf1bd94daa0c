/**
 * Round-failure Lambda, `RecordRoundFailure`, target of every Catch in the weekly workflow: input
 * `{ now, error }` (contracts/weekly-workflow.ts); what happens to the round and its stacks: domain/round-failure.ts.
 * Environment: contracts/env.ts RoundFailureEnvSchema.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { parseEnvironment, RoundFailureEnvSchema } from "../contracts/env.js";
import { RoundFailureInputSchema } from "../contracts/weekly-workflow.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RoundFailureOutput, recordRoundFailure } from "../domain/round-failure.js";
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";

export interface RoundFailureHandlerDeps {
  readonly records: RecordStore;
  readonly clock: () => string;
  /** The schedule's IANA time zone: the round is the ISO week of `now` there. */
  readonly timeZone: string;
  readonly log: Logger;
}

export function createRoundFailureHandler(deps: RoundFailureHandlerDeps) {
  return lambdaHandler(
    { ...deps, name: "round-failure", input: RoundFailureInputSchema },
    (input): Promise<RoundFailureOutput> =>
      recordRoundFailure(input.now, input.error, {
        records: deps.records,
        clock: deps.clock,
        timeZone: deps.timeZone,
        log: (message, fields) => deps.log.warn(message, fields),
      }),
  );
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function roundFailureDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): RoundFailureHandlerDeps {
  const config = parseEnvironment("round-failure", RoundFailureEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    clock: () => new Date().toISOString(),
    timeZone: config.SCHEDULE_TIMEZONE,
    log: lambdaLogger("round-failure", sink),
  };
}

export const handler = createRoundFailureHandler(roundFailureDepsFromEnvironment(process.env));
