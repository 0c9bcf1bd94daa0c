"""``read_stacks`` / ``read_stack``: one entry point for every input a study can arrive as.

Sources:

* ``bytes`` / ``bytearray`` / ``memoryview``, or a readable binary file object: the content decides;
* a path (``str`` or ``os.PathLike``) to a file: the content decides (the extension only helps for
  DICOM files without preamble);
* a path to a directory: every file below it that counts as DICOM (``ichal.io.archive``);
* ``"s3://bucket/prefix"`` (with ``s3_client``, or a client built for ``endpoint_url``): one object
  whose key equals the prefix is read like a file; otherwise every object under the prefix
  is read like a directory's files, except that objects whose names rule DICOM out (hidden, or a
  non-DICOM extension such as ``.json``) are not even downloaded. ``version_id`` reads one exact
  object version (the prefix is then the object's key).

Content detection: ``PK\\x03\\x04`` / ``PK\\x05\\x06`` is a zip (an npz when every member is a
``.npy`` and one is ``hu.npy``, else a DICOM archive); ``\\x1f\\x8b`` is gzip (a ``.nii.gz``); a NIfTI-1/-2
header; ``DICM`` at byte 128, or a ``.dcm`` name, is one DICOM file; anything else is
UNREADABLE_ARCHIVE. Sizes are checked against ``InputLimits`` before a file is read or an object
downloaded. Failures of the storage itself (missing bucket, access denied, I/O errors) are not input
rejections and propagate as they are, so that the caller retries rather than quarantines.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ichal.io.archive import (
    PEEK_BYTES,
    check_sizes,
    looks_like_dicom,
    may_be_dicom_name,
    open_zip,
    zip_dicom_members,
)
from ichal.io.dicom import stacks_from_dicom_files
from ichal.io.errors import ARCHIVE_TOO_LARGE, UNREADABLE_ARCHIVE, InputRejected
from ichal.io.limits import DEFAULT_LIMITS, InputLimits
from ichal.io.stack import CtStack
from ichal.io.volumes import nifti_header_kind, read_nifti_bytes, read_npz_bytes

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


def _is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _is_npz(infos: list[zipfile.ZipInfo]) -> bool:
    names = [info.filename for info in infos if not info.is_dir()]
    return bool(names) and all(name.endswith(".npy") for name in names) and "hu.npy" in names


def _read_zip(fileobj: BinaryIO, data: bytes | None, limits: InputLimits, source: str) -> list[CtStack]:
    archive, infos = open_zip(fileobj, limits)
    with archive:
        if _is_npz(infos):
            if data is None:
                fileobj.seek(0)
                data = fileobj.read()
            return [read_npz_bytes(data, limits, f"npz {source}")]
        files = list(zip_dicom_members(archive, infos))
    if not files:
        raise InputRejected(UNREADABLE_ARCHIVE, "the zip archive holds no DICOM files")
    return stacks_from_dicom_files(files, limits, f"DICOM zip {source}")


def _read_content(data: bytes, name: str, limits: InputLimits, source: str) -> list[CtStack]:
    head = data[: PEEK_BYTES * 4]
    if _is_zip(head):
        return _read_zip(io.BytesIO(data), data, limits, source)
    if head[:2] == b"\x1f\x8b" or nifti_header_kind(head) is not None:
        return [read_nifti_bytes(data, limits, f"NIfTI {source}")]
    if looks_like_dicom(name or "input", head):
        return stacks_from_dicom_files([(name, data)], limits, f"DICOM file {source}")
    raise InputRejected(UNREADABLE_ARCHIVE, "the input is not a zip, DICOM, NIfTI or npz file")


def _read_file(path: Path, limits: InputLimits) -> list[CtStack]:
    size = path.stat().st_size
    check_sizes([size], limits, "the file")
    with path.open("rb") as handle:
        head = handle.read(PEEK_BYTES)
        handle.seek(0)
        if _is_zip(head):
            return _read_zip(handle, None, limits, str(path))
        data = handle.read(limits.max_total_bytes + 1)
    return _read_content(data, path.name, limits, str(path))


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(directory) / name


def _read_directory(root: Path, limits: InputLimits) -> list[CtStack]:
    paths = list(_walk(root))
    check_sizes([p.stat().st_size for p in paths], limits, "the directory")
    files: list[tuple[str, bytes]] = []
    for path in paths:
        relative = str(path.relative_to(root))
        with path.open("rb") as handle:
            head = handle.read(PEEK_BYTES)
            if looks_like_dicom(relative, head):
                handle.seek(0)
                files.append((relative, handle.read()))
    if not files:
        raise InputRejected(UNREADABLE_ARCHIVE, "the directory holds no DICOM files")
    return stacks_from_dicom_files(files, limits, f"DICOM directory {root}")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix


def _download(client: Any, bucket: str, key: str, size: int, version_id: str | None = None) -> bytes:
    kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id is not None:
        kwargs["VersionId"] = version_id
    body = client.get_object(**kwargs)["Body"]
    try:
        data = body.read(size + 1)
    finally:
        body.close()
    if len(data) > size:
        raise InputRejected(ARCHIVE_TOO_LARGE, "an object grew beyond its listed size while it was read")
    return data


def read_s3(
    bucket: str,
    prefix: str,
    *,
    s3_client: Any = None,
    endpoint_url: str | None = None,
    version_id: str | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> list[CtStack]:
    """Every stack under ``s3://bucket/prefix`` (see the module docstring)."""
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3", endpoint_url=endpoint_url)
    uri = f"s3://{bucket}/{prefix}"
    if version_id is not None:
        head = s3_client.head_object(Bucket=bucket, Key=prefix, VersionId=version_id)
        size = int(head["ContentLength"])
        check_sizes([size], limits, "the object")
        return _read_content(_download(s3_client, bucket, prefix, size, version_id), prefix, limits, uri)
    objects: list[tuple[str, int]] = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith("/"):
                objects.append((entry["Key"], int(entry["Size"])))
            if len(objects) > limits.max_files:
                check_sizes([size for _, size in objects], limits, "the S3 prefix")
    if not objects:
        raise InputRejected(UNREADABLE_ARCHIVE, "no objects under the S3 prefix")
    check_sizes([size for _, size in objects], limits, "the S3 prefix")
    exact = [(key, size) for key, size in objects if key == prefix]
    if exact:
        key, size = exact[0]
        return _read_content(_download(s3_client, bucket, key, size), key, limits, uri)
    files: list[tuple[str, bytes]] = []
    for key, size in sorted(objects):
        relative = key[len(prefix) :].lstrip("/")
        if not may_be_dicom_name(relative):
            continue  # manifests, reports, thumbnails: not downloaded
        data = _download(s3_client, bucket, key, size)
        if looks_like_dicom(relative, data[:PEEK_BYTES]):
            files.append((relative, data))
    if not files:
        raise InputRejected(UNREADABLE_ARCHIVE, "the S3 prefix holds no DICOM files")
    return stacks_from_dicom_files(files, limits, f"DICOM objects {uri}")


