import { type CfnResource, Duration, Fn, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { AccountRootPrincipal, AnyPrincipal, Effect, type IPrincipal, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type BucketNotificationDestinationConfig,
  BucketNotificationDestinationType,
  EventType,
  HttpMethods,
  type IBucket,
  type IBucketNotificationDestination,
  ObjectOwnership,
} from "aws-cdk-lib/aws-s3";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from "aws-cdk-lib/cx-api";
import { Construct, type IConstruct } from "constructs";
import { DEFAULT_RETENTION, type RetentionConfig, RetentionConfigSchema } from "../lambdas/contracts/institution-config.js";
import { LABEL_UPLOAD_RETENTION_DAYS, LABEL_UPLOADS_PREFIX } from "../lambdas/contracts/masks.js";
import { STUDIES_BUCKET } from "../lambdas/contracts/studies-bucket.js";
import { OVERLAYS_PREFIX, SCORING_REQUESTS_PREFIX } from "../lambdas/domain/ingest.js";
import { allowCloudWatchLogsToUseKey } from "./encrypted-log-group.js";
import { kmsUse } from "./lambda-function.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";
import { resourceFindingId } from "./nag-ids.js";
import { SCORING_OUTPUT_PREFIXES } from "./scoring-endpoint.js";

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
  /**
   * Lifecycle of the studies bucket's prefixes, in days (the institution config's `retention`, validated by
   * RetentionConfigSchema). Default: quarantine 30, uploads and overlays 365, noncurrent versions 7, scoring
   * requests / results / failures 30.
   */
  readonly retention?: RetentionConfig;
  /** Who may assume the quarantine operator role (then only with sts:AssumeRole allowed by their own policy). Default: this account. */
  readonly quarantineOperators?: IPrincipal;
  /** Origins whose pages may PUT presigned mask uploads (the bucket's CORS rule). Default: DEFAULT_UPLOAD_ORIGIN. */
  readonly uploadOrigins?: string[];
}

/**
 * Upload → queue. The studies bucket (prefixes in lambdas/contracts/studies-bucket.ts: `uploads/`
 * is routed, `quarantine/` holds refused studies) sends every ObjectCreated under `uploads/` to the
 * ingest queue; messages received `maxReceiveCount` (default 5) times go to the DLQ (14-day retention, alarmed in alarms.ts).
 *
 * Secure defaults: SSE-KMS with the data key (bucket key on), TLS-only policies, all public access
 * blocked, ACLs disabled, versioning (the version id is part of the ingest idempotency key), server
 * access logs to a separate access-log bucket (SSE-S3: S3 log delivery cannot write SSE-KMS).
 *
 * Retention (README "Data retention"; `retention` prop): lifecycle rules expire `quarantine/` after
 * `quarantineDays` (its noncurrent versions a day later), `uploads/` and `overlays/` after `uploadsDays`
 * (replaced versions after `noncurrentDays`), `scoring-requests/`, `scoring-results/`, `scoring-failures/`
 * after `scoringArtifactsDays`; expired delete markers and incomplete multipart uploads are cleaned up
 * bucket-wide. `labels/` (accepted masks) has no rule: every version is kept.
 * `quarantine/` is readable only by `quarantineOperatorRole` (and the account root, for break-glass): a
 * bucket-policy Deny of s3:GetObject* there for every other principal. The Lambdas only write there
 * (CopyObject reads the source in `uploads/`), so the Deny never stops a quarantine move.
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
  /** The only role (besides the account root) that may read `quarantine/`: list, get, decrypt; nothing else. */
  readonly quarantineOperatorRole: ManagedPolicyRole;
  /** The lifecycle in effect (days). */
  readonly retention: RetentionConfig;

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
    const retention = RetentionConfigSchema.safeParse(props.retention ?? DEFAULT_RETENTION);
    if (!retention.success) {
      const problems = retention.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
      throw new Error(`StudiesIngest: invalid retention (days) — ${problems}; the defaults are ${JSON.stringify(DEFAULT_RETENTION)}`);
    }
    this.retention = retention.data;
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
    addRetentionRules(this.bucket, this.retention);
    // The worklist page PUTs masks straight to the bucket with presigned URLs (the URL is the
    // authorisation: it signs key, type and length) and GETs its viewer's volumes the same way; CORS
    // lets the page's origin make those requests.
    this.bucket.addCorsRule({
      allowedMethods: [HttpMethods.PUT, HttpMethods.GET],
      allowedOrigins: props.uploadOrigins ?? [DEFAULT_UPLOAD_ORIGIN],
      allowedHeaders: ["content-type"],
      maxAge: 3600,
    });
    this.quarantineOperatorRole = quarantineOperator(this, this.bucket, props.encryptionKey, props.quarantineOperators);

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
 * The lifecycle rules of the studies bucket (the class doc says what each keeps). A rule per prefix, so
 * `labels/` and any prefix not named here keep every version. Noncurrent versions of quarantined copies
 * and scoring artefacts go a day after they stop being current (they are copies, or rewritten per study).
 */
