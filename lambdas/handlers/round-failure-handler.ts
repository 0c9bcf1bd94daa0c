/**
 * Round-failure Lambda: the `RecordRoundFailure` Task, target of every Catch in the weekly workflow.
 *
 * Input: `{ now, error: { Error, Cause } }` (contracts/weekly-workflow.ts RoundFailureInputSchema;
 * InvalidRoundFailureInputError). The round is `select-<ISO week of now>`, the week read in the
 * schedule's time zone (SCHEDULE_TIMEZONE). A round that never got
 * claimed is created `failed`; a `selecting` one is marked `failed` and every stack it had marked goes
 * back to `pending`; a `completed` one (a later state failed) gets the error recorded and keeps its
 * stacks (domain/round-failure.ts). A later run in the same week re-selects a failed round.
 * Output: `{ roundId, status, restoredToPool }`. The workflow then ends in RoundFailed.
 * Environment: contracts/env.ts RoundFailureEnvSchema, parsed at cold start (EnvironmentError).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { parseEnvironment, RoundFailureEnvSchema } from "../contracts/env.js";
import { RoundFailureInputSchema } from "../contracts/weekly-workflow.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RoundFailureOutput, recordRoundFailure } from "../domain/round-failure.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

/** The state input is not `{ now, error: { Error, Cause? } }`. */
export class InvalidRoundFailureInputError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`round-failure: invalid input: ${detail}`, options);
    this.name = "InvalidRoundFailureInputError";
  }
}

export interface RoundFailureHandlerDeps {
  readonly records: RecordStore;
  readonly clock: () => string;
  /** The schedule's IANA time zone: the round is the ISO week of `now` there. */
  readonly timeZone: string;
  readonly log: Logger;
}

export function createRoundFailureHandler(deps: RoundFailureHandlerDeps): (event: unknown) => Promise<RoundFailureOutput> {
  return async (event) => {
    const parsed = RoundFailureInputSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidRoundFailureInputError(parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; "), {
        cause: parsed.error,
      });
    }
    try {
      return await recordRoundFailure(parsed.data.now, parsed.data.error, {
        records: deps.records,
        clock: deps.clock,
        timeZone: deps.timeZone,
        log: (message, fields) => deps.log.warn(message, fields),
      });
    } catch (error) {
      deps.log.error("recording the round failure failed", { code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  };
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function roundFailureDepsFromEnvironment(env: Record<string, string | undefined>): RoundFailureHandlerDeps {
  const config = parseEnvironment("round-failure", RoundFailureEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    clock: () => new Date().toISOString(),
    timeZone: config.SCHEDULE_TIMEZONE,
    log: jsonLogger({ lambda: "round-failure" }),
  };
}

export const handler = createRoundFailureHandler(roundFailureDepsFromEnvironment(process.env));
