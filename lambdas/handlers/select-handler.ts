/**
 * Select Lambda, `SelectStacks` in the weekly workflow: input `{ now }`, this week's stacks chosen once per
 * week (domain/selection-round.ts argues the round, its re-runs and its output).
 * Environment: contracts/env.ts SelectEnvSchema.
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
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";

export const SelectInputSchema = z.object({ now: z.iso.datetime({ offset: true }) });
export type SelectInput = z.infer<typeof SelectInputSchema>;

export interface SelectHandlerDeps {
  readonly records: RecordStore;
  readonly settings: RoundSettings;
  readonly log: Logger;
  /** Time-model versions and the prior: the round records the 80 % interval of its total time. */
  readonly timeModels?: TimeModelStore;
  readonly timePrior?: TimePrior;
}

export function createSelectHandler(deps: SelectHandlerDeps) {
  return lambdaHandler({ ...deps, name: "select", input: SelectInputSchema }, async (input): Promise<SelectOutput> => {
    const output = await runSelectionRound(input.now, {
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
  });
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function selectDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): SelectHandlerDeps {
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
    log: lambdaLogger("select", sink),
  };
}

export const handler = createSelectHandler(selectDepsFromEnvironment(process.env));
