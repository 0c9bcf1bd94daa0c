/**
 * The one way a Lambda here is written: Powertools for AWS Lambda around the step it runs — the logger
 * (request id, cold start, sampling), the parser (the event checked against its zod schema from contracts/),
 * metrics in EMF, and batch processing for SQS partial failures. A handler file holds its composition root
 * and the call into domain/; what each step does is argued there.
 */
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import middy, { type MiddlewareObj } from "@middy/core";
import type { z } from "zod";
import { type SqsBatchResponse, SqsEventSchema, type SqsMessage } from "../../contracts/events.js";
import { CODE_DIMENSION, type IntakeCounter, METRICS_SERVICE } from "../../contracts/metrics.js";

/** What handlers and domain steps log through: ids, counts and codes, never identifiers or object keys. */
export interface Logger {
  info(message: string, ...fields: Record<string, unknown>[]): void;
  warn(message: string, ...fields: Record<string, unknown>[]): void;
  error(message: string, ...fields: Record<string, unknown>[]): void;
  /** Fields on every later line of this invocation (Powertools' logger; removed when the invocation ends). */
  appendKeys?(fields: Record<string, unknown>): void;
}

/** Where a log or EMF line goes instead of stdout (the local run's log file, a test). */
export type LineSink = (line: string) => void;

/** Powertools' logger, its lines written to `sink` when one is given (else to stdout, as in Lambda). */
class LambdaLogger extends PowertoolsLogger {
  constructor(
    lambda: string,
    private readonly sink?: LineSink,
  ) {
    super({ serviceName: METRICS_SERVICE, persistentKeys: { lambda } });
  }

  protected override printLog(logLevel: number, log: Parameters<PowertoolsLogger["printLog"]>[1]): void {
    if (!this.sink) {
      super.printLog(logLevel, log);
      return;
    }
    log.prepareForPrint();
    this.sink(JSON.stringify(log.getAttributes(), this.getJsonReplacer()));
  }
}

/**
 * A Lambda's logger: one JSON line per entry with Powertools' fields (level, timestamp, service, and from the
 * invocation cold_start, function_name, function_request_id, xray_trace_id) plus `lambda`. Debug entries are
 * sampled at POWERTOOLS_LOGGER_SAMPLE_RATE, the level is POWERTOOLS_LOG_LEVEL (infra/lambda-function.ts sets both).
 */
export function lambdaLogger(lambda: string, sink?: LineSink): PowertoolsLogger {
  return new LambdaLogger(lambda, sink);
}

export type MetricUnit = "Count" | "None" | "Seconds" | "Percent";

/** Adds metric values; with `dimensions` they are published under exactly those (plus `service`). */
export type MetricsWriter = (
  metrics: Readonly<Record<string, { readonly value: number; readonly unit: MetricUnit }>>,
  dimensions?: Readonly<Record<string, string>>,
) => void;

/** Powertools' metrics (EMF), written to `sink` when one is given; a single metric keeps the sink. */
class LambdaMetrics extends Metrics {
  constructor(
    private readonly metricsNamespace: string,
    private readonly sink?: LineSink,
    single = false,
  ) {
    super({ namespace: metricsNamespace, serviceName: METRICS_SERVICE, singleMetric: single });
  }

  override publishStoredMetrics(): this {
    if (!this.sink) return super.publishStoredMetrics();
    if (this.hasStoredMetrics()) this.sink(JSON.stringify(this.serializeMetrics()));
    this.clearMetrics();
    this.clearDimensions();
    this.clearMetadata();
    return this;
  }

  override singleMetric(): Metrics {
    return new LambdaMetrics(this.metricsNamespace, this.sink, true);
  }
}

/** A Lambda's metrics (namespace: contracts/metrics.ts metricsNamespace), flushed once per invocation by the bundle. */
export function lambdaMetrics(namespace: string, sink?: LineSink): Metrics {
  return new LambdaMetrics(namespace, sink);
}

/** The MetricsWriter port over Powertools metrics. Non-finite values are left out. */
export function metricsWriter(metrics: Metrics): MetricsWriter {
  return (values, dimensions = {}) => {
    const finite = Object.entries(values).filter(([, m]) => Number.isFinite(m.value));
    if (finite.length === 0) return;
    if (Object.keys(dimensions).length === 0) {
      for (const [name, m] of finite) metrics.addMetric(name, m.unit, m.value);
      return;
    }
    for (const [name, m] of finite) {
      // A single metric is written at once, under its own dimensions, not under the invocation's.
      const single = metrics.singleMetric();
      single.addDimensions({ ...dimensions });
      single.addMetric(name, m.unit, m.value);
    }
  };
}

/** The intake cores' counter (contracts/metrics.ts IntakeCounter): a code becomes the `Code` dimension. */
export function intakeCounter(writer: MetricsWriter): IntakeCounter {
  return (metric, value = 1, code) => writer({ [metric]: { value, unit: "Count" } }, code ? { [CODE_DIMENSION]: code } : {});
}

