/**
 * SQS batch helpers for handlers behind an event source mapping with ReportBatchItemFailures:
 * a middy middleware that parses the event at the edge, and `processSqsBatch`, which runs each
 * message independently and names only the failed ones so SQS redelivers just those.
 */
import type { MiddlewareObj } from "@middy/core";
import { z } from "zod";
import { type SqsBatchResponse, type SqsEvent, SqsEventSchema, type SqsMessage } from "../../contracts/events.js";
import type { Logger } from "./logger.js";

/** The Lambda event is not an SQS batch at all (a wiring error): the whole invocation fails. */
export class InvalidSqsEventError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`event is not an SQS batch: ${detail}`, options);
    this.name = "InvalidSqsEventError";
  }
}

/** Replaces `request.event` with the parsed SqsEvent, or throws InvalidSqsEventError. */
export function sqsEventParser(): MiddlewareObj<unknown, SqsBatchResponse> {
  return {
    name: "sqsEventParser",
    before: (request) => {
      const parsed = SqsEventSchema.safeParse(request.event);
      if (!parsed.success) throw new InvalidSqsEventError(z.prettifyError(parsed.error), { cause: parsed.error });
      request.event = parsed.data;
    },
  };
}

/**
 * Runs `process` for every message (concurrently; a batch is small) and reports each one that threw.
 * `permanent(error)` only changes how the failure is logged: permanent failures (malformed messages)
 * are reported too, so they reach the DLQ after maxReceiveCount instead of vanishing.
 */
export async function processSqsBatch(
  event: SqsEvent,
  process: (message: SqsMessage) => Promise<unknown>,
  options: { log: Logger; permanent: (error: unknown) => boolean },
): Promise<SqsBatchResponse> {
  const results = await Promise.allSettled(event.Records.map((message) => process(message)));
  const batchItemFailures: SqsBatchResponse["batchItemFailures"] = [];
  results.forEach((result, i) => {
    const message = event.Records[i];
    if (result.status === "fulfilled" || !message) return;
    const error = result.reason;
    const fields = {
      messageId: message.messageId,
      receiveCount: message.attributes?.ApproximateReceiveCount,
      error: error instanceof Error ? error.name : typeof error,
      detail: error instanceof Error ? error.message : String(error),
    };
    if (options.permanent(error)) options.log.warn("message cannot be processed; it goes to the DLQ after maxReceiveCount", fields);
    else options.log.error("message failed; SQS will redeliver it", fields);
    batchItemFailures.push({ itemIdentifier: message.messageId });
  });
  options.log.info("batch done", { messages: event.Records.length, failed: batchItemFailures.length });
  return { batchItemFailures };
}
