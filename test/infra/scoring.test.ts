import { existsSync } from "node:fs";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { Bucket } from "aws-cdk-lib/aws-s3";
import type { CfnEndpoint } from "aws-cdk-lib/aws-sagemaker";
import { AssetManifestArtifact } from "aws-cdk-lib/cx-api";
import { describe, expect, it } from "vitest";
import { ScoringEndpoint } from "../../infra/scoring-endpoint.js";
import { SealedNetwork } from "../../infra/sealed-network.js";
import { arn, buildStack, logicalId, MODEL_ARTIFACT, ref, roleStatements } from "./stack-fixture.js";

const withModel = buildStack({ scoring: { modelArtifact: MODEL_ARTIFACT, maxInstanceCount: 2 } });
const { stack, t } = withModel;
const bucket = stack.studies.bucket;
const objects = (prefix: string) => ({ "Fn::Join": ["", [arn(bucket), `/${prefix}*`]] });

describe("scoring endpoint (with a model artefact)", () => {
  it("runs the model-container image with the configured weights under a least-privilege execution role", () => {
    const endpoint = stack.scoringEndpoint;
    t.resourceCountIs("AWS::SageMaker::Model", 1);
    t.hasResourceProperties("AWS::SageMaker::Model", {
      PrimaryContainer: {
        Image: Match.anyValue(),
        ModelDataUrl: MODEL_ARTIFACT,
        Mode: "SingleModel",
        // as many requests at once as the endpoint config sends (MaxConcurrentInvocationsPerInstance 2)
        Environment: { ICHAL_CONCURRENT_REQUESTS: "2" },
      },
      ExecutionRoleArn: Match.anyValue(),
    });
    const role = stack.node
      .findChild("ScoringEndpoint")
      .node.findChild("ExecutionRole") as import("../../infra/managed-policy-role.js").ManagedPolicyRole;
    const statements = roleStatements(t, role.policy);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: "s3:GetObject",
        Resource: { "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":s3:::ich-models/v1/model.tar.gz"]] },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ["s3:GetObject", "s3:GetObjectVersion"],
        Resource: [objects("uploads/"), objects("scoring-requests/")],
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: "s3:PutObject",
        Resource: [objects("overlays/"), objects("scoring-results/"), objects("scoring-failures/")],
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: "sns:Publish", Resource: [ref(endpoint.successTopic), ref(endpoint.errorTopic)] }),
    );
    // The image asset is staged at synth without Docker (built at deploy), without the local virtualenv and tests.
    const assembly = withModel.app.synth();
    const manifests = assembly.artifacts.filter((a): a is AssetManifestArtifact => a instanceof AssetManifestArtifact);
    const images = manifests.flatMap((m) => Object.values(m.contents.dockerImages ?? {}));
    expect(images).toHaveLength(1);
    const staged = join(assembly.directory, images[0]?.source.directory ?? "");
    expect(existsSync(join(staged, "Dockerfile"))).toBe(true);
    expect(existsSync(join(staged, "ichal"))).toBe(true);
    for (const excluded of [".venv", "tests", "bench"]) expect(existsSync(join(staged, excluded)), excluded).toBe(false);
  });

  it("is asynchronous: outputs and failures in the studies bucket (KMS), success/error topics, bounded concurrency", () => {
    t.hasResourceProperties("AWS::SageMaker::EndpointConfig", {
      ProductionVariants: [Match.objectLike({ VariantName: "AllTraffic", InstanceType: "ml.g5.xlarge", InitialInstanceCount: 1 })],
      AsyncInferenceConfig: {
        ClientConfig: { MaxConcurrentInvocationsPerInstance: 2 },
        OutputConfig: {
          S3OutputPath: { "Fn::Join": ["", ["s3://", ref(bucket), "/scoring-results/"]] },
          S3FailurePath: { "Fn::Join": ["", ["s3://", ref(bucket), "/scoring-failures/"]] },
          KmsKeyId: arn(stack.dataKey.key),
          NotificationConfig: { SuccessTopic: ref(stack.scoringEndpoint.successTopic), ErrorTopic: ref(stack.scoringEndpoint.errorTopic) },
        },
      },
      // ml.g5 has local NVMe: SageMaker rejects an endpoint-config KmsKeyId (acknowledged in cdk-nag.test.ts).
      KmsKeyId: Match.absent(),
    });
    t.hasResourceProperties("AWS::SageMaker::Endpoint", { EndpointName: "ich-al-test-hospital-scoring" });
    for (const topic of [stack.scoringEndpoint.successTopic, stack.scoringEndpoint.errorTopic]) {
      t.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: arn(stack.dataKey.key) });
      t.hasResourceProperties("AWS::SNS::TopicPolicy", {
        Topics: [ref(topic)],
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]),
        },
      });
    }
  });

  it("sets the endpoint-config KmsKeyId for instance types without local NVMe", () => {
    const s = new Stack(new App(), "NoNvme");
    const key = new Key(s, "K", { enableKeyRotation: true });
    new ScoringEndpoint(s, "E", {
      institution: "x",
      network: new SealedNetwork(s, "N", { encryptionKey: key }),
      instanceType: "ml.p3.2xlarge", // EBS only, no instance store
      maxInstanceCount: 1,
      modelArtifact: MODEL_ARTIFACT,
      studiesBucket: new Bucket(s, "B"),
      encryptionKey: key,
      imageDirectory: "model-container",
    });
    Template.fromStack(s).hasResourceProperties("AWS::SageMaker::EndpointConfig", { KmsKeyId: arn(key) });
  });

  it("tells the container how many requests SageMaker sends it at once", () => {
    const s = new Stack(new App(), "PerInstance");
    const encryptionKey = new Key(s, "K", { enableKeyRotation: true });
    new ScoringEndpoint(s, "E", {
      institution: "x",
      network: new SealedNetwork(s, "N", { encryptionKey }),
      instanceType: "ml.g5.xlarge",
      maxInstanceCount: 1,
      maxConcurrentInvocationsPerInstance: 3,
      modelArtifact: MODEL_ARTIFACT,
      studiesBucket: new Bucket(s, "B"),
      encryptionKey,
      imageDirectory: "model-container",
    });
    const template = Template.fromStack(s);
    template.hasResourceProperties("AWS::SageMaker::EndpointConfig", {
      AsyncInferenceConfig: Match.objectLike({ ClientConfig: { MaxConcurrentInvocationsPerInstance: 3 } }),
    });
    template.hasResourceProperties("AWS::SageMaker::Model", {
      PrimaryContainer: Match.objectLike({ Environment: { ICHAL_CONCURRENT_REQUESTS: "3" } }),
    });
  });

  it("scales to zero when the backlog is empty and from zero when a request waits", () => {
    t.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", {
      ServiceNamespace: "sagemaker",
      ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
      ResourceId: {
        "Fn::Join": [
          "",
          [
            "endpoint/",
            { "Fn::GetAtt": [logicalId(stack.scoringEndpoint.endpoint as CfnEndpoint), "EndpointName"] },
            "/variant/AllTraffic",
          ],
        ],
      },
      MinCapacity: 0,
      MaxCapacity: 2,
    });
    t.hasResourceProperties("AWS::ApplicationAutoScaling::ScalingPolicy", {
      PolicyType: "TargetTrackingScaling",
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        CustomizedMetricSpecification: Match.objectLike({ MetricName: "ApproximateBacklogSizePerInstance", Namespace: "AWS/SageMaker" }),
        TargetValue: 5,
      }),
    });
    t.hasResourceProperties("AWS::ApplicationAutoScaling::ScalingPolicy", {
      PolicyType: "StepScaling",
      StepScalingPolicyConfiguration: Match.objectLike({
        AdjustmentType: "ChangeInCapacity",
        StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
      }),
    });
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "HasBacklogWithoutCapacity",
      Namespace: "AWS/SageMaker",
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      AlarmActions: [Match.objectLike({ Ref: Match.stringLikeRegexp("ScaleFromZero") })],
    });
  });

  it("alarms on container faults and on a backlog that does not drain", () => {
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "Invocation5XXErrors",
      Namespace: "AWS/SageMaker",
      AlarmActions: [ref(stack.alarms.topic)],
    });
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateAgeOfOldestRequest",
      AlarmActions: [ref(stack.alarms.topic)],
    });
  });

  it("refuses a bad instance type, instance count or artefact location, naming the fix", () => {
    const s = new Stack(new App(), "Bad");
    const encryptionKey = new Key(s, "K");
    const base = {
      institution: "x",
      network: new SealedNetwork(s, "N", { encryptionKey }),
      studiesBucket: new Bucket(s, "B"),
      encryptionKey,
    };
    expect(() => new ScoringEndpoint(s, "A", { ...base, instanceType: "g5.xlarge", maxInstanceCount: 1 })).toThrow(/ml\.g5\.xlarge/);
    expect(() => new ScoringEndpoint(s, "C", { ...base, instanceType: "ml.g5.xlarge", maxInstanceCount: 0 })).toThrow(
      /maxInstanceCount must be an integer 1–10/,
    );
    expect(
      () =>
        new ScoringEndpoint(s, "D", { ...base, instanceType: "ml.g5.xlarge", maxInstanceCount: 1, modelArtifact: "https://x/m.tar.gz" }),
    ).toThrow(/s3:\/\/bucket\/path\/model\.tar\.gz/);
  });
});

