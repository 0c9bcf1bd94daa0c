import { join } from "node:path";
import { ArnFormat, Duration, Stack, Validations } from "aws-cdk-lib";
import { AdjustmentType, MetricAggregationType, ScalableTarget, ServiceNamespace } from "aws-cdk-lib/aws-applicationautoscaling";
import { Metric } from "aws-cdk-lib/aws-cloudwatch";
import { DockerImageAsset, Platform } from "aws-cdk-lib/aws-ecr-assets";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { CfnEndpoint, CfnEndpointConfig, CfnModel } from "aws-cdk-lib/aws-sagemaker";
import { Topic } from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { TRAINING_OUTPUT_PREFIX } from "../lambdas/contracts/learning.js";
import { STUDIES_BUCKET } from "../lambdas/contracts/studies-bucket.js";
import { OVERLAYS_PREFIX, SCORING_REQUESTS_PREFIX } from "../lambdas/domain/ingest.js";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { REPO_ROOT } from "./lambda-function.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";
import { resourceFindingId } from "./nag-ids.js";
import type { SealedNetwork } from "./sealed-network.js";

/** Where asynchronous inference leaves results and failures in the studies bucket (read by record-score). */
export const SCORING_OUTPUT_PREFIXES = { results: "scoring-results/", failures: "scoring-failures/" } as const;

/**
 * Instance families with local NVMe instance storage. SageMaker rejects an endpoint config KmsKeyId for
 * them (their instance store is hardware-encrypted at rest with a key that never leaves the instance).
 */
export const NVME_FAMILIES = /^ml\.(g4dn|g5|g6|g6e|gr6|p3dn|p4d|p4de|p5|p5e|p5en|m5d|c5d|r5d|inf2|trn1|trn1n)\./;

export interface ScoringEndpointProps {
  /** Institution id; names the endpoint `ich-al-<institution>-scoring`. */
  readonly institution: string;
  /** The network the model's container runs in (private isolated subnets, S3 gateway endpoint only). Required: the container is never given a route to the internet. */
  readonly network: SealedNetwork;
  /** SageMaker instance type, e.g. `ml.g5.xlarge`. */
  readonly instanceType: string;
  /** Most instances autoscaling may run (1–10). */
  readonly maxInstanceCount: number;
  /** The trained ensemble, `s3://bucket/path/model.tar.gz`. Default: none — no model and no endpoint are created (see the class doc). */
  readonly modelArtifact?: string;
  /** The studies bucket: the container reads `uploads/` and `scoring-requests/`, writes `overlays/`; SageMaker writes results and failures. */
  readonly studiesBucket: IBucket;
  /** Customer-managed key of the bucket, the notification topics, the output objects and the logs. */
  readonly encryptionKey: IKey;
  /** Requests one instance works on at once (SageMaker queues the rest). Default: 2 (one on the GPU, one in CPU pre/post-processing). */
  readonly maxConcurrentInvocationsPerInstance?: number;
  /** Backlog per instance that target tracking aims at. Default: 5 requests. */
  readonly targetBacklogPerInstance?: number;
  /** Idle time before the last instance is removed (scale-in cooldown). Default: 10 minutes. */
  readonly scaleInCooldown?: Duration;
  /** Retention of the endpoint's log group. Default: one year. */
  readonly logRetention?: RetentionDays;
  /** Directory of the model container image (Dockerfile). Default: `model-container/` at the repository root. */
  readonly imageDirectory?: string;
}

/**
 * The scoring endpoint: SageMaker **asynchronous inference** of the `model-container` image.
 *
 * Requests name a study by S3 location (`scoring-requests/<studyId>.json`, written by ingest); SageMaker
 * queues them, runs them `maxConcurrentInvocationsPerInstance` at a time per instance, writes the result to
 * `scoring-results/` or the failure to `scoring-failures/` (KMS-encrypted with the data key) and publishes
 * to the success or error SNS topic, which record-score consumes. Async inference accepts payloads up to
 * 1 GB and an hour of processing, unlike real-time endpoints (6 MB, 60 s).
 *
 * Cost: autoscaling scales the variant to **zero** instances when the backlog is empty (min capacity 0,
 * target tracking on ApproximateBacklogSizePerInstance) and from zero when a request waits
 * (step scaling on HasBacklogWithoutCapacity ≥ 1) — the documented AWS pattern. With 100–200 studies a
 * week the GPU runs minutes per week, not 168 hours. The first request after idle waits for an instance
 * (typically 5–10 minutes), which a weekly selection loop does not notice.
 *
 * Without `modelArtifact` no model, endpoint config, endpoint or scaling exist (SageMaker cannot create
 * a model without weights). The topics and the endpoint name do, so the rest of the pipeline deploys;
 * the scoring stack's ingest event source is then created disabled and uploads wait in the ingest queue
 * (4-day retention) until the stack is redeployed with `scoring.modelArtifact` set.
 *
 * The execution role may read the model artefact, pull the image, read uploads and scoring requests,
 * write overlays, results and failures, use the data key, publish to the two topics, write the
 * endpoint's own log group and attach the model to the sealed network; nothing else.
 *
 * Sealed: the container parses untrusted, possibly PHI-bearing uploads, so it runs in `network`
 * (SealedNetwork: private isolated subnets, S3 gateway endpoint, no NAT or internet; its doc has the
 * rest). Not `EnableNetworkIsolation`: an isolated container can make no outbound call, not even to S3,
 * and gets no credentials (SageMaker developer guide, "Run training and inference containers in
 * internet-free mode"); ours reads the study named in the request and writes the overlays itself
 * (model-container/ichal/scoring.py). The platform, not the container, pulls the image, moves the async
 * request and result and publishes to the topics ("Check prediction results"), so S3 is all the
 * container needs. Every S3 grant of the role goes through `s3Access`: role and endpoint policy agree.
 */
