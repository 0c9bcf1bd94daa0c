/**
 * What the local emulator must hold, read from the synthesized template (synthesized-stack.ts), and
 * its creation in moto server with the real SDK v3 clients. Nothing here names a bucket, queue, topic
 * or table: each comes from a template resource, with the template's properties (versioning, visibility
 * timeout, retention, redrive policy, raw delivery, key schema and GSIs, notification filters).
 *
 * Not reproduced locally (the emulator has no use for them): KMS encryption settings, resource and
 * IAM policies, alarms, backups, log groups, the Lambda functions themselves (their handlers run
 * in-process, see lambda-bindings.ts) and the SageMaker model/endpoint (the Python container serves
 * the endpoint's paths, see model-server.ts).
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
} from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, PutBucketVersioningCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateEmailIdentityCommand, SESv2Client } from "@aws-sdk/client-sesv2";
import { CreateTopicCommand, SNSClient, SubscribeCommand } from "@aws-sdk/client-sns";
import { CreateQueueCommand, SetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { LOCAL_AWS } from "./moto-server.js";
import type { LocalTemplate } from "./synthesized-stack.js";

export interface LocalBucket {
  logicalId: string;
  name: string;
  versioned: boolean;
}
export interface LocalQueue {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  redrive?: { deadLetterTargetArn: string; maxReceiveCount: number };
}
export interface LocalTopic {
  logicalId: string;
  name: string;
  arn: string;
}
export interface LocalSubscription {
  logicalId: string;
  topicArn: string;
  protocol: string;
  endpoint: string;
  rawMessageDelivery: boolean;
}
export interface LocalTable {
  logicalId: string;
  name: string;
  keySchema: KeySchemaElement[];
  attributeDefinitions: AttributeDefinition[];
  globalSecondaryIndexes: GlobalSecondaryIndex[];
}
export interface LocalBucketNotification {
  logicalId: string;
  bucket: string;
  queueConfigurations: { QueueArn: string; Events: string[]; Filter?: { Key?: { FilterRules?: { Name: string; Value: string }[] } } }[];
}
export interface LocalFunction {
  logicalId: string;
  name: string;
  arn: string;
  /** Environment.Variables with intrinsics resolved. */
  environment: Record<string, string>;
  timeoutSeconds: number;
  /** The construct path (metadata `aws:cdk:path`), e.g. `IchActiveLearning-local/Pipeline/Ingest/Resource`. */
  path: string;
}
export interface LocalEventSourceMapping {
  logicalId: string;
  functionLogicalId: string;
  queueArn: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  maximumConcurrency: number | undefined;
}
export interface LocalScoringEndpoint {
  name: string;
  /** s3:// prefix of asynchronous results (EndpointConfig AsyncInferenceConfig.OutputConfig.S3OutputPath). */
  asyncOutput: string;
  failureOutput: string | undefined;
  successTopicArn: string | undefined;
  errorTopicArn: string | undefined;
  /** The model's container environment (Model PrimaryContainer.Environment), e.g. ICHAL_CONCURRENT_REQUESTS. */
  environment: Record<string, string>;
}
export interface LocalStateMachine {
  logicalId: string;
  name: string;
  arn: string;
  /** The Amazon States Language definition, intrinsics resolved. */
  definition: Record<string, unknown>;
}

/** Everything the local run derives from the template. */
export interface LocalWiring {
  buckets: LocalBucket[];
  queues: LocalQueue[];
  topics: LocalTopic[];
  subscriptions: LocalSubscription[];
  tables: LocalTable[];
  bucketNotifications: LocalBucketNotification[];
  functions: LocalFunction[];
  eventSourceMappings: LocalEventSourceMapping[];
  scoringEndpoint: LocalScoringEndpoint | undefined;
  stateMachine: LocalStateMachine | undefined;
  /** SES identities: AWS::SES::EmailIdentity resources and every SENDER_ADDRESS a function is given. */
  senderIdentities: string[];
  /** Integration URIs of API Gateway methods (they name the Lambda function an API route invokes). */
  apiIntegrations: string[];
}

const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

