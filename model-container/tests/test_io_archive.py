import io
import pickle
import struct
import tarfile
import zipfile

import pytest

from ichal.io import (
    ARCHIVE_TOO_LARGE,
    REASON_CODES,
    UNREADABLE_ARCHIVE,
    ZIP_BOMB,
    InputLimits,
    InputRejected,
    read_stacks,
)
from ichal.phantoms import generate_stack, write_dicom_zip


def rejection(source, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        read_stacks(source, **kwargs)
    return caught.value


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def study_zip() -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(generate_stack(1, negative=False, size=48, frames=22), buffer)
    return buffer.getvalue()


def test_reason_codes_are_the_documented_set():
    assert REASON_CODES == {
        "WRONG_MODALITY",
        "TOO_FEW_FRAMES",
        "INCONSISTENT_GEOMETRY",
        "CORRUPT_DICOM",
        "UNREADABLE_ARCHIVE",
        "ARCHIVE_TOO_LARGE",
        "ZIP_BOMB",
        "NON_FINITE_VOXELS",
        "PHI_PRESENT",
        "LOSSY_COMPRESSION",
    }


def test_input_rejected_shape():
    error = InputRejected("ZIP_BOMB", "a line\nwith  breaks")
    assert error.code == "ZIP_BOMB" and error.reason == "a line with breaks"
    assert str(error) == "ZIP_BOMB: a line with breaks"
    assert error.as_record() == {"code": "ZIP_BOMB", "reason": "a line with breaks"}
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason) == (error.code, error.reason)
    with pytest.raises(ValueError):
        InputRejected("NOT_A_CODE", "x")


def test_zip_bomb_is_caught_before_anything_is_extracted(monkeypatch):
    bomb = zip_bytes({"IM0001.dcm": bytes(32 * 1024 * 1024)})  # 32 MiB of zeros → ~32 KiB
    assert len(bomb) < 100_000

    def no_extraction(*args, **kwargs):
        raise AssertionError("a member was opened before the limits were checked")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_extraction)
    error = rejection(bomb)
    assert error.code == ZIP_BOMB and "200:1" in error.reason


def test_zip_bomb_ratio_is_a_parameter(study_zip):
    strict = InputLimits(max_compression_ratio=1.0, ratio_check_min_bytes=0)
    assert rejection(study_zip, limits=strict).code == ZIP_BOMB


def test_archive_too_large_by_declared_size_and_by_count(study_zip, tmp_path):
    assert rejection(study_zip, limits=InputLimits(max_total_bytes=100_000)).code == ARCHIVE_TOO_LARGE
    assert rejection(study_zip, limits=InputLimits(max_files=5)).code == ARCHIVE_TOO_LARGE
    path = tmp_path / "study.zip"
    path.write_bytes(study_zip)
    assert rejection(path, limits=InputLimits(max_total_bytes=1000)).code == ARCHIVE_TOO_LARGE


def test_large_but_ordinary_study_passes(study_zip):
    assert len(read_stacks(study_zip)) == 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"plain text, not an image\n" * 20,
        bytes(range(256)) * 8,
        zip_bytes({"README.txt": b"hello", "notes/a.json": b"{}"}),
        zip_bytes({}),
    ],
    ids=["empty", "text", "binary", "zip-without-dicom", "empty-zip"],
)
def test_unreadable_inputs(content):
    assert rejection(content).code == UNREADABLE_ARCHIVE


def test_truncated_zip_is_unreadable(study_zip):
    assert rejection(study_zip[: len(study_zip) // 2]).code == UNREADABLE_ARCHIVE


def test_zip_member_failing_its_crc_is_unreadable():
    stored = zip_bytes({"a.dcm": b"\x00" * 128 + b"DICM" + b"\x11" * 400}, compression=zipfile.ZIP_STORED)
    header_length = 30 + len("a.dcm")
    damaged = bytearray(stored)
    damaged[header_length + 200] ^= 0xFF
    assert rejection(bytes(damaged)).code == UNREADABLE_ARCHIVE


def test_tar_gz_is_not_a_known_format():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("a.dcm")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"abcd"))
    assert rejection(buffer.getvalue()).code == UNREADABLE_ARCHIVE


def test_nested_archives_are_not_opened(study_zip):
    outer = zip_bytes({"inner.zip": study_zip})
    assert rejection(outer).code == UNREADABLE_ARCHIVE


def test_member_longer_than_its_declared_size_is_unreadable():
    # A member whose local data is longer than its declared size is read only up to that size and
    # then fails its CRC check.
    payload = b"\x00" * 128 + b"DICM" + b"\x22" * 1000
    stored = bytearray(zip_bytes({"b.dcm": payload}, compression=zipfile.ZIP_STORED))
    directory = stored.rfind(b"PK\x01\x02")
    struct.pack_into("<I", stored, directory + 24, 200)  # central directory: uncompressed size 200
    struct.pack_into("<I", stored, 22, 200)  # local header: uncompressed size 200
    assert rejection(bytes(stored)).code == UNREADABLE_ARCHIVE
