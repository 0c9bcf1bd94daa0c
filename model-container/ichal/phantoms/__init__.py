"""Synthetic head-CT phantoms with exact hemorrhage masks, and writers for DICOM, NIfTI and npz.

Simulation only: no patient data, not a clinical result. Definitions: ``ichal.phantoms.generator``.
"""

from ichal.phantoms.generator import (
    HEMORRHAGE_TYPES,
    SLICE_SPACING_MM,
    Lesion,
    PhantomStack,
    generate_pool,
    generate_stack,
    pool_seeds,
)
from ichal.phantoms.writers import (
    DEIDENTIFICATION_METHOD,
    dataset_bytes,
    frame_datasets,
    nifti_affine,
    write_dicom_zip,
    write_mask_nifti,
    write_nifti,
    write_npz,
)

__all__ = [
    "DEIDENTIFICATION_METHOD",
    "HEMORRHAGE_TYPES",
    "SLICE_SPACING_MM",
    "Lesion",
    "PhantomStack",
    "dataset_bytes",
    "frame_datasets",
    "generate_pool",
    "generate_stack",
    "nifti_affine",
    "pool_seeds",
    "write_dicom_zip",
    "write_mask_nifti",
    "write_nifti",
    "write_npz",
]
