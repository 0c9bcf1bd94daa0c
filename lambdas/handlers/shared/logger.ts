/** One JSON line per log entry (CloudWatch Logs Insights can query the fields). Callers pass ids, never identifiers. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(base: Record<string, unknown>, write: (line: string) => void = (line) => console.log(line)): Logger {
  const entry =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) =>
      write(JSON.stringify({ level, message, ...base, ...fields }));
  return { info: entry("INFO"), warn: entry("WARN"), error: entry("ERROR") };
}
