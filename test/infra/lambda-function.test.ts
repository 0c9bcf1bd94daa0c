import { App, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { describe, expect, it } from "vitest";
import { type LambdaEnvironment, LambdaFunction } from "../../infra/lambda-function.js";
import { NotifyEnvSchema, type RecordScoreEnvSchema, SelectEnvSchema } from "../../lambdas/contracts/env.js";
import { DEFAULT_TIME_PRIOR } from "../../lambdas/domain/labeling-time-model.js";

const scope = () => {
  const stack = new Stack(new App({ context: { "aws:cdk:bundling-stacks": [] } }), "S");
  return { stack, encryptionKey: new Key(stack, "K", { enableKeyRotation: true }) };
};
const sync = { kind: "synchronous", caller: "a test" } as const;

describe("LambdaFunction", () => {
  it("types the environment by the env schema: a missing variable or one outside the schema does not compile", () => {
    // Compile-time checks (tsc --noEmit runs over test/): each @ts-expect-error must be an error.
    // @ts-expect-error TABLE_NAME is required by RecordScoreEnvSchema
    const missing: LambdaEnvironment<typeof RecordScoreEnvSchema> = { STUDIES_BUCKET: "b" };
    // @ts-expect-error AWS_ENDPOINT_URL is for local runs only
    const local: LambdaEnvironment<typeof RecordScoreEnvSchema> = { TABLE_NAME: "t", STUDIES_BUCKET: "b", AWS_ENDPOINT_URL: "http://x" };
    // Variables with defaults may be left out.
    const defaults: LambdaEnvironment<typeof SelectEnvSchema> = {
      TABLE_NAME: "t",
      WEEKLY_BUDGET_HOURS: "40",
      SCHEDULE_TIMEZONE: "UTC",
      TIME_MODEL_PRIOR: JSON.stringify(DEFAULT_TIME_PRIOR),
    };
    expect([missing, local, defaults]).toHaveLength(3);
  });

  it("parses literal environment values at synth and names each bad variable", () => {
    const { stack, encryptionKey } = scope();
    expect(
      () =>
        new LambdaFunction(stack, "Notify", {
          handler: "notify",
          description: "d",
          envSchema: NotifyEnvSchema,
          environment: {
            TABLE_NAME: "t",
            SENDER_ADDRESS: "not-an-address",
            ANNOTATOR_EMAILS: "a@example.org",
            WEEKLY_BUDGET_HOURS: "-1",
            WORKLIST_URL: "https://example.org/worklist",
          },
          invocation: sync,
          encryptionKey,
        }),
    ).toThrow(/invalid environment — SENDER_ADDRESS: .*; WEEKLY_BUDGET_HOURS: /);
  });

  it("refuses a missing handler file and out-of-range settings, naming the fix", () => {
    const { stack, encryptionKey } = scope();
    const base = {
      description: "d",
      envSchema: SelectEnvSchema,
      environment: {
        TABLE_NAME: "t",
        WEEKLY_BUDGET_HOURS: "1",
        SCHEDULE_TIMEZONE: "UTC",
        TIME_MODEL_PRIOR: JSON.stringify(DEFAULT_TIME_PRIOR),
      },
      invocation: sync,
      encryptionKey,
    };
    expect(() => new LambdaFunction(stack, "A", { ...base, handler: "no-such" })).toThrow(/no-such-handler\.ts not found/);
    expect(() => new LambdaFunction(stack, "B", { ...base, handler: "select", reservedConcurrency: 0 })).toThrow(
      /reservedConcurrency must be a positive integer/,
    );
    expect(() => new LambdaFunction(stack, "C", { ...base, handler: "select", memorySize: 64 })).toThrow(
      /memorySize must be an integer 128–10240/,
    );
  });

  it("creates a role whose only policy is customer-managed: log writes on its own log group plus the caller's statements", () => {
    const { stack, encryptionKey } = scope();
    const fn = new LambdaFunction(stack, "Select", {
      handler: "select",
      description: "d",
      envSchema: SelectEnvSchema,
      environment: {
        TABLE_NAME: "t",
        WEEKLY_BUDGET_HOURS: "1",
        SCHEDULE_TIMEZONE: "UTC",
        TIME_MODEL_PRIOR: JSON.stringify(DEFAULT_TIME_PRIOR),
      },
      invocation: sync,
      encryptionKey,
      reservedConcurrency: 3,
    });
    const t = Template.fromStack(stack);
    t.resourceCountIs("AWS::IAM::Policy", 0);
    t.hasResourceProperties("AWS::IAM::ManagedPolicy", {
      PolicyDocument: {
        Statement: [
          {
            Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
            Effect: "Allow",
            Resource: { "Fn::GetAtt": [stack.getLogicalId(fn.logGroup.node.defaultChild as never), "Arn"] },
          },
        ],
      },
    });
    t.hasResourceProperties("AWS::Lambda::Function", {
      ReservedConcurrentExecutions: 3,
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      MemorySize: 512,
      Timeout: 60,
    });
  });
});
