"""DICOM CT series → ``CtStack``, with the checks that decide whether a study may be scored.

Given the files of one upload (a zip, a directory, an S3 prefix, or one file), in this order:

1. Every file counted as DICOM (see ``ichal.io.archive``) is parsed with pydicom; one that does not
   parse, or lacks SOPClassUID, is CORRUPT_DICOM.
2. De-identification is verified on every object, images or not, against the whole PS3.15 Table
   E.1-1, private elements and BurnedInAnnotation (``ichal.io.phi``): PHI_PRESENT names the
   attributes found across the upload (at most 10, then a count), never their values.
3. Objects without pixel data (DICOMDIR, structured reports, presentation states) are skipped; an
   object that is an image by its SOP class or its Rows but has no pixel data is CORRUPT_DICOM (a
   truncated file). An image object whose Modality is not CT is WRONG_MODALITY. CT objects that are not CT Image
   Storage (secondary captures such as dose screens) and localizers (ImageType LOCALIZER) are
   skipped; multi-frame (Enhanced CT, NumberOfFrames > 1) is UNREADABLE_ARCHIVE (not supported).
   No CT image left: WRONG_MODALITY.
4. Each remaining image needs Rows, Columns, BitsAllocated, PixelRepresentation, PixelData,
   RescaleSlope, RescaleIntercept and SeriesInstanceUID (else CORRUPT_DICOM) and
   ImagePositionPatient, ImageOrientationPatient, PixelSpacing (else INCONSISTENT_GEOMETRY). Native
   pixel data must be exactly Rows × Columns × frames × SamplesPerPixel × BitsAllocated / 8 bytes
   (one pad byte allowed), else CORRUPT_DICOM.
5. Images are grouped by SeriesInstanceUID: one ``CtStack`` per series, ordered by SeriesNumber then
   UID. Per series: at least ``min_frames`` frames (TOO_FEW_FRAMES); one Rows/Columns, PixelSpacing
   (relative 1e-3) and ImageOrientationPatient (1e-3) for all frames; orientation two orthonormal
   directions whose normal is within ``max_tilt_degrees`` of the patient z axis; frames ordered by
   ImagePositionPatient projected on that normal, no two at one position, every gap within
   ``slice_gap_tolerance`` of the median gap, and no frame shifted in-plane by more than one
   pixel relative to the first (all INCONSISTENT_GEOMETRY).
6. HU = stored value × RescaleSlope + RescaleIntercept, per frame; the stack is then oriented to
   the canonical LPS layout of ``ichal.io.stack``.

``InputLimits.skip_invalid_series`` turns step 5's rejections into dropping that series, as long as
another series passes.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ichal.io.errors import (
    CORRUPT_DICOM,
    INCONSISTENT_GEOMETRY,
    LOSSY_COMPRESSION,
    PHI_PRESENT,
    TOO_FEW_FRAMES,
    UNREADABLE_ARCHIVE,
    WRONG_MODALITY,
    InputRejected,
)
from ichal.io.limits import InputLimits
from ichal.io.phi import find_phi_in, phi_reason
from ichal.io.stack import CtStack

# Transfer syntaxes that are lossy by definition (PS3.5 §8, Table A-1): JPEG Baseline/Extended,
# JPEG-LS near-lossless, JPEG 2000 and HTJ2K (lossy-capable forms), MPEG/HEVC video.
LOSSY_TRANSFER_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.203",
        *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)),
    }
)

_SERIES_CODES = (TOO_FEW_FRAMES, INCONSISTENT_GEOMETRY)


@dataclass
class _Image:
    ds: Dataset
    series_uid: str
    rows: int
    columns: int


def parse_dicom(data: bytes) -> Dataset:
    """Parses one DICOM file (with or without preamble); CORRUPT_DICOM when it does not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        raise InputRejected(CORRUPT_DICOM, "a DICOM file could not be parsed") from None
    if "SOPClassUID" not in ds:
        raise InputRejected(CORRUPT_DICOM, "a DICOM file has no SOPClassUID (truncated or not DICOM)")
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        raise InputRejected(CORRUPT_DICOM, f"a DICOM file has an unreadable {keyword}") from None
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()


