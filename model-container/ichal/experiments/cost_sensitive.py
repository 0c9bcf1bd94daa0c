"""Experiment 3 — cost-sensitive active learning (paper §5.2, Fig. 5, Fig. 6).

Half the training pool is the labeled seed set, the other half the unlabeled pool. One currency:
each round's budget is ``cost_increment`` of the pool's *predicted* total labeling time (what a
deployment knows), spent by
  * ``CAL``: maximise ΣV subject to ΣT ≤ budget (``ich-al select --strategy knapsack``);
  * ``UAL``: highest V first while it fits (``--strategy uniform``);
  * ``random``: seeded random order while it fits (``--strategy random``);
with T predicted from the committee's heatmap B, M through the time model refitted on the seed
stacks; the hours charged are the stacks' simulated actual times, and both are reported. The
ablation ``CAL_oracle`` / ``UAL_oracle`` predicts T from the true masks (the Fig. 3 fit on true
B, M) and takes its budget in that currency: it separates the selection rule from how well the
committee draws. After each round the strategy's committee is updated (``data.update_committee``)
with training seeds shared by all strategies of the repeat, and AP is measured on the test set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.ensemble import Ensemble
from .config import ExperimentConfig
from .data import (
    METRICS,
    PoolStack,
    Progress,
    StackScore,
    evaluate,
    mean_heatmap,
    score,
    seed_subset,
    train_to_plateau,
    update_committee,
)
from .paired import interval, paired
from .selection import IchAl, IchAlError, TimeFit

STRATEGIES = {
    "CAL": ("knapsack", "heatmap"),
    "UAL": ("uniform", "heatmap"),
    "random": ("random", "heatmap"),
    "CAL_oracle": ("knapsack", "oracle"),
    "UAL_oracle": ("uniform", "oracle"),
}
"""Name → (ich-al strategy, where T comes from)."""
PAIRS = (("CAL", "UAL"), ("CAL", "random"), ("UAL", "random"), ("CAL_oracle", "UAL_oracle"))
MIN_REFIT_STACKS = 20
GALLERY_TOP = 3


def training_seed(seed: int, repeat: int, round_index: int) -> int:
    """Seed of the committee trained in a round: the same for every strategy of a repeat."""
    return seed * 1000 + 500 + repeat * 50 + round_index * 10


@dataclass
class Context:
    config: ExperimentConfig
    ich_al: IchAl
    fit: TimeFit
    by_id: dict[str, PoolStack]
    validation: list[PoolStack]
    test: list[PoolStack]
    seed: int
    progress: Progress


def cost_sensitive_experiment(
    config: ExperimentConfig,
    ich_al: IchAl,
    fit: TimeFit,
    pool: list[PoolStack],
    validation: list[PoolStack],
    test: list[PoolStack],
    seed: int,
    progress: Progress,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Returns (results, gallery): the gallery holds the CT frames and heatmaps of the stacks CAL
    and UAL rank highest in the first round (arrays, not JSON). Repeats share the seed round and
    vary the fine-tuning seeds and the random choices (the paper's error bars: initialisation and
    SGD, plus the random additions)."""
    ctx = Context(config, ich_al, fit, {s.id: s for s in pool}, validation, test, seed, progress)
    start = SeedRound.train(ctx, pool)
    repeats = [
        {
            "repeat": repeat,
            "strategies": {
                name: run_strategy(ctx, start, name, repeat, start.predictors[source], start.budgets[source])
                for name, (_, source) in STRATEGIES.items()
            },
        }
        for repeat in range(config.repeats)
    ]
    return {
        "seed": start.to_json(),
        "repeats": repeats,
        "summary": summarise(repeats, config.cost_rounds),
        "paired": paired_differences(repeats, config.cost_rounds),
    }, gallery_items(ctx, repeats[0], start.committee)


