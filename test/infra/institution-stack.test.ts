import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { App, Duration } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import type { Asset } from "aws-cdk-lib/aws-s3-assets";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { InstitutionStack } from "../../infra/institution-stack.js";
import { StudiesIngest } from "../../infra/studies-ingest.js";
import { IngestEnvSchema, parseEnvironment, RecordScoreEnvSchema, RefitEnvSchema } from "../../lambdas/contracts/env.js";
import { REFIT_METRICS } from "../../lambdas/contracts/metrics.js";
import { RECORDS_TABLE } from "../../lambdas/contracts/records-table.js";
import { STUDIES_BUCKET } from "../../lambdas/contracts/studies-bucket.js";
import { allStatements, arn, buildStack, expectMatch, logicalId, ref, roleStatements } from "./stack-fixture.js";
import { testConfig } from "./test-config.js";

// The one stack of this file that is bundled with esbuild, as `cdk synth` does.
const { app: bundledApp, stack, t } = buildStack({}, { bundle: true });
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
      const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
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

    it("gives every log group a retention and the data key; CDK's notification handler's exists before the handler runs", () => {
      const logGroups = t.findResources("AWS::Logs::LogGroup");
      // 9 Lambdas, the state machine, the API's access log, CDK's notification handler, CDK's page-deployment
      // handler, the sealed network's flow logs and its two CDK custom-resource handlers (no endpoint without a model).
      expect(Object.keys(logGroups)).toHaveLength(16);
      for (const [id, group] of Object.entries(logGroups)) {
        expect(group.Properties, id).toMatchObject({ RetentionInDays: 365, KmsKeyId: dataKeyArn });
        expect(group.DeletionPolicy, id).toBe("Retain");
      }
      const handlerLogs = Object.keys(logGroups).find((id) => id.startsWith("BucketNotificationsHandler"));
      t.hasResource("Custom::S3BucketNotifications", { DependsOn: Match.arrayWith([handlerLogs]) });
    });
  });
});

