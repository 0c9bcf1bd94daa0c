import { Stack, type StackProps } from "aws-cdk-lib";
import { Key } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import { RecordsTable } from "./records-table.js";

export interface InstitutionStackProps extends StackProps {
  /** Short id of the institution (lower-case letters, digits, hyphens); names the stack's resources. */
  readonly institution: string;
}

/**
 * One deployment per institution. Data flow (README): studies bucket → queue → ingest → scoring
 * endpoint → records table; weekly selection → e-mail; completions → refit. Constructs are added
 * here as each part lands; today: the data key and the records table.
 */
export class InstitutionStack extends Stack {
  readonly records: RecordsTable;

  constructor(scope: Construct, id: string, props: InstitutionStackProps) {
    super(scope, id, props);
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(props.institution)) {
      throw new Error(
        `institution must be 1–31 lower-case letters, digits or hyphens (e.g. "st-elsewhere"), got ${JSON.stringify(props.institution)}`,
      );
    }
    const dataKey = new Key(this, "DataKey", {
      description: `Encrypts ${props.institution} study records at rest`,
      enableKeyRotation: true,
    });
    this.records = new RecordsTable(this, "Records", { encryptionKey: dataKey });
  }
}
