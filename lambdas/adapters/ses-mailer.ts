import { type SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";
import type { Mailer, OutgoingMail } from "../domain/mailer.js";

/** SES answered without a MessageId (never expected; treated as a failed send). */
export class MissingMessageIdError extends Error {
  constructor() {
    super("SESv2 SendEmail returned no MessageId");
    this.name = "MissingMessageIdError";
  }
}

/** E-mail through SESv2 SendEmail with raw MIME content (the message is built by domain/worklist-email.ts). */
export class SesMailer implements Mailer {
  constructor(private readonly client: SESv2Client) {}

  async send(mail: OutgoingMail): Promise<{ messageId: string }> {
    const out = await this.client.send(
      new SendEmailCommand({
        FromEmailAddress: mail.from,
        Destination: { ToAddresses: [mail.to] },
        Content: { Raw: { Data: new TextEncoder().encode(mail.raw) } },
      }),
    );
    if (!out.MessageId) throw new MissingMessageIdError();
    return { messageId: out.MessageId };
  }
}