/** Reads the wiring from the template. */
export function deriveWiring(t: LocalTemplate): LocalWiring {
  const buckets = t.logicalIds("AWS::S3::Bucket").map((id) => ({
    logicalId: id,
    name: t.physicalName(id),
    versioned: t.property<{ Status?: string }>(id, "VersioningConfiguration")?.Status === "Enabled",
  }));

  const queueAttributes: Record<string, string> = {
    VisibilityTimeout: "VisibilityTimeout",
    MessageRetentionPeriod: "MessageRetentionPeriod",
    DelaySeconds: "DelaySeconds",
    ReceiveMessageWaitTimeSeconds: "ReceiveMessageWaitTimeSeconds",
    MaximumMessageSize: "MaximumMessageSize",
  };
  const queues = t.logicalIds("AWS::SQS::Queue").map((id) => {
    const attributes: Record<string, string> = {};
    for (const [property, attribute] of Object.entries(queueAttributes)) {
      const value = t.property(id, property);
      if (value !== undefined) attributes[attribute] = String(value);
    }
    const redrive = t.property<{ deadLetterTargetArn: string; maxReceiveCount: number | string }>(id, "RedrivePolicy");
    return {
      logicalId: id,
      name: t.physicalName(id),
      url: t.ref(id),
      arn: t.getAtt(id, "Arn"),
      attributes,
      ...(redrive
        ? { redrive: { deadLetterTargetArn: redrive.deadLetterTargetArn, maxReceiveCount: Number(redrive.maxReceiveCount) } }
        : {}),
    };
  });

  const topics = t.logicalIds("AWS::SNS::Topic").map((id) => ({ logicalId: id, name: t.physicalName(id), arn: t.getAtt(id, "TopicArn") }));
  const subscriptions = t.logicalIds("AWS::SNS::Subscription").map((id) => ({
    logicalId: id,
    topicArn: String(t.property(id, "TopicArn")),
    protocol: String(t.property(id, "Protocol")),
    endpoint: String(t.property(id, "Endpoint")),
    rawMessageDelivery: String(t.property(id, "RawMessageDelivery") ?? "false") === "true",
  }));

  const tables = t.logicalIds("AWS::DynamoDB::Table").map((id) => ({
    logicalId: id,
    name: t.physicalName(id),
    keySchema: t.property<KeySchemaElement[]>(id, "KeySchema") ?? [],
    attributeDefinitions: t.property<AttributeDefinition[]>(id, "AttributeDefinitions") ?? [],
    globalSecondaryIndexes: (t.property<Record<string, unknown>[]>(id, "GlobalSecondaryIndexes") ?? []).map((gsi) => ({
      IndexName: String(gsi.IndexName),
      KeySchema: gsi.KeySchema as KeySchemaElement[],
      Projection: gsi.Projection as GlobalSecondaryIndex["Projection"],
    })),
  }));

  const bucketNotifications = t.logicalIds("Custom::S3BucketNotifications").map((id) => {
    const config =
      t.property<{ QueueConfigurations?: LocalBucketNotification["queueConfigurations"] }>(id, "NotificationConfiguration") ?? {};
    return { logicalId: id, bucket: String(t.property(id, "BucketName")), queueConfigurations: config.QueueConfigurations ?? [] };
  });

  const functions = t.logicalIds("AWS::Lambda::Function").map((id) => {
    const environment = t.property<{ Variables?: Record<string, unknown> }>(id, "Environment")?.Variables ?? {};
    return {
      logicalId: id,
      name: t.physicalName(id),
      arn: t.getAtt(id, "Arn"),
      environment: Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])),
      timeoutSeconds: Number(t.property(id, "Timeout") ?? 3),
      path: String(t.resource(id).Metadata?.["aws:cdk:path"] ?? id),
    };
  });
  const functionByNameOrArn = new Map<string, LocalFunction>();
  for (const fn of functions) {
    functionByNameOrArn.set(fn.name, fn);
    functionByNameOrArn.set(fn.arn, fn);
  }

  const eventSourceMappings = t.logicalIds("AWS::Lambda::EventSourceMapping").flatMap((id) => {
    const fn = functionByNameOrArn.get(String(t.property(id, "FunctionName")));
    const source = str(t.property(id, "EventSourceArn"));
    if (!fn || !source?.startsWith("arn:aws:sqs:")) return [];
    const responseTypes = t.property<string[]>(id, "FunctionResponseTypes") ?? [];
    const scaling = t.property<{ MaximumConcurrency?: number }>(id, "ScalingConfig");
    return [
      {
        logicalId: id,
        functionLogicalId: fn.logicalId,
        queueArn: source,
        batchSize: Number(t.property(id, "BatchSize") ?? 10),
        maximumBatchingWindowSeconds: Number(t.property(id, "MaximumBatchingWindowInSeconds") ?? 0),
        reportBatchItemFailures: responseTypes.includes("ReportBatchItemFailures"),
        maximumConcurrency: scaling?.MaximumConcurrency === undefined ? undefined : Number(scaling.MaximumConcurrency),
      },
    ];
  });

  let scoringEndpoint: LocalScoringEndpoint | undefined;
  const endpointId = t.logicalIds("AWS::SageMaker::Endpoint")[0];
  if (endpointId) {
    const configName = str(t.property(endpointId, "EndpointConfigName"));
    const configId =
      t.logicalIds("AWS::SageMaker::EndpointConfig").find((id) => t.physicalName(id) === configName) ??
      t.logicalIds("AWS::SageMaker::EndpointConfig")[0];
    const asyncConfig = configId
      ? t.property<{
          OutputConfig?: {
            S3OutputPath?: string;
            S3FailurePath?: string;
            NotificationConfig?: { SuccessTopic?: string; ErrorTopic?: string };
          };
        }>(configId, "AsyncInferenceConfig")
      : undefined;
    const output = asyncConfig?.OutputConfig;
    const variantModel = configId
      ? str(t.property<Array<{ ModelName?: unknown }>>(configId, "ProductionVariants")?.[0]?.ModelName)
      : undefined;
    const modelId =
      t.logicalIds("AWS::SageMaker::Model").find((id) => t.physicalName(id) === variantModel) ?? t.logicalIds("AWS::SageMaker::Model")[0];
    const environment = modelId
      ? (t.property<{ Environment?: Record<string, unknown> }>(modelId, "PrimaryContainer")?.Environment ?? {})
      : {};
    if (output?.S3OutputPath) {
      scoringEndpoint = {
        name: t.physicalName(endpointId),
        asyncOutput: output.S3OutputPath,
        failureOutput: output.S3FailurePath,
        successTopicArn: output.NotificationConfig?.SuccessTopic,
        errorTopicArn: output.NotificationConfig?.ErrorTopic,
        environment: Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, String(value)])),
      };
    }
  }

  let stateMachine: LocalStateMachine | undefined;
  // The weekly workflow's (the learning workflow, with a deployed endpoint, is AWS-only: the local run trains on the CPU).
  const machineId = t.logicalIds("AWS::StepFunctions::StateMachine").find((id) => id.startsWith("WeeklyWorkflow"));
  if (machineId) {
    const raw = t.property(machineId, "DefinitionString") ?? t.property(machineId, "Definition");
    const substitutions = t.property<Record<string, string>>(machineId, "DefinitionSubstitutions") ?? {};
    let text = typeof raw === "string" ? raw : JSON.stringify(raw);
    for (const [key, value] of Object.entries(substitutions)) text = text.split(`\${${key}}`).join(value);
    stateMachine = { logicalId: machineId, name: t.physicalName(machineId), arn: t.getAtt(machineId, "Arn"), definition: JSON.parse(text) };
  }

  const senderIdentities = new Set<string>();
  for (const id of t.logicalIds("AWS::SES::EmailIdentity")) senderIdentities.add(String(t.property(id, "EmailIdentity")));
  for (const fn of functions) if (fn.environment.SENDER_ADDRESS) senderIdentities.add(fn.environment.SENDER_ADDRESS);

  const apiIntegrations = [
    ...t.logicalIds("AWS::ApiGateway::Method").map((id) => str(t.property<{ Uri?: string }>(id, "Integration")?.Uri)),
    ...t.logicalIds("AWS::ApiGatewayV2::Integration").map((id) => str(t.property(id, "IntegrationUri"))),
  ].filter((uri): uri is string => uri !== undefined);

  return {
    apiIntegrations,
    buckets,
    queues,
    topics,
    subscriptions,
    tables,
    bucketNotifications,
    functions,
    eventSourceMappings,
    scoringEndpoint,
    stateMachine,
    senderIdentities: [...senderIdentities],
  };
}

