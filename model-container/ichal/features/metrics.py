"""Average precision at pixel, region, frame and stack level (Kuo et al. 2018, §5, Fig. 4–5, Table 1).

Average precision (same definition as ``sklearn.metrics.average_precision_score``)
    Rank the examples by decreasing score; every distinct score value s is a threshold (tied
    scores enter together). With TP(s), FP(s) the (weighted) counts of positives / negatives
    scoring ≥ s and P the total (weighted) number of positives,

        precision(s) = TP(s) / (TP(s) + FP(s)),  recall(s) = TP(s) / P,
        AP = Σ_k (recall_k - recall_{k-1}) · precision_k      (recall_0 = 0),

    the step-wise (non-interpolated) area under the precision–recall curve. Sort-based,
    O(n log n) time, O(n) memory. When there is no positive, AP is undefined and ``nan`` is
    returned (sklearn warns and returns a meaningless value instead).

Levels (all examples pooled over the evaluated stacks)
    pixel   one example per pixel: label = ground-truth mask, score = mean heatmap p.
    frame   one example per frame: label = the frame's mask has any pixel, score = max p in frame.
    stack   one example per stack: label = the stack's mask has any pixel, score = stack score
            (max p, see :mod:`.detection`).
    region  detections = predicted regions of :mod:`.detection` (connected components of
            p ≥ detection threshold, default per-frame 8-connected), score = max p in the region.
            Ground-truth objects = connected components of the true mask with the same
            connectivity. Matching rule (greedy, one-to-one): predictions are visited by
            descending score; a prediction is a true positive when it shares at least one voxel
            with a not-yet-matched ground-truth component *and* their IoU ≥ ``min_iou``
            (default 0, i.e. "overlaps a GT component"); it is matched to the unmatched
            candidate with the largest overlap (ties: smallest component id) and that component
            is consumed. Other predictions are false positives (including duplicates on an
            already-matched component). Unmatched GT components are misses: they count in P
            (recall denominator) but never in TP, so recall may stay below 1.

Scaling the pixel level
    ``pixel_average_precision`` is exact (sort-based) and can subsample: when the pooled pixel
    count n exceeds ``max_pixels``, every pixel is kept independently with probability
    max_pixels / n drawn from ``numpy.random.default_rng(seed)`` (default seed 0), so the
    estimate is unbiased in the class ratio and reproducible.
    :class:`BinnedAP` streams any number of pixels in O(bins) memory (on the heatmap's device):
    scores are quantised to ``round(p · (bins - 1))`` with 65,536 bins by default, and AP is the
    exact AP of the quantised scores (scores within 1/65,535 of each other become ties; the
    difference to the exact AP is of that order, see tests). :class:`DetectionEvaluator` uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ._common import ArrayLike, as_float, as_tensor
from .detection import DEFAULT_DETECTION_THRESHOLD, detect_regions, frame_scores, stack_score
from .morphology import Backend, label_components

DEFAULT_PIXEL_BINS = 1 << 16

__all__ = [
    "DEFAULT_PIXEL_BINS",
    "BinnedAP",
    "DetectionEvaluator",
    "RegionMatch",
    "ap_from_ranked_hits",
    "average_precision",
    "match_regions",
    "pixel_average_precision",
]


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def average_precision(y_true: ArrayLike, y_score: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Step-wise area under the precision–recall curve (sklearn's ``average_precision_score``).

    Args:
        y_true: binary labels (any shape, flattened); nonzero = positive.
        y_score: scores, same number of elements.
        sample_weight: optional non-negative weights (e.g. counts of identical examples).
    """
    y = _to_numpy(y_true).ravel() != 0
    s = _to_numpy(y_score).ravel().astype(np.float64, copy=False)
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} elements but y_score has {s.size}")
    w = None if sample_weight is None else _to_numpy(sample_weight).ravel().astype(np.float64, copy=False)
    if w is not None and w.shape != s.shape:
        raise ValueError(f"sample_weight has {w.size} elements, expected {s.size}")
    if np.isnan(s).any():
        raise ValueError("y_score contains NaN")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    w = np.ones_like(s) if w is None else w[order]
    tp = np.cumsum(w * y)
    fp = np.cumsum(w * ~y)
    # the last index of every run of tied scores is a threshold
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.zeros(0, dtype=np.int64)
    return _ap_from_cumulative(tp[last], fp[last], tp[-1] if s.size else 0.0)