def read_stacks(
    source: Source,
    *,
    limits: InputLimits = DEFAULT_LIMITS,
    s3_client: Any = None,
    endpoint_url: str | None = None,
    version_id: str | None = None,
    name: str = "",
) -> list[CtStack]:
    """Every CT stack in ``source`` (one per DICOM series), validated; raises ``InputRejected``.

    ``name`` labels in-memory sources in ``CtStack.source`` (and, for a lone DICOM file, its suffix
    helps recognise it).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        check_sizes([len(data)], limits, "the input")
        return _read_content(data, name, limits, name or "bytes")
    if isinstance(source, str) and source.startswith("s3://"):
        bucket, prefix = parse_s3_uri(source)
        return read_s3(
            bucket,
            prefix,
            s3_client=s3_client,
            endpoint_url=endpoint_url,
            version_id=version_id,
            limits=limits,
        )
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _read_directory(path, limits)
        return _read_file(path, limits)
    if hasattr(source, "read"):
        data = source.read(limits.max_total_bytes + 1)
        check_sizes([len(data)], limits, "the input")
        return _read_content(data, name, limits, name or "stream")
    raise TypeError(f"unsupported source type {type(source).__name__}")


def read_stack(source: Source, **kwargs: Any) -> CtStack:
    """The one stack of a single-series source (``read_stacks`` for studies with several series).

    Raises ``ValueError`` when the source holds several series (that is not a rejection).
    """
    stacks = read_stacks(source, **kwargs)
    if len(stacks) != 1:
        raise ValueError(f"the source holds {len(stacks)} series; use read_stacks to read them all")
    return stacks[0]
