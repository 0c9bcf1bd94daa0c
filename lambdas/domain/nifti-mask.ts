/**
 * Checks an uploaded NIfTI mask against its stack's grid and normalises it (contracts/masks.ts says
 * what a mask is): header parsed by nifti-reader-js, gzip bounded here so that no upload can inflate
 * past what the stack's grid needs.
 *
 *   bytes → size ≤ limit → gunzip (bounded) → NIfTI header → no header text → voxel axes = the stack's
 *   axes up to order and direction, same origin → whole values in 0…MAX_LABEL → labels in canonical
 *   order [frame][row][column]
 */
import { gunzipSync, gzipSync } from "node:zlib";
import * as nifti from "nifti-reader-js";
import { MAX_LABEL, MAX_MASK_BYTES, type MaskRefusalCode, type StackGeometry } from "../contracts/masks.js";
import { maskNiftiBytes } from "./mask-nifti-bytes.js";

export type MaskCheck =
  | {
      readonly ok: true;
      /** Label values in canonical order: index (frame × rows + row) × columns + column. */
      readonly labels: Uint8Array;
      readonly labeledVoxels: number;
      /** The label values present, ascending (0 included when any voxel is background). */
      readonly values: number[];
      /** True when the upload stored the voxels in another axis order or direction. */
      readonly reoriented: boolean;
    }
  | { readonly ok: false; readonly code: MaskRefusalCode; readonly reason: string };

const refuse = (code: MaskRefusalCode, reason: string): MaskCheck => ({ ok: false, code, reason });

/** NIfTI header room allowed beyond the voxels when decompressing (header, extensions). */
const HEADER_ALLOWANCE = 1024 * 1024;
/** NIfTI datatype code → bytes per voxel, for the integer and float codes a label map may use. */
const DATATYPES: Record<number, { bytes: number; name: string }> = {
  2: { bytes: 1, name: "uint8" },
  4: { bytes: 2, name: "int16" },
  8: { bytes: 4, name: "int32" },
  16: { bytes: 4, name: "float32" },
  64: { bytes: 8, name: "float64" },
  256: { bytes: 1, name: "int8" },
  512: { bytes: 2, name: "uint16" },
  768: { bytes: 4, name: "uint32" },
};

