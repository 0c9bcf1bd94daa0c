/**
 * Refit Lambda: `RefitTimeModel`, the first Task of the weekly Step Functions workflow (LambdaInvoke
 * with payloadResponseOnly; its result goes to `$.refit`).
 *
 * Input: `{ "now": "<ISO timestamp>" }` (contracts/weekly-workflow.ts WeeklyExecutionInputSchema),
 * parsed with zod (InvalidRefitInputError). What it does and returns: domain/refit.ts (RefitOutput).
 * Metrics (EMF, contracts/metrics.ts REFIT_METRICS): a refused fit, excluded completions, the last
 * round's actual / predicted and whether it left the calibration band — two alarms watch them.
 * Errors propagate (named) so the state machine's Retry / Catch see them; logs carry ids and counts only.
 * Environment: contracts/env.ts RefitEnvSchema, parsed at cold start (EnvironmentError).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import middy from "@middy/core";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { parseEnvironment, RefitEnvSchema } from "../contracts/env.js";
import { REFIT_METRICS } from "../contracts/metrics.js";
import { WeeklyExecutionInputSchema } from "../contracts/weekly-workflow.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RefitOutput, type RefitSettings, runRefit } from "../domain/refit.js";
import type { TimeModelRegistry } from "../domain/time-model-store.js";
import { jsonLogger, type Logger } from "./shared/logger.js";
import { emfWriter, type MetricsWriter } from "./shared/metrics.js";

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
  /** Prior, range of credible times and calibration band (default: the documented ones). */
  readonly settings?: RefitSettings;
  /** Where the refit's metrics go (EMF); none when absent. */
  readonly metrics?: MetricsWriter;
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
        ...(deps.settings ? { settings: deps.settings } : {}),
        log: (message, fields) => deps.log.info(message, fields),
      });
      const summary = {
        version: output.version,
        fitted: output.fitted,
        n: output.n,
        excluded: output.excluded.length,
        repredicted: output.repredicted,
        lastRoundId: output.lastRound?.roundId ?? null,
        lastRoundRatio: output.lastRound?.ratio ?? null,
        lastRoundWithinBand: output.lastRound?.withinBand ?? null,
      };
      if (output.refused)
        deps.log.error("implausible time model refused; the version in effect stays", { ...summary, refused: output.refused });
      else if (output.lastRound && !output.lastRound.withinBand)
        deps.log.warn("last round's actual hours left the calibration band", summary);
      else deps.log.info("refit done", summary);
      deps.metrics?.({
        [REFIT_METRICS.fitRefused]: { value: output.refused ? 1 : 0, unit: "Count" },
        [REFIT_METRICS.excludedCompletions]: { value: output.excluded.length, unit: "Count" },
        ...(output.lastRound
          ? {
              [REFIT_METRICS.roundActualOverPredicted]: { value: output.lastRound.ratio, unit: "None" },
              [REFIT_METRICS.roundOutsideBand]: { value: output.lastRound.withinBand ? 0 : 1, unit: "Count" },
              [REFIT_METRICS.roundPredictedHours]: { value: output.lastRound.predictedSeconds / 3600, unit: "None" },
              [REFIT_METRICS.roundActualHours]: { value: output.lastRound.actualSeconds / 3600, unit: "None" },
            }
          : {}),
        ...(output.calibration.share !== null
          ? { [REFIT_METRICS.roundsInsideInterval]: { value: 100 * output.calibration.share, unit: "Percent" } }
          : {}),
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
    settings: { prior: config.TIME_MODEL_PRIOR, maxActiveSeconds: config.MAX_ACTIVE_SECONDS, calibrationBand: config.CALIBRATION_BAND },
    metrics: emfWriter(config.METRICS_NAMESPACE),
  };
}

export const handler = createRefitHandler(refitDepsFromEnvironment(process.env));
