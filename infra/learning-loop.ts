import { Duration, Stack, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import {
  DeployCandidateEnvSchema,
  JudgeCandidateEnvSchema,
  PrepareTrainingEnvSchema,
  PutInServiceEnvSchema,
  TrainingFailureEnvSchema,
} from "../lambdas/contracts/env.js";
import type { InstitutionConfig } from "../lambdas/contracts/institution-config.js";
import { MODEL_EVALUATIONS_PREFIX, TRAINING_CHANNELS_PREFIX, TRAINING_OUTPUT_PREFIX } from "../lambdas/contracts/learning.js";
import { LABELS_PREFIX } from "../lambdas/contracts/masks.js";
import { metricsNamespace } from "../lambdas/contracts/metrics.js";
import { STUDIES_BUCKET } from "../lambdas/contracts/studies-bucket.js";
import { kmsUse, LambdaFunction } from "./lambda-function.js";
import { LearningWorkflow } from "./learning-workflow.js";
import { resourceFindingId } from "./nag-ids.js";
import { recordsReadWrite } from "./records-access.js";
import type { ScoringEndpoint } from "./scoring-endpoint.js";
import type { SealedNetwork } from "./sealed-network.js";

export interface LearningLoopProps {
  readonly config: InstitutionConfig;
  readonly table: ITable;
  readonly studiesBucket: IBucket;
  readonly endpoint: ScoringEndpoint;
  readonly network: SealedNetwork;
  /** The re-score Lambda (ScoringPipeline): the workflow invokes it after a promotion. */
  readonly rescore: IFunction;
  readonly encryptionKey: IKey;
}

/**
 * The learning loop in AWS: the workflow (infra/learning-workflow.ts) and the five Lambdas its Tasks
 * invoke, each with only what its step touches. Exists only with a deployed endpoint (a model to warm
 * start from and an image to train with).
 */
export class LearningLoop extends Construct {
  readonly workflow: LearningWorkflow;
  readonly functions: Record<"prepare" | "judge" | "deploy" | "putInService" | "recordFailure", LambdaFunction<never>>;

  constructor(scope: Construct, id: string, props: LearningLoopProps) {
    super(scope, id);
    const { config, table, studiesBucket: bucket, endpoint, encryptionKey } = props;
    const stack = Stack.of(this);
    const { learning } = config;
    if (
      !endpoint.deployed ||
      !endpoint.image ||
      !endpoint.model ||
      !endpoint.executionRole ||
      !endpoint.endpointConfig ||
      !config.scoring.modelArtifact
    ) {
      throw new Error("LearningLoop needs a deployed scoring endpoint (scoring.modelArtifact)");
    }
    const initial = /^s3:\/\/([^/]+)\/(.+)$/.exec(config.scoring.modelArtifact);
    if (!initial?.[1] || !initial[2]) throw new Error(`scoring.modelArtifact ${config.scoring.modelArtifact} is not s3://bucket/key`);
    const jobPrefix = `ich-al-${config.institution}-`;
    const groupName = `ich-al-${config.institution}-ensemble`;
    const tableKms = kmsUse(encryptionKey, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]);
    const objects = (...prefixes: string[]) => prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
    const sagemakerArn = (resource: string, resourceName: string) => stack.formatArn({ service: "sagemaker", resource, resourceName });
    const step = { kind: "synchronous", caller: "a Task of the learning Step Functions workflow (Retry, then Catch)" } as const;
    const metrics = { METRICS_NAMESPACE: metricsNamespace(config.institution) };
    const base = { TABLE_NAME: table.tableName, STUDIES_BUCKET: bucket.bucketName, ...metrics };

    const prepare = new LambdaFunction(this, "PrepareTraining", {
      handler: "prepare-training",
      description: "Learning: enough new masks? then the week's training channels (study versions, masks) under training-channels/",
      envSchema: PrepareTrainingEnvSchema,
      environment: {
        ...base,
        INSTITUTION: config.institution,
        SCHEDULE_TIMEZONE: config.schedule.timezone,
        MIN_NEW_MASKS: String(learning.minNewMasks),
        VALIDATION_SHARE: String(learning.validationShare),
        INITIAL_MODEL_DATA: config.scoring.modelArtifact,
      },
      invocation: step,
      encryptionKey,
      timeout: Duration.minutes(4),
      memorySize: 1024,
      statements: [
        ...recordsReadWrite(table),
        tableKms,
        new PolicyStatement({
          sid: "ReadStudiesAndMasks",
          actions: ["s3:GetObject", "s3:GetObjectVersion"],
          resources: objects(STUDIES_BUCKET.uploadsPrefix, LABELS_PREFIX),
        }),
        new PolicyStatement({ sid: "WriteChannels", actions: ["s3:PutObject"], resources: objects(TRAINING_CHANNELS_PREFIX) }),
      ],
    });
    const judge = new LambdaFunction(this, "JudgeCandidate", {
      handler: "judge-candidate",
      description: "Learning: the job's evaluation → promote or not → model-evaluations/, a model package, the run's record",
      envSchema: JudgeCandidateEnvSchema,
      environment: {
        ...base,
        PROMOTION_TOLERANCE: String(learning.tolerance),
        MODEL_PACKAGE_GROUP: groupName,
        MODEL_IMAGE: endpoint.image.imageUri,
      },
      invocation: step,
      encryptionKey,
      timeout: Duration.minutes(4),
      statements: [
        ...recordsReadWrite(table),
        tableKms,
        new PolicyStatement({ sid: "ReadJobOutput", actions: ["s3:GetObject"], resources: objects(TRAINING_OUTPUT_PREFIX) }),
        new PolicyStatement({ sid: "WriteEvaluations", actions: ["s3:PutObject"], resources: objects(MODEL_EVALUATIONS_PREFIX) }),
        new PolicyStatement({
          sid: "RegisterCandidates",
          actions: ["sagemaker:CreateModelPackage"],
          resources: [sagemakerArn("model-package-group", groupName), sagemakerArn("model-package", `${groupName}/*`)],
        }),
      ],
    });
    const deploy = new LambdaFunction(this, "DeployCandidate", {
      handler: "deploy-candidate",
      description: "Learning: a promoted candidate as a new Model + EndpointConfig, the async endpoint updated in place",
      envSchema: DeployCandidateEnvSchema,
      environment: { SCORING_ENDPOINT_NAME: endpoint.endpointName },
      invocation: step,
      encryptionKey,
      timeout: Duration.seconds(90),
      statements: [
        new PolicyStatement({
          sid: "UpdateThisEndpoint",
          actions: ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
          resources: [endpoint.endpointArn],
        }),
        new PolicyStatement({
          sid: "CopyModelAndConfig",
          actions: [
            "sagemaker:DescribeModel",
            "sagemaker:DescribeEndpointConfig",
            "sagemaker:CreateModel",
            "sagemaker:CreateEndpointConfig",
          ],
          resources: [
            sagemakerArn("model", endpoint.model.attrModelName),
            sagemakerArn("endpoint-config", endpoint.endpointConfig.attrEndpointConfigName),
            sagemakerArn("model", `${jobPrefix}*`),
            sagemakerArn("endpoint-config", `${jobPrefix}*`),
          ],
        }),
        new PolicyStatement({
          sid: "PassEndpointRole",
          actions: ["iam:PassRole"],
          resources: [endpoint.executionRole.roleArn],
          conditions: { StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" } },
        }),
        kmsUse(encryptionKey, ["kms:CreateGrant", "kms:DescribeKey"]),
      ],
    });
    const putInService = new LambdaFunction(this, "PutInService", {
      handler: "put-in-service",
      description: "Learning: the deployed candidate becomes the model in service (conditional on the sequence)",
      envSchema: PutInServiceEnvSchema,
      environment: { TABLE_NAME: table.tableName, ...metrics },
      invocation: step,
      encryptionKey,
      timeout: Duration.seconds(30),
      statements: [...recordsReadWrite(table), tableKms],
    });
    const recordFailure = new LambdaFunction(this, "TrainingFailure", {
      handler: "training-failure",
      description: "Learning, on failure: the run recorded failed, an undeployed approval rejected; the model in service stays",
      envSchema: TrainingFailureEnvSchema,
      environment: { TABLE_NAME: table.tableName, ...metrics },
      invocation: step,
      encryptionKey,
      timeout: Duration.seconds(30),
      statements: [
        ...recordsReadWrite(table),
        tableKms,
        new PolicyStatement({
          sid: "RejectCandidates",
          actions: ["sagemaker:UpdateModelPackage"],
          resources: [sagemakerArn("model-package", `${groupName}/*`)],
        }),
      ],
    });
    this.functions = { prepare, judge, deploy, putInService, recordFailure } as unknown as LearningLoop["functions"];
    for (const [fn, prefixes] of [
      [prepare, [STUDIES_BUCKET.uploadsPrefix, LABELS_PREFIX, TRAINING_CHANNELS_PREFIX]],
      [judge, [TRAINING_OUTPUT_PREFIX, MODEL_EVALUATIONS_PREFIX]],
    ] as const) {
      Validations.of(fn.role).acknowledge(
        ...prefixes.map((prefix) => ({
          id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
          reason: `objects under ${prefix} of the studies bucket, keys made at run time; the prefix is the narrowest scope`,
        })),
      );
    }
    const packages = {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/${groupName}/*]`,
      reason: "the versions of this institution's one model package group, numbered by SageMaker at run time",
    };
    Validations.of(judge.role).acknowledge(packages);
    Validations.of(recordFailure.role).acknowledge(packages);
    Validations.of(deploy.role).acknowledge(
      ...["model", "endpoint-config"].map((kind) => ({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:${kind}/${jobPrefix}*]`,
        reason: `the ${kind}s the learning loop creates, one per promoted training job of this institution, named at run time`,
      })),
    );

    this.workflow = new LearningWorkflow(this, "Workflow", {
      institution: config.institution,
      config: learning,
      timezone: config.schedule.timezone,
      functions: {
        prepare: prepare.function,
        judge: judge.function,
        deploy: deploy.function,
        putInService: putInService.function,
        rescore: props.rescore,
        recordFailure: recordFailure.function,
      },
      imageUri: endpoint.image.imageUri,
      grantImagePull: (role) => endpoint.image?.repository.grantPull(role),
      initialModelData: { bucket: initial[1], key: initial[2] },
      studiesBucket: bucket,
      network: props.network,
      endpointName: endpoint.endpointName,
      encryptionKey,
    });
  }
}
