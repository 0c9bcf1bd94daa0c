/**
 * The studies bucket through `@aws-sdk/client-s3` (implements the ingest core's StudyObjects port).
 * Every call names the object version, so a later upload to the same key never changes what an
 * earlier event ingests or quarantines.
 */
import {
  CopyObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { ObjectHead, ObjectVersion, StudyObjects } from "../domain/ingest.js";
import type { ScoringOutputs } from "../domain/record-score.js";

export class S3StudyObjects implements StudyObjects, ScoringOutputs {
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

  async copyVersion(object: ObjectVersion, destinationKey: string): Promise<void> {
    const encodedKey = object.key.split("/").map(encodeURIComponent).join("/");
    await this.s3.send(
      new CopyObjectCommand({
        Bucket: object.bucket,
        Key: destinationKey,
        CopySource: `${object.bucket}/${encodedKey}?versionId=${encodeURIComponent(object.versionId)}`,
      }),
    );
  }

  /** The object's body as UTF-8 text (the stream is always consumed), or undefined when there is no such key. */
  async getText(bucket: string, key: string): Promise<string | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await out.Body?.transformToString("utf-8")) ?? "";
    } catch (error) {
      if (error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)) return undefined;
      throw error;
    }
  }

  async putJson(bucket: string, key: string, body: unknown): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: "application/json" }));
  }
}
