"""Experiment 4 — a second domain (paper §5.3, Table 1) and "AL in the wild".

The seed domain S is the training pool; the domain U has another lesion mix (every bleed faint,
42–48 HU). Table 1: a committee trained on S and one trained on S ∪ U_train (same seeds, each to a
validation plateau on both domains' validation stacks) are tested on S_test and U_test.

In the wild: the S committee scores an unlabeled U pool, the time model is refitted on S (heatmap
B, M of the S committee against the S stacks' simulated times), and CAL chooses one batch under a
budget of ``wild_budget_share`` of the pool's predicted total; the batch's predicted hours are
compared with its simulated actual hours (the paper: within 10 % for a 100-hour batch).
"""

from __future__ import annotations

from typing import Any

from ..model.ensemble import Ensemble
from .config import ExperimentConfig
from .data import PoolStack, Progress, evaluate, score, train_to_plateau
from .selection import IchAl, TimeFit


def domain_experiment(
    config: ExperimentConfig,
    ich_al: IchAl,
    fit: TimeFit,
    sets: dict[str, list[PoolStack]],
    seed: int,
    progress: Progress,
) -> dict[str, Any]:
    """``sets``: pool (S), test (S_test), validation, u_train, u_validation, u_test, wild."""
    validation = sets["validation"] + sets["u_validation"]
    training_seed = seed * 1000 + 900
    committees: dict[str, Ensemble] = {}
    table: dict[str, Any] = {}
    for name, stacks in (("S", sets["pool"]), ("S+U", sets["pool"] + sets["u_train"])):
        committee, curve = train_to_plateau(
            config, stacks, validation, training_seed, progress, f"Table 1 committee {name}"
        )
        committees[name] = committee
        table[name] = {
            "stacks": len(stacks),
            "curve": curve,
            "S_test": evaluate(config, committee, sets["test"]),
            "U_test": evaluate(config, committee, sets["u_test"]),
        }
        progress(
            f"  {name}: S_test pixel AP {table[name]['S_test']['pixel_ap']:.3f}, "
            f"U_test pixel AP {table[name]['U_test']['pixel_ap']:.3f}"
        )
    return {"table1": table, "wild": wild_batch(config, ich_al, committees["S"], sets, progress)}


def wild_batch(
    config: ExperimentConfig,
    ich_al: IchAl,
    committee: Ensemble,
    sets: dict[str, list[PoolStack]],
    progress: Progress,
) -> dict[str, Any]:
    seed_scores = score(config, committee, sets["pool"])
    refit = ich_al.fit_time(
        [
            {
                "boundaryLength": seed_scores[s.id].boundary_length,
                "components": seed_scores[s.id].components,
                "seconds": s.true_seconds,
            }
            for s in sets["pool"]
        ]
    )
    wild = sets["wild"]
    scores = score(config, committee, wild)
    predicted = {
        s.id: refit.predicted_seconds(scores[s.id].boundary_length, scores[s.id].components) for s in wild
    }
    budget = config.wild_budget_share * sum(predicted.values())
    entries = [
        {"id": s.id, "uncertainty": scores[s.id].uncertainty, "predictedSeconds": predicted[s.id]}
        for s in wild
    ]
    chosen = set(ich_al.select(entries, budget_seconds=budget, strategy="knapsack")["selected"])
    predicted_hours = sum(predicted[i] for i in chosen) / 3600
    actual_hours = sum(s.true_seconds for s in wild if s.id in chosen) / 3600
    result = {
        "pool_stacks": len(wild),
        "pool_predicted_hours": sum(predicted.values()) / 3600,
        "budget_hours": budget / 3600,
        "stacks": len(chosen),
        "positive": sum(s.positive for s in wild if s.id in chosen),
        "predicted_hours": predicted_hours,
        "actual_hours": actual_hours,
        "relative_error": (predicted_hours - actual_hours) / actual_hours if actual_hours > 0 else None,
        "refit": refit.to_json(),
    }
    progress(
        f"  in the wild: {len(chosen)} of {len(wild)} U stacks, {predicted_hours:.2f} h predicted, "
        f"{actual_hours:.2f} h actual (budget {budget / 3600:.2f} h)"
    )
    return result