export class ScoringEndpoint extends Construct {
  /** The endpoint's name (fixed, so the log group and IAM can name it before it exists). */
  readonly endpointName: string;
  /** ARN for `sagemaker:InvokeEndpointAsync`. */
  readonly endpointArn: string;
  /** SageMaker publishes here when a request completed. */
  readonly successTopic: Topic;
  /** SageMaker publishes here when a request failed. */
  readonly errorTopic: Topic;
  /** Whether a model (and so the endpoint) is deployed. */
  readonly deployed: boolean;
  /** The endpoint, when deployed. */
  readonly endpoint?: CfnEndpoint;
  /** The endpoint config, when deployed. */
  readonly endpointConfig?: CfnEndpointConfig;
  /** The autoscaling target (min 0), when deployed. */
  readonly scalableTarget?: ScalableTarget;
  /** The production variant's name. */
  readonly variantName = "AllTraffic";
  /** The model container image, when deployed (the learning workflow trains with it). */
  readonly image?: DockerImageAsset;
  /** The endpoint's Model and EndpointConfig as CloudFormation made them, when deployed. */
  readonly model?: CfnModel;
  /** The execution role, when deployed (a promoted model runs under it too). */
  readonly executionRole?: ManagedPolicyRole;
  /** Requests the endpoint works on at once at full scale (maxInstanceCount × maxConcurrentInvocationsPerInstance). */
  readonly maxConcurrentRequests: number;

