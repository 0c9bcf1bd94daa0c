"""Average precision vs hand-computed and brute-force definitions; region matching rule; evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ichal.features.detection import detect_regions
from ichal.features.metrics import (
    BinnedAP,
    DetectionEvaluator,
    ap_from_ranked_hits,
    average_precision,
    match_regions,
    pixel_average_precision,
)


def _ap_brute_force(y: np.ndarray, s: np.ndarray) -> float:
    """Definition, literally: thresholds = distinct scores (descending); P, R of `score >= t`."""
    y = y.astype(bool)
    ap, prev_r = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp = np.sum(pred & y)
        p = tp / np.sum(pred)
        r = tp / np.sum(y)
        ap += (r - prev_r) * p
        prev_r = r
    return ap


def test_ap_hand_computed_examples() -> None:
    # ranks: TP (P=1, R=1/3), FP, TP (P=2/3, R=2/3), TP (P=3/4, R=1), FP
    assert average_precision([1, 0, 1, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.5]) == pytest.approx(
        (1 + 2 / 3 + 3 / 4) / 3
    )
    # sklearn's documented example: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333...
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333333333334)
    # ties enter together: one threshold, P = 1/2, R = 1
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert average_precision([1, 1, 0], [0.2, 0.2, 0.9]) == pytest.approx(2 / 3)
    assert average_precision([1, 0, 0], [0.9, 0.1, 0.1]) == pytest.approx(1.0)
    assert math.isnan(average_precision([0, 0], [0.3, 0.4]))
    # weights = repeated examples
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7], sample_weight=[2, 1, 1]) == pytest.approx(
        average_precision([1, 1, 0, 1], [0.9, 0.9, 0.8, 0.7])
    )


@pytest.mark.parametrize("seed", range(6))
def test_ap_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    s = np.round(rng.random(n), int(rng.integers(1, 3)))  # coarse rounding → many ties
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    y[0] = True
    assert average_precision(y, s) == pytest.approx(_ap_brute_force(y, s), rel=1e-12)
    assert average_precision(torch.from_numpy(y), torch.from_numpy(s)) == pytest.approx(
        _ap_brute_force(y, s), rel=1e-12
    )


def test_ranked_hits_counts_misses_in_recall() -> None:
    # 2 hits among 4 detections, 3 objects: TP (1, 1/3), FP, FP, TP (1/2, 2/3) → 1/3 + 1/6
    assert ap_from_ranked_hits([0.9, 0.8, 0.7, 0.6], [1, 0, 0, 1], 3) == pytest.approx(0.5)
    assert ap_from_ranked_hits([], [], 2) == 0.0
    assert math.isnan(ap_from_ranked_hits([0.5], [0], 0))
    with pytest.raises(ValueError):
        ap_from_ranked_hits([0.5, 0.4], [1, 1], 1)


def test_pixel_ap_pooling_subsampling_and_binned_stream() -> None:
    rng = np.random.default_rng(5)
    masks = [rng.random((3, 20, 20)) < 0.1, rng.random((2, 20, 20)) < 0.3]
    heats = [np.clip(m * 0.4 + rng.random(m.shape) * 0.6, 0, 1).astype(np.float32) for m in masks]
    exact = pixel_average_precision(masks, heats)
    ys = np.concatenate([m.ravel() for m in masks])
    ss = np.concatenate([h.ravel() for h in heats])
    assert exact == pytest.approx(_ap_brute_force(ys, ss), rel=1e-12)
    sub1 = pixel_average_precision(masks, heats, max_pixels=800, seed=1)
    assert sub1 == pixel_average_precision(masks, heats, max_pixels=800, seed=1)  # reproducible
    assert abs(sub1 - exact) < 0.1
    b = BinnedAP()
    for m, h in zip(masks, heats, strict=True):
        b.update(torch.from_numpy(m), torch.from_numpy(h))
    assert b.n == ys.size
    assert b.value() == pytest.approx(exact, abs=1e-3)
    # exact AP of the quantised scores
    q = np.round(np.clip(ss, 0, 1) * (b.bins - 1)) / (b.bins - 1)
    assert b.value() == pytest.approx(_ap_brute_force(ys, q), rel=1e-12)


def _region_scene() -> tuple[np.ndarray, np.ndarray]:
    heat = np.zeros((2, 30, 30), np.float32)
    gt = np.zeros((2, 30, 30), bool)
    gt[0, 2:12, 2:20] = True  # GT1, large
    gt[0, 20:25, 20:25] = True  # GT2
    gt[1, 5:8, 5:8] = True  # GT3, missed
    heat[0, 3:6, 3:6] = 0.9  # A: inside GT1 → TP
    heat[0, 15:18, 2:5] = 0.8  # B: no GT → FP
    heat[0, 3:6, 12:15] = 0.7  # C: inside GT1 again, separate blob → duplicate → FP
    heat[0, 22:28, 22:28] = 0.6  # D: overlaps GT2 → TP
    return heat, gt


def test_region_matching_rule_by_hand() -> None:
    heat, gt = _region_scene()
    regions, labels = detect_regions(heat, threshold=0.5, return_labels=True)
    assert [r.score for r in regions] == pytest.approx([0.9, 0.8, 0.7, 0.6])
    m = match_regions(labels, None, gt, heatmap=heat)
    assert m.n_gt == 3
    assert m.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert m.hits.tolist() == [True, False, False, True]
    assert ap_from_ranked_hits(m.scores, m.hits, m.n_gt) == pytest.approx(1 / 3 + 1 / 6)
    # IoU requirement: A (9 px) inside GT1 (180 px) has IoU 0.05 < 0.1 → no longer a hit; D has 9/(36+25-9)
    m2 = match_regions(labels, None, gt, heatmap=heat, min_iou=0.1)
    assert m2.hits.tolist() == [False, False, False, True]
    # scores supplied explicitly by region id
    ids = {int(i): float(heat[labels == i].max()) for i in np.unique(labels.numpy()) if i}
    assert match_regions(labels, ids, gt).hits.tolist() == [True, False, False, True]


def test_prediction_spanning_two_gt_components_takes_the_larger_overlap() -> None:
    gt = np.zeros((1, 10, 20), bool)
    gt[0, 2:8, 0:5] = True  # 30 px
    gt[0, 2:8, 10:20] = True  # 60 px
    heat = np.zeros((1, 10, 20), np.float32)
    heat[0, 4:6, 3:14] = 0.8  # overlaps left by 4 px, right by 8 px
    heat[0, 2:3, 0:2] = 0.7  # second prediction inside the left component
    _regions, labels = detect_regions(heat, threshold=0.5, return_labels=True)
    m = match_regions(labels, None, gt, heatmap=heat)
    assert m.hits.tolist() == [True, True]
    assert m.matched_gt.tolist()[0] != m.matched_gt.tolist()[1]
    assert ap_from_ranked_hits(m.scores, m.hits, m.n_gt) == pytest.approx(1.0)


def test_detection_evaluator_levels() -> None:
    heat, gt = _region_scene()
    empty_heat = np.full((2, 30, 30), 0.05, np.float32)
    empty_heat[1, 0, 0] = 0.55  # a false positive in a negative stack
    ev = DetectionEvaluator()
    ev.add(heat, gt)
    ev.add(empty_heat, np.zeros_like(gt))
    r = ev.result()
    assert r["n_stacks"] == 2 and r["n_frames"] == 4 and r["n_pixels"] == 2 * 2 * 900
    # frames: labels [1, 1, 0, 0], scores [0.9, 0.0, 0.05, 0.55]
    assert r["frame_ap"] == pytest.approx(average_precision([1, 1, 0, 0], [0.9, 0.0, 0.05, 0.55]))
    assert r["stack_ap"] == pytest.approx(1.0)
    # regions: stack 1 as above, plus a 0.55 FP ranked between C (0.7) and D (0.6)
    assert r["n_gt_regions"] == 3 and r["n_pred_regions"] == 5
    assert r["region_ap"] == pytest.approx(
        ap_from_ranked_hits([0.9, 0.8, 0.7, 0.6, 0.55], [1, 0, 0, 1, 0], 3)
    )
    exact = pixel_average_precision([gt, np.zeros_like(gt)], [heat, empty_heat])
    assert r["pixel_ap"] == pytest.approx(exact, abs=1e-4)