/** Checks `bytes` (a .nii or .nii.gz upload) against `geometry`; see the module comment. */
export function checkMask(bytes: Uint8Array, geometry: StackGeometry): MaskCheck {
  if (bytes.byteLength > MAX_MASK_BYTES)
    return refuse("TOO_LARGE", `the mask is ${bytes.byteLength} bytes; the limit is ${MAX_MASK_BYTES}`);
  const [frames, rows, columns] = geometry.shape;
  const voxels = frames * rows * columns;
  let raw: Uint8Array = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const limit = voxels * 8 + HEADER_ALLOWANCE;
    try {
      raw = gunzipSync(bytes, { maxOutputLength: limit });
    } catch (error) {
      if (error instanceof RangeError || (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        return refuse("TOO_LARGE", `the mask decompresses to more than ${limit} bytes, more than a label map of this stack needs`);
      }
      return refuse("NOT_NIFTI", "the gzip stream is damaged");
    }
  }
  if (raw.byteLength > 132 && String.fromCharCode(...raw.subarray(128, 132)) === "DICM") {
    return refuse("NOT_NIFTI", "DICOM-SEG masks are not accepted yet: export the segmentation as NIfTI (.nii.gz)");
  }
  // The inflated bytes are used in place (no copy): a 300-frame float64 mask is already ~600 MB.
  const whole = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength;
  const buffer = (whole ? raw.buffer : raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) as ArrayBuffer;
  if (!nifti.isNIFTI(buffer)) return refuse("NOT_NIFTI", "not a NIfTI-1 or NIfTI-2 image (single .nii or .nii.gz file)");
  let header: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    header = nifti.readHeader(buffer);
  } catch {
    return refuse("NOT_NIFTI", "the NIfTI header is damaged (truncated, or an extension of impossible size)");
  }
  const text = headerText(header);
  if (text) return refuse("HEADER_TEXT", `${text} holds data; a mask carries no header text or extension (clear it and export again)`);

  const dims = header.dims;
  const extra = dims.slice(4, 1 + (dims[0] ?? 0)).filter((d) => d !== 1);
  if ((dims[0] ?? 0) < 3 || extra.length > 0) {
    return refuse(
      "GEOMETRY_MISMATCH",
      `the mask is ${dims[0]}-D (${dims.slice(1, 1 + (dims[0] ?? 0)).join("×")}); a mask is one 3-D volume`,
    );
  }
  const datatype = DATATYPES[header.datatypeCode];
  if (!datatype) return refuse("NOT_A_LABEL_MAP", `NIfTI datatype ${header.datatypeCode} is not an integer or float type`);
  // NIfTI: scl_slope 0 (or not finite) means unscaled, and scl_inter is then ignored.
  const slope = header.scl_slope;
  const scaled = Number.isFinite(slope) && slope !== 0 && (slope !== 1 || (Number.isFinite(header.scl_inter) && header.scl_inter !== 0));
  if (scaled) {
    return refuse("NOT_A_LABEL_MAP", `the mask is scaled (scl_slope ${slope}, scl_inter ${header.scl_inter}); store label values directly`);
  }
  const axes = matchAxes(affineOf(header, buffer), [dims[1] ?? 0, dims[2] ?? 0, dims[3] ?? 0], geometry);
  if (typeof axes === "string") return refuse("GEOMETRY_MISMATCH", axes);

  const offset = Math.ceil(header.vox_offset);
  const size = voxels * datatype.bytes;
  if (!(offset >= 348 && offset + size <= buffer.byteLength)) {
    return refuse("NOT_NIFTI", `the image data is truncated: ${Math.max(0, buffer.byteLength - offset)} of ${size} bytes`);
  }
  const read = voxelReader(new DataView(buffer, offset, size), header.datatypeCode, header.littleEndian);
  const labels = new Uint8Array(voxels);
  const sizes = [columns, rows, frames];
  // Canonical strides of axes column, row, frame.
  const stride = [1, columns, columns * rows];
  const [n0, n1, n2] = [dims[1] ?? 0, dims[2] ?? 0, dims[3] ?? 0];
  const present = new Set<number>();
  let labeled = 0;
  let index = 0;
  for (let k = 0; k < n2; k++) {
    for (let j = 0; j < n1; j++) {
      for (let i = 0; i < n0; i++, index++) {
        const value = read(index);
        if (!(Number.isInteger(value) && value >= 0 && value <= MAX_LABEL)) {
          return refuse("NOT_A_LABEL_MAP", `voxel (${i}, ${j}, ${k}) holds ${value}; label values are whole numbers 0…${MAX_LABEL}`);
        }
        let target = 0;
        const at = [i, j, k];
        for (let a = 0; a < 3; a++) {
          const { axis, flip } = axes[a] as AxisMatch;
          const position = at[a] as number;
          target += (flip ? (sizes[axis] as number) - 1 - position : position) * (stride[axis] as number);
        }
        labels[target] = value;
        present.add(value);
        if (value > 0) labeled++;
      }
    }
  }
  const reoriented = axes.some((m, a) => m.axis !== a || m.flip);
  return { ok: true, labels, labeledVoxels: labeled, values: [...present].sort((x, y) => x - y), reoriented };
}

/**
 * The voxel-to-RAS affine as nibabel reads it (the scoring container's convention): the sform when
 * `sform_code` > 0, else the qform (nifti-reader-js prefers the qform when its code is the higher one).
 */
function affineOf(header: nifti.NIFTI1 | nifti.NIFTI2, buffer: ArrayBuffer): number[][] {
  if (header instanceof nifti.NIFTI1 && header.sform_code > 0) {
    const view = new DataView(buffer, 280, 48); // srow_x, srow_y, srow_z: 12 float32
    const rows = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat32(4 * (4 * r + c), header.littleEndian)));
    return [...rows, [0, 0, 0, 1]];
  }
  return header.affine;
}

/** The first header field that holds data a mask must not carry, or undefined. */
function headerText(header: nifti.NIFTI1 | nifti.NIFTI2): string | undefined {
  const fields: [string, string][] = [
    ["description", header.description],
    ["aux_file", header.aux_file],
    ["intent_name", header.intent_name],
  ];
  for (const [name, value] of fields) if (value.replace(/\0/g, "").trim() !== "") return name;
  if ((header.extensionFlag?.[0] ?? 0) !== 0 || (header.extensions?.length ?? 0) > 0) return "a header extension";
  return undefined;
}

