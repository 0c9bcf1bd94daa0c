"""What the annotators' viewer loads for one stack, written beside its overlays at scoring time.

  stack-<i>-ct.nii.gz        int16 HU, clipped to [-1024, 3071]
  stack-<i>-heatmap.nii.gz   uint8: the ensemble's mean heatmap × 255
  stack-<i>-js.nii.gz        uint8: pixelwise JS divergence × 255 / ln 2

All three lie on the stack's own grid (``CtStack.geometry()``: data axes column, row, frame; the grid's
NIfTI affine), the grid the annotators' masks must match (lambdas/domain/nifti-mask.ts), so a viewer
shows CT, overlays and the mask it draws voxel for voxel. The maps come back from the model grid by
``from_model_grid`` (bilinear). NIfTI carries no DICOM header: nothing but voxels and geometry leaves
the container this way (no names, UIDs or dates; ``descrip`` and ``aux_file`` empty).
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np

from .io.stack import CtStack
from .preprocessing import from_model_grid, plan_model_grid

HU_RANGE = (-1024, 3071)
VIEWER_FILES = ("ct", "heatmap", "js")


def grid_nifti(volume: np.ndarray, affine: np.ndarray) -> bytes:
    """``volume`` [frames, rows, columns] as gzip'd NIfTI-1 on the grid of ``affine`` (qform = sform)."""
    image = nib.Nifti1Image(np.ascontiguousarray(np.asarray(volume).transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    # Level 1: a 32 × 512² int16 stack compresses in a fraction of a second, at most a few % larger.
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)


def on_stack_grid(stack: CtStack, maps: dict[str, np.ndarray], grid_size: int) -> dict[str, np.ndarray]:
    """CT (int16 HU) and the two overlay maps (uint8 on the model grid, ``scoring.overlay_arrays``)
    on the stack's own grid, [frames, rows, columns]."""
    transform = plan_model_grid(stack.hu.shape[1:], stack.pixel_spacing, grid_size)

    def back(name: str) -> np.ndarray:
        values = from_model_grid(maps[name].astype(np.float32), transform, order=1)
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)

    return {
        "ct": np.clip(np.rint(stack.hu), *HU_RANGE).astype(np.int16),
        "heatmap": back("mean_heatmap"),
        "js": back("js_divergence"),
    }


def viewer_volumes(stack: CtStack, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The three volumes (``on_stack_grid``) as gzip'd NIfTI on the stack's grid."""
    affine = stack.grid_affine()
    return {name: grid_nifti(arrays[name], affine) for name in VIEWER_FILES}