def _ap_from_cumulative(tp: np.ndarray, fp: np.ndarray, n_pos: float) -> float:
    if n_pos <= 0:
        return float("nan")
    denom = tp + fp
    precision = np.divide(tp, denom, out=np.zeros_like(tp, dtype=np.float64), where=denom > 0)
    recall = tp / n_pos
    d_recall = np.diff(np.r_[0.0, recall])
    return float(np.sum(d_recall * precision))


def ap_from_ranked_hits(scores: ArrayLike, hits: ArrayLike, n_positives: int) -> float:
    """AP of detections (score, true-positive flag) against ``n_positives`` ground-truth objects.

    Same step-wise definition as :func:`average_precision`, except that recall is divided by
    ``n_positives`` (matched + missed objects), so misses cap the reachable recall.
    """
    s = _to_numpy(scores).ravel().astype(np.float64, copy=False)
    h = _to_numpy(hits).ravel() != 0
    if s.shape != h.shape:
        raise ValueError("scores and hits differ in length")
    if int(h.sum()) > n_positives:
        raise ValueError(f"{int(h.sum())} hits but only {n_positives} positives")
    if n_positives <= 0:
        return float("nan")
    if s.size == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    s, h = s[order], h[order]
    tp, fp = np.cumsum(h).astype(np.float64), np.cumsum(~h).astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    return _ap_from_cumulative(tp[last], fp[last], float(n_positives))


def pixel_average_precision(
    gt_masks: Sequence[ArrayLike] | ArrayLike,
    heatmaps: Sequence[ArrayLike] | ArrayLike,
    *,
    max_pixels: int | None = None,
    seed: int = 0,
) -> float:
    """Exact pixel AP with all pixels of all stacks pooled (optionally Bernoulli-subsampled).

    ``gt_masks`` / ``heatmaps``: one array per stack (any matching shapes) or a single array.
    """
    if isinstance(gt_masks, (np.ndarray, torch.Tensor)):
        gt_masks, heatmaps = [gt_masks], [heatmaps]  # type: ignore[list-item]
    ys, ss = [], []
    for g, h in zip(gt_masks, heatmaps, strict=True):
        g_np, h_np = _to_numpy(g).ravel(), _to_numpy(h).ravel()
        if g_np.shape != h_np.shape:
            raise ValueError(f"mask with {g_np.size} pixels vs heatmap with {h_np.size}")
        ys.append(g_np != 0)
        ss.append(h_np.astype(np.float32, copy=False))
    y, s = np.concatenate(ys), np.concatenate(ss)
    if max_pixels is not None and y.size > max_pixels:
        keep = np.random.default_rng(seed).random(y.size) < (max_pixels / y.size)
        y, s = y[keep], s[keep]
    return average_precision(y, s)


class BinnedAP:
    """Streaming AP over arbitrarily many examples: histograms of quantised scores per class.

    ``update`` runs on the device of its inputs (one ``bincount`` per class); ``value`` is the
    exact AP of the scores quantised to ``round(score · (bins - 1)) / (bins - 1)``.
    """

    def __init__(self, bins: int = DEFAULT_PIXEL_BINS) -> None:
        if bins < 2:
            raise ValueError("bins must be >= 2")
        self.bins = int(bins)
        self.pos = np.zeros(self.bins, dtype=np.int64)
        self.neg = np.zeros(self.bins, dtype=np.int64)

    def update(self, y_true: ArrayLike, y_score: ArrayLike) -> None:
        s = as_float(as_tensor(y_score)).flatten()
        y = as_tensor(y_true).to(s.device).flatten() != 0
        if y.numel() != s.numel():
            raise ValueError(f"{y.numel()} labels vs {s.numel()} scores")
        q = (s.clamp(0.0, 1.0) * (self.bins - 1)).round().to(torch.int64)
        pos = torch.bincount(q[y], minlength=self.bins)
        neg = torch.bincount(q[~y], minlength=self.bins)
        self.pos += pos.cpu().numpy()
        self.neg += neg.cpu().numpy()

    @property
    def n(self) -> int:
        return int(self.pos.sum() + self.neg.sum())

    def value(self) -> float:
        nz = np.flatnonzero(self.pos + self.neg)
        scores = np.r_[nz, nz].astype(np.float64) / (self.bins - 1)
        labels = np.r_[np.ones(nz.size, bool), np.zeros(nz.size, bool)]
        weights = np.r_[self.pos[nz], self.neg[nz]].astype(np.float64)
        return average_precision(labels, scores, sample_weight=weights)


