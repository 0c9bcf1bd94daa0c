"""Writes a phantom's viewer volumes for the viewer's browser test (synthetic data only).

  make-viewer-volumes.py OUT_DIR SEED SIZE FRAMES exact|smooth
writes OUT_DIR/ct.nii.gz (the phantom's HU), heatmap.nii.gz (its mask × 255 — `exact`: a "suggestion"
that is the truth; `smooth`: blurred, as a model's heatmap looks), js.nii.gz (the heatmap's edges) with
ichal.viewer_volumes.grid_nifti, mask.bin (the mask as uint8 in [frame][row][column] order) and
geometry.json (the grid: shape and the NIfTI affine).

  make-viewer-volumes.py --decode MASK.nii.gz OUT.bin
reads a stored mask with nibabel (independently of the TypeScript reader) and writes its labels in
[frame][row][column] order.
"""

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from ichal.phantoms import generate_stack, nifti_affine
from ichal.viewer_volumes import grid_nifti
from scipy import ndimage

if sys.argv[1] == "--decode":
    image = nib.load(sys.argv[2])
    labels = np.asarray(image.dataobj).astype(np.uint8).transpose(2, 1, 0)
    Path(sys.argv[3]).write_bytes(np.ascontiguousarray(labels).tobytes())
    sys.exit(0)

out, seed, size, frames, kind = (
    Path(sys.argv[1]),
    int(sys.argv[2]),
    int(sys.argv[3]),
    int(sys.argv[4]),
    sys.argv[5],
)
out.mkdir(parents=True, exist_ok=True)
phantom = generate_stack(seed, negative=False, size=size, frames=frames)
affine = nifti_affine(phantom)
mask = (phantom.mask > 0).astype(np.uint8)
if kind == "exact":
    heat = mask * 255
else:
    heat = np.clip(
        ndimage.gaussian_filter(
            mask.astype(np.float32), sigma=(0, size / 160, size / 160)
        )
        * 300,
        0,
        255,
    )
heat = heat.astype(np.uint8)
js = np.clip(
    ndimage.gaussian_gradient_magnitude(heat.astype(np.float32), sigma=1.5) * 2, 0, 255
).astype(np.uint8)
(out / "ct.nii.gz").write_bytes(
    grid_nifti(np.clip(np.rint(phantom.hu), -1024, 3071).astype(np.int16), affine)
)
(out / "heatmap.nii.gz").write_bytes(grid_nifti(heat, affine))
(out / "js.nii.gz").write_bytes(grid_nifti(js, affine))
(out / "mask.bin").write_bytes(np.ascontiguousarray(mask).tobytes())
geometry = {
    "shape": list(phantom.hu.shape),
    "affine": [[float(v) for v in row] for row in affine],
}
(out / "geometry.json").write_text(json.dumps(geometry))
