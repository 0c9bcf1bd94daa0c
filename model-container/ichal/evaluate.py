"""Held-out evaluation on phantoms: AP at pixel, region, frame and stack level (definitions in
``ichal.features.metrics``), and stack uncertainty V by lesion kind.

Stacks go through the serving path (``StackScorer.score_stack``: model grid, windowing, ensemble,
features); ground-truth masks are mapped onto the model grid with the same transform as the HU.
Lesion groups for the uncertainty check (positive stacks only):
  * small or faint — the largest lesion is under ``SMALL_ML`` ml, or some lesion is faint;
  * large and obvious — the largest lesion is at least ``LARGE_ML`` ml and none is faint.
Phantom results are properties of the simulation, not clinical results.

    python -m ichal evaluate --model-dir DIR [--count 40] [--seed 12345] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .features.metrics import DetectionEvaluator
from .io.stack import CtStack
from .phantoms import generate_pool
from .phantoms.generator import PhantomStack
from .preprocessing import mask_to_model_grid, plan_model_grid
from .scoring import StackScorer

SMALL_ML = 2.0
LARGE_ML = 10.0


def lesion_group(stack: PhantomStack) -> str:
    if stack.negative or not stack.lesions:
        return "negative"
    largest = max(lesion.volume_ml for lesion in stack.lesions)
    faint = any(lesion.faint for lesion in stack.lesions)
    if largest < SMALL_ML or faint:
        return "small_or_faint"
    if largest >= LARGE_ML:
        return "large_obvious"
    return "medium"


def evaluate(scorer: StackScorer, phantoms: Iterable[PhantomStack], *, progress=None) -> dict[str, Any]:
    evaluator = DetectionEvaluator(detection_threshold=scorer.options.detection_threshold)
    per_stack = []
    for i, phantom in enumerate(phantoms):
        stack = CtStack(hu=phantom.hu, pixel_spacing=phantom.pixel_spacing, slice_spacing=phantom.slice_spacing, source=f"phantom {phantom.seed}")
        result, features = scorer.score_stack(stack)
        transform = plan_model_grid(phantom.hu.shape[1:], phantom.pixel_spacing, scorer.options.grid_size)
        evaluator.add(features.mean_heatmap, mask_to_model_grid(phantom.mask, transform))
        per_stack.append(
            {
                "seed": phantom.seed,
                "group": lesion_group(phantom),
                "stack_uncertainty": result["stack_uncertainty"],
                "stack_score": result["stack_score"],
                "boundary_length": result["boundary_length"],
                "components": result["components"],
                "true_voxels": int(phantom.mask.sum()),
                "lesions": len(phantom.lesions),
            }
        )
        if progress:
            progress(f"evaluated {i + 1} stacks")
    groups: dict[str, list[float]] = {}
    for row in per_stack:
        groups.setdefault(row["group"], []).append(row["stack_uncertainty"])
    return {
        "metrics": evaluator.result(),
        "uncertainty_by_group": {g: {"n": len(v), "mean": float(np.mean(v))} for g, v in sorted(groups.items())},
        "stacks": per_stack,
        "model_version": scorer.model_version,
        "note": "synthetic phantoms: not clinical results",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ichal evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=12345, help="pool seed (use one the training pool did not)")
    parser.add_argument("--size", type=int, default=512, help="phantom frame size in pixels")
    parser.add_argument("--negative-fraction", type=float, default=0.3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--per-stack", action="store_true", help="include one row per stack")
    args = parser.parse_args(argv)
    scorer = StackScorer.from_model_dir(args.model_dir, device=args.device)
    pool = generate_pool(args.count, args.seed, negative_fraction=args.negative_fraction, size=args.size)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = evaluate(scorer, pool, progress=progress)
    if not args.per_stack:
        report.pop("stacks")
    print(json.dumps(report, indent=2))
    return 0
