import json
import time

import numpy as np
import pytest
from scipy import ndimage

from ichal.phantoms import HEMORRHAGE_TYPES, generate_pool, generate_stack, pool_seeds

SIZE = 96


@pytest.fixture(scope="module")
def positives():
    return [generate_stack(seed, negative=False, size=SIZE) for seed in range(30)]


def test_same_seed_same_stack_and_different_seeds_differ():
    a = generate_stack(11, size=64)
    b = generate_stack(11, size=64)
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.lesions == b.lesions and a.negative == b.negative
    c = generate_stack(12, size=64)
    assert a.hu.shape != c.hu.shape or not np.array_equal(a.hu, c.hu)


def test_full_size_geometry_and_speed():
    started = time.perf_counter()
    stack = generate_stack(3, size=512, frames=32)
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0  # typically 0.3–0.5 s on one core; generous for shared CI machines
    assert stack.hu.shape == (32, 512, 512) and stack.hu.dtype == np.float32
    assert stack.mask.shape == stack.hu.shape and stack.mask.dtype == np.bool_
    assert 0.45 <= stack.pixel_spacing[0] <= 0.5 and stack.pixel_spacing[0] == stack.pixel_spacing[1]
    assert stack.slice_thickness == 5.0 and stack.slice_spacing == 5.0
    np.testing.assert_allclose(np.diff(stack.positions), 5.0)


def test_frame_counts_and_hu_ranges():
    frame_counts = set()
    for seed in range(12):
        stack = generate_stack(seed, negative=True, size=64)
        frame_counts.add(stack.frames)
        assert 27 <= stack.frames <= 38
        assert stack.hu.min() >= -1024 and stack.hu.max() <= 3071
        corner = stack.hu[:, :6, :6]
        assert abs(float(corner.mean()) + 1000.0) < 2.0  # air
        assert 4.0 < float(corner.std()) < 10.5  # noise sd 5–10 HU (air tails are clipped at −1024)
        bone = stack.hu[stack.hu > 400]
        assert 700 <= float(np.median(bone)) <= 1500
    assert len(frame_counts) > 3


def test_brain_parenchyma_csf_and_shrinking_cross_section():
    stack = generate_stack(5, negative=True, size=256, frames=32)
    spacing = stack.pixel_spacing[0]
    mid = stack.frames // 2
    centre = np.array(stack.hu.shape[1:]) / 2
    # White matter 30 mm lateral and 30 mm posterior of the head centre: brain HU.
    r, c = (centre + np.array([30, 30]) / spacing).astype(int)
    assert 20.0 <= float(stack.hu[mid, r - 4 : r + 5, c - 4 : c + 5].mean()) <= 45.0
    # Intracranial area (voxels in [−10, 60] HU) is largest in the middle and shrinks to both ends.
    soft = [(np.abs(frame - 25.0) < 35.0).sum() for frame in stack.hu]
    assert soft[mid] > soft[0] and soft[mid] > soft[-1]
    assert soft[-1] < 0.6 * max(soft)
    # CSF (ventricles) near the centre of a ventricle-level frame is darker than brain.
    levels = [k for k in range(stack.frames) if 0.45 <= k / (stack.frames - 1) <= 0.6]
    darkest = min(float(ndimage.uniform_filter(stack.hu[k], 5)[96:160, 96:160].min()) for k in levels)
    assert darkest < 15.0


def test_negative_stacks_have_empty_masks():
    for seed in range(5):
        stack = generate_stack(seed, negative=True, size=64)
        assert stack.negative and stack.lesions == []
        assert not stack.mask.any() and not stack.labels.any()


def test_all_five_types_appear_with_counts_sizes_and_faint_ones(positives):
    types = {lesion.type for stack in positives for lesion in stack.lesions}
    assert types == set(HEMORRHAGE_TYPES)
    counts = [len(stack.lesions) for stack in positives]
    assert min(counts) >= 1 and max(counts) >= 3
    volumes = [lesion.volume_ml for stack in positives for lesion in stack.lesions]
    assert min(volumes) < 0.5 and max(volumes) > 20.0  # tiny to huge
    faint = [lesion for stack in positives for lesion in stack.lesions if lesion.faint]
    assert faint and all(42.0 <= lesion.hu <= 48.0 for lesion in faint)
    acute = [lesion for stack in positives for lesion in stack.lesions if not lesion.faint]
    assert all(55.0 <= lesion.hu <= 85.0 for lesion in acute)


