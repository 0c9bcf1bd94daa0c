"""Region, frame and stack detection from the mean hemorrhage heatmap (Kuo et al. 2018, §2).

"We also group the pixelwise predictions into regions using connected component analysis and
aggregate the pixelwise predictions into frame and stack classification scores."

Exact definitions used here
---------------------------
Heatmap         p(f, y, x) = mean over the ensemble members of the hemorrhage probability.

Regions         connected components of the mask ``p >= detection_threshold`` (default 0.5).
                Default ``connectivity="2d"``: 8-connected components *within each frame* — a region
                never spans two frames, matching slice-wise reading/annotation of 5-mm-thick axial
                CT slices and the per-frame component count M of :mod:`.morphology`.
                ``connectivity="3d"``: 26-connected components of the volume (a bleed seen on
                several adjacent slices is one region).
Region score    max of p over the region's voxels (the detection confidence used for region AP);
                the mean of p over the region is reported as well.
Region box      inclusive index bounds ``{"frames": [f0, f1], "rows": [y0, y1], "cols": [x0, x1]}``
                plus ``voxels`` (number of voxels) and ``frame_list`` (frames it touches).
Region order    descending score, ties by (first frame, first row, first column); ``id`` = rank
                starting at 1.
Frame score     max over the frame of p (probability that the frame contains hemorrhage).
Stack score     max over the stack of p; with ``stack_top_k=k`` the mean of the k largest
                pixel probabilities of the stack instead (a smoother alternative, off by default).

Works on CPU or CUDA tensors; the region statistics are computed on the heatmap's device with
scatter reductions and only the per-region summaries are moved to the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ._common import ArrayLike, as_float, as_tensor, check_probabilities
from .morphology import Backend, label_components

DEFAULT_DETECTION_THRESHOLD = 0.5

__all__ = [
    "DEFAULT_DETECTION_THRESHOLD",
    "DetectionResult",
    "Region",
    "detect",
    "detect_regions",
    "frame_scores",
    "region_statistics",
    "stack_score",
]


@dataclass(frozen=True)
class Region:
    """One detected region; all fields are plain Python values (JSON-ready via :meth:`to_dict`)."""

    id: int
    score: float  # max mean-probability inside the region
    mean_probability: float
    voxels: int
    frames: tuple[int, int]  # inclusive [first, last]
    rows: tuple[int, int]  # inclusive [y0, y1]
    cols: tuple[int, int]  # inclusive [x0, x1]
    frame_list: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "mean_probability": self.mean_probability,
            "voxels": self.voxels,
            "bbox": {"frames": list(self.frames), "rows": list(self.rows), "cols": list(self.cols)},
            "frame_list": list(self.frame_list),
        }


def frame_scores(mean_heatmap: ArrayLike) -> torch.Tensor:
    """Max probability per frame of ``[F, H, W]`` → ``[F]`` on the heatmap's device."""
    t = as_float(as_tensor(mean_heatmap))
    if t.ndim != 3:
        raise ValueError(f"mean_heatmap must be [F, H, W], got shape {tuple(t.shape)}")
    return t.flatten(1).amax(1)


def stack_score(mean_heatmap: ArrayLike, *, top_k: int | None = None) -> float:
    """Max probability of the stack, or the mean of its ``top_k`` largest pixel probabilities."""
    t = as_float(as_tensor(mean_heatmap)).flatten()
    if t.numel() == 0:
        raise ValueError("empty heatmap")
    if top_k is None:
        return float(t.max())
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    return float(torch.topk(t, min(int(top_k), t.numel())).values.mean())


