import { CfnOutput, Stack, type StackProps, Tags } from "aws-cdk-lib";
import type { CfnKey } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import type { InstitutionConfig } from "../lambdas/contracts/institution-config.js";
import { Alarms } from "./alarms.js";
import { DataKey } from "./data-key.js";
import { RecordsTable } from "./records-table.js";
import { StudiesIngest } from "./studies-ingest.js";

export interface InstitutionStackProps extends StackProps {
  /** The institution's parsed configuration (lambdas/contracts/institution-config.ts); names the stack's resources. */
  readonly config: InstitutionConfig;
}

/**
 * One deployment per institution. Data flow (README): studies bucket → queue → ingest → scoring
 * endpoint → records table; weekly selection → e-mail; completions → refit. Constructs are added
 * here as each part lands; today: the data key, studies bucket + ingest queue (+ DLQ), the records
 * table and the alarms.
 */
export class InstitutionStack extends Stack {
  readonly config: InstitutionConfig;
  readonly dataKey: DataKey;
  readonly studies: StudiesIngest;
  readonly records: RecordsTable;
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: InstitutionStackProps) {
    super(scope, id, props);
    const { institution } = props.config;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(institution)) {
      throw new Error(
        `institution must be 1–31 lower-case letters, digits or hyphens (e.g. "st-elsewhere"), got ${JSON.stringify(institution)}`,
      );
    }
    this.config = props.config;
    Tags.of(this).add("ich-al:institution", institution);

    this.dataKey = new DataKey(this, "DataKey", { institution });
    // The logical id the key had before it moved into the DataKey construct: deployed stacks keep their key.
    (this.dataKey.key.node.defaultChild as CfnKey).overrideLogicalId("DataKey17AFBB84");
    const encryptionKey = this.dataKey.key;
    this.studies = new StudiesIngest(this, "Studies", { encryptionKey });
    this.records = new RecordsTable(this, "Records", { encryptionKey });
    this.alarms = new Alarms(this, "Alarms", { encryptionKey });
    this.alarms.alarmOnDeadLetters("IngestDeadLetters", this.studies.deadLetterQueue);

    new CfnOutput(this, "StudiesBucketName", { value: this.studies.bucket.bucketName });
    new CfnOutput(this, "IngestQueueUrl", { value: this.studies.queue.queueUrl });
    new CfnOutput(this, "IngestDeadLetterQueueUrl", { value: this.studies.deadLetterQueue.queueUrl });
    new CfnOutput(this, "RecordsTableName", { value: this.records.table.tableName });
    new CfnOutput(this, "AlarmTopicArn", { value: this.alarms.topic.topicArn });
  }
}
