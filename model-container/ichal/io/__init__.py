"""Reading and validating CT inputs: DICOM (zip, directory, S3 prefix, file), NIfTI, npz → ``CtStack``.

Every reader either returns stacks that passed every check or raises ``InputRejected(code, reason)``
with one of ``REASON_CODES``; see ``ichal.io.errors`` for the codes, ``ichal.io.dicom`` for the DICOM
checks, ``ichal.io.phi`` for the de-identification check, ``ichal.io.archive`` for the archive
limits, ``ichal.io.volumes`` for NIfTI and npz, and ``ichal.io.stack`` for the orientation of the
result.
"""

from ichal.io.dicom import parse_dicom, stacks_from_dicom_files
from ichal.io.errors import (
    ARCHIVE_TOO_LARGE,
    CORRUPT_DICOM,
    INCONSISTENT_GEOMETRY,
    LOSSY_COMPRESSION,
    NON_FINITE_VOXELS,
    PHI_PRESENT,
    REASON_CODES,
    TOO_FEW_FRAMES,
    UNREADABLE_ARCHIVE,
    WRONG_MODALITY,
    ZIP_BOMB,
    InputRejected,
)
from ichal.io.limits import DEFAULT_LIMITS, InputLimits
from ichal.io.phi import DEID_PROFILE, find_nifti_phi, find_phi, find_phi_in
from ichal.io.read import parse_s3_uri, read_s3, read_stack, read_stacks
from ichal.io.stack import CtStack
from ichal.io.volumes import read_nifti_bytes, read_npz_bytes

__all__ = [
    "ARCHIVE_TOO_LARGE",
    "CORRUPT_DICOM",
    "DEFAULT_LIMITS",
    "DEID_PROFILE",
    "INCONSISTENT_GEOMETRY",
    "LOSSY_COMPRESSION",
    "NON_FINITE_VOXELS",
    "PHI_PRESENT",
    "REASON_CODES",
    "TOO_FEW_FRAMES",
    "UNREADABLE_ARCHIVE",
    "WRONG_MODALITY",
    "ZIP_BOMB",
    "CtStack",
    "InputLimits",
    "InputRejected",
    "find_nifti_phi",
    "find_phi",
    "find_phi_in",
    "parse_dicom",
    "parse_s3_uri",
    "read_nifti_bytes",
    "read_npz_bytes",
    "read_s3",
    "read_stack",
    "read_stacks",
    "stacks_from_dicom_files",
]
