"""Experiment 2 — core-set active learning (paper §5.1, Fig. 4).

The seed set is 1/32 of the training pool; each round doubles the labeled set by adding as many
stacks as it already holds, chosen by
  (a) ``qbc``: the highest stack uncertainty V (``ich-al select --strategy uniform``, unit costs);
  (b) ``qbc_similarity``: suggestive annotation (``selection.suggestive_annotation``);
  (c) ``random``: ``ich-al select --strategy random`` with unit costs;
until half the pool (the paper's S2); a committee is trained on each labeled set and AP is measured
on the held-out test set. Every strategy starts from the same seed set and seed committee, and the
committee of round r is initialised with the same seeds for every strategy, so the curves differ by
the data chosen. Optionally the whole pool (S1) is trained as the reference line.

Selection cost: the seconds each selection takes in the experiment (timings), and on synthetic
feature sets of growing size (``selection_cost``), where QBC is a linear pass and the similarity
step builds a 2k × n matrix with k ∝ n.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .config import ExperimentConfig
from .data import PoolStack, Progress, embed_only, evaluate, score, seed_subset, train
from .selection import IchAl, coverage_greedy, suggestive_annotation

STRATEGIES = ("qbc", "qbc_similarity", "random")


def core_set_experiment(
    config: ExperimentConfig,
    ich_al: IchAl,
    pool: list[PoolStack],
    test: list[PoolStack],
    seed: int,
    progress: Progress,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (results, timings); results depend only on the configuration and seed."""
    n = len(pool)
    seed_count = max(1, n // 32)
    by_id = {s.id: s for s in pool}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    seed_ids = [pool[i].id for i in seed_subset(pool, seed_count, rng)]
    sizes = [seed_count]
    while sizes[-1] * 2 <= n // 2:
        sizes.append(sizes[-1] * 2)
    progress(
        f"core-set: pool {n}, seed {seed_count} (1/32), rounds {' → '.join(map(str, sizes))}, strategies {', '.join(STRATEGIES)}"
    )

    def model_seed(round_index: int) -> int:
        return seed * 1000 + 100 + round_index * 10

    seed_ensemble = train(
        config, [by_id[i] for i in seed_ids], model_seed(0), progress, f"core-set seed ({seed_count})"
    )
    seed_metrics = evaluate(config, seed_ensemble, test)
    seed_scores = score(
        config, seed_ensemble, [s for s in pool if s.id not in set(seed_ids)], with_embedding=True
    )
    seed_scores.update(embed_only(seed_ensemble, [by_id[i] for i in seed_ids]))
    progress("  seed: " + ", ".join(f"{k} {v:.3f}" for k, v in seed_metrics.items()))

    results: dict[str, Any] = {"pool": n, "seed_count": seed_count, "sizes": sizes, "strategies": {}}
    timings: dict[str, Any] = {"selection_seconds": {s: [] for s in STRATEGIES}}
    for strategy in STRATEGIES:
        labeled = list(seed_ids)
        ensemble, scores = seed_ensemble, seed_scores
        rounds = [
            {
                "round": 0,
                "labeled": len(labeled),
                "fraction": len(labeled) / n,
                "metrics": seed_metrics,
                "added": [],
            }
        ]
        for r, target in enumerate(sizes[1:], start=1):
            k = target - len(labeled)
            labeled_set = set(labeled)
            unlabeled = [s for s in pool if s.id not in labeled_set]
            ids = [s.id for s in unlabeled]
            started = time.perf_counter()
            candidates: list[str] = []
            if strategy == "qbc":
                added = ich_al.select_count(ids, [scores[i].uncertainty for i in ids], k, strategy="uniform")
            elif strategy == "qbc_similarity":
                feats = np.stack([scores[i].embedding for i in ids])
                pool_feats = np.stack([scores[s.id].embedding for s in pool])
                labeled_feats = np.stack([scores[i].embedding for i in labeled])
                added, candidates = suggestive_annotation(
                    ich_al,
                    ids,
                    [scores[i].uncertainty for i in ids],
                    feats,
                    k,
                    pool_features=pool_feats,
                    labeled_features=labeled_feats,
                )
            else:
                added = ich_al.select_count(ids, None, k, strategy="random", seed=seed * 1000 + r)
            timings["selection_seconds"][strategy].append(time.perf_counter() - started)
            if len(added) != k or len(set(added)) != k or labeled_set.intersection(added):
                raise AssertionError(
                    f"{strategy} round {r}: selected {len(added)} stacks, expected {k} new ones"
                )
            labeled += added
            ensemble = train(
                config,
                [by_id[i] for i in labeled],
                model_seed(r),
                progress,
                f"core-set {strategy} round {r} ({len(labeled)})",
            )
            metrics = evaluate(config, ensemble, test)
            rounds.append(
                {
                    "round": r,
                    "labeled": len(labeled),
                    "fraction": len(labeled) / n,
                    "metrics": metrics,
                    "added": sorted(added),
                    "candidates": sorted(candidates),
                    "added_positive": sum(by_id[i].positive for i in added),
                }
            )
            progress(
                f"  {strategy} round {r}: {len(labeled)}/{n} labeled  "
                + ", ".join(f"{k_} {v:.3f}" for k_, v in metrics.items())
            )
            if target != sizes[-1] and strategy != "random":
                similarity = strategy == "qbc_similarity"
                scores = score(
                    config,
                    ensemble,
                    [by_id[i] for i in ids if i not in set(added)],
                    with_embedding=similarity,
                )
                if similarity:
                    scores.update(embed_only(ensemble, [by_id[i] for i in labeled]))
        results["strategies"][strategy] = rounds
    if config.core_full_reference:
        full = train(config, pool, model_seed(len(sizes)), progress, f"core-set full pool ({n})")
        results["full_pool"] = {"labeled": n, "fraction": 1.0, "metrics": evaluate(config, full, test)}
        progress(
            "  full pool (S1): "
            + ", ".join(f"{k} {v:.3f}" for k, v in results["full_pool"]["metrics"].items())
        )
    return results, timings


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