/** Pages served by CloudFront without a custom domain (the worklist site's default host). */
export const DEFAULT_UPLOAD_ORIGIN = "https://*.cloudfront.net";

const addRetentionRules = (bucket: Bucket, retention: RetentionConfig): void => {
  const days = Duration.days;
  bucket.addLifecycleRule({
    id: "QuarantineExpires",
    prefix: STUDIES_BUCKET.quarantinePrefix,
    expiration: days(retention.quarantineDays),
    noncurrentVersionExpiration: days(1),
  });
  for (const [id, prefix] of [
    ["UploadsRetention", STUDIES_BUCKET.uploadsPrefix],
    ["OverlaysRetention", OVERLAYS_PREFIX],
  ] as const) {
    bucket.addLifecycleRule({
      id,
      prefix,
      expiration: days(retention.uploadsDays),
      noncurrentVersionExpiration: days(retention.noncurrentDays),
    });
  }
  bucket.addLifecycleRule({
    id: "LabelUploadsExpire",
    prefix: LABEL_UPLOADS_PREFIX,
    expiration: days(LABEL_UPLOAD_RETENTION_DAYS),
    noncurrentVersionExpiration: days(1),
  });
  for (const [id, prefix] of [
    ["ScoringRequestsRetention", SCORING_REQUESTS_PREFIX],
    ["ScoringResultsRetention", SCORING_OUTPUT_PREFIXES.results],
    ["ScoringFailuresRetention", SCORING_OUTPUT_PREFIXES.failures],
  ] as const) {
    bucket.addLifecycleRule({
      id,
      prefix,
      expiration: days(retention.scoringArtifactsDays),
      noncurrentVersionExpiration: days(1),
    });
  }
  // A delete marker with no version behind it hides nothing (S3 refuses it beside Expiration days in one rule).
  bucket.addLifecycleRule({ id: "ExpiredDeleteMarkers", expiredObjectDeleteMarker: true });
  bucket.addLifecycleRule({ id: "IncompleteMultipartUploads", abortIncompleteMultipartUploadAfter: days(7) });
};

/**
 * The quarantine operator role and the bucket-policy Deny that makes it the only reader of `quarantine/`
 * (besides the account root). `aws:PrincipalArn` is the role's ARN for every session of the role.
 */
const quarantineOperator = (scope: Construct, bucket: Bucket, key: IKey, operators: IPrincipal | undefined): ManagedPolicyRole => {
  const stack = Stack.of(scope);
  const quarantineObjects = bucket.arnForObjects(`${STUDIES_BUCKET.quarantinePrefix}*`);
  const role = new ManagedPolicyRole(scope, "QuarantineOperator", {
    assumedBy: operators ?? new AccountRootPrincipal(),
    description: "Reads refused studies under quarantine/ of the studies bucket (the only role that may)",
  });
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: "ReadQuarantine",
      actions: ["s3:GetObject", "s3:GetObjectVersion"],
      resources: [quarantineObjects],
    }),
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: "ListQuarantine",
      actions: ["s3:ListBucket", "s3:ListBucketVersions"],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { "s3:prefix": [STUDIES_BUCKET.quarantinePrefix, `${STUDIES_BUCKET.quarantinePrefix}*`] } },
    }),
  );
  role.addToPrincipalPolicy(kmsUse(key, ["kms:Decrypt"]));
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${STUDIES_BUCKET.quarantinePrefix}*]`,
    reason: `read-only: refused studies under ${STUDIES_BUCKET.quarantinePrefix} of the studies bucket, one folder per study whose keys are not known at deploy time; the prefix is the narrowest scope`,
  });
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "QuarantineReadableByOperatorOnly",
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ["s3:GetObject*"],
      resources: [quarantineObjects],
      conditions: {
        ArnNotEquals: { "aws:PrincipalArn": [role.roleArn, `arn:${stack.partition}:iam::${stack.account}:root`] },
      },
    }),
  );
  return role;
};

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
