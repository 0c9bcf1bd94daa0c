/**
 * The local stand-in for Lambda's SQS event source mapping (scripts/lib/sqs-event-source.ts) against
 * moto server: the event shape handlers receive, partial batch failures (failed messages stay and are
 * redelivered, the rest are deleted), and the queue's redrive policy moving a message that keeps
 * failing to the DLQ after maxReceiveCount receives.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_AWS, type MotoServer, startMotoServer } from "../../scripts/lib/moto-server.js";
import { SqsEventSource } from "../../scripts/lib/sqs-event-source.js";

let moto: MotoServer;
let sqs: SQSClient;

beforeAll(async () => {
  moto = await startMotoServer();
  sqs = new SQSClient({ ...LOCAL_AWS, endpoint: moto.endpoint });
}, 60_000);

afterAll(async () => {
  sqs?.destroy();
  await moto?.stop();
});

async function queues(maxReceiveCount: number) {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `dlq-${Date.now()}` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))).Attributes
    ?.QueueArn as string;
  const main = await sqs.send(
    new CreateQueueCommand({
      QueueName: `main-${Date.now()}`,
      Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }) },
    }),
  );
  const mainArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: main.QueueUrl, AttributeNames: ["QueueArn"] }))).Attributes
    ?.QueueArn as string;
  return { mainUrl: main.QueueUrl as string, mainArn, dlqUrl: dlq.QueueUrl as string };
}

async function until(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("SqsEventSource", () => {
  it("delivers Lambda-shaped batches, redelivers reported failures and dead-letters a message that keeps failing", async () => {
    const { mainUrl, mainArn, dlqUrl } = await queues(2);
    for (const body of ["ok", "flaky", "poison"]) await sqs.send(new SendMessageCommand({ QueueUrl: mainUrl, MessageBody: body }));
    const deliveries: Record<string, number> = {};
    const events: { Records: Record<string, unknown>[] }[] = [];
    const source = new SqsEventSource({
      sqs,
      queueUrl: mainUrl,
      queueArn: mainArn,
      batchSize: 10,
      maximumBatchingWindowSeconds: 0,
      reportBatchItemFailures: true,
      concurrency: 1,
      fn: { name: "test", arn: "arn:aws:lambda:us-east-1:123456789012:function:test", timeoutSeconds: 10 },
      retryDelaySeconds: 0,
      handler: async (event) => {
        const batch = event as { Records: { messageId: string; body: string }[] };
        events.push(batch as never);
        const failures: { itemIdentifier: string }[] = [];
        for (const record of batch.Records) {
          deliveries[record.body] = (deliveries[record.body] ?? 0) + 1;
          if (record.body === "poison" || (record.body === "flaky" && deliveries.flaky === 1))
            failures.push({ itemIdentifier: record.messageId });
        }
        return { batchItemFailures: failures };
      },
    });
    source.start();
    try {
      await until(async () => {
        const dead = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
        return Number(dead.Attributes?.ApproximateNumberOfMessages) === 1 && (deliveries.flaky ?? 0) >= 2;
      });
    } finally {
      await source.stop();
    }
    expect(deliveries.ok).toBe(1);
    expect(deliveries.flaky).toBe(2);
    expect(deliveries.poison).toBe(2);
    const record = events[0]?.Records[0] as Record<string, unknown>;
    expect(record).toMatchObject({ eventSource: "aws:sqs", eventSourceARN: mainArn, awsRegion: "us-east-1" });
    expect(record.attributes).toMatchObject({ ApproximateReceiveCount: "1" });
    expect(typeof record.receiptHandle).toBe("string");
    const left = await sqs.send(new ReceiveMessageCommand({ QueueUrl: mainUrl, WaitTimeSeconds: 0 }));
    expect(left.Messages ?? []).toHaveLength(0);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 0 }));
    expect(dead.Messages?.map((m) => m.Body)).toEqual(["poison"]);
  }, 60_000);

  it("keeps the whole batch when the handler throws", async () => {
    const { mainUrl, mainArn } = await queues(5);
    await sqs.send(new SendMessageCommand({ QueueUrl: mainUrl, MessageBody: "a" }));
    await sqs.send(new SendMessageCommand({ QueueUrl: mainUrl, MessageBody: "b" }));
    let calls = 0;
    const seen: string[] = [];
    const source = new SqsEventSource({
      sqs,
      queueUrl: mainUrl,
      queueArn: mainArn,
      batchSize: 10,
      maximumBatchingWindowSeconds: 0,
      reportBatchItemFailures: true,
      concurrency: 1,
      fn: { name: "test", arn: "arn:aws:lambda:us-east-1:123456789012:function:test", timeoutSeconds: 10 },
      retryDelaySeconds: 0,
      onInvocationError: () => undefined,
      handler: async (event) => {
        calls++;
        if (calls === 1) throw new Error("crash");
        for (const r of (event as { Records: { body: string }[] }).Records) seen.push(r.body);
        return { batchItemFailures: [] };
      },
    });
    source.start();
    try {
      await until(async () => seen.length >= 2);
    } finally {
      await source.stop();
    }
    expect(seen.sort()).toEqual(["a", "b"]);
    expect(source.stats.failedInvocations).toBe(1);
  }, 60_000);
});
