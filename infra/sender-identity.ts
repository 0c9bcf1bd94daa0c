import { Stack } from "aws-cdk-lib";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { EmailIdentity, Identity } from "aws-cdk-lib/aws-ses";
import { Construct } from "constructs";

export interface SenderIdentityProps {
  /** The From address of the weekly e-mail (config.senderAddress); SES sends it a verification link at deploy. */
  readonly senderAddress: string;
  /**
   * The annotators' addresses. While the account is in the SES sandbox, SES authorizes SendEmail against
   * each recipient's identity too, so the send permission names them (exact identity ARNs).
   */
  readonly recipientAddresses: readonly string[];
}

/**
 * The SES (v2) e-mail identity of the sender. Its owner clicks the verification link SES sends at
 * deploy; until then, and while the account is in the SES sandbox (verified recipients only, 200
 * messages a day), the weekly e-mail cannot go out — see the README's deploy section.
 * `sendStatement()` is the only SES permission in the stack: SendEmail / SendRawEmail as this sender only.
 */
export class SenderIdentity extends Construct {
  /** The identity. */
  readonly identity: EmailIdentity;
  /** ARN of the sender identity. */
  readonly identityArn: string;
  private readonly recipientArns: string[];
  private readonly senderAddress: string;

  constructor(scope: Construct, id: string, props: SenderIdentityProps) {
    super(scope, id);
    const email = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
    for (const address of [props.senderAddress, ...props.recipientAddresses]) {
      if (!email.test(address))
        throw new Error(`SenderIdentity: ${JSON.stringify(address)} is not an e-mail address; fix senderAddress / annotatorEmails`);
    }
    this.senderAddress = props.senderAddress;
    this.identity = new EmailIdentity(this, "Sender", { identity: Identity.email(props.senderAddress) });
    const stack = Stack.of(this);
    const identityArn = (address: string) => stack.formatArn({ service: "ses", resource: "identity", resourceName: address });
    this.identityArn = identityArn(props.senderAddress);
    this.recipientArns = [...new Set(props.recipientAddresses.map((a) => a.toLowerCase()))]
      .filter((a) => a !== props.senderAddress.toLowerCase())
      .map(identityArn);
  }

  /** ses:SendEmail / ses:SendRawEmail with this sender as From, on its identity (and the sandbox recipients' identities). */
  sendStatement(): PolicyStatement {
    return new PolicyStatement({
      sid: "SendAsTheSenderOnly",
      actions: ["ses:SendEmail", "ses:SendRawEmail"],
      resources: [this.identityArn, ...this.recipientArns],
      conditions: { StringEquals: { "ses:FromAddress": this.senderAddress } },
    });
  }
}
