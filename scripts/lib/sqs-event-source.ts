/**
 * Lambda's SQS event source mapping, for handlers run in-process: long-polls the queue, hands the
 * handler batches in the exact event shape Lambda uses, and settles each message as Lambda does:
 *
 * - with ReportBatchItemFailures, messages named in `batchItemFailures` stay in the queue and the
 *   rest are deleted; a response naming an unknown or empty id fails the whole batch (as in AWS);
 * - without it, any error fails the whole batch; a thrown error or a timeout always does;
 * - a failed message becomes visible again and is redelivered; the queue's redrive policy (moto
 *   implements maxReceiveCount) moves it to the DLQ after its last receive.
 *
 * One deliberate difference, to keep a local run in minutes: a failed message is made visible again
 * after `retryDelaySeconds` (ChangeMessageVisibility) instead of the queue's full visibility timeout.
 * Batching window, batch size and the mapping's maximum concurrency come from the template.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { type FunctionIdentity, invokeLambda, type LambdaHandler } from "./lambda-runtime.js";
import { LOCAL_AWS } from "./moto-server.js";

export interface SqsEventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  /** Concurrent pollers (the mapping's MaximumConcurrency, capped for a small machine). */
  concurrency: number;
  fn: FunctionIdentity;
  handler: LambdaHandler;
  /** Seconds until a failed message is visible again (local stand-in for the visibility timeout). */
  retryDelaySeconds: number;
  /** Called for whole-invocation errors (the handler threw or timed out). */
  onInvocationError?: (error: unknown) => void;
}

export interface EventSourceStats {
  invocations: number;
  messages: number;
  failedMessages: number;
  failedInvocations: number;
}

export class SqsEventSource {
  readonly stats: EventSourceStats = { invocations: 0, messages: 0, failedMessages: 0, failedInvocations: 0 };
  private running = false;
  private pollers: Promise<void>[] = [];
  private inFlight = 0;

  constructor(private readonly options: SqsEventSourceOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pollers = Array.from({ length: Math.max(1, this.options.concurrency) }, () => this.poll());
  }

  /** True while a batch is being handled. */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.pollers);
    this.pollers = [];
  }

  private async poll(): Promise<void> {
    while (this.running) {
      let messages: Message[];
      try {
        messages = await this.receiveBatch();
      } catch (error) {
        if (!this.running) return;
        this.options.onInvocationError?.(error);
        await sleep(500);
        continue;
      }
      if (messages.length === 0) continue;
      this.inFlight++;
      try {
        await this.deliver(messages);
      } finally {
        this.inFlight--;
      }
    }
  }

  /** Up to batchSize messages, waiting at most the batching window once the first has arrived. */
  private async receiveBatch(): Promise<Message[]> {
    const { sqs, queueUrl, batchSize, maximumBatchingWindowSeconds } = this.options;
    const batch: Message[] = [];
    const windowEnds = Date.now() + maximumBatchingWindowSeconds * 1000;
    while (this.running && batch.length < batchSize) {
      const waiting = batch.length === 0;
      const response = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, batchSize - batch.length),
          WaitTimeSeconds: waiting ? 1 : 0,
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
        }),
      );
      const received = response.Messages ?? [];
      batch.push(...received);
      if (waiting && received.length === 0) return batch;
      if (!waiting && (received.length === 0 || Date.now() >= windowEnds)) break;
      if (maximumBatchingWindowSeconds === 0) break;
    }
    return batch;
  }

  private async deliver(messages: Message[]): Promise<void> {
    const { sqs, queueUrl, fn, handler, reportBatchItemFailures } = this.options;
    this.stats.invocations++;
    this.stats.messages += messages.length;
    let failed: Set<string>;
    try {
      const response = await invokeLambda(handler, this.event(messages), fn);
      failed = reportBatchItemFailures ? failuresFrom(response, messages) : new Set();
    } catch (error) {
      this.stats.failedInvocations++;
      this.options.onInvocationError?.(error);
      failed = new Set(messages.map((m) => m.MessageId as string));
    }
    this.stats.failedMessages += failed.size;
    const done = messages.filter((m) => !failed.has(m.MessageId as string));
    const retry = messages.filter((m) => failed.has(m.MessageId as string));
    if (done.length) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
    if (retry.length) {
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: retry.map((m, i) => ({
            Id: String(i),
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: this.options.retryDelaySeconds,
          })),
        }),
      );
    }
  }

  /** The event Lambda delivers for these messages (documented SQS event shape). */
  private event(messages: Message[]) {
    return {
      Records: messages.map((m) => ({
        messageId: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        body: m.Body ?? "",
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: m.Attributes?.SenderId ?? "local",
          ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: Object.fromEntries(
          Object.entries(m.MessageAttributes ?? {}).map(([name, a]) => [
            name,
            { stringValue: a.StringValue, binaryValue: a.BinaryValue, stringListValues: [], binaryListValues: [], dataType: a.DataType },
          ]),
        ),
        md5OfBody: m.MD5OfBody,
        eventSource: "aws:sqs",
        eventSourceARN: this.options.queueArn,
        awsRegion: LOCAL_AWS.region,
      })),
    };
  }
}

/** Message ids to keep, per Lambda's rules for ReportBatchItemFailures responses. */
function failuresFrom(response: unknown, messages: Message[]): Set<string> {
  const all = new Set(messages.map((m) => m.MessageId as string));
  if (response === null || response === undefined || typeof response !== "object") return new Set();
  const items = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (items === undefined || items === null) return new Set();
  if (!Array.isArray(items)) return all;
  const failed = new Set<string>();
  for (const item of items) {
    const id = (item as { itemIdentifier?: unknown })?.itemIdentifier;
    if (typeof id !== "string" || !all.has(id)) return all; // an invalid response fails the whole batch
    failed.add(id);
  }
  return failed;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
