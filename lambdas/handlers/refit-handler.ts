/**
 * Refit Lambda, `RefitTimeModel` in the weekly workflow: input `{ now }` (contracts/weekly-workflow.ts), what it
 * does and returns in domain/refit.ts, metrics contracts/metrics.ts REFIT_METRICS (two alarms watch them).
 * Environment: contracts/env.ts RefitEnvSchema.
 */

import type { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { parseEnvironment, RefitEnvSchema } from "../contracts/env.js";
import { REFIT_METRICS } from "../contracts/metrics.js";
import { WeeklyExecutionInputSchema } from "../contracts/weekly-workflow.js";
import type { RecordStore } from "../domain/record-store.js";
import { type RefitOutput, type RefitSettings, runRefit } from "../domain/refit.js";
import type { TimeModelRegistry } from "../domain/time-model-store.js";
import {
  type LineSink,
  type Logger,
  lambdaHandler,
  lambdaLogger,
  lambdaMetrics,
  type MetricsWriter,
  metricsWriter,
} from "./shared/lambda-handler.js";

export interface RefitHandlerDeps {
  readonly records: RecordStore;
  readonly timeModels: TimeModelRegistry;
  readonly log: Logger;
  /** Prior, range of credible times and calibration band (default: the documented ones). */
  readonly settings?: RefitSettings;
  /** Where the refit's metrics go (EMF); none when absent. */
  readonly count?: MetricsWriter;
  /** Flushed after each invocation. */
  readonly metrics?: Metrics;
}

export function createRefitHandler(deps: RefitHandlerDeps) {
  const parts = { ...deps, name: "refit", input: WeeklyExecutionInputSchema };
  return lambdaHandler(parts, async (input): Promise<RefitOutput> => {
    const output = await runRefit(input.now, {
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
    deps.count?.({
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
  });
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function refitDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): RefitHandlerDeps {
  const config = parseEnvironment("refit", RefitEnvSchema, env);
  const dynamo = new DynamoDBClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {});
  const metrics = lambdaMetrics(config.METRICS_NAMESPACE, sink);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    log: lambdaLogger("refit", sink),
    settings: { prior: config.TIME_MODEL_PRIOR, maxActiveSeconds: config.MAX_ACTIVE_SECONDS, calibrationBand: config.CALIBRATION_BAND },
    metrics,
    count: metricsWriter(metrics),
  };
}

export const handler = createRefitHandler(refitDepsFromEnvironment(process.env));
