/**
 * The studies bucket's mask objects through `@aws-sdk/client-s3` (implements domain/masks.ts
 * MaskObjects). The presigned PUT signs the content type and the exact length, so the URL admits one
 * object of the announced size and type at one key; S3 answers 403 SignatureDoesNotMatch to anything else.
 * The client must be created with `requestChecksumCalculation: "WHEN_REQUIRED"` (maskObjectsClient):
 * otherwise the presigner signs a CRC32 of the empty body into the URL and S3 refuses the real upload.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { ViewerObjects } from "../domain/completion.js";
import type { MaskObjects } from "../domain/masks.js";

const notFound = (error: unknown) =>
  error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404);

/** An S3 client fit for presigning uploads (no checksum of an empty body in the URL). */
export const maskObjectsClient = (config: S3ClientConfig = {}) => new S3Client({ ...config, requestChecksumCalculation: "WHEN_REQUIRED" });

/** The viewer's volumes under overlays/ (implements domain/completion.ts ViewerObjects). */
export class S3ViewerObjects implements ViewerObjects {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (notFound(error)) return false;
      throw error;
    }
  }

  presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: expiresInSeconds });
  }
}

export class S3MaskObjects implements MaskObjects {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  presignPut(key: string, contentType: string, bytes: number, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.s3, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType, ContentLength: bytes }), {
      expiresIn: expiresInSeconds,
      signableHeaders: new Set(["content-type", "content-length"]),
    });
  }

  async get(key: string, maxBytes: number): ReturnType<MaskObjects["get"]> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = head.ContentLength ?? 0;
      if (bytes > maxBytes) return { kind: "tooLarge", bytes };
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: head.ETag }));
      return { kind: "object", body: (await out.Body?.transformToByteArray()) ?? new Uint8Array(0) };
    } catch (error) {
      if (notFound(error)) return { kind: "missing" };
      throw error;
    }
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: "application/gzip" }));
  }
}
