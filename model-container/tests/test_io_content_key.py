"""The stack's content key (``CtStack.content_sha256``), which the records use to find a study uploaded twice:
equal for the same voxels however they were packed, different when one voxel differs. The independent truth
is hashlib over the array the test builds itself."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest

from ichal.io import read_stacks
from ichal.phantoms import generate_stack, write_dicom_zip, write_nifti, write_npz


@pytest.fixture(scope="module")
def phantom():
    return generate_stack(41, negative=False, size=48, frames=20)


def dicom_bytes(phantom, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(phantom, buffer, **kwargs)
    return buffer.getvalue()


def key_of(data: bytes, name: str) -> str:
    (stack,) = read_stacks(data, name=name)
    return stack.content_sha256()


def test_the_key_is_sha256_of_shape_and_little_endian_float32_voxels(phantom):
    (stack,) = read_stacks(dicom_bytes(phantom), name="a.zip")
    expected = hashlib.sha256(
        np.array(stack.hu.shape, dtype="<i8").tobytes() + stack.hu.astype("<f4").tobytes()
    ).hexdigest()
    assert stack.content_sha256() == expected


def test_the_same_series_repacked_or_given_new_uids_keeps_its_key(phantom):
    first = key_of(dicom_bytes(phantom), "a.zip")
    # Another archive: stored instead of deflated, files in order, new Series and Study UIDs (a re-export).
    repacked = dicom_bytes(
        phantom,
        compression=zipfile.ZIP_STORED,
        shuffle=False,
        series_uid="1.2.826.0.1.3680043.8.498.1",
        study_uid="1.2.3.4",
    )
    assert repacked != dicom_bytes(phantom)
    assert key_of(repacked, "b.zip") == first


def test_nifti_and_npz_of_the_same_voxels_share_a_key_and_gzip_does_not_change_it(phantom, tmp_path):
    write_nifti(phantom, tmp_path / "a.nii", dtype="float32")
    write_nifti(phantom, tmp_path / "a.nii.gz", dtype="float32")
    buffer = io.BytesIO()
    write_npz(phantom, buffer, compressed=True)
    keys = {
        key_of((tmp_path / "a.nii").read_bytes(), "a.nii"),
        key_of((tmp_path / "a.nii.gz").read_bytes(), "a.nii.gz"),
        key_of(buffer.getvalue(), "a.npz"),
    }
    assert len(keys) == 1


def test_a_dicom_series_and_its_int16_nifti_export_share_a_key(phantom, tmp_path):
    # Both hold whole HU values here (the DICOM phantom stores integers, slope 1), in the same orientation after reading.
    dicom = key_of(dicom_bytes(phantom), "a.zip")
    write_nifti(phantom, tmp_path / "a.nii.gz", dtype="int16")
    assert key_of((tmp_path / "a.nii.gz").read_bytes(), "a.nii.gz") == dicom


def test_one_changed_voxel_or_another_phantom_changes_the_key(phantom):
    first = key_of(dicom_bytes(phantom), "a.zip")
    changed = generate_stack(41, negative=False, size=48, frames=20)
    changed.hu[7, 20, 20] += 10.0
    assert key_of(dicom_bytes(changed), "b.zip") != first
    assert key_of(dicom_bytes(generate_stack(42, negative=False, size=48, frames=20)), "c.zip") != first
