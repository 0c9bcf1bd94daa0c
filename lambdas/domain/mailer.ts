/**
 * Port for sending e-mail. The SES adapter (adapters/ses-mailer.ts) implements it with SESv2 SendEmail
 * (raw MIME); unit-test fakes implement the same interface.
 */

export interface OutgoingMail {
  /** The verified sender (envelope and From). */
  readonly from: string;
  /** One recipient. */
  readonly to: string;
  /** The complete RFC 5322 message (headers + MIME body), CRLF line endings. */
  readonly raw: string;
}

export interface Mailer {
  /** Sends one message; resolves with the provider's message id, rejects on any refusal (never swallowed). */
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
}
