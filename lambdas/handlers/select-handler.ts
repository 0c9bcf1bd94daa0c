/**
 * Select Lambda: the Task of the weekly Step Functions workflow that chooses this week's stacks
 * (LambdaInvoke with payloadResponseOnly).
 *
 * Input: `{ "now": "<ISO timestamp>" }`, the execution's scheduled time (its input `$.now`), parsed
 * with zod (InvalidSelectInputError). The round is `select-<ISO week of now>`, the week read in the
 * schedule's time zone (SCHEDULE_TIMEZONE); it runs exactly once per
 * week and is finished by a re-run after a crash (domain/selection-round.ts). A repeated trigger in the
 * same week selects nothing and returns the stored round with `repeated: true`, so the next states send
 * no second e-mail.
 * Output: `{ roundId, repeated, selected: [{ stackId, predictedSeconds, stackUncertainty, stackScore }],
 * totalPredictedSeconds, budgetSeconds, poolSize }`.
 * Errors propagate (named) so the state machine's Retry / Catch see them; logs carry ids and counts only.
 * Environment: contracts/env.ts SelectEnvSchema, parsed at cold start (EnvironmentError).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { z } from "zod";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { parseEnvironment, SelectEnvSchema } from "../contracts/env.js";
import type { TimePrior } from "../domain/labeling-time-model.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RoundSettings, runSelectionRound, type SelectOutput } from "../domain/selection-round.js";
import type { TimeModelStore } from "../domain/time-model-store.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export const SelectInputSchema = z.object({ now: z.iso.datetime({ offset: true }) });
export type SelectInput = z.infer<typeof SelectInputSchema>;

/** The state input is not `{ now: ISO timestamp }`. */
export class InvalidSelectInputError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`select: invalid input: ${detail}`, options);
    this.name = "InvalidSelectInputError";
  }
}

export interface SelectHandlerDeps {
  readonly records: RecordStore;
  readonly settings: RoundSettings;
  readonly log: Logger;
  /** Time-model versions and the prior: the round records the 80 % interval of its total time. */
  readonly timeModels?: TimeModelStore;
  readonly timePrior?: TimePrior;
}

export function createSelectHandler(deps: SelectHandlerDeps): (event: unknown) => Promise<SelectOutput> {
  return async (event) => {
    const parsed = SelectInputSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidSelectInputError(parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; "), {
        cause: parsed.error,
      });
    }
    try {
      const output = await runSelectionRound(parsed.data.now, {
        records: deps.records,
        settings: deps.settings,
        ...(deps.timeModels ? { timeModels: deps.timeModels } : {}),
        ...(deps.timePrior ? { timePrior: deps.timePrior } : {}),
        log: (message, fields) => deps.log.info(message, fields),
      });
      deps.log.info("select done", {
        roundId: output.roundId,
        repeated: output.repeated,
        selected: output.selected.length,
        poolSize: output.poolSize,
      });
      return output;
    } catch (error) {
      deps.log.error("select failed", { code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  };
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function selectDepsFromEnvironment(env: Record<string, string | undefined>): SelectHandlerDeps {
  const config = parseEnvironment("select", SelectEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    timePrior: config.TIME_MODEL_PRIOR,
    settings: {
      budgetSeconds: config.WEEKLY_BUDGET_HOURS * 3600,
      resolutionSeconds: config.RESOLUTION_SECONDS,
      timeZone: config.SCHEDULE_TIMEZONE,
    },
    log: jsonLogger({ lambda: "select" }),
  };
}

export const handler = createSelectHandler(selectDepsFromEnvironment(process.env));
