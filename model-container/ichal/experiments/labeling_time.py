"""Experiment 1 — the labeling-time model (paper §3.2, eq. 2, Fig. 3).

A set of simulated completions (phantoms with their true B, M and simulated annotator time, see
``LabelingTimeTruth``) is fitted with ``ich-al fit-time``, as the deployed refit does. The batch
check — predicted total time of a selected batch (T from the ensemble's heatmap B, M) against the
simulated actual total — is computed by the cost-sensitive experiment, which makes the selections.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import ExperimentConfig
from .data import PoolStack
from .selection import IchAl, TimeFit


def fit_time_model(ich_al: IchAl, completions: list[PoolStack]) -> TimeFit:
    return ich_al.fit_time(
        [
            {"boundaryLength": s.boundary_length, "components": s.components, "seconds": s.true_seconds}
            for s in completions
        ]
    )


def single_feature_fit(x: np.ndarray, log_t: np.ndarray) -> dict[str, float]:
    """log t = a x + c by least squares, with R² (the one-feature lines drawn in Fig. 3)."""
    a, c = np.polyfit(x, log_t, 1)
    residual = log_t - (a * x + c)
    r2 = 1.0 - float(residual @ residual) / float(((log_t - log_t.mean()) ** 2).sum())
    return {"slope": float(a), "intercept": float(c), "r2": r2}


def labeling_time_experiment(
    config: ExperimentConfig, ich_al: IchAl, completions: list[PoolStack]
) -> tuple[TimeFit, dict[str, Any]]:
    fit = fit_time_model(ich_al, completions)
    seconds = np.array([s.true_seconds for s in completions])
    log_b = np.log1p([s.boundary_length for s in completions])
    log_m = np.log1p([s.components for s in completions])
    log_t = np.log(seconds)
    positives = np.array([s.positive for s in completions])
    result = {
        "n": len(completions),
        "true_coefficients": {
            "alpha": config.truth.alpha,
            "beta": config.truth.beta,
            "gamma": config.truth.gamma,
            "sigma": config.truth.sigma,
        },
        "fit": fit.to_json(),
        "seconds_min": float(seconds.min()),
        "seconds_max": float(seconds.max()),
        "orders_of_magnitude": float(math.log10(seconds.max() / seconds.min())),
        "total_hours": float(seconds.sum() / 3600),
        "single_feature": {
            "log_boundary_length": single_feature_fit(log_b, log_t),
            "log_components": single_feature_fit(log_m, log_t),
        },
        "points": [
            {
                "id": s.id,
                "boundary_length": s.boundary_length,
                "components": s.components,
                "seconds": s.true_seconds,
                "positive": bool(p),
            }
            for s, p in zip(completions, positives)
        ],
    }
    return fit, result


def batch_time_check(
    fit: TimeFit, chosen: list[PoolStack], predicted_seconds: list[float], fig3_heatmap_seconds: list[float]
) -> dict[str, float]:
    """A selected batch's simulated actual total against
    * ``predicted``: what selection used — heatmap B, M through the time model refitted on the seed set;
    * ``fig3_heatmap``: heatmap B, M through the Fig. 3 fit (true-mask B, M of the completions);
    * ``true_masks``: the Fig. 3 fit applied to the true B, M (the time model's own error)."""
    actual = float(sum(s.true_seconds for s in chosen))
    totals = {
        "predicted": float(sum(predicted_seconds)),
        "fig3_heatmap": float(sum(fig3_heatmap_seconds)),
        "true_masks": float(sum(fit.predicted_seconds(s.boundary_length, s.components) for s in chosen)),
    }
    out: dict[str, float] = {"stacks": len(chosen), "actual_hours": actual / 3600}
    for key, total in totals.items():
        suffix = "" if key == "predicted" else f"_{key}"
        out[f"predicted{suffix}_hours"] = total / 3600
        out[f"relative_error{suffix}"] = (total - actual) / actual if actual > 0 else float("nan")
    return out
