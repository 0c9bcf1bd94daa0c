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
    write_nifti,
    write_npz,
)

__all__ = [
    "HEMORRHAGE_TYPES",
    "SLICE_SPACING_MM",
    "Lesion",
    "PhantomStack",
    "generate_pool",
    "generate_stack",
    "pool_seeds",
    "DEIDENTIFICATION_METHOD",
    "dataset_bytes",
    "frame_datasets",
    "nifti_affine",
    "write_dicom_zip",
    "write_nifti",
    "write_npz",
]
