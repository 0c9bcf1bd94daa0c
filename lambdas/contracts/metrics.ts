/**
 * CloudWatch metrics the Lambdas publish in the embedded metric format (EMF: one JSON log line each,
 * no PutMetricData call) and the alarms and dashboards in infra read: names defined once here.
 */

/** The namespace of an institution's metrics, e.g. `IchAl/demo`. */
export const metricsNamespace = (institution: string): string => `IchAl/${institution}`;

export const REFIT_METRICS = {
  /** 1 when a fitted time model was refused as implausible (the version in effect stays), else 0. */
  fitRefused: "TimeModelFitRefused",
  /** Completions the version in effect leaves out (out of range or outliers). */
  excludedCompletions: "TimeModelExcludedCompletions",
  /** Last round with completions: Σ actual / Σ predicted seconds. */
  roundActualOverPredicted: "RoundActualOverPredicted",
  /** 1 when that ratio is outside the configured calibration band, else 0. */
  roundOutsideBand: "RoundOutsideTimeBand",
  /** Share of rounds whose actual total fell inside the predicted 80 % interval. */
  roundsInsideInterval: "RoundsInsideTimeInterval",
} as const;
