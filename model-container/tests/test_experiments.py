"""The active-learning experiments (``python -m ichal experiments``) at a tiny size: invariants only.

Budgets are respected, core-set rounds double, metrics are in [0, 1], a seed reproduces the results
JSON, the similarity selector chooses k distinct stacks among the uncertain candidates, and the
README, plots and JSON are written. Networks train for a handful of steps: the numbers mean nothing.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from ichal.experiments import TINY, run_experiments
from ichal.experiments.data import simulated_seconds
from ichal.experiments.runner import OUTPUTS
from ichal.experiments.selection import IchAl, coverage_greedy, suggestive_annotation

SMALLER = TINY.with_overrides(cost_repeats=1, cost_rounds=1, selection_cost_sizes=())


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and the suite shares the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ich_al():
    return IchAl()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread, ich_al):
    out = tmp_path_factory.mktemp("experiments")
    results = run_experiments(TINY, out, seed=3, progress=lambda line: None, ich_al=ich_al)
    return out, results


def test_outputs_are_written(tiny_run):
    out, results = tiny_run
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(out.glob("*.png"))) == 5
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    readme = (out / "README.md").read_text()
    for heading in (
        "## 1. Labeling-time model",
        "## 2. Core-set active learning",
        "## 3. Cost-sensitive active learning",
    ):
        assert heading in readme
    assert "not a clinical result" in readme and "| paper |" in readme


def test_cost_sensitive_rounds_respect_their_budgets(tiny_run):
    _, results = tiny_run
    cost = results["cost_sensitive"]
    assert len(cost["repeats"]) == TINY.cost_repeats
    chosen_any = 0
    for repeat in cost["repeats"]:
        budget = repeat["budget_hours"]
        assert budget == pytest.approx(TINY.cost_increment * repeat["pool_hours"])
        for name, rounds in repeat["strategies"].items():
            assert [r["round"] for r in rounds] == list(range(TINY.cost_rounds + 1))
            seen: set[str] = set()
            for previous, row in itertools.pairwise(rounds):
                assert row["budget_hours"] == pytest.approx(budget)
                assert row["predicted_hours"] <= budget * (1 + 1e-9), (name, row)
                assert len(set(row["added"])) == row["added_count"] == len(row["added"])
                assert not seen.intersection(row["added"])
                seen.update(row["added"])
                assert row["labeled"] == previous["labeled"] + row["added_count"]
                assert row["cumulative_actual_hours"] == pytest.approx(
                    previous["cumulative_actual_hours"] + row["actual_hours"]
                )
                chosen_any += row["added_count"]
    assert chosen_any > 0, "no round chose anything: the budget check would be vacuous"
    for batch in cost["batches"]:
        assert batch["stacks"] > 0 and batch["actual_hours"] > 0 and batch["predicted_hours"] > 0


def test_core_set_rounds_double_the_labeled_set(tiny_run):
    _, results = tiny_run
    core = results["core_set"]
    n = TINY.pool_size
    assert core["seed_count"] == max(1, n // 32)
    assert core["sizes"][-1] == n // 2
    assert all(b == 2 * a for a, b in itertools.pairwise(core["sizes"]))
    for name, rounds in core["strategies"].items():
        assert [r["labeled"] for r in rounds] == core["sizes"], name
        labeled: set[str] = set()
        for previous, row in itertools.pairwise(rounds):
            assert len(row["added"]) == previous["labeled"] == len(set(row["added"]))
            assert not labeled.intersection(row["added"])
            labeled.update(row["added"])
        if name == "qbc_similarity":
            for row in rounds[1:]:
                assert set(row["added"]) <= set(row["candidates"])
                assert len(row["candidates"]) == 2 * len(row["added"])


def _metric_values(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("pixel_ap", "region_ap", "frame_ap", "stack_ap"):
                yield key, value["mean"] if isinstance(value, dict) else value
            else:
                yield from _metric_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _metric_values(item)


def test_metrics_are_within_zero_and_one(tiny_run):
    _, results = tiny_run
    values = list(_metric_values({"core": results["core_set"], "cost": results["cost_sensitive"]}))
    assert len(values) > 40
    for key, value in values:
        assert value is not None and 0.0 <= value <= 1.0, (key, value)


def test_labeling_time_fit_uses_simulated_completions(tiny_run):
    _, results = tiny_run
    timing = results["labeling_time"]
    assert timing["n"] == TINY.timing_fit_size == timing["fit"]["n"]
    assert 0.0 <= timing["fit"]["r2"] <= 1.0
    assert timing["orders_of_magnitude"] > 0.0
    truth = TINY.truth
    assert simulated_seconds(truth, 0.0, 0.0, 0.0) == pytest.approx(math.exp(truth.gamma))
    assert simulated_seconds(truth, math.e - 1, 0.0, 1.0) == pytest.approx(
        math.exp(truth.alpha + truth.gamma + truth.sigma)
    )


def test_same_seed_gives_identical_results_json(tmp_path, one_thread, ich_al):
    for name in ("a", "b"):
        run_experiments(
            SMALLER, tmp_path / name, seed=11, progress=lambda line: None, ich_al=ich_al, report=False
        )
    assert (tmp_path / "a" / "results.json").read_bytes() == (tmp_path / "b" / "results.json").read_bytes()


def test_similarity_selector_picks_k_distinct_stacks_from_the_uncertain_candidates(ich_al):
    rng = np.random.default_rng(0)
    n, k = 40, 6
    ids = [f"s{i}" for i in range(n)]
    uncertainty = rng.random(n)
    features = rng.random((n, 5)) ** 2
    chosen, candidates = suggestive_annotation(
        ich_al, ids, uncertainty.tolist(), features, k, pool_features=features
    )
    most_uncertain = {ids[i] for i in np.argsort(-uncertainty)[: 2 * k]}
    assert set(candidates) == most_uncertain
    assert len(chosen) == k == len(set(chosen))
    assert set(chosen) <= most_uncertain


def test_coverage_greedy_matches_plain_greedy():
    rng = np.random.default_rng(1)
    candidates, pool = rng.random((12, 4)), rng.random((30, 4))
    chosen = coverage_greedy(candidates, pool, 5)
    cand = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    sim = cand @ (pool / np.linalg.norm(pool, axis=1, keepdims=True)).T
    cover, plain = np.zeros(pool.shape[0]), []
    for _ in range(5):
        gains = [-1.0 if i in plain else float(np.maximum(sim[i] - cover, 0).sum()) for i in range(len(cand))]
        best = int(np.argmax(gains))
        plain.append(best)
        cover = np.maximum(cover, sim[best])
    assert chosen == plain
    assert sorted(coverage_greedy(candidates, pool, 50)) == list(range(12))  # k is capped at the candidates
