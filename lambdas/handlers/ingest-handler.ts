/**
 * Ingest Lambda: S3 (uploads/) → SQS → here → one study record + one asynchronous scoring request per object
 * version. Why each upload is handled exactly once, and what is quarantined: domain/ingest.ts.
 * Event: an SQS batch of S3 notifications (contracts/events.ts); metrics contracts/metrics.ts INTAKE_METRICS.
 * Environment: contracts/env.ts IngestEnvSchema.
 */
import { randomUUID } from "node:crypto";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { IngestEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { SqsMessage } from "../contracts/events.js";
import { type Delivery, type IngestDeps, ingestMessage, MalformedMessageError } from "../domain/ingest.js";
import { type LineSink, type Logger, lambdaLogger, sqsBatchHandler } from "./shared/lambda-handler.js";
import { scoringRequestDeps } from "./shared/scoring-request.js";

export type IngestHandlerDeps = Omit<IngestDeps, "log"> & { log: Logger; metrics?: Metrics };

export function createIngestHandler(deps: IngestHandlerDeps) {
  const parts = { ...deps, name: "ingest" };
  return sqsBatchHandler({ ...parts, permanent: (error) => error instanceof MalformedMessageError }, (message) =>
    ingestMessage(message.body, deps, deliveryOf(message)),
  );
}

/** What SQS says about this delivery (a missing or unreadable count is unknown: never treated as the last). */
function deliveryOf(message: SqsMessage): Delivery {
  const count = Number(message.attributes?.ApproximateReceiveCount);
  return Number.isInteger(count) && count >= 1 ? { receiveCount: count } : {};
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function ingestDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): IngestHandlerDeps {
  const config = parseEnvironment("ingest", IngestEnvSchema, env);
  const shared = scoringRequestDeps(config, sink);
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
    log: lambdaLogger("ingest", sink),
  };
}

export const handler = createIngestHandler(ingestDepsFromEnvironment(process.env));
