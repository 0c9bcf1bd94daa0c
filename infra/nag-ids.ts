import { type CfnElement, Stack } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/**
 * How cdk-nag names a resource's ARN in a granular finding id (e.g. `AwsSolutions-IAM5[Resource::<Id.Arn>/uploads/*]`):
 * `<LogicalId.Arn>` for `Fn::GetAtt [LogicalId, Arn]`.
 */
export const resourceFindingId = (construct: IConstruct): string => {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return `<${Stack.of(construct).resolve(element.logicalId)}.Arn>`;
};
