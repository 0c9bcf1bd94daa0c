/**
 * The institution stack as `cdk synth` produces it, read for the local run: the stack is synthesized
 * in-process from a local configuration (no Docker, no asset bundling) and its CloudFormation template
 * is the single source of what the local emulator must hold — buckets, queues and their redrive
 * policies, topics and subscriptions, the records table and its GSI, the bucket notification, Lambda
 * environments, event source mappings, the scoring endpoint's asynchronous output and topics, and the
 * weekly workflow's definition.
 *
 * CloudFormation intrinsics are resolved into local values: a resource gets a local physical name
 * (its explicit name when the template gives one, otherwise derived from its logical id), `Ref` and
 * `Fn::GetAtt` resolve as CloudFormation documents them per type (queue URL, topic ARN, table name, …)
 * for the emulator's account and region, and anything the emulator does not hold (KMS keys, roles,
 * log groups) resolves to a placeholder string naming the logical id.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { InstitutionStack } from "../../infra/institution-stack.js";
import { type InstitutionConfig, type InstitutionConfigInput, parseInstitutionConfig } from "../../lambdas/contracts/institution-config.js";

/** moto's default account, so the ARNs resolved here are the ones the emulator itself reports. */
export const LOCAL_ACCOUNT = "123456789012";
export const LOCAL_REGION = "us-east-1";

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
}

/** Thrown when the template holds an intrinsic or shape the local run cannot resolve. */
export class TemplateResolutionError extends Error {
  override readonly name = "TemplateResolutionError";
}

/** Synthesizes InstitutionStack for `config` in-process and returns its template (asset bundling skipped). */
export function synthesizeInstitutionTemplate(configInput: InstitutionConfigInput): { template: CfnTemplate; config: InstitutionConfig } {
  const config = parseInstitutionConfig(configInput, "local run config");
  const outdir = mkdtempSync(join(tmpdir(), "ich-al-synth-"));
  try {
    // No stack is bundled: NodejsFunction keeps a placeholder asset, so synth needs neither esbuild runs nor Docker.
    // Nor is any asset staged (copied): the model-container image asset would otherwise be copied on every run.
    const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [], "aws:cdk:disable-asset-staging": true } });
    const stack = new InstitutionStack(app, `IchActiveLearning-${config.institution}`, {
      config,
      env: { account: LOCAL_ACCOUNT, region: LOCAL_REGION },
    });
    const assembly = app.synth();
    const template = assembly.getStackArtifact(stack.artifactId).template as CfnTemplate;
    return { template, config };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Explicit-name property per resource type (when the template sets it, the local name is that). */
const NAME_PROPERTY: Record<string, string> = {
  "AWS::S3::Bucket": "BucketName",
  "AWS::SQS::Queue": "QueueName",
  "AWS::SNS::Topic": "TopicName",
  "AWS::DynamoDB::Table": "TableName",
  "AWS::Lambda::Function": "FunctionName",
  "AWS::StepFunctions::StateMachine": "StateMachineName",
  "AWS::SageMaker::Endpoint": "EndpointName",
  "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
  "AWS::SageMaker::Model": "ModelName",
};

/** The template with intrinsics resolved against the local emulator. */
export class LocalTemplate {
  private readonly names = new Map<string, string>();

  constructor(
    readonly template: CfnTemplate,
    private readonly emulatorEndpoint: string,
    private readonly stackName = "IchActiveLearning-local",
  ) {}

  /** Logical ids of every resource of `type`, in template order. */
  logicalIds(type: string): string[] {
    return Object.entries(this.template.Resources)
      .filter(([, r]) => r.Type === type)
      .map(([id]) => id);
  }

  resource(logicalId: string): CfnResource {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new TemplateResolutionError(`no resource ${logicalId} in the synthesized template`);
    return resource;
  }

  /** A resolved property of a resource (undefined when absent). */
  property<T = unknown>(logicalId: string, name: string): T | undefined {
    const value = this.resource(logicalId).Properties?.[name];
    return value === undefined ? undefined : (this.resolve(value) as T);
  }

  /** The local physical name: the template's explicit name, else derived from the logical id. */
  physicalName(logicalId: string): string {
    const cached = this.names.get(logicalId);
    if (cached) return cached;
    const resource = this.resource(logicalId);
    const nameProperty = NAME_PROPERTY[resource.Type];
    const explicit = nameProperty ? resource.Properties?.[nameProperty] : undefined;
    let name: string;
    if (explicit !== undefined) name = String(this.resolve(explicit));
    else if (resource.Type === "AWS::S3::Bucket") name = `local-${logicalId.toLowerCase()}`.replace(/[^a-z0-9-]/g, "-").slice(0, 63);
    else name = logicalId.slice(0, 80);
    this.names.set(logicalId, name);
    return name;
  }

