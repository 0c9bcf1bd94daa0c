/**
 * Key layout of the studies bucket, shared by the CDK construct (which routes `uploads/` to the
 * ingest queue) and the ingest handler (which moves refused studies to `quarantine/`).
 *
 *   uploads/<anything>      hospitals upload de-identified studies here; each ObjectCreated event
 *                           goes S3 → SQS ingest queue → ingest Lambda
 *   quarantine/<code>/<studyId>/<path under uploads/>
 *                           studies refused with a reason code, moved here by ingest or record-score
 *                           (copied version-exactly, the upload's version then deleted: domain/quarantine.ts);
 *                           never scored, never routed to the queue, readable only by the quarantine
 *                           operator role, expired after the institution's `retention.quarantineDays`
 */
export const STUDIES_BUCKET = {
  /** Where uploads land; the only prefix whose ObjectCreated events reach the ingest queue. */
  uploadsPrefix: "uploads/",
  /** Where refused studies are moved, under their reason code and study id; no notifications. */
  quarantinePrefix: "quarantine/",
} as const;
