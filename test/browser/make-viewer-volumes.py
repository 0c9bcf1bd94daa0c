"""Writes a phantom's viewer volumes for the viewer's browser test (synthetic data only).

  make-viewer-volumes.py OUT_DIR SEED
writes OUT_DIR/ct.nii.gz (the phantom's HU), heatmap.nii.gz (its exact mask × 255: a "suggestion" that
is the truth), js.nii.gz (zeros) with ichal.viewer_volumes.grid_nifti, mask.bin (the mask as uint8 in
[frame][row][column] order) and geometry.json (CtStack.geometry() of the phantom's grid).
"""

import json
import sys
from pathlib import Path

import numpy as np
from ichal.phantoms import generate_stack, nifti_affine
from ichal.viewer_volumes import grid_nifti

out, seed = Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
phantom = generate_stack(seed, negative=False, size=64, frames=12)
affine = nifti_affine(phantom)
mask = (phantom.mask > 0).astype(np.uint8)
(out / "ct.nii.gz").write_bytes(grid_nifti(np.clip(np.rint(phantom.hu), -1024, 3071).astype(np.int16), affine))
(out / "heatmap.nii.gz").write_bytes(grid_nifti(mask * 255, affine))
(out / "js.nii.gz").write_bytes(grid_nifti(np.zeros_like(mask), affine))
(out / "mask.bin").write_bytes(np.ascontiguousarray(mask).tobytes())
geometry = {"shape": list(phantom.hu.shape), "affine": [[float(v) for v in row] for row in affine]}
(out / "geometry.json").write_text(json.dumps(geometry))
