"""Held-out evaluation on phantoms: AP at pixel, region, frame and stack level (definitions in
``ichal.features.metrics``), and stack uncertainty V by lesion kind.

Stacks go through the serving path (``StackScorer.score_stack``: model grid, windowing, ensemble,
features); ground-truth masks are mapped onto the model grid with the same transform as the HU.
Lesion groups for the uncertainty check (positive stacks only):
  * small or faint — the largest lesion is under ``SMALL_ML`` ml, or some lesion is faint;
  * large and obvious — the largest lesion is at least ``LARGE_ML`` ml and none is faint.
``uncertainty_rank_correlation``: Spearman's rho, over the positive stacks, of V against the
predicted boundary length B (the labeling-time feature) and against the true lesion volume in
voxels — how much uncertainty and annotation cost go together (the paper's reason to weigh V by T).
Paired contrast (``--paired-contrast N``): N positive phantoms generated twice from the same seed,
once with every lesion acute and once with every lesion faint (``lesion_contrast``: same head, noise,
shapes and mask; only the blood density differs), both scored. Reported per pair and on average:
V, and the mean heatmap and mean JS divergence inside the true mask. JS measures disagreement
between the committee's members, not how unsure each one is: where all members answer p ≈ 0.3 the
JS divergence is 0. ``--figure PNG`` draws the paired frames (CT, mean heatmap, JS) of a few pairs.
Phantom results are properties of the simulation, not clinical results.

    python -m ichal evaluate --model-dir DIR [--count 40] [--seed 12345] [--size 128]
                             [--paired-contrast 16] [--figure pairs.png]
    python -m ichal evaluate --model-dir DIR --annotated-dir CHANNEL

``--annotated-dir``: instead of generated phantoms, the annotated stacks of a training channel
(``ichal.train.annotations``: uploaded study + accepted mask), e.g. the learning loop's fixed
validation split; the same AP metrics, for judging a new model against the one in service.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .features.metrics import DetectionEvaluator
from .io.stack import CtStack
from .phantoms import generate_pool, generate_stack, pool_seeds
from .phantoms.generator import PhantomStack
from .preprocessing import mask_to_model_grid, plan_model_grid, to_model_grid
from .scoring import StackScorer
from .train.annotations import annotated_folders, read_annotated_stack

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
        result, features, mask = _score_phantom(scorer, phantom)
        evaluator.add(features.mean_heatmap, mask)
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
        "uncertainty_by_group": {
            g: {"n": len(v), "mean": float(np.mean(v))} for g, v in sorted(groups.items())
        },
        "uncertainty_rank_correlation": _rank_correlation(per_stack),
        "stacks": per_stack,
        "model_version": scorer.model_version,
        "note": "synthetic phantoms: not clinical results",
    }


def evaluate_annotated(scorer: StackScorer, folders: Iterable[Path], *, progress=None) -> dict[str, Any]:
    """Pixel, region, frame and stack AP of ``scorer`` on annotated stacks (their accepted masks as truth)."""
    evaluator = DetectionEvaluator(detection_threshold=scorer.options.detection_threshold)
    names = []
    for i, folder in enumerate(folders):
        annotated = read_annotated_stack(folder)
        _, features = scorer.score_stack(annotated.stack)
        shape = annotated.stack.hu.shape[1:]
        transform = plan_model_grid(shape, annotated.stack.pixel_spacing, scorer.options.grid_size)
        evaluator.add(features.mean_heatmap, mask_to_model_grid(annotated.mask, transform))
        names.append(annotated.stack_id)
        if progress:
            progress(f"evaluated {i + 1} annotated stacks")
    return {"metrics": evaluator.result(), "stack_ids": names, "model_version": scorer.model_version}


def _json_ready(value: Any) -> Any:
    """NaN and infinities (an AP over no positives) as null, so that the report is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _rank_correlation(per_stack: list[dict[str, Any]]) -> dict[str, Any]:
    positive = [row for row in per_stack if row["group"] != "negative"]
    out: dict[str, Any] = {"n": len(positive)}
    for key in ("boundary_length", "true_voxels"):
        values = [row[key] for row in positive]
        v = [row["stack_uncertainty"] for row in positive]
        # Undefined (None) with fewer than 3 stacks or a constant column.
        usable = len(positive) >= 3 and np.ptp(v) > 0 and np.ptp(values) > 0
        out[f"v_vs_{key}"] = float(spearmanr(v, values).statistic) if usable else None
    return out


def _score_phantom(scorer: StackScorer, phantom: PhantomStack) -> tuple[dict[str, Any], Any, np.ndarray]:
    stack = CtStack(
        hu=phantom.hu,
        pixel_spacing=phantom.pixel_spacing,
        slice_spacing=phantom.slice_spacing,
        source=f"phantom {phantom.seed}",
    )
    result, features = scorer.score_stack(stack)
    transform = plan_model_grid(phantom.hu.shape[1:], phantom.pixel_spacing, scorer.options.grid_size)
    return result, features, mask_to_model_grid(phantom.mask, transform)


