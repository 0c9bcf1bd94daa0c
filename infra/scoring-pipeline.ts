import { Duration, Stack, Validations } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { Subscription, SubscriptionProtocol, type Topic } from "aws-cdk-lib/aws-sns";
import { type IQueue, Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { formatThresholds, IngestEnvSchema, RecordScoreEnvSchema, RescoreEnvSchema } from "../lambdas/contracts/env.js";
import { STUDIES_BUCKET } from "../lambdas/contracts/studies-bucket.js";
import { SCORING_REQUESTS_PREFIX } from "../lambdas/domain/ingest.js";
import type { TimePrior } from "../lambdas/domain/labeling-time-model.js";
import { RESCORE_REQUESTS_PREFIX } from "../lambdas/domain/rescore.js";
import { kmsUse, LambdaFunction } from "./lambda-function.js";
import { resourceFindingId } from "./nag-ids.js";
import { recordsReadWrite } from "./records-access.js";
import { SCORING_OUTPUT_PREFIXES, type ScoringEndpoint } from "./scoring-endpoint.js";

export interface ScoringPipelineProps {
  /** CloudWatch namespace of the intake metrics both Lambdas publish (EMF, contracts/metrics.ts), e.g. `IchAl/demo`. */
  readonly metricsNamespace: string;
  /** The studies bucket (uploads/, quarantine/, scoring-requests/, scoring-results/, scoring-failures/). */
  readonly studiesBucket: IBucket;
  /** The ingest queue that receives the bucket's `uploads/` ObjectCreated events (StudiesIngest). */
  readonly ingestQueue: IQueue;
  /**
   * The ingest queue's redrive `maxReceiveCount` (StudiesIngest.maxReceiveCount): ingest records a study
   * `failed` when its scoring request still fails on that delivery, the last before the DLQ.
   */
  readonly ingestMaxReceiveCount: number;
  /**
   * K, heatmap thresholds and the private creators the PHI check lets pass, which every scoring request carries
   * (the institution config's `topK`, `thresholds`, `deidentification.allowedPrivateCreators`; creators default: none).
   */
  readonly scoringParameters: {
    readonly topK: number;
    readonly thresholds: readonly number[];
    readonly allowedPrivateCreators?: readonly string[];
  };
  /** The labeling-time prior: record-score predicts T with it until the first fit is stored. */
  readonly timePrior: TimePrior;
  /** The records table. */
  readonly table: { readonly tableName: string; readonly tableArn: string };
  /** The asynchronous scoring endpoint (its topics; whether it is deployed). */
  readonly endpoint: ScoringEndpoint;
  /** Customer-managed data key (bucket, queues, table, topics, logs). */
  readonly encryptionKey: IKey;
  /** Timeout of the ingest Lambda; must match StudiesIngest's `ingestFunctionTimeout` (visibility = 6×). Default: 60 s. */
  readonly ingestTimeout?: Duration;
  /** Timeout of the record-score Lambda; its queue's visibility timeout is 6× this. Default: 60 s. */
  readonly recordScoreTimeout?: Duration;
  /** Messages per ingest invocation. Default: 10. */
  readonly ingestBatchSize?: number;
  /** Receives before a scoring notification moves to the record-score DLQ. Default: 5. */
  readonly maxReceiveCount?: number;
  /** Log retention of both functions. Default: one year. */
  readonly logRetention?: RetentionDays;
}

/**
 * Upload → score → record. The ingest Lambda consumes the ingest queue (partial batch failures; at most
 * `ingestConcurrency` instances — what the endpoint serves at once — so a backfill of thousands waits in
 * the queue rather than flooding the endpoint), writes the study record and invokes the asynchronous
 * endpoint. The endpoint's success and error topics feed the score queue (KMS, DLQ after
 * `maxReceiveCount`), which the record-score Lambda consumes (partial batch failures) into stack records.
 *
 * When the endpoint is not deployed (no model artefact yet) the ingest event source mapping exists but
 * is disabled: uploads wait in the ingest queue (4 days) until a redeploy with a model enables it.
 */
export class ScoringPipeline extends Construct {
  /** The ingest Lambda. */
  readonly ingest: LambdaFunction<typeof IngestEnvSchema>;
  /** The record-score Lambda. */
  readonly recordScore: LambdaFunction<typeof RecordScoreEnvSchema>;
  /** Requests a re-score of the pool after a promotion (invoked, never scheduled). */
  readonly rescore: LambdaFunction<typeof RescoreEnvSchema>;
  /** SageMaker's success/error notifications (SNS envelopes), consumed by record-score. */
  readonly scoreQueue: Queue;
  /** Notifications record-score failed `maxReceiveCount` times; alarmed; re-drive after fixing the cause. */
  readonly scoreDeadLetterQueue: Queue;
  /** Ingest instances at once (event source maxConcurrency = reserved concurrency). */
  readonly ingestConcurrency: number;

  constructor(scope: Construct, id: string, props: ScoringPipelineProps) {
    super(scope, id);
    const ingestTimeout = props.ingestTimeout ?? Duration.seconds(60);
    const recordScoreTimeout = props.recordScoreTimeout ?? Duration.seconds(60);
    const batchSize = props.ingestBatchSize ?? 10;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
      throw new Error(
        `ScoringPipeline: ingestBatchSize must be an integer 1–10 (SQS standard-queue batch without a batching window), got ${batchSize}`,
      );
    }
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new Error(`ScoringPipeline: maxReceiveCount must be an integer 1–1000, got ${maxReceiveCount}`);
    }
    const { endpoint, encryptionKey, studiesBucket: bucket } = props;
    // An invocation only enqueues (InvokeEndpointAsync); two ingest instances keep far ahead of one GPU,
    // and more instances never make more GPUs: cap at what the endpoint works on at once, at least 2 (SQS minimum).
    this.ingestConcurrency = Math.max(2, Math.min(1000, endpoint.maxConcurrentRequests));
    const objects = (prefix: string) => bucket.arnForObjects(`${prefix}*`);

    // What ingest and the re-score function both need to make a study's scoring request.
    const scoringRequestEnvironment = {
      TABLE_NAME: props.table.tableName,
      METRICS_NAMESPACE: props.metricsNamespace,
      STUDIES_BUCKET: bucket.bucketName,
      SCORING_ENDPOINT_NAME: endpoint.endpointName,
      SCORING_TOP_K: String(props.scoringParameters.topK),
      SCORING_THRESHOLDS: formatThresholds(props.scoringParameters.thresholds),
      PRIVATE_CREATOR_ALLOW_LIST: JSON.stringify(props.scoringParameters.allowedPrivateCreators ?? []),
    };
    this.ingest = new LambdaFunction(this, "Ingest", {
      handler: "ingest",
      description: "S3 upload events (SQS) → study record + asynchronous scoring request",
      envSchema: IngestEnvSchema,
      environment: {
        ...scoringRequestEnvironment,
        MAX_OBJECT_BYTES: String(2 * 1024 ** 3),
        // ≥ the function timeout and ≤ the queue visibility (6× timeout): see IngestEnvSchema.
        INVOKE_CLAIM_SECONDS: String(ingestTimeout.toSeconds() * 5),
        MAX_RECEIVE_COUNT: String(props.ingestMaxReceiveCount),
      },
      invocation: { kind: "synchronous", caller: "the ingest queue's event source mapping (failed messages are redriven to its DLQ)" },
      encryptionKey,
      logRetention: props.logRetention,
      timeout: ingestTimeout,
      reservedConcurrency: this.ingestConcurrency,
      statements: [
        new PolicyStatement({
          sid: "ReadUploads",
          actions: ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"],
          resources: [objects(STUDIES_BUCKET.uploadsPrefix)],
        }),
        // Without ListBucket, S3 answers 403 (not 404) for a missing object or version, and ingest could not
        // record OBJECT_NOT_FOUND; ingest already sees every upload key, so listing reveals nothing new to it.
        new PolicyStatement({ sid: "TellMissingFromForbidden", actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }),
        new PolicyStatement({
          sid: "WriteQuarantineAndScoringRequests",
          actions: ["s3:PutObject", "s3:PutObjectTagging"],
          resources: [objects(STUDIES_BUCKET.quarantinePrefix), objects(SCORING_REQUESTS_PREFIX)],
        }),
        // The quarantine move's last step: the refused version, by id (domain/quarantine.ts); nothing else is deleted.
        new PolicyStatement({
          sid: "DeleteQuarantinedUploadVersions",
          actions: ["s3:DeleteObjectVersion"],
          resources: [objects(STUDIES_BUCKET.uploadsPrefix)],
        }),
        ...recordsReadWrite(props.table),
        kmsUse(encryptionKey, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]),
        new PolicyStatement({ sid: "InvokeScoring", actions: ["sagemaker:InvokeEndpointAsync"], resources: [endpoint.endpointArn] }),
      ],
    });
    this.ingest.function.addEventSource(
      new SqsEventSource(props.ingestQueue, {
        batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: this.ingestConcurrency,
        enabled: endpoint.deployed,
      }),
    );
    Validations.of(this.ingest.role).acknowledge(
      ...[STUDIES_BUCKET.uploadsPrefix, STUDIES_BUCKET.quarantinePrefix, SCORING_REQUESTS_PREFIX].map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
        reason: `objects under ${prefix} of the studies bucket, whose keys (one per study) are not known at deploy time; the prefix is the narrowest scope`,
      })),
    );

    // After a promotion: every pending stack another model scored is scored again (domain/rescore.ts).
    this.rescore = new LambdaFunction(this, "Rescore", {
      handler: "rescore",
      description: "After a promotion: request a re-score of every study whose pending stacks another model scored",
      envSchema: RescoreEnvSchema,
      environment: scoringRequestEnvironment,
      invocation: { kind: "synchronous", caller: "an operator (aws lambda invoke) or the learning workflow after an endpoint update" },
      encryptionKey,
      logRetention: props.logRetention,
      timeout: Duration.minutes(5),
      reservedConcurrency: 1,
      statements: [
        new PolicyStatement({ sid: "WriteRescoreRequests", actions: ["s3:PutObject"], resources: [objects(RESCORE_REQUESTS_PREFIX)] }),
        ...recordsReadWrite(props.table),
        kmsUse(encryptionKey, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]),
        new PolicyStatement({ sid: "InvokeScoring", actions: ["sagemaker:InvokeEndpointAsync"], resources: [endpoint.endpointArn] }),
      ],
    });
    Validations.of(this.rescore.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${RESCORE_REQUESTS_PREFIX}*]`,
      reason: `re-score requests under ${RESCORE_REQUESTS_PREFIX}, one per study and model, whose keys are not known at deploy time; the prefix is the narrowest scope`,
    });

    this.scoreDeadLetterQueue = new Queue(this, "ScoreDeadLetterQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.scoreQueue = new Queue(this, "ScoreQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: encryptionKey,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(recordScoreTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.scoreDeadLetterQueue, maxReceiveCount },
    });
    subscribeEncryptedQueue(this, "Success", endpoint.successTopic, this.scoreQueue);
    subscribeEncryptedQueue(this, "Error", endpoint.errorTopic, this.scoreQueue);
    encryptionKey.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowSnsToDeliverToEncryptedQueuesOfThisAccount",
        principals: [new ServicePrincipal("sns.amazonaws.com")],
        actions: ["kms:GenerateDataKey*", "kms:Decrypt"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
      }),
    );

    this.recordScore = new LambdaFunction(this, "RecordScore", {
      handler: "record-score",
      description: "Async scoring notifications (SNS → SQS) → scored stack records with predicted labeling time",
      envSchema: RecordScoreEnvSchema,
      environment: {
        TABLE_NAME: props.table.tableName,
        METRICS_NAMESPACE: props.metricsNamespace,
        STUDIES_BUCKET: bucket.bucketName,
        TIME_MODEL_PRIOR: JSON.stringify(props.timePrior),
      },
      invocation: { kind: "synchronous", caller: "the score queue's event source mapping (failed messages are redriven to its DLQ)" },
      encryptionKey,
      logRetention: props.logRetention,
      timeout: recordScoreTimeout,
      reservedConcurrency: 2,
      statements: [
        new PolicyStatement({
          sid: "ReadScoringOutputs",
          actions: ["s3:GetObject"],
          resources: [objects(SCORING_OUTPUT_PREFIXES.results), objects(SCORING_OUTPUT_PREFIXES.failures)],
        }),
        // Moving a study the container refused to quarantine (domain/quarantine.ts): CopyObject of that version
        // (its tags too), then DeleteObject of that version by id.
        new PolicyStatement({
          sid: "MoveRefusedUploads",
          actions: ["s3:GetObjectVersion", "s3:GetObjectVersionTagging", "s3:DeleteObjectVersion"],
          resources: [objects(STUDIES_BUCKET.uploadsPrefix)],
        }),
        new PolicyStatement({
          sid: "WriteQuarantine",
          actions: ["s3:PutObject", "s3:PutObjectTagging"],
          resources: [objects(STUDIES_BUCKET.quarantinePrefix)],
        }),
        // Without ListBucket, CopyObject of a version that is gone answers 403, not 404, and record-score could
        // not record the rejection without a copy; it already sees the upload key of every study it records.
        new PolicyStatement({ sid: "TellMissingFromForbidden", actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }),
        ...recordsReadWrite(props.table),
        kmsUse(encryptionKey, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]),
      ],
    });
    this.recordScore.function.addEventSource(
      new SqsEventSource(this.scoreQueue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 2 }),
    );
    Validations.of(this.recordScore.role).acknowledge(
      ...[SCORING_OUTPUT_PREFIXES.results, SCORING_OUTPUT_PREFIXES.failures].map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
        reason: `asynchronous-inference outputs under ${prefix} of the studies bucket, named by SageMaker per request; the prefix is the narrowest scope`,
      })),
      ...[STUDIES_BUCKET.uploadsPrefix, STUDIES_BUCKET.quarantinePrefix].map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
        reason: `quarantine moves of refused studies: objects under ${prefix} of the studies bucket, one key per study that is not known at deploy time; the prefix is the narrowest scope`,
      })),
    );
  }
}

/**
 * Subscribes `queue` to `topic` (raw delivery off: record-score parses the SNS envelope) and lets only
 * that topic send to it. The data key's policy admits SNS of this account (not this topic's ARN: the
 * topic is encrypted with the same key, so naming it would make key and topic depend on each other).
 */
const subscribeEncryptedQueue = (scope: Construct, id: string, topic: Topic, queue: Queue): void => {
  queue.addToResourcePolicy(
    new PolicyStatement({
      principals: [new ServicePrincipal("sns.amazonaws.com")],
      actions: ["sqs:SendMessage"],
      resources: [queue.queueArn],
      conditions: { ArnEquals: { "aws:SourceArn": topic.topicArn } },
    }),
  );
  new Subscription(scope, `${id}Subscription`, {
    topic,
    endpoint: queue.queueArn,
    protocol: SubscriptionProtocol.SQS,
    rawMessageDelivery: false,
  });
};
