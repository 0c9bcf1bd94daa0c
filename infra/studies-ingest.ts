import { type CfnResource, Duration, Fn, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type BucketNotificationDestinationConfig,
  BucketNotificationDestinationType,
  EventType,
  type IBucket,
  type IBucketNotificationDestination,
  ObjectOwnership,
} from "aws-cdk-lib/aws-s3";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from "aws-cdk-lib/cx-api";
import { Construct, type IConstruct } from "constructs";
import { STUDIES_BUCKET } from "../lambdas/contracts/studies-bucket.js";
import { allowCloudWatchLogsToUseKey } from "./encrypted-log-group.js";

export interface StudiesIngestProps {
  /** Customer-managed key for the studies bucket, the ingest queue and its DLQ (required: studies are patient data). */
  readonly encryptionKey: IKey;
  /** Timeout of the ingest Lambda that consumes the queue; the queue's visibility timeout is 6× this. Default: 60 s. */
  readonly ingestFunctionTimeout?: Duration;
  /** Receives before a message moves to the DLQ. Default: 5. */
  readonly maxReceiveCount?: number;
  /** Retention of the log group of CDK's bucket-notifications handler (KMS-encrypted with `encryptionKey`). Default: one year. */
  readonly logRetention?: RetentionDays;
  /** What happens to both buckets when the stack is deleted. Default: RETAIN. */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Upload → queue. The studies bucket (prefixes in lambdas/contracts/studies-bucket.ts: `uploads/`
 * is routed, `quarantine/` holds refused studies) sends every ObjectCreated under `uploads/` to the
 * ingest queue; messages received `maxReceiveCount` (default 5) times go to the DLQ (14-day retention, alarmed in alarms.ts).
 *
 * Secure defaults: SSE-KMS with the data key (bucket key on), TLS-only policies, all public access
 * blocked, ACLs disabled, versioning (the version id is part of the ingest idempotency key), server
 * access logs to a separate access-log bucket (SSE-S3: S3 log delivery cannot write SSE-KMS).
 */
export class StudiesIngest extends Construct {
  /** The studies bucket: `uploads/` (routed to the queue) and `quarantine/` (refused studies). */
  readonly bucket: Bucket;
  /** Server access logs of the studies bucket. */
  readonly accessLogBucket: Bucket;
  /** ObjectCreated events for `uploads/`, consumed by the ingest Lambda. */
  readonly queue: Queue;
  /** Messages the ingest Lambda failed `maxReceiveCount` times; re-drive after fixing the cause. */
  readonly deadLetterQueue: Queue;
  /** Receives before a message moves to the DLQ (the queue's redrive policy); the ingest Lambda is told it. */
  readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: StudiesIngestProps) {
    super(scope, id);
    const functionTimeout = props.ingestFunctionTimeout ?? Duration.seconds(60);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    if (functionTimeout.toSeconds() < 1 || functionTimeout.toSeconds() > 900) {
      throw new Error(`ingestFunctionTimeout must be 1 s–15 min (the Lambda limit), got ${functionTimeout.toSeconds()} s`);
    }
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new Error(`maxReceiveCount must be an integer 1–1000 (SQS redrive limit), got ${maxReceiveCount}; the default is 5`);
    }
    this.maxReceiveCount = maxReceiveCount;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    // Grant S3 log delivery through the bucket policy, not the legacy LogDeliveryWrite ACL, so ACLs stay disabled.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);

    this.accessLogBucket = new Bucket(this, "AccessLogs", {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy,
    });
    const logTarget = "S3 server-access-log target bucket";
    Validations.of(this.accessLogBucket).acknowledge(
      {
        id: "HIPAA.Security-S3DefaultEncryptionKMS",
        reason: `${logTarget}: S3 log delivery supports only SSE-S3 (AES-256) on the target bucket, not SSE-KMS; it holds request metadata, never studies`,
      },
      {
        id: "NIST.800.53.R5-S3DefaultEncryptionKMS",
        reason: `${logTarget}: S3 log delivery supports only SSE-S3 (AES-256) on the target bucket, not SSE-KMS; it holds request metadata, never studies`,
      },
      {
        id: "HIPAA.Security-S3BucketReplicationEnabled",
        reason: `${logTarget}: versioned and retained in-region; replicating request metadata to another region needs the same data-residency approval as the studies`,
      },
      {
        id: "NIST.800.53.R5-S3BucketReplicationEnabled",
        reason: `${logTarget}: versioned and retained in-region; replicating request metadata to another region needs the same data-residency approval as the studies`,
      },
    );

