"""NIfTI and npz volumes → ``CtStack``.

NIfTI-1/-2, plain or gzip-compressed: the header is read first; text in its fields or extensions is
PHI_PRESENT (``ichal.io.phi.find_nifti_phi``). The voxel data it declares (product of the dimensions
× bytes per voxel) is checked against ``max_total_bytes`` (ARCHIVE_TOO_LARGE) and, for gzip, against
``max_compression_ratio`` relative to the compressed size (ZIP_BOMB), before any voxel is read. The
volume must be 3-D (a 4-D volume with one time point is accepted), its values (after
scl_slope/scl_inter) are taken as HU and must be finite (NON_FINITE_VOXELS). It is reoriented with
the affine (sform if set, else qform) to the canonical LPS layout of ``ichal.io.stack``: the voxel
axis closest to patient z becomes frames, the one closest to y rows, the one closest to x columns;
the frame axis must be within ``max_tilt_degrees`` of z (INCONSISTENT_GEOMETRY otherwise). Spacings
are the affine's column norms.

npz (a zip of .npy arrays, checked like any zip first; never unpickled): ``hu`` [F, H, W] in HU,
frames already in order (inferior → superior, rows toward posterior, columns toward the patient's
left), ``pixel_spacing`` (row, col) mm and optionally ``slice_spacing`` mm; other keys are ignored.
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
import zipfile

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.fileholders import FileHolder
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from ichal.io.archive import check_ratio, check_sizes
from ichal.io.errors import (
    ARCHIVE_TOO_LARGE,
    INCONSISTENT_GEOMETRY,
    NON_FINITE_VOXELS,
    PHI_PRESENT,
    TOO_FEW_FRAMES,
    UNREADABLE_ARCHIVE,
    InputRejected,
)
from ichal.io.limits import InputLimits
from ichal.io.phi import find_nifti_phi, phi_reason
from ichal.io.stack import CtStack

NIFTI1_MAGICS = (b"n+1\x00", b"ni1\x00")
NIFTI2_MAGICS = (b"n+2\x00", b"ni2\x00")


def nifti_header_kind(head: bytes) -> int | None:
    """1 or 2 when ``head`` (≥ 348 bytes) starts a single-file NIfTI-1/-2 header, else None."""
    if len(head) >= 348:
        for order in ("little", "big"):
            size = int.from_bytes(head[0:4], order)
            if size == 348 and head[344:348] in NIFTI1_MAGICS:
                return 1
            if size == 540 and head[4:8] in NIFTI2_MAGICS:
                return 2
    return None


def _check_frames(hu: np.ndarray, limits: InputLimits) -> None:
    if hu.shape[0] < limits.min_frames:
        raise InputRejected(
            TOO_FEW_FRAMES,
            f"the volume has {hu.shape[0]} frames, fewer than the minimum of {limits.min_frames}",
        )


def read_nifti_bytes(data: bytes, limits: InputLimits, source: str) -> CtStack:
    """A NIfTI file's bytes (plain or gzip) → ``CtStack``."""
    compressed = data[:2] == b"\x1f\x8b"
    stream: io.IOBase = gzip.GzipFile(fileobj=io.BytesIO(data)) if compressed else io.BytesIO(data)
    try:
        head = stream.read(540)
        stream.seek(0)
    except (OSError, EOFError, gzip.BadGzipFile):
        raise InputRejected(UNREADABLE_ARCHIVE, "the gzip stream is damaged") from None
    kind = nifti_header_kind(head)
    if kind is None:
        raise InputRejected(UNREADABLE_ARCHIVE, "the file is not a single-file NIfTI-1 or NIfTI-2 image")
    image_class = nib.Nifti1Image if kind == 1 else nib.Nifti2Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            holder = FileHolder(fileobj=stream)
            image = image_class.from_file_map({"header": holder, "image": holder})
            shape = tuple(int(d) for d in image.header.get_data_shape())
            itemsize = int(image.header.get_data_dtype().itemsize)
    except (ImageFileError, ValueError, OSError, EOFError, TypeError):
        raise InputRejected(UNREADABLE_ARCHIVE, "the NIfTI header could not be read") from None
    if limits.check_phi and (found := find_nifti_phi(image.header)):
        raise InputRejected(PHI_PRESENT, phi_reason("the NIfTI header carries text (it may identify)", found))
    declared = int(np.prod(shape, dtype=np.int64)) * itemsize if shape else 0
    if declared > limits.max_total_bytes:
        raise InputRejected(
            ARCHIVE_TOO_LARGE,
            f"the NIfTI declares {declared} bytes of voxels, "
            f"more than the limit of {limits.max_total_bytes} bytes",
        )
    if compressed:
        check_ratio(declared, len(data), limits, "the gzip-compressed NIfTI")
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3 or min(shape) < 1:
        raise InputRejected(INCONSISTENT_GEOMETRY, f"the NIfTI volume is {len(shape)}-D, not a 3-D stack")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            voxels = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)
            affine = np.asarray(image.affine, dtype=np.float64)
    except (ValueError, OSError, EOFError, gzip.BadGzipFile, zipfile.BadZipFile):
        raise InputRejected(UNREADABLE_ARCHIVE, "the NIfTI voxel data is truncated or unreadable") from None
    if not np.all(np.isfinite(voxels)):
        raise InputRejected(NON_FINITE_VOXELS, "the NIfTI volume holds NaN or infinite voxels")
    if not np.all(np.isfinite(affine)):
        raise InputRejected(NON_FINITE_VOXELS, "the NIfTI affine holds NaN or infinite values")
    return _reorient(voxels, affine, limits, source)


