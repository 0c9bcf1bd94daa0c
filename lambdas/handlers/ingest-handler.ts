/**
 * Ingest Lambda: S3 (uploads/) → SQS → here → one study record + one asynchronous scoring request.
 *
 * Event: an SQS batch (ReportBatchItemFailures) whose bodies are S3 event notifications, parsed with
 * zod at the edge (contracts/events.ts). S3's `s3:TestEvent` is acknowledged and ignored; only
 * `ObjectCreated:*` records under `uploads/` are ingested; keys are URL-decoded (`+` is a space).
 *
 * Idempotency: studyId = sha256(bucket, decoded key, versionId)[:32]; events without versionId are
 * refused (the bucket is versioned). Unscorable objects (empty, over MAX_OBJECT_BYTES, not zip / dcm /
 * nii / nii.gz / npz) are moved to quarantine — copied version-exactly to `quarantine/<code>/<studyId>/…`,
 * recorded `rejected` with that code and the copy's key, then that version deleted from `uploads/`
 * (EMPTY_OBJECT, OBJECT_TOO_LARGE, UNSUPPORTED_TYPE; OBJECT_NOT_FOUND, nothing to move; domain/quarantine.ts).
 * Scorable ones: conditional create → conditional invoke claim → scoring request JSON at
 * `scoring-requests/<studyId>.json` → invokeAsync → `scoring` recorded under the claim. The same
 * event delivered N times, in sequence or concurrently, yields one record and one invocation; a
 * crash between the create and the invoke is completed by the redelivery; concurrent duplicates that
 * meet a live invoke claim are handed back to SQS (never acknowledged before someone has invoked) and
 * are acknowledged as duplicates on redelivery. INVOKE_CLAIM_SECONDS must lie between the function
 * timeout and the queue's visibility timeout. The full argument, and the one remaining at-least-once
 * window (crash after invokeAsync returned, before `scoring` was written), is in domain/ingest.ts.
 *
 * Scoring parameters: every scoring request carries the institution config's K and heatmap thresholds
 * (SCORING_TOP_K, SCORING_THRESHOLDS), so the container uses those rather than its model manifest's, and
 * its allowed private creators (PRIVATE_CREATOR_ALLOW_LIST) when there are any.
 *
 * Failures: each message succeeds or fails alone (`batchItemFailures`). Transient ones (AWS errors,
 * endpoint throttling, another delivery mid-invocation) are retried by SQS; a failed invoke leaves
 * `lastError` on the record. On the last delivery (the message's ApproximateReceiveCount ≥
 * MAX_RECEIVE_COUNT, the queue's redrive limit) a failed invoke records the study `failed` with that
 * `lastError` and is still reported, so the message lands in the DLQ; a re-drive retries the study.
 * Malformed messages (not an S3 event, no versionId, bad key encoding,
 * foreign bucket) are logged with a reason code and also reported failed: they cannot succeed, so
 * they land in the DLQ after the queue's maxReceiveCount for an operator to inspect — never dropped,
 * never retried forever.
 *
 * Logs carry studyId, messageId and codes, never object keys (real keys may hold patient names).
 * Environment: contracts/env.ts IngestEnvSchema, parsed at cold start (EnvironmentError).
 */
import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import middy from "@middy/core";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { S3StudyObjects } from "../adapters/s3-study-objects.js";
import { SageMakerScoringEndpoint } from "../adapters/sagemaker-scoring-endpoint.js";
import { IngestEnvSchema, parseEnvironment } from "../contracts/env.js";
import type { SqsBatchResponse, SqsEvent, SqsMessage } from "../contracts/events.js";
import { type Delivery, type IngestDeps, ingestMessage, MalformedMessageError } from "../domain/ingest.js";
import { jsonLogger, type Logger } from "./shared/logger.js";
import { emfWriter, intakeCounter } from "./shared/metrics.js";
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
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    records: new DynamoRecordStore(new DynamoDBClient(endpoint), config.TABLE_NAME),
    objects: new S3StudyObjects(new S3Client({ ...endpoint, forcePathStyle: Boolean(config.AWS_ENDPOINT_URL) })),
    scoring: new SageMakerScoringEndpoint(new SageMakerRuntimeClient(endpoint), config.SCORING_ENDPOINT_NAME),
    config: {
      studiesBucket: config.STUDIES_BUCKET,
      maxObjectBytes: config.MAX_OBJECT_BYTES,
      claimSeconds: config.INVOKE_CLAIM_SECONDS,
      maxReceiveCount: config.MAX_RECEIVE_COUNT,
      topK: config.SCORING_TOP_K,
      thresholds: config.SCORING_THRESHOLDS,
      allowedPrivateCreators: config.PRIVATE_CREATOR_ALLOW_LIST,
    },
    now: () => new Date().toISOString(),
    newToken: randomUUID,
    log: jsonLogger({ lambda: "ingest" }),
    count: intakeCounter(emfWriter(config.METRICS_NAMESPACE)),
  };
}

export const handler = createIngestHandler(ingestDepsFromEnvironment(process.env));
