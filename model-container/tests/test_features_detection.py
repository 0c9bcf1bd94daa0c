"""Regions, frame and stack scores against an independent scipy.ndimage computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from ichal.features.detection import detect, detect_regions, frame_scores, stack_score


def _heat(seed: int = 0, shape=(5, 40, 36)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = ndimage.gaussian_filter(rng.random(shape), (0.7, 2, 2))
    return ((h - h.min()) / (h.max() - h.min())).astype(np.float32)


def _reference_regions(heat: np.ndarray, thr: float, connectivity: str) -> list[tuple]:
    structure = np.zeros((3, 3, 3), bool)
    if connectivity == "2d":
        structure[1] = True
    else:
        structure[:] = True
    lab, _ = ndimage.label(heat >= thr, structure=structure)
    out = []
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        sel = lab == k
        vals = heat[sel].astype(np.float64)
        out.append(
            (
                float(vals.max()),
                float(vals.mean()),
                int(sel.sum()),
                (sl[0].start, sl[0].stop - 1),
                (sl[1].start, sl[1].stop - 1),
                (sl[2].start, sl[2].stop - 1),
                tuple(np.flatnonzero(sel.any(axis=(1, 2))).tolist()),
            )
        )
    out.sort(key=lambda r: (-r[0], r[3][0], r[4][0], r[5][0]))
    return out


@pytest.mark.parametrize("connectivity", ["2d", "3d"])
@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_regions_match_scipy_reference(connectivity: str, backend: str) -> None:
    heat = _heat(1)
    regions = detect_regions(
        torch.from_numpy(heat), threshold=0.55, connectivity=connectivity, backend=backend
    )
    ref = _reference_regions(heat, 0.55, connectivity)
    assert len(regions) == len(ref) > 3
    for i, (r, e) in enumerate(zip(regions, ref, strict=True), start=1):
        assert r.id == i
        assert r.score == pytest.approx(e[0])
        assert r.mean_probability == pytest.approx(e[1], rel=1e-9)
        assert (r.voxels, r.frames, r.rows, r.cols, r.frame_list) == e[2:]
        if connectivity == "2d":
            assert r.frames[0] == r.frames[1]


def test_frame_and_stack_scores() -> None:
    heat = _heat(2)
    np.testing.assert_array_equal(frame_scores(torch.from_numpy(heat)).numpy(), heat.reshape(5, -1).max(1))
    assert stack_score(heat) == pytest.approx(float(heat.max()))
    top = np.sort(heat.ravel())[::-1][:10].astype(np.float64).mean()
    assert stack_score(heat, top_k=10) == pytest.approx(top, rel=1e-6)


def test_detect_summary_is_json_ready_and_handles_empty_stack() -> None:
    heat = _heat(3)
    res = detect(heat, threshold=0.6, keep_labels=True)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_regions"] == len(res.regions) == len(d["regions"])
    assert d["stack_score"] == pytest.approx(float(heat.max()))
    assert set(d["regions"][0]) == {"id", "score", "mean_probability", "voxels", "bbox", "frame_list"}
    assert res.labels is not None and ((res.labels.numpy() > 0) == (heat >= 0.6)).all()
    empty = detect(np.zeros((2, 8, 8), np.float32))
    assert empty.regions == [] and empty.stack_score == 0.0 and empty.frame_scores == [0.0, 0.0]
    assert detect(np.ones((1, 4, 4), np.float32), threshold=0.5).regions[0].voxels == 16
