"""Selection for the experiments: the project's ``ich-al`` command, and the similarity baseline.

Knapsack (CAL), uniform-cost (UAL, highest V first) and random selection and the time-model fit are
*not* re-implemented here: :class:`IchAl` runs ``node bin/ich-al.mjs`` (``lambdas/cli/ich-al.ts``)
from the repository root on JSON files, exactly as an operator would.

The one selector that lives here is the QBC + similarity baseline of the core-set experiment
(suggestive annotation, Yang et al., MICCAI 2017, as compared in the paper §5.1): take the 2k most
uncertain stacks, then greedily the k among them that maximise the coverage of the whole pool,

    F(S) = Σ_{x ∈ pool} max_{s ∈ S ∪ labeled} sim(s, x),    sim = cosine similarity of stack features,

a monotone submodular function, maximised greedily (lazy evaluation, Minoux 1978 — the same choices
as plain greedy up to ties). Building the 2k × n similarity matrix is what makes it quadratic in the
pool when k grows with it, as the doubling rounds do; QBC alone is a linear scan.
"""

from __future__ import annotations

import heapq
import json
import math
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The repository root (``bin/ich-al.mjs`` lives there)."""

UNIT_SECONDS = 3600.0
"""Cost given to every stack when selection should count stacks, not seconds (core-set rounds):
one hour each, and a budget of k hours buys exactly k stacks (integer capacity, no rounding)."""


WEAKEST_PRIOR = {"alpha": 0.45, "beta": 0.35, "gamma": math.log(45), "residualSd": 0.6, "strength": 0.1}
"""The documented prior's centre at the least strength ``ich-al fit-time`` accepts (MIN_PRIOR_STRENGTH)."""


class IchAlError(RuntimeError):
    """The ich-al command failed or printed something that is not the expected JSON."""


@dataclass(frozen=True)
class TimeFit:
    """Output of ``ich-al fit-time`` (the deployed refit's Bayesian estimator: posterior mode with α, β ≥ 0):
    log t = α log(1+B) + β log(1+M) + γ, residual SD s."""

    alpha: float
    beta: float
    gamma: float
    n: int
    r2: float
    residual_sd: float

    def predicted_seconds(self, boundary_length: float, components: float) -> float:
        """The log-normal mean e^(ŷ + s²/2) (paper §3.2, eq. 2); ``predictLabelingSeconds`` in
        ``lambdas/domain/labeling-time-model.ts`` also widens s² by the coefficients' own uncertainty,
        which is small once the fit has a few dozen stacks."""
        mu = self.alpha * math.log1p(boundary_length) + self.beta * math.log1p(components) + self.gamma
        return math.exp(mu + self.residual_sd**2 / 2)

    def to_json(self) -> dict[str, float]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "n": self.n,
            "r2": self.r2,
            "residual_sd": self.residual_sd,
        }


