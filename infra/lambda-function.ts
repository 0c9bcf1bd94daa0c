import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Duration, Token, Validations } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Architecture, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { z } from "zod";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";

/**
 * Powertools settings every function gets (lambdas/handlers/shared/lambda-handler.ts): INFO and above always,
 * DEBUG entries for 5 % of invocations (sampled per invocation), never the event itself.
 */
export const POWERTOOLS_ENVIRONMENT = {
  POWERTOOLS_LOG_LEVEL: "INFO",
  POWERTOOLS_LOGGER_SAMPLE_RATE: "0.05",
  POWERTOOLS_LOGGER_LOG_EVENT: "false",
} as const;

/** The repository root (infra/ is one level below it): handler entries and the lock file are found from here. */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The Lambda environment a zod env schema (lambdas/contracts/env.ts) demands, as strings: every variable
 * without a default is required, so forgetting one is a compile error. `AWS_ENDPOINT_URL` (local runs
 * only) cannot be set in AWS.
 */
export type LambdaEnvironment<S extends z.ZodObject> = {
  [K in keyof Omit<z.input<S>, "AWS_ENDPOINT_URL">]: string;
};

/** How the function is invoked, which decides where a failed invocation ends up. */
export type LambdaInvocation =
  /** Invoked synchronously (SQS event source, Step Functions task, API Gateway): the caller sees and handles failures. */
  | { readonly kind: "synchronous"; readonly caller: string }
  /** Invoked asynchronously (EventBridge Scheduler): after Lambda's own retries the event goes to this queue. */
  | { readonly kind: "asynchronous"; readonly deadLetterQueue: IQueue };

export interface LambdaFunctionProps<S extends z.ZodObject> {
  /** Handler name: the entry is `lambdas/handlers/<handler>-handler.ts`, which must `export const handler`. */
  readonly handler: string;
  /** The function's environment schema from lambdas/contracts/env.ts; `environment` is checked against it. */
  readonly envSchema: S;
  /** The environment; every variable the schema requires must be here (compile-time), literal values are parsed at synth. */
  readonly environment: LambdaEnvironment<S>;
  /** One line: what the function does (the function's description). */
  readonly description: string;
  /** How the function is invoked (decides the DLQ; see LambdaInvocation). */
  readonly invocation: LambdaInvocation;
  /** Customer-managed key for the log group and (asynchronous functions) the dead-letter queue. */
  readonly encryptionKey: IKey;
  /** Log retention. Default: one year. */
  readonly logRetention?: RetentionDays;
  /** Timeout, 1 s–15 min. Default: 60 s. */
  readonly timeout?: Duration;
  /** Memory in MiB, 128–10240. Default: 512. */
  readonly memorySize?: number;
  /** Reserved concurrency: the most instances that can run at once, reserved from the account's pool. Default: 1. */
  readonly reservedConcurrency?: number;
  /** Least-privilege statements on the data the function touches (no `*` actions). Default: none. */
  readonly statements?: readonly PolicyStatement[];
}

/**
 * One Lambda function of the pipeline: the handler file bundled locally with esbuild (no Docker; ESM,
 * target node24, minified, source maps), Node.js 24 on ARM64, its own KMS-encrypted log group with a
 * retention, reserved concurrency, and a role whose only policy is customer-managed and holds exactly
 * the caller's statements plus CloudWatch Logs write on its own log group (no AWS-managed policy).
 *
 * The environment is typed by the function's zod schema (lambdas/contracts/env.ts): a missing variable
 * is a compile error here and a named EnvironmentError at cold start.
 *
 * Not in a VPC (acknowledged for HIPAA/NIST LambdaInsideVPC): every dependency is an AWS API reached over
 * TLS with IAM; a VPC would add NAT or nine interface endpoints per AZ for no data-path change.
 * Synchronously invoked functions carry no Lambda DLQ (acknowledged LambdaDLQ): their callers own
 * failures (SQS redrive to a DLQ, Step Functions Catch, API 5xx). X-Ray tracing is off: it is not
 * required by the three nag packs and would add a `Resource: *` grant to every role.
 */
