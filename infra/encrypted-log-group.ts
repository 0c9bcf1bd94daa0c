import { ArnFormat, Aws, RemovalPolicy, Stack } from "aws-cdk-lib";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";

export interface EncryptedLogGroupProps {
  /** Customer-managed key that encrypts the log events; its policy is extended (once per key) so CloudWatch Logs may use it. */
  readonly encryptionKey: IKey;
  /** How long events are kept. Default: one year. */
  readonly retention?: RetentionDays;
  /** Fixed name, for log groups a service writes to by name (e.g. `/aws/sagemaker/Endpoints/<name>`). Default: generated. */
  readonly logGroupName?: string;
  /** What happens to the log group when the stack is deleted. Default: RETAIN (logs are audit evidence). */
  readonly removalPolicy?: RemovalPolicy;
}

const keysOpenedToLogs = new WeakSet<IKey>();

/**
 * Lets CloudWatch Logs in this account and region use `key` for log groups of this account and region
 * (encryption-context condition), once per key. Every encrypted log group in the stack relies on it.
 */
export const allowCloudWatchLogsToUseKey = (key: IKey): void => {
  if (keysOpenedToLogs.has(key)) return;
  keysOpenedToLogs.add(key);
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: "AllowCloudWatchLogsInThisAccountAndRegion",
      principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
      resources: ["*"],
      conditions: {
        ArnLike: {
          "kms:EncryptionContext:aws:logs:arn": stack.formatArn({
            service: "logs",
            resource: "log-group",
            resourceName: "*",
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
};

/**
 * A CloudWatch log group that is always KMS-encrypted with the data key and always has a retention
 * (default one year), retained on stack deletion. Every log group of the stack is made with this, so
 * none is created implicitly (unencrypted, kept forever) by a service on first use.
 */
export const encryptedLogGroup = (scope: Construct, id: string, props: EncryptedLogGroupProps): LogGroup => {
  allowCloudWatchLogsToUseKey(props.encryptionKey);
  const logGroup = new LogGroup(scope, id, {
    encryptionKey: props.encryptionKey,
    retention: props.retention ?? RetentionDays.ONE_YEAR,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    ...(props.logGroupName === undefined ? {} : { logGroupName: props.logGroupName }),
  });
  // The key policy must exist before CloudWatch Logs is asked to use the key.
  logGroup.node.addDependency(props.encryptionKey);
  return logGroup;
};