describe("ingest and record-score", () => {
  it("ingest consumes the ingest queue with partial batch failures, its concurrency capped to what the endpoint serves", () => {
    t.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: arn(stack.studies.queue),
      FunctionName: ref(stack.scoring.ingest.function),
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      // 2 instances × 2 concurrent invocations each.
      ScalingConfig: { MaximumConcurrency: 4 },
      Enabled: true,
    });
    t.hasResourceProperties("AWS::Lambda::Function", { ReservedConcurrentExecutions: 4, Role: arn(stack.scoring.ingest.role) });
  });

  it("ingest may read uploads, write quarantine and scoring requests, use the table and key, and invoke the endpoint", () => {
    const statements = roleStatements(t, stack.scoring.ingest.role.policy);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"],
        Resource: objects("uploads/"),
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ["s3:PutObject", "s3:PutObjectTagging"],
        Resource: [objects("quarantine/"), objects("scoring-requests/")],
      }),
    );
    expect(statements).toContainEqual(expect.objectContaining({ Action: "sagemaker:InvokeEndpointAsync" }));
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: expect.arrayContaining(["sqs:ReceiveMessage", "sqs:DeleteMessage"]),
        Resource: arn(stack.studies.queue),
      }),
    );
  });

  it("routes the endpoint's success and error topics to a KMS score queue with a DLQ, consumed by record-score with partial batch failures", () => {
    const queue = stack.scoring.scoreQueue;
    for (const topic of [stack.scoringEndpoint.successTopic, stack.scoringEndpoint.errorTopic]) {
      t.hasResourceProperties("AWS::SNS::Subscription", {
        TopicArn: ref(topic),
        Protocol: "sqs",
        Endpoint: arn(queue),
        RawMessageDelivery: false,
      });
      t.hasResourceProperties("AWS::SQS::QueuePolicy", {
        Queues: [ref(queue)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Principal: { Service: "sns.amazonaws.com" },
              Action: "sqs:SendMessage",
              Condition: { ArnEquals: { "aws:SourceArn": ref(topic) } },
            }),
          ]),
        },
      });
    }
    t.hasResourceProperties("AWS::SQS::Queue", {
      KmsMasterKeyId: arn(stack.dataKey.key),
      VisibilityTimeout: 360,
      RedrivePolicy: { deadLetterTargetArn: arn(stack.scoring.scoreDeadLetterQueue), maxReceiveCount: 5 },
    });
    t.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: arn(queue),
      FunctionName: ref(stack.scoring.recordScore.function),
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [logicalId(stack.scoring.scoreDeadLetterQueue), "QueueName"] } }],
    });
  });

  it("record-score may read only results and failures of the studies bucket, and move a refused upload's version to quarantine", () => {
    const statements = roleStatements(t, stack.scoring.recordScore.role.policy);
    const s3 = statements.filter((s) => JSON.stringify(s.Action).includes("s3:"));
    expect(s3).toEqual([
      expect.objectContaining({ Action: "s3:GetObject", Resource: [objects("scoring-results/"), objects("scoring-failures/")] }),
      expect.objectContaining({
        Action: ["s3:GetObjectVersion", "s3:GetObjectVersionTagging", "s3:DeleteObjectVersion"],
        Resource: objects("uploads/"),
      }),
      expect.objectContaining({ Action: ["s3:PutObject", "s3:PutObjectTagging"], Resource: objects("quarantine/") }),
      expect.objectContaining({ Action: "s3:ListBucket", Resource: arn(stack.studies.bucket) }),
    ]);
  });
});

describe("without a model artefact", () => {
  const { stack: bare, t: bareTemplate } = buildStack({}, { id: "NoModel" });

  it("creates no SageMaker model, endpoint or scaling, and leaves the ingest event source disabled so uploads wait in the queue", () => {
    for (const type of [
      "AWS::SageMaker::Model",
      "AWS::SageMaker::EndpointConfig",
      "AWS::SageMaker::Endpoint",
      "AWS::ApplicationAutoScaling::ScalableTarget",
    ]) {
      bareTemplate.resourceCountIs(type, 0);
    }
    bareTemplate.hasResourceProperties("AWS::Lambda::EventSourceMapping", { EventSourceArn: arn(bare.studies.queue), Enabled: false });
    expect(bare.scoringEndpoint.deployed).toBe(false);
    // The topics and the score queue still exist, so a redeploy with a model only adds the endpoint.
    bareTemplate.hasResourceProperties("AWS::SNS::Subscription", { Endpoint: arn(bare.scoring.scoreQueue) });
  });
});
