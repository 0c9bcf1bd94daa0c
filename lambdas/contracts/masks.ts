/**
 * Annotation masks: the grid a mask must lie on, the label values, the object layout and the limits.
 *
 * Grid. The scoring container reports each stack's canonical grid (`geometry`, model-container
 * ichal/io/stack.py CtStack.geometry): `shape` [frames, rows, columns] and the NIfTI RAS+ `affine` of
 * voxel (column, row, frame). A mask is a 3-D NIfTI-1 label map on that grid: the page writes exactly
 * it; a desktop tool's export (3D Slicer, ITK-SNAP) may store the same voxels in another axis order or
 * direction, which is accepted when its affine places every voxel centre where the stack's does.
 *
 * Labels. 0 background, 1 hemorrhage of no given type, 2 + i for HEMORRHAGE_TYPES[i]. Training reads
 * every value > 0 as hemorrhage.
 *
 * Layout in the studies bucket (versioned, like every prefix there):
 *   label-uploads/<stackId>/<uploadId>.nii[.gz]   what the annotator PUT (presigned; expires after
 *                                                 `LABEL_UPLOAD_RETENTION_DAYS`, refused ones included)
 *   labels/<stackId>/<uploadId>.nii.gz            each accepted mask, normalised: the stack's grid in
 *                                                 canonical order, uint8, sform = the stack's affine, no
 *                                                 header text or extension. The stack's completion names
 *                                                 the one it was completed with (`completion.mask.key`),
 *                                                 which is authoritative: a finish that lost a race to
 *                                                 another (409) may have left its mask beside it.
 */
import { z } from "zod";

export const HEMORRHAGE_TYPES = ["epidural", "subdural", "subarachnoid", "intraparenchymal", "intraventricular"] as const;
/** Label value of hemorrhage whose type the annotator did not give. */
export const UNTYPED_HEMORRHAGE = 1;
/** The largest label value a mask may hold. */
export const MAX_LABEL = 1 + HEMORRHAGE_TYPES.length;
export const labelOfType = (type: (typeof HEMORRHAGE_TYPES)[number]): number => 2 + HEMORRHAGE_TYPES.indexOf(type);

/** The stack's canonical grid (contracts/scoring.ts ScoredStack.geometry, stored on the stack record). */
export const StackGeometrySchema = z.object({
  /** [frames, rows, columns]. */
  shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  /** NIfTI RAS+ affine of voxel (column, row, frame), four rows of four. */
  affine: z.array(z.array(z.number().finite()).length(4)).length(4),
});
export type StackGeometry = z.infer<typeof StackGeometrySchema>;

/**
 * Largest mask object accepted (bytes as uploaded): a 64 × 512² uint8 mask is 16 MiB uncompressed. The
 * inflated image is bounded by the stack's grid (8 bytes per voxel at most); the complete Lambda's
 * memory is sized for a 300-frame 512² float64 mask (infra/institution-stack.ts).
 */
export const MAX_MASK_BYTES = 64 * 1024 * 1024;
/** How long a presigned PUT URL stays valid. */
export const MASK_UPLOAD_URL_SECONDS = 15 * 60;
/** Days an upload (accepted or refused) stays under `label-uploads/` before the lifecycle removes it. */
export const LABEL_UPLOAD_RETENTION_DAYS = 7;
export const LABEL_UPLOADS_PREFIX = "label-uploads/";
export const LABELS_PREFIX = "labels/";
export const MASK_CONTENT_TYPES = ["application/gzip", "application/octet-stream"] as const;

/** The upload key of one Finish (`uploadId` is the API's UUID). */
export const maskUploadKey = (stackId: string, uploadId: string, gzip: boolean) =>
  `${LABEL_UPLOADS_PREFIX}${stackId}/${uploadId}.nii${gzip ? ".gz" : ""}`;

/** The upload id and stack of an upload key, or undefined for any other key. */
export function parseMaskUploadKey(key: string): { stackId: string; uploadId: string; gzip: boolean } | undefined {
  const match = /^label-uploads\/([^/]+)\/([0-9a-f-]{36})\.nii(\.gz)?$/.exec(key);
  if (!match?.[1] || !match[2]) return undefined;
  return { stackId: match[1], uploadId: match[2], gzip: match[3] !== undefined };
}

/** Where an accepted upload is kept, normalised. */
export const storedMaskKey = (stackId: string, uploadId: string) => `${LABELS_PREFIX}${stackId}/${uploadId}.nii.gz`;

/**
 * Why a mask was refused (422 MASK_REFUSED carries one of these with a reason line):
 * NOT_UPLOADED (no object at the key), TOO_LARGE, NOT_NIFTI (not a NIfTI-1/2 image, or DICOM-SEG,
 * which is not accepted yet), GEOMETRY_MISMATCH (dimensions, voxel size, orientation or position
 * differ from the stack's grid), NOT_A_LABEL_MAP (values not whole numbers in 0…MAX_LABEL, or scaled),
 * HEADER_TEXT (description, aux_file, intent_name or an extension holds data: masks carry none, so no
 * identifier can ride along), NO_GEOMETRY (the stack was scored by a container that did not report
 * its grid: re-score it).
 */
export const MASK_REFUSAL_CODES = [
  "NOT_UPLOADED",
  "TOO_LARGE",
  "NOT_NIFTI",
  "GEOMETRY_MISMATCH",
  "NOT_A_LABEL_MAP",
  "HEADER_TEXT",
  "NO_GEOMETRY",
] as const;
export const MaskRefusalCodeSchema = z.enum(MASK_REFUSAL_CODES);
export type MaskRefusalCode = z.infer<typeof MaskRefusalCodeSchema>;

/** One refused mask upload, kept beside the stack record (one item per upload key). */
export const MaskRefusalSchema = z.object({
  code: MaskRefusalCodeSchema,
  reason: z.string().min(1),
  /** The upload that was refused (under label-uploads/, until the lifecycle removes it). */
  uploadKey: z.string().min(1),
  annotator: z.string().min(1),
  at: z.iso.datetime({ offset: true }),
});
export type MaskRefusal = z.infer<typeof MaskRefusalSchema>;
