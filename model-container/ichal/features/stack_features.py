"""All per-stack features of the active-learning loop in one call, and the ``features`` CLI.

``stack_features(probs)`` takes the ensemble's hemorrhage probabilities ``[N_models, F, H, W]``
(torch tensor on CPU/CUDA, or numpy) and returns

* ``stack_uncertainty`` V and ``top_k`` (K actually used) — §3.1, :mod:`.uncertainty`;
* ``boundary_length`` B, ``components`` M (means over thresholds) and ``per_threshold`` —
  §3.2, :mod:`.morphology`;
* ``stack_score``, ``frame_scores``, ``regions`` — §2, :mod:`.detection`;
* the mean heatmap and JS map tensors (for overlays; not serialised) and seconds per stage.

CLI::

    features --probs probs.npy [--top-k 200] [--crop 160] [--stride 80] [--thresholds 0.3 0.5 0.7]
             [--detection-threshold 0.5] [--backend auto|torch|scipy] [--device cpu|cuda] [--detail]

``probs.npy`` holds float32 ``[models, frames, H, W]``. Prints one JSON object with the keys
``stack_uncertainty``, ``top_k``, ``boundary_length``, ``components``, ``per_threshold`` (list of
``{"threshold", "boundary_length", "components"}``); ``--detail`` adds ``stack_score``,
``frame_scores``, ``n_regions``, ``regions`` and ``timings_s``. Bad input (missing/unreadable
file, wrong ndim, values outside [0, 1], NaN, frames smaller than the crop) exits with code 2
and one line on stderr naming the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ichal.windows import DEFAULT_CROP, DEFAULT_STRIDE

from ._common import ArrayLike, InputError, as_float, as_tensor, check_probabilities
from .detection import DEFAULT_DETECTION_THRESHOLD, Region, detect
from .morphology import DEFAULT_THRESHOLDS, Backend, ThresholdFeatures, labeling_features
from .uncertainty import DEFAULT_TOP_K, uncertainty

__all__ = ["StackFeatures", "features_main", "stack_features"]


@dataclass
class StackFeatures:
    stack_uncertainty: float
    top_k: int
    boundary_length: float
    components: float
    per_threshold: list[ThresholdFeatures]
    stack_score: float
    frame_scores: list[float]
    regions: list[Region]
    top_patches: tuple[tuple[int, int, int], ...]  # (frame, top, left) of the K most uncertain patches
    timings_s: dict[str, float]
    mean_heatmap: torch.Tensor = field(repr=False)  # [F, H, W]
    js_map: torch.Tensor = field(repr=False)  # [F, H, W]

    def to_dict(self, *, detail: bool = True, max_regions: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (tensors are left out)."""
        out: dict[str, Any] = {
            "stack_uncertainty": self.stack_uncertainty,
            "top_k": self.top_k,
            "boundary_length": self.boundary_length,
            "components": self.components,
            "per_threshold": [p.to_dict() for p in self.per_threshold],
        }
        if detail:
            regs = self.regions if max_regions is None else self.regions[:max_regions]
            out.update(
                stack_score=self.stack_score,
                frame_scores=list(self.frame_scores),
                n_regions=len(self.regions),
                regions=[r.to_dict() for r in regs],
                top_patches=[list(p) for p in self.top_patches],
                timings_s=dict(self.timings_s),
            )
        return out


def _sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


