/**
 * Refit Lambda: `RefitTimeModel`, the first Task of the weekly Step Functions workflow (LambdaInvoke
 * with payloadResponseOnly; its result goes to `$.refit`).
 *
 * Input: `{ "now": "<ISO timestamp>" }` (contracts/weekly-workflow.ts WeeklyExecutionInputSchema),
 * parsed with zod (InvalidRefitInputError). Fits α, β, γ on the labeled stacks, stores a new TIMEMODEL
 * version when the number of completions changed (conditional put), re-predicts T for pending stacks
 * on older versions (conditional same-status transitions) and compares last round's predicted and
 * actual seconds (domain/refit.ts).
 * Output: `{ version, fitted, n, alpha, beta, gamma, r2, residualSd, repredicted,
 * lastRound: { roundId, stacks, predictedSeconds, actualSeconds, ratio } | null, fitError? }`.
 * Errors propagate (named) so the state machine's Retry / Catch see them; logs carry ids and counts only.
 * Environment: contracts/env.ts RefitEnvSchema, parsed at cold start (EnvironmentError).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import middy from "@middy/core";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { parseEnvironment, RefitEnvSchema } from "../contracts/env.js";
import { WeeklyExecutionInputSchema } from "../contracts/weekly-workflow.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RefitOutput, runRefit } from "../domain/refit.js";
import type { TimeModelRegistry } from "../domain/time-model-store.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

/** The state input is not `{ now: ISO timestamp }`. */
export class InvalidRefitInputError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`refit: invalid input: ${detail}`, options);
    this.name = "InvalidRefitInputError";
  }
}

export interface RefitHandlerDeps {
  readonly records: RecordStore;
  readonly timeModels: TimeModelRegistry;
  readonly log: Logger;
}

export function createRefitHandler(deps: RefitHandlerDeps) {
  return middy<unknown, RefitOutput>().handler(async (event) => {
    const parsed = WeeklyExecutionInputSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidRefitInputError(parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; "), {
        cause: parsed.error,
      });
    }
    try {
      const output = await runRefit(parsed.data.now, {
        records: deps.records,
        timeModels: deps.timeModels,
        log: (message, fields) => deps.log.info(message, fields),
      });
      deps.log.info("refit done", {
        version: output.version,
        fitted: output.fitted,
        n: output.n,
        repredicted: output.repredicted,
        lastRoundId: output.lastRound?.roundId ?? null,
        lastRoundRatio: output.lastRound?.ratio ?? null,
      });
      return output;
    } catch (error) {
      deps.log.error("refit failed", { code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  });
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function refitDepsFromEnvironment(env: Record<string, string | undefined>): RefitHandlerDeps {
  const config = parseEnvironment("refit", RefitEnvSchema, env);
  const dynamo = new DynamoDBClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {});
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    log: jsonLogger({ lambda: "refit" }),
  };
}

export const handler = createRefitHandler(refitDepsFromEnvironment(process.env));
