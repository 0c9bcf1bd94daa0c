import { createHash } from "node:crypto";
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import {
  AccessLogFormat,
  AuthorizationType,
  CfnAccount,
  CognitoUserPoolsAuthorizer,
  EndpointType,
  type JsonSchema,
  JsonSchemaVersion,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  Model,
  RequestValidator,
  RestApi,
} from "aws-cdk-lib/aws-apigateway";
import { AccountRecovery, CfnUserPoolUser, FeaturePlan, Mfa, StandardThreatProtectionMode, UserPool } from "aws-cdk-lib/aws-cognito";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsCustomResource, AwsCustomResourcePolicy, Logging, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";
import { z } from "zod";
import { COMPLETION_API_PATHS, CompletionRequestSchema, MaskUploadRequestSchema } from "../lambdas/contracts/completion-api.js";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";

export interface CompletionApiProps {
  /** Institution id; names the user pool and the API. */
  readonly institution: string;
  /** The complete Lambda (API Gateway proxy integration) that serves both routes. */
  readonly handler: IFunction;
  /** The annotators: each becomes a Cognito user (username = e-mail) and receives an invitation with a temporary password. */
  readonly annotatorEmails: readonly string[];
  /** Customer-managed key of the access and execution logs. */
  readonly encryptionKey: IKey;
  /** Steady-state requests per second for the whole API. Default: 5 (a handful of annotators). */
  readonly throttlingRateLimit?: number;
  /** Burst of requests for the whole API. Default: 10. */
  readonly throttlingBurstLimit?: number;
  /**
   * Set the account's API Gateway CloudWatch Logs role (AWS::ApiGateway::Account), which access and
   * execution logging need. It is one setting per account and region: set false when another stack
   * (or another institution's stack in the same account) already manages it. Default: true.
   */
  readonly manageAccountLogsRole?: boolean;
  /** Retention of the access log. Default: one year. */
  readonly logRetention?: RetentionDays;
}

/**
 * The annotators' API (lambdas/contracts/completion-api.ts): a regional REST API (HTTPS only) with
 * `POST /completions`, `GET /worklist`, `GET /overlays/{stackId}` and `POST /stacks/{stackId}/mask-uploads`, `GET /stacks/{stackId}/viewer`, all proxied to the complete Lambda
 * and all behind a Cognito user-pool authorizer — there is no anonymous method. No CORS: the worklist
 * page reaches the API on its own origin (infra/worklist-site.ts forwards `/api/*` to the stage). The body
 * of POST /completions is validated against the JSON Schema generated from CompletionRequestSchema before the Lambda runs.
 * Access logs (JSON, KMS-encrypted, retention), execution logs at ERROR level (no request data),
 * X-Ray tracing, and stage-wide throttling.
 *
 * The user pool admits only the configured annotators: self sign-up is off; each annotator is created
 * here and receives an e-mail with a temporary password (changed at first sign-in); MFA (TOTP) is
 * required; passwords are 14+ characters with all four classes; threat protection (Plus plan) blocks
 * compromised credentials and risky sign-ins. The worklist page's client and the hosted-UI domain are added
 * by infra/worklist-site.ts (the client's callback is the page's URL).
 */
