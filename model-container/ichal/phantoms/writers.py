"""Writers for phantom stacks: a zip of DICOM CT images, NIfTI, npz.

DICOM (``write_dicom_zip``): one CT Image Storage object per frame (Explicit VR Little Endian), with
the headers a de-identified head-CT export carries and no identifier at all: Patient/Study Type 2
attributes present but empty, ``PatientIdentityRemoved`` YES and ``DeidentificationMethod`` set,
fresh UIDs from ``pydicom.uid.generate_uid``. Pixel encodings:

* ``"uint12"``: BitsAllocated 16, BitsStored 12, unsigned, stored = round(HU) + 1024 in [0, 4095];
* ``"int16"``: BitsAllocated 16, BitsStored 16, signed, stored = round(HU) + 1024;

both with RescaleSlope 1 and RescaleIntercept −1024, so the HU read back equal the phantom's
rounded to the nearest integer (clipped to the encoding's range). Orientation is standard axial
([1, 0, 0, 0, 1, 0]); ImagePositionPatient is (origin x, origin y, z of the frame). The zip's members
have random names and a random order (seeded by the stack's seed) so that readers must order frames
by position. ``extra_tags`` (keyword → value, applied last to every file) and ``mutate`` (called with
each frame index and dataset) let tests plant identifiers or break headers.

NIfTI (``write_nifti``): a 3-D image in RAS+ with voxel (i, j, k) = (column, row, frame), affine
``diag(−col_spacing, −row_spacing, slice_spacing)`` translated to the first voxel's centre (LPS → RAS
flips x and y), qform and sform codes 1 (scanner), units mm; int16 HU (rounded) or float32.

Annotation mask (``write_mask_nifti``): the exact mask as the annotators' label map — NIfTI-1 uint8 on
the same grid and affine as ``write_nifti``, 0 for background and 2 + i for ``HEMORRHAGE_TYPES[i]``
(1 is hemorrhage of no given type; lambdas/contracts/masks.ts), no header text.

npz (``write_npz``): ``hu`` float32 [F, H, W], ``pixel_spacing`` (row, col) mm, ``slice_spacing``,
``positions`` and, unless ``include_mask`` is False, ``mask`` (bool) and ``labels`` (uint8).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Mapping
from typing import BinaryIO, Literal

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ichal.phantoms.generator import PhantomStack

Encoding = Literal["uint12", "int16"]
DEIDENTIFICATION_METHOD = "ichal synthetic phantom: generated, no patient data"
RESCALE_INTERCEPT = -1024


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if len(text) > 16:
        text = f"{value:.9g}"
    return text or "0"


def _stored_pixels(hu: np.ndarray, encoding: Encoding) -> np.ndarray:
    stored = np.rint(hu.astype(np.float64)) - RESCALE_INTERCEPT
    if encoding == "uint12":
        return np.clip(stored, 0, 4095).astype("<u2")
    if encoding == "int16":
        return np.clip(stored, -32768, 32767).astype("<i2")
    raise ValueError(f"unknown encoding {encoding!r}; use 'uint12' or 'int16'")


def frame_datasets(
    stack: PhantomStack,
    *,
    series_uid: str | None = None,
    study_uid: str | None = None,
    encoding: Encoding = "uint12",
    extra_tags: Mapping[str, object] | None = None,
    mutate: Callable[[int, Dataset], None] | None = None,
) -> list[Dataset]:
    """One CT Image Storage dataset per frame, in frame order (see the module docstring)."""
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference = generate_uid()
    rows, cols = int(stack.hu.shape[1]), int(stack.hu.shape[2])
    pixels = _stored_pixels(stack.hu, encoding)
    out: list[Dataset] = []
    for k in range(stack.frames):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ""
        ds.StudyTime = ""
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "ichal phantom"
        ds.ReferringPhysicianName = ""
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        ds.BodyPartExamined = "HEAD"
        ds.SliceThickness = _ds(stack.slice_thickness)
        ds.KVP = "120"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = ""
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(stack.origin[0]), _ds(stack.origin[1]), _ds(float(stack.positions[k]))]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(stack.positions[k]))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.PixelSpacing = [_ds(stack.pixel_spacing[0]), _ds(stack.pixel_spacing[1])]
        ds.BitsAllocated = 16
        ds.BitsStored = 12 if encoding == "uint12" else 16
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0 if encoding == "uint12" else 1
        ds.BurnedInAnnotation = "NO"
        ds.WindowCenter = "40"
        ds.WindowWidth = "80"
        ds.RescaleIntercept = str(RESCALE_INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = pixels[k].tobytes()
        for keyword, value in (extra_tags or {}).items():
            setattr(ds, keyword, value)
        if mutate is not None:
            mutate(k, ds)
        out.append(ds)
    return out


def dataset_bytes(ds: Dataset) -> bytes:
    """A dataset as a DICOM Part 10 file (preamble, DICM, file meta)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_dicom_zip(
    stack: PhantomStack,
    path: str | os.PathLike[str] | BinaryIO,
    *,
    series_uid: str | None = None,
    study_uid: str | None = None,
    extra_tags: Mapping[str, object] | None = None,
    mutate: Callable[[int, Dataset], None] | None = None,
    encoding: Encoding = "uint12",
    shuffle: bool = True,
    compression: int = zipfile.ZIP_DEFLATED,
) -> str:
    """Writes the stack as a zip of one DICOM file per frame; returns the SeriesInstanceUID."""
    series_uid = series_uid or generate_uid()
    datasets = frame_datasets(
        stack,
        series_uid=series_uid,
        study_uid=study_uid,
        encoding=encoding,
        extra_tags=extra_tags,
        mutate=mutate,
    )
    rng = np.random.default_rng(np.random.SeedSequence([stack.seed, 0x2D1C0]))
    order = rng.permutation(len(datasets)) if shuffle else np.arange(len(datasets))
    names = [f"{int(x):012x}.dcm" for x in rng.integers(0, 1 << 48, size=len(datasets))]
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=1) as archive:
        for position, index in enumerate(order):
            archive.writestr(names[position], dataset_bytes(datasets[int(index)]))
    return series_uid


