import { Duration, Stack, Validations } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { CfnSchedule } from "aws-cdk-lib/aws-scheduler";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import {
  DefinitionBody,
  Errors,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  type RetryProps,
  StateMachine,
  Succeed,
  TaskInput,
  Timeout,
} from "aws-cdk-lib/aws-stepfunctions";
import { LambdaInvoke } from "aws-cdk-lib/aws-stepfunctions-tasks";
import { Construct } from "constructs";
import { StartRoundEnvSchema } from "../lambdas/contracts/env.js";
import type { InstitutionConfig } from "../lambdas/contracts/institution-config.js";
import { WEEKLY_WORKFLOW_RESULT_PATHS, WEEKLY_WORKFLOW_STATES, type WeeklyWorkflowTask } from "../lambdas/contracts/weekly-workflow.js";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { kmsUse, LambdaFunction } from "./lambda-function.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";
import { resourceFindingId } from "./nag-ids.js";

/** A Task's Lambda and how long one attempt may take (the Task's TimeoutSeconds). */
export interface WorkflowTask {
  /** The function the Task invokes (LambdaInvoke, payloadResponseOnly). */
  readonly function: IFunction;
  /** Task timeout: the function's timeout plus a margin. */
  readonly timeout: Duration;
}

export interface WeeklyWorkflowProps {
  /** The Tasks' functions by role (refit, select, notify, recordFailure). */
  readonly tasks: Record<WeeklyWorkflowTask, WorkflowTask>;
  /** When the round starts: the institution's schedule (EventBridge Scheduler cron + IANA time zone). */
  readonly schedule: InstitutionConfig["schedule"];
  /** Customer-managed key: execution log group, trigger DLQ, start-round logs. */
  readonly encryptionKey: IKey;
  /** Retries of a Task after an error (Lambda service errors get 2 more). Default: 2. */
  readonly taskRetries?: number;
  /** Log retention of the execution log and the start-round Lambda. Default: one year. */
  readonly logRetention?: RetentionDays;
}

/**
 * The weekly selection round (lambdas/contracts/weekly-workflow.ts), Step Functions with JSONPath:
 *
 *   EventBridge Scheduler (config.schedule, time zone) ──▶ start-round λ ──StartExecution(select-<ISO week>)──▶
 *     RefitTimeModel   payload {now}                     → $.refit
 *     SelectStacks     payload {now}                     → $.selection
 *     NotifyAnnotators payload {now, roundId}            → $.notification
 *     RoundDone        (Succeed)
 *   any Task error ─Catch(States.ALL, $.error)─▶ RecordRoundFailure payload {now, error} → $.failure ─▶ RoundFailed (Fail)
 *
 * Every Task: LambdaInvoke with payloadResponseOnly, a timeout, and Retry with exponential backoff,
 * a maximum delay and FULL jitter — Lambda service errors and throttling up to 4 retries, handler
 * errors (all handlers are idempotent per ISO week) up to `taskRetries`. RecordRoundFailure itself
 * retries, then ends in RoundFailed. Executions log ALL events (with data) to a KMS-encrypted log group
 * and are traced with X-Ray.
 *
 * The schedule invokes start-round with `{"scheduledTime": <aws.scheduler.scheduled-time>}`, retries
 * for up to a day and sends undeliverable events to the trigger DLQ; start-round is asynchronous, so its
 * own failures (after Lambda's 2 retries) go to the same DLQ. start-round may start executions of this
 * state machine only.
 */
