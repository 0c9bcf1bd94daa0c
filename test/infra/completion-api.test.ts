import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { CompletionRequestSchema, MaskUploadRequestSchema } from "../../lambdas/contracts/completion-api.js";
import { arn, buildStack, logicalId, ref } from "./stack-fixture.js";

const annotators = ["radiologist@example.org", "second.reader@example.org"];
const { stack, t } = buildStack({ annotatorEmails: annotators });
const api = stack.completionApi;

describe("completion API", () => {
  it("has POST /completions, GET /worklist, GET /overlays/{stackId}, POST /stacks/{stackId}/mask-uploads and GET /stacks/{stackId}/viewer, all Cognito-authorized and proxied to the complete Lambda; no anonymous method", () => {
    const methods = Object.values(t.findResources("AWS::ApiGateway::Method"));
    expect(methods.map((m) => m.Properties.HttpMethod).sort()).toEqual(["GET", "GET", "GET", "POST", "POST"]);
    for (const method of methods) {
      expect(method.Properties).toMatchObject({
        AuthorizationType: "COGNITO_USER_POOLS",
        AuthorizerId: { Ref: expect.stringMatching(/Authorizer/) },
        Integration: { Type: "AWS_PROXY" },
      });
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(logicalId(stack.complete.function));
    }
    t.hasResourceProperties("AWS::ApiGateway::Authorizer", { Type: "COGNITO_USER_POOLS", ProviderARNs: [arn(api.userPool)] });
    t.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "completions" });
    t.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "worklist" });
    t.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "{stackId}" });
    t.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "mask-uploads" });
    t.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "viewer" });
    t.hasResourceProperties("AWS::ApiGateway::Method", {
      HttpMethod: "POST",
      RequestParameters: { "method.request.path.stackId": true },
      RequestModels: { "application/json": Match.anyValue() },
    });
    t.hasResourceProperties("AWS::ApiGateway::Method", {
      HttpMethod: "GET",
      RequestParameters: { "method.request.path.stackId": true },
      AuthorizationType: "COGNITO_USER_POOLS",
    });
  });

  it("validates the POST bodies against the JSON Schemas of CompletionRequestSchema and MaskUploadRequestSchema", () => {
    for (const schema of [CompletionRequestSchema, MaskUploadRequestSchema]) {
      const { $schema: _, ...expected } = z.toJSONSchema(schema, { target: "draft-4" }) as Record<string, unknown>;
      t.hasResourceProperties("AWS::ApiGateway::Model", {
        ContentType: "application/json",
        Schema: { $schema: "http://json-schema.org/draft-04/schema#", ...expected, additionalProperties: false },
      });
    }
    t.hasResourceProperties("AWS::ApiGateway::RequestValidator", { ValidateRequestBody: true, ValidateRequestParameters: true });
    t.hasResourceProperties("AWS::ApiGateway::Method", {
      HttpMethod: "POST",
      RequestModels: { "application/json": Match.anyValue() },
      RequestValidatorId: Match.anyValue(),
    });
  });

  it("is regional, throttled, traced, access-logged to an encrypted log group and execution-logged at ERROR without data", () => {
    t.hasResourceProperties("AWS::ApiGateway::RestApi", { EndpointConfiguration: { Types: ["REGIONAL"] } });
    t.hasResourceProperties("AWS::ApiGateway::Stage", {
      StageName: "v1",
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: arn(api.accessLogGroup), Format: Match.stringLikeRegexp("requestId") },
      MethodSettings: [
        Match.objectLike({
          HttpMethod: "*",
          ResourcePath: "/*",
          LoggingLevel: "ERROR",
          DataTraceEnabled: false,
          ThrottlingRateLimit: 5,
          ThrottlingBurstLimit: 10,
        }),
      ],
    });
    t.hasResourceProperties("AWS::Logs::LogGroup", { KmsKeyId: arn(stack.dataKey.key), RetentionInDays: 365 });
    t.hasResourceProperties("AWS::ApiGateway::Account", { CloudWatchRoleArn: Match.anyValue() });
  });

  it("admits only the configured annotators: no self sign-up, MFA required, strong passwords, threat protection", () => {
    t.hasResourceProperties("AWS::Cognito::UserPool", {
      AdminCreateUserConfig: Match.objectLike({ AllowAdminCreateUserOnly: true }),
      MfaConfiguration: "ON",
      EnabledMfas: ["SOFTWARE_TOKEN_MFA"],
      UserPoolTier: "PLUS",
      UserPoolAddOns: { AdvancedSecurityMode: "ENFORCED" },
      Policies: {
        PasswordPolicy: Match.objectLike({
          MinimumLength: 14,
          RequireLowercase: true,
          RequireUppercase: true,
          RequireNumbers: true,
          RequireSymbols: true,
        }),
      },
      DeletionProtection: "ACTIVE",
    });
    const users = Object.values(t.findResources("AWS::Cognito::UserPool::User" as string));
    expect(users.length).toBe(0);
    const created = Object.values(t.findResources("AWS::Cognito::UserPoolUser"));
    expect(created.map((u) => u.Properties.Username).sort()).toEqual([...annotators].sort());
    for (const user of created) {
      expect(user.Properties).toMatchObject({ UserPoolId: ref(api.userPool), DesiredDeliveryMediums: ["EMAIL"] });
    }
    t.hasResourceProperties("AWS::Cognito::UserPoolClient", {
      UserPoolId: ref(api.userPool),
      GenerateSecret: false,
      ExplicitAuthFlows: Match.arrayWith(["ALLOW_USER_SRP_AUTH"]),
      PreventUserExistenceErrors: "ENABLED",
    });
  });

  it("reads each annotator's immutable sub from Cognito once the user exists, and gives the complete Lambda that directory", () => {
    const users = t.findResources("AWS::Cognito::UserPoolUser");
    // The SDK call of each AwsCustomResource, as the JSON text its Fn::Join makes (references as <ref>).
    const calls = Object.entries(t.findResources("Custom::AWS")).map(([id, r]) => {
      const parts = (r.Properties.Create as { "Fn::Join": [string, unknown[]] })["Fn::Join"][1];
      const text = parts.map((p) => (typeof p === "string" ? p : "<ref>")).join("");
      return { id, dependsOn: (r.DependsOn ?? []) as string[], call: JSON.parse(text) };
    });
    for (const email of annotators) {
      const user = Object.entries(users).find(([, u]) => u.Properties.Username === email);
      expect(user, email).toBeDefined();
      const lookup = calls.find((c) => c.call.parameters?.Filter === `email = "${email}"`);
      expect(lookup, email).toBeDefined();
      expect(lookup?.dependsOn).toContain(user?.[0]);
      expect(lookup?.call).toMatchObject({
        service: "CognitoIdentityServiceProvider",
        action: "listUsers",
        parameters: { AttributesToGet: ["sub"], Limit: 1 },
        outputPaths: ["Users.0.Attributes.0.Value"],
      });
      const lookupId = lookup?.id;
      // The Lambda's ANNOTATOR_DIRECTORY takes the sub from exactly this lookup.
      const env = t.findResources("AWS::Lambda::Function")[logicalId(stack.complete.function)]?.Properties.Environment.Variables;
      expect(JSON.stringify(env.ANNOTATOR_DIRECTORY)).toContain(`"Fn::GetAtt":["${lookupId}","Users.0.Attributes.0.Value"]`);
      expect(JSON.stringify(env.ANNOTATOR_DIRECTORY)).toContain(email);
    }
    // Their policy: ListUsers on this user pool, nothing else.
    const policies = Object.entries(t.findResources("AWS::IAM::Policy")).filter(([id]) => id.startsWith("CompletionApiAnnotatorSub"));
    expect(policies).toHaveLength(annotators.length);
    for (const [, policy] of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toEqual([
        { Action: "cognito-idp:ListUsers", Effect: "Allow", Resource: arn(api.userPool) },
      ]);
    }
  });

  it("lets a signed-in user change nothing but their locale through the page's client: never their e-mail", () => {
    const clients = Object.values(t.findResources("AWS::Cognito::UserPoolClient"));
    expect(clients.length).toBeGreaterThan(0);
    for (const client of clients) {
      expect(client.Properties.WriteAttributes).toEqual(["locale"]);
      expect(client.Properties.WriteAttributes).not.toContain("email");
    }
  });

  it("keeps an annotator's user when the list is reordered (ids come from the address)", () => {
    const reordered = buildStack({ annotatorEmails: [...annotators].reverse() }, { id: "Reordered" }).t;
    expect(Object.keys(reordered.findResources("AWS::Cognito::UserPoolUser")).sort()).toEqual(
      Object.keys(t.findResources("AWS::Cognito::UserPoolUser")).sort(),
    );
  });
});