@dataclass
class SeedRound:
    """The seed set (half the pool), its committee trained to a validation plateau, the time model
    refitted on it, and the round budgets: shared by every strategy and repeat."""

    seed_ids: list[str]
    unlabeled: list[str]
    committee: Ensemble
    curve: list[dict[str, float]]
    metrics: dict[str, float]
    scores: dict[str, StackScore]
    refit: TimeFit
    note: str | None
    predictors: dict[str, Callable[[str, StackScore], float]]
    budgets: dict[str, float]
    pool_hours: dict[str, float]

    @classmethod
    def train(cls, ctx: Context, pool: list[PoolStack]) -> SeedRound:
        config, by_id = ctx.config, ctx.by_id
        rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, 5]))
        seed_ids = [pool[i].id for i in seed_subset(pool, len(pool) // 2, rng)]
        unlabeled = [s.id for s in pool if s.id not in set(seed_ids)]
        seed_stacks = [by_id[i] for i in seed_ids]
        committee, curve = train_to_plateau(
            config, seed_stacks, ctx.validation, training_seed(ctx.seed, 0, 0), ctx.progress, "seed committee"
        )
        metrics = evaluate(config, committee, ctx.test)
        scores = score(config, committee, [by_id[i] for i in unlabeled])
        refit, note = refit_time_model(ctx, committee, seed_stacks)
        predictors = {
            "heatmap": lambda i, s: refit.predicted_seconds(s.boundary_length, s.components),
            "oracle": lambda i, s: ctx.fit.predicted_seconds(by_id[i].boundary_length, by_id[i].components),
        }
        pool_hours = {kind: sum(f(i, scores[i]) for i in unlabeled) / 3600 for kind, f in predictors.items()}
        pool_hours["actual"] = sum(by_id[i].true_seconds for i in unlabeled) / 3600
        budgets = {kind: config.cost_increment * pool_hours[kind] * 3600 for kind in predictors}
        ctx.progress(
            f"cost-sensitive: seed {len(seed_ids)}, pool {len(unlabeled)} stacks: {pool_hours['heatmap']:.1f} h predicted, "
            f"{pool_hours['actual']:.1f} h actual; budget {budgets['heatmap'] / 3600:.2f} h per round "
            f"({refit_note(refit, note)}); seed " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )
        return cls(
            seed_ids,
            unlabeled,
            committee,
            curve,
            metrics,
            scores,
            refit,
            note,
            predictors,
            budgets,
            pool_hours,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "stacks": len(self.seed_ids),
            "curve": self.curve,
            "metrics": self.metrics,
            "refit": self.refit.to_json(),
            "refit_note": self.note,
            "pool_stacks": len(self.unlabeled),
            "pool_predicted_hours": self.pool_hours["heatmap"],
            "pool_oracle_predicted_hours": self.pool_hours["oracle"],
            "pool_actual_hours": self.pool_hours["actual"],
            "budget_hours": self.budgets["heatmap"] / 3600,
            "oracle_budget_hours": self.budgets["oracle"] / 3600,
        }


def run_strategy(
    ctx: Context,
    start: SeedRound,
    name: str,
    repeat: int,
    predict: Callable[[str, StackScore], float],
    budget: float,
) -> list[dict[str, Any]]:
    """Rounds of one strategy from the seed committee; ``predict(id, score)`` gives T in the
    currency of ``budget``; training seeds depend on the repeat and round, not the strategy."""
    config, by_id = ctx.config, ctx.by_id
    strategy = STRATEGIES[name][0]
    labeled, committee, scores = list(start.seed_ids), start.committee, start.scores
    rows: list[dict[str, Any]] = [{"round": 0, "labeled": len(labeled), "metrics": start.metrics}]
    spent_predicted = spent_actual = 0.0
    for r in range(1, config.cost_rounds + 1):
        ids = sorted(scores)
        costs = {i: predict(i, scores[i]) for i in ids}
        entries = [{"id": i, "uncertainty": scores[i].uncertainty, "predictedSeconds": costs[i]} for i in ids]
        added = list(
            ctx.ich_al.select(
                entries, budget_seconds=budget, strategy=strategy, seed=ctx.seed * 1000 + repeat * 10 + r
            )["selected"]
        )
        predicted = sum(costs[i] for i in added)
        if predicted > budget * (1 + 1e-9) or len(set(added)) != len(added) or set(labeled) & set(added):
            raise AssertionError(
                f"{name} round {r}: {len(added)} stacks, {predicted:.0f}s predicted > {budget:.0f}s"
            )
        chosen = [by_id[i] for i in added]
        actual = sum(s.true_seconds for s in chosen)
        spent_predicted, spent_actual = spent_predicted + predicted, spent_actual + actual
        labeled += added
        committee = update_committee(
            config,
            committee,
            [by_id[i] for i in labeled],
            ctx.validation,
            training_seed(ctx.seed, repeat, r),
            ctx.progress,
            f"{name} round {r}",
        )
        metrics = evaluate(config, committee, ctx.test)
        rows.append(
            {
                "round": r,
                "labeled": len(labeled),
                "added": sorted(added),
                "added_count": len(added),
                "added_positive": sum(s.positive for s in chosen),
                "budget_hours": budget / 3600,
                "predicted_hours": predicted / 3600,
                "actual_hours": actual / 3600,
                "relative_error": (predicted - actual) / actual if actual > 0 else None,
                "cumulative_predicted_hours": spent_predicted / 3600,
                "cumulative_actual_hours": spent_actual / 3600,
                "total_uncertainty": float(sum(scores[i].uncertainty for i in added)),
                "mean_true_boundary_length": float(np.mean([s.boundary_length for s in chosen]))
                if chosen
                else 0.0,
                "metrics": metrics,
            }
        )
        ctx.progress(
            f"  {name} round {r}: +{len(added)} stacks, {predicted / 3600:.2f} h predicted, {actual / 3600:.2f} h actual; "
            + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )
        if r < config.cost_rounds:
            rest = [by_id[i] for i in ids if i not in set(added)]
            scores = score(config, committee, rest)
    return rows


def refit_time_model(
    ctx: Context, committee: Ensemble, seed_stacks: list[PoolStack]
) -> tuple[TimeFit, str | None]:
    """``ich-al fit-time`` on the seed stacks' heatmap B, M against their simulated times, as the
    deployed refit does with the B, M stored at scoring; the Fig. 3 fit with a note when there are
    too few stacks or the fit fails."""
    if len(seed_stacks) < MIN_REFIT_STACKS:
        return ctx.fit, f"{len(seed_stacks)} < {MIN_REFIT_STACKS} seed stacks: Fig. 3 fit used"
    scores = score(ctx.config, committee, seed_stacks)
    timings = [
        {
            "boundaryLength": scores[s.id].boundary_length,
            "components": scores[s.id].components,
            "seconds": s.true_seconds,
        }
        for s in seed_stacks
    ]
    try:
        return ctx.ich_al.fit_time(timings), None
    except IchAlError as error:  # e.g. a committee that draws the same M on every seed stack
        return ctx.fit, f"refit impossible, Fig. 3 fit used: {error}"


def refit_note(fit: TimeFit, note: str | None) -> str:
    return note or f"time model refit on heatmap B, M: α {fit.alpha:.2f}, β {fit.beta:.2f}, R² {fit.r2:.2f}"


SUMMARY_KEYS = (
    "added_count",
    "predicted_hours",
    "actual_hours",
    "relative_error",
    "mean_true_boundary_length",
)


def summarise(repeats: list[dict[str, Any]], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Mean, SD and 95 % interval over repeats per strategy and round."""
    out = {}
    for name in STRATEGIES:
        rows = []
        for r in range(rounds + 1):
            entries = [rep["strategies"][name][r] for rep in repeats]
            row: dict[str, Any] = {"round": r}
            for key in SUMMARY_KEYS:
                values = [e[key] for e in entries if e.get(key) is not None]
                if values:
                    row[key] = interval(values)
            for metric in METRICS:
                row[metric] = interval([e["metrics"][metric] for e in entries])
            rows.append(row)
        out[name] = rows
    return out


def paired_differences(repeats: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, Any]]:
    """For each pair "A-B", round and metric: A − B over repeats (``paired.paired``); also the
    difference in stacks chosen."""
    out: dict[str, dict[str, Any]] = {}
    for a, b in PAIRS:
        per_round = {}
        for r in range(1, rounds + 1):
            rows_a = [rep["strategies"][a][r] for rep in repeats]
            rows_b = [rep["strategies"][b][r] for rep in repeats]
            cell = {
                m: paired([x["metrics"][m] for x in rows_a], [y["metrics"][m] for y in rows_b])
                for m in METRICS
            }
            cell["added_count"] = paired(
                [x["added_count"] for x in rows_a], [y["added_count"] for y in rows_b]
            )
            per_round[str(r)] = cell
        out[f"{a}-{b}"] = per_round
    return out


def gallery_items(
    ctx: Context, repeat: dict[str, Any], committee: Ensemble
) -> dict[str, list[dict[str, Any]]]:
    """The first-round picks of CAL and UAL with the highest V: key frame (most heatmap mass), its
    HU and the seed committee's mean heatmap, with V and predicted and actual time."""
    scores = score(
        ctx.config,
        committee,
        [ctx.by_id[i] for r in ("CAL", "UAL") for i in repeat["strategies"][r][1]["added"]],
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("CAL", "UAL"):
        added = sorted(repeat["strategies"][name][1]["added"], key=lambda i: -scores[i].uncertainty)
        items = []
        for stack_id in added[:GALLERY_TOP]:
            stack = ctx.by_id[stack_id]
            heat = mean_heatmap(committee, stack)
            frame = int(np.argmax(heat.sum(axis=(1, 2))))
            items.append(
                {
                    "id": stack_id,
                    "uncertainty": scores[stack_id].uncertainty,
                    "actual_seconds": stack.true_seconds,
                    "true_boundary_length": stack.boundary_length,
                    "frame": frame,
                    "hu": stack.training.hu[frame],
                    "mask": stack.training.mask[frame],
                    "heatmap": heat[frame],
                }
            )
        out[name] = items
    return out