def nifti_affine(stack: PhantomStack) -> np.ndarray:
    """RAS+ affine of voxel (column, row, frame) (see the module docstring)."""
    row_mm, col_mm = stack.pixel_spacing
    affine = np.diag([-col_mm, -row_mm, stack.slice_spacing, 1.0])
    affine[:3, 3] = [-stack.origin[0], -stack.origin[1], float(stack.positions[0])]
    return affine


def write_nifti(
    stack: PhantomStack, path: str | os.PathLike[str], *, dtype: Literal["int16", "float32"] = "int16"
) -> None:
    """Writes the HU stack as NIfTI-1 (``.nii`` or ``.nii.gz`` by the path's suffix)."""
    data = stack.hu.transpose(2, 1, 0)
    if dtype == "int16":
        data = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    elif dtype == "float32":
        data = data.astype(np.float32)
    else:
        raise ValueError(f"unknown dtype {dtype!r}; use 'int16' or 'float32'")
    affine = nifti_affine(stack)
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_slope_inter(1.0, 0.0)
    nib.save(image, os.fspath(path))


def write_npz(
    stack: PhantomStack,
    path: str | os.PathLike[str] | BinaryIO,
    *,
    include_mask: bool = True,
    compressed: bool = False,
) -> None:
    """Writes ``hu``, ``pixel_spacing``, ``slice_spacing``, ``positions`` (and ``mask``, ``labels``)."""
    arrays: dict[str, np.ndarray] = {
        "hu": stack.hu.astype(np.float32, copy=False),
        "pixel_spacing": np.asarray(stack.pixel_spacing, dtype=np.float64),
        "slice_spacing": np.asarray(stack.slice_spacing, dtype=np.float64),
        "positions": np.asarray(stack.positions, dtype=np.float64),
    }
    if include_mask:
        arrays["mask"] = stack.mask
        arrays["labels"] = stack.labels
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def write_mask_nifti(stack: PhantomStack, path: str | os.PathLike[str]) -> None:
    """Writes the stack's exact label map as an annotation mask (see the module docstring)."""
    labels = np.where(stack.labels > 0, stack.labels + 1, 0).astype(np.uint8)
    affine = nifti_affine(stack)
    image = nib.Nifti1Image(np.ascontiguousarray(labels.transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, os.fspath(path))
