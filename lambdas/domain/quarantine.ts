/**
 * Quarantine moves, shared by ingest (objects refused before scoring) and record-score (studies the
 * scoring container refused): the refused object version is copied version-exactly to
 * `quarantine/<code>/<studyId>/<path under uploads/>` (contracts/studies-bucket.ts), and that version is
 * then deleted from `uploads/` by its version id — a versioned bucket keeps a version until it is deleted
 * by id (a plain delete only hides it behind a delete marker).
 *
 * Crash safety is the order of three steps, each repeatable:
 * 1. copy the version (repeating it writes the same bytes again; the source is still there);
 * 2. record the rejection with its `quarantineKey` (a conditional write: the record is the proof that
 *    the copy exists);
 * 3. delete the original version (S3 answers the delete of a version already gone with success).
 * The original is never deleted before a record names its copy. A crash after 1 repeats 1 on the
 * redelivery; a crash after 2 leaves a `rejected` record with a quarantine key, and every later delivery
 * of the same event repeats 3 only (`finishQuarantine`). A source version that no longer exists at step 1
 * is recorded without a quarantine key: there is nothing left to move.
 */
import type { StackRecord } from "../contracts/records.js";
import { STUDIES_BUCKET } from "../contracts/studies-bucket.js";

/** An S3 object version, key decoded. */
export interface ObjectVersion {
  bucket: string;
  key: string;
  versionId: string;
}

/** Port for the moves; the S3 adapter implements it. */
export interface QuarantineObjects {
  /** Copies exactly that version to `destinationKey` in the same bucket; false when that version no longer exists. */
  copyVersion(object: ObjectVersion, destinationKey: string): Promise<boolean>;
  /** Deletes exactly that version for good (no delete marker); a version already gone is not an error. */
  deleteVersion(object: ObjectVersion): Promise<void>;
}

/** `quarantine/<code>/<studyId>/<path under uploads/>`: one folder per refused study, under its reason code. */
export function quarantineKeyFor(code: string, studyId: string, uploadKey: string): string {
  const name = uploadKey.startsWith(STUDIES_BUCKET.uploadsPrefix) ? uploadKey.slice(STUDIES_BUCKET.uploadsPrefix.length) : uploadKey;
  return `${STUDIES_BUCKET.quarantinePrefix}${code}/${studyId}/${name}`;
}

/** Step 1: the key of the copy, or undefined when the version is gone (nothing to quarantine). */
export async function copyToQuarantine(
  objects: QuarantineObjects,
  object: ObjectVersion,
  code: string,
  studyId: string,
): Promise<string | undefined> {
  const quarantineKey = quarantineKeyFor(code, studyId, object.key);
  return (await objects.copyVersion(object, quarantineKey)) ? quarantineKey : undefined;
}

/** Step 3 for a study already recorded: deletes its original version again when the record names a quarantined copy. */
export async function finishQuarantine(objects: QuarantineObjects, record: StackRecord): Promise<boolean> {
  if (!isQuarantined(record)) return false;
  const { bucket, key, versionId } = record.source;
  await objects.deleteVersion({ bucket, key, versionId });
  return true;
}

/** A rejected study whose upload was copied to `quarantine/` (so its original version must not remain). */
export function isQuarantined(record: StackRecord): boolean {
  return (
    record.kind !== "stack" &&
    record.status === "rejected" &&
    record.rejection?.quarantineKey?.startsWith(STUDIES_BUCKET.quarantinePrefix) === true &&
    record.source.key.startsWith(STUDIES_BUCKET.uploadsPrefix)
  );
}
