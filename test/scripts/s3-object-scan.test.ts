/** The local run's identifier scan finds a name inside compressed uploads (zip members, gzip), not only in plain bytes. */
import { deflateRawSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { occurrencesIn } from "../../scripts/lib/s3-object-scan.js";

const NAME = "Zzplanted^Patient^Seed9";

/** A zip of deflated (method 8) or stored (method 0) members: local headers, data, then a stub central directory. */
function zip(members: { name: string; data: Buffer; method: 0 | 8 }[]): Buffer {
  const parts = members.flatMap(({ name, data, method }) => {
    const body = method === 8 ? deflateRawSync(data) : data;
    const header = Buffer.alloc(30);
    header.write("PK\u0003\u0004", 0, "latin1");
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(method, 8);
    header.writeUInt32LE(body.length, 18);
    header.writeUInt32LE(data.length, 22);
    header.writeUInt16LE(Buffer.byteLength(name), 26);
    return [header, Buffer.from(name), body];
  });
  return Buffer.concat([...parts, Buffer.from("PK\u0001\u0002 central directory", "latin1")]);
}

describe("occurrencesIn", () => {
  const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.from(`PN ${NAME} and padding `.repeat(40))]);

  it("finds the name in a deflated zip member, where the raw bytes do not show it", () => {
    const archive = zip([
      { name: "a.dcm", data: Buffer.from("nothing here ".repeat(50)), method: 8 },
      { name: "b.dcm", data: dicom, method: 8 },
    ]);
    expect(archive.toString("latin1")).not.toContain(NAME);
    expect(occurrencesIn(archive, NAME)).toBe(40);
  });

  it("finds it in stored members, gzip content and plain bytes; zero where it is absent", () => {
    expect(occurrencesIn(zip([{ name: "s.dcm", data: dicom, method: 0 }]), NAME)).toBe(40);
    expect(occurrencesIn(gzipSync(dicom), NAME)).toBe(40);
    expect(occurrencesIn(Buffer.from(`{"name":"${NAME}"}`), NAME)).toBe(1);
    expect(occurrencesIn(zip([{ name: "clean.dcm", data: Buffer.from("clean ".repeat(100)), method: 8 }]), NAME)).toBe(0);
    // A header signature inside random bytes is skipped, not thrown on.
    expect(occurrencesIn(Buffer.from("xxPK\u0003\u0004\u0000\u0000\u0000\u0000\u0008\u0000garbage", "latin1"), NAME)).toBe(0);
  });
});
