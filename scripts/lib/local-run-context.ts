/**
 * What every stage of the local run shares: its options, the synthesized stack's resources created in
 * moto (and which resource plays which part, found from the wiring), the SDK clients and the handlers'
 * binding options. The stages themselves are listed in local-pipeline.ts.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import type { BindingOptions } from "./lambda-bindings.js";
import type { FunctionIdentity } from "./lambda-runtime.js";
import { createLocalResources, deriveWiring, type LocalFunction, type LocalWiring } from "./local-wiring.js";
import { LOCAL_AWS } from "./moto-server.js";
import type { EnsembleSettings } from "./python-jobs.js";
import { LocalTemplate, synthesizeInstitutionTemplate } from "./synthesized-stack.js";

export interface LocalRunOptions {
  /** Phantom studies uploaded (including the corrupt one and the one with a patient name); ≥ 4. */
  poolSize: number;
  /** Q: the weekly budget in hours (the institution config's weeklyBudgetHours). */
  budgetHours: number;
  seed: number;
  /** Where the outbox, logs and summary go (emptied first). */
  outputDir: string;
  /** Cache of trained ensembles and phantom pools. */
  cacheDir: string;
  ensemble: EnsembleSettings;
  /** Frame sizes of the pool's phantoms (cycled). */
  phantomSizes: number[];
  annotators: string[];
  /** Progress lines for a person watching. */
  report: (line: string) => void;
  /** Training progress (fraction 0–1). */
  trainingProgress?: (fraction: number) => void;
  /** CPU threads of the model server and training. */
  threads?: number;
  /** When the first weekly round runs (ISO); the second runs 7 days later. Default: now. */
  firstRoundAt?: string;
}

/** The stack synthesized for the local institution, and what moto holds of it. */
export interface LocalAws {
  readonly wiring: LocalWiring;
  readonly roles: StackRoles;
  /** Rounds are ISO weeks in the schedule's time zone, as the Lambdas (SCHEDULE_TIMEZONE) name them. */
  readonly scheduleTimeZone: string;
  readonly createdResources: string[];
}

export async function createLocalAws(options: LocalRunOptions, awsEndpoint: string): Promise<LocalAws> {
  const { template, config } = synthesizeInstitutionTemplate({
    institution: "local",
    annotatorEmails: options.annotators,
    senderAddress: "ich-al@example.org",
    weeklyBudgetHours: options.budgetHours,
    // Ingest sends K with every scoring request: the local ensemble's K (its manifest's top_k), not the paper's 200.
    topK: options.ensemble.topK,
    scoring: { modelArtifact: "s3://ich-al-local-models/ensemble/model.tar.gz" },
  });
  const wiring = deriveWiring(new LocalTemplate(template, awsEndpoint));
  const createdResources = await createLocalResources(wiring, awsEndpoint);
  return { wiring, roles: identifyRoles(wiring), scheduleTimeZone: config.schedule.timezone, createdResources };
}

/** What the stages share: the local AWS, its clients (closed by the run's cleanups) and the handlers' bindings. */
export interface RunContext extends LocalAws {
  readonly options: LocalRunOptions;
  /** What the run stops in its `finally`, last registered first. */
  readonly cleanups: (() => Promise<void>)[];
  readonly report: (line: string) => void;
  readonly awsEndpoint: string;
  readonly bindingOptions: BindingOptions;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly dynamo: DynamoDBClient;
  readonly records: DynamoRecordStore;
}

export function runContext(
  options: LocalRunOptions,
  aws: LocalAws,
  cleanups: (() => Promise<void>)[],
  bindingOptions: BindingOptions,
): RunContext {
  const endpoint = bindingOptions.awsEndpoint;
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint });
  const s3 = new S3Client({ ...LOCAL_AWS, endpoint, forcePathStyle: true });
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  cleanups.push(
    async () => sqs.destroy(),
    async () => s3.destroy(),
    async () => dynamo.destroy(),
  );
  return {
    ...aws,
    options,
    cleanups,
    report: options.report,
    awsEndpoint: endpoint,
    bindingOptions,
    sqs,
    s3,
    dynamo,
    records: new DynamoRecordStore(dynamo, aws.roles.tableName),
  };
}

