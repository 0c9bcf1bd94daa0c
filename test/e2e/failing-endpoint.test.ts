/**
 * Reliability (../shared/reliability.md): a failing scoring endpoint → the ingest queue
 * retries, then the message reaches the DLQ, and the study's record ends `failed` saying what failed
 * (marked on the last delivery) — while a good study in the same batches is scored once and nothing else
 * is lost. Re-driving the dead letter once the endpoint is back invokes the study. Real ingest handler,
 * real SDK v3 adapters, moto server's SQS redrive policy, the local SQS event source
 * (scripts/lib/sqs-event-source.ts).
 */
import { randomUUID } from "node:crypto";
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { S3StudyObjects } from "../../lambdas/adapters/s3-study-objects.js";
import type { ScoringRequest, ScoringResult } from "../../lambdas/contracts/scoring.js";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import type { AsyncInvocation, ScoringEndpoint } from "../../lambdas/domain/scoring-endpoint.js";
import { createIngestHandler } from "../../lambdas/handlers/ingest-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { LOCAL_AWS, type MotoServer, startMotoServer } from "../../scripts/lib/moto-server.js";
import { SqsEventSource } from "../../scripts/lib/sqs-event-source.js";
import { s3EventBody } from "../support/in-memory-ports.js";

/** An endpoint that is down for one study (every call throws a 503-like error) until `recover()`, and fine for the rest. */
class PartlyFailingEndpoint implements ScoringEndpoint {
  readonly accepted: string[] = [];
  readonly refused: string[] = [];
  constructor(private failFor: string | undefined) {}
  recover(): void {
    this.failFor = undefined;
  }
  invoke(_request: ScoringRequest): Promise<ScoringResult> {
    return Promise.reject(new Error("synchronous scoring is not used by ingest"));
  }
  async invokeAsync(inputLocation: string): Promise<AsyncInvocation> {
    if (this.failFor !== undefined && inputLocation.includes(this.failFor)) {
      this.refused.push(inputLocation);
      const error = new Error("The endpoint is not available");
      error.name = "ServiceUnavailable";
      throw error;
    }
    this.accepted.push(inputLocation);
    return {
      inferenceId: `inference-${this.accepted.length}`,
      outputLocation: `s3://studies/out/${this.accepted.length}.out`,
      failureLocation: undefined,
    };
  }
}

const BUCKET = "studies";
const TABLE = "records";
const MAX_RECEIVES = 3;
let moto: MotoServer;

