"""The PNG plots of a run (synthetic phantoms): means with 95 % intervals over paired repeats,
per-repeat paired differences, the validation plateau curves, Table 1 and the Fig. 6 gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

METRIC_LABELS = {
    "pixel_ap": "Pixel AP",
    "region_ap": "Region AP",
    "frame_ap": "Frame AP",
    "stack_ap": "Stack AP",
}
LABELS = {
    "qbc": "QBC (ours)",
    "qbc_similarity": "QBC + similarity",
    "random": "Random",
    "CAL": "CAL",
    "UAL": "UAL",
    "CAL_oracle": "CAL, oracle T",
    "UAL_oracle": "UAL, oracle T",
}
COLOURS = {
    "qbc": "tab:blue",
    "qbc_similarity": "tab:orange",
    "random": "tab:gray",
    "CAL": "tab:blue",
    "UAL": "tab:red",
    "CAL_oracle": "tab:cyan",
    "UAL_oracle": "tab:pink",
}
SYNTHETIC = "synthetic phantoms, not clinical data"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(fig, path: Path, title: str) -> None:
    fig.suptitle(f"{title} — {SYNTHETIC}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _band(ax, x, cells, colour, label, offset=0.0, dashed=False) -> None:
    """Mean with its 95 % interval as error bars."""
    mean = np.array([c["mean"] for c in cells])
    low = np.array([c["low"] for c in cells])
    high = np.array([c["high"] for c in cells])
    ax.errorbar(
        np.asarray(x, dtype=float) + offset,
        mean,
        yerr=[mean - low, high - mean],
        marker="o",
        ms=4,
        capsize=3,
        color=colour,
        ls="--" if dashed else "-",
        label=label,
    )


def plot_labeling_time(result: dict[str, Any], batches: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    pts = result["points"]
    seconds = np.array([p["seconds"] for p in pts])
    log_b = np.log1p([p["boundary_length"] for p in pts])
    log_m = np.log1p([p["components"] for p in pts])
    fit = result["fit"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    axes[0].scatter(log_b, seconds, s=14)
    axes[0].set_xlabel("log(1 + B), true mask")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("simulated labeling time (s)")
    predicted = np.exp(fit["alpha"] * log_b + fit["beta"] * log_m + fit["gamma"])
    axes[1].scatter(predicted, seconds, s=14)
    lo, hi = min(predicted.min(), seconds.min()) * 0.8, max(predicted.max(), seconds.max()) * 1.2
    axes[1].plot([lo, hi], [lo, hi], color="k", lw=1)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("fitted median time (s)")
    axes[1].set_title(f"ich-al fit-time on {result['n']} stacks: R² = {fit['r2']:.2f}", fontsize=9)
    ax = axes[2]
    for b in batches:
        ax.scatter(b["actual_hours"], b["predicted_hours"], color=COLOURS.get(b["strategy"], "k"), s=16)
    for name in sorted({b["strategy"] for b in batches}):
        ax.scatter([], [], color=COLOURS.get(name, "k"), label=LABELS.get(name, name), s=16)
    values = [v for b in batches for v in (b["actual_hours"], b["predicted_hours"]) if v > 0] or [1.0]
    lo, hi = min(values) / 1.5, max(values) * 1.5
    ax.plot([lo, hi], [lo, hi], color="k", lw=1)
    ax.fill_between(
        [lo, hi], [0.9 * lo, 0.9 * hi], [1.1 * lo, 1.1 * hi], color="k", alpha=0.15, label="±10 % (paper)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("simulated actual hours of a batch")
    ax.set_ylabel("predicted hours")
    ax.set_title("Batches: each round of each repeat, and the wild batch", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path, "Labeling-time model (paper Fig. 3, eq. 2)")


def plot_plateau(curves: dict[str, list[list[dict[str, float]]]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = {"cost-sensitive seed": "tab:blue", "core-set seed": "tab:orange", "Table 1": "tab:green"}
    for name, runs in curves.items():
        for i, curve in enumerate(runs):
            ax.plot(
                [p["steps"] for p in curve],
                [p["validation_pixel_ap"] for p in curve],
                marker="o",
                ms=3,
                color=colours.get(name, "k"),
                alpha=0.8,
                label=name if i == 0 else None,
            )
    ax.set_xlabel("training steps per model")
    ax.set_ylabel("validation pixel AP")
    ax.legend(fontsize=7)
    _save(fig, path, "Committees trained to a validation plateau")


def plot_curves(
    summary: dict[str, list[dict[str, Any]]],
    x: list[float],
    xlabels: list[str],
    path: Path,
    title: str,
    reference: dict[str, float] | None = None,
) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.9))
    names = list(summary)
    for ax, (metric, label) in zip(axes, METRIC_LABELS.items()):
        for j, name in enumerate(names):
            cells = [row[metric] for row in summary[name]]
            offset = (j - (len(names) - 1) / 2) * 0.06
            _band(ax, x, cells, COLOURS[name], LABELS[name], offset, dashed=name.endswith("oracle"))
        if reference:
            ax.axhline(reference[metric], color="k", ls=":", lw=1, label="whole pool (S1)")
        ax.set_xticks(x)
        ax.set_xticklabels(xlabels)
        ax.set_title(label)
    axes[0].set_ylabel("test AP: mean and 95 % interval over repeats")
    axes[0].legend(fontsize=7)
    _save(fig, path, title)


def plot_paired(paired: dict[str, dict[str, Any]], xlabels: dict[str, str], path: Path, title: str) -> None:
    """Per-repeat differences (dots) with their mean and 95 % interval, pixel and stack AP."""
    plt = _pyplot()
    pairs = list(paired)
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.8 * len(pairs), 6.4), squeeze=False)
    for col, pair in enumerate(pairs):
        rounds = sorted(paired[pair], key=int)
        for row, metric in enumerate(("pixel_ap", "stack_ap")):
            ax = axes[row][col]
            for x, r in enumerate(rounds):
                cell = paired[pair][r][metric]
                d = np.asarray(cell["differences"])
                ax.scatter(np.full(d.size, x) + np.linspace(-0.12, 0.12, d.size), d, s=12, color="tab:gray")
                ax.errorbar(
                    x + 0.25,
                    cell["mean"],
                    yerr=[[cell["mean"] - cell["low"]], [cell["high"] - cell["mean"]]],
                    marker="D",
                    capsize=4,
                    color="k",
                )
            ax.axhline(0, color="tab:red", lw=1)
            ax.set_xticks(range(len(rounds)))
            ax.set_xticklabels([xlabels[r] for r in rounds])
            ax.set_title(f"{pair.replace('-', ' − ')}: {METRIC_LABELS[metric]}", fontsize=9)
        axes[0][col].set_ylabel("difference per repeat") if col == 0 else None
    _save(fig, path, title)


def plot_counts(summary: dict[str, list[dict[str, Any]]], path: Path) -> None:
    plt = _pyplot()
    names = list(summary)
    rounds = len(summary[names[0]]) - 1
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        x = np.arange(1, rounds + 1) + (j - (len(names) - 1) / 2) * width
        for ax, key in zip(axes, ("added_count", "predicted_hours", "actual_hours")):
            cells = [summary[name][r][key] for r in range(1, rounds + 1)]
            mean = np.array([c["mean"] for c in cells])
            err = [mean - np.array([c["low"] for c in cells]), np.array([c["high"] for c in cells]) - mean]
            ax.bar(x, mean, width, yerr=err, capsize=2, color=COLOURS[name], label=LABELS[name])
    for ax, label in zip(
        axes,
        (
            "stacks chosen per round",
            "predicted hours per round (budget currency)",
            "simulated actual hours per round",
        ),
    ):
        ax.set_xticks(range(1, rounds + 1))
        ax.set_xlabel("round")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    _save(
        fig,
        path,
        "What each strategy buys per round (mean, 95 % interval; paper: UAL 8/11, CAL 94/107 stacks)",
    )


def plot_selection_cost(rows: list[dict[str, float]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 4))
    n = [r["n"] for r in rows]
    for key, label in (
        ("qbc_rank_seconds", "QBC: top-k of V (in process)"),
        ("ich_al_seconds", "ich-al select (uniform), incl. Node start-up"),
        ("similarity_seconds", "similarity step of QBC + similarity"),
    ):
        ax.plot(n, [r[key] for r in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("unlabeled pool size n (k = n/8 chosen)")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7)
    _save(fig, path, "Selection cost")


def plot_table1(table: dict[str, Any], paper: dict[str, dict[str, float]], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    cells = [("S_test", "pixel_ap"), ("S_test", "stack_ap"), ("U_test", "pixel_ap"), ("U_test", "stack_ap")]
    x = np.arange(len(cells))
    for j, name in enumerate(("S", "S+U")):
        axes[0].bar(
            x + (j - 0.5) * 0.38, [table[name][t][m] for t, m in cells], 0.38, label=f"trained on {name}"
        )
        axes[1].bar(
            x + (j - 0.5) * 0.38,
            [paper[name].get(f"{t}_{m}", np.nan) for t, m in cells],
            0.38,
            label=f"paper: {name}",
        )
    for ax, title in zip(axes, ("here (one training each)", "paper (real CT, mean of 4-model ensembles)")):
        ax.set_xticks(x)
        ax.set_xticklabels([f"{t}\n{METRIC_LABELS[m]}" for t, m in cells])
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    _save(fig, path, "Table 1: seed domain S vs S ∪ U_train (U: faint bleeds)")


def plot_gallery(items: dict[str, list[dict[str, Any]]], arrays: dict[str, np.ndarray], path: Path) -> None:
    """CT in the brain window, and the same frame with the committee's mean heatmap over it."""
    plt = _pyplot()
    names = [n for n in items if items[n]]
    cols = max(len(items[n]) for n in names) if names else 1
    fig, axes = plt.subplots(
        len(names) or 1, 2 * cols, figsize=(2.4 * 2 * cols, 2.8 * max(1, len(names))), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for row, name in enumerate(names):
        for i, item in enumerate(items[name]):
            hu = arrays[f"{name}_{i}_hu"].astype(np.float32)
            ct = np.clip((hu - 0.0) / 80.0, 0, 1)
            heat = arrays[f"{name}_{i}_heatmap"]
            axes[row][2 * i].imshow(ct, cmap="gray")
            axes[row][2 * i].set_title(f"{name} #{i + 1}: {item['id']}", fontsize=8)
            axes[row][2 * i + 1].imshow(ct, cmap="gray")
            axes[row][2 * i + 1].imshow(np.ma.masked_less(heat, 0.05), cmap="hot", alpha=0.6, vmin=0, vmax=1)
            axes[row][2 * i + 1].contour(
                arrays[f"{name}_{i}_mask"], levels=[0.5], colors="lime", linewidths=0.6
            )
            axes[row][2 * i + 1].set_title(
                f"V {item['uncertainty']:.3g}, {item['actual_seconds'] / 60:.1f} min, B {item['true_boundary_length']:.0f}",
                fontsize=8,
            )
    _save(fig, path, "Fig. 6 analogue: top first-round picks of CAL and UAL (heatmap; green = true mask)")