def region_statistics(labels: torch.Tensor, heatmap: torch.Tensor) -> list[Region]:
    """Per-region summaries from a label volume (0 = background, any positive ids) and the heatmap."""
    fg = labels > 0
    coords = fg.nonzero()  # [K, 3] (frame, row, col), row-major order
    if coords.shape[0] == 0:
        return []
    keys = labels[fg]
    vals = heatmap[fg].to(torch.float64)
    uniq, inv = torch.unique(keys, return_inverse=True)
    r = uniq.numel()
    dev = labels.device
    count = torch.bincount(inv, minlength=r)
    vmax = torch.full((r,), -1.0, dtype=torch.float64, device=dev).scatter_reduce_(
        0, inv, vals, reduce="amax"
    )
    vsum = torch.zeros(r, dtype=torch.float64, device=dev).index_add_(0, inv, vals)
    big = torch.iinfo(torch.int64).max
    lo = torch.full((r, 3), big, dtype=torch.int64, device=dev)
    hi = torch.full((r, 3), -1, dtype=torch.int64, device=dev)
    idx3 = inv.view(-1, 1).expand(-1, 3)
    lo.scatter_reduce_(0, idx3, coords, reduce="amin")
    hi.scatter_reduce_(0, idx3, coords, reduce="amax")
    # (region, frame) pairs for the list of frames each region touches
    n_frames = labels.shape[0]
    pairs = torch.unique(inv * n_frames + coords[:, 0])
    pair_region, pair_frame = (pairs // n_frames).tolist(), (pairs % n_frames).tolist()
    frames_of: list[list[int]] = [[] for _ in range(r)]
    for reg, fr in zip(pair_region, pair_frame, strict=True):
        frames_of[reg].append(fr)
    count_l, vmax_l, vsum_l, lo_l, hi_l = (
        count.tolist(),
        vmax.tolist(),
        vsum.tolist(),
        lo.tolist(),
        hi.tolist(),
    )
    order = sorted(range(r), key=lambda i: (-vmax_l[i], lo_l[i][0], lo_l[i][1], lo_l[i][2]))
    return [
        Region(
            id=rank,
            score=vmax_l[i],
            mean_probability=vsum_l[i] / count_l[i],
            voxels=count_l[i],
            frames=(lo_l[i][0], hi_l[i][0]),
            rows=(lo_l[i][1], hi_l[i][1]),
            cols=(lo_l[i][2], hi_l[i][2]),
            frame_list=tuple(frames_of[i]),
        )
        for rank, i in enumerate(order, start=1)
    ]


def detect_regions(
    mean_heatmap: ArrayLike,
    *,
    threshold: float = DEFAULT_DETECTION_THRESHOLD,
    connectivity: Literal["2d", "3d"] = "2d",
    backend: Backend = "auto",
    return_labels: bool = False,
) -> list[Region] | tuple[list[Region], torch.Tensor]:
    """Connected regions of ``mean_heatmap >= threshold`` with scores, boxes and sizes (see module doc)."""
    t = as_float(as_tensor(mean_heatmap))
    if t.ndim != 3:
        raise ValueError(f"mean_heatmap must be [F, H, W], got shape {tuple(t.shape)}")
    labels = label_components(t >= threshold, connectivity=connectivity, backend=backend)
    regions = region_statistics(labels, t)
    return (regions, labels) if return_labels else regions


@dataclass
class DetectionResult:
    stack_score: float
    frame_scores: list[float]
    regions: list[Region]
    threshold: float
    connectivity: str
    labels: torch.Tensor | None = field(default=None, repr=False)  # [F, H, W] region ids (0 = none)

    def to_dict(self, *, max_regions: int | None = None) -> dict[str, Any]:
        regs = self.regions if max_regions is None else self.regions[:max_regions]
        return {
            "stack_score": self.stack_score,
            "frame_scores": list(self.frame_scores),
            "detection_threshold": self.threshold,
            "connectivity": self.connectivity,
            "n_regions": len(self.regions),
            "regions": [r.to_dict() for r in regs],
        }


def detect(
    mean_heatmap: ArrayLike,
    *,
    threshold: float = DEFAULT_DETECTION_THRESHOLD,
    connectivity: Literal["2d", "3d"] = "2d",
    stack_top_k: int | None = None,
    backend: Backend = "auto",
    keep_labels: bool = False,
    validate: bool = True,
) -> DetectionResult:
    """Regions, frame scores and stack score of a mean heatmap ``[F, H, W]``."""
    t = as_tensor(mean_heatmap)
    if validate:
        check_probabilities(t, ndim=3, name="mean_heatmap")
    t = as_float(t)
    regions, labels = detect_regions(
        t, threshold=threshold, connectivity=connectivity, backend=backend, return_labels=True
    )
    return DetectionResult(
        stack_score=stack_score(t, top_k=stack_top_k),
        frame_scores=[float(v) for v in frame_scores(t).tolist()],
        regions=regions,
        threshold=float(threshold),
        connectivity=connectivity,
        labels=labels if keep_labels else None,
    )