describe("Lambda functions", () => {
  const functions = {
    ingest: stack.scoring.ingest,
    recordScore: stack.scoring.recordScore,
    rescore: stack.scoring.rescore,
    refit: stack.refit,
    select: stack.select,
    notify: stack.notify,
    roundFailure: stack.roundFailure,
    complete: stack.complete,
    startRound: stack.workflow.startRound,
  };

  it("are only ours: Node.js 24 on ARM64, bundled ESM with source maps, reserved concurrency, own encrypted log group", () => {
    const all = t.findResources("AWS::Lambda::Function");
    // Ours plus CDK's bucket-notifications and bucket-deployment handlers and the sealed network's two custom-resource
    // handlers (default security group, S3 prefix-list lookup): singletons with their own runtimes.
    expect(Object.keys(all)).toHaveLength(Object.keys(functions).length + 4);
    for (const [name, fn] of Object.entries(functions)) {
      t.hasResourceProperties("AWS::Lambda::Function", {
        FunctionName: Match.absent(),
        Handler: "index.handler",
        Runtime: "nodejs24.x",
        Architectures: ["arm64"],
        ReservedConcurrentExecutions: Match.anyValue(),
        LoggingConfig: { LogGroup: ref(fn.logGroup) },
        Role: arn(fn.role),
        Environment: { Variables: Match.objectLike({ NODE_OPTIONS: "--enable-source-maps" }) },
      });
      const resource = all[logicalId(fn.function)];
      expect(resource?.Properties.ReservedConcurrentExecutions, name).toBeGreaterThanOrEqual(1);
      expect(resource?.Properties.Timeout, name).toBeGreaterThan(0);
    }
  });

  it("get exactly the environment their env schema requires (lambdas/contracts/env.ts)", () => {
    const env = (fn: { function: IConstruct }) =>
      t.toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables as Record<string, unknown>;
    expect(Object.keys(env(functions.ingest)).sort()).toEqual(
      [
        "INVOKE_CLAIM_SECONDS",
        "MAX_OBJECT_BYTES",
        "MAX_RECEIVE_COUNT",
        "METRICS_NAMESPACE",
        "NODE_OPTIONS",
        "POWERTOOLS_LOGGER_LOG_EVENT",
        "POWERTOOLS_LOGGER_SAMPLE_RATE",
        "POWERTOOLS_LOG_LEVEL",
        "PRIVATE_CREATOR_ALLOW_LIST",
        "SCORING_ENDPOINT_NAME",
        "SCORING_THRESHOLDS",
        "SCORING_TOP_K",
        "STUDIES_BUCKET",
        "TABLE_NAME",
      ].sort(),
    );
    expect(env(functions.ingest)).toMatchObject({
      TABLE_NAME: ref(stack.records.table),
      STUDIES_BUCKET: ref(stack.studies.bucket),
      SCORING_ENDPOINT_NAME: "ich-al-test-hospital-scoring",
      INVOKE_CLAIM_SECONDS: "300",
      // The institution config's defaults (K = 200, τ = 0.3/0.5/0.7) and the ingest queue's redrive limit.
      SCORING_TOP_K: "200",
      SCORING_THRESHOLDS: "0.3,0.5,0.7",
      MAX_RECEIVE_COUNT: "5",
      // No private creator is allowed unless the institution config lists it.
      PRIVATE_CREATOR_ALLOW_LIST: "[]",
    });
    expect(env(functions.select)).toMatchObject({ WEEKLY_BUDGET_HOURS: "40", RESOLUTION_SECONDS: "1" });
    expect(env(functions.notify)).toMatchObject({
      SENDER_ADDRESS: "ich-al@example.org",
      ANNOTATOR_EMAILS: "radiologist@example.org",
      WEEKLY_BUDGET_HOURS: "40",
    });
    expect(env(functions.startRound)).toMatchObject({ STATE_MACHINE_ARN: ref(stack.workflow.stateMachine) });
    expect(env(functions.complete)).toMatchObject({ TABLE_NAME: ref(stack.records.table), STUDIES_BUCKET: ref(stack.studies.bucket) });
    // The Lambdas that name rounds read the ISO week in the schedule's time zone (config default: UTC).
    const naming = [functions.startRound, functions.select, functions.roundFailure, functions.complete];
    for (const fn of naming) expect(env(fn).SCHEDULE_TIMEZONE, logicalId(fn.function)).toBe("UTC");
    for (const fn of Object.values(functions).filter((f) => !naming.includes(f))) expect(env(fn)).not.toHaveProperty("SCHEDULE_TIMEZONE");
    for (const fn of Object.values(functions)) expect(env(fn)).not.toHaveProperty("AWS_ENDPOINT_URL");
  });

  it("give refit, record-score and the completion API the configured time model, which parses back with their schemas", () => {
    const timeModel = {
      prior: { alpha: 0.5, beta: 0.2, gamma: 4.5, residualSd: 0.4, strength: 8 },
      maxActiveHours: 6,
      calibrationBand: [0.7, 1.4] as [number, number],
    };
    const { stack: configured, t: configuredTemplate } = buildStack({ timeModel }, { id: "TimeModelConfigured" });
    const envOf = (fn: { function: IConstruct }) =>
      configuredTemplate.toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables as Record<string, string>;
    const refit = parseEnvironment("refit", RefitEnvSchema, { ...envOf(configured.refit), TABLE_NAME: "t" });
    expect(refit).toMatchObject({
      TIME_MODEL_PRIOR: timeModel.prior,
      MAX_ACTIVE_SECONDS: 6 * 3600,
      CALIBRATION_BAND: { low: 0.7, high: 1.4 },
      METRICS_NAMESPACE: "IchAl/test-hospital",
    });
    const recordScore = parseEnvironment("record-score", RecordScoreEnvSchema, {
      ...envOf(configured.scoring.recordScore),
      TABLE_NAME: "t",
      STUDIES_BUCKET: "b",
    });
    expect(recordScore.TIME_MODEL_PRIOR).toEqual(timeModel.prior);
    expect(envOf(configured.complete).MAX_ACTIVE_SECONDS).toBe(String(6 * 3600));
  });

  it("alarm when the refit refuses a time model and when a round's actual hours leave the calibration band", () => {
    for (const [metric, words] of [
      [REFIT_METRICS.fitRefused, /not stored/],
      [REFIT_METRICS.roundOutsideBand, /\[0\.8, 1\.25\]/],
    ] as const) {
      const alarms = t.findResources("AWS::CloudWatch::Alarm", { Properties: { Namespace: "IchAl/test-hospital", MetricName: metric } });
      expect(Object.keys(alarms), metric).toHaveLength(1);
      const props = (Object.values(alarms)[0] as { Properties: Record<string, unknown> }).Properties;
      expect(props).toMatchObject({ ComparisonOperator: "GreaterThanThreshold", Threshold: 0, TreatMissingData: "notBreaching" });
      expect(String(props.AlarmDescription)).toMatch(words);
    }
  });

  it("give ingest the configured K, thresholds and private creators, and the ingest queue's own maxReceiveCount", () => {
    const creators = ["GEMS_IDEN_01", "Vendor, Inc. 1"];
    const { stack: configured, t: configuredTemplate } = buildStack(
      { topK: 64, thresholds: [0.25, 0.6], deidentification: { allowedPrivateCreators: creators } },
      { id: "Configured" },
    );
    const ingestEnv = configuredTemplate.toJSON().Resources[logicalId(configured.scoring.ingest.function)].Properties.Environment
      .Variables as Record<string, string>;
    expect(ingestEnv).toMatchObject({ SCORING_TOP_K: "64", SCORING_THRESHOLDS: "0.25,0.6" });
    // What ingest calls its last delivery is what the queue's redrive policy calls it.
    const queue = configuredTemplate.toJSON().Resources[logicalId(configured.studies.queue)];
    expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(configured.studies.maxReceiveCount);
    expect(ingestEnv.MAX_RECEIVE_COUNT).toBe(String(queue.Properties.RedrivePolicy.maxReceiveCount));
    // The values parse back to the configuration with the Lambda's own schema.
    expect(parseEnvironment("ingest", IngestEnvSchema, { ...ingestEnv, TABLE_NAME: "t", STUDIES_BUCKET: "b" })).toMatchObject({
      SCORING_TOP_K: 64,
      SCORING_THRESHOLDS: [0.25, 0.6],
      PRIVATE_CREATOR_ALLOW_LIST: creators,
      MAX_RECEIVE_COUNT: configured.studies.maxReceiveCount,
    });
  });

  it("have roles with one customer-managed policy each and no AWS-managed or inline policy", () => {
    for (const [name, fn] of Object.entries(functions)) {
      const role = t.toJSON().Resources[logicalId(fn.role)];
      expect(role.Properties.ManagedPolicyArns, name).toEqual([ref(fn.role.policy)]);
      expect(role.Properties.Policies, name).toBeUndefined();
    }
    // The only inline policies left are CDK's own custom resources' (acknowledged in cdk-nag.test.ts).
    const inline = Object.keys(t.findResources("AWS::IAM::Policy"));
    const cdkOwn = [
      "StudiesNotifications",
      "BucketNotificationsHandler",
      "NetworkS3PrefixListCustomResourcePolicy",
      "CompletionApiAnnotatorSub",
    ];
    expect(inline.every((id) => cdkOwn.some((prefix) => id.startsWith(prefix)))).toBe(true);
  });
});

