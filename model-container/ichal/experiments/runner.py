"""Runs the experiments and writes README.md, the PNG plots, results.json, timings.json and gallery.npz.

    python -m ichal experiments [--out DIR] [--config cpu|gpu] [--seeds N] [--seed S] [--threads T] [--report-only]

``results.json`` depends only on the configuration, the seed and the torch thread count (CPU), except
the selection-cost seconds and the claim decided from them; run times go to ``timings.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .claims import CLAIMS, evaluate_claims
from .config import CONFIGS, GPU, ExperimentConfig
from .core_set import core_set_experiment, selection_cost
from .cost_sensitive import cost_sensitive_experiment
from .data import PoolStack, build_pool
from .domain import domain_experiment
from .labeling_time import labeling_time_experiment
from .report import write_report
from .selection import REPO_ROOT, IchAl

OUTPUTS = (
    "README.md",
    "results.json",
    "timings.json",
    "gallery.npz",
    "labeling_time.png",
    "plateau.png",
    "core_set.png",
    "core_set_paired.png",
    "cost_sensitive.png",
    "cost_sensitive_paired.png",
    "cost_sensitive_counts.png",
    "selection_cost.png",
    "table1.png",
    "gallery.png",
)
GALLERY_KEYS = ("hu", "mask", "heatmap")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN → None, numpy scalars → Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def build_sets(config: ExperimentConfig, seed: int, progress) -> dict[str, list[PoolStack]]:
    """Every phantom set of a run, each from its own seed; the U sets have only faint bleeds."""
    plan = (
        ("pool", config.pool_size, "drawn"),
        ("test", config.test_size, "drawn"),
        ("validation", config.validation_size, "drawn"),
        ("completions", config.timing_fit_size, "drawn"),
        ("u_train", config.u_train_size, "faint"),
        ("u_validation", config.validation_size, "faint"),
        ("u_test", config.u_test_size, "faint"),
        ("wild", config.wild_size, "faint"),
    )
    seeds = np.random.SeedSequence([seed, 1]).generate_state(len(plan))
    return {
        name: build_pool(config, count, int(s), f"{name}-", progress, lesion_contrast=contrast)
        for (name, count, contrast), s in zip(plan, seeds)
    }


def _load() -> float:
    return os.getloadavg()[0]


def run_experiments(
    config: ExperimentConfig,
    out: Path,
    *,
    seed: int = 0,
    progress=None,
    ich_al: IchAl | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """All experiments; writes results.json, timings.json and gallery.npz (and, with ``report``, the
    PNGs and README.md) into ``out``; returns the results."""
    started = time.monotonic()
    if progress is None:

        def progress(line: str) -> None:
            elapsed = time.monotonic() - started
            print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {line}", file=sys.stderr, flush=True)

    ich_al = ich_al or IchAl()
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    load_start = _load()
    progress(
        f"experiments, config {config.name}, seed {seed}, {threads} torch thread(s), load {load_start:.2f}, output {out}"
    )
    sets = build_sets(config, seed, progress)
    phase: dict[str, float] = {}

    def timed(name: str, job):
        t0 = time.monotonic()
        value = job()
        phase[name] = time.monotonic() - t0
        progress(f"{name} done in {phase[name] / 60:.1f} min")
        return value

    fit, labeling = timed(
        "labeling_time", lambda: labeling_time_experiment(config, ich_al, sets["completions"])
    )
    cost_rows = timed("selection_cost", lambda: selection_cost(config, ich_al, seed, progress))
    args = (sets["pool"], sets["validation"], sets["test"], seed, progress)
    cost, gallery = timed("cost_sensitive", lambda: cost_sensitive_experiment(config, ich_al, fit, *args))
    core = timed("core_set", lambda: core_set_experiment(config, ich_al, *args))
    domain = timed("domain", lambda: domain_experiment(config, ich_al, fit, sets, seed, progress))
    results = _clean(
        {
            "note": "synthetic phantoms and a simulated annotator: not clinical results",
            "seed": seed,
            "torch_threads": threads,
            "config": config.to_json(),
            "gpu_config": GPU.to_json(),
            "labeling_time": labeling,
            "selection_cost": cost_rows,
            "cost_sensitive": cost,
            "core_set": core,
            "domain": domain,
            "gallery": {
                name: [{k: v for k, v in item.items() if k not in GALLERY_KEYS} for item in items]
                for name, items in gallery.items()
            },
        }
    )
    results["claims_checked"] = [c.to_json() for c in CLAIMS]
    results["claims"] = _clean(evaluate_claims(results))
    for claim in results["claims"]:
        progress(f"claim {claim['id']}: {claim['verdict']} — {claim['observed']}")
    np.savez_compressed(
        out / "gallery.npz",
        **{
            f"{name}_{i}_{k}": item[k]
            for name, items in gallery.items()
            for i, item in enumerate(items)
            for k in GALLERY_KEYS
        },
    )
    timings = {
        "wall_seconds": time.monotonic() - started,
        "threads": threads,
        "cores": core_count(),
        "load_average_start": load_start,
        "load_average_end": _load(),
        "phases_seconds": phase,
        "ich_al_calls": ich_al.calls,
        "ich_al_seconds": ich_al.seconds,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    (out / "timings.json").write_text(json.dumps(_clean(timings), indent=1, sort_keys=True) + "\n")
    if report:
        progress("writing plots and README")
        write_report(out, results, timings)
    progress(
        f"done in {timings['wall_seconds'] / 60:.1f} min (load average {load_start:.2f} at the start, "
        f"{timings['load_average_end']:.2f} at the end, {core_count()} cores): {', '.join(OUTPUTS)} in {out}"
    )
    return results


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal experiments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "docs" / "experiments",
        help="output folder (default: docs/experiments of the repository)",
    )
    parser.add_argument(
        "--config", choices=sorted(CONFIGS), default="cpu", help="sizes (default cpu: ~20 min on 2 cores)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="paired repeats of the core-set and cost-sensitive experiments (default: the config's)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of pools, selections and initialisation (default 0)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: the configuration's, else the cores this process may use)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="redraw the plots and README from results.json and timings.json in --out",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(
            args.out,
            json.loads((args.out / "results.json").read_text()),
            json.loads((args.out / "timings.json").read_text()),
        )
        return 0
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be ≥ 1")
    config = CONFIGS[args.config].with_overrides(repeats=args.seeds)
    torch.set_num_threads(args.threads or config.threads or core_count())
    run_experiments(config, args.out, seed=args.seed)
    return 0