export class WeeklyWorkflow extends Construct {
  /** The state machine. */
  readonly stateMachine: StateMachine;
  /** Its execution log group. */
  readonly logGroup: LogGroup;
  /** The start-round Lambda (schedule target). */
  readonly startRound: LambdaFunction<typeof StartRoundEnvSchema>;
  /** The schedule. */
  readonly schedule: CfnSchedule;
  /** Schedule events that could not be delivered and start-round invocations that failed. */
  readonly triggerDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: WeeklyWorkflowProps) {
    super(scope, id);
    const taskRetries = props.taskRetries ?? 2;
    if (!Number.isInteger(taskRetries) || taskRetries < 0 || taskRetries > 10) {
      throw new Error(`WeeklyWorkflow: taskRetries must be an integer 0–10, got ${taskRetries}`);
    }
    for (const [name, task] of Object.entries(props.tasks)) {
      if (task.timeout.toSeconds() < 1) throw new Error(`WeeklyWorkflow: tasks.${name}.timeout must be at least 1 s`);
    }
    const S = WEEKLY_WORKFLOW_STATES;
    const now = JsonPath.stringAt("$.now");

    const lambdaServiceErrors: RetryProps = {
      errors: [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
      ],
      interval: Duration.seconds(2),
      maxAttempts: 4,
      backoffRate: 2,
      maxDelay: Duration.seconds(60),
      jitterStrategy: JitterType.FULL,
    };
    const taskErrors: RetryProps = {
      errors: [Errors.TASKS_FAILED, Errors.TIMEOUT],
      interval: Duration.seconds(10),
      maxAttempts: taskRetries,
      backoffRate: 2,
      maxDelay: Duration.minutes(2),
      jitterStrategy: JitterType.FULL,
    };
    const invoke = (task: WeeklyWorkflowTask, payload: Record<string, unknown>) => {
      const step = new LambdaInvoke(this, S[task], {
        stateName: S[task],
        lambdaFunction: props.tasks[task].function,
        payload: TaskInput.fromObject(payload),
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        resultPath: WEEKLY_WORKFLOW_RESULT_PATHS[task],
        taskTimeout: Timeout.duration(props.tasks[task].timeout),
      });
      step.addRetry(lambdaServiceErrors);
      if (taskRetries > 0) step.addRetry(taskErrors);
      return step;
    };

    const failed = new Fail(this, S.failed, {
      stateName: S.failed,
      error: "RoundFailed",
      cause: "The weekly round failed; the error is in the execution's $.error and the ROUND record; the pool is unchanged",
    });
    const recordFailure = invoke("recordFailure", { now, error: JsonPath.objectAt("$.error") });
    recordFailure.addCatch(failed, { errors: [Errors.ALL], resultPath: "$.recordFailureError" });
    recordFailure.next(failed);

    const refit = invoke("refit", { now });
    const select = invoke("select", { now });
    const notify = invoke("notify", { now, roundId: JsonPath.stringAt("$.selection.roundId") });
    for (const step of [refit, select, notify]) step.addCatch(recordFailure, { errors: [Errors.ALL], resultPath: "$.error" });
    const definition = refit
      .next(select)
      .next(notify)
      .next(new Succeed(this, S.done, { stateName: S.done }));

    this.logGroup = encryptedLogGroup(this, "ExecutionLogs", { encryptionKey: props.encryptionKey, retention: props.logRetention });
    const role = new ManagedPolicyRole(this, "Role", {
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: "Weekly selection state machine",
    });
    this.stateMachine = new StateMachine(this, "StateMachine", {
      definitionBody: DefinitionBody.fromChainable(definition),
      comment: "Weekly cost-sensitive selection round: refit → select → notify (lambdas/contracts/weekly-workflow.ts)",
      role,
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: true },
    });
    Validations.of(role).acknowledge(
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "the statements Step Functions needs for X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and for vended log delivery (logs:CreateLogDelivery, PutResourcePolicy, …) support no resource-level permissions",
      },
      ...Object.values(props.tasks).map((task) => ({
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(task.function)}:*]`,
        reason:
          "CDK's LambdaInvoke grants lambda:InvokeFunction on this one function and its versions/aliases (`<arn>:*`); no other function",
      })),
    );

    this.triggerDeadLetterQueue = new Queue(this, "TriggerDeadLetterQueue", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.startRound = new LambdaFunction(this, "StartRound", {
      handler: "start-round",
      description: "Weekly schedule → starts the selection round named after the ISO week",
      envSchema: StartRoundEnvSchema,
      // The execution name is the ISO week of the scheduled time in the zone the schedule runs in.
      environment: { STATE_MACHINE_ARN: this.stateMachine.stateMachineArn, SCHEDULE_TIMEZONE: props.schedule.timezone },
      invocation: { kind: "asynchronous", deadLetterQueue: this.triggerDeadLetterQueue },
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      timeout: Duration.seconds(30),
      statements: [
        new PolicyStatement({
          sid: "StartThisWorkflowOnly",
          actions: ["states:StartExecution"],
          resources: [this.stateMachine.stateMachineArn],
        }),
      ],
    });

    const schedulerRole = new ManagedPolicyRole(this, "SchedulerRole", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
      }),
      description: "EventBridge Scheduler: invoke start-round, dead-letter to the trigger DLQ",
    });
    schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "InvokeStartRound",
        actions: ["lambda:InvokeFunction"],
        resources: [this.startRound.function.functionArn],
      }),
    );
    schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({ sid: "DeadLetter", actions: ["sqs:SendMessage"], resources: [this.triggerDeadLetterQueue.queueArn] }),
    );
    schedulerRole.addToPrincipalPolicy(kmsUse(props.encryptionKey, ["kms:GenerateDataKey", "kms:Decrypt"]));
    this.schedule = new CfnSchedule(this, "Schedule", {
      description: "Starts the weekly selection round",
      scheduleExpression: props.schedule.expression,
      scheduleExpressionTimezone: props.schedule.timezone,
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: this.startRound.function.functionArn,
        roleArn: schedulerRole.roleArn,
        input: JSON.stringify({ scheduledTime: "<aws.scheduler.scheduled-time>" }),
        retryPolicy: { maximumEventAgeInSeconds: 24 * 3600, maximumRetryAttempts: 10 },
        deadLetterConfig: { arn: this.triggerDeadLetterQueue.queueArn },
      },
    });
    this.schedule.node.addDependency(schedulerRole);
  }
}
