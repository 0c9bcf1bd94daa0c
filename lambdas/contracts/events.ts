/**
 * Events the Lambdas receive, parsed at the edge: an SQS batch (event source mapping) whose message
 * bodies are S3 event notifications (the bucket notifies the queue directly, no SNS envelope).
 * Format: https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
 * Object keys arrive URL-encoded with `+` for space (see `decodeS3Key` in domain/ingest.ts).
 */
import { z } from "zod";

/** One SQS message as the Lambda event source mapping delivers it (fields the handlers use). */
export const SqsMessageSchema = z.object({
  messageId: z.string().min(1),
  body: z.string(),
  attributes: z.object({ ApproximateReceiveCount: z.string().optional() }).loose().optional(),
  eventSourceARN: z.string().optional(),
});
export type SqsMessage = z.infer<typeof SqsMessageSchema>;

export const SqsEventSchema = z.object({ Records: z.array(SqsMessageSchema) });
export type SqsEvent = z.infer<typeof SqsEventSchema>;

/** The answer that lets SQS delete every message except the ones named (ReportBatchItemFailures). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** One S3 event record. `versionId` is present for versioned buckets; `key` is URL-encoded. */
export const S3EventRecordSchema = z.object({
  eventSource: z.literal("aws:s3"),
  /** e.g. `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, `ObjectRemoved:Delete`. */
  eventName: z.string().min(1),
  eventTime: z.string().min(1),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().int().nonnegative().optional(),
      versionId: z.string().min(1).optional(),
      sequencer: z.string().optional(),
    }),
  }),
});
export type S3EventRecord = z.infer<typeof S3EventRecordSchema>;

export const S3EventNotificationSchema = z.object({ Records: z.array(S3EventRecordSchema).min(1) });
export type S3EventNotification = z.infer<typeof S3EventNotificationSchema>;

/** What S3 sends once when a notification configuration is set: acknowledge and ignore. */
export const S3TestEventSchema = z.object({
  Event: z.literal("s3:TestEvent"),
  Bucket: z.string(),
  Service: z.string().optional(),
  Time: z.string().optional(),
});
