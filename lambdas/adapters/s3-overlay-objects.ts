/**
 * The studies bucket's `overlays/` objects through `@aws-sdk/client-s3` (implements the completion
 * API's OverlayObjects port). Bodies are always consumed; objects larger than `maxBytes` are refused
 * before download (OverlayTooLargeError), so one odd object cannot exhaust the Lambda's memory.
 */
import { GetObjectCommand, HeadObjectCommand, NoSuchKey, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import type { OverlayObjects } from "../domain/completion.js";

/** The overlay object is larger than the adapter will read. */
export class OverlayTooLargeError extends Error {
  constructor(bytes: number, limit: number) {
    super(`overlay object is ${bytes} bytes (limit ${limit})`);
    this.name = "OverlayTooLargeError";
  }
}

const notFound = (error: unknown) =>
  error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404);

export class S3OverlayObjects implements OverlayObjects {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    /** Largest object read (default 64 MiB; a 64-frame 512² overlay npz is a few MiB). */
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      if ((head.ContentLength ?? 0) > this.maxBytes) throw new OverlayTooLargeError(head.ContentLength ?? 0, this.maxBytes);
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: head.ETag }));
      return (await out.Body?.transformToByteArray()) ?? new Uint8Array(0);
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  }
}
