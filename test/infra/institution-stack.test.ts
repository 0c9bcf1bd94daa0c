import { App, type CfnElement, Duration } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { InstitutionStack } from "../../infra/institution-stack.js";
import { StudiesIngest } from "../../infra/studies-ingest.js";
import { RECORDS_TABLE } from "../../lambdas/contracts/records-table.js";
import { STUDIES_BUCKET } from "../../lambdas/contracts/studies-bucket.js";
import { testConfig } from "./test-config.js";

const build = () => {
  const stack = new InstitutionStack(new App(), "Test", { config: testConfig() });
  return { stack, t: Template.fromStack(stack) };
};
const { stack, t } = build();
/** The logical id a construct's resource has in the template (overrides included). */
const logicalId = (construct: IConstruct): string => stack.resolve((construct.node.defaultChild as CfnElement).logicalId);
const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) });
const arn = (construct: IConstruct) => ({ "Fn::GetAtt": [logicalId(construct), "Arn"] });
const dataKeyArn = arn(stack.dataKey.key);
const studiesBucket = stack.studies.bucket;

describe("InstitutionStack", () => {
  it("creates the records table with the key layout and GSI the adapters use", () => {
    t.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: RECORDS_TABLE.partitionKey, KeyType: "HASH" },
        { AttributeName: RECORDS_TABLE.sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: RECORDS_TABLE.statusIndex.name,
          KeySchema: [
            { AttributeName: RECORDS_TABLE.statusIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: RECORDS_TABLE.statusIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        }),
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: "KMS", KMSMasterKeyId: dataKeyArn }),
    });
  });

  it("retains the table, rotates its customer-managed key and backs the table up daily", () => {
    t.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    t.hasResource("AWS::KMS::Key", { Properties: Match.objectLike({ EnableKeyRotation: true }), DeletionPolicy: "Retain" });
    t.resourceCountIs("AWS::KMS::Key", 1);
    // Same logical id as before the key moved into its own construct, so a deployed stack keeps its key.
    expect(Object.keys(t.findResources("AWS::KMS::Key"))).toEqual(["DataKey17AFBB84"]);
    t.hasResourceProperties("AWS::Backup::BackupVault", { EncryptionKeyArn: dataKeyArn });
    t.hasResourceProperties("AWS::Backup::BackupSelection", {
      BackupSelection: Match.objectLike({ Resources: [arn(stack.records.table)] }),
    });
  });

  it("rejects an institution id that cannot name resources, saying what to use", () => {
    expect(() => new InstitutionStack(new App(), "Bad", { config: { ...testConfig(), institution: "St Elsewhere" } })).toThrow(
      /lower-case letters, digits or hyphens/,
    );
  });

  describe("studies bucket", () => {
    it("is encrypted with the data key, versioned, blocks all public access and disables ACLs", () => {
      t.hasResourceProperties("AWS::S3::Bucket", {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: dataKeyArn } },
          ],
        },
        VersioningConfiguration: { Status: "Enabled" },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
        LoggingConfiguration: { DestinationBucketName: ref(stack.studies.accessLogBucket), LogFilePrefix: "studies/" },
      });
    });

    it("denies every request without TLS, on both buckets", () => {
      for (const bucket of [studiesBucket, stack.studies.accessLogBucket]) {
        t.hasResourceProperties("AWS::S3::BucketPolicy", {
          Bucket: ref(bucket),
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({
                Effect: "Deny",
                Action: "s3:*",
                Principal: { AWS: "*" },
                Condition: { Bool: { "aws:SecureTransport": "false" } },
              }),
            ]),
          },
        });
      }
    });

    it("keeps access logs in a separate, versioned, private SSE-S3 bucket written by the S3 logging service only", () => {
      t.hasResourceProperties("AWS::S3::Bucket", {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
        VersioningConfiguration: { Status: "Enabled" },
        PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicPolicy: true, RestrictPublicBuckets: true }),
        OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
        LoggingConfiguration: Match.absent(),
      });
      t.hasResourceProperties("AWS::S3::BucketPolicy", {
        Bucket: ref(stack.studies.accessLogBucket),
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Allow",
              Principal: { Service: "logging.s3.amazonaws.com" },
              Action: "s3:PutObject",
              Condition: Match.objectLike({ ArnLike: { "aws:SourceArn": arn(studiesBucket) } }),
            }),
          ]),
        },
      });
    });

    it(`sends ObjectCreated events under ${STUDIES_BUCKET.uploadsPrefix} (and only there) to the ingest queue`, () => {
      t.hasResourceProperties("Custom::S3BucketNotifications", {
        BucketName: ref(studiesBucket),
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              Events: ["s3:ObjectCreated:*"],
              Filter: { Key: { FilterRules: [{ Name: "prefix", Value: STUDIES_BUCKET.uploadsPrefix }] } },
              QueueArn: arn(stack.studies.queue),
            },
          ],
        },
      });
      t.hasResourceProperties("AWS::SQS::QueuePolicy", {
        Queues: [ref(stack.studies.queue)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Allow",
              Principal: { Service: "s3.amazonaws.com" },
              Action: Match.arrayWith(["sqs:SendMessage"]),
              Condition: Match.objectLike({ ArnLike: { "aws:SourceArn": arn(studiesBucket) } }),
            }),
          ]),
        },
      });
    });

    it("documents the quarantine prefix apart from the routed uploads prefix", () => {
      expect(STUDIES_BUCKET.quarantinePrefix).toBe("quarantine/");
      expect(STUDIES_BUCKET.quarantinePrefix.startsWith(STUDIES_BUCKET.uploadsPrefix)).toBe(false);
    });
  });

  describe("ingest queue", () => {
    it("is KMS-encrypted with the data key, has 6× the ingest timeout as visibility and re-drives after 5 receives", () => {
      t.hasResourceProperties("AWS::SQS::Queue", {
        KmsMasterKeyId: dataKeyArn,
        VisibilityTimeout: 360,
        RedrivePolicy: { deadLetterTargetArn: arn(stack.studies.deadLetterQueue), maxReceiveCount: 5 },
      });
    });

    it("has a KMS-encrypted DLQ that keeps messages 14 days, longer than the queue", () => {
      t.hasResourceProperties("AWS::SQS::Queue", {
        KmsMasterKeyId: dataKeyArn,
        MessageRetentionPeriod: 14 * 24 * 3600,
        RedrivePolicy: Match.absent(),
      });
      t.hasResourceProperties("AWS::SQS::Queue", { RedrivePolicy: Match.anyValue(), MessageRetentionPeriod: 4 * 24 * 3600 });
    });

    it("denies non-TLS access to both queues", () => {
      for (const queue of [stack.studies.queue, stack.studies.deadLetterQueue]) {
        t.hasResourceProperties("AWS::SQS::QueuePolicy", {
          Queues: [ref(queue)],
          PolicyDocument: {
            Statement: Match.arrayWith([Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]),
          },
        });
      }
    });

    it("lets S3 use the data key to send to the encrypted queue, without a cycle between key and bucket", () => {
      t.hasResourceProperties("AWS::KMS::Key", {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Principal: { Service: "s3.amazonaws.com" },
              Action: ["kms:GenerateDataKey*", "kms:Decrypt"],
              Condition: Match.absent(),
            }),
          ]),
        },
      });
      const key = Object.values(t.findResources("AWS::KMS::Key"))[0];
      expect(JSON.stringify(key)).not.toContain(logicalId(studiesBucket));
    });

    it("refuses a timeout the ingest Lambda cannot have and a redrive count SQS refuses, naming the fix", () => {
      const app = new App();
      const scope = new InstitutionStack(app, "Props", { config: testConfig() });
      const encryptionKey = new Key(scope, "K", { enableKeyRotation: true });
      expect(() => new StudiesIngest(scope, "A", { encryptionKey, ingestFunctionTimeout: Duration.minutes(16) })).toThrow(
        /ingestFunctionTimeout must be 1 s–15 min/,
      );
      expect(() => new StudiesIngest(scope, "B", { encryptionKey, maxReceiveCount: 0 })).toThrow(
        /maxReceiveCount must be an integer 1–1000/,
      );
    });
  });

  describe("alarms", () => {
    it("alarms on any visible message in the DLQ, notifying an encrypted topic on alarm and on recovery", () => {
      const topic = ref(stack.alarms.topic);
      t.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/SQS",
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [
          {
            Name: "QueueName",
            Value: { "Fn::GetAtt": [logicalId(stack.studies.deadLetterQueue), "QueueName"] },
          },
        ],
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: 0,
        EvaluationPeriods: 1,
        TreatMissingData: "notBreaching",
        ActionsEnabled: true,
        AlarmActions: [topic],
        OKActions: [topic],
      });
      t.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: dataKeyArn });
      t.hasResourceProperties("AWS::SNS::TopicPolicy", {
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]),
        },
      });
      t.hasResourceProperties("AWS::KMS::Key", {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({ Principal: { Service: "cloudwatch.amazonaws.com" }, Action: ["kms:Decrypt", "kms:GenerateDataKey*"] }),
          ]),
        },
      });
    });

    it("gives the only log group (CDK's notification handler) a retention and the data key, before the handler runs", () => {
      t.resourceCountIs("AWS::Logs::LogGroup", 1);
      t.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 365, KmsKeyId: dataKeyArn });
      const [logGroupId] = Object.keys(t.findResources("AWS::Logs::LogGroup"));
      t.hasResource("Custom::S3BucketNotifications", { DependsOn: Match.arrayWith([logGroupId]) });
    });
  });
});