export type StackRoles = ReturnType<typeof identifyRoles>;

/** Which template resources play which part, found from the wiring itself (not from names). */
function identifyRoles(wiring: LocalWiring) {
  const notification = wiring.bucketNotifications[0];
  const ingestQueueArn = notification?.queueConfigurations[0]?.QueueArn;
  if (!notification || !ingestQueueArn) throw new Error("the synthesized stack has no bucket notification to a queue");
  const prefix = notification.queueConfigurations[0]?.Filter?.Key?.FilterRules?.find((r) => r.Name.toLowerCase() === "prefix")?.Value ?? "";
  const fnOf = (logicalId: string) => wiring.functions.find((f) => f.logicalId === logicalId) as LocalFunction;
  const mappingFor = (queueArn: string) => wiring.eventSourceMappings.find((m) => m.queueArn === queueArn);
  const ingestMapping = mappingFor(ingestQueueArn);
  if (!ingestMapping) throw new Error("no Lambda event source mapping consumes the ingest queue in the synthesized stack");
  const scoringEndpoint = wiring.scoringEndpoint;
  if (!scoringEndpoint) throw new Error("the synthesized stack has no SageMaker endpoint with an asynchronous inference config");
  const topics = [scoringEndpoint.successTopicArn, scoringEndpoint.errorTopicArn].filter(Boolean);
  const scoreQueueArn = wiring.subscriptions.find((s) => s.protocol === "sqs" && topics.includes(s.topicArn))?.endpoint;
  const scoreMapping = scoreQueueArn ? mappingFor(scoreQueueArn) : undefined;
  if (!scoreMapping) throw new Error("no queue subscribed to the endpoint's topics is consumed by a Lambda in the synthesized stack");
  const ingestFn = fnOf(ingestMapping.functionLogicalId);
  const tableName = ingestFn.environment.TABLE_NAME;
  if (!tableName) throw new Error("the ingest function's environment has no TABLE_NAME");
  return {
    studiesBucket: notification.bucket,
    uploadsPrefix: prefix,
    scoringEndpoint,
    tableName,
    ingest: { fn: ingestFn, mapping: ingestMapping },
    recordScore: { fn: fnOf(scoreMapping.functionLogicalId), mapping: scoreMapping },
    get complete(): LocalFunction {
      return completionFunction(wiring);
    },
    /** The re-score function: the one that names the scoring endpoint but consumes no queue. */
    get rescore(): LocalFunction {
      const consumers = new Set(wiring.eventSourceMappings.map((m) => m.functionLogicalId));
      // The one with the scoring request's settings (deploy-candidate names the endpoint too, without them).
      const fn = wiring.functions.find(
        (f) => f.environment.SCORING_ENDPOINT_NAME && f.environment.SCORING_TOP_K && !consumers.has(f.logicalId),
      );
      if (!fn) throw new Error("the synthesized stack has no re-score function (SCORING_ENDPOINT_NAME without an ingest queue)");
      return fn;
    },
  };
}

/** The completion API's function: the one an API Gateway method integrates (by ARN in its URI). */
function completionFunction(wiring: LocalWiring): LocalFunction {
  const fn = wiring.functions.find((f) => wiring.apiIntegrations.some((uri) => uri.includes(f.arn)));
  if (!fn) throw new Error("the synthesized stack has no API Gateway method integrating a Lambda function (completion API)");
  return fn;
}

/** What a handler sees of the function it runs as (name, ARN, timeout). */
export function identity(fn: LocalFunction): FunctionIdentity {
  return { name: fn.name, arn: fn.arn, timeoutSeconds: fn.timeoutSeconds };
}

/** Every item of the records table. */
export async function scanRecords(dynamo: DynamoDBClient, table: string): Promise<Record<string, unknown>[]> {
  const documents = DynamoDBDocumentClient.from(dynamo);
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
