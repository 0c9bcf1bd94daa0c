"""Runs the three experiments and writes README.md, the PNG plots, results.json and timings.json.

    python -m ichal experiments [--out DIR] [--config cpu|gpu] [--seeds N] [--seed S] [--threads T] [--report-only]

``results.json`` depends only on the configuration, the seed and the torch thread count (CPU);
wall-clock measurements go to ``timings.json``.
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

from .config import CONFIGS, GPU, ExperimentConfig
from .core_set import core_set_experiment, selection_cost
from .cost_sensitive import cost_sensitive_experiment
from .data import build_pool
from .labeling_time import labeling_time_experiment
from .report import (
    plot_core_set,
    plot_cost_sensitive,
    plot_counts,
    plot_labeling_time,
    plot_selection_cost,
    write_readme,
)
from .selection import REPO_ROOT, IchAl

OUTPUTS = (
    "README.md",
    "results.json",
    "timings.json",
    "labeling_time.png",
    "core_set.png",
    "cost_sensitive.png",
    "cost_sensitive_counts.png",
    "selection_cost.png",
)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN → None, numpy scalars → Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_experiments(
    config: ExperimentConfig,
    out: Path,
    *,
    seed: int = 0,
    progress=None,
    ich_al: IchAl | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """All three experiments; writes results.json and timings.json (and, with ``report``, the PNGs and
    README.md) into ``out``; returns the results."""
    started = time.monotonic()
    if progress is None:

        def progress(line: str) -> None:
            elapsed = time.monotonic() - started
            print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {line}", file=sys.stderr, flush=True)

    ich_al = ich_al or IchAl()
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    progress(f"experiments, config {config.name}, seed {seed}, {threads} torch thread(s), output {out}")
    pool_seed, test_seed, fit_seed = (int(x) for x in np.random.SeedSequence([seed, 1]).generate_state(3))
    pool = build_pool(config, config.pool_size, pool_seed, "pool-", progress)
    test = build_pool(config, config.test_size, test_seed, "test-", progress)
    completions = build_pool(config, config.timing_fit_size, fit_seed, "completed-", progress)
    phase: dict[str, float] = {}

    t0 = time.monotonic()
    fit, labeling = labeling_time_experiment(config, ich_al, completions)
    progress(
        f"labeling time: ich-al fit-time on {fit.n} stacks: α {fit.alpha:.3f}, β {fit.beta:.3f}, γ {fit.gamma:.2f}, R² {fit.r2:.3f}; "
        f"times span {labeling['orders_of_magnitude']:.1f} orders of magnitude"
    )
    phase["labeling_time"] = time.monotonic() - t0

    t0 = time.monotonic()
    progress("selection cost on synthetic feature sets")
    cost_rows = selection_cost(config, ich_al, seed, progress)
    phase["selection_cost"] = time.monotonic() - t0

    t0 = time.monotonic()
    cost = cost_sensitive_experiment(config, ich_al, fit, pool, test, seed, progress)
    cost["batches"] = [
        {"repeat": rep["repeat"], "strategy": name, "round": row["round"], **row["batch_time"]}
        for rep in cost["repeats"]
        for name, rows in rep["strategies"].items()
        for row in rows[1:]
        if row.get("batch_time")
    ]
    phase["cost_sensitive"] = time.monotonic() - t0

    t0 = time.monotonic()
    core, core_timings = core_set_experiment(config, ich_al, pool, test, seed, progress)
    phase["core_set"] = time.monotonic() - t0

    results = _clean(
        {
            "note": "synthetic phantoms and a simulated annotator: not clinical results",
            "seed": seed,
            "torch_threads": threads,
            "config": config.to_json(),
            "gpu_config": GPU.to_json(),
            "labeling_time": labeling,
            "cost_sensitive": cost,
            "core_set": core,
        }
    )
    timings = _clean(
        {
            "wall_seconds": time.monotonic() - started,
            "threads": threads,
            "phases_seconds": phase,
            "selection_cost": cost_rows,
            "core_set": core_timings,
            "ich_al_calls": ich_al.calls,
            "ich_al_seconds": ich_al.seconds,
        }
    )
    progress("writing plots and README")
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    timings["wall_seconds"] = time.monotonic() - started
    (out / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    if report:
        write_report(out, results, timings)
    progress(f"done in {timings['wall_seconds'] / 60:.1f} min: {', '.join(OUTPUTS)} in {out}")
    return results


def write_report(out: Path, results: dict[str, Any], timings: dict[str, Any]) -> None:
    """The PNGs and README.md from the results and timings (also ``--report-only``)."""
    plot_labeling_time(
        results["labeling_time"], results["cost_sensitive"]["batches"], out / "labeling_time.png"
    )
    plot_core_set(results["core_set"], out / "core_set.png")
    increment = results["config"]["cost_increment"]
    plot_cost_sensitive(results["cost_sensitive"], out / "cost_sensitive.png", increment)
    plot_counts(results["cost_sensitive"], out / "cost_sensitive_counts.png", increment)
    plot_selection_cost(timings["selection_cost"], out / "selection_cost.png")
    write_readme(out / "README.md", results, timings)


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
        help="repeats of the cost-sensitive experiment (default: the config's)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of pools, selections and initialisation (default 0)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: the cores this process may use)"
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
    torch.set_num_threads(args.threads or core_count())
    config = CONFIGS[args.config].with_overrides(cost_repeats=args.seeds)
    run_experiments(config, args.out, seed=args.seed)
    return 0
