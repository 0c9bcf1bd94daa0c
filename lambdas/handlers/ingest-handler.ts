/**
 * Ingest Lambda: S3 (uploads/) → SQS → here → one study record + one asynchronous scoring request per object
 * version. What happens to one upload, and why it happens exactly once (idempotency key, invoke claim, the
 * crash windows, quarantine of unscorable objects), is argued in domain/ingest.ts; this file only wires it.
 *
 * Event: an SQS batch (ReportBatchItemFailures) of S3 event notifications, parsed with zod at the edge
 * (contracts/events.ts). Each message succeeds or fails alone: transient faults are retried by SQS; on the
 * last delivery (ApproximateReceiveCount ≥ MAX_RECEIVE_COUNT) a failed invoke records the study `failed` and
 * the message still fails into the DLQ, where malformed messages also end — never dropped, never retried
 * forever. Every request carries the institution's K, thresholds and allowed private creators.
 * Logs carry studyId, messageId and codes, never object keys; metrics per contracts/metrics.ts INTAKE_METRICS.
 * Environment: contracts/env.ts IngestEnvSchema, parsed at cold start (EnvironmentError).
 */
import { randomUUID } from "node:crypto";
import middy from "@middy/core";
import { IngestEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { SqsBatchResponse, SqsEvent, SqsMessage } from "../contracts/events.js";
import { type Delivery, type IngestDeps, ingestMessage, MalformedMessageError } from "../domain/ingest.js";
import { jsonLogger, type Logger } from "./shared/logger.js";
import { scoringRequestDeps } from "./shared/scoring-request.js";
import { processSqsBatch, sqsEventParser } from "./shared/sqs-batch.js";

export type IngestHandlerDeps = Omit<IngestDeps, "log"> & { log: Logger };

export function createIngestHandler(deps: IngestHandlerDeps) {
  return middy<unknown, SqsBatchResponse>()
    .use(sqsEventParser())
    .handler((event) =>
      processSqsBatch(event as SqsEvent, (message) => ingestMessage(message.body, deps, deliveryOf(message)), {
        log: deps.log,
        permanent: (error) => error instanceof MalformedMessageError,
      }),
    );
}

/** What SQS says about this delivery (a missing or unreadable count is unknown: never treated as the last). */
function deliveryOf(message: SqsMessage): Delivery {
  const count = Number(message.attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count >= 1 ? { receiveCount: count } : {};
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function ingestDepsFromEnvironment(env: Record<string, string | undefined>): IngestHandlerDeps {
  const config = parseEnvironment("ingest", IngestEnvSchema, env);
  const shared = scoringRequestDeps(config);
  return {
    ...shared,
    config: {
      ...shared.config,
      maxObjectBytes: config.MAX_OBJECT_BYTES,
      claimSeconds: config.INVOKE_CLAIM_SECONDS,
      maxReceiveCount: config.MAX_RECEIVE_COUNT,
    },
    now: () => new Date().toISOString(),
    newToken: randomUUID,
    log: jsonLogger({ lambda: "ingest" }),
  };
}

export const handler = createIngestHandler(ingestDepsFromEnvironment(process.env));
