import io
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ichal.io import (
    ARCHIVE_TOO_LARGE,
    INCONSISTENT_GEOMETRY,
    NON_FINITE_VOXELS,
    TOO_FEW_FRAMES,
    UNREADABLE_ARCHIVE,
    ZIP_BOMB,
    InputLimits,
    InputRejected,
    read_stack,
    read_stacks,
)
from ichal.phantoms import generate_stack, nifti_affine, write_nifti, write_npz


@pytest.fixture(scope="module")
def stack():
    return generate_stack(31, negative=False, size=40, frames=22)


def rejection(source, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        read_stacks(source, **kwargs)
    return caught.value


def save(image: nib.Nifti1Image, path: Path) -> Path:
    nib.save(image, str(path))
    return path


def test_nifti_round_trip_int16_gz_and_float32(stack, tmp_path):
    write_nifti(stack, tmp_path / "a.nii.gz")
    read = read_stack(tmp_path / "a.nii.gz")
    assert read.shape == stack.hu.shape
    assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4
    np.testing.assert_allclose(read.pixel_spacing, stack.pixel_spacing, rtol=1e-6)
    assert read.slice_spacing == pytest.approx(5.0)
    write_nifti(stack, tmp_path / "b.nii", dtype="float32")
    exact = read_stack((tmp_path / "b.nii").read_bytes(), name="b.nii")
    np.testing.assert_array_equal(exact.hu, stack.hu)
    assert exact.series_uid is None


def test_nifti_affine_maps_voxels_to_lps_positions(stack):
    # Voxel (col, row, frame) → RAS; LPS is (−x, −y, z): compare with the phantom's own geometry.
    affine = nifti_affine(stack)
    col, row, frame = 7, 11, 5
    ras = affine @ np.array([col, row, frame, 1.0])
    lps = (-ras[0], -ras[1], ras[2])
    expected = (
        stack.origin[0] + col * stack.pixel_spacing[1],
        stack.origin[1] + row * stack.pixel_spacing[0],
        stack.positions[frame],
    )
    np.testing.assert_allclose(lps, expected)


def test_nifti_in_other_axis_orders_is_reoriented(stack, tmp_path):
    data = stack.hu.transpose(2, 1, 0)  # (col, row, frame) in the writer's RAS affine
    affine = nifti_affine(stack)
    # Same voxels stored as (frame, row, col) with the axes of the affine permuted to match …
    swapped = np.ascontiguousarray(data.transpose(2, 1, 0))
    permuted = save(nib.Nifti1Image(swapped, affine[:, [2, 1, 0, 3]]), tmp_path / "p.nii")
    # … and with the column axis mirrored (first column becomes last).
    mirrored_affine = affine.copy()
    mirrored_affine[:3, 0] = -affine[:3, 0]
    mirrored_affine[:3, 3] = affine[:3, 3] + affine[:3, 0] * (data.shape[0] - 1)
    mirrored = save(nib.Nifti1Image(np.ascontiguousarray(data[::-1]), mirrored_affine), tmp_path / "m.nii")
    for path in (permuted, mirrored):
        read = read_stack(path)
        np.testing.assert_array_equal(read.hu, stack.hu)
        np.testing.assert_allclose(read.pixel_spacing, stack.pixel_spacing, rtol=1e-6)
        np.testing.assert_allclose(read.affine, affine, atol=1e-5)  # the grid is where it was


def test_nifti_rejections(stack, tmp_path):
    data = np.ascontiguousarray(stack.hu.transpose(2, 1, 0))
    affine = nifti_affine(stack)
    nan = data.copy()
    nan[3, 4, 5] = np.nan
    assert rejection(save(nib.Nifti1Image(nan, affine), tmp_path / "nan.nii")).code == NON_FINITE_VOXELS
    inf = data.copy()
    inf[0, 0, 0] = np.inf
    assert rejection(save(nib.Nifti1Image(inf, affine), tmp_path / "inf.nii.gz")).code == NON_FINITE_VOXELS
    four_d = np.stack([data, data, data], axis=-1)
    assert rejection(save(nib.Nifti1Image(four_d, affine), tmp_path / "4d.nii")).code == INCONSISTENT_GEOMETRY
    one_volume = save(nib.Nifti1Image(data[..., None], affine), tmp_path / "4d1.nii")
    assert read_stack(one_volume).shape == stack.hu.shape
    t = math.radians(50)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
    oblique = save(nib.Nifti1Image(data, rotation @ affine), tmp_path / "oblique.nii")
    assert rejection(oblique).code == INCONSISTENT_GEOMETRY
    short = save(nib.Nifti1Image(data[:, :, :5], affine), tmp_path / "short.nii")
    assert rejection(short).code == TOO_FEW_FRAMES
    big = save(nib.Nifti1Image(data, affine), tmp_path / "big.nii")
    assert rejection(big, limits=InputLimits(max_total_bytes=1000)).code == ARCHIVE_TOO_LARGE


def test_gzip_bomb_nifti(tmp_path):
    zeros = np.zeros((512, 512, 48), dtype=np.int16)  # 24 MiB of zeros → a few tens of KiB
    path = save(nib.Nifti1Image(zeros, np.eye(4)), tmp_path / "bomb.nii.gz")
    assert path.stat().st_size < 200_000
    assert rejection(path).code == ZIP_BOMB


def test_truncated_nifti_is_unreadable(stack, tmp_path):
    write_nifti(stack, tmp_path / "t.nii", dtype="float32")
    data = (tmp_path / "t.nii").read_bytes()
    assert rejection(data[: len(data) // 2], name="t.nii").code == UNREADABLE_ARCHIVE
    assert rejection(data[:200], name="t.nii").code == UNREADABLE_ARCHIVE


def test_npz_round_trip_and_optional_slice_spacing(stack, tmp_path):
    write_npz(stack, tmp_path / "a.npz")
    read = read_stack(tmp_path / "a.npz")
    np.testing.assert_array_equal(read.hu, stack.hu)
    assert read.pixel_spacing == stack.pixel_spacing and read.slice_spacing == 5.0
    buffer = io.BytesIO()
    np.savez_compressed(buffer, hu=stack.hu, pixel_spacing=np.array(stack.pixel_spacing))
    read = read_stack(buffer.getvalue())
    assert read.slice_spacing is None
    np.testing.assert_array_equal(read.hu, stack.hu)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_npz_rejections(stack):
    spacing = np.array(stack.pixel_spacing)
    bad = stack.hu.copy()
    bad[1, 2, 3] = np.nan
    assert rejection(npz_bytes(hu=bad, pixel_spacing=spacing)).code == NON_FINITE_VOXELS
    assert rejection(npz_bytes(hu=stack.hu, pixel_spacing=np.array([np.inf, 1.0]))).code == NON_FINITE_VOXELS
    assert rejection(npz_bytes(hu=stack.hu[0], pixel_spacing=spacing)).code == INCONSISTENT_GEOMETRY
    assert rejection(npz_bytes(hu=stack.hu, pixel_spacing=np.array([0.5]))).code == INCONSISTENT_GEOMETRY
    assert rejection(npz_bytes(image=stack.hu, pixel_spacing=spacing)).code == UNREADABLE_ARCHIVE
    assert rejection(npz_bytes(hu=stack.hu[:5], pixel_spacing=spacing)).code == TOO_FEW_FRAMES
    pickled = npz_bytes(hu=np.array([{"x": 1}], dtype=object), pixel_spacing=spacing)
    assert rejection(pickled).code == UNREADABLE_ARCHIVE
    zeros = npz_bytes(hu=np.zeros((40, 256, 256), np.float32), pixel_spacing=spacing)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, hu=np.zeros((40, 256, 256), np.float32), pixel_spacing=spacing)
    assert rejection(buffer.getvalue()).code == ZIP_BOMB
    assert len(read_stacks(zeros)) == 1  # uncompressed: large, but not a bomb