def _number(ds: Dataset, keyword: str, code: str) -> float:
    try:
        value = float(ds[keyword].value)
    except KeyError:
        raise InputRejected(code, f"a CT image has no {keyword}") from None
    except Exception:
        raise InputRejected(code, f"a CT image has an unreadable {keyword}") from None
    if not math.isfinite(value):
        raise InputRejected(code, f"a CT image has a non-finite {keyword}")
    return value


def _numbers(ds: Dataset, keyword: str, count: int) -> np.ndarray:
    try:
        element = ds[keyword]
        values = np.array([float(v) for v in element.value], dtype=np.float64)
    except KeyError:
        raise InputRejected(INCONSISTENT_GEOMETRY, f"a CT image has no {keyword}") from None
    except Exception:
        raise InputRejected(INCONSISTENT_GEOMETRY, f"a CT image has an unreadable {keyword}") from None
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise InputRejected(INCONSISTENT_GEOMETRY, f"a CT image has a malformed {keyword}")
    return values


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        implicit, _little = ds.original_encoding
        uid = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = uid
    return UID(str(uid))


def _check_pixel_length(ds: Dataset, rows: int, columns: int) -> None:
    if _transfer_syntax(ds).is_encapsulated:
        return
    try:
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        length = len(ds.PixelData)
    except Exception:
        raise InputRejected(CORRUPT_DICOM, "a CT image has unreadable pixel attributes") from None
    expected = (rows * columns * frames * samples * bits + 7) // 8
    if length not in (expected, expected + (expected % 2)):
        raise InputRejected(
            CORRUPT_DICOM,
            f"a CT image holds {length} bytes of pixel data where Rows × Columns × BitsAllocated "
            f"declare {expected}",
        )


def _classify(ds: Dataset) -> _Image | None:
    has_pixels = "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    sop_class = _text(ds, "SOPClassUID")
    if not has_pixels:
        if "Rows" in ds or sop_class in (CTImageStorage, EnhancedCTImageStorage):
            raise InputRejected(CORRUPT_DICOM, "an image object has no pixel data (truncated file?)")
        return None  # not an image (DICOMDIR, SR, presentation state, …)
    modality = _text(ds, "Modality").upper()
    if modality != "CT":
        shown = re.sub(r"[^A-Z0-9_ ]", "?", modality)[:16] or "missing"
        raise InputRejected(WRONG_MODALITY, f"an image object has Modality {shown}, not CT")
    number_of_frames = _text(ds, "NumberOfFrames")
    if sop_class == EnhancedCTImageStorage or (number_of_frames not in ("", "1")):
        raise InputRejected(UNREADABLE_ARCHIVE, "multi-frame (Enhanced) CT objects are not supported")
    if sop_class != CTImageStorage:
        return None  # secondary capture and other non-CT-image classes with Modality CT
    syntax = _transfer_syntax(ds)
    if _text(ds, "LossyImageCompression") == "01" or str(syntax) in LOSSY_TRANSFER_SYNTAXES:
        # Lossy re-encoding moves HU by tens of units in brain tissue: blood (50–90 HU) is no longer
        # reliably separable from parenchyma, so such studies are refused rather than scored.
        raise InputRejected(LOSSY_COMPRESSION, f"a CT image was lossy-compressed (transfer syntax {syntax})")
    if "LOCALIZER" in _text(ds, "ImageType").upper().split("\\"):
        return None
    if "PixelData" not in ds:
        raise InputRejected(CORRUPT_DICOM, "a CT image has no integer pixel data")
    rows = int(_number(ds, "Rows", CORRUPT_DICOM))
    columns = int(_number(ds, "Columns", CORRUPT_DICOM))
    if rows < 1 or columns < 1:
        raise InputRejected(CORRUPT_DICOM, "a CT image has zero Rows or Columns")
    for keyword in ("BitsAllocated", "PixelRepresentation", "RescaleSlope", "RescaleIntercept"):
        _number(ds, keyword, CORRUPT_DICOM)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputRejected(CORRUPT_DICOM, "a CT image has more than one sample per pixel")
    series_uid = _text(ds, "SeriesInstanceUID")
    if not series_uid:
        raise InputRejected(CORRUPT_DICOM, "a CT image has no SeriesInstanceUID")
    _check_pixel_length(ds, rows, columns)
    return _Image(ds=ds, series_uid=series_uid, rows=rows, columns=columns)


