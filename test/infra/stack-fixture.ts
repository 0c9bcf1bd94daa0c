import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { type Match, Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { expect } from "vitest";
import { InstitutionStack } from "../../infra/institution-stack.js";
import type { InstitutionConfigInput } from "../../lambdas/contracts/institution-config.js";
import { testConfig } from "./test-config.js";

/** A model artefact location for configurations that deploy the scoring endpoint. */
export const MODEL_ARTIFACT = "s3://ich-models/v1/model.tar.gz";

/**
 * Builds an institution stack and its template. `bundle: false` skips esbuild (CDK's
 * `aws:cdk:bundling-stacks` context), which most tests do not need; institution-stack.test.ts bundles.
 */
export const buildStack = (overrides: Partial<InstitutionConfigInput> = {}, options: { bundle?: boolean; id?: string } = {}) => {
  const app = new App(options.bundle ? {} : { context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new InstitutionStack(app, options.id ?? "Test", { config: testConfig(overrides) });
  return { app, stack, t: Template.fromStack(stack) };
};

/** The logical id a construct's resource has in the template (overrides included). */
export const logicalId = (construct: IConstruct): string =>
  Stack.of(construct).resolve(((construct.node.defaultChild ?? construct) as CfnElement).logicalId);
export const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) });
export const arn = (construct: IConstruct) => ({ "Fn::GetAtt": [logicalId(construct), "Arn"] });

/** Fails with the matcher's explanation unless `actual` matches `pattern` (a Match or literal). */
export const expectMatch = (pattern: ReturnType<typeof Match.objectLike>, actual: unknown): void => {
  const result = pattern.test(actual);
  expect(result.hasFailed() ? result.toHumanStrings().join("\n") : "").toBe("");
};

/** Every statement of every IAM policy (managed and inline) in the template. */
export const allStatements = (t: Template): Record<string, unknown>[] => {
  const policies = { ...t.findResources("AWS::IAM::ManagedPolicy"), ...t.findResources("AWS::IAM::Policy") };
  return Object.values(policies).flatMap((p) => (p.Properties.PolicyDocument.Statement as Record<string, unknown>[]) ?? []);
};

/** The statements of one role's customer-managed policy. */
export const roleStatements = (t: Template, policy: IConstruct): Record<string, unknown>[] => {
  const resource = t.toJSON().Resources[logicalId(policy)];
  return resource.Properties.PolicyDocument.Statement as Record<string, unknown>[];
};

/** `Fn::Join` of strings and intrinsics → one string, intrinsics rendered as `${LogicalId}` / `${LogicalId.Attr}`. */
export const joinIntrinsics = (value: unknown): string => {
  if (typeof value === "string") return value;
  const join = (value as { "Fn::Join"?: [string, unknown[]] })["Fn::Join"];
  if (!join) throw new Error(`not a string or Fn::Join: ${JSON.stringify(value)}`);
  return join[1]
    .map((part) => {
      if (typeof part === "string") return part;
      const getAtt = (part as { "Fn::GetAtt"?: [string, string] })["Fn::GetAtt"];
      if (getAtt) return `\${${getAtt[0]}.${getAtt[1]}}`;
      const r = (part as { Ref?: string }).Ref;
      if (r) return `\${${r}}`;
      throw new Error(`unexpected intrinsic ${JSON.stringify(part)}`);
    })
    .join(join[0]);
};