@dataclass(frozen=True)
class RegionMatch:
    """Per-prediction outcome of :func:`match_regions` for one stack."""

    scores: np.ndarray  # [R] float64, descending
    hits: np.ndarray  # [R] bool, true positive flags aligned with ``scores``
    matched_gt: np.ndarray  # [R] int64, index of the matched GT component or -1
    n_gt: int  # number of ground-truth components (recall denominator)


def match_regions(
    pred_labels: ArrayLike,
    pred_scores: dict[int, float] | None,
    gt_mask: ArrayLike,
    *,
    heatmap: ArrayLike | None = None,
    connectivity: Literal["2d", "3d"] = "2d",
    min_iou: float = 0.0,
    backend: Backend = "auto",
) -> RegionMatch:
    """Greedy one-to-one matching of predicted regions to ground-truth components (module doc).

    Args:
        pred_labels: ``[F, H, W]`` region ids of the predictions (0 = background), e.g. from
            ``detect_regions(..., return_labels=True)``.
        pred_scores: score per region id; if ``None`` it is the max of ``heatmap`` in the region.
        gt_mask: ``[F, H, W]`` true mask.
        connectivity: how ground-truth components are formed (use the predictions' one).
        min_iou: extra IoU requirement for a match (0 = any shared voxel suffices).
    """
    pl = as_tensor(pred_labels).to(torch.int64)
    gm = as_tensor(gt_mask).to(pl.device) != 0
    if pl.shape != gm.shape or pl.ndim != 3:
        raise ValueError(
            f"pred_labels {tuple(pl.shape)} and gt_mask {tuple(gm.shape)} must both be [F, H, W]"
        )
    gl = label_components(gm, connectivity=connectivity, backend=backend)
    # compact ids: predictions 0..R-1, ground truth 0..G-1
    pfg, gfg = pl > 0, gl > 0
    p_ids, p_inv = torch.unique(pl[pfg], return_inverse=True)
    g_ids, g_inv = torch.unique(gl[gfg], return_inverse=True)
    r, g = p_ids.numel(), g_ids.numel()
    p_size = torch.bincount(p_inv, minlength=r).cpu().numpy()
    g_size = torch.bincount(g_inv, minlength=g).cpu().numpy()
    if pred_scores is None:
        if heatmap is None:
            raise ValueError("give pred_scores or heatmap")
        hm = as_float(as_tensor(heatmap)).to(pl.device)
        vmax = torch.full((r,), -math.inf, dtype=torch.float64, device=pl.device)
        vmax.scatter_reduce_(0, p_inv, hm[pfg].to(torch.float64), reduce="amax")
        score = vmax.cpu().numpy()
    else:
        score = np.array([float(pred_scores[int(i)]) for i in p_ids.tolist()], dtype=np.float64)
    # overlaps: joint histogram of (pred, gt) over voxels that are in both
    both = pfg & gfg
    p_full = torch.full(pl.shape, -1, dtype=torch.int64, device=pl.device)
    p_full[pfg] = p_inv
    g_full = torch.full(pl.shape, -1, dtype=torch.int64, device=pl.device)
    g_full[gfg] = g_inv
    pair = p_full[both] * max(g, 1) + g_full[both]
    pairs, inter = torch.unique(pair, return_counts=True)
    cand: dict[int, list[tuple[int, int]]] = {}
    for key, cnt in zip(pairs.tolist(), inter.tolist(), strict=True):
        cand.setdefault(key // max(g, 1), []).append((key % max(g, 1), cnt))
    order = sorted(range(r), key=lambda i: -score[i])  # stable: ties keep id order
    taken = np.zeros(g, dtype=bool)
    hits = np.zeros(r, dtype=bool)
    matched = np.full(r, -1, dtype=np.int64)
    for rank, i in enumerate(order):
        best, best_overlap = -1, 0
        for gi, cnt in cand.get(i, ()):
            if taken[gi]:
                continue
            iou = cnt / (p_size[i] + g_size[gi] - cnt)
            if iou < min_iou:
                continue
            if cnt > best_overlap or (cnt == best_overlap and gi < best):
                best, best_overlap = gi, cnt
        if best >= 0:
            taken[best] = True
            hits[rank] = True
            matched[rank] = best
    return RegionMatch(scores=score[order] if r else np.zeros(0), hits=hits, matched_gt=matched, n_gt=g)


@dataclass
class DetectionEvaluator:
    """Accumulates pixel / frame / stack / region AP over many stacks (module doc for definitions).

    Usage::

        ev = DetectionEvaluator()
        for heat, mask in stacks:          # heat: mean heatmap [F, H, W], mask: true mask [F, H, W]
            ev.add(heat, mask)
        ev.result()  # {"pixel_ap": ..., "frame_ap": ..., "stack_ap": ..., "region_ap": ..., ...}
    """

    detection_threshold: float = DEFAULT_DETECTION_THRESHOLD
    connectivity: Literal["2d", "3d"] = "2d"
    min_iou: float = 0.0
    pixel_bins: int = DEFAULT_PIXEL_BINS
    backend: Backend = "auto"
    _pixel: BinnedAP = field(init=False, repr=False)
    _frame_y: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _frame_s: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _stack_y: list[bool] = field(default_factory=list, init=False, repr=False)
    _stack_s: list[float] = field(default_factory=list, init=False, repr=False)
    _region_s: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _region_h: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _n_gt_regions: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._pixel = BinnedAP(self.pixel_bins)

    def add(self, mean_heatmap: ArrayLike, gt_mask: ArrayLike) -> None:
        heat = as_float(as_tensor(mean_heatmap))
        gt = as_tensor(gt_mask).to(heat.device) != 0
        if heat.ndim != 3 or gt.shape != heat.shape:
            raise ValueError(f"heatmap {tuple(heat.shape)} and mask {tuple(gt.shape)} must both be [F, H, W]")
        self._pixel.update(gt, heat)
        self._frame_y.append(gt.flatten(1).any(1).cpu().numpy())
        self._frame_s.append(frame_scores(heat).to(torch.float64).cpu().numpy())
        self._stack_y.append(bool(gt.any()))
        self._stack_s.append(stack_score(heat))
        regions, labels = detect_regions(
            heat,
            threshold=self.detection_threshold,
            connectivity=self.connectivity,
            backend=self.backend,
            return_labels=True,
        )
        del regions
        m = match_regions(
            labels,
            None,
            gt,
            heatmap=heat,
            connectivity=self.connectivity,
            min_iou=self.min_iou,
            backend=self.backend,
        )
        self._region_s.append(m.scores)
        self._region_h.append(m.hits)
        self._n_gt_regions += m.n_gt

    def result(self) -> dict[str, Any]:
        fy = np.concatenate(self._frame_y) if self._frame_y else np.zeros(0, bool)
        fs = np.concatenate(self._frame_s) if self._frame_s else np.zeros(0)
        rs = np.concatenate(self._region_s) if self._region_s else np.zeros(0)
        rh = np.concatenate(self._region_h) if self._region_h else np.zeros(0, bool)
        return {
            "pixel_ap": self._pixel.value(),
            "frame_ap": average_precision(fy, fs),
            "stack_ap": average_precision(np.array(self._stack_y, bool), np.array(self._stack_s)),
            "region_ap": ap_from_ranked_hits(rs, rh, self._n_gt_regions),
            "n_stacks": len(self._stack_y),
            "n_frames": int(fy.size),
            "n_pixels": self._pixel.n,
            "n_pred_regions": int(rs.size),
            "n_gt_regions": self._n_gt_regions,
        }
