"""``CtStack``: what every reader returns, in one canonical orientation.

Frames are ordered along the slice normal and oriented to DICOM LPS: frame index increases toward
the patient's head (superior, +z), row index toward posterior (+y), column index toward the
patient's left (+x), so the image shows anterior at the top and the patient's left on the right,
whatever the source's own orientation (flips and in-plane transposition are undone exactly; a
gantry tilt within ``InputLimits.max_tilt_degrees`` is kept as is).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class CtStack:
    """An axial CT stack in Hounsfield units.

    * ``hu``: float32 [frames, rows, columns], HU after the source's rescale.
    * ``pixel_spacing``: (row spacing, column spacing) in mm, i.e. (between rows, between columns).
    * ``slice_spacing``: mm between adjacent frame centres (median gap); None when the source
      does not say (an npz without ``slice_spacing``).
    * ``source``: a description of where the stack came from (kind and caller-given location).
    * ``series_uid``: the DICOM SeriesInstanceUID, None for NIfTI and npz.
    * ``positions``: each frame's position along the slice normal in mm, ascending, when known.
    * ``affine``: 4×4 NIfTI (RAS+) affine of the canonical grid: voxel (column, row, frame) → mm.
      None when the source has no position (npz); ``grid_affine()`` then places the grid at the origin.
    """

    hu: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_spacing: float | None
    source: str
    series_uid: str | None = None
    positions: tuple[float, ...] | None = None
    affine: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.hu.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.hu.shape[0]), int(self.hu.shape[1]), int(self.hu.shape[2]))

    def grid_affine(self) -> np.ndarray:
        """``affine``, or for a source without positions the canonical axes at its spacings from (0, 0, 0).

        Annotation masks are NIfTI images on this grid (data axes column, row, frame): the mask of
        frame ``f`` is ``data[:, :, f].T``, rows × columns as the frame is shown.
        """
        if self.affine is not None:
            return np.array(self.affine, dtype=np.float64)
        row_mm, col_mm = self.pixel_spacing
        return np.diag([-col_mm, -row_mm, self.slice_spacing or 1.0, 1.0])

    def geometry(self) -> dict[str, list]:
        """The grid a mask must match: ``shape`` [frames, rows, columns] and ``affine`` (``grid_affine``, rows of 4)."""
        return {
            "shape": list(self.shape),
            "affine": [[float(v) for v in row] for row in self.grid_affine()],
        }

    def content_sha256(self) -> str:
        """The stack's content key: sha256 of its shape and its HU voxels (little-endian float32, canonical order).

        It depends on the decoded images only, not on how they were packed: the same series re-zipped,
        re-compressed, exported with new UIDs, or converted between DICOM, NIfTI and npz keeps its key
        as long as the voxels and their orientation are the same; one changed voxel changes it. Records
        use it to find a study uploaded twice (lambdas/domain/record-score.ts).
        """
        digest = hashlib.sha256()
        digest.update(np.asarray(self.shape, dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(self.hu, dtype="<f4").tobytes())
        return digest.hexdigest()
