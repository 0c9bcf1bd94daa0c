"""Boundary length and component count: torch vs skimage.measure.perimeter and scipy.ndimage.label."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.measure import perimeter as sk_perimeter

from ichal.features.morphology import (
    DEFAULT_THRESHOLDS,
    component_labels_torch,
    count_components_torch,
    label_components,
    labeling_features,
    perimeter_torch,
)

S8 = np.ones((3, 3), dtype=bool)


def _ref_perimeter(m: np.ndarray) -> float:
    return float(sk_perimeter(m, neighborhood=4))


def _ref_components(m: np.ndarray) -> int:
    return int(ndimage.label(m, structure=S8)[1])


def _shapes() -> dict[str, np.ndarray]:
    """Named 2-D masks covering the edge cases of the brief (all 24×31 unless noted)."""
    h, w = 24, 31
    z = lambda: np.zeros((h, w), dtype=bool)
    out: dict[str, np.ndarray] = {"empty": z(), "full": np.ones((h, w), dtype=bool)}
    m = z()
    m[10, 12] = True
    out["single_pixel"] = m
    m = z()
    m[0, 0] = m[h - 1, w - 1] = m[0, w - 1] = m[h - 1, 0] = True
    out["corner_pixels"] = m
    m = z()
    m[5, 2:29] = True
    m[8:20, 7] = True
    out["thin_lines"] = m
    m = z()
    np.fill_diagonal(m[:, 3:], True)
    out["diagonal_line"] = m
    m = z()
    m[4, 4] = m[5, 5] = m[6, 6] = True
    m[10, 10] = m[11, 9] = True
    out["diagonal_touching"] = m
    m = z()
    m[3:7, 3:7] = True
    m[7:11, 7:11] = True
    out["blocks_touching_at_corner"] = m
    m = z()
    m[2:20, 2:25] = True
    m[6:14, 6:12] = False
    m[9, 15] = False
    out["holes"] = m
    m = z()
    m[2:20, 2:25] = True
    m[4:18, 4:23] = False
    m[8:14, 8:18] = True
    out["ring_with_island"] = m
    m = z()
    m[0:6, 10:20] = True
    m[18:, 0:5] = True
    m[10:15, 27:] = True
    out["touching_border"] = m
    m = z()
    m[::2, ::2] = True
    out["checker_isolated"] = m
    m = z()
    m[::2, :] = True
    m[:, ::3] = True
    out["grid"] = m
    m = z()
    m[(np.add.outer(np.arange(h), np.arange(w)) % 2) == 0] = True
    out["checkerboard_8conn"] = m
    # serpentine: one long 4-connected path (worst case for naive propagation)
    m = z()
    for r in range(0, h, 4):
        m[r, 1 : w - 1] = True
        c = w - 2 if (r // 4) % 2 == 0 else 1
        m[r : min(r + 4, h), c] = True
    out["serpentine"] = m
    # spiral
    m = z()
    top, left, bottom, right = 0, 0, h - 1, w - 1
    while top <= bottom and left <= right:
        m[top, left : right + 1] = True
        m[top : bottom + 1, right] = True
        m[bottom, left : right + 1] = True
        m[top + 2 : bottom + 1, left] = True
        top, left, bottom, right = top + 4, left + 4, bottom - 4, right - 4
        if top <= bottom:
            m[top - 2, left - 2 : left + 1] = True
    out["spiral"] = m
    return out


SHAPES = _shapes()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_perimeter_matches_skimage_on_edge_cases(name: str) -> None:
    m = SHAPES[name]
    for method in ("shift", "conv"):
        got = float(perimeter_torch(torch.from_numpy(m), code_method=method))
        ref = _ref_perimeter(m)
        assert got == pytest.approx(ref, rel=1e-6, abs=1e-9), (name, method)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_components_match_scipy_label_8_connectivity(name: str) -> None:
    m = SHAPES[name]
    assert int(count_components_torch(torch.from_numpy(m))) == _ref_components(m), name


def test_known_values() -> None:
    # isolated pixel: code 1, weight 0; full H×W frame: its outer ring, 2(H+W) - 4 pixels
    assert float(perimeter_torch(torch.from_numpy(SHAPES["single_pixel"]))) == 0.0
    full = np.ones((24, 31), dtype=bool)
    assert float(perimeter_torch(torch.from_numpy(full))) == 2 * (24 + 31) - 4 == _ref_perimeter(full)
    assert int(count_components_torch(torch.from_numpy(SHAPES["diagonal_touching"]))) == 2
    assert int(count_components_torch(torch.from_numpy(SHAPES["checkerboard_8conn"]))) == 1
    assert int(count_components_torch(torch.from_numpy(SHAPES["checker_isolated"]))) == 12 * 16
    assert int(count_components_torch(torch.from_numpy(SHAPES["ring_with_island"]))) == 2


def _random_blobs(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, level: float) -> np.ndarray:
    sig = (0,) * (len(shape) - 2) + (sigma, sigma)
    return ndimage.gaussian_filter(rng.random(shape), sig) > level


@pytest.mark.parametrize("seed", range(4))
def test_batched_random_blobs_match_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sigma = [0.8, 1.5, 3.0, 0.0][seed]
    masks = (
        _random_blobs(rng, (12, 61, 47), sigma, 0.5 + 0.02 * seed)
        if sigma
        else rng.random((12, 61, 47)) > 0.55
    )
    masks[0] = False  # an empty frame inside the batch
    masks[1] = True  # a full frame
    t = torch.from_numpy(masks)
    # small chunks force the chunking / skipping / cropping paths
    per = perimeter_torch(t, max_batch_pixels=5 * 61 * 47).numpy()
    cnt = count_components_torch(t, max_batch_pixels=5 * 61 * 47).numpy()
    for f in range(masks.shape[0]):
        assert per[f] == pytest.approx(_ref_perimeter(masks[f]), rel=1e-6, abs=1e-9)
        assert cnt[f] == _ref_components(masks[f])


def test_degenerate_frame_sizes() -> None:
    rng = np.random.default_rng(7)
    for shape in [(1, 1), (1, 9), (9, 1), (2, 2), (3, 40)]:
        for _ in range(5):
            m = rng.random(shape) > 0.4
            assert float(perimeter_torch(torch.from_numpy(m))) == pytest.approx(
                _ref_perimeter(m), rel=1e-6, abs=1e-9
            )
            assert int(count_components_torch(torch.from_numpy(m))) == _ref_components(m)


def test_check_every_and_jumps_do_not_change_the_result() -> None:
    m = torch.from_numpy(np.stack([SHAPES["spiral"], SHAPES["serpentine"], SHAPES["grid"]]))
    ref = component_labels_torch(m)
    for kw in ({"check_every": 3}, {"jumps": 0}, {"jumps": 5}, {"run_init": False}):
        assert torch.equal(component_labels_torch(m, **kw), ref), kw
    # fixpoint labels: constant per component and equal to (largest linear index in it) + 1
    lab = ref[0].numpy()
    sl, n = ndimage.label(SHAPES["spiral"], structure=S8)
    for k in range(1, n + 1):
        vals = np.unique(lab[sl == k])
        assert vals.size == 1 and vals[0] == np.flatnonzero((sl == k).ravel()).max() + 1


@pytest.mark.parametrize("connectivity", ["2d", "3d"])
def test_label_components_partition_matches_scipy(connectivity: str) -> None:
    rng = np.random.default_rng(3)
    m = _random_blobs(rng, (7, 33, 29), 1.2, 0.52)
    m[3, :, 10] = True  # a wall crossing a frame
    structure = np.zeros((3, 3, 3), bool)
    if connectivity == "2d":
        structure[1] = True
    else:
        structure[:] = True
    ref, n_ref = ndimage.label(m, structure=structure)
    for backend in ("torch", "scipy"):
        lab = label_components(torch.from_numpy(m), connectivity=connectivity, backend=backend).numpy()
        assert ((lab > 0) == m).all()
        pairs = set(zip(lab[m].tolist(), ref[m].tolist(), strict=True))
        assert len(pairs) == n_ref == len(np.unique(lab[m])), backend  # a bijection between the partitions


def test_labeling_features_backends_agree_and_match_definitions() -> None:
    rng = np.random.default_rng(11)
    heat = ndimage.gaussian_filter(rng.random((6, 64, 80)), (0, 3, 3))
    heat = ((heat - heat.min()) / (heat.max() - heat.min())).astype(np.float32)
    res = {}
    for backend, kw in (("torch", {}), ("scipy", {}), ("scipy", {"workers": 2})):
        res[(backend, bool(kw))] = labeling_features(torch.from_numpy(heat), backend=backend, **kw)
    ref = res[("scipy", False)]
    assert [p.threshold for p in ref.per_threshold] == list(DEFAULT_THRESHOLDS)
    for thr, p in zip(DEFAULT_THRESHOLDS, ref.per_threshold, strict=True):
        masks = heat >= thr
        assert p.boundary_length == pytest.approx(sum(_ref_perimeter(m) for m in masks), rel=1e-12)
        assert p.components == sum(_ref_components(m) for m in masks)
    assert ref.boundary_length == pytest.approx(np.mean([p.boundary_length for p in ref.per_threshold]))
    assert ref.components == pytest.approx(np.mean([p.components for p in ref.per_threshold]))
    for r in res.values():
        assert r.components == ref.components
        assert r.boundary_length == pytest.approx(ref.boundary_length, rel=1e-9)
        assert np.array_equal(r.frame_components, ref.frame_components)
    d = ref.to_dict()
    assert set(d) == {"boundary_length", "components", "per_threshold"}
    assert set(d["per_threshold"][0]) == {"threshold", "boundary_length", "components"}


def test_labeling_features_accepts_numpy_single_frame_and_rejects_bad_input() -> None:
    heat = np.zeros((20, 20), np.float32)
    heat[5:10, 5:10] = 0.9
    r = labeling_features(heat, thresholds=(0.5,), backend="torch")
    assert r.per_threshold[0].components == 1
    assert r.per_threshold[0].boundary_length == pytest.approx(_ref_perimeter(heat >= 0.5))
    with pytest.raises(ValueError, match="NaN"):
        labeling_features(np.full((2, 8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        labeling_features(np.full((2, 8, 8), 1.5, np.float32))
    with pytest.raises(ValueError, match="backend"):
        labeling_features(heat, backend="opencv")  # type: ignore[arg-type]
    assert math.isclose(labeling_features(np.zeros((3, 9, 9), np.float32)).boundary_length, 0.0)