  /** `Ref` as CloudFormation returns it for the resource's type. */
  ref(logicalId: string): string {
    switch (logicalId) {
      case "AWS::Region":
        return LOCAL_REGION;
      case "AWS::AccountId":
        return LOCAL_ACCOUNT;
      case "AWS::Partition":
        return "aws";
      case "AWS::URLSuffix":
        return "amazonaws.com";
      case "AWS::StackName":
        return this.stackName;
      case "AWS::StackId":
        return `arn:aws:cloudformation:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stack/${this.stackName}/local`;
      case "AWS::NoValue":
        return "";
    }
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new TemplateResolutionError(`Ref to ${logicalId}, which is neither a resource nor a pseudo parameter`);
    const name = this.physicalName(logicalId);
    switch (resource.Type) {
      case "AWS::SQS::Queue":
        return `${this.emulatorEndpoint}/${LOCAL_ACCOUNT}/${name}`;
      case "AWS::SNS::Topic":
      case "AWS::StepFunctions::StateMachine":
      case "AWS::SageMaker::Endpoint":
      case "AWS::SageMaker::EndpointConfig":
      case "AWS::SageMaker::Model":
        return this.getAtt(logicalId, "Arn");
      default:
        return name;
    }
  }

  /** `Fn::GetAtt` for the attributes the stack's wiring uses; other attributes resolve to placeholders. */
  getAtt(logicalId: string, attribute: string): string {
    const resource = this.resource(logicalId);
    const name = this.physicalName(logicalId);
    const arn = (service: string, resourcePart: string) => `arn:aws:${service}:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${resourcePart}`;
    switch (`${resource.Type}.${attribute}`) {
      case "AWS::S3::Bucket.Arn":
        return `arn:aws:s3:::${name}`;
      case "AWS::S3::Bucket.DomainName":
      case "AWS::S3::Bucket.RegionalDomainName":
        return `${name}.s3.${LOCAL_REGION}.amazonaws.com`;
      case "AWS::SQS::Queue.Arn":
        return arn("sqs", name);
      case "AWS::SQS::Queue.QueueName":
        return name;
      case "AWS::SQS::Queue.QueueUrl":
        return this.ref(logicalId);
      case "AWS::SNS::Topic.TopicArn":
      case "AWS::SNS::Topic.Arn":
        return arn("sns", name);
      case "AWS::SNS::Topic.TopicName":
        return name;
      case "AWS::DynamoDB::Table.Arn":
        return arn("dynamodb", `table/${name}`);
      case "AWS::Lambda::Function.Arn":
        return arn("lambda", `function:${name}`);
      case "AWS::StepFunctions::StateMachine.Arn":
        return arn("states", `stateMachine:${name}`);
      case "AWS::StepFunctions::StateMachine.Name":
        return name;
      case "AWS::SageMaker::Endpoint.Arn":
      case "AWS::SageMaker::Endpoint.EndpointArn":
        return arn("sagemaker", `endpoint/${name.toLowerCase()}`);
      case "AWS::SageMaker::Endpoint.EndpointName":
        return name;
      case "AWS::SageMaker::EndpointConfig.Arn":
        return arn("sagemaker", `endpoint-config/${name.toLowerCase()}`);
      case "AWS::SageMaker::EndpointConfig.EndpointConfigName":
        return name;
      case "AWS::SageMaker::Model.ModelName":
        return name;
      case "AWS::SES::EmailIdentity.EmailIdentity":
        return name;
      default:
        // Not held by the emulator (keys, roles, log groups, APIs, user pools): a readable placeholder.
        return attribute === "Arn"
          ? arn("local", `${resource.Type.split("::")[1]?.toLowerCase()}/${logicalId}`)
          : `local-${logicalId}-${attribute}`;
    }
  }

  /** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split and Fn::If (condition assumed true) recursively. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== "object") return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, argument] = entries[0] as [string, unknown];
      switch (key) {
        case "Ref":
          return this.ref(String(argument));
        case "Fn::GetAtt": {
          const [id, attribute] = Array.isArray(argument) ? argument : String(argument).split(".");
          return this.getAtt(String(id), String(attribute));
        }
        case "Fn::Join": {
          const [separator, parts] = argument as [string, unknown[]];
          return (this.resolve(parts) as unknown[]).map((p) => String(p)).join(separator);
        }
        case "Fn::Select": {
          const [index, list] = argument as [unknown, unknown];
          return (this.resolve(list) as unknown[])[Number(this.resolve(index))];
        }
        case "Fn::Split": {
          const [separator, source] = argument as [string, unknown];
          return String(this.resolve(source)).split(separator);
        }
        case "Fn::Sub":
          return this.sub(argument);
        case "Fn::If": {
          const [, whenTrue] = argument as [string, unknown, unknown];
          return this.resolve(whenTrue);
        }
        case "Fn::GetAZs":
          return [`${LOCAL_REGION}a`, `${LOCAL_REGION}b`];
        case "Fn::ImportValue":
        case "Fn::FindInMap":
          throw new TemplateResolutionError(`${key} is not supported by the local run`);
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }

  private sub(argument: unknown): string {
    const [text, variables] = Array.isArray(argument) ? (argument as [string, Record<string, unknown>]) : [String(argument), {}];
    return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
      if (name in variables) return String(this.resolve(variables[name]));
      if (name.includes(".")) {
        const [id, attribute] = name.split(".", 2) as [string, string];
        return this.getAtt(id, attribute);
      }
      return this.ref(name);
    });
  }
}
