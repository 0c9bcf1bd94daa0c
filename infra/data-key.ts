import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Key } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

export interface DataKeyProps {
  /** Institution id; goes into the key's description and alias (`alias/ich-al/<institution>/data`). */
  readonly institution: string;
  /** What happens to the key when the stack is deleted. Default: RETAIN (retained data stays readable). */
  readonly removalPolicy?: RemovalPolicy;
  /** Waiting period before a scheduled key deletion, 7–30 days. Default: 30 days. */
  readonly pendingWindow?: Duration;
}

/**
 * The institution's customer-managed KMS key for everything at rest that describes studies: the
 * studies bucket, the ingest queues, the records table and the alarm topic. Secure defaults: annual
 * automatic rotation, retained on stack deletion, 30-day deletion window.
 */
export class DataKey extends Construct {
  readonly key: Key;

  constructor(scope: Construct, id: string, props: DataKeyProps) {
    super(scope, id);
    const pendingWindow = props.pendingWindow ?? Duration.days(30);
    const days = pendingWindow.toDays();
    if (days < 7 || days > 30) {
      throw new Error(`DataKey pendingWindow must be 7–30 days (KMS limit), got ${days}; pass e.g. Duration.days(30)`);
    }
    this.key = new Key(this, "Key", {
      description: `Encrypts ${props.institution} studies, queues, records and alarm topic at rest`,
      alias: `alias/ich-al/${props.institution}/data`,
      enableKeyRotation: true,
      pendingWindow,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }
}
