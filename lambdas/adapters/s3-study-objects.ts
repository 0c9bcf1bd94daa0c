/**
 * The studies bucket through `@aws-sdk/client-s3` (implements the ingest core's StudyObjects port, the
 * quarantine moves' QuarantineObjects and record-score's ScoringOutputs). Every call on an upload names
 * the object version, so a later upload to the same key never changes what an earlier event ingests,
 * quarantines or deletes.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { ObjectHead, StudyObjects } from "../domain/ingest.js";
import type { ObjectVersion, QuarantineObjects } from "../domain/quarantine.js";
import type { ScoringOutputs } from "../domain/record-score.js";

/** S3's answer for a key or version that is not there (404: NoSuchKey, NoSuchVersion). */
const isNotFound = (error: unknown): boolean =>
  error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404);

export class S3StudyObjects implements StudyObjects, QuarantineObjects, ScoringOutputs {
  constructor(private readonly s3: S3Client) {}

  async head(object: ObjectVersion): Promise<ObjectHead | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: object.bucket, Key: object.key, VersionId: object.versionId }));
      return { sizeBytes: out.ContentLength ?? 0, contentType: out.ContentType };
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  /**
   * CopyObject with `?versionId=` in CopySource (needs s3:GetObjectVersion and, for the tags it copies,
   * s3:GetObjectVersionTagging on the source; s3:PutObject and s3:PutObjectTagging on the destination).
   * A missing version is S3's 404 only for a caller with s3:ListBucket (403 otherwise).
   */
  async copyVersion(object: ObjectVersion, destinationKey: string): Promise<boolean> {
    const encodedKey = object.key.split("/").map(encodeURIComponent).join("/");
    try {
      await this.s3.send(
        new CopyObjectCommand({
          Bucket: object.bucket,
          Key: destinationKey,
          CopySource: `${object.bucket}/${encodedKey}?versionId=${encodeURIComponent(object.versionId)}`,
        }),
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** DeleteObject with VersionId (s3:DeleteObjectVersion): removes that version for good; S3 answers 204 when it is already gone. */
  async deleteVersion(object: ObjectVersion): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: object.bucket, Key: object.key, VersionId: object.versionId }));
  }

  /** The object's body as UTF-8 text (the stream is always consumed), or undefined when there is no such key. */
  async getText(bucket: string, key: string): Promise<string | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await out.Body?.transformToString("utf-8")) ?? "";
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async putJson(bucket: string, key: string, body: unknown): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: "application/json" }));
  }
}