def _reorient(voxels: np.ndarray, affine: np.ndarray, limits: InputLimits, source: str) -> CtStack:
    columns = affine[:3, :3]
    zooms = np.linalg.norm(columns, axis=0)
    if np.any(zooms <= 0):
        raise InputRejected(INCONSISTENT_GEOMETRY, "the NIfTI affine has a zero voxel size")
    ornt = io_orientation(affine)
    if np.any(np.isnan(ornt)):
        raise InputRejected(INCONSISTENT_GEOMETRY, "the NIfTI affine is degenerate")
    frame_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    cosine = abs(columns[2, frame_axis]) / zooms[frame_axis]
    tilt = math.degrees(math.acos(min(1.0, float(cosine))))
    if tilt > limits.max_tilt_degrees:
        raise InputRejected(
            INCONSISTENT_GEOMETRY,
            f"no voxel axis is within {limits.max_tilt_degrees:.0f}° of the patient z axis "
            f"(closest {tilt:.0f}°)",
        )
    # RAS+ affine: L = −x, P = −y, S = +z in RAS terms; target voxel axes (i, j, k) → (L, P, S).
    transform = ornt_transform(ornt, axcodes2ornt(("L", "P", "S")))
    data = apply_orientation(voxels, transform)
    canonical_affine = affine @ inv_ornt_aff(transform, voxels.shape)
    source_axis = [int(np.flatnonzero(ornt[:, 0] == target)[0]) for target in (0, 1, 2)]
    col_mm, row_mm, slice_mm = (float(zooms[a]) for a in source_axis)
    hu = np.ascontiguousarray(data.transpose(2, 1, 0), dtype=np.float32)
    _check_frames(hu, limits)
    return CtStack(
        hu=hu,
        pixel_spacing=(row_mm, col_mm),
        slice_spacing=slice_mm,
        source=source,
        affine=canonical_affine,
    )


def read_npz_bytes(data: bytes, limits: InputLimits, source: str) -> CtStack:
    """An npz file's bytes → ``CtStack`` (zip limits are checked before loading)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputRejected(UNREADABLE_ARCHIVE, "the npz archive is damaged") from None
    for info in infos:
        check_ratio(info.file_size, info.compress_size, limits, "an npz member")
    check_sizes([info.file_size for info in infos], limits, "the npz archive")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if "hu" not in npz.files or "pixel_spacing" not in npz.files:
                raise InputRejected(UNREADABLE_ARCHIVE, "the npz lacks the keys 'hu' and 'pixel_spacing'")
            hu = np.asarray(npz["hu"])
            spacing = np.asarray(npz["pixel_spacing"], dtype=np.float64).ravel()
            slice_spacing = None
            if "slice_spacing" in npz.files:
                slice_spacing = np.asarray(npz["slice_spacing"], dtype=np.float64).ravel()
    except InputRejected:
        raise
    except Exception:
        raise InputRejected(
            UNREADABLE_ARCHIVE, "the npz arrays could not be loaded (damaged or pickled)"
        ) from None
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise InputRejected(
            INCONSISTENT_GEOMETRY, f"the npz 'hu' array is {hu.ndim}-D, not [frames, rows, columns]"
        )
    if not np.issubdtype(hu.dtype, np.number) or np.issubdtype(hu.dtype, np.complexfloating):
        raise InputRejected(UNREADABLE_ARCHIVE, "the npz 'hu' array is not real-valued")
    if spacing.shape != (2,):
        raise InputRejected(INCONSISTENT_GEOMETRY, "the npz 'pixel_spacing' is not two numbers")
    if slice_spacing is not None and slice_spacing.shape != (1,):
        raise InputRejected(INCONSISTENT_GEOMETRY, "the npz 'slice_spacing' is not one number")
    hu = hu.astype(np.float32, copy=False)
    if not np.all(np.isfinite(hu)):
        raise InputRejected(NON_FINITE_VOXELS, "the npz 'hu' array holds NaN or infinite voxels")
    numbers = np.concatenate([spacing, slice_spacing if slice_spacing is not None else []])
    if not np.all(np.isfinite(numbers)):
        raise InputRejected(NON_FINITE_VOXELS, "the npz spacings hold NaN or infinite values")
    if np.any(numbers <= 0):
        raise InputRejected(INCONSISTENT_GEOMETRY, "the npz spacings are not positive")
    _check_frames(hu, limits)
    return CtStack(
        hu=np.ascontiguousarray(hu),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        slice_spacing=float(slice_spacing[0]) if slice_spacing is not None else None,
        source=source,
    )