export class LambdaFunction<S extends z.ZodObject> extends Construct {
  /** The function. */
  readonly function: NodejsFunction;
  /** Its role; its single customer-managed policy is `role.policy`. */
  readonly role: ManagedPolicyRole;
  /** Its log group (KMS, retention). */
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: LambdaFunctionProps<S>) {
    super(scope, id);
    const entry = join(REPO_ROOT, "lambdas", "handlers", `${props.handler}-handler.ts`);
    if (!existsSync(entry)) {
      throw new Error(`LambdaFunction ${id}: handler file ${entry} not found; create it (export const handler) or fix \`handler\``);
    }
    const timeout = props.timeout ?? Duration.seconds(60);
    if (timeout.toSeconds() < 1 || timeout.toSeconds() > 900) {
      throw new Error(`LambdaFunction ${id}: timeout must be 1 s–15 min (the Lambda limit), got ${timeout.toSeconds()} s`);
    }
    const memorySize = props.memorySize ?? 512;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10_240) {
      throw new Error(`LambdaFunction ${id}: memorySize must be an integer 128–10240 MiB, got ${memorySize}`);
    }
    const reservedConcurrency = props.reservedConcurrency ?? 1;
    if (!Number.isInteger(reservedConcurrency) || reservedConcurrency < 1) {
      throw new Error(
        `LambdaFunction ${id}: reservedConcurrency must be a positive integer (0 would disable the function), got ${reservedConcurrency}`,
      );
    }
    validateEnvironment(id, props.envSchema, props.environment as Record<string, string>);

    this.logGroup = encryptedLogGroup(this, "Logs", { encryptionKey: props.encryptionKey, retention: props.logRetention });
    this.role = new ManagedPolicyRole(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the ${props.handler} Lambda`,
    });
    this.logGroup.grantWrite(this.role);
    for (const statement of props.statements ?? []) this.role.addToPrincipalPolicy(statement);

    const deadLetterQueue = props.invocation.kind === "asynchronous" ? props.invocation.deadLetterQueue : undefined;
    this.function = new NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      timeout,
      memorySize,
      reservedConcurrentExecutions: reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      environment: { ...(props.environment as Record<string, string>), ...POWERTOOLS_ENVIRONMENT, NODE_OPTIONS: "--enable-source-maps" },
      ...(deadLetterQueue ? { deadLetterQueue, retryAttempts: 2 } : {}),
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, "package-lock.json"),
      bundling: {
        format: OutputFormat.ESM,
        target: "node24",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        mainFields: ["module", "main"],
        // The pinned SDK v3 clients are bundled, not taken from the runtime, so AWS runs what the tests ran.
        externalModules: [],
        // ESM output: CommonJS dependencies still call require().
        banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
        forceDockerBundling: false,
      },
    });
    if (deadLetterQueue) {
      // Lambda writes the failed event to the KMS-encrypted queue with the function's role.
      this.role.addToPrincipalPolicy(kmsUse(props.encryptionKey, ["kms:GenerateDataKey", "kms:Decrypt"]));
    }

    const noVpc =
      "not in a VPC: the function reaches only AWS APIs (S3, DynamoDB, SageMaker runtime, SES, Step Functions, KMS, Logs) over TLS with IAM; a VPC adds NAT or per-AZ interface endpoints and no control over the data path";
    const acks = [
      { id: "HIPAA.Security-LambdaInsideVPC", reason: noVpc },
      { id: "NIST.800.53.R5-LambdaInsideVPC", reason: noVpc },
    ];
    if (props.invocation.kind === "synchronous") {
      const noDlq = `invoked synchronously by ${props.invocation.caller}, which owns failures; a Lambda DLQ only ever receives asynchronous invocations`;
      acks.push({ id: "HIPAA.Security-LambdaDLQ", reason: noDlq }, { id: "NIST.800.53.R5-LambdaDLQ", reason: noDlq });
    }
    Validations.of(this).acknowledge(...acks);
  }
}

/** A statement allowing `actions` (exact names, no wildcards) on exactly `key`. */
export const kmsUse = (key: IKey, actions: string[]): PolicyStatement => new PolicyStatement({ actions, resources: [key.keyArn] });

/** Parses the literal (non-token) values with their schema entries; throws naming each bad variable. */
const validateEnvironment = (id: string, schema: z.ZodObject, environment: Record<string, string>): void => {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(environment)) {
    const entry = schema.shape[name] as z.ZodType | undefined;
    if (!entry) {
      problems.push(`${name} is not in the schema (remove it or add it to lambdas/contracts/env.ts)`);
      continue;
    }
    if (Token.isUnresolved(value)) continue;
    const parsed = entry.safeParse(value);
    if (!parsed.success) problems.push(`${name}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  if (problems.length > 0) throw new Error(`LambdaFunction ${id}: invalid environment — ${problems.join("; ")}`);
};