def test_masks_are_exact(positives):
    for stack in positives[:12]:
        clean = generate_stack(stack.seed, negative=True, size=SIZE)  # same head, same noise, no lesions
        assert clean.hu.shape == stack.hu.shape
        changed = stack.hu != clean.hu
        assert np.all(changed[stack.mask])
        extra = changed & ~stack.mask
        assert np.all(stack.hu[extra] < clean.hu[extra])  # only the oedema rim, darker, lies outside the mask
        assert np.array_equal(stack.labels > 0, stack.mask)
        assert sum(lesion.voxels for lesion in stack.lesions) == int(stack.mask.sum())
        for code, kind in enumerate(HEMORRHAGE_TYPES, start=1):
            owned = sum(lesion.voxels for lesion in stack.lesions if lesion.type == kind)
            assert owned == int((stack.labels == code).sum())
        # Mask voxels hold the lesion's blood density up to noise (and a ±1 HU texture).
        for code, kind in enumerate(HEMORRHAGE_TYPES, start=1):
            of_kind = [lesion for lesion in stack.lesions if lesion.type == kind]
            if len(of_kind) == 1 and of_kind[0].voxels > 200:
                residual = stack.hu[stack.labels == code] - of_kind[0].hu
                assert abs(float(residual.mean())) < 1.5
                assert 0.8 * stack.noise_sd < float(residual.std()) < 1.25 * stack.noise_sd + 1.0
        values = stack.hu[stack.mask]
        assert values.min() >= 41.0 - 5 * stack.noise_sd and values.max() <= 86.0 + 5 * stack.noise_sd
        # Hemorrhage lies inside the skull: beneath every mask voxel was soft tissue, never bone or air.
        beneath = clean.hu[stack.mask]
        assert beneath.max() < 60 + 5 * stack.noise_sd and beneath.min() > -50 - 5 * stack.noise_sd


def test_lesion_types_sit_where_they_belong(positives):
    checked = set()
    for stack in positives:
        clean = generate_stack(stack.seed, negative=True, size=SIZE)
        bone = clean.hu > 400
        near_bone = ndimage.binary_dilation(bone, structure=np.ones((1, 3, 3)), iterations=2)
        for code, kind in enumerate(HEMORRHAGE_TYPES, start=1):
            voxels = stack.labels == code
            if voxels.sum() < 20:
                continue
            if kind in ("epidural", "subdural"):
                assert np.mean(near_bone[voxels]) > 0.3  # against the inner skull
            if kind in ("subarachnoid", "intraventricular"):
                # blood where there was CSF (3–8 HU), with some cortex around it
                assert float(np.mean(clean.hu[voxels])) < 22.0
            if kind == "intraparenchymal":
                assert float(np.mean(clean.hu[voxels])) > 15.0 and np.mean(near_bone[voxels]) < 0.5
            checked.add(kind)
    assert checked == set(HEMORRHAGE_TYPES)


def test_pool_has_exact_negative_fraction_and_reproducible_members():
    pool = list(generate_pool(10, seed=7, negative_fraction=0.3, size=48, frames=27))
    assert sum(stack.negative for stack in pool) == 3
    assert all(stack.mask.any() for stack in pool if not stack.negative)
    seeds = pool_seeds(10, 7)
    assert [stack.seed for stack in pool] == seeds
    again = generate_stack(seeds[4], negative=pool[4].negative, size=48, frames=27)
    np.testing.assert_array_equal(again.hu, pool[4].hu)


def test_lesion_summaries_serialise(positives):
    lesion = positives[0].lesions[0]
    record = json.loads(json.dumps(lesion.as_dict()))
    assert record["type"] in HEMORRHAGE_TYPES and record["voxels"] == lesion.voxels
    assert record["frames"] == list(lesion.frames) and len(record["center_mm"]) == 3