export class CompletionApi extends Construct {
  /** The REST API (`api.url` is the stage URL). */
  readonly api: RestApi;
  /** The annotators' user pool. */
  readonly userPool: UserPool;
  /**
   * JSON AnnotatorDirectory (lambdas/contracts/completion-api.ts) — each annotator's `sub`, read from Cognito
   * once the user exists, with their configured e-mail — for the complete Lambda's ANNOTATOR_DIRECTORY.
   */
  readonly annotatorDirectory: string;
  /** The access log group. */
  readonly accessLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: CompletionApiProps) {
    super(scope, id);
    const rate = props.throttlingRateLimit ?? 5;
    const burst = props.throttlingBurstLimit ?? 10;
    if (!(rate > 0) || !Number.isInteger(burst) || burst < 1) {
      throw new Error(`CompletionApi: throttlingRateLimit must be > 0 and throttlingBurstLimit a positive integer, got ${rate} / ${burst}`);
    }
    if (props.annotatorEmails.length === 0) {
      throw new Error("CompletionApi: annotatorEmails must name at least one annotator (config annotatorEmails)");
    }
    const unique = new Set(props.annotatorEmails.map((e) => e.toLowerCase()));
    if (unique.size !== props.annotatorEmails.length) {
      throw new Error("CompletionApi: annotatorEmails lists an address twice (case-insensitively); list each annotator once");
    }

    this.userPool = new UserPool(this, "Annotators", {
      userPoolName: `ich-al-${props.institution}-annotators`,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      signInCaseSensitive: false,
      autoVerify: { email: true },
      mfa: Mfa.REQUIRED,
      mfaSecondFactor: { sms: false, otp: true },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(7),
      },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      featurePlan: FeaturePlan.PLUS,
      standardThreatProtectionMode: StandardThreatProtectionMode.FULL_FUNCTION,
      userInvitation: {
        emailSubject: "Your ICH labeling worklist login",
        emailBody:
          "You have been added as an annotator. Sign in to the worklist page with user name {username} and temporary password {####}; you will choose a new password and set up an authenticator app.",
      },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const directory: { sub: string; email: string }[] = [];
    for (const email of props.annotatorEmails) {
      const key = annotatorKey(email);
      const user = new CfnUserPoolUser(this, `Annotator${key}`, {
        userPoolId: this.userPool.userPoolId,
        username: email,
        userAttributes: [
          { name: "email", value: email },
          { name: "email_verified", value: "true" },
        ],
        desiredDeliveryMediums: ["EMAIL"],
      });
      // The user's immutable `sub`, read once it exists: ListUsers filtered on the configured address and
      // returning only `sub` (so it is attribute 0). The API identifies annotators by it, never by `email`.
      const call = {
        service: "CognitoIdentityServiceProvider",
        action: "listUsers",
        parameters: { UserPoolId: this.userPool.userPoolId, Filter: `email = "${email}"`, AttributesToGet: ["sub"], Limit: 1 },
        physicalResourceId: PhysicalResourceId.of(`annotator-${key}`),
        outputPaths: [ANNOTATOR_SUB_PATH],
        // The answer (the user's sub) stays out of the deploy-time Lambda's log.
        logging: Logging.withDataHidden(),
      };
      const lookup = new AwsCustomResource(this, `AnnotatorSub${key}`, {
        onCreate: call,
        onUpdate: call,
        policy: AwsCustomResourcePolicy.fromStatements([
          new PolicyStatement({ actions: ["cognito-idp:ListUsers"], resources: [this.userPool.userPoolArn] }),
        ]),
        installLatestAwsSdk: false,
      });
      lookup.node.addDependency(user);
      // The singleton Lambda's own findings are acknowledged where the stack's first AwsCustomResource is made (sealed-network.ts).
      const policyReason =
        "the AwsCustomResource's inline policy, which CDK attaches to its singleton's role: cognito-idp:ListUsers on this user pool only";
      Validations.of(lookup.node.findChild("CustomResourcePolicy")).acknowledge(
        { id: "HIPAA.Security-IAMNoInlinePolicy", reason: `${policyReason}; CDK offers no managed-policy form` },
        { id: "NIST.800.53.R5-IAMNoInlinePolicy", reason: `${policyReason}; CDK offers no managed-policy form` },
      );
      directory.push({ sub: lookup.getResponseField(ANNOTATOR_SUB_PATH), email: email.toLowerCase() });
    }
    this.annotatorDirectory = Stack.of(this).toJsonString(directory);
    this.accessLogGroup = encryptedLogGroup(this, "AccessLogs", { encryptionKey: props.encryptionKey, retention: props.logRetention });
    let account: CfnAccount | undefined;
    if (props.manageAccountLogsRole ?? true) {
      const logsRole = new ManagedPolicyRole(this, "AccountLogsRole", {
        assumedBy: new ServicePrincipal("apigateway.amazonaws.com"),
        description: "API Gateway account setting: write access and execution logs of this account's APIs in this region",
      });
      const logGroups = Stack.of(this).formatArn({
        service: "logs",
        resource: "log-group",
        resourceName: "*",
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
      logsRole.addToPrincipalPolicy(
        new PolicyStatement({
          sid: "WriteApiLogs",
          actions: [
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogGroups",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
          ],
          resources: [logGroups],
        }),
      );
      logsRole.applyRemovalPolicy(RemovalPolicy.RETAIN);
      Validations.of(logsRole).acknowledge({
        id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]",
        reason:
          "API Gateway's account-wide logging role writes the execution log groups it names itself (API-Gateway-Execution-Logs_<api>/<stage>) and the access log groups of every API in this account and region; scoped to log groups of this account and region",
      });
      account = new CfnAccount(this, "Account", { cloudWatchRoleArn: logsRole.roleArn });
      account.node.addDependency(logsRole);
    }

    this.api = new RestApi(this, "Api", {
      restApiName: `ich-al-${props.institution}-completions`,
      description: "Annotators report completed stacks and read their worklist (Cognito-authenticated)",
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole: false,
      deployOptions: {
        stageName: "v1",
        accessLogDestination: new LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
        throttlingRateLimit: rate,
        throttlingBurstLimit: burst,
      },
    });
    if (account) this.api.deploymentStage.node.addDependency(account);

    const authorizer = new CognitoUserPoolsAuthorizer(this, "Authorizer", { cognitoUserPools: [this.userPool] });
    const auth = { authorizer, authorizationType: AuthorizationType.COGNITO };
    const integration = new LambdaIntegration(props.handler, { proxy: true });
    const validator = new RequestValidator(this, "Validator", {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const completionModel = new Model(this, "CompletionRequest", {
      restApi: this.api,
      contentType: "application/json",
      description: "CompletionRequestSchema (lambdas/contracts/completion-api.ts)",
      schema: completionRequestJsonSchema(),
    });
    this.api.root.resourceForPath(COMPLETION_API_PATHS.completions).addMethod("POST", integration, {
      ...auth,
      requestValidator: validator,
      requestModels: { "application/json": completionModel },
    });
    this.api.root.resourceForPath(COMPLETION_API_PATHS.worklist).addMethod("GET", integration, { ...auth, requestValidator: validator });
    this.api.root.resourceForPath(COMPLETION_API_PATHS.overlays).addMethod("GET", integration, {
      ...auth,
      requestValidator: validator,
      requestParameters: { "method.request.path.stackId": true },
    });
    const maskUploadModel = new Model(this, "MaskUploadRequest", {
      restApi: this.api,
      contentType: "application/json",
      description: "MaskUploadRequestSchema (lambdas/contracts/completion-api.ts)",
      schema: apiJsonSchema(MaskUploadRequestSchema),
    });
    this.api.root.resourceForPath(COMPLETION_API_PATHS.maskUploads).addMethod("POST", integration, {
      ...auth,
      requestValidator: validator,
      requestParameters: { "method.request.path.stackId": true },
      requestModels: { "application/json": maskUploadModel },
    });

    this.api.root.resourceForPath(COMPLETION_API_PATHS.viewer).addMethod("GET", integration, {
      ...auth,
      requestParameters: { "method.request.path.stackId": true },
    });

    const perUser =
      "responses are per annotator (the worklist of the signed-in user) and POST is never cached; a stage cache would have to key on the Authorization header and would hold patient-study identifiers in yet another store";
    const clientCert =
      "the only integration is a Lambda proxy invoked by API Gateway with IAM (no HTTP backend); a client certificate authenticates API Gateway to an HTTP backend and has nothing to authenticate here";
    const noWaf =
      "every method requires a Cognito user-pool token of one of a handful of configured annotators (no anonymous method), stage throttling is 5 rps, and Cognito threat protection guards sign-in; a WAF web ACL would cost more per month than the rest of the idle stack";
    Validations.of(this.api).acknowledge(
      { id: "HIPAA.Security-APIGWCacheEnabledAndEncrypted", reason: perUser },
      { id: "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted", reason: perUser },
      { id: "HIPAA.Security-APIGWSSLEnabled", reason: clientCert },
      { id: "NIST.800.53.R5-APIGWSSLEnabled", reason: clientCert },
      { id: "AwsSolutions-APIG3", reason: noWaf },
      { id: "NIST.800.53.R5-APIGWAssociatedWithWAF", reason: noWaf },
    );
  }
}

/** An annotator's construct-id suffix, from the address (not its position): reordering the config never replaces a user. */
export const annotatorKey = (email: string): string => createHash("sha256").update(email.toLowerCase()).digest("hex").slice(0, 12);

/** Where ListUsers (AttributesToGet: ["sub"]) answers the one user's `sub`. */
const ANNOTATOR_SUB_PATH = "Users.0.Attributes.0.Value";

/** CompletionRequestSchema as the draft-04 JSON Schema API Gateway validates with (one schema, two uses). */
export const completionRequestJsonSchema = (): JsonSchema => apiJsonSchema(CompletionRequestSchema);

/** A request body schema as API Gateway validates it (JSON Schema draft 4; zod refinements stay with the handler). */
function apiJsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: "draft-4" }) as Record<string, unknown>;
  return { schema: JsonSchemaVersion.DRAFT4, ...rest } as JsonSchema;
}