  constructor(scope: Construct, id: string, props: ScoringEndpointProps) {
    super(scope, id);
    if (!/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(props.instanceType)) {
      throw new Error(
        `ScoringEndpoint: instanceType must be a SageMaker instance type such as ml.g5.xlarge, got ${JSON.stringify(props.instanceType)}`,
      );
    }
    if (!Number.isInteger(props.maxInstanceCount) || props.maxInstanceCount < 1 || props.maxInstanceCount > 10) {
      throw new Error(`ScoringEndpoint: maxInstanceCount must be an integer 1–10, got ${props.maxInstanceCount}`);
    }
    const perInstance = props.maxConcurrentInvocationsPerInstance ?? 2;
    if (!Number.isInteger(perInstance) || perInstance < 1 || perInstance > 1000) {
      throw new Error(`ScoringEndpoint: maxConcurrentInvocationsPerInstance must be an integer 1–1000, got ${perInstance}`);
    }
    this.maxConcurrentRequests = props.maxInstanceCount * perInstance;
    const artifact = props.modelArtifact === undefined ? undefined : parseS3Uri(props.modelArtifact);

    const stack = Stack.of(this);
    this.endpointName = `ich-al-${props.institution}-scoring`;
    this.endpointArn = stack.formatArn({ service: "sagemaker", resource: "endpoint", resourceName: this.endpointName });
    this.successTopic = new Topic(this, "SuccessTopic", { masterKey: props.encryptionKey, enforceSSL: true });
    this.errorTopic = new Topic(this, "ErrorTopic", { masterKey: props.encryptionKey, enforceSSL: true });
    this.deployed = artifact !== undefined;
    if (!artifact) return;

    const bucket = props.studiesBucket;
    const image = new DockerImageAsset(this, "Image", {
      directory: props.imageDirectory ?? join(REPO_ROOT, "model-container"),
      platform: Platform.LINUX_AMD64,
      exclude: [".venv", ".pytest_cache", ".ruff_cache", "tests", "bench", "**/__pycache__", "**/*.pyc"],
    });
    this.image = image;
    const logGroup = encryptedLogGroup(this, "Logs", {
      encryptionKey: props.encryptionKey,
      retention: props.logRetention,
      logGroupName: `/aws/sagemaker/Endpoints/${this.endpointName}`,
    });

    const role = new ManagedPolicyRole(this, "ExecutionRole", {
      assumedBy: new ServicePrincipal("sagemaker.amazonaws.com"),
      description: `SageMaker execution role of ${this.endpointName}`,
    });
    const objects = (...prefixes: string[]) => prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
    // Each S3 grant is also what the sealed network's S3 endpoint lets through (add S3 grants only here).
    const s3Access = (sid: string, actions: string[], resources: string[]) => {
      role.addToPrincipalPolicy(new PolicyStatement({ sid, actions, resources }));
      props.network.allowS3(actions, resources);
    };
    s3Access(
      "ReadModelArtifact",
      ["s3:GetObject"],
      [stack.formatArn({ service: "s3", region: "", account: "", resource: artifact.bucket, resourceName: artifact.key })],
    );
    // Promoted models: the learning workflow's training jobs write them under training-output/.
    s3Access("ReadTrainedModels", ["s3:GetObject"], objects(TRAINING_OUTPUT_PREFIX));
    s3Access(
      "ReadStudiesAndRequests",
      ["s3:GetObject", "s3:GetObjectVersion"],
      objects(STUDIES_BUCKET.uploadsPrefix, SCORING_REQUESTS_PREFIX),
    );
    s3Access(
      "WriteOverlaysResultsFailures",
      ["s3:PutObject"],
      objects(OVERLAYS_PREFIX, SCORING_OUTPUT_PREFIXES.results, SCORING_OUTPUT_PREFIXES.failures),
    );
    props.network.grantSageMakerNetworkInterfaces(role);
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "UseDataKey",
        actions: ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
        resources: [props.encryptionKey.keyArn],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "NotifyCompletion",
        actions: ["sns:Publish"],
        resources: [this.successTopic.topicArn, this.errorTopic.topicArn],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "WriteEndpointLogs",
        actions: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        // The group itself (CreateLogGroup is authorized on the ARN without `:*`) and its streams.
        resources: [
          stack.formatArn({
            service: "logs",
            resource: "log-group",
            resourceName: logGroup.logGroupName,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
          logGroup.logGroupArn,
        ],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "PublishEndpointMetrics",
        actions: ["cloudwatch:PutMetricData"],
        resources: ["*"],
        conditions: { StringEquals: { "cloudwatch:namespace": ["/aws/sagemaker/Endpoints", "AWS/SageMaker"] } },
      }),
    );
    image.repository.grantPull(role);
    Validations.of(role).acknowledge(
      ...[
        TRAINING_OUTPUT_PREFIX,
        STUDIES_BUCKET.uploadsPrefix,
        SCORING_REQUESTS_PREFIX,
        OVERLAYS_PREFIX,
        SCORING_OUTPUT_PREFIXES.results,
        SCORING_OUTPUT_PREFIXES.failures,
      ].map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
        reason: `objects under ${prefix} of the studies bucket, one key per study that is not known at deploy time; the prefix is the narrowest scope (no other prefix, no other bucket)`,
      })),
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "ecr:GetAuthorizationToken, cloudwatch:PutMetricData, the ec2:Describe* calls SageMaker makes to attach the model to the sealed network and ec2:DeleteNetworkInterfacePermission (names only a permission id) support no resource-level permissions; PutMetricData is limited by condition to the SageMaker endpoint namespaces",
      },
      {
        id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
        reason:
          "the network interfaces SageMaker creates to attach the model to the sealed network have ids made at deploy and scale-out; creation is limited to the sealed subnets and security group, permission and deletion by an ec2:Subnet condition on those subnets",
      },
    );

    const model = new CfnModel(this, "Model", {
      executionRoleArn: role.roleArn,
      // The container's only network: private isolated subnets, HTTPS to S3 (see the class doc).
      vpcConfig: props.network.sageMakerVpcConfig,
      enableNetworkIsolation: false,
      primaryContainer: {
        image: image.imageUri,
        // The platform pulls the image from ECR outside the sealed network (no ECR endpoints needed there).
        imageConfig: { repositoryAccessMode: "Platform" },
        modelDataUrl: props.modelArtifact,
        mode: "SingleModel",
        // The container works on as many requests at once as SageMaker sends it, reading the next
        // study while the GPU scores the current one (model-container/ichal/serve/main.py).
        environment: { ICHAL_CONCURRENT_REQUESTS: String(perInstance) },
      },
    });
    model.node.addDependency(role);
    this.model = model;
    this.executionRole = role;

    const nvme = NVME_FAMILIES.test(props.instanceType);
    this.endpointConfig = new CfnEndpointConfig(this, "Config", {
      productionVariants: [
        {
          variantName: this.variantName,
          modelName: model.attrModelName,
          instanceType: props.instanceType,
          // Async endpoints are created with one instance; autoscaling (min 0) removes it when idle.
          initialInstanceCount: 1,
        },
      ],
      ...(nvme ? {} : { kmsKeyId: props.encryptionKey.keyArn }),
      asyncInferenceConfig: {
        clientConfig: { maxConcurrentInvocationsPerInstance: perInstance },
        outputConfig: {
          s3OutputPath: bucket.s3UrlForObject(SCORING_OUTPUT_PREFIXES.results),
          s3FailurePath: bucket.s3UrlForObject(SCORING_OUTPUT_PREFIXES.failures),
          kmsKeyId: props.encryptionKey.keyArn,
          notificationConfig: { successTopic: this.successTopic.topicArn, errorTopic: this.errorTopic.topicArn },
        },
      },
    });
    if (nvme) {
      const reason = `${props.instanceType} has local NVMe instance storage, for which SageMaker rejects an endpoint-config KmsKeyId; that storage is hardware-encrypted (AES-256) with a key that never leaves the instance, and the async outputs are KMS-encrypted with the data key (OutputConfig.KmsKeyId)`;
      Validations.of(this.endpointConfig).acknowledge(
        { id: "HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured", reason },
        { id: "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured", reason },
      );
    }
    this.endpoint = new CfnEndpoint(this, "Endpoint", {
      endpointName: this.endpointName,
      endpointConfigName: this.endpointConfig.attrEndpointConfigName,
    });
    this.endpoint.node.addDependency(logGroup);

    this.scalableTarget = new ScalableTarget(this, "Scaling", {
      serviceNamespace: ServiceNamespace.SAGEMAKER,
      resourceId: `endpoint/${this.endpoint.attrEndpointName}/variant/${this.variantName}`,
      scalableDimension: "sagemaker:variant:DesiredInstanceCount",
      minCapacity: 0,
      maxCapacity: props.maxInstanceCount,
    });
    this.scalableTarget.node.addDependency(this.endpoint);
    const dimensionsMap = { EndpointName: this.endpointName };
    this.scalableTarget.scaleToTrackMetric("BacklogPerInstance", {
      targetValue: props.targetBacklogPerInstance ?? 5,
      customMetric: new Metric({
        namespace: "AWS/SageMaker",
        metricName: "ApproximateBacklogSizePerInstance",
        dimensionsMap,
        statistic: "Average",
        period: Duration.minutes(1),
      }),
      scaleInCooldown: props.scaleInCooldown ?? Duration.minutes(10),
      scaleOutCooldown: Duration.minutes(5),
    });
    this.scalableTarget.scaleOnMetric("ScaleFromZero", {
      metric: this.metricHasBacklogWithoutCapacity(),
      scalingSteps: [
        { upper: 0.5, change: 0 },
        { lower: 0.5, change: 1 },
      ],
      adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
      metricAggregationType: MetricAggregationType.AVERAGE,
      evaluationPeriods: 2,
      cooldown: Duration.minutes(5),
    });
  }

  /** 1 while requests wait and no instance runs (AWS/SageMaker, per endpoint). */
  metricHasBacklogWithoutCapacity(): Metric {
    return new Metric({
      namespace: "AWS/SageMaker",
      metricName: "HasBacklogWithoutCapacity",
      dimensionsMap: { EndpointName: this.endpointName },
      statistic: "Average",
      period: Duration.minutes(1),
    });
  }

  /** Seconds the oldest queued request has waited (AWS/SageMaker, per endpoint). */
  metricApproximateAgeOfOldestRequest(): Metric {
    return new Metric({
      namespace: "AWS/SageMaker",
      metricName: "ApproximateAgeOfOldestRequest",
      dimensionsMap: { EndpointName: this.endpointName },
      statistic: "Maximum",
      period: Duration.minutes(5),
    });
  }

  /** Container 5xx answers (model faults, not the 4xx refusals of bad studies), per endpoint variant. */
  metricInvocation5xxErrors(): Metric {
    return new Metric({
      namespace: "AWS/SageMaker",
      metricName: "Invocation5XXErrors",
      dimensionsMap: { EndpointName: this.endpointName, VariantName: this.variantName },
      statistic: "Sum",
      period: Duration.minutes(5),
    });
  }
}

/** `s3://bucket/key` → parts; throws with the expected form. */
const parseS3Uri = (uri: string): { bucket: string; key: string } => {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+\.tar\.gz)$/.exec(uri);
  if (!match?.[1] || !match[2]) {
    throw new Error(`ScoringEndpoint: modelArtifact must be s3://bucket/path/model.tar.gz, got ${JSON.stringify(uri)}`);
  }
  return { bucket: match[1], key: match[2] };
};