def _decode(image: _Image) -> np.ndarray:
    ds = image.ds
    syntax = _transfer_syntax(ds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception:
        if syntax.is_compressed:
            shown = str(syntax) if syntax.is_valid else "(malformed UID)"
            raise InputRejected(
                UNREADABLE_ARCHIVE, f"pixel data in transfer syntax {shown} cannot be decoded here"
            ) from None
        raise InputRejected(CORRUPT_DICOM, "a CT image's pixel data could not be decoded") from None
    if pixels.shape != (image.rows, image.columns):
        raise InputRejected(CORRUPT_DICOM, "a CT image's decoded pixels do not match Rows × Columns")
    slope = _number(ds, "RescaleSlope", CORRUPT_DICOM)
    intercept = _number(ds, "RescaleIntercept", CORRUPT_DICOM)
    return (pixels.astype(np.float64) * slope + intercept).astype(np.float32)


def _series_stack(images: list[_Image], limits: InputLimits, source: str) -> CtStack:
    n = len(images)
    if n < limits.min_frames:
        raise InputRejected(
            TOO_FEW_FRAMES, f"a series has {n} frames, fewer than the minimum of {limits.min_frames}"
        )
    if len({(im.rows, im.columns) for im in images}) > 1:
        raise InputRejected(INCONSISTENT_GEOMETRY, "frames of one series differ in Rows/Columns")
    spacing = np.stack([_numbers(im.ds, "PixelSpacing", 2) for im in images])
    if np.any(spacing <= 0):
        raise InputRejected(INCONSISTENT_GEOMETRY, "a series has a PixelSpacing that is not positive")
    if np.max(np.abs(spacing / spacing[0] - 1.0)) > 1e-3:
        raise InputRejected(INCONSISTENT_GEOMETRY, "frames of one series differ in PixelSpacing")
    orientation = np.stack([_numbers(im.ds, "ImageOrientationPatient", 6) for im in images])
    if np.max(np.abs(orientation - orientation[0])) > 1e-3:
        raise InputRejected(INCONSISTENT_GEOMETRY, "frames of one series differ in ImageOrientationPatient")
    row_dir, col_dir = orientation[0, :3], orientation[0, 3:]
    if (
        abs(np.linalg.norm(row_dir) - 1.0) > 1e-2
        or abs(np.linalg.norm(col_dir) - 1.0) > 1e-2
        or abs(float(row_dir @ col_dir)) > 1e-2
    ):
        raise InputRejected(
            INCONSISTENT_GEOMETRY, "ImageOrientationPatient is not two orthonormal directions"
        )
    row_dir, col_dir = row_dir / np.linalg.norm(row_dir), col_dir / np.linalg.norm(col_dir)
    normal = np.cross(row_dir, col_dir)
    normal /= np.linalg.norm(normal)
    tilt = math.degrees(math.acos(min(1.0, abs(float(normal[2])))))
    if tilt > limits.max_tilt_degrees:
        raise InputRejected(
            INCONSISTENT_GEOMETRY,
            f"slices are not axial: their normal is {tilt:.0f}° from the patient z axis "
            f"(limit {limits.max_tilt_degrees:.0f}°)",
        )
    if normal[2] < 0:
        normal = -normal
    positions = np.stack([_numbers(im.ds, "ImagePositionPatient", 3) for im in images])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    gaps = np.diff(along)
    if np.any(gaps < 1e-3):
        raise InputRejected(INCONSISTENT_GEOMETRY, "two frames of one series share a slice position")
    median: float | None = None
    if len(gaps):
        median = float(np.median(gaps))
        deviation = float(np.max(np.abs(gaps - median)))
        if deviation > limits.slice_gap_tolerance * median:
            raise InputRejected(
                INCONSISTENT_GEOMETRY,
                f"uneven slice gaps: from {gaps.min():.3g} to {gaps.max():.3g} mm "
                f"around a median of {median:.3g} mm",
            )
    offsets = positions[order] - positions[order[0]]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    if float(np.max(np.linalg.norm(in_plane, axis=1))) > float(np.max(spacing[0])):
        raise InputRejected(
            INCONSISTENT_GEOMETRY, "frames of one series are shifted in-plane against each other"
        )

    hu = np.empty((n, images[0].rows, images[0].columns), dtype=np.float32)
    for index, image_index in enumerate(order):
        hu[index] = _decode(images[int(image_index)])
    pixel_spacing = (float(spacing[0, 0]), float(spacing[0, 1]))
    # LPS affine of voxel (column, row, frame) as stored; it follows each reorientation below.
    lps = np.eye(4)
    lps[:3, 0] = row_dir * pixel_spacing[1]
    lps[:3, 1] = col_dir * pixel_spacing[0]
    lps[:3, 2] = (positions[order[-1]] - positions[order[0]]) / (n - 1) if n > 1 else normal
    lps[:3, 3] = positions[order[0]]
    if abs(row_dir[1]) > abs(row_dir[0]):
        hu = hu.transpose(0, 2, 1)
        row_dir, col_dir = col_dir, row_dir
        pixel_spacing = (pixel_spacing[1], pixel_spacing[0])
        lps[:, [0, 1]] = lps[:, [1, 0]]
    if row_dir[0] < 0:
        hu = hu[:, :, ::-1]
        lps[:3, 3] += (hu.shape[2] - 1) * lps[:3, 0]
        lps[:3, 0] = -lps[:3, 0]
    if col_dir[1] < 0:
        hu = hu[:, ::-1, :]
        lps[:3, 3] += (hu.shape[1] - 1) * lps[:3, 1]
        lps[:3, 1] = -lps[:3, 1]
    return CtStack(
        hu=np.ascontiguousarray(hu),
        pixel_spacing=pixel_spacing,
        slice_spacing=median,
        source=source,
        series_uid=images[0].series_uid,
        positions=tuple(float(p) for p in along),
        affine=np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps,
    )


def _series_key(images: list[_Image]) -> tuple[float, str]:
    try:
        number = float(images[0].ds.get("SeriesNumber", math.inf))
    except Exception:
        number = math.inf
    return (number, images[0].series_uid)


def stacks_from_dicom_files(
    files: Iterable[tuple[str, bytes]], limits: InputLimits, source: str
) -> list[CtStack]:
    """One ``CtStack`` per CT series among ``files`` (name, bytes), checked as the module says.

    Names are used only to decide what counts as DICOM upstream; they never appear in a reason.
    """
    datasets = [parse_dicom(data) for _name, data in files]
    if not datasets:
        raise InputRejected(UNREADABLE_ARCHIVE, "the input holds no DICOM files")
    if limits.check_phi:
        try:
            found = find_phi_in(datasets, allowed_private_creators=limits.allowed_private_creators)
        except Exception:
            raise InputRejected(CORRUPT_DICOM, "a DICOM file could not be parsed") from None
        if found:
            raise InputRejected(
                PHI_PRESENT,
                phi_reason("DICOM objects still carry identifying attributes (PS3.15 Annex E)", found),
            )
    images = [image for image in (_classify(ds) for ds in datasets) if image is not None]
    if not images:
        raise InputRejected(
            WRONG_MODALITY,
            "the input holds no CT image (only non-image objects, localizers or secondary captures)",
        )
    by_series: dict[str, list[_Image]] = {}
    for image in images:
        by_series.setdefault(image.series_uid, []).append(image)
    groups = sorted(by_series.values(), key=_series_key)
    stacks: list[CtStack] = []
    first_failure: InputRejected | None = None
    for index, group in enumerate(groups, start=1):
        description = f"{source}, series {index} of {len(groups)}, {len(group)} DICOM files"
        try:
            stacks.append(_series_stack(group, limits, description))
        except InputRejected as rejection:
            if not limits.skip_invalid_series or rejection.code not in _SERIES_CODES:
                raise
            first_failure = first_failure or rejection
    if not stacks:
        assert first_failure is not None
        raise first_failure
    return stacks
