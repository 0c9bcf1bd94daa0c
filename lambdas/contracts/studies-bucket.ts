/**
 * Key layout of the studies bucket, shared by the CDK construct (which routes `uploads/` to the
 * ingest queue) and the ingest handler (which moves refused studies to `quarantine/`).
 *
 *   uploads/<anything>      hospitals upload de-identified studies here; each ObjectCreated event
 *                           goes S3 → SQS ingest queue → ingest Lambda
 *   quarantine/<reason>/…   studies refused with a reason code (README "Readers and checks"); never
 *                           scored and never routed to the queue
 */
export const STUDIES_BUCKET = {
  /** Where uploads land; the only prefix whose ObjectCreated events reach the ingest queue. */
  uploadsPrefix: "uploads/",
  /** Where refused studies are moved, under their reason code; no notifications. */
  quarantinePrefix: "quarantine/",
} as const;
