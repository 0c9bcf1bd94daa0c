import { ArnFormat, Duration, Stack, Validations } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { CfnModelPackageGroup } from "aws-cdk-lib/aws-sagemaker";
import { CfnSchedule } from "aws-cdk-lib/aws-scheduler";
import {
  Choice,
  Condition,
  CustomState,
  DefinitionBody,
  Errors,
  Fail,
  type IChainable,
  JitterType,
  JsonPath,
  LogLevel,
  type RetryProps,
  StateMachine,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
} from "aws-cdk-lib/aws-stepfunctions";
import { CallAwsService, LambdaInvoke } from "aws-cdk-lib/aws-stepfunctions-tasks";
import { Construct } from "constructs";
import type { LearningConfig } from "../lambdas/contracts/institution-config.js";
import {
  LEARNING_RESULT_PATHS as P,
  LEARNING_WORKFLOW_STATES as S,
  TRAINING_CHANNELS_PREFIX,
  TRAINING_OUTPUT_PREFIX,
} from "../lambdas/contracts/learning.js";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";
import { resourceFindingId } from "./nag-ids.js";
import { NVME_FAMILIES } from "./scoring-endpoint.js";
import type { SealedNetwork } from "./sealed-network.js";

/** The Lambdas the workflow's Tasks invoke, by role. */
export interface LearningFunctions {
  readonly prepare: IFunction;
  readonly judge: IFunction;
  readonly deploy: IFunction;
  readonly putInService: IFunction;
  readonly rescore: IFunction;
  readonly recordFailure: IFunction;
}

export interface LearningWorkflowProps {
  readonly institution: string;
  readonly config: LearningConfig;
  /** The weekly schedule's time zone: the learning schedule runs in it too. */
  readonly timezone: string;
  readonly functions: LearningFunctions;
  /** The model container image (the endpoint's): training runs its `train` entry. */
  readonly imageUri: string;
  /** Grants the training role a pull of the image. */
  readonly grantImagePull: (role: ManagedPolicyRole) => void;
  /** The first model (`scoring.modelArtifact`): a warm start the training role may read. */
  readonly initialModelData: { bucket: string; key: string };
  readonly studiesBucket: IBucket;
  readonly network: SealedNetwork;
  readonly endpointName: string;
  readonly encryptionKey: IKey;
  readonly logRetention?: RetentionDays;
}

/**
 * The learning workflow (lambdas/contracts/learning.ts has the states and the data flow), Step
 * Functions with JSONPath, started by its own schedule (`learning.schedule`, daily by default; the job
 * is per ISO week, so later triggers in the week train nothing). It sits outside the weekly round on
 * purpose: a training job takes hours on a GPU and may fail without touching the round, which selects
 * from whatever the model in service scored (stacks not yet re-scored wait and are counted).
 *
 * TrainCandidate is `arn:aws:states:::sagemaker:createTrainingJob.sync` written as a CustomState, so that
 * its IAM names the institution's job prefix instead of every training job: channels train /
 * validation / model (warm start), the container's `train` entry in the sealed network, KMS on output
 * (and on the volume where the instance has no NVMe store), a stopping condition and a Task timeout.
 * Throttling of CreateTrainingJob is retried; a failed or stopped job is caught. Every Task's error goes
 * to RecordTrainingFailure, which leaves the model in service as it is.
 *
 * The model registry is one model package group per institution; every candidate is registered there
 * by JudgeCandidate with its metrics JSON, Approved when promoted and Rejected otherwise.
 */
export class LearningWorkflow extends Construct {
  readonly stateMachine: StateMachine;
  readonly logGroup: LogGroup;
  readonly modelPackageGroup: CfnModelPackageGroup;
  readonly modelPackageGroupName: string;
  readonly trainingRole: ManagedPolicyRole;
  readonly schedule: CfnSchedule;

