"""The one exception every reader raises for an input that must not be scored, and its reason codes.

``InputRejected(code, reason)``: ``code`` is one of ``REASON_CODES`` (UPPER_SNAKE); ``reason`` is one
human-readable line that names attributes, counts and limits but never an identifying value, a file
name from inside an upload or a value copied from a header. Readers raise it ``from None`` so that
no underlying library message (which might quote a header value) is chained to it.

==========================  ==============================================================
code                        raised when
==========================  ==============================================================
``WRONG_MODALITY``          an image object is not CT (Modality ≠ CT) or there is no CT image
``TOO_FEW_FRAMES``          a series has fewer frames than ``InputLimits.min_frames``
``INCONSISTENT_GEOMETRY``   mixed Rows/Columns/PixelSpacing/orientation within a series,
                            missing geometry, non-axial orientation, duplicate or uneven
                            slice gaps, frames shifted in-plane, a non-3-D volume
``CORRUPT_DICOM``           unparseable or truncated DICOM, missing required attributes,
                            pixel data length ≠ Rows × Columns × frames × samples × bits/8
``UNREADABLE_ARCHIVE``      not a zip / DICOM / NIfTI / npz, a damaged or encrypted archive,
                            an unsupported encoding, no image inside
``ARCHIVE_TOO_LARGE``       declared size or file count over the limits
``ZIP_BOMB``                declared uncompressed size / compressed size over the ratio limit
``NON_FINITE_VOXELS``       NaN or ±inf voxels (NIfTI, npz) or spacings
``PHI_PRESENT``             a DICOM object still carries identifying attributes
``LOSSY_COMPRESSION``       a CT image was lossy-compressed (LossyImageCompression 01 or a
                            lossy transfer syntax): its HU are no longer the scanner's
==========================  ==============================================================
"""

from __future__ import annotations

WRONG_MODALITY = "WRONG_MODALITY"
TOO_FEW_FRAMES = "TOO_FEW_FRAMES"
INCONSISTENT_GEOMETRY = "INCONSISTENT_GEOMETRY"
CORRUPT_DICOM = "CORRUPT_DICOM"
UNREADABLE_ARCHIVE = "UNREADABLE_ARCHIVE"
ARCHIVE_TOO_LARGE = "ARCHIVE_TOO_LARGE"
ZIP_BOMB = "ZIP_BOMB"
NON_FINITE_VOXELS = "NON_FINITE_VOXELS"
PHI_PRESENT = "PHI_PRESENT"
LOSSY_COMPRESSION = "LOSSY_COMPRESSION"

REASON_CODES: frozenset[str] = frozenset(
    {
        WRONG_MODALITY,
        TOO_FEW_FRAMES,
        INCONSISTENT_GEOMETRY,
        CORRUPT_DICOM,
        UNREADABLE_ARCHIVE,
        ARCHIVE_TOO_LARGE,
        ZIP_BOMB,
        NON_FINITE_VOXELS,
        PHI_PRESENT,
        LOSSY_COMPRESSION,
    }
)


class InputRejected(Exception):
    """An input that must be quarantined, never scored: ``code`` (see ``REASON_CODES``) and one line."""

    def __init__(self, code: str, reason: str) -> None:
        if code not in REASON_CODES:
            raise ValueError(f"unknown reason code {code!r}")
        reason = " ".join(str(reason).split())
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def as_record(self) -> dict[str, str]:
        """``{"code": …, "reason": …}`` for a record, a log line or a 4xx body."""
        return {"code": self.code, "reason": self.reason}