def stack_features(
    probs: ArrayLike,
    *,
    top_k: int = DEFAULT_TOP_K,
    crop: int = DEFAULT_CROP,
    stride: int = DEFAULT_STRIDE,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    detection_threshold: float = DEFAULT_DETECTION_THRESHOLD,
    connectivity: Literal["2d", "3d"] = "2d",
    backend: Backend = "auto",
) -> StackFeatures:
    """Uncertainty (§3.1), labeling-time features (§3.2) and detections (§2) of one stack.

    Raises:
        InputError: malformed ``probs`` (ndim ≠ 4, empty, NaN, values outside [0, 1]).
        ValueError: frames smaller than ``crop`` or invalid parameters.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    t = as_tensor(probs)
    check_probabilities(t, ndim=4)
    t = as_float(t)
    timings["validate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    unc = uncertainty(t, top_k=top_k, crop=crop, stride=stride, validate=False)
    _sync(unc.js_map)
    timings["uncertainty"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lab = labeling_features(unc.mean_heatmap, thresholds, backend, validate=False)
    timings["labeling_features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    det = detect(
        unc.mean_heatmap,
        threshold=detection_threshold,
        connectivity=connectivity,
        backend=backend,
        validate=False,
    )
    timings["detection"] = time.perf_counter() - t0

    return StackFeatures(
        stack_uncertainty=unc.stack_uncertainty,
        top_k=unc.top_k,
        boundary_length=lab.boundary_length,
        components=lab.components,
        per_threshold=lab.per_threshold,
        stack_score=det.stack_score,
        frame_scores=det.frame_scores,
        regions=det.regions,
        top_patches=unc.top_patches,
        timings_s=timings,
        mean_heatmap=unc.mean_heatmap,
        js_map=unc.js_map,
    )


# ------------------------------------------------------------------------------------------------- CLI
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit code 2 (argparse's own code)
        self.exit(2, f"features: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="features", description="Per-stack active-learning features from ensemble probabilities."
    )
    p.add_argument("--probs", required=True, help="float32 .npy of shape [models, frames, H, W]")
    p.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, help="patches averaged into the stack uncertainty"
    )
    p.add_argument("--crop", type=int, default=DEFAULT_CROP, help="sliding-window crop size (px)")
    p.add_argument("--stride", type=int, default=DEFAULT_STRIDE, help="sliding-window stride (px)")
    p.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=list(DEFAULT_THRESHOLDS),
        help="mask thresholds for B and M",
    )
    p.add_argument("--detection-threshold", type=float, default=DEFAULT_DETECTION_THRESHOLD)
    p.add_argument("--backend", choices=("auto", "torch", "scipy"), default="auto")
    p.add_argument(
        "--device", default="cpu", help="torch device for the computation (cpu, cuda, cuda:1, ...)"
    )
    p.add_argument("--detail", action="store_true", help="also print detection results and timings")
    return p


def _fail(message: str) -> int:
    print(f"features: error: {message}", file=sys.stderr)
    return 2


def features_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``features`` / ``python -m ichal.features``; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or usage error (2, message already printed)
        return int(exc.code or 0)
    if args.top_k < 1:
        return _fail(f"--top-k must be >= 1, got {args.top_k}")
    if args.crop < 1 or args.stride < 1:
        return _fail(f"--crop and --stride must be positive, got {args.crop} and {args.stride}")
    if any(not np.isfinite(x) for x in args.thresholds):
        return _fail("--thresholds must be finite numbers")
    try:
        arr = np.load(args.probs, allow_pickle=False)
    except FileNotFoundError:
        return _fail(f"probs file not found: {args.probs}")
    except (OSError, ValueError, EOFError) as exc:
        return _fail(
            f"cannot read {args.probs} as .npy: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
        )
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        return _fail(f"probs must be a numeric array, got dtype {getattr(arr, 'dtype', type(arr).__name__)}")
    if arr.ndim != 4:
        return _fail(
            f"probs must have 4 dimensions [models, frames, H, W], got {arr.ndim} (shape {arr.shape})"
        )
    try:
        device = torch.device(args.device)
        probs = as_tensor(arr.astype(np.float32, copy=False), device=device)
    except (RuntimeError, ValueError) as exc:
        return _fail(f"cannot use device {args.device!r}: {str(exc).splitlines()[0]}")
    try:
        res = stack_features(
            probs,
            top_k=args.top_k,
            crop=args.crop,
            stride=args.stride,
            thresholds=args.thresholds,
            detection_threshold=args.detection_threshold,
            backend=args.backend,
        )
    except (InputError, ValueError) as exc:
        return _fail(str(exc).splitlines()[0])
    json.dump(res.to_dict(detail=args.detail), sys.stdout)
    sys.stdout.write("\n")
    return 0
