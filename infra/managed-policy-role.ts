import {
  type AddToPrincipalPolicyResult,
  type IPrincipal,
  ManagedPolicy,
  type PolicyStatement,
  Role,
  type RoleProps,
} from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";

export interface ManagedPolicyRoleProps extends Pick<RoleProps, "assumedBy" | "description"> {
  /** Who may assume the role (a service principal). Required. */
  readonly assumedBy: IPrincipal;
}

/**
 * An IAM role whose every permission — the statements callers add and the ones CDK's own grants add
 * (event sources, Step Functions tasks, image pulls) — lands in ONE customer-managed policy attached to
 * this role only, never in an inline policy (HIPAA/NIST IAMNoInlinePolicy) nor an AWS-managed policy
 * (AwsSolutions-IAM4). The policy is created before the role, so the role has its permissions from its
 * first use (e.g. when an SQS event source mapping is validated at creation).
 */
export class ManagedPolicyRole extends Role {
  /** The role's only policy; inspect it in tests for least privilege. */
  readonly policy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: ManagedPolicyRoleProps) {
    super(scope, id, props);
    this.policy = new ManagedPolicy(this, "Policy", {
      description: `Permissions of ${this.node.path} (this role only)`,
    });
    this.addManagedPolicy(this.policy);
  }

  override addToPrincipalPolicy(statement: PolicyStatement): AddToPrincipalPolicyResult {
    // Role's constructor adds no statements (no inline policies are passed), so `policy` exists by the first call.
    this.policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.policy };
  }
}