/** Creates the wiring's resources in the emulator at `endpoint`; returns a one-line description per resource. */
export async function createLocalResources(wiring: LocalWiring, endpoint: string): Promise<string[]> {
  const created: string[] = [];
  const s3 = new S3Client({ ...LOCAL_AWS, endpoint, forcePathStyle: true });
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint });
  const sns = new SNSClient({ ...LOCAL_AWS, endpoint });
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  const ses = new SESv2Client({ ...LOCAL_AWS, endpoint });
  try {
    for (const bucket of wiring.buckets) {
      await s3.send(new CreateBucketCommand({ Bucket: bucket.name }));
      if (bucket.versioned) {
        await s3.send(new PutBucketVersioningCommand({ Bucket: bucket.name, VersioningConfiguration: { Status: "Enabled" } }));
      }
      created.push(`bucket ${bucket.name}${bucket.versioned ? " (versioned)" : ""}`);
    }
    // Queues first without redrive (a DLQ must exist before a queue names it), then the redrive policies.
    for (const queue of wiring.queues) {
      await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: queue.attributes }));
    }
    for (const queue of wiring.queues) {
      if (queue.redrive) {
        await sqs.send(
          new SetQueueAttributesCommand({ QueueUrl: queue.url, Attributes: { RedrivePolicy: JSON.stringify(queue.redrive) } }),
        );
      }
      const dlq = queue.redrive
        ? ` → DLQ ${queue.redrive.deadLetterTargetArn.split(":").pop()} after ${queue.redrive.maxReceiveCount} receives`
        : "";
      created.push(`queue ${queue.name} (visibility ${queue.attributes.VisibilityTimeout ?? "30"} s${dlq})`);
    }
    for (const topic of wiring.topics) {
      await sns.send(new CreateTopicCommand({ Name: topic.name }));
      created.push(`topic ${topic.name}`);
    }
    for (const sub of wiring.subscriptions) {
      if (sub.protocol !== "sqs") {
        created.push(`subscription ${sub.logicalId} skipped (${sub.protocol}: not deliverable locally)`);
        continue;
      }
      await sns.send(
        new SubscribeCommand({
          TopicArn: sub.topicArn,
          Protocol: "sqs",
          Endpoint: sub.endpoint,
          Attributes: { RawMessageDelivery: String(sub.rawMessageDelivery) },
        }),
      );
      created.push(`subscription ${sub.topicArn.split(":").pop()} → ${sub.endpoint.split(":").pop()}`);
    }
    for (const table of wiring.tables) {
      await dynamo.send(
        new CreateTableCommand({
          TableName: table.name,
          KeySchema: table.keySchema,
          AttributeDefinitions: table.attributeDefinitions,
          BillingMode: "PAY_PER_REQUEST",
          ...(table.globalSecondaryIndexes.length ? { GlobalSecondaryIndexes: table.globalSecondaryIndexes } : {}),
        }),
      );
      created.push(`table ${table.name} (GSIs: ${table.globalSecondaryIndexes.map((g) => g.IndexName).join(", ") || "none"})`);
    }
    for (const notification of wiring.bucketNotifications) {
      await s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: notification.bucket,
          NotificationConfiguration: {
            QueueConfigurations: notification.queueConfigurations.map((q) => ({
              QueueArn: q.QueueArn,
              Events: q.Events as never,
              ...(q.Filter ? { Filter: q.Filter as never } : {}),
            })),
          },
        }),
      );
      for (const q of notification.queueConfigurations) {
        const prefix = q.Filter?.Key?.FilterRules?.find((r) => r.Name.toLowerCase() === "prefix")?.Value ?? "";
        created.push(`notification ${notification.bucket}/${prefix}* ${q.Events.join(",")} → ${q.QueueArn.split(":").pop()}`);
      }
    }
    for (const identity of wiring.senderIdentities) {
      await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: identity }));
      created.push(`SES identity ${identity}`);
    }
  } finally {
    for (const client of [s3, sqs, sns, dynamo, ses]) client.destroy();
  }
  return created;
}
