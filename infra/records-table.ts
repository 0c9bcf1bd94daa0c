import { RemovalPolicy, Validations } from "aws-cdk-lib";
import { BackupPlan, BackupResource, BackupVault } from "aws-cdk-lib/aws-backup";
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { RECORDS_TABLE } from "../lambdas/contracts/records-table.js";

export interface RecordsTableProps {
  /** Customer-managed key that encrypts the table at rest (required: records describe patient studies). */
  readonly encryptionKey: IKey;
  /** What happens to the table when the stack is deleted. Default: RETAIN (labels cost radiologist hours). */
  readonly removalPolicy?: RemovalPolicy;
  /** Also back the table up with AWS Backup (daily, kept 35 days, vault encrypted with `encryptionKey`). Default: true. */
  readonly backup?: boolean;
}

/**
 * The records table: one item per CT stack (V, B, M, T, status), per weekly selection round and per
 * labeling-time model version; the `by-status` GSI lists pending stacks for the weekly selection.
 * Key layout: lambdas/contracts/records-table.ts. Secure defaults: customer-managed KMS key,
 * point-in-time recovery, deletion protection, on-demand capacity, and a daily AWS Backup plan
 * (35-day retention) into a retained vault encrypted with the same key.
 */
export class RecordsTable extends Construct {
  readonly table: Table;
  /** The AWS Backup plan covering the table (undefined when `backup: false`). */
  readonly backupPlan?: BackupPlan;

  constructor(scope: Construct, id: string, props: RecordsTableProps) {
    super(scope, id);
    const { partitionKey, sortKey, statusIndex } = RECORDS_TABLE;
    this.table = new Table(this, "Table", {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: statusIndex.name,
      partitionKey: { name: statusIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: statusIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
    if (props.backup ?? true) {
      const vault = new BackupVault(this, "BackupVault", {
        encryptionKey: props.encryptionKey,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      this.backupPlan = BackupPlan.daily35DayRetention(this, "BackupPlan", vault);
      const selection = this.backupPlan.addSelection("Table", { resources: [BackupResource.fromDynamoDbTable(this.table)] });
      Validations.of(selection).acknowledge({
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]",
        reason:
          "AWS Backup's own service-role policy for the backup selection role: AWS maintains it as the service's backup APIs change; the role is assumable only by backup.amazonaws.com",
      });
    }
  }
}