  constructor(scope: Construct, id: string, props: LearningWorkflowProps) {
    super(scope, id);
    this.modelPackageGroupName = `ich-al-${props.institution}-ensemble`;
    this.modelPackageGroup = new CfnModelPackageGroup(this, "ModelPackageGroup", {
      modelPackageGroupName: this.modelPackageGroupName,
      modelPackageGroupDescription: `Candidates of the ${props.institution} ensemble: Approved when promoted, Rejected otherwise, with validation metrics`,
    });
    this.trainingRole = this.createTrainingRole(props);
    const definition = this.defineStates(props, this.trainingRole);
    this.logGroup = encryptedLogGroup(this, "ExecutionLogs", { encryptionKey: props.encryptionKey, retention: props.logRetention });
    this.stateMachine = this.createStateMachine(props, definition, this.trainingRole, this.logGroup);
    this.schedule = this.scheduleExecutions(props, this.stateMachine);
  }

  /** The training job's role: channels and warm start in, output out, nothing else. */
  private createTrainingRole(props: LearningWorkflowProps): ManagedPolicyRole {
    const stack = Stack.of(this);
    const { studiesBucket: bucket } = props;
    const jobPrefix = `ich-al-${props.institution}-`;
    const role = new ManagedPolicyRole(this, "TrainingRole", {
      assumedBy: new ServicePrincipal("sagemaker.amazonaws.com"),
      description: `SageMaker training jobs ${jobPrefix}*`,
    });
    const s3Access = (sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>) => {
      role.addToPrincipalPolicy(new PolicyStatement({ sid, actions, resources, ...(conditions ? { conditions } : {}) }));
      props.network.allowS3(actions, resources);
    };
    s3Access("ReadChannels", ["s3:GetObject"], [bucket.arnForObjects(`${TRAINING_CHANNELS_PREFIX}*`)]);
    // SageMaker lists a channel's prefix before it downloads it; only the channels may be listed.
    s3Access("ListChannels", ["s3:ListBucket"], [bucket.bucketArn], { StringLike: { "s3:prefix": [`${TRAINING_CHANNELS_PREFIX}*`] } });
    s3Access(
      "ReadWarmStart",
      ["s3:GetObject"],
      [
        bucket.arnForObjects(`${TRAINING_OUTPUT_PREFIX}*`),
        stack.formatArn({
          service: "s3",
          region: "",
          account: "",
          resource: props.initialModelData.bucket,
          resourceName: props.initialModelData.key,
        }),
      ],
    );
    s3Access("WriteOutput", ["s3:PutObject"], [bucket.arnForObjects(`${TRAINING_OUTPUT_PREFIX}*`)]);
    props.network.grantSageMakerNetworkInterfaces(role);
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "UseDataKey",
        actions: ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"],
        resources: [props.encryptionKey.keyArn],
      }),
    );
    const trainingLogs = stack.formatArn({
      service: "logs",
      resource: "log-group",
      resourceName: "/aws/sagemaker/TrainingJobs",
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "WriteTrainingLogs",
        actions: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        resources: [trainingLogs, `${trainingLogs}:log-stream:${jobPrefix}*`],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "PublishTrainingMetrics",
        actions: ["cloudwatch:PutMetricData"],
        resources: ["*"],
        conditions: { StringEquals: { "cloudwatch:namespace": ["/aws/sagemaker/TrainingJobs"] } },
      }),
    );
    props.grantImagePull(role);
    Validations.of(role).acknowledge(
      ...[TRAINING_CHANNELS_PREFIX, TRAINING_OUTPUT_PREFIX].map((prefix) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(bucket)}/${prefix}*]`,
        reason: `objects under ${prefix} of the studies bucket, one folder per training job, named at run time; the prefix is the narrowest scope`,
      })),
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited by condition to the training namespace) and the ec2:Describe* calls SageMaker makes to attach the job to the sealed network support no resource-level permissions",
      },
      {
        id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
        reason:
          "the network interfaces SageMaker creates for the job in the sealed subnets have ids made at run time; limited by the subnet condition",
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:log-stream:${jobPrefix}*]`,
        reason: "one log stream per training job of this institution under /aws/sagemaker/TrainingJobs, named at run time",
      },
    );

    return role;
  }

  /** The states (lambdas/contracts/learning.ts names them and their paths). */
  private defineStates(props: LearningWorkflowProps, role: ManagedPolicyRole) {
    const stack = Stack.of(this);
    const { config, functions: fn } = props;
    const lambdaServiceErrors: RetryProps = {
      errors: ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
      interval: Duration.seconds(2),
      maxAttempts: 4,
      backoffRate: 2,
      maxDelay: Duration.seconds(60),
      jitterStrategy: JitterType.FULL,
    };
    const handlerErrors: RetryProps = {
      errors: [Errors.TASKS_FAILED, Errors.TIMEOUT],
      interval: Duration.seconds(10),
      maxAttempts: 2,
      backoffRate: 2,
      maxDelay: Duration.minutes(2),
      jitterStrategy: JitterType.FULL,
    };
    const failed = new Fail(this, S.failed, {
      stateName: S.failed,
      error: "TrainingFailed",
      cause: "The learning workflow failed; the error is in $.error and the training run's record; the model in service is unchanged",
    });
    /** A failure-recording Task that ends in `end` whatever happens (its own error included). */
    const failureRecord = (state: string, end: Fail, payload?: TaskInput) => {
      const task = new LambdaInvoke(this, state, {
        stateName: state,
        lambdaFunction: fn.recordFailure,
        ...(payload ? { payload } : {}),
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        resultPath: P.recordFailure,
        taskTimeout: Timeout.duration(Duration.seconds(60)),
      });
      task.addRetry(lambdaServiceErrors).addRetry(handlerErrors);
      task.addCatch(end, { errors: [Errors.ALL], resultPath: "$.recordFailureError" });
      task.next(end);
      return task;
    };
    // No payload: the function receives the whole state (now, error, and plan / judgement when they ran).
    const recordFailure = failureRecord(S.recordFailure, failed);

    /** A Lambda Task; `retryHandler`: retry the handler's own errors (idempotent steps). */
    const invoke = (state: string, lambda: IFunction, payload: TaskInput, resultPath: string, retryHandler: boolean, seconds: number) => {
      const task = new LambdaInvoke(this, state, {
        stateName: state,
        lambdaFunction: lambda,
        payload,
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        resultPath,
        taskTimeout: Timeout.duration(Duration.seconds(seconds)),
      });
      task.addRetry(lambdaServiceErrors);
      if (retryHandler) task.addRetry(handlerErrors);
      task.addCatch(recordFailure, { errors: [Errors.ALL], resultPath: "$.error" });
      return task;
    };
    const now = JsonPath.stringAt("$.now");

    const prepare = invoke(
      S.prepare,
      fn.prepare,
      TaskInput.fromObject({ now, execution: JsonPath.stringAt("$$.Execution.Name") }),
      P.prepare,
      true,
      300,
    );

    const maxRuntime = Duration.hours(config.maxRuntimeHours);
    const nvme = NVME_FAMILIES.test(config.instanceType);
    const { subnets, securityGroupIds } = props.network.sageMakerVpcConfig;
    const train = new CustomState(this, S.train, {
      stateJson: {
        Type: "Task",
        Resource: `arn:${stack.partition}:states:::sagemaker:createTrainingJob.sync`,
        Parameters: {
          "TrainingJobName.$": "$.plan.jobName",
          RoleArn: role.roleArn,
          AlgorithmSpecification: {
            TrainingImage: props.imageUri,
            TrainingInputMode: "File",
            ContainerEntrypoint: ["python", "-m", "ichal", "train"],
            MetricDefinitions: ["pixel_ap", "frame_ap", "stack_ap"].flatMap((metric) =>
              ["candidate", "current"].map((model) => ({ Name: `${model}_${metric}`, Regex: `${model}_${metric}=([0-9.]+)` })),
            ),
          },
          HyperParameters: Object.fromEntries(Object.entries(config.hyperparameters).map(([k, v]) => [k, String(v)])),
          InputDataConfig: [
            channel("train", "$.plan.trainUri"),
            channel("validation", "$.plan.validationUri"),
            channel("model", "$.plan.modelUri"),
          ],
          OutputDataConfig: { "S3OutputPath.$": "$.plan.outputUri", KmsKeyId: props.encryptionKey.keyArn },
          ResourceConfig: {
            InstanceCount: 1,
            InstanceType: config.instanceType,
            VolumeSizeInGB: config.volumeSizeGb,
            ...(nvme ? {} : { VolumeKmsKeyId: props.encryptionKey.keyArn }),
          },
          StoppingCondition: { MaxRuntimeInSeconds: maxRuntime.toSeconds() },
          VpcConfig: { Subnets: subnets, SecurityGroupIds: securityGroupIds },
          EnableNetworkIsolation: false,
          EnableInterContainerTrafficEncryption: true,
        },
        ResultSelector: {
          "TrainingJobName.$": "$.TrainingJobName",
          "TrainingJobStatus.$": "$.TrainingJobStatus",
          "ModelArtifacts.$": "$.ModelArtifacts",
          "BillableTimeInSeconds.$": "$.BillableTimeInSeconds",
        },
        ResultPath: P.train,
        // The job's own limit plus time to start an instance and upload the model.
        TimeoutSeconds: maxRuntime.toSeconds() + 3600,
      },
    });
    train.addRetry({
      errors: ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException"],
      interval: Duration.seconds(30),
      maxAttempts: 3,
      backoffRate: 2,
      maxDelay: Duration.minutes(5),
      jitterStrategy: JitterType.FULL,
    });
    train.addCatch(recordFailure, { errors: [Errors.ALL], resultPath: "$.error" });

    const judge = invoke(
      S.judge,
      fn.judge,
      TaskInput.fromObject({ now, jobName: JsonPath.stringAt("$.plan.jobName"), training: JsonPath.objectAt(P.train) }),
      P.judge,
      true,
      300,
    );
    const deploy = invoke(
      S.deploy,
      fn.deploy,
      TaskInput.fromObject({ jobName: JsonPath.stringAt("$.judgement.jobName"), modelData: JsonPath.stringAt("$.judgement.modelData") }),
      P.deploy,
      false,
      120,
    );
    const wait = new Wait(this, S.wait, { stateName: S.wait, time: WaitTime.duration(Duration.minutes(1)) });
    const describe = new CallAwsService(this, S.describe, {
      stateName: S.describe,
      service: "sagemaker",
      action: "describeEndpoint",
      parameters: { EndpointName: props.endpointName },
      iamResources: [stack.formatArn({ service: "sagemaker", resource: "endpoint", resourceName: props.endpointName })],
      resultSelector: { "EndpointStatus.$": "$.EndpointStatus", "EndpointConfigName.$": "$.EndpointConfigName" },
      resultPath: P.describe,
      taskTimeout: Timeout.duration(Duration.seconds(30)),
    });
    describe.addRetry({ ...lambdaServiceErrors, errors: ["SageMaker.SageMakerException", "SageMaker.AmazonSageMakerException"] });
    describe.addCatch(recordFailure, { errors: [Errors.ALL], resultPath: "$.error" });
    const putInService = invoke(
      S.putInService,
      fn.putInService,
      TaskInput.fromObject({ now, judgement: JsonPath.objectAt(P.judge) }),
      P.putInService,
      true,
      60,
    );
    const rescore = invoke(S.rescore, fn.rescore, TaskInput.fromObject({}), P.rescore, true, 300);
    const endpointFailed = new Fail(this, "EndpointUpdateFailed", {
      stateName: "EndpointUpdateFailed",
      error: "EndpointUpdateFailed",
      cause: "The endpoint did not return to InService on the candidate (SageMaker rolls a failed update back)",
    });
    const endpointFailedRecord = failureRecord(
      "RecordEndpointFailure",
      endpointFailed,
      TaskInput.fromObject({
        now,
        error: { Error: "EndpointUpdateFailed", Cause: JsonPath.stringAt("$.endpoint.EndpointStatus") },
        plan: JsonPath.objectAt(P.prepare),
        judgement: JsonPath.objectAt(P.judge),
      }),
    );

    const definition = prepare.next(
      new Choice(this, S.enough, { stateName: S.enough })
        .when(Condition.booleanEquals("$.plan.train", false), new Succeed(this, S.nothingToTrain, { stateName: S.nothingToTrain }))
        .otherwise(
          train.next(judge).next(
            new Choice(this, S.promote, { stateName: S.promote })
              .when(Condition.booleanEquals("$.judgement.promote", false), new Succeed(this, S.rejected, { stateName: S.rejected }))
              .otherwise(
                deploy
                  .next(wait)
                  .next(describe)
                  .next(
                    new Choice(this, S.inService, { stateName: S.inService })
                      .when(
                        Condition.and(
                          Condition.stringEquals("$.endpoint.EndpointStatus", "InService"),
                          Condition.stringEqualsJsonPath("$.endpoint.EndpointConfigName", "$.deployment.endpointConfigName"),
                        ),
                        putInService.next(rescore).next(new Succeed(this, S.done, { stateName: S.done })),
                      )
                      .when(
                        Condition.or(
                          Condition.stringEquals("$.endpoint.EndpointStatus", "Updating"),
                          Condition.stringEquals("$.endpoint.EndpointStatus", "SystemUpdating"),
                        ),
                        wait,
                      )
                      // Failed, or InService on the previous config: SageMaker rolled the update back.
                      .otherwise(endpointFailedRecord),
                  ),
              ),
          ),
        ),
    );

    return definition;
  }

  /** The state machine, its role (training jobs of this institution only) and its logs. */
  private createStateMachine(
    props: LearningWorkflowProps,
    definition: IChainable,
    role: ManagedPolicyRole,
    logGroup: LogGroup,
  ): StateMachine {
    const stack = Stack.of(this);
    const { config } = props;
    const jobPrefix = `ich-al-${props.institution}-`;
    const machineRole = new ManagedPolicyRole(this, "Role", {
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: "Learning state machine: train, judge, deploy, promote, re-score",
    });
    machineRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "RunTrainingJobs",
        actions: ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"],
        resources: [stack.formatArn({ service: "sagemaker", resource: "training-job", resourceName: `${jobPrefix}*` })],
      }),
    );
    machineRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "PassTrainingRole",
        actions: ["iam:PassRole"],
        resources: [role.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" } },
      }),
    );
    machineRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "SyncTrainingJobEvents",
        actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources: [
          stack.formatArn({ service: "events", resource: "rule", resourceName: "StepFunctionsGetEventsForSageMakerTrainingJobsRule" }),
        ],
      }),
    );
    machineRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "EncryptTrainingOutput",
        actions: ["kms:CreateGrant", "kms:DescribeKey"],
        resources: [props.encryptionKey.keyArn],
      }),
    );
    const stateMachine = new StateMachine(this, "StateMachine", {
      definitionBody: DefinitionBody.fromChainable(definition),
      comment: "Learning loop: masks → training job → judge → register → deploy → in service → re-score (lambdas/contracts/learning.ts)",
      role: machineRole,
      timeout: Duration.hours(config.maxRuntimeHours + 6),
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: true },
    });
    Validations.of(machineRole).acknowledge(
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason: "X-Ray and vended log delivery statements of Step Functions support no resource-level permissions",
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/${jobPrefix}*]`,
        reason: "training jobs of this institution only (its name prefix); one per ISO week, named at run time by PrepareTraining",
      },
      ...Object.values(props.functions).map((f) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(f)}:*]`,
        reason: "CDK's LambdaInvoke grants lambda:InvokeFunction on this one function and its versions/aliases; no other function",
      })),
    );

    return stateMachine;
  }

  /** EventBridge Scheduler starts the workflow on `learning.schedule` with `{ now }`. */
  private scheduleExecutions(props: LearningWorkflowProps, stateMachine: StateMachine): CfnSchedule {
    const stack = Stack.of(this);
    const { config } = props;
    const schedulerRole = new ManagedPolicyRole(this, "SchedulerRole", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", { conditions: { StringEquals: { "aws:SourceAccount": stack.account } } }),
      description: "EventBridge Scheduler: start the learning workflow",
    });
    schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({ sid: "StartLearning", actions: ["states:StartExecution"], resources: [stateMachine.stateMachineArn] }),
    );
    const schedule = new CfnSchedule(this, "Schedule", {
      description: "Starts the learning workflow (trains when enough new masks exist; one job per ISO week)",
      scheduleExpression: config.schedule,
      scheduleExpressionTimezone: props.timezone,
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: stateMachine.stateMachineArn,
        roleArn: schedulerRole.roleArn,
        input: JSON.stringify({ now: "<aws.scheduler.scheduled-time>" }),
        retryPolicy: { maximumEventAgeInSeconds: 6 * 3600, maximumRetryAttempts: 5 },
      },
    });
    schedule.node.addDependency(schedulerRole);
    return schedule;
  }
}

/** A File-mode S3 channel whose prefix comes from the execution state. */
function channel(name: string, path: string) {
  return {
    ChannelName: name,
    DataSource: { S3DataSource: { S3DataType: "S3Prefix", "S3Uri.$": path, S3DataDistributionType: "FullyReplicated" } },
    InputMode: "File",
  };
}
