"""JS divergence, patch means and top-K stack uncertainty against direct numpy formulas and loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ichal.features.uncertainty import js_divergence, patch_uncertainty, stack_uncertainty, uncertainty
from ichal.windows import window_grid


def _js_numpy(p: np.ndarray) -> np.ndarray:
    """Direct eq. (1) in float64: H(mean P) - mean H(P), binary distributions (p, 1-p), 0·log 0 = 0."""
    p = p.astype(np.float64)

    def h(q: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(q > 0, -q * np.log(q), 0.0)
            b = np.where(q < 1, -(1 - q) * np.log(1 - q), 0.0)
        return a + b

    return h(p.mean(0)) - h(p).mean(0)


def test_js_matches_direct_formula_including_endpoints() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((4, 3, 17, 19)).astype(np.float32)
    p[:, 0, :3] = 0.0  # all models certain-negative
    p[:, 0, 3:6] = 1.0  # all models certain-positive
    p[0, 1, :4] = 0.0
    p[1, 1, :4] = 1.0  # maximal disagreement, mixed 0/1
    p[2:, 1, :4] = 0.5
    got = js_divergence(torch.from_numpy(p)).numpy()
    ref = _js_numpy(p)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, atol=2e-6)
    assert got.min() >= 0.0 and got.max() <= math.log(2)
    np.testing.assert_array_equal(got[0, :6], 0.0)
    # numpy input, float64 compute
    np.testing.assert_allclose(js_divergence(p, dtype=torch.float64).numpy(), ref, atol=1e-12)


def test_js_extremes_and_committee_sizes() -> None:
    # two models saying 0 and 1: H(0.5) - 0 = ln 2, the maximum for binary outputs
    p = torch.tensor([[0.0], [1.0]])
    assert float(js_divergence(p)[0]) == pytest.approx(math.log(2), abs=1e-7)
    # a single model: no disagreement
    assert float(js_divergence(torch.rand(1, 5, 5)).abs().max()) == 0.0
    # identical members: 0 (up to rounding, clamped to be non-negative)
    same = torch.rand(1, 4, 6).expand(5, 4, 6)
    assert float(js_divergence(same).max()) < 1e-6
    assert float(js_divergence(same).min()) >= 0.0


def _patch_means_loop(js: np.ndarray, crop: int, stride: int) -> np.ndarray:
    f, h, w = js.shape
    grid = window_grid(h, w, crop, stride)
    return np.array(
        [[js[k, t : t + crop, c : c + crop].astype(np.float64).mean() for (t, c) in grid] for k in range(f)]
    )


@pytest.mark.parametrize(
    "shape,crop,stride", [((3, 50, 37), 16, 8), ((2, 40, 40), 40, 10), ((1, 33, 70), 12, 25)]
)
def test_patch_means_match_explicit_window_loops(shape, crop, stride) -> None:
    rng = np.random.default_rng(1)
    js = rng.random(shape).astype(np.float32)
    pu = patch_uncertainty(torch.from_numpy(js), crop=crop, stride=stride)
    ref = _patch_means_loop(js, crop, stride)
    np.testing.assert_allclose(pu.values.numpy().reshape(shape[0], -1), ref, rtol=1e-9, atol=1e-12)
    # positions round-trip to the window grid
    grid = window_grid(shape[1], shape[2], crop, stride)
    for i in range(pu.count):
        f, t, left = pu.position(i)
        assert (t, left) == grid[i % len(grid)] and f == i // len(grid)


def test_patch_uncertainty_rejects_frames_smaller_than_crop() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        patch_uncertainty(torch.zeros(2, 100, 200), crop=160, stride=80)


def test_top_k_matches_plain_sort_and_caps_k() -> None:
    rng = np.random.default_rng(2)
    js = rng.random((4, 48, 48)).astype(np.float32) * 0.3
    pu = patch_uncertainty(torch.from_numpy(js), crop=16, stride=8)  # 5×5 windows × 4 frames = 100 patches
    flat = np.sort(pu.values.numpy().ravel())[::-1]
    for k in (1, 7, 100):
        tk = stack_uncertainty(pu, k)
        assert tk.k_used == k
        assert tk.value == pytest.approx(flat[:k].mean(), rel=1e-12)
    tk = stack_uncertainty(pu, 200)  # fewer patches than K: mean of all of them
    assert tk.k_used == 100 and tk.k_requested == 200
    assert tk.value == pytest.approx(flat.mean(), rel=1e-12)
    # the reported patch positions carry the reported values
    loops = _patch_means_loop(js, 16, 8)
    grid = window_grid(48, 48, 16, 8)
    for (f, t, left), v in zip(tk.patches[:10], tk.values[:10], strict=True):
        assert loops[f, grid.index((t, left))] == pytest.approx(v, rel=1e-9)
    with pytest.raises(ValueError):
        stack_uncertainty(pu, 0)


def test_uncertainty_end_to_end_paper_geometry() -> None:
    rng = np.random.default_rng(3)
    probs = rng.random((4, 2, 176, 200)).astype(np.float32)
    res = uncertainty(probs, top_k=200)
    # rows: starts 0, 16 ; cols: 0, 40 → 2×2 windows × 2 frames = 8 patches < 200
    assert res.patches.row_starts == (0, 16) and res.patches.col_starts == (0, 40)
    assert res.top_k == 8
    js = _js_numpy(probs)
    ref = _patch_means_loop(js.astype(np.float64), 160, 80)
    assert res.stack_uncertainty == pytest.approx(ref.mean(), rel=1e-5)
    np.testing.assert_allclose(res.mean_heatmap.numpy(), probs.mean(0), rtol=1e-6)
    assert res.js_map.shape == (2, 176, 200)
    with pytest.raises(ValueError, match="4 dimensions"):
        uncertainty(probs[0])
