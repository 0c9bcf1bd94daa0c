"""Experiment 2 — core-set active learning (paper §5.1, Fig. 4).

The seed set is ``core_seed_size`` stacks of the training pool; each round doubles the labeled set
by adding as many stacks as it already holds, chosen by
  (a) ``qbc``: the highest stack uncertainty V (``ich-al select --strategy uniform``, unit costs);
  (b) ``qbc_similarity``: suggestive annotation (``selection.suggestive_annotation``);
  (c) ``random``: ``ich-al select --strategy random`` with unit costs;
until half the pool (the paper's S2); after each round the strategy's committee is updated
(``data.update_committee``) and AP is measured on the held-out test set. In a repeat every strategy
starts from the same seed set and seed committee and trains with the same seeds, so the curves
differ by the data chosen. The seed set and its committee (trained to a validation plateau) are
shared by all repeats; repeats vary the fine-tuning seeds and the random choices.

Selection cost: seconds to choose on synthetic feature sets of growing size (``selection_cost``),
where QBC is a linear pass and the similarity step builds a 2k × n matrix with k ∝ n.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..model.ensemble import Ensemble
from .config import ExperimentConfig
from .data import (
    METRICS,
    PoolStack,
    Progress,
    StackScore,
    embed_only,
    evaluate,
    score,
    seed_subset,
    train_to_plateau,
    update_committee,
)
from .paired import interval, paired
from .selection import IchAl, coverage_greedy, suggestive_annotation

STRATEGIES = ("qbc", "qbc_similarity", "random")
PAIRS = (("qbc", "random"), ("qbc", "qbc_similarity"), ("qbc_similarity", "random"))


def round_sizes(pool: int, seed_count: int) -> list[int]:
    """Labeled-set sizes: the seed, doubled while it stays within half the pool."""
    sizes = [seed_count]
    while sizes[-1] * 2 <= pool // 2:
        sizes.append(sizes[-1] * 2)
    return sizes


def training_seed(seed: int, repeat: int, round_index: int) -> int:
    """Seed of the committee trained in a round: the same for every strategy of a repeat."""
    return seed * 1000 + 100 + repeat * 50 + round_index * 10


def core_set_experiment(
    config: ExperimentConfig,
    ich_al: IchAl,
    pool: list[PoolStack],
    validation: list[PoolStack],
    test: list[PoolStack],
    seed: int,
    progress: Progress,
) -> dict[str, Any]:
    sizes = round_sizes(len(pool), config.core_seed_size)
    progress(
        f"core-set: pool {len(pool)}, rounds {' → '.join(map(str, sizes))}, {config.repeats} repeats, "
        f"strategies {', '.join(STRATEGIES)}"
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    seed_ids = [pool[i].id for i in seed_subset(pool, sizes[0], rng)]
    committee, curve = train_to_plateau(
        config,
        [s for s in pool if s.id in set(seed_ids)],
        validation,
        training_seed(seed, 0, 0),
        progress,
        "core-set seed committee",
    )
    start = {"ids": seed_ids, "committee": committee, "metrics": evaluate(config, committee, test)}
    repeats = [
        run_repeat(config, ich_al, pool, validation, test, seed, repeat, sizes, start, progress)
        for repeat in range(config.repeats)
    ]
    return {
        "pool": len(pool),
        "seed_count": config.core_seed_size,
        "seed_ids": sorted(seed_ids),
        "seed_curve": curve,
        "sizes": sizes,
        "repeats": repeats,
        "summary": {
            name: [
                {m: interval([rep["strategies"][name][r]["metrics"][m] for rep in repeats]) for m in METRICS}
                for r in range(len(sizes))
            ]
            for name in STRATEGIES
        },
        "paired": {
            f"{a}-{b}": {
                str(r): {
                    m: paired(
                        [rep["strategies"][a][r]["metrics"][m] for rep in repeats],
                        [rep["strategies"][b][r]["metrics"][m] for rep in repeats],
                    )
                    for m in METRICS
                }
                for r in range(1, len(sizes))
            }
            for a, b in PAIRS
        },
    }


def run_repeat(
    config: ExperimentConfig,
    ich_al: IchAl,
    pool: list[PoolStack],
    validation: list[PoolStack],
    test: list[PoolStack],
    seed: int,
    repeat: int,
    sizes: list[int],
    start: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Every strategy from the shared seed committee, with this repeat's training and random seeds."""
    by_id = {s.id: s for s in pool}
    seed_ids, committee, seed_metrics = start["ids"], start["committee"], start["metrics"]
    strategies = {}
    for name in STRATEGIES:
        labeled = list(seed_ids)
        current = committee
        rows = [{"round": 0, "labeled": len(labeled), "metrics": seed_metrics, "added": []}]
        for r, target in enumerate(sizes[1:], start=1):
            added, candidates = choose(
                ich_al,
                name,
                current,
                config,
                pool,
                labeled,
                target - len(labeled),
                seed * 1000 + repeat * 10 + r,
            )
            labeled += added
            current = update_committee(
                config,
                current,
                [by_id[i] for i in labeled],
                validation,
                training_seed(seed, repeat, r),
                progress,
                f"core-set {name} round {r} ({len(labeled)})",
            )
            metrics = evaluate(config, current, test)
            rows.append(
                {
                    "round": r,
                    "labeled": len(labeled),
                    "metrics": metrics,
                    "added": sorted(added),
                    "candidates": sorted(candidates),
                    "added_positive": sum(by_id[i].positive for i in added),
                }
            )
        strategies[name] = rows
        progress(
            f"  core-set repeat {repeat + 1} {name} at {len(labeled)}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1]["metrics"].items())
        )
    return {"repeat": repeat, "strategies": strategies}


