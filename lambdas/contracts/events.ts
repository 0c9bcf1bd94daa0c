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

/**
 * An SNS notification as SQS receives it with raw message delivery off: the envelope, whose `Message`
 * is the publisher's JSON as a string. Other envelope fields (Signature, TopicArn, …) are allowed, not used.
 */
export const SnsEnvelopeSchema = z
  .object({
    Type: z.literal("Notification"),
    MessageId: z.string().min(1).optional(),
    TopicArn: z.string().optional(),
    Message: z.string(),
  })
  .loose();
export type SnsEnvelope = z.infer<typeof SnsEnvelopeSchema>;

/**
 * The notification SageMaker asynchronous inference publishes to the endpoint's success or error topic
 * (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html). Fields relied
 * on: `invocationStatus` ("Completed" | "Failed"), `inferenceId`, `requestParameters.inputLocation`, and
 * `responseParameters.outputLocation` (success) or `responseParameters.failureLocation` plus `failureReason`
 * (error; both optional here because older endpoints omit the location). Everything else is allowed, not used.
 */
export const AsyncInferenceNotificationSchema = z
  .object({
    invocationStatus: z.enum(["Completed", "Failed"]),
    inferenceId: z.string().min(1),
    eventTime: z.string().optional(),
    failureReason: z.string().optional(),
    requestParameters: z.object({ inputLocation: z.string().min(1), endpointName: z.string().optional() }).loose(),
    responseParameters: z
      .object({
        contentType: z.string().optional(),
        outputLocation: z.string().min(1).optional(),
        failureLocation: z.string().min(1).optional(),
      })
      .loose()
      .optional(),
  })
  .loose();
export type AsyncInferenceNotification = z.infer<typeof AsyncInferenceNotificationSchema>;
