/**
 * The normalised mask file (contracts/masks.ts layout) before compression: NIfTI-1, uint8, data axes
 * (column, row, frame) in canonical order, sform (code 1) = the stack's affine, units mm, no header
 * text. Pure and free of Node modules: the API stores it gzip'd (domain/nifti-mask.ts encodeMask) and
 * the worklist page's viewer writes the masks it draws with it (web/worklist/src/viewer.ts).
 */
import * as nifti from "nifti-reader-js";
import type { StackGeometry } from "../contracts/masks.js";

/** `labels` in [frame][row][column] order (column fastest), as many as the grid has voxels. */
export function maskNiftiBytes(labels: Uint8Array, geometry: StackGeometry): Uint8Array {
  const [frames, rows, columns] = geometry.shape;
  if (labels.length !== frames * rows * columns)
    throw new RangeError(`labels hold ${labels.length} voxels, not ${frames * rows * columns}`);
  const header = new nifti.NIFTI1();
  header.littleEndian = true;
  header.dims = [3, columns, rows, frames, 1, 1, 1, 1];
  header.datatypeCode = 2;
  header.numBitsPerVoxel = 8;
  const spacing = [0, 1, 2].map((c) => Math.hypot(...[0, 1, 2].map((r) => geometry.affine[r]?.[c] ?? 0)));
  header.pixDims = [1, ...spacing, 0, 0, 0, 0];
  header.vox_offset = 352;
  header.scl_slope = 1;
  header.scl_inter = 0;
  header.xyzt_units = 2; // mm
  header.qform_code = 0;
  header.sform_code = 1;
  header.affine = geometry.affine.map((row) => [...row]);
  header.description = "";
  header.aux_file = "";
  header.intent_name = "";
  header.magic = "n+1";
  const head = new Uint8Array(header.toArrayBuffer(false));
  const file = new Uint8Array(352 + labels.length);
  file.set(head.subarray(0, 352));
  file.set(labels, 352);
  return file;
}