/** The event does not match the handler's schema: the message names each bad field, never its value. */
export class InvalidInputError extends Error {
  constructor(
    readonly lambda: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${lambda}: invalid input: ${detail}`, options);
    this.name = "InvalidInputError";
  }
}

interface HandlerParts {
  /** The Lambda's short name (e.g. `refit`): in the failure log line and InvalidInputError. */
  readonly name: string;
  readonly log: Logger;
  /** Flushed after every invocation, failed ones too. */
  readonly metrics?: Metrics;
  /** The answer to any failure (an API's 500); without it the failure is rethrown. Either way it is logged. */
  readonly answerFailure?: (error: unknown) => unknown;
}

type StandardIssue = { message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> };

function describeIssues(issues: readonly StandardIssue[]): string {
  return issues
    .map((issue) => {
      const path = (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".");
      return `${path || "(input)"}: ${issue.message}`;
    })
    .join("; ");
}

/** Powertools' parser (safeParse) turned into InvalidInputError naming the fields. */
function inputParser(name: string, schema: z.ZodType): MiddlewareObj[] {
  const toInput: MiddlewareObj = {
    before: (request) => {
      const result = request.event as { success: boolean; data?: unknown; error?: { cause?: unknown } };
      if (result.success) {
        request.event = result.data;
        return;
      }
      const issues = Array.isArray(result.error?.cause) ? (result.error.cause as StandardIssue[]) : [];
      throw new InvalidInputError(name, describeIssues(issues) || "does not match its schema", { cause: result.error });
    },
  };
  return [parser({ schema, safeParse: true }) as MiddlewareObj, toInput];
}

/** Every failure logged by error name only (messages may carry input) and rethrown for Retry / Catch or SQS. */
function failureLog(name: string, log: Logger): MiddlewareObj {
  return {
    onError: (request) => {
      const error = request.error;
      log.error(`${name} failed`, { code: error instanceof Error ? error.name : "Error" });
    },
  };
}

/** Metrics buffered during the invocation written as one EMF line at its end (nothing when none were added). */
function metricsFlush(metrics: Metrics): MiddlewareObj {
  const flush = () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
}

function bundle(parts: HandlerParts, schema?: z.ZodType) {
  const chain = middy();
  const answer = parts.answerFailure;
  // Registered first, so its onError runs last: after the failure is logged and the metrics flushed.
  if (answer)
    chain.use({
      onError: (request) => {
        request.response = answer(request.error);
      },
    });
  if (parts.log instanceof PowertoolsLogger) chain.use(injectLambdaContext(parts.log, { resetKeys: true }));
  if (parts.metrics) chain.use(metricsFlush(parts.metrics));
  chain.use(failureLog(parts.name, parts.log));
  if (schema) for (const middleware of inputParser(parts.name, schema)) chain.use(middleware);
  return chain;
}

/**
 * A Lambda whose event is checked against `schema` (a Step Functions Task, a scheduler target, an operator's
 * invoke) and handed to `run`. Without a schema the event is passed as it is.
 */
export function lambdaHandler<S extends z.ZodType, R>(
  parts: HandlerParts & { readonly input: S },
  run: (input: z.infer<S>) => Promise<R>,
): (event: unknown, context?: unknown) => Promise<R>;
export function lambdaHandler<R>(
  parts: HandlerParts,
  run: (event: unknown) => Promise<R>,
): (event: unknown, context?: unknown) => Promise<R>;
export function lambdaHandler(parts: HandlerParts & { readonly input?: z.ZodType }, run: (input: unknown) => Promise<unknown>) {
  const handler = bundle(parts, parts.input).handler((event: unknown) => run(event));
  return (event: unknown, context?: unknown) => handler(event, (context ?? {}) as never);
}

/**
 * A Lambda behind an SQS event source mapping with ReportBatchItemFailures: each message runs alone (in
 * parallel) through Powertools' batch processor and only the failed ones are named, so SQS redelivers just
 * those. `permanent(error)` only changes how a failure is logged: permanent ones (malformed messages) are
 * reported too, so they reach the DLQ after maxReceiveCount instead of vanishing.
 */
export function sqsBatchHandler(
  parts: HandlerParts & { readonly permanent: (error: unknown) => boolean },
  process: (message: SqsMessage) => Promise<unknown>,
): (event: unknown, context?: unknown) => Promise<SqsBatchResponse> {
  const record = async (message: SqsMessage) => {
    try {
      return await process(message);
    } catch (error) {
      const fields = {
        messageId: message.messageId,
        receiveCount: message.attributes?.ApproximateReceiveCount,
        error: error instanceof Error ? error.name : typeof error,
        detail: error instanceof Error ? error.message : String(error),
      };
      if (parts.permanent(error)) parts.log.warn("message cannot be processed; it goes to the DLQ after maxReceiveCount", fields);
      else parts.log.error("message failed; SQS will redeliver it", fields);
      throw error;
    }
  };
  const handler = bundle(parts, SqsEventSchema).handler(async (event: unknown) => {
    const batch = event as { Records: SqsMessage[] };
    const processor = new BatchProcessor(EventType.SQS);
    const response = (await processPartialResponse(batch as never, record as never, processor, {
      throwOnFullBatchFailure: false,
    })) as SqsBatchResponse;
    parts.log.info("batch done", { messages: batch.Records.length, failed: response.batchItemFailures.length });
    return response;
  });
  return (event: unknown, context?: unknown) => handler(event, (context ?? {}) as never);
}
