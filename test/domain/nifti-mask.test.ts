/**
 * Mask checks (lambdas/domain/nifti-mask.ts) on NIfTI files written by nibabel (model-container's
 * environment), in the orientations and data types desktop tools use; the normalised mask is read back
 * by nibabel. Truth is nibabel's: the expected canonical labels are the array nibabel was given.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StackGeometry } from "../../lambdas/contracts/masks.js";
import { checkMask, encodeMask } from "../../lambdas/domain/nifti-mask.js";

const PYTHON = resolve("model-container/.venv/bin/python");

/** 5 frames × 6 rows × 7 columns, 0.5 × 0.6 mm pixels, 5 mm slices, placed off the origin (RAS). */
const GEOMETRY: StackGeometry = {
  shape: [5, 6, 7],
  affine: [
    [-0.6, 0, 0, 12.5],
    [0, -0.5, 0, 30],
    [0, 0, 5, -40],
    [0, 0, 0, 1],
  ],
};

/**
 * Writes the fixtures with nibabel: `labels` [frame, row, column] holds 0…6 in a fixed pattern; each
 * file stores it in another way. `expected.bin` is `labels` in canonical order.
 */
const WRITER = `
import json, sys, numpy as np, nibabel as nib
out, geometry = sys.argv[1], json.loads(sys.argv[2])
affine = np.array(geometry["affine"], float)
frames, rows, cols = geometry["shape"]
labels = (np.arange(frames * rows * cols).reshape(frames, rows, cols) % 7).astype(np.uint8)
labels[labels == 3] = 0
labels.tofile(f"{out}/expected.bin")
data = labels.transpose(2, 1, 0)  # (column, row, frame)

def save(name, array, aff, dtype=None, **header):
    image = nib.Nifti1Image(np.asarray(array, dtype=dtype or array.dtype), aff)
    image.set_sform(aff, code=1); image.set_qform(aff, code=1)
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, f"{out}/{name}")

save("exact.nii.gz", data, affine)
save("exact.nii", data, affine, dtype=np.int16)
save("float.nii.gz", data, affine, dtype=np.float32)
# (frame, row, column) axis order with the affine's columns permuted to match (ITK-style exports differ so).
save("permuted.nii.gz", np.ascontiguousarray(data.transpose(2, 1, 0)), affine[:, [2, 1, 0, 3]])
# Columns and frames reversed: the first voxel is the stack's last column of its last frame.
flipped = affine.copy()
flipped[:3, 0] = -affine[:3, 0]; flipped[:3, 2] = -affine[:3, 2]
flipped[:3, 3] = affine[:3, 3] + affine[:3, 0] * (cols - 1) + affine[:3, 2] * (frames - 1)
save("flipped.nii.gz", np.ascontiguousarray(data[::-1, :, ::-1]), flipped)
# A 3-cycle of the axes (row, frame, column) with the row axis reversed: no axis stays in place.
cycled = np.ascontiguousarray(data.transpose(1, 2, 0)[::-1])
cycled_affine = affine[:, [1, 2, 0, 3]].copy()
cycled_affine[:3, 0] = -cycled_affine[:3, 0]
cycled_affine[:3, 3] = affine[:3, 3] + affine[:3, 1] * (rows - 1)
save("cycled.nii.gz", cycled, cycled_affine)
# sform right, qform (with the higher code) shifted: nibabel, and so the check, go by the sform.
image = nib.Nifti1Image(data, affine)
shifted_q = affine.copy(); shifted_q[0, 3] += 3.0
image.set_sform(affine, code=1); image.set_qform(shifted_q, code=2)
nib.save(image, f"{out}/qform-differs.nii.gz")
save("short.nii.gz", data[:, :, : frames - 1], affine)
shifted = affine.copy(); shifted[0, 3] += 2.0
save("shifted.nii.gz", data, shifted)
finer = affine.copy(); finer[:3, :3] *= 0.5
save("finer.nii.gz", data, finer)
bad = data.copy(); bad[1, 2, 3] = 9
save("value9.nii.gz", bad, affine)
half = data.astype(np.float32); half[0, 0, 0] = 0.5
save("half.nii.gz", half, affine)
save("descrip.nii.gz", data, affine, descrip=b"Doe^Jane 1970")
save("scaled.nii.gz", data, affine, scl_slope=2.0, scl_inter=0.0)
save("4d.nii.gz", np.stack([data, data], axis=-1), affine)
`;

let dir: string;
const file = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
let expected: Uint8Array;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "masks-"));
  execFileSync(PYTHON, ["-c", WRITER, dir, JSON.stringify(GEOMETRY)]);
  expected = file("expected.bin");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("checkMask accepts a label map on the stack's grid", () => {
  it.each([
    ["exact.nii.gz", false],
    ["exact.nii", false],
    ["float.nii.gz", false],
    ["permuted.nii.gz", true],
    ["flipped.nii.gz", true],
    ["cycled.nii.gz", true],
    ["qform-differs.nii.gz", false],
  ])("%s: the canonical labels are nibabel's array", (name, reoriented) => {
    const check = checkMask(file(name), GEOMETRY);
    expect(check.ok, JSON.stringify(check)).toBe(true);
    if (!check.ok) return;
    expect(Buffer.from(check.labels).equals(Buffer.from(expected))).toBe(true);
    expect(check.reoriented).toBe(reoriented);
    expect(check.labeledVoxels).toBe(expected.filter((v) => v > 0).length);
    expect(check.values).toEqual([...new Set(expected)].sort((a, b) => a - b));
  });
});

