"""Validation limits shared by every reader (all are parameters; the defaults suit head CT)."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class InputLimits:
    """Limits applied before and while reading an input.

    * ``min_frames``: fewest frames a series may have (TOO_FEW_FRAMES).
    * ``max_total_bytes``: most bytes an input may declare or hold, uncompressed: the sum of the zip
      members' declared sizes, of a directory's or an S3 prefix's files, a NIfTI's voxel data
      (ARCHIVE_TOO_LARGE). Checked before anything is extracted or downloaded.
    * ``max_files``: most files in an archive, directory or prefix (ARCHIVE_TOO_LARGE).
    * ``max_compression_ratio``: most declared-uncompressed / compressed bytes for a zip member, for
      the whole zip, and for a gzip-compressed NIfTI (ZIP_BOMB); only for sizes of at least
      ``ratio_check_min_bytes``, so tiny, highly compressible files are not flagged.
    * ``max_tilt_degrees``: most angle between the slice normal and the patient z axis for a stack
      still to count as axial (gantry tilt); beyond it INCONSISTENT_GEOMETRY.
    * ``slice_gap_tolerance``: most deviation of any gap between adjacent frames from the median gap,
      as a fraction of the median (INCONSISTENT_GEOMETRY).
    * ``check_phi``: reject DICOM objects and NIfTI headers carrying identifying data (PHI_PRESENT; see
      ``ichal.io.phi``). Only tests reading third-party sample files should turn it off.
    * ``allowed_private_creators``: private creator values (e.g. ``"GEMS_IDEN_01"``) whose private
      data elements the PHI check lets pass; default none (every private element with a value is PHI).
    * ``skip_invalid_series``: when a study holds several series, drop those failing the per-series
      checks (TOO_FEW_FRAMES, INCONSISTENT_GEOMETRY) instead of rejecting the whole input; the input
      is still rejected when no series passes.
    """

    min_frames: int = 20
    max_total_bytes: int = 2 * GIB
    max_files: int = 10_000
    max_compression_ratio: float = 200.0
    ratio_check_min_bytes: int = 1 * MIB
    max_tilt_degrees: float = 30.0
    slice_gap_tolerance: float = 0.1
    check_phi: bool = True
    allowed_private_creators: frozenset[str] = frozenset()
    skip_invalid_series: bool = False


DEFAULT_LIMITS = InputLimits()