describe("IAM least privilege", () => {
  const statements = allStatements(t);
  const actionsOf = (s: Record<string, unknown>) => [s.Action].flat() as string[];

  it("grants no `*` action and no service-wide `service:*` action anywhere", () => {
    for (const s of statements) {
      for (const action of actionsOf(s)) {
        expect(action).not.toBe("*");
        expect(action, JSON.stringify(s)).not.toMatch(/:\*$/);
      }
    }
  });

  it("lets only the notify role send e-mail, and only as the sender identity", () => {
    const ses = statements.filter((s) => actionsOf(s).some((a) => a.startsWith("ses:")));
    expect(ses).toHaveLength(1);
    expect(roleStatements(t, stack.notify.role.policy)).toContainEqual(ses[0]);
    expectMatch(
      Match.objectLike({
        Effect: "Allow",
        Action: ["ses:SendEmail", "ses:SendRawEmail"],
        Condition: { StringEquals: { "ses:FromAddress": "ich-al@example.org" } },
      }),
      ses[0],
    );
    const resources = JSON.stringify(ses[0]?.Resource);
    expect(resources).toContain(":identity/ich-al@example.org");
    expect(resources).not.toContain("*");
    t.hasResourceProperties("AWS::SES::EmailIdentity", { EmailIdentity: "ich-al@example.org" });
  });

  it("lets only start-round start executions, of the weekly workflow only", () => {
    const start = statements.filter((s) => actionsOf(s).some((a) => a.startsWith("states:StartExecution")));
    expect(start).toEqual([
      { Sid: "StartThisWorkflowOnly", Effect: "Allow", Action: "states:StartExecution", Resource: ref(stack.workflow.stateMachine) },
    ]);
    expect(roleStatements(t, stack.workflow.startRound.role.policy)).toContainEqual(start[0]);
  });

  it("gives the table's users item access and Query on the by-status index by name, never Scan or table administration", () => {
    const dynamo = statements.flatMap(actionsOf).filter((a) => a.startsWith("dynamodb:"));
    expect(new Set(dynamo)).toEqual(
      new Set([
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
      ]),
    );
    const deleters = statements.filter((s) => actionsOf(s).includes("dynamodb:DeleteItem"));
    expect(deleters).toHaveLength(1);
    expect(roleStatements(t, stack.notify.role.policy)).toContainEqual(deleters[0]);
  });

  it("lets ingest and the re-score function invoke the scoring endpoint asynchronously and nothing else of SageMaker", () => {
    const sagemaker = statements.filter((s) => actionsOf(s).some((a) => a.startsWith("sagemaker:")));
    expect(sagemaker).toHaveLength(2);
    for (const [i, role] of [stack.scoring.ingest.role, stack.scoring.rescore.role].entries()) {
      expect(sagemaker[i]).toMatchObject({ Action: "sagemaker:InvokeEndpointAsync" });
      expect(JSON.stringify(sagemaker[i]?.Resource)).toContain(":endpoint/ich-al-test-hospital-scoring");
      expect(roleStatements(t, role.policy)).toContainEqual(sagemaker[i]);
    }
  });

  it("lets the re-score function write only re-score requests in the studies bucket", () => {
    const s3 = roleStatements(t, stack.scoring.rescore.role.policy).filter((s) => actionsOf(s).some((a) => a.startsWith("s3:")));
    expect(s3).toEqual([
      expect.objectContaining({
        Action: "s3:PutObject",
        Resource: { "Fn::Join": ["", [arn(stack.studies.bucket), "/scoring-requests/rescore/*"]] },
      }),
    ]);
  });

  it("names KMS actions exactly (no kms:* wildcards) in every role's policy", () => {
    const kms = [...new Set(statements.flatMap(actionsOf).filter((a) => a.startsWith("kms:")))];
    for (const action of kms) expect(action).not.toContain("*");
  });
});

