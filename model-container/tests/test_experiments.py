"""The active-learning experiments (``python -m ichal experiments``) at a tiny size: invariants only.

Round budgets hold in predicted hours, warm starts begin from the previous committee's weights,
strategies of a repeat share every training seed, core-set rounds double, the claims list is the
one the committed results were produced with, and the report files are written. Networks train
for a handful of steps: the numbers mean nothing.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from ichal.experiments import CPU, TINY, run_experiments
from ichal.experiments import core_set as core_module
from ichal.experiments import cost_sensitive as cost_module
from ichal.experiments import data as data_module
from ichal.experiments.claims import CLAIMS, evaluate_claims
from ichal.experiments.data import build_pool, evaluate, simulated_seconds, train_to_plateau, update_committee
from ichal.experiments.paired import interval, paired
from ichal.experiments.runner import OUTPUTS
from ichal.experiments.selection import IchAl, coverage_greedy, suggestive_annotation

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "experiments" / "results.json"


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
    """One tiny run, with every committee update recorded as (experiment, label, seed)."""
    out = tmp_path_factory.mktemp("experiments")
    calls: list[tuple[str, str, int]] = []

    def recorder(experiment):
        def record(config, previous, stacks, validation, seed, progress, label):
            calls.append((experiment, label, seed))
            return update_committee(config, previous, stacks, validation, seed, progress, label)

        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cost_module, "update_committee", recorder("cost"))
        patch.setattr(core_module, "update_committee", recorder("core"))
        results = run_experiments(TINY, out, seed=3, progress=lambda line: None, ich_al=ich_al)
    return out, results, calls


def test_outputs_are_written(tiny_run):
    out, results, _ = tiny_run
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    pngs = list(out.glob("*.png"))
    assert len(pngs) == sum(n.endswith(".png") for n in OUTPUTS)
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    readme = (out / "README.md").read_text()
    for heading in (
        "## Claims checked",
        "## 1. Labeling-time model",
        "## 2. Core-set",
        "## 3. Cost-sensitive",
        "## 4.",
    ):
        assert heading in readme
    assert "synthetic phantoms" in readme and "not a clinical result" in readme
    assert "78.2 ± 0.2 %" in readme  # the paper's Table 1 beside ours


def test_round_budgets_hold_in_predicted_hours(tiny_run):
    _, results, _ = tiny_run
    cost = results["cost_sensitive"]
    assert len(cost["repeats"]) == TINY.repeats
    chosen_any = 0
    seed = cost["seed"]
    assert seed["budget_hours"] == pytest.approx(TINY.cost_increment * seed["pool_predicted_hours"])
    assert seed["oracle_budget_hours"] == pytest.approx(
        TINY.cost_increment * seed["pool_oracle_predicted_hours"]
    )
    for repeat in cost["repeats"]:
        for name, rounds in repeat["strategies"].items():
            budget = seed["oracle_budget_hours" if name.endswith("oracle") else "budget_hours"]
            assert [r["round"] for r in rounds] == list(range(TINY.cost_rounds + 1))
            seen: set[str] = set()
            for previous, row in itertools.pairwise(rounds):
                assert row["budget_hours"] == pytest.approx(budget)
                assert row["predicted_hours"] <= budget * (1 + 1e-9), (name, row)
                assert len(set(row["added"])) == row["added_count"] == len(row["added"])
                assert not seen.intersection(row["added"])
                seen.update(row["added"])
                assert row["labeled"] == previous["labeled"] + row["added_count"]
                assert row["cumulative_predicted_hours"] <= row["round"] * budget * (1 + 1e-9)
                chosen_any += row["added_count"]
    assert chosen_any > 0, "no round chose anything: the budget check would be vacuous"


def test_strategies_of_a_repeat_share_every_training_seed(tiny_run):
    _, results, calls = tiny_run
    for experiment, strategies, rounds in (
        ("cost", list(cost_module.STRATEGIES), TINY.cost_rounds),
        ("core", list(core_module.STRATEGIES), len(results["core_set"]["sizes"]) - 1),
    ):
        seeds = collections.defaultdict(list)
        for exp, label, seed in calls:
            if exp == experiment:
                seeds[label].append(seed)
        for r in range(1, rounds + 1):
            per_strategy = [
                next(
                    v for k, v in seeds.items() if k.startswith((f"{s} round {r}", f"core-set {s} round {r}"))
                )
                for s in strategies
            ]
            assert len(per_strategy[0]) == TINY.repeats
            assert all(v == per_strategy[0] for v in per_strategy), (experiment, r, per_strategy)
            assert len(set(per_strategy[0])) == TINY.repeats, "repeats must differ"
    seed_rows = [
        rows[0]["metrics"]
        for rep in results["cost_sensitive"]["repeats"]
        for rows in rep["strategies"].values()
    ]
    assert all(row == seed_rows[0] for row in seed_rows)  # one seed committee for all


def _state(ensemble):
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in ensemble.models]


def _same(a, b) -> bool:
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


def test_warm_start_begins_from_the_previous_committee(monkeypatch, one_thread):
    stacks = build_pool(TINY, 4, 5, "w-")
    previous, _ = train_to_plateau(TINY, stacks, stacks[:2], 7, lambda line: None, "seed")
    before = _state(previous)
    seen = []
    original = data_module.train_ensemble

    def spy(stacks_, hp, **kwargs):
        seen.append((kwargs.get("initial"), hp))
        if kwargs.get("initial") is not None:
            seen[-1] = (_state(kwargs["initial"]), hp, kwargs["initial"] is previous)
        return original(stacks_, hp, **kwargs)

    monkeypatch.setattr(data_module, "train_ensemble", spy)
    updated = update_committee(TINY, previous, stacks, stacks[:2], 11, lambda line: None, "round 1")
    assert len(seen) == 1
    start, hp, same_object = seen[0]
    assert _same(start, before), "fine-tuning must start from the previous weights"
    assert not same_object, "the previous committee is copied, not trained in place"
    assert hp.iterations == TINY.finetune_iterations and hp.seed == 11
    assert _same(_state(previous), before)
    assert not _same(_state(updated), before), "fine-tuning changed nothing"
    seen.clear()
    update_committee(
        TINY.with_overrides(warm_start=False), previous, stacks, stacks[:2], 11, lambda line: None, "r"
    )
    assert seen and seen[0][0] is None, "retraining from scratch starts from a fresh initialisation"
    assert not any(entry[0] is not None and _same(entry[0], before) for entry in seen)


def test_plateau_keeps_the_last_committee_that_gained(one_thread):
    stacks = build_pool(TINY, 4, 6, "p-")
    config = TINY.with_overrides(plateau_max_chunks=3, plateau_patience=5)
    best, curve = train_to_plateau(config, stacks, stacks[:2], 3, lambda line: None, "seed")
    assert [p["steps"] for p in curve] == [config.plateau_chunk * (i + 1) for i in range(3)]
    kept = curve[0]["validation_pixel_ap"]
    for point in curve[1:]:
        if point["validation_pixel_ap"] >= kept + config.plateau_min_gain:
            kept = point["validation_pixel_ap"]
    assert evaluate(config, best, stacks[:2])["pixel_ap"] == pytest.approx(kept, abs=1e-6)


def test_paired_statistics_against_their_definitions():
    a, b = [0.5, 0.61, 0.4, 0.7, 0.55], [0.45, 0.6, 0.42, 0.6, 0.5]
    cell = paired(a, b)
    d = np.subtract(a, b)
    assert cell["differences"] == pytest.approx(d.tolist())
    assert (cell["positive"], cell["negative"], cell["ties"]) == (4, 1, 0)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert (cell["low"], cell["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert cell["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert cell["t_p_greater"] == pytest.approx(cell["t_p"] / 2)
    assert cell["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert paired([1.0, 2.0], [1.0, 2.0])["t_p"] is None
    assert interval([3.0])["low"] == interval([3.0])["high"] == 3.0


def test_claims_list_is_fixed_and_decides_by_its_rules(tiny_run):
    _, results, _ = tiny_run
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids)) >= 10
    assert results["claims_checked"] == [c.to_json() for c in CLAIMS]
    assert [c["id"] for c in results["claims"]] == ids
    assert {c["verdict"] for c in results["claims"]} <= {"held", "failed", "not tested"}
    good = {
        "core_set": {
            "paired": {
                "qbc-random": {"1": {"pixel_ap": paired([0.6, 0.7, 0.65, 0.8], [0.5, 0.55, 0.6, 0.6])}}
            }
        }
    }
    bad = {
        "core_set": {
            "paired": {
                "qbc-random": {"1": {"pixel_ap": paired([0.5, 0.55, 0.6, 0.6], [0.6, 0.7, 0.65, 0.8])}}
            }
        }
    }

    def verdict(results):
        return next(c for c in evaluate_claims(results) if c["id"] == "qbc_beats_random")["verdict"]

    assert (verdict(good), verdict(bad), verdict({})) == ("held", "failed", "not tested")


def test_committed_results_come_from_the_fixed_configuration_and_claims():
    committed = json.loads(COMMITTED.read_text())
    assert committed["config"] == json.loads(json.dumps(CPU.to_json()))
    assert committed["claims_checked"] == [c.to_json() for c in CLAIMS]
    assert len(committed["claims"]) == len(CLAIMS)
    assert "synthetic" in committed["note"]


def test_core_set_rounds_double_the_labeled_set(tiny_run):
    _, results, _ = tiny_run
    core = results["core_set"]
    assert core["sizes"][0] == TINY.core_seed_size and core["sizes"][-1] <= TINY.pool_size // 2
    assert all(b == 2 * a for a, b in itertools.pairwise(core["sizes"]))
    for repeat in core["repeats"]:
        for name, rounds in repeat["strategies"].items():
            assert [r["labeled"] for r in rounds] == core["sizes"], name
            labeled: set[str] = set(core["seed_ids"])
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
            if key in ("pixel_ap", "region_ap", "frame_ap", "stack_ap") and not isinstance(value, dict):
                yield key, value
            elif key in ("pixel_ap", "region_ap", "frame_ap", "stack_ap") and "mean" in value:
                yield key, value["mean"]
            elif key != "paired":
                yield from _metric_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _metric_values(item)


def test_metrics_are_within_zero_and_one(tiny_run):
    _, results, _ = tiny_run
    values = list(_metric_values({k: results[k] for k in ("core_set", "cost_sensitive", "domain")}))
    assert len(values) > 40
    for key, value in values:
        assert value is not None and 0.0 <= value <= 1.0, (key, value)


def test_labeling_time_fit_and_the_wild_batch(tiny_run):
    _, results, _ = tiny_run
    timing = results["labeling_time"]
    assert timing["n"] == TINY.timing_fit_size
    assert 0.75 * timing["n"] <= timing["fit"]["n"] <= timing["n"]  # ich-al may exclude outliers (≤ 1/4)
    assert 0.0 <= timing["fit"]["r2"] <= 1.0
    truth = TINY.truth
    assert simulated_seconds(truth, 0.0, 0.0, 0.0) == pytest.approx(math.exp(truth.gamma))
    assert simulated_seconds(truth, math.e - 1, 0.0, 1.0) == pytest.approx(
        math.exp(truth.alpha + truth.gamma + truth.sigma)
    )
    wild = results["domain"]["wild"]
    assert wild["predicted_hours"] <= wild["budget_hours"] * (1 + 1e-9)
    assert wild["budget_hours"] == pytest.approx(TINY.wild_budget_share * wild["pool_predicted_hours"])
    assert 0 < wild["stacks"] <= TINY.wild_size


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