describe("checkMask refuses, naming what is wrong", () => {
  it.each([
    ["short.nii.gz", "GEOMETRY_MISMATCH", /7×6×4 voxels.*7×6×5/],
    ["shifted.nii.gz", "GEOMETRY_MISMATCH", /shifted 2\.00 mm/],
    ["finer.nii.gz", "GEOMETRY_MISMATCH", /none of the stack's axes/],
    ["4d.nii.gz", "GEOMETRY_MISMATCH", /4-D/],
    ["value9.nii.gz", "NOT_A_LABEL_MAP", /holds 9/],
    ["half.nii.gz", "NOT_A_LABEL_MAP", /holds 0\.5/],
    ["scaled.nii.gz", "NOT_A_LABEL_MAP", /scaled/],
    ["descrip.nii.gz", "HEADER_TEXT", /^description holds data/],
  ])("%s → %s", (name, code, reason) => {
    const check = checkMask(file(name), GEOMETRY);
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.code).toBe(code);
    expect(check.reason).toMatch(reason);
    // A refusal never repeats header text it found.
    expect(check.reason).not.toContain("Doe");
  });

  it("refuses what is not a NIfTI image: random bytes, damaged gzip, a DICOM file", () => {
    const random = new Uint8Array(4000).map((_, i) => (i * 7919) % 251);
    expect(checkMask(random, GEOMETRY)).toMatchObject({ ok: false, code: "NOT_NIFTI" });
    const damaged = file("exact.nii.gz").slice(0, 60);
    expect(checkMask(damaged, GEOMETRY)).toMatchObject({ ok: false, code: "NOT_NIFTI" });
    const dicom = new Uint8Array(400);
    dicom.set([0x44, 0x49, 0x43, 0x4d], 128);
    expect(checkMask(dicom, GEOMETRY)).toMatchObject({ ok: false, code: "NOT_NIFTI", reason: expect.stringMatching(/DICOM-SEG/) });
  });

  it("refuses a header nifti-reader-js cannot parse (an extension of impossible size) instead of failing", () => {
    const raw = new Uint8Array(gunzipSync(file("exact.nii.gz")));
    const view = new DataView(raw.buffer, raw.byteOffset);
    raw[348] = 1; // extension present …
    view.setFloat32(108, 400, true); // … before the voxels at 400 …
    view.setInt32(352, 17, true); // … of 17 bytes (must be a multiple of 16)
    expect(checkMask(raw, GEOMETRY)).toMatchObject({ ok: false, code: "NOT_NIFTI", reason: expect.stringMatching(/header is damaged/) });
    expect(checkMask(raw.slice(0, 350), GEOMETRY)).toMatchObject({ ok: false, code: "NOT_NIFTI" });
  });

  it("stops a gzip bomb at what the stack's grid needs", () => {
    const bomb = gzipSync(new Uint8Array(64 * 1024 * 1024));
    expect(bomb.byteLength).toBeLessThan(200_000);
    expect(checkMask(bomb, GEOMETRY)).toMatchObject({ ok: false, code: "TOO_LARGE" });
  });
});

describe("encodeMask", () => {
  it("writes a NIfTI that nibabel reads back as the labels on the stack's grid, uint8, without header text", () => {
    const path = join(dir, "normalised.nii.gz");
    writeFileSync(path, encodeMask(expected, GEOMETRY));
    const report = execFileSync(PYTHON, [
      "-c",
      `
import json, sys, numpy as np, nibabel as nib
image = nib.load(sys.argv[1]); data = np.asarray(image.dataobj)
expected = np.fromfile(sys.argv[2], np.uint8).reshape(${GEOMETRY.shape.join(", ")})
print(json.dumps({"dtype": str(data.dtype), "equal": bool(np.array_equal(data.transpose(2, 1, 0), expected)),
  "affine": image.affine.tolist(), "descrip": image.header["descrip"].item().decode(), "sform": int(image.header["sform_code"])}))
`,
      path,
      join(dir, "expected.bin"),
    ]).toString();
    const read = JSON.parse(report) as { dtype: string; equal: boolean; affine: number[][]; descrip: string; sform: number };
    expect(read).toMatchObject({ dtype: "uint8", equal: true, descrip: "", sform: 1 });
    for (const [r, row] of read.affine.entries()) {
      for (const [c, v] of row.entries()) expect(v).toBeCloseTo(GEOMETRY.affine[r]?.[c] ?? Number.NaN, 5);
    }
    // and it passes its own check unchanged
    const again = checkMask(encodeMask(expected, GEOMETRY), GEOMETRY);
    expect(again.ok && Buffer.from(again.labels).equals(Buffer.from(expected))).toBe(true);
  });
});