def paired_contrast(
    scorer: StackScorer, seeds: Iterable[int], *, size: int, progress=None, keep_maps: int = 0
) -> dict[str, Any]:
    """Scores each seed as an all-acute and an all-faint positive phantom (module docstring)."""
    pairs = []
    maps = []
    for i, seed in enumerate(seeds):
        row: dict[str, Any] = {"seed": int(seed)}
        kept = {}
        for contrast in ("acute", "faint"):
            phantom = generate_stack(int(seed), negative=False, size=size, lesion_contrast=contrast)
            result, features, mask = _score_phantom(scorer, phantom)
            heat = features.mean_heatmap.float().cpu().numpy()
            js = features.js_map.float().cpu().numpy()
            row[contrast] = {
                "stack_uncertainty": result["stack_uncertainty"],
                "mean_heatmap_in_mask": float(heat[mask].mean()),
                "mean_js_in_mask": float(js[mask].mean()),
            }
            if i < keep_maps:
                grid, _ = to_model_grid(phantom.hu, phantom.pixel_spacing, scorer.options.grid_size)
                kept[contrast] = (grid, heat, js, mask)
        row["largest_ml"] = round(max(lesion.volume_ml for lesion in phantom.lesions), 2)
        row["lesions"] = len(phantom.lesions)
        pairs.append(row)
        if kept:
            maps.append((int(seed), kept))
        if progress:
            progress(f"paired contrast: {i + 1} pairs scored")

    def mean(contrast: str, key: str) -> float:
        return float(np.mean([p[contrast][key] for p in pairs]))

    summary = {
        "pairs": len(pairs),
        "faint_higher_V": int(
            sum(p["faint"]["stack_uncertainty"] > p["acute"]["stack_uncertainty"] for p in pairs)
        ),
    }
    for contrast in ("acute", "faint"):
        summary[contrast] = {
            key: mean(contrast, key)
            for key in ("stack_uncertainty", "mean_heatmap_in_mask", "mean_js_in_mask")
        }
    return {"summary": summary, "pairs": pairs, "maps": maps}


def draw_pairs(maps: list, path: Path) -> None:
    """CT (brain window), mean heatmap and JS map of the frame with the most blood, acute over faint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2 * len(maps), 3, figsize=(7.5, 5.0 * len(maps)), squeeze=False)
    for n, (seed, kept) in enumerate(maps):
        k = int(np.argmax(kept["acute"][3].sum(axis=(1, 2))))
        for r, contrast in enumerate(("acute", "faint")):
            grid, heat, js, mask = kept[contrast]
            row = axes[2 * n + r]
            row[0].imshow(np.clip((grid[k] - 0.0) / 80.0, 0, 1), cmap="gray")
            row[0].contour(mask[k], levels=[0.5], colors="tab:red", linewidths=0.6)
            row[1].imshow(heat[k], cmap="magma", vmin=0, vmax=1)
            row[2].imshow(js[k], cmap="viridis", vmin=0, vmax=float(np.log(2.0)) / 2)
            row[0].set_ylabel(f"seed {seed}\n{contrast}", fontsize=8)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
    for ax, title in zip(
        axes[0], ("CT, brain window (true mask red)", "mean heatmap", "JS divergence (0–ln2/2)")
    ):
        ax.set_title(title, fontsize=8)
    fig.suptitle("Same lesions, acute vs faint (synthetic phantoms, not clinical)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument(
        "--annotated-dir", type=Path, default=None, help="evaluate on these annotated stacks instead"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the report (JSON) here")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument(
        "--seed", type=int, default=12345, help="pool seed (use one the training pool did not)"
    )
    parser.add_argument("--size", type=int, default=512, help="phantom frame size in pixels")
    parser.add_argument("--negative-fraction", type=float, default=0.3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--per-stack", action="store_true", help="include one row per stack")
    parser.add_argument(
        "--paired-contrast", type=int, default=0, metavar="N", help="also score N acute/faint pairs"
    )
    parser.add_argument(
        "--figure", type=Path, default=None, help="PNG of the first three pairs (needs --paired-contrast)"
    )
    args = parser.parse_args(argv)
    if args.figure and not args.paired_contrast:
        parser.error("--figure draws paired-contrast examples: give --paired-contrast N too")
    scorer = StackScorer.from_model_dir(args.model_dir, device=args.device)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.annotated_dir is not None:
        # No stacks is a valid answer (metrics null): a first round may hold nothing out yet.
        report = _json_ready(
            evaluate_annotated(scorer, annotated_folders(args.annotated_dir), progress=progress)
        )
        text = json.dumps(report, indent=2, allow_nan=False)
        if args.out is not None:
            args.out.write_text(text)
        print(text)
        return 0
    pool = generate_pool(args.count, args.seed, negative_fraction=args.negative_fraction, size=args.size)
    report = evaluate(scorer, pool, progress=progress)
    if not args.per_stack:
        report.pop("stacks")
    if args.paired_contrast:
        paired = paired_contrast(
            scorer,
            pool_seeds(args.paired_contrast, args.seed + 1),
            size=args.size,
            progress=progress,
            keep_maps=3 if args.figure else 0,
        )
        if args.figure:
            draw_pairs(paired["maps"], args.figure)
        report["paired_contrast"] = {
            "summary": paired["summary"],
            **({"pairs": paired["pairs"]} if args.per_stack else {}),
        }
    print(json.dumps(report, indent=2))
    return 0