def test_command_line_writes_a_readable_pool_and_manifest(tmp_path):
    from ichal.io import read_stack
    from ichal.phantoms.__main__ import main

    args = ["--out", str(tmp_path), "--count", "3", "--seed", "5", "--size", "32", "--frames", "20"]
    assert main(args + ["--format", "dicom", "--format", "nifti", "--labeled"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [entry["seed"] for entry in manifest["stacks"]] == pool_seeds(3, 5)
    for entry in manifest["stacks"]:
        assert set(entry["files"]) == {"dicom", "nifti", "npz"}
        expected = generate_stack(entry["seed"], negative=entry["negative"], size=32, frames=20)
        for kind in ("dicom", "nifti"):
            read = read_stack(tmp_path / entry["files"][kind])
            assert float(np.max(np.abs(read.hu - expected.hu))) <= 0.5 + 1e-4
        with np.load(tmp_path / entry["files"]["npz"]) as data:
            np.testing.assert_array_equal(data["mask"], expected.mask)
        assert entry["mask_voxels"] == int(expected.mask.sum())


def test_command_line_masks_lie_on_the_grid_the_container_reads(tmp_path):
    import nibabel as nib

    from ichal.io import read_stack
    from ichal.phantoms.__main__ import main

    args = ["--out", str(tmp_path), "--count", "2", "--seed", "3", "--size", "32", "--frames", "20"]
    assert main(args + ["--format", "dicom", "--masks", "--negative-fraction", "0"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["stacks"]:
        expected = generate_stack(entry["seed"], negative=entry["negative"], size=32, frames=20)
        image = nib.load(tmp_path / entry["files"]["mask"])
        read = read_stack(tmp_path / entry["files"]["dicom"])
        np.testing.assert_allclose(image.affine, read.geometry()["affine"], atol=1e-4)
        data = np.asarray(image.dataobj).transpose(2, 1, 0)  # (column, row, frame) → [frame, row, column]
        assert image.get_data_dtype() == np.uint8 and list(data.shape) == read.geometry()["shape"]
        np.testing.assert_array_equal(data > 0, expected.mask)
        np.testing.assert_array_equal(data[expected.mask], expected.labels[expected.mask] + 1)
        assert (
            int(data.max()) <= 1 + len(HEMORRHAGE_TYPES)
            and str(image.header["descrip"].item(), "ascii") == ""
        )


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        generate_stack(-1)
    with pytest.raises(ValueError):
        generate_stack(0, size=8)
    with pytest.raises(ValueError):
        list(generate_pool(3, 0, negative_fraction=1.5))
    with pytest.raises(ValueError, match="lesion_contrast must be one of drawn, acute, faint"):
        generate_stack(0, lesion_contrast="subtle")


@pytest.mark.parametrize("seed", [0, 4, 9, 17])
def test_forced_contrast_changes_only_the_lesion_density(seed):
    """Paired phantoms: same head, noise, lesion shapes and mask; only the blood density differs."""
    drawn = generate_stack(seed, negative=False, size=SIZE)
    acute = generate_stack(seed, negative=False, size=SIZE, lesion_contrast="acute")
    faint = generate_stack(seed, negative=False, size=SIZE, lesion_contrast="faint")
    for forced, want in ((acute, False), (faint, True)):
        np.testing.assert_array_equal(forced.mask, drawn.mask)
        np.testing.assert_array_equal(forced.labels, drawn.labels)
        outside = ~forced.mask
        np.testing.assert_array_equal(forced.hu[outside], drawn.hu[outside])
        assert [(l.type, l.frames, l.voxels, l.center_mm) for l in forced.lesions] == [
            (l.type, l.frames, l.voxels, l.center_mm) for l in drawn.lesions
        ]
        assert all(l.faint is want for l in forced.lesions)
    # Blood density before noise: acute 55–85 HU, faint 42–48 HU (±1 HU texture); noise is zero-mean
    # and shared, so the per-lesion mean difference is the density difference.
    for a, f in zip(acute.lesions, faint.lesions):
        assert 54.0 <= a.hu <= 86.0 and 41.0 <= f.hu <= 49.0
    inside = acute.mask
    assert float(np.mean(acute.hu[inside] - faint.hu[inside])) > 6.0
    # Lesions drawn faint keep their drawn density under "faint"; drawn acute ones under "acute".
    for d, a, f in zip(drawn.lesions, acute.lesions, faint.lesions):
        assert d.hu == (f.hu if d.faint else a.hu)


def test_command_line_forces_the_contrast(tmp_path):
    from ichal.phantoms.__main__ import main

    assert (
        main(
            [
                "--out",
                str(tmp_path),
                "--count",
                "2",
                "--seed",
                "3",
                "--size",
                "48",
                "--frames",
                "12",
                "--negative-fraction",
                "0",
                "--format",
                "npz",
                "--labeled",
                "--lesion-contrast",
                "faint",
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["stacks"]:
        expected = generate_stack(entry["seed"], negative=False, size=48, frames=12, lesion_contrast="faint")
        with np.load(tmp_path / entry["files"]["npz"]) as data:
            np.testing.assert_allclose(data["hu"], expected.hu, atol=0.5)
        assert all(lesion.faint for lesion in expected.lesions)


def test_forced_contrast_pool_matches_per_stack_generation():
    pool = list(generate_pool(5, 21, size=64, lesion_contrast="faint"))
    seeds = pool_seeds(5, 21)
    for stack, seed in zip(pool, seeds):
        again = generate_stack(seed, negative=stack.negative, size=64, lesion_contrast="faint")
        np.testing.assert_array_equal(stack.hu, again.hu)
        assert all(lesion.faint for lesion in stack.lesions)
