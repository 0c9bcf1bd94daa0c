"""The paper's claims this study checks, each with the rule that decides it, fixed before a run.

``CLAIMS`` is written into results.json with each verdict; a claim whose data is missing (e.g. a
configuration without enough repeats) is reported as "not tested", never dropped. Paired rules use
the per-repeat differences of strategies that share every seed (``paired.paired``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .paired import interval

ALPHA = 0.05
"""Significance level of the one-sided paired t-tests."""
S2_TOLERANCE = 0.03
TABLE1_TOLERANCE = 0.02
BATCH_TOLERANCE = 0.10
WILD_MIN_STACKS = 100


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    rule: str
    check: Callable[[dict[str, Any]], tuple[bool | None, str]]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "source": self.source, "statement": self.statement, "rule": self.rule}


def _better(cell: dict[str, Any]) -> tuple[bool | None, str]:
    p = cell.get("t_p_greater")
    observed = (
        f"mean {cell['mean']:+.3f} [95 % CI {cell['low']:+.3f}, {cell['high']:+.3f}], "
        f"{cell['positive']}+/{cell['negative']}−/{cell['ties']}= of {cell['n']}, one-sided t p = "
        + ("n/a" if p is None else f"{p:.3f}")
    )
    if cell["n"] < 2:
        return None, observed + " (fewer than 2 repeats)"
    return bool(cell["mean"] > 0 and p is not None and p < ALPHA), observed


def _paired_rule(section: str, pair: str, last: bool) -> Callable[[dict[str, Any]], tuple[bool | None, str]]:
    def check(results: dict[str, Any]) -> tuple[bool | None, str]:
        rounds = results[section]["paired"][pair]
        key = max(rounds, key=int) if last else "1"
        return _better(rounds[key]["pixel_ap"])

    return check


def _s2_matches_s1(results: dict[str, Any]) -> tuple[bool | None, str]:
    s2 = results["core_set"]["summary"]["qbc"][-1]["pixel_ap"]["mean"]
    s1 = results["domain"]["table1"]["S"]["S_test"]["pixel_ap"]
    return s2 >= s1 - S2_TOLERANCE, f"QBC at S2 {s2:.3f} (mean of repeats), whole pool S1 {s1:.3f}"


def _selection_cost(results: dict[str, Any]) -> tuple[bool | None, str]:
    rows = results["selection_cost"]
    if len(rows) < 2:
        return None, "fewer than 2 pool sizes"
    n = np.log([r["n"] for r in rows])

    def slope(key: str) -> float:
        return float(np.polyfit(n, np.log([max(r[key], 1e-9) for r in rows]), 1)[0])

    sim, qbc = slope("similarity_seconds"), slope("qbc_rank_seconds")
    return sim >= 1.5 and sim - qbc >= 0.5, f"log–log slope: similarity {sim:.2f}, QBC ranking {qbc:.2f}"


def _cal_more_stacks(results: dict[str, Any]) -> tuple[bool | None, str]:
    cells = results["cost_sensitive"]["paired"]["CAL-UAL"]
    counts = [cells[r]["added_count"] for r in sorted(cells, key=int)]
    held = all(c["negative"] == 0 and c["ties"] == 0 for c in counts)
    return held, "; ".join(
        f"round {r}: CAL − UAL {c['mean']:+.1f} stacks, {c['positive']} of {c['n']} repeats more"
        for r, c in zip(sorted(cells, key=int), counts)
    )


def _ual_no_gain(results: dict[str, Any]) -> tuple[bool | None, str]:
    reps = results["cost_sensitive"]["repeats"]
    gains = [
        r["strategies"]["UAL"][1]["metrics"]["pixel_ap"] - r["strategies"]["UAL"][0]["metrics"]["pixel_ap"]
        for r in reps
    ]
    cell = interval(gains)
    return not cell[
        "low"
    ] > 0, f"UAL(+1 round) − seed: mean {cell['mean']:+.3f} [95 % CI {cell['low']:+.3f}, {cell['high']:+.3f}]"


def _wild_within(results: dict[str, Any]) -> tuple[bool | None, str]:
    wild = results["domain"]["wild"]
    error = wild["relative_error"]
    observed = (
        f"{wild['stacks']} stacks, {wild['predicted_hours']:.2f} h predicted, {wild['actual_hours']:.2f} h actual"
        + ("" if error is None else f" ({100 * error:+.1f} %)")
    )
    if wild["stacks"] < WILD_MIN_STACKS or error is None:
        return None, observed + f" (fewer than {WILD_MIN_STACKS} stacks)"
    return abs(error) <= BATCH_TOLERANCE, observed


def _table1(results: dict[str, Any]) -> tuple[bool | None, str]:
    t = results["domain"]["table1"]
    u_gain = t["S+U"]["U_test"]["pixel_ap"] - t["S"]["U_test"]["pixel_ap"]
    s_change = t["S+U"]["S_test"]["pixel_ap"] - t["S"]["S_test"]["pixel_ap"]
    return (
        u_gain > 0 and s_change >= -TABLE1_TOLERANCE,
        f"U_test pixel AP {u_gain:+.3f}, S_test pixel AP {s_change:+.3f} (one training each, no repeats)",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "qbc_beats_random",
        "§5.1, Fig. 4",
        "QBC chooses better data than random selection.",
        "pixel AP of QBC − random at S2 (half the pool): mean > 0 and one-sided paired t-test p < 0.05",
        _paired_rule("core_set", "qbc-random", last=True),
    ),
    Claim(
        "qbc_beats_similarity",
        "§5.1, Fig. 4",
        "QBC outperforms QBC + similarity (suggestive annotation) as the labeled set grows.",
        "pixel AP of QBC − QBC + similarity at S2: mean > 0 and one-sided paired t-test p < 0.05",
        _paired_rule("core_set", "qbc-qbc_similarity", last=True),
    ),
    Claim(
        "s2_matches_s1",
        "§5.1, Fig. 4",
        "With QBC, half the dataset (S2) closely matches the whole dataset (S1).",
        f"mean pixel AP of QBC at S2 ≥ pixel AP of the whole-pool committee − {S2_TOLERANCE}",
        _s2_matches_s1,
    ),
    Claim(
        "similarity_quadratic",
        "§5.1",
        "The similarity step is quadratic in the pool; QBC is linear.",
        "log–log slope of the similarity step's seconds vs pool size ≥ 1.5, and ≥ 0.5 above QBC's",
        _selection_cost,
    ),
    Claim(
        "cal_beats_ual",
        "§5.2, Fig. 5",
        "At +10 % CAL outperforms UAL.",
        "pixel AP of CAL − UAL after round 1: mean > 0 and one-sided paired t-test p < 0.05",
        _paired_rule("cost_sensitive", "CAL-UAL", last=False),
    ),
    Claim(
        "cal_beats_random",
        "§5.2, Fig. 5",
        "At +10 % CAL outperforms random selection.",
        "pixel AP of CAL − random after round 1: mean > 0 and one-sided paired t-test p < 0.05",
        _paired_rule("cost_sensitive", "CAL-random", last=False),
    ),
    Claim(
        "cal_more_stacks",
        "§5.2, Fig. 6",
        "Under the same budget CAL labels many more stacks than UAL (94/107 vs 8/11).",
        "CAL chooses more stacks than UAL in every repeat and round",
        _cal_more_stacks,
    ),
    Claim(
        "ual_no_gain",
        "§5.2, Fig. 5",
        "At +10 % UAL does not improve over the seed set.",
        "the 95 % interval of UAL's pixel AP gain over the seed committee after round 1 is not above 0",
        _ual_no_gain,
    ),
    Claim(
        "wild_within_10pct",
        "§5.3",
        "The actual labeling time of a selected batch is within 10 % of the prediction.",
        f"one CAL batch of ≥ {WILD_MIN_STACKS} U stacks: |predicted − actual| / actual ≤ {BATCH_TOLERANCE}",
        _wild_within,
    ),
    Claim(
        "table1_domain",
        "§5.3, Table 1",
        "Adding data from the new domain improves it without hurting the seed domain.",
        f"S ∪ U_train − S: U_test pixel AP > 0 and S_test pixel AP ≥ −{TABLE1_TOLERANCE}",
        _table1,
    ),
    Claim(
        "oracle_cal_beats_ual",
        "ablation (this study)",
        "With T from the true masks, CAL outperforms UAL at +10 %.",
        "pixel AP of CAL_oracle − UAL_oracle after round 1: mean > 0 and one-sided paired t-test p < 0.05",
        _paired_rule("cost_sensitive", "CAL_oracle-UAL_oracle", last=False),
    ),
)


def evaluate_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each claim with its verdict: "held", "failed" or "not tested" (missing data, or too few repeats)."""
    out = []
    for claim in CLAIMS:
        try:
            held, observed = claim.check(results)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            held, observed = None, f"missing data: {error!r}"
        if isinstance(held, float) and math.isnan(held):
            held = None
        verdict = "not tested" if held is None else ("held" if held else "failed")
        out.append({**claim.to_json(), "verdict": verdict, "observed": observed})
    return out
