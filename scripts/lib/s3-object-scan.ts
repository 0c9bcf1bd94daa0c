/**
 * What the local run leaves in S3, read while moto still runs: the versions of a key (to show a refused
 * upload is gone from `uploads/`), and how often an identifier occurs in every object version of every
 * bucket — inside a zip's deflated members and a gzip's content too (DICOM studies and overlay npz files are
 * zips), so a planted patient name in a compressed upload is found, not missed.
 */
import { gunzipSync, inflateRawSync } from "node:zlib";
import { GetObjectCommand, ListBucketsCommand, ListObjectVersionsCommand, type S3Client } from "@aws-sdk/client-s3";

/** One version (or delete marker) of an object. */
export interface ObjectVersionEntry {
  key: string;
  versionId: string;
  deleteMarker: boolean;
}

/** Every version and delete marker under `prefix` (ListObjectVersions, all pages). */
export async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<ObjectVersionEntry[]> {
  const entries: ObjectVersionEntry[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }),
    );
    for (const v of page.Versions ?? []) entries.push({ key: v.Key ?? "", versionId: v.VersionId ?? "null", deleteMarker: false });
    for (const m of page.DeleteMarkers ?? []) entries.push({ key: m.Key ?? "", versionId: m.VersionId ?? "null", deleteMarker: true });
    if (!page.IsTruncated) return entries;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}

/** The versions of exactly `key` (not of other keys that share it as a prefix). */
export async function versionsOfKey(s3: S3Client, bucket: string, key: string): Promise<ObjectVersionEntry[]> {
  return (await listVersions(s3, bucket, key)).filter((v) => v.key === key);
}

/** Most bytes one decompressed member may have (phantom studies and overlays are far smaller). */
const MAX_INFLATED_BYTES = 1024 ** 3;

/** Occurrences of `needle` in `bytes`, and in each deflated zip member and gzip content they hold (one level). */
export function occurrencesIn(bytes: Buffer, needle: string): number {
  const count = (buffer: Buffer) => buffer.toString("latin1").split(needle).length - 1;
  let found = count(bytes); // stored (uncompressed) zip members are plain bytes here
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      found += count(gunzipSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES }));
    } catch {
      // not gzip after all
    }
  }
  // Each zip local file header (PK\3\4): method at +8, name and extra lengths at +26 / +28, then the data.
  // The sizes may sit in a data descriptor or a zip64 field; inflate stops at the end of the deflate stream.
  for (let at = bytes.indexOf("PK\u0003\u0004", 0, "latin1"); at >= 0; at = bytes.indexOf("PK\u0003\u0004", at + 4, "latin1")) {
    if (at + 30 > bytes.length || bytes.readUInt16LE(at + 8) !== 8) continue;
    const start = at + 30 + bytes.readUInt16LE(at + 26) + bytes.readUInt16LE(at + 28);
    try {
      found += count(inflateRawSync(bytes.subarray(start), { maxOutputLength: MAX_INFLATED_BYTES }));
    } catch {
      // the signature inside compressed data, not a header
    }
  }
  return found;
}

/** Where an identifier was found in S3, counted apart for the quarantine prefix of the studies bucket. */
export interface ObjectScan {
  /** Object versions read (delete markers have no content). */
  versions: number;
  /** Occurrences outside `quarantine/` of the studies bucket (every other bucket and prefix). */
  outsideQuarantine: number;
  /** Occurrences inside it (where a refused study belongs). */
  insideQuarantine: number;
  /** `bucket/key` of each version outside quarantine that holds it. */
  foundOutside: string[];
}

/** Reads every version of every object in every bucket and counts `needle` in each. */
export async function scanObjects(s3: S3Client, needle: string, quarantine: { bucket: string; prefix: string }): Promise<ObjectScan> {
  const scan: ObjectScan = { versions: 0, outsideQuarantine: 0, insideQuarantine: 0, foundOutside: [] };
  const { Buckets: buckets = [] } = await s3.send(new ListBucketsCommand({}));
  for (const { Name: bucket } of buckets) {
    if (!bucket) continue;
    for (const version of await listVersions(s3, bucket, "")) {
      if (version.deleteMarker) continue;
      const out = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: version.key, VersionId: version.versionId === "null" ? undefined : version.versionId }),
      );
      const bytes = Buffer.from((await out.Body?.transformToByteArray()) ?? []);
      scan.versions++;
      const found = occurrencesIn(bytes, needle);
      if (bucket === quarantine.bucket && version.key.startsWith(quarantine.prefix)) {
        scan.insideQuarantine += found;
      } else if (found > 0) {
        scan.outsideQuarantine += found;
        scan.foundOutside.push(`${bucket}/${version.key}`);
      }
    }
  }
  return scan;
}