beforeAll(async () => {
  moto = await startMotoServer();
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

describe("a failing scoring endpoint", () => {
  it("is retried, then dead-lettered with the study recorded failed; the good study is scored once; a re-drive invokes the failed one", async () => {
    const client = { ...LOCAL_AWS, endpoint: moto.endpoint };
    const sqs = new SQSClient(client);
    const s3 = new S3Client({ ...client, forcePathStyle: true });
    const { DynamoDBClient } = await import("@aws-sdk/client-dynamodb");
    const dynamo = new DynamoDBClient(client);
    await createRecordsTable(dynamo, TABLE);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: "ingest-dlq" }));
    const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))).Attributes
      ?.QueueArn as string;
    const main = await sqs.send(
      new CreateQueueCommand({
        QueueName: "ingest",
        Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: MAX_RECEIVES }) },
      }),
    );
    const mainArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: main.QueueUrl, AttributeNames: ["QueueArn"] }))).Attributes
      ?.QueueArn as string;

    const upload = async (key: string) => {
      const out = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "zip bytes", ContentType: "application/zip" }));
      const versionId = out.VersionId as string;
      await sqs.send(new SendMessageCommand({ QueueUrl: main.QueueUrl, MessageBody: s3EventBody(BUCKET, key, versionId, 9) }));
      return studyIdOf({ bucket: BUCKET, key, versionId });
    };
    const bad = await upload("uploads/endpoint-down.zip");
    const good = await upload("uploads/fine.zip");

    const records = new DynamoRecordStore(dynamo, TABLE);
    const endpoint = new PartlyFailingEndpoint(bad);
    const handler = createIngestHandler({
      records,
      objects: new S3StudyObjects(s3),
      scoring: endpoint,
      config: {
        studiesBucket: BUCKET,
        maxObjectBytes: 1024,
        claimSeconds: 300,
        maxReceiveCount: MAX_RECEIVES,
        topK: 200,
        thresholds: [0.3, 0.5, 0.7],
      },
      now: () => new Date().toISOString(),
      newToken: randomUUID,
      log: lambdaLogger("ingest", () => {}),
    });
    const eventSource = () =>
      new SqsEventSource({
        sqs,
        queueUrl: main.QueueUrl as string,
        queueArn: mainArn,
        batchSize: 10,
        maximumBatchingWindowSeconds: 0,
        reportBatchItemFailures: true,
        concurrency: 1,
        fn: { name: "ingest", arn: "arn:aws:lambda:us-east-1:123456789012:function:ingest", timeoutSeconds: 60 },
        retryDelaySeconds: 0,
        handler: (event, context) => handler(event, context as never),
      });
    const source = eventSource();
    source.start();
    const deadline = Date.now() + 30_000;
    let dead = 0;
    try {
      while (Date.now() < deadline) {
        const attributes = await sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }),
        );
        dead = Number(attributes.Attributes?.ApproximateNumberOfMessages);
        if (dead === 1) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await source.stop();
    }
    expect(dead).toBe(1);
    // Retried maxReceiveCount times, never accepted.
    expect(endpoint.refused).toHaveLength(MAX_RECEIVES);
    const deadMessage = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10 }));
    expect(deadMessage.Messages?.[0]?.Body).toContain("endpoint-down.zip");
    // The study ended visibly: `failed`, saying what failed and that it was the last delivery; it is not
    // scored and holds no stale claim (a re-drive can claim it).
    const failed = await records.getStack(bad);
    expect(failed).toMatchObject({ status: "failed", lastError: { code: "ServiceUnavailable" } });
    expect(failed?.lastError?.message).toContain(`last delivery (${MAX_RECEIVES} of ${MAX_RECEIVES})`);
    expect(failed?.lastError?.message).toContain("The endpoint is not available");
    expect(failed?.scoring).toBeUndefined();
    expect(failed?.invokeClaim).toBeUndefined();
    expect((await records.listByStatus("failed")).map((r) => r.stackId)).toEqual([bad]);
    // The good study in the same batches: one invocation, one record, nothing lost.
    expect(endpoint.accepted).toEqual([`s3://${BUCKET}/scoring-requests/${good}.json`]);
    expect((await records.getStack(good))?.scoring?.inferenceId).toBe("inference-1");
    const main2 = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: main.QueueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    expect(Number(main2.Attributes?.ApproximateNumberOfMessages) + Number(main2.Attributes?.ApproximateNumberOfMessagesNotVisible)).toBe(0);

    // The operator fixes the endpoint and re-drives the DLQ (what StartMessageMoveTask does, which moto
    // lacks: each dead letter becomes a new message on the source queue, its receive count starting again).
    endpoint.recover();
    const letter = deadMessage.Messages?.[0];
    await sqs.send(new SendMessageCommand({ QueueUrl: main.QueueUrl, MessageBody: letter?.Body }));
    await sqs.send(new DeleteMessageCommand({ QueueUrl: dlq.QueueUrl, ReceiptHandle: letter?.ReceiptHandle }));
    const redrive = eventSource();
    redrive.start();
    const redriveDeadline = Date.now() + 30_000;
    try {
      while (Date.now() < redriveDeadline && !(await records.getStack(bad))?.scoring) await new Promise((r) => setTimeout(r, 200));
    } finally {
      await redrive.stop();
    }
    expect(endpoint.accepted).toEqual([`s3://${BUCKET}/scoring-requests/${good}.json`, `s3://${BUCKET}/scoring-requests/${bad}.json`]);
    const retried = await records.getStack(bad);
    expect(retried).toMatchObject({ status: "received", scoring: { inferenceId: "inference-2" } });
    expect(retried?.lastError).toBeUndefined();
    expect(await records.listByStatus("failed")).toEqual([]);
    sqs.destroy();
    s3.destroy();
    dynamo.destroy();
  });
});