def choose(
    ich_al: IchAl,
    name: str,
    committee: Ensemble,
    config: ExperimentConfig,
    pool: list[PoolStack],
    labeled: list[str],
    k: int,
    random_seed: int,
) -> tuple[list[str], list[str]]:
    """k new stacks by strategy ``name`` (and, for QBC + similarity, its 2k candidates)."""
    labeled_set = set(labeled)
    unlabeled = [s for s in pool if s.id not in labeled_set]
    ids = [s.id for s in unlabeled]
    candidates: list[str] = []
    if name == "random":
        added = ich_al.select_count(ids, None, k, strategy="random", seed=random_seed)
    else:
        similarity = name == "qbc_similarity"
        scores: dict[str, StackScore] = score(config, committee, unlabeled, with_embedding=similarity)
        uncertainty = [scores[i].uncertainty for i in ids]
        if similarity:
            scores.update(embed_only(committee, [s for s in pool if s.id in labeled_set]))
            added, candidates = suggestive_annotation(
                ich_al,
                ids,
                uncertainty,
                np.stack([scores[i].embedding for i in ids]),
                k,
                pool_features=np.stack([scores[s.id].embedding for s in pool]),
                labeled_features=np.stack([scores[i].embedding for i in labeled]),
            )
        else:
            added = ich_al.select_count(ids, uncertainty, k, strategy="uniform")
    if len(added) != k or len(set(added)) != k or labeled_set.intersection(added):
        raise AssertionError(f"{name}: selected {len(added)} stacks, expected {k} new ones")
    return list(added), candidates


def selection_cost(
    config: ExperimentConfig, ich_al: IchAl, seed: int, progress: Progress
) -> list[dict[str, float]]:
    """Seconds to choose k = n/8 of n synthetic stacks by QBC and by QBC + similarity.

    Features are non-negative (like ReLU backbone features), uncertainties uniform; both strategies
    get the same inputs. ``ich_al_seconds`` is the wall time of the ``ich-al`` call that QBC makes
    (and QBC + similarity makes for its 2k candidates): mostly Node start-up at these sizes.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    rows = []
    for n in config.selection_cost_sizes:
        k = max(1, n // 8)
        features = rng.random((n, config.selection_cost_dims)) ** 3
        uncertainty = rng.random(n)
        ids = [f"x{i}" for i in range(n)]
        started = time.perf_counter()
        candidates = ich_al.select_count(ids, uncertainty.tolist(), 2 * k, strategy="uniform")
        ich_al_seconds = time.perf_counter() - started
        started = time.perf_counter()
        top = np.argpartition(-uncertainty, k - 1)[:k]
        qbc_core = time.perf_counter() - started
        rows_idx = [int(c[1:]) for c in candidates]
        started = time.perf_counter()
        picked = coverage_greedy(features[rows_idx], features, k)
        similarity = time.perf_counter() - started
        assert len(picked) == k and len(top) == k
        rows.append(
            {
                "n": n,
                "k": k,
                "ich_al_seconds": ich_al_seconds,
                "qbc_rank_seconds": qbc_core,
                "similarity_seconds": similarity,
            }
        )
        progress(
            f"  selection cost n={n} k={k}: ich-al {ich_al_seconds * 1e3:.0f} ms, QBC ranking {qbc_core * 1e3:.2f} ms, similarity {similarity * 1e3:.0f} ms"
        )
    return rows