describe("worklist page bundle", () => {
  it("is built at synth by web/worklist/build.ts (esbuild, no Docker) into the cloud assembly", () => {
    const deployment = stack.worklistSite.node.findChild("Deployment");
    const bundle = deployment.node.findChild("Asset1") as Asset;
    const folder = join(bundledApp.outdir, bundle.assetPath);
    expect(readdirSync(folder).sort()).toEqual(["app.js", "index.html", "worklist.css"]);
    expect(readFileSync(join(folder, "index.html"), "utf8")).toContain('<script type="module" src="app.js"></script>');
    // app.js is the bundled page: no import left for the browser to fetch from elsewhere.
    expect(readFileSync(join(folder, "app.js"), "utf8")).not.toMatch(/^\s*import\s/m);
  });
});

describe("outputs", () => {
  it("name everything the local runner and operators need", () => {
    const outputs = Object.keys(t.findOutputs("*"));
    for (const name of [
      "StudiesBucketName",
      "IngestQueueUrl",
      "IngestDeadLetterQueueUrl",
      "ScoreQueueUrl",
      "ScoreDeadLetterQueueUrl",
      "TriggerDeadLetterQueueUrl",
      "RecordsTableName",
      "ScoringEndpointName",
      "ScoringSuccessTopicArn",
      "ScoringErrorTopicArn",
      "WeeklyStateMachineArn",
      "CompletionApiUrl",
      "UserPoolId",
      "UserPoolClientId",
      "WorklistUrl",
      "WorklistSignInOrigin",
      "WorklistSiteBucketName",
      "SenderIdentityArn",
      "AlarmTopicArn",
      "DataKeyArn",
    ]) {
      expect(outputs).toContain(name);
    }
  });
});