interface AxisMatch {
  /** Stack axis: 0 column, 1 row, 2 frame. */
  readonly axis: number;
  readonly flip: boolean;
}

/**
 * For each mask voxel axis, the stack axis it runs along and whether reversed, when the mask's
 * affine places every voxel centre on the stack's (tolerance: 1 % of the voxel size); else why not.
 */
function matchAxes(affine: number[][], dims: number[], geometry: StackGeometry): AxisMatch[] | string {
  const stack = geometry.affine;
  const [frames, rows, columns] = geometry.shape;
  const sizes = [columns, rows, frames];
  const column = (m: number[][], c: number) => [0, 1, 2].map((r) => m[r]?.[c] ?? Number.NaN);
  const norm = (v: number[]) => Math.hypot(...v);
  const matches: AxisMatch[] = [];
  for (let a = 0; a < 3; a++) {
    const v = column(affine, a);
    let found: AxisMatch | undefined;
    for (let b = 0; b < 3 && !found; b++) {
      const s = column(stack, b);
      const tolerance = 0.01 * norm(s);
      for (const sign of [1, -1]) {
        if (norm(v.map((x, r) => x - sign * (s[r] as number))) <= tolerance) found = { axis: b, flip: sign < 0 };
      }
    }
    if (!found) {
      const size = norm(v).toFixed(3);
      return `voxel axis ${a + 1} of the mask (${size} mm along ${describe(v)}) is none of the stack's axes (columns, rows, frames at ${[0, 1, 2].map((b) => norm(column(stack, b)).toFixed(3)).join(", ")} mm)`;
    }
    matches.push(found);
  }
  if (new Set(matches.map((m) => m.axis)).size !== 3) return "two voxel axes of the mask run along the same axis of the stack";
  for (let a = 0; a < 3; a++) {
    const { axis } = matches[a] as AxisMatch;
    if (dims[a] !== sizes[axis]) {
      return `the mask is ${dims.join("×")} voxels; on the stack's grid that axis has ${sizes[axis]} (the stack is ${columns}×${rows}×${frames}, columns × rows × frames)`;
    }
  }
  // The mask's first voxel must be the stack voxel its axes say it is.
  const first = [0, 0, 0];
  for (const { axis, flip } of matches) first[axis] = flip ? (sizes[axis] as number) - 1 : 0;
  const expected = [0, 1, 2].map((r) => (stack[r]?.[3] ?? 0) + first.reduce((sum, index, b) => sum + index * (stack[r]?.[b] ?? 0), 0));
  const offset = norm(expected.map((x, r) => (affine[r]?.[3] ?? Number.NaN) - x));
  const smallest = Math.min(...[0, 1, 2].map((b) => norm(column(stack, b))));
  if (!(offset <= 0.1 * smallest)) return `the mask's grid is shifted ${offset.toFixed(2)} mm from the stack's (position differs)`;
  return matches;
}

function describe(v: number[]): string {
  const names = ["x", "y", "z"];
  const largest = v.reduce((best, x, i) => (Math.abs(x) > Math.abs(v[best] ?? 0) ? i : best), 0);
  return `${(v[largest] ?? 0) < 0 ? "−" : "+"}${names[largest]} (RAS)`;
}

function voxelReader(view: DataView, datatypeCode: number, littleEndian: boolean): (index: number) => number {
  switch (datatypeCode) {
    case 2:
      return (i) => view.getUint8(i);
    case 256:
      return (i) => view.getInt8(i);
    case 4:
      return (i) => view.getInt16(2 * i, littleEndian);
    case 512:
      return (i) => view.getUint16(2 * i, littleEndian);
    case 8:
      return (i) => view.getInt32(4 * i, littleEndian);
    case 768:
      return (i) => view.getUint32(4 * i, littleEndian);
    case 16:
      return (i) => view.getFloat32(4 * i, littleEndian);
    default:
      return (i) => view.getFloat64(8 * i, littleEndian);
  }
}

/**
 * The normalised mask (contracts/masks.ts layout): NIfTI-1, uint8, data axes (column, row, frame) in
 * canonical order, sform (code 1) = the stack's affine, units mm, no header text; gzip-compressed.
 */
export function encodeMask(labels: Uint8Array, geometry: StackGeometry): Uint8Array {
  return gzipSync(maskNiftiBytes(labels, geometry), { level: 6 });
}
