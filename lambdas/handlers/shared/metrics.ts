/**
 * CloudWatch metrics in the embedded metric format (EMF): one JSON log line that CloudWatch Logs turns
 * into metrics, no PutMetricData call or IAM permission. Names and namespace: contracts/metrics.ts.
 */
import { CODE_DIMENSION, type IntakeCounter } from "../../contracts/metrics.js";

export type MetricUnit = "Count" | "None" | "Seconds" | "Percent";

export type MetricsWriter = (
  metrics: Readonly<Record<string, { readonly value: number; readonly unit: MetricUnit }>>,
  dimensions?: Readonly<Record<string, string>>,
) => void;

/**
 * Writes each call as one EMF line (non-finite values are left out). With `dimensions`, the metrics are
 * published under exactly that dimension set (e.g. `{ Code: "PHI_PRESENT" }`); without, under none.
 */
export function emfWriter(
  namespace: string,
  now: () => number = Date.now,
  write: (line: string) => void = (line) => console.log(line),
): MetricsWriter {
  return (metrics, dimensions = {}) => {
    const entries = Object.entries(metrics).filter(([, m]) => Number.isFinite(m.value));
    if (entries.length === 0) return;
    write(
      JSON.stringify({
        _aws: {
          Timestamp: now(),
          CloudWatchMetrics: [
            { Namespace: namespace, Dimensions: [Object.keys(dimensions)], Metrics: entries.map(([Name, m]) => ({ Name, Unit: m.unit })) },
          ],
        },
        ...dimensions,
        ...Object.fromEntries(entries.map(([name, m]) => [name, m.value])),
      }),
    );
  };
}

/** The intake cores' counter (contracts/metrics.ts IntakeCounter) as EMF lines: a code becomes the `Code` dimension. */
export function intakeCounter(writer: MetricsWriter): IntakeCounter {
  return (metric, value = 1, code) => writer({ [metric]: { value, unit: "Count" } }, code ? { [CODE_DIMENSION]: code } : {});
}
