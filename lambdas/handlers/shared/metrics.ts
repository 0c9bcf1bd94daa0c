/**
 * CloudWatch metrics in the embedded metric format (EMF): one JSON log line that CloudWatch Logs turns
 * into metrics, no PutMetricData call or IAM permission. Names and namespace: contracts/metrics.ts.
 */
export type MetricUnit = "Count" | "None" | "Seconds" | "Percent";

export type MetricsWriter = (metrics: Readonly<Record<string, { readonly value: number; readonly unit: MetricUnit }>>) => void;

/** Writes each call as one EMF line (metrics without dimensions; non-finite values are left out). */
export function emfWriter(
  namespace: string,
  now: () => number = Date.now,
  write: (line: string) => void = (line) => console.log(line),
): MetricsWriter {
  return (metrics) => {
    const entries = Object.entries(metrics).filter(([, m]) => Number.isFinite(m.value));
    if (entries.length === 0) return;
    write(
      JSON.stringify({
        _aws: {
          Timestamp: now(),
          CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [[]], Metrics: entries.map(([Name, m]) => ({ Name, Unit: m.unit })) }],
        },
        ...Object.fromEntries(entries.map(([name, m]) => [name, m.value])),
      }),
    );
  };
}
