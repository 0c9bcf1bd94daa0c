import { CfnOutput, Duration, Lazy, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import { Metric } from "aws-cdk-lib/aws-cloudwatch";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { CfnKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { Construct } from "constructs";
import { CompleteEnvSchema, NotifyEnvSchema, RefitEnvSchema, RoundFailureEnvSchema, SelectEnvSchema } from "../lambdas/contracts/env.js";
import type { InstitutionConfig } from "../lambdas/contracts/institution-config.js";
import { LABEL_UPLOADS_PREFIX, LABELS_PREFIX } from "../lambdas/contracts/masks.js";
import { METRICS_SERVICE, metricsNamespace, REFIT_METRICS } from "../lambdas/contracts/metrics.js";
import { OVERLAYS_PREFIX } from "../lambdas/domain/ingest.js";
import { Alarms } from "./alarms.js";
import { CompletionApi } from "./completion-api.js";
import { DataKey } from "./data-key.js";
import { kmsUse, LambdaFunction } from "./lambda-function.js";
import { LearningLoop } from "./learning-loop.js";
import { resourceFindingId } from "./nag-ids.js";
import { OperationsDashboard } from "./operations-dashboard.js";
import { recordsReadWrite } from "./records-access.js";
import { RecordsTable } from "./records-table.js";
import { ScoringEndpoint } from "./scoring-endpoint.js";
import { ScoringPipeline } from "./scoring-pipeline.js";
import { SealedNetwork } from "./sealed-network.js";
import { SenderIdentity } from "./sender-identity.js";
import { StudiesIngest } from "./studies-ingest.js";
import { WeeklyWorkflow } from "./weekly-workflow.js";
import { WorklistSite } from "./worklist-site.js";

export interface InstitutionStackProps extends StackProps {
  /** The institution's parsed configuration (lambdas/contracts/institution-config.ts); names the stack's resources. */
  readonly config: InstitutionConfig;
}

/** Timeouts of the weekly Tasks' Lambdas; each Task's timeout adds 30 s for Lambda's own start-up and hand-off. */
const TASK_TIMEOUTS = {
  refit: Duration.minutes(5),
  select: Duration.minutes(5),
  notify: Duration.minutes(5),
  recordFailure: Duration.minutes(2),
};
const TASK_MARGIN = Duration.seconds(30);

/**
 * One deployment per institution. Data flow (README):
 *   upload → studies bucket → ingest queue → ingest λ → SageMaker async scoring endpoint → SNS → score
 *   queue → record-score λ → records table;
 *   weekly schedule → start-round λ → Step Functions: refit → select → notify (SES) | record failure;
 *   annotators → worklist page (CloudFront + S3, Cognito hosted UI) → /api/* → completion API → complete λ
 *   → records table.
 * Constructs: DataKey, StudiesIngest, RecordsTable, SealedNetwork, ScoringEndpoint, ScoringPipeline, SenderIdentity,
 * WeeklyWorkflow, CompletionApi, WorklistSite, Alarms. Outputs name everything the local runner and operators need.
 */
export class InstitutionStack extends Stack {
  readonly config: InstitutionConfig;
  readonly dataKey: DataKey;
  readonly studies: StudiesIngest;
  readonly records: RecordsTable;
  /** Private isolated subnets + S3 gateway endpoint: where the containers that parse uploads run. */
  readonly network: SealedNetwork;
  readonly scoringEndpoint: ScoringEndpoint;
  readonly scoring: ScoringPipeline;
  /** Retraining on accepted masks, promotion, re-scoring: only with a deployed endpoint. */
  readonly learning?: LearningLoop;
  readonly sender: SenderIdentity;
  readonly refit: LambdaFunction<typeof RefitEnvSchema>;
  readonly select: LambdaFunction<typeof SelectEnvSchema>;
  readonly notify: LambdaFunction<typeof NotifyEnvSchema>;
  readonly roundFailure: LambdaFunction<typeof RoundFailureEnvSchema>;
  readonly complete: LambdaFunction<typeof CompleteEnvSchema>;
  readonly workflow: WeeklyWorkflow;
  readonly completionApi: CompletionApi;
  readonly worklistSite: WorklistSite;
  readonly alarms: Alarms;
  readonly dashboard: OperationsDashboard;

  constructor(scope: Construct, id: string, props: InstitutionStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { institution } = config;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(institution)) {
      throw new Error(
        `institution must be 1–31 lower-case letters, digits or hyphens (e.g. "st-elsewhere"), got ${JSON.stringify(institution)}`,
      );
    }
    this.config = config;
    Tags.of(this).add("ich-al:institution", institution);

    this.dataKey = new DataKey(this, "DataKey", { institution });
    // The logical id the key had before it moved into the DataKey construct: deployed stacks keep their key.
    (this.dataKey.key.node.defaultChild as CfnKey).overrideLogicalId("DataKey17AFBB84");
    const encryptionKey = this.dataKey.key;
    const ingestTimeout = Duration.seconds(60);
    this.studies = new StudiesIngest(this, "Studies", { encryptionKey, ingestFunctionTimeout: ingestTimeout, retention: config.retention });
    this.records = new RecordsTable(this, "Records", { encryptionKey });
    const table = this.records.table;
    const tableKms = kmsUse(encryptionKey, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]);

    // Always created, model or not: it costs nothing idle and the training job runs in it too.
    this.network = new SealedNetwork(this, "Network", { encryptionKey });
    this.scoringEndpoint = new ScoringEndpoint(this, "ScoringEndpoint", {
      institution,
      network: this.network,
      instanceType: config.scoring.instanceType,
      maxInstanceCount: config.scoring.maxInstanceCount,
      modelArtifact: config.scoring.modelArtifact,
      studiesBucket: this.studies.bucket,
      encryptionKey,
    });
    this.scoring = new ScoringPipeline(this, "Scoring", {
      studiesBucket: this.studies.bucket,
      ingestQueue: this.studies.queue,
      ingestMaxReceiveCount: this.studies.maxReceiveCount,
      scoringParameters: {
        topK: config.topK,
        thresholds: config.thresholds,
        allowedPrivateCreators: config.deidentification.allowedPrivateCreators,
      },
      timePrior: config.timeModel.prior,
      metricsNamespace: metricsNamespace(config.institution),
      table,
      endpoint: this.scoringEndpoint,
      encryptionKey,
      ingestTimeout,
    });

    if (this.scoringEndpoint.deployed) {
      this.learning = new LearningLoop(this, "Learning", {
        config,
        table,
        studiesBucket: this.studies.bucket,
        endpoint: this.scoringEndpoint,
        network: this.network,
        rescore: this.scoring.rescore.function,
        encryptionKey,
      });
    }

    const synchronousTask = { kind: "synchronous", caller: "a Task of the weekly Step Functions workflow (Retry, then Catch)" } as const;
    this.refit = new LambdaFunction(this, "Refit", {
      handler: "refit",
      description: "Weekly: refit the labeling-time model on completed stacks, re-predict pending stacks",
      envSchema: RefitEnvSchema,
      environment: {
        TABLE_NAME: table.tableName,
        TIME_MODEL_PRIOR: JSON.stringify(config.timeModel.prior),
        MAX_ACTIVE_SECONDS: String(config.timeModel.maxActiveHours * 3600),
        CALIBRATION_BAND: config.timeModel.calibrationBand.join(","),
        METRICS_NAMESPACE: metricsNamespace(config.institution),
      },
      invocation: synchronousTask,
      encryptionKey,
      timeout: TASK_TIMEOUTS.refit,
      memorySize: 1024,
      statements: [...recordsReadWrite(table), tableKms],
    });
    this.select = new LambdaFunction(this, "Select", {
      handler: "select",
      description: "Weekly: exact knapsack selection of pending stacks within the annotators' budget",
      envSchema: SelectEnvSchema,
      environment: {
        TABLE_NAME: table.tableName,
        WEEKLY_BUDGET_HOURS: String(config.weeklyBudgetHours),
        RESOLUTION_SECONDS: String(config.timeResolutionSeconds),
        TIME_MODEL_PRIOR: JSON.stringify(config.timeModel.prior),
        // Rounds are ISO weeks in the zone the weekly schedule runs in (as start-round names them).
        SCHEDULE_TIMEZONE: config.schedule.timezone,
      },
      invocation: synchronousTask,
      encryptionKey,
      timeout: TASK_TIMEOUTS.select,
      // One full vCPU for the knapsack over thousands of stacks.
      memorySize: 1769,
      statements: [...recordsReadWrite(table), tableKms],
    });
    this.roundFailure = new LambdaFunction(this, "RoundFailure", {
      handler: "round-failure",
      description: "Weekly, on failure: record the failed round and put its stacks back in the pool",
      envSchema: RoundFailureEnvSchema,
      environment: { TABLE_NAME: table.tableName, SCHEDULE_TIMEZONE: config.schedule.timezone },
      invocation: synchronousTask,
      encryptionKey,
      timeout: TASK_TIMEOUTS.recordFailure,
      statements: [...recordsReadWrite(table), tableKms],
    });
    this.complete = new LambdaFunction(this, "Complete", {
      handler: "complete",
      description: "Completion API: an annotator reports a labeled stack; the worklist; overlay thumbnails",
      envSchema: CompleteEnvSchema,
      environment: {
        TABLE_NAME: table.tableName,
        // The user pool and its annotators are created by the API below (it needs this function first).
        ANNOTATOR_DIRECTORY: Lazy.string({ produce: () => this.completionApi.annotatorDirectory }),
        MAX_ACTIVE_SECONDS: String(config.timeModel.maxActiveHours * 3600),
        STUDIES_BUCKET: this.studies.bucket.bucketName,
        SCHEDULE_TIMEZONE: config.schedule.timezone,
      },
      invocation: { kind: "synchronous", caller: "API Gateway (Lambda proxy; a failure is the caller's 5xx)" },
      encryptionKey,
      // A mask is inflated, checked and re-encoded in memory (lambdas/domain/nifti-mask.ts): a 300-frame
      // 512² float64 export inflates to ~630 MB; 2 GB also buys more than one vCPU for the check.
      // 29 s is API Gateway's integration limit.
      timeout: Duration.seconds(29),
      memorySize: 2048,
      reservedConcurrency: 5,
      statements: [
        ...recordsReadWrite(table),
        tableKms,
        new PolicyStatement({
          sid: "ReadOverlays",
          actions: ["s3:GetObject"],
          resources: [this.studies.bucket.arnForObjects(`${OVERLAYS_PREFIX}*`)],
        }),
        // Presigned PUTs act as this role: uploads only under label-uploads/, read back for the check.
        new PolicyStatement({
          sid: "MaskUploads",
          actions: ["s3:PutObject", "s3:GetObject"],
          resources: [this.studies.bucket.arnForObjects(`${LABEL_UPLOADS_PREFIX}*`)],
        }),
        // Without it S3 answers 403, not 404, for an upload that was never made (NOT_UPLOADED).
        new PolicyStatement({
          sid: "ListMaskUploads",
          actions: ["s3:ListBucket"],
          resources: [this.studies.bucket.bucketArn],
          conditions: { StringLike: { "s3:prefix": [`${LABEL_UPLOADS_PREFIX}*`] } },
        }),
        new PolicyStatement({
          sid: "WriteMasks",
          actions: ["s3:PutObject"],
          resources: [this.studies.bucket.arnForObjects(`${LABELS_PREFIX}*`)],
        }),
      ],
    });
    Validations.of(this.complete.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(this.studies.bucket)}/${OVERLAYS_PREFIX}*]`,
        reason: `overlay thumbnails under ${OVERLAYS_PREFIX} of the studies bucket, one folder per study written by the scoring container; read-only and the narrowest prefix`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(this.studies.bucket)}/${LABEL_UPLOADS_PREFIX}*]`,
        reason: `mask uploads under ${LABEL_UPLOADS_PREFIX}, one folder per stack with a fresh UUID per upload: the API presigns PUTs there (the key is chosen per request) and reads the upload back to check it`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::${resourceFindingId(this.studies.bucket)}/${LABELS_PREFIX}*]`,
        reason: `accepted masks under ${LABELS_PREFIX}, one folder per stack, written by the API after the check (never read or deleted by it)`,
      },
    );
    this.completionApi = new CompletionApi(this, "CompletionApi", {
      institution,
      handler: this.complete.function,
      annotatorEmails: config.annotatorEmails,
      encryptionKey,
    });
    this.worklistSite = new WorklistSite(this, "WorklistSite", {
      institution,
      api: this.completionApi.api,
      userPool: this.completionApi.userPool,
      encryptionKey,
      uploadOrigin: `https://${this.studies.bucket.bucketRegionalDomainName}`,
    });

    this.sender = new SenderIdentity(this, "Sender", { senderAddress: config.senderAddress, recipientAddresses: config.annotatorEmails });
    this.notify = new LambdaFunction(this, "Notify", {
      handler: "notify",
      description: "Weekly: one worklist e-mail per annotator per round (SES v2)",
      envSchema: NotifyEnvSchema,
      environment: {
        TABLE_NAME: table.tableName,
        SENDER_ADDRESS: config.senderAddress,
        ANNOTATOR_EMAILS: config.annotatorEmails.join(","),
        WEEKLY_BUDGET_HOURS: String(config.weeklyBudgetHours),
        // The worklist page on its CloudFront distribution (sign-in through the Cognito hosted UI).
        WORKLIST_URL: this.worklistSite.url,
      },
      invocation: synchronousTask,
      encryptionKey,
      timeout: TASK_TIMEOUTS.notify,
      statements: [...recordsReadWrite(table, { deleteItems: true }), tableKms, this.sender.sendStatement()],
    });

    const task = (fn: { readonly function: IFunction }, timeout: Duration) => ({
      function: fn.function,
      timeout: timeout.plus(TASK_MARGIN),
    });
    this.workflow = new WeeklyWorkflow(this, "WeeklyWorkflow", {
      tasks: {
        refit: task(this.refit, TASK_TIMEOUTS.refit),
        select: task(this.select, TASK_TIMEOUTS.select),
        notify: task(this.notify, TASK_TIMEOUTS.notify),
        recordFailure: task(this.roundFailure, TASK_TIMEOUTS.recordFailure),
      },
      schedule: config.schedule,
      encryptionKey,
    });

    this.alarms = this.createAlarms();
    this.dashboard = this.createDashboard();
    this.addOutputs();
  }

  /** Alarms to the operators' topic: dead letters, failed or timed-out rounds, the time model, the endpoint. */
  private createAlarms(): Alarms {
    const { config } = this;
    const encryptionKey = this.dataKey.key;
    const alarms = new Alarms(this, "Alarms", { encryptionKey });
    alarms.alarmOnDeadLetters("IngestDeadLetters", this.studies.deadLetterQueue);
    alarms.alarmOnDeadLetters("ScoreDeadLetters", this.scoring.scoreDeadLetterQueue);
    alarms.alarmOnDeadLetters("TriggerDeadLetters", this.workflow.triggerDeadLetterQueue);
    const stateMachine = this.workflow.stateMachine;
    alarms.alarmAbove("RoundFailed", {
      metric: stateMachine.metricFailed({ period: Duration.minutes(5), statistic: "Sum" }),
      threshold: 0,
      description:
        "The weekly selection round failed: see the execution's $.error and the ROUND record; fix the cause, then start the round again (start-round or StartExecution with the ISO-week name)",
    });
    alarms.alarmAbove("RoundTimedOut", {
      metric: stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: "Sum" }),
      threshold: 0,
      description: "The weekly selection round timed out: see the execution history; start it again once the slow step is understood",
    });
    const refitMetric = (metricName: string, statistic: string) =>
      new Metric({
        namespace: metricsNamespace(config.institution),
        metricName,
        period: Duration.hours(1),
        statistic,
        dimensionsMap: { service: METRICS_SERVICE },
      });
    alarms.alarmAbove("TimeModelFitRefused", {
      metric: refitMetric(REFIT_METRICS.fitRefused, "Maximum"),
      threshold: 0,
      description:
        "The weekly refit computed a labeling-time model that predicts non-finite times or times outside [1 s, 24 h]; it was not stored and the round went on with the version in effect. See the refit output's `refused` and `excluded` in the execution, and check the completions it lists",
    });
    alarms.alarmAbove("RoundTimeOutsideBand", {
      metric: refitMetric(REFIT_METRICS.roundOutsideBand, "Maximum"),
      threshold: 0,
      description: `Last round's actual labeling hours / predicted left [${config.timeModel.calibrationBand.join(", ")}]: the time model mis-budgets the annotators. See the refit output's lastRound; check annotator speed factors and excluded completions`,
    });
    if (this.scoringEndpoint.deployed) {
      alarms.alarmAbove("EndpointModelErrors", {
        metric: this.scoringEndpoint.metricInvocation5xxErrors(),
        threshold: 0,
        description:
          "The scoring container answered 5xx (a fault, not a refused study): see /aws/sagemaker/Endpoints logs; record-score marks those studies failed",
      });
      alarms.alarmAbove("EndpointBacklogStuck", {
        metric: this.scoringEndpoint.metricApproximateAgeOfOldestRequest(),
        threshold: 2 * 3600,
        evaluationPeriods: 3,
        description:
          "A scoring request has waited over 2 hours: the endpoint is not scaling from zero or not draining (instance quota, model start-up failure)",
      });
    }
    return alarms;
  }

  /** The operators' dashboard (infra/operations-dashboard.ts): every queue, workflow and Lambda of the stack. */
  private createDashboard(): OperationsDashboard {
    const { config } = this;
    const { institution } = config;
    const stateMachine = this.workflow.stateMachine;
    return new OperationsDashboard(this, "Operations", {
      institution,
      namespace: metricsNamespace(config.institution),
      queues: { ingest: this.studies.queue, "scoring results": this.scoring.scoreQueue },
      deadLetterQueues: {
        ingest: this.studies.deadLetterQueue,
        "scoring results": this.scoring.scoreDeadLetterQueue,
        "weekly trigger": this.workflow.triggerDeadLetterQueue,
      },
      ...(this.scoringEndpoint.deployed ? { scoringBacklogAge: this.scoringEndpoint.metricApproximateAgeOfOldestRequest() } : {}),
      stateMachine,
      ...(this.learning ? { learningStateMachine: this.learning.workflow.stateMachine } : {}),
      functions: {
        ingest: this.scoring.ingest.function,
        "record-score": this.scoring.recordScore.function,
        "start-round": this.workflow.startRound.function,
        refit: this.refit.function,
        select: this.select.function,
        notify: this.notify.function,
        complete: this.complete.function,
        "round-failure": this.roundFailure.function,
        rescore: this.scoring.rescore.function,
        ...(this.learning
          ? {
              "prepare-training": this.learning.functions.prepare.function,
              "judge-candidate": this.learning.functions.judge.function,
              "deploy-candidate": this.learning.functions.deploy.function,
              "put-in-service": this.learning.functions.putInService.function,
              "training-failure": this.learning.functions.recordFailure.function,
            }
          : {}),
      },
    });
  }

  /** What the local runner and operators need, named. */
  private addOutputs(): void {
    const encryptionKey = this.dataKey.key;
    const table = this.records.table;
    const stateMachine = this.workflow.stateMachine;
    const output = (name: string, value: string, description: string) => new CfnOutput(this, name, { value, description });
    output("StudiesBucketName", this.studies.bucket.bucketName, "Upload de-identified studies under uploads/");
    output(
      "RescoreFunctionName",
      this.scoring.rescore.function.functionName,
      "After a new model is in service: aws lambda invoke --function-name <this> out.json re-scores the pool",
    );
    output(
      "QuarantineOperatorRoleArn",
      this.studies.quarantineOperatorRole.roleArn,
      "The only role that may read refused studies under quarantine/ (assume it to investigate)",
    );
    output("IngestQueueUrl", this.studies.queue.queueUrl, "S3 upload events for the ingest Lambda");
    output(
      "IngestDeadLetterQueueUrl",
      this.studies.deadLetterQueue.queueUrl,
      "Upload events ingest failed; re-drive after fixing the cause",
    );
    output("ScoreQueueUrl", this.scoring.scoreQueue.queueUrl, "Async scoring notifications for record-score");
    output("ScoreDeadLetterQueueUrl", this.scoring.scoreDeadLetterQueue.queueUrl, "Scoring notifications record-score failed");
    output("TriggerDeadLetterQueueUrl", this.workflow.triggerDeadLetterQueue.queueUrl, "Weekly triggers that never started a round");
    output("RecordsTableName", table.tableName, "Records table (stacks, rounds, time-model versions)");
    output("ScoringEndpointName", this.scoringEndpoint.endpointName, "SageMaker async endpoint (exists once scoring.modelArtifact is set)");
    output("ScoringSuccessTopicArn", this.scoringEndpoint.successTopic.topicArn, "Async inference success notifications");
    output("ScoringErrorTopicArn", this.scoringEndpoint.errorTopic.topicArn, "Async inference error notifications");
    output("WeeklyStateMachineArn", stateMachine.stateMachineArn, "Weekly selection workflow");
    if (this.learning) {
      output(
        "LearningStateMachineArn",
        this.learning.workflow.stateMachine.stateMachineArn,
        "Learning workflow: train, judge, deploy, re-score",
      );
      output(
        "ModelPackageGroupName",
        this.learning.workflow.modelPackageGroupName,
        "Model registry: every candidate, Approved or Rejected, with metrics",
      );
    }
    output("CompletionApiUrl", this.completionApi.api.url, "Annotators' API (POST completions, GET worklist)");
    output("UserPoolId", this.completionApi.userPool.userPoolId, "Annotators' Cognito user pool");
    output(
      "UserPoolClientId",
      this.worklistSite.client.userPoolClientId,
      "Worklist page client (authorization code + PKCE, SRP; no secret)",
    );
    output("WorklistUrl", this.worklistSite.url, "The annotators' worklist page (linked from the weekly e-mail)");
    output("WorklistSignInOrigin", this.worklistSite.signInOrigin, "Cognito hosted UI the worklist page signs in and out with");
    output("WorklistSiteBucketName", this.worklistSite.bucket.bucketName, "The worklist page's files (deployed by the stack)");
    output("SenderIdentityArn", this.sender.identityArn, "SES identity of the weekly e-mail's sender");
    output("AlarmTopicArn", this.alarms.topic.topicArn, "Subscribe operators here");
    output("OperationsDashboardName", this.dashboard.dashboard.dashboardName, "CloudWatch dashboard: intake, waiting work, rounds, errors");
    output("DataKeyArn", encryptionKey.keyArn, "Customer-managed KMS key of all data at rest");
  }
}