    this.bucket = new Bucket(this, "Studies", {
      encryption: BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: "studies/",
      removalPolicy,
    });
    const noReplication =
      "studies bucket: cross-region replication would copy (de-identified) patient studies to a second region, which needs the institution's data-residency approval first; versioning plus RETAIN cover deletion, and the hospital PACS holds the originals";
    Validations.of(this.bucket).acknowledge(
      { id: "HIPAA.Security-S3BucketReplicationEnabled", reason: noReplication },
      { id: "NIST.800.53.R5-S3BucketReplicationEnabled", reason: noReplication },
    );

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, "Queue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      // AWS guidance for Lambda event sources: at least 6× the function timeout, so retries do not overlap.
      visibilityTimeout: Duration.seconds(functionTimeout.toSeconds() * 6),
      // A message keeps its first enqueue time in the DLQ, so the DLQ (14 days) must outlive this (4 days).
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    this.bucket.addEventNotification(EventType.OBJECT_CREATED, new EncryptedQueueDestination(this.queue, props.encryptionKey), {
      prefix: STUDIES_BUCKET.uploadsPrefix,
    });

    // The notification configuration is applied by CDK's own custom resource (Custom::S3BucketNotifications).
    const cdkInternal =
      "CDK-internal custom resource that applies the S3 bucket notification configuration (Custom::S3BucketNotifications)";
    Validations.of(this.bucket.node.findChild("Notifications")).acknowledge(
      {
        id: "HIPAA.Security-IAMNoInlinePolicy",
        reason: `${cdkInternal}: its inline policy allows only s3:PutBucketNotification on this bucket`,
      },
      {
        id: "NIST.800.53.R5-IAMNoInlinePolicy",
        reason: `${cdkInternal}: its inline policy allows only s3:PutBucketNotification on this bucket`,
      },
    );
    const handler = Stack.of(this).node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
    if (!handler) {
      throw new Error(
        `CDK's bucket-notifications handler ${NOTIFICATIONS_HANDLER_ID} not found: aws-cdk-lib renamed it; update NOTIFICATIONS_HANDLER_ID`,
      );
    }
    Validations.of(handler).acknowledge({
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      reason: `${cdkInternal}: its role carries only AWSLambdaBasicExecutionRole (CloudWatch Logs write), which CDK attaches and we cannot replace`,
    });
    // Its log group would otherwise be created on first invocation, unencrypted and kept forever.
    const handlerLogs = notificationsHandlerLogGroup(handler, props.encryptionKey, props.logRetention ?? RetentionDays.ONE_YEAR);
    this.bucket.node.findChild("Notifications").node.addDependency(handlerLogs);
  }
}

/**
 * The log group of CDK's notification handler, created before the handler first runs so that it has a
 * retention period and is encrypted with `key` (whose policy then lets CloudWatch Logs in this account
 * and region use it). One per stack, like the handler.
 */
const notificationsHandlerLogGroup = (handler: IConstruct, key: IKey, retention: RetentionDays): LogGroup => {
  const stack = Stack.of(handler);
  const existing = stack.node.tryFindChild(`${NOTIFICATIONS_HANDLER_ID}Logs`);
  if (existing instanceof LogGroup) return existing;
  const fn = handler.node.findChild("Resource") as CfnResource;
  allowCloudWatchLogsToUseKey(key);
  return new LogGroup(stack, `${NOTIFICATIONS_HANDLER_ID}Logs`, {
    logGroupName: Fn.join("", ["/aws/lambda/", fn.ref]),
    encryptionKey: key,
    retention,
    removalPolicy: RemovalPolicy.RETAIN,
  });
};

/** Construct id of the stack-wide singleton Lambda that aws-cdk-lib creates for Custom::S3BucketNotifications. */
const NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834";

/**
 * `SqsDestination` with one change: it lets S3 use the queue's key without an `aws:SourceArn` condition
 * naming the bucket. The bucket is encrypted with the same key, so that condition would make the key
 * depend on the bucket and the bucket on the key (a CloudFormation cycle). The queue policy still
 * admits only this bucket (ArnLike aws:SourceArn) and this account.
 */
class EncryptedQueueDestination implements IBucketNotificationDestination {
  constructor(
    private readonly queue: Queue,
    private readonly key: IKey,
  ) {}

  bind(_scope: Construct, bucket: IBucket): BucketNotificationDestinationConfig {
    const { policyDependable } = this.queue.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("s3.amazonaws.com")],
        actions: ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
        resources: [this.queue.queueArn],
        conditions: {
          ArnLike: { "aws:SourceArn": bucket.bucketArn },
          StringEquals: { "aws:SourceAccount": Stack.of(this.queue).account },
        },
      }),
    );
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowS3NotificationsToEncryptedIngestQueue",
        principals: [new ServicePrincipal("s3.amazonaws.com")],
        actions: ["kms:GenerateDataKey*", "kms:Decrypt"],
        resources: ["*"],
      }),
    );
    return {
      arn: this.queue.queueArn,
      type: BucketNotificationDestinationType.QUEUE,
      dependencies: policyDependable ? [policyDependable] : [],
    };
  }
}