class IchAl:
    """Runs the ``ich-al`` command as a subprocess; seconds spent in it are summed in ``seconds``."""

    def __init__(self, repo_root: str | Path = REPO_ROOT, node: str = "node") -> None:
        self.repo_root = Path(repo_root)
        self.entry = self.repo_root / "bin" / "ich-al.mjs"
        if not self.entry.is_file():
            raise IchAlError(f"{self.entry} not found: run from a checkout of the repository")
        self.node = node
        self.calls = 0
        self.seconds = 0.0

    def _run(self, args: list[str], payload: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="ichal-exp-") as tmp:
            path = Path(tmp) / "input.json"
            path.write_text(json.dumps(payload))
            command = [self.node, str(self.entry), args[0], args[1], str(path), *args[2:]]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=self.repo_root, capture_output=True, text=True, check=False)
            self.seconds += time.perf_counter() - started
            self.calls += 1
        if done.returncode != 0:
            raise IchAlError(
                f"ich-al {args[0]} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
            )
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError as error:
            raise IchAlError(f"ich-al {args[0]} printed no JSON: {done.stdout[:200]!r}") from error

    def select(
        self,
        pool: Sequence[Mapping[str, Any]],
        *,
        budget_seconds: float,
        strategy: str,
        seed: int = 0,
        resolution_seconds: float = 1.0,
    ) -> dict[str, Any]:
        """``ich-al select``; ``pool`` entries are ``{"id", "uncertainty", "predictedSeconds"}``."""
        if strategy not in ("knapsack", "uniform", "random"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if not pool:
            return {
                "strategy": strategy,
                "selected": [],
                "totalUncertainty": 0.0,
                "totalSeconds": 0.0,
                "budgetSeconds": budget_seconds,
            }
        args = [
            "select",
            "--pool",
            "--budget-hours",
            repr(budget_seconds / 3600.0),
            "--strategy",
            strategy,
            "--seed",
            str(int(seed)),
            "--resolution-seconds",
            repr(resolution_seconds),
        ]
        return self._run(args, [dict(e) for e in pool])

    def select_count(
        self,
        ids: Sequence[str],
        uncertainty: Sequence[float] | None,
        count: int,
        *,
        strategy: str,
        seed: int = 0,
    ) -> list[str]:
        """Exactly ``min(count, len(ids))`` stacks, every stack costing one unit (core-set rounds).

        ``uniform`` takes the highest uncertainty first (QBC); ``random`` a seeded random subset.
        """
        count = min(int(count), len(ids))
        if count <= 0:
            return []
        values = [1.0] * len(ids) if uncertainty is None else [float(v) for v in uncertainty]
        if strategy == "uniform" and sum(v > 0 for v in values) < count:
            raise IchAlError("fewer stacks with positive uncertainty than requested")
        pool = [{"id": i, "uncertainty": v, "predictedSeconds": UNIT_SECONDS} for i, v in zip(ids, values)]
        out = self.select(pool, budget_seconds=count * UNIT_SECONDS, strategy=strategy, seed=seed)
        return list(out["selected"])

    def fit_time(self, timings: Sequence[Mapping[str, float]]) -> TimeFit:
        """``ich-al fit-time``; ``timings`` entries are ``{"boundaryLength", "components", "seconds"}``.

        The paper fits eq. 2 by least squares on measured times; the deployed estimator is Bayesian with a
        prior worth 4 completions. The experiments give it the weakest prior it accepts (worth 0.1
        completions) and no upper limit on simulated times, so the fit is least squares in all but name
        (still with α, β ≥ 0)."""
        with tempfile.TemporaryDirectory(prefix="ichal-prior-") as tmp:
            prior = Path(tmp) / "prior.json"
            prior.write_text(json.dumps(WEAKEST_PRIOR))
            out = self._run(
                ["fit-time", "--timings", "--prior", str(prior), "--max-seconds", "1e12"],
                [dict(t) for t in timings],
            )
        return TimeFit(
            alpha=out["alpha"],
            beta=out["beta"],
            gamma=out["gamma"],
            n=out["n"],
            r2=out["r2"],
            residual_sd=out["residualSd"],
        )


def _normalise(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.where(norm > 0, norm, 1.0)


def coverage_greedy(
    candidate_features: np.ndarray,
    pool_features: np.ndarray,
    k: int,
    *,
    labeled_features: np.ndarray | None = None,
) -> list[int]:
    """Indices (into the candidates) of the k candidates chosen greedily for pool coverage F (module doc).

    Deterministic: ties go to the lower candidate index.
    """
    cand = _normalise(candidate_features)
    pool = _normalise(pool_features)
    k = min(int(k), cand.shape[0])
    if k <= 0:
        return []
    sim = cand @ pool.T  # [candidates, pool]: the quadratic part
    cover = (
        np.zeros(pool.shape[0])
        if labeled_features is None or len(labeled_features) == 0
        else (_normalise(labeled_features) @ pool.T).max(axis=0)
    )
    gains = np.maximum(sim - cover, 0.0).sum(axis=1)
    heap = [(-float(g), i) for i, g in enumerate(gains)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < k:
        _, i = heapq.heappop(heap)
        gain = float(np.maximum(sim[i] - cover, 0.0).sum())
        if not heap or (-gain, i) <= heap[0]:
            chosen.append(i)
            cover = np.maximum(cover, sim[i])
        else:
            heapq.heappush(heap, (-gain, i))
    return chosen


def suggestive_annotation(
    ich_al: IchAl,
    ids: Sequence[str],
    uncertainty: Sequence[float],
    features: np.ndarray,
    k: int,
    *,
    pool_features: np.ndarray,
    labeled_features: np.ndarray | None = None,
) -> tuple[list[str], list[str]]:
    """QBC + similarity: (chosen ids, the 2k uncertain candidates they were chosen from).

    The 2k candidates are the ``ich-al`` uniform-cost choice with unit costs (highest V first);
    ``features[i]`` belongs to ``ids[i]``; ``pool_features`` are the stacks whose coverage counts
    (the whole pool, labeled and unlabeled).
    """
    candidates = ich_al.select_count(ids, uncertainty, 2 * k, strategy="uniform")
    index = {name: i for i, name in enumerate(ids)}
    rows = [index[c] for c in candidates]
    picked = coverage_greedy(features[rows], pool_features, k, labeled_features=labeled_features)
    return [candidates[p] for p in picked], candidates
