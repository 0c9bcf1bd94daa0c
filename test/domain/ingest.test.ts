import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeS3Key,
  isLastDelivery,
  MalformedMessageError,
  parseS3Message,
  rejectionFor,
  studyIdOf,
} from "../../lambdas/domain/ingest.js";

/** How S3 (and moto, via Python's quote_plus) encodes a key in an event: URL-encoded, space as `+`. */
function encodeLikeS3(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, "+");
}

function s3Event(key: string, extra: Record<string, unknown> = {}, eventName = "ObjectCreated:Put") {
  return JSON.stringify({
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: "us-east-1",
        eventTime: "2026-11-26T12:00:00.000Z",
        eventName,
        s3: { s3SchemaVersion: "1.0", bucket: { name: "studies" }, object: { key, size: 10, versionId: "v1", ...extra } },
      },
    ],
  });
}

function malformedCode(body: string): string | undefined {
  try {
    parseS3Message(body);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedMessageError);
    return (error as MalformedMessageError).code;
  }
}

describe("decodeS3Key", () => {
  it.each([
    ["uploads/plain.zip", "uploads/plain.zip"],
    ["uploads/with+space.zip", "uploads/with space.zip"],
    ["uploads/a%2Bb.zip", "uploads/a+b.zip"],
    ["uploads%2Fslash.zip", "uploads/slash.zip"],
    ["uploads/caf%C3%A9+%E6%97%A5%E6%9C%AC.nii.gz", "uploads/café 日本.nii.gz"],
    ["uploads/100%25.npz", "uploads/100%.npz"],
  ])("%s → %s", (encoded, decoded) => {
    expect(decodeS3Key(encoded)).toBe(decoded);
  });

  it("inverts S3's encoding for any key", () => {
    fc.assert(fc.property(fc.string({ unit: "grapheme", minLength: 1 }), (key) => decodeS3Key(encodeLikeS3(key)) === key));
  });

  it("names a bad percent sequence", () => {
    expect(() => decodeS3Key("uploads/%E0%A4%A.zip")).toThrow(MalformedMessageError);
  });
});

describe("parseS3Message", () => {
  it("acknowledges S3's test event", () => {
    const body = JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-11-26T12:00:00Z", Bucket: "studies" });
    expect(parseS3Message(body)).toEqual({ kind: "test" });
  });

  it("returns the decoded object version under uploads/", () => {
    expect(parseS3Message(s3Event("uploads%2FDoe+Jane%2Bx.zip"))).toEqual({
      kind: "objects",
      objects: [{ bucket: "studies", key: "uploads/Doe Jane+x.zip", versionId: "v1" }],
      ignored: 0,
    });
  });

  it("ignores other prefixes, folder markers and non-create events", () => {
    expect(parseS3Message(s3Event("quarantine/x.zip"))).toMatchObject({ objects: [], ignored: 1 });
    expect(parseS3Message(s3Event("uploads/folder/"))).toMatchObject({ objects: [], ignored: 1 });
    expect(parseS3Message(s3Event("uploads/x.zip", {}, "ObjectRemoved:Delete"))).toMatchObject({ objects: [], ignored: 1 });
  });

  it.each([
    ["not JSON", "{oops", "NOT_JSON"],
    ["an SQS-unrelated JSON", JSON.stringify({ hello: "world" }), "NOT_S3_EVENT"],
    ["an empty Records list", JSON.stringify({ Records: [] }), "NOT_S3_EVENT"],
    ["a record without a key", s3Event("uploads/x.zip").replace('"key":"uploads/x.zip",', ""), "NOT_S3_EVENT"],
    ["a created object without versionId", s3Event("uploads/x.zip", { versionId: undefined }), "MISSING_VERSION_ID"],
    ["a badly encoded key", s3Event("uploads/%ZZ.zip"), "BAD_KEY_ENCODING"],
  ])("names %s", (_name, body, code) => {
    expect(malformedCode(body)).toBe(code);
  });
});

describe("studyIdOf", () => {
  it("is stable and distinguishes bucket, key and version", () => {
    const base = { bucket: "studies", key: "uploads/a.zip", versionId: "v1" };
    expect(studyIdOf(base)).toMatch(/^[0-9a-f]{32}$/);
    expect(studyIdOf({ ...base })).toBe(studyIdOf(base));
    const others = [
      { ...base, bucket: "other" },
      { ...base, key: "uploads/b.zip" },
      { ...base, versionId: "v2" },
    ].map(studyIdOf);
    expect(new Set([studyIdOf(base), ...others]).size).toBe(4);
  });
});

describe("rejectionFor", () => {
  const max = 1000;
  it.each([
    ["uploads/a.zip", 0, undefined, "EMPTY_OBJECT"],
    ["uploads/a.zip", 1001, undefined, "OBJECT_TOO_LARGE"],
    ["uploads/a.txt", 10, undefined, "UNSUPPORTED_TYPE"],
    ["uploads/a.zip", 10, "text/plain", "UNSUPPORTED_TYPE"],
    ["uploads/a.gz", 10, "application/gzip", "UNSUPPORTED_TYPE"],
    ["uploads/a.ZIP", 10, "application/zip", undefined],
    ["uploads/a.dcm", 10, "application/dicom", undefined],
    ["uploads/a.nii", 10, undefined, undefined],
    ["uploads/a.nii.gz", 10, "application/gzip", undefined],
    ["uploads/a.npz", 1000, "binary/octet-stream", undefined],
  ])("%s (%i bytes, %s) → %s", (key, sizeBytes, contentType, code) => {
    expect(rejectionFor(key, { sizeBytes, contentType }, max)).toBe(code);
  });
});

describe("isLastDelivery", () => {
  it.each([
    [1, 5, false],
    [4, 5, false],
    [5, 5, true],
    [7, 5, true],
    [1, 1, true],
    [undefined, 5, false],
  ])("receive %s of maxReceiveCount %i → %s", (receiveCount, maxReceiveCount, last) => {
    expect(isLastDelivery(receiveCount === undefined ? {} : { receiveCount }, maxReceiveCount)).toBe(last);
  });
});
