/**
 * The studies bucket as the learning steps use it (implements domain/learning.ts TrainingObjects):
 * server-side copies into the training channels, small JSON documents, and the evaluation a training job
 * left in `training-output/<job>/output/output.tar.gz` (SageMaker tars `/opt/ml/output/data`).
 */
import { gunzipSync } from "node:zlib";
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { TRAINING_OUTPUT_PREFIX } from "../contracts/learning.js";
import type { TrainingObjects } from "../domain/learning.js";

/** output.tar.gz holds a few small files; anything larger is not a job's evaluation. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export class S3TrainingObjects implements TrainingObjects {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async copy(source: { key: string; versionId?: string }, targetKey: string): Promise<void> {
    const version = source.versionId ? `?versionId=${encodeURIComponent(source.versionId)}` : "";
    await this.s3.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: targetKey,
        CopySource: `${this.bucket}/${source.key.split("/").map(encodeURIComponent).join("/")}${version}`,
      }),
    );
  }

  async putText(key: string, body: string, contentType: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
  }

  async readEvaluation(jobName: string): Promise<unknown> {
    const key = `${TRAINING_OUTPUT_PREFIX}${jobName}/output/output.tar.gz`;
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if ((out.ContentLength ?? 0) > MAX_OUTPUT_BYTES) throw new Error(`${key} is larger than ${MAX_OUTPUT_BYTES} bytes`);
    const bytes = await out.Body?.transformToByteArray();
    if (!bytes) throw new Error(`${key} is empty`);
    const file = tarEntry(gunzipSync(bytes, { maxOutputLength: 4 * MAX_OUTPUT_BYTES }), "evaluation.json");
    if (!file) throw new Error(`${key} holds no evaluation.json: the job had no validation channel or failed to evaluate`);
    return JSON.parse(file.toString("utf8"));
  }
}

/**
 * The contents of the regular file `name` (at the archive's top level, `./` allowed) in a ustar/GNU tar
 * archive, or undefined. Headers are 512-byte blocks: name at 0 (100 bytes), size in octal at 124 (12),
 * type flag at 156, ustar prefix at 345 (155); contents follow, padded to 512.
 */
export function tarEntry(archive: Buffer, name: string): Buffer | undefined {
  const field = (block: Buffer, start: number, length: number) =>
    block
      .subarray(start, start + length)
      .toString("utf8")
      .replace(/\0.*$/s, "");
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
    const type = field(header, 156, 1) || "0";
    const prefix = field(header, 345, 155);
    const body = archive.subarray(offset + 512, offset + 512 + size);
    const path = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = undefined;
    if (type === "L") longName = body.toString("utf8").replace(/\0.*$/s, "");
    else if ((type === "0" || type === "\0") && path.replace(/^\.\//, "") === name) return Buffer.from(body);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
