"""Zip archives and file collections, checked against ``InputLimits`` before anything is extracted.

Zip: the central directory is read first and every limit is applied to the sizes it declares: the
number of files, the sum of declared uncompressed sizes (ARCHIVE_TOO_LARGE), and the ratio of
declared uncompressed to compressed size per member and for the whole archive (ZIP_BOMB). Only then
are members read, each at most its declared size (Python's zipfile stops there and checks the CRC),
so a lying header cannot inflate past the limits. Nested archives are never opened.

Which files count as DICOM (in a zip, a directory or an S3 prefix): a file with "DICM" at byte 128;
a file named ``*.dcm``, ``*.dicom``, ``*.dic``, ``*.ima`` or ``DICOMDIR``; a file without an
extension (or with a numeric one, as UID-named files have) that starts like a DICOM data set
without preamble (group 0002 or 0008). Everything else (hidden files, ``__MACOSX/``, text, images,
nested archives) is ignored. A file declared DICOM that does not parse is CORRUPT_DICOM.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from ichal.io.errors import ARCHIVE_TOO_LARGE, UNREADABLE_ARCHIVE, ZIP_BOMB, InputRejected
from ichal.io.limits import InputLimits

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})
PEEK_BYTES = 132


def _suffix(base: str) -> str:
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def is_ignored_name(name: str) -> bool:
    """Hidden files and macOS resource forks."""
    parts = name.replace("\\", "/").split("/")
    base = parts[-1]
    return not base or base.startswith(".") or "__MACOSX" in parts


def may_be_dicom_name(name: str) -> bool:
    """False for names that can be ruled out without reading (hidden, or a non-DICOM extension)."""
    if is_ignored_name(name):
        return False
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = _suffix(base)
    return suffix in DICOM_SUFFIXES or suffix == "" or suffix[1:].isdigit() or base.upper() == "DICOMDIR"


def looks_like_dicom(name: str, head: bytes) -> bool:
    """Whether a file counts as DICOM by its name and first bytes (see the module docstring)."""
    if is_ignored_name(name):
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = _suffix(base)
    if suffix in DICOM_SUFFIXES or base.upper() == "DICOMDIR":
        return True
    if suffix == "" or suffix[1:].isdigit():
        return len(head) >= 8 and int.from_bytes(head[0:2], "little") in (0x0002, 0x0008)
    return False


def check_sizes(sizes: list[int], limits: InputLimits, what: str) -> None:
    """ARCHIVE_TOO_LARGE when the count or the sum of ``sizes`` exceeds the limits."""
    if len(sizes) > limits.max_files:
        raise InputRejected(
            ARCHIVE_TOO_LARGE, f"{what} holds {len(sizes)} files, more than the limit of {limits.max_files}"
        )
    total = sum(sizes)
    if total > limits.max_total_bytes:
        raise InputRejected(
            ARCHIVE_TOO_LARGE,
            f"{what} holds {total} bytes, more than the limit of {limits.max_total_bytes} bytes",
        )


def check_ratio(uncompressed: int, compressed: int, limits: InputLimits, what: str) -> None:
    """ZIP_BOMB when ``uncompressed / compressed`` exceeds the limit (for large enough sizes)."""
    if uncompressed < limits.ratio_check_min_bytes:
        return
    ratio = uncompressed / max(compressed, 1)
    if ratio > limits.max_compression_ratio:
        raise InputRejected(
            ZIP_BOMB,
            f"{what} declares a compression ratio of {ratio:.0f}:1, above the limit of "
            f"{limits.max_compression_ratio:.0f}:1",
        )


def open_zip(fileobj: BinaryIO | str, limits: InputLimits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Opens a zip and checks its declared sizes; returns it with its file entries."""
    try:
        archive = zipfile.ZipFile(fileobj)
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise InputRejected(UNREADABLE_ARCHIVE, "the zip archive is damaged or not a zip archive") from None
    try:
        for info in infos:
            check_ratio(info.file_size, info.compress_size, limits, "a zip member")
        check_ratio(
            sum(i.file_size for i in infos), sum(i.compress_size for i in infos), limits, "the zip archive"
        )
        check_sizes([i.file_size for i in infos], limits, "the zip archive")
    except InputRejected:
        archive.close()
        raise
    return archive, infos


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
    """A member's bytes (at most ``limit``, else all of its declared size); UNREADABLE_ARCHIVE on damage."""
    want = info.file_size if limit is None else min(limit, info.file_size)
    try:
        with archive.open(info) as handle:
            data = handle.read(want + (1 if limit is None else 0))
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError):
        raise InputRejected(
            UNREADABLE_ARCHIVE,
            "a zip member could not be read (damaged, encrypted or unsupported compression)",
        ) from None
    if limit is None and len(data) != info.file_size:
        raise InputRejected(
            UNREADABLE_ARCHIVE, "a zip member's size differs from the size its header declares"
        )
    return data


def zip_dicom_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the members that count as DICOM, in archive order."""
    for info in infos:
        if is_ignored_name(info.filename):
            continue
        head = read_member(archive, info, PEEK_BYTES)  # a DICM preamble makes any name count
        if looks_like_dicom(info.filename, head):
            yield info.filename, read_member(archive, info)


def zip_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    return [info.filename for info in infos]
