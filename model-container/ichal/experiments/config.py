"""Sizes of the experiments: ``cpu`` (default, ~20 min on 2 cores), ``gpu`` (closer to the paper), ``tiny`` (tests).

Every number that shapes a result is here, so the README of a run can print the configuration it
used. The paper's scale for comparison: 934 train/val stacks, 313 test stacks, 27–38 frames of 512²,
N = 4 DRN-D-38 PatchFCNs trained on 160² crops, K = 200, 61 stacks to fit the time model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..train.hyperparameters import Hyperparameters


@dataclass(frozen=True)
class LabelingTimeTruth:
    """The simulated annotator: log t = α log(1+B) + β log(1+M) + γ + σ ε, ε ~ N(0, 1) (paper eq. 2).

    B and M are computed from the *true* mask on the model grid with the project's features code.
    e^γ = 30 s is the time to review a stack with nothing to draw; with B up to ~2,000 px and M up
    to ~50 on a 96–128² grid, times span about three orders of magnitude (15 s to ~3 h), as in Fig. 3.
    """

    alpha: float = 0.55
    beta: float = 0.45
    gamma: float = 3.4
    sigma: float = 0.35


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    # data
    grid_size: int
    """Phantoms are generated at grid_size² and used on the same model grid."""
    frames: int | None
    """Frames per stack; None draws 27–38 like the paper's scans."""
    pool_size: int
    """Training pool (the paper's S_trainval). A power of two keeps the core-set rounds exact."""
    test_size: int
    """Held-out test stacks (the paper's S_test)."""
    timing_fit_size: int
    """Simulated completions used to fit the time model (the paper: 61)."""
    negative_fraction: float
    # model and training (ichal.train.trainer)
    ensemble_size: int
    width: float
    crop: int
    stride: int
    iterations: int
    batch_size: int
    learning_rate: float
    hemorrhage_weight: float
    """Cross-entropy weight of the hemorrhage class: 4 lets a short schedule learn to draw bleeds
    (with 1 and 150 steps the committee predicted no hemorrhage at all on phantoms)."""
    top_k: int
    # experiments
    cost_repeats: int
    """Repeats of the cost-sensitive experiment (seed set, initialisation and random choices vary)."""
    cost_rounds: int
    """Rounds of +cost_increment of the pool's total labeling time (the paper: 2, i.e. +10 %, +20 %)."""
    cost_increment: float
    core_full_reference: bool
    """Also train on the whole pool (the paper's S1 line in Fig. 4)."""
    selection_cost_sizes: tuple[int, ...]
    """Synthetic pool sizes for the selection-cost table (QBC vs QBC + similarity)."""
    selection_cost_dims: int
    truth: LabelingTimeTruth = LabelingTimeTruth()

    def hyperparameters(self, seed: int) -> Hyperparameters:
        return Hyperparameters(
            ensemble_size=self.ensemble_size,
            width=self.width,
            crop=self.crop,
            stride=self.stride,
            grid_size=self.grid_size,
            iterations=self.iterations,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            hemorrhage_weight=self.hemorrhage_weight,
            top_k=self.top_k,
            seed=seed,
            log_every=max(1, self.iterations // 2),
        )

    def with_overrides(self, **changes) -> ExperimentConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["selection_cost_sizes"] = list(self.selection_cost_sizes)
        return out


CPU = ExperimentConfig(
    name="cpu",
    grid_size=128,
    frames=None,
    pool_size=64,
    test_size=12,
    timing_fit_size=60,
    negative_fraction=0.3,
    ensemble_size=2,
    width=0.125,
    crop=64,
    stride=32,
    iterations=200,
    batch_size=8,
    learning_rate=0.003,
    hemorrhage_weight=4.0,
    top_k=50,
    cost_repeats=2,
    cost_rounds=2,
    cost_increment=0.10,
    core_full_reference=False,
    selection_cost_sizes=(500, 1000, 2000, 4000, 8000),
    selection_cost_dims=64,
)
"""~20 min on 2 idle CPU cores. Two models per committee (not the paper's four), a 128² grid, 200
steps per model, two repeats of the cost-sensitive experiment (``--seeds 3`` or more for steadier
error bars) and no whole-pool (S1) reference, to fit the budget."""

GPU = ExperimentConfig(
    name="gpu",
    grid_size=256,
    frames=None,
    pool_size=256,
    test_size=64,
    timing_fit_size=61,
    negative_fraction=0.3,
    ensemble_size=4,
    width=0.5,
    crop=96,
    stride=48,
    iterations=1500,
    batch_size=16,
    learning_rate=0.002,
    hemorrhage_weight=4.0,
    top_k=100,
    cost_repeats=5,
    cost_rounds=2,
    cost_increment=0.10,
    core_full_reference=True,
    selection_cost_sizes=(1000, 2000, 4000, 8000, 16000),
    selection_cost_dims=128,
)
"""The paper's N = 4 committee on larger pools and frames; a few hours on one GPU (not yet measured)."""

TINY = ExperimentConfig(
    name="tiny",
    grid_size=64,
    frames=6,
    pool_size=8,
    test_size=2,
    timing_fit_size=8,
    negative_fraction=0.25,
    ensemble_size=2,
    width=0.0625,
    crop=32,
    stride=32,
    iterations=4,
    batch_size=2,
    learning_rate=0.002,
    hemorrhage_weight=4.0,
    top_k=4,
    cost_repeats=2,
    cost_rounds=2,
    cost_increment=0.75,
    core_full_reference=False,
    selection_cost_sizes=(32,),
    selection_cost_dims=8,
    # Review time dominates, so that the untrained committee's predicted T stays within a round's
    # budget and the budget checks of the tests see stacks chosen.
    truth=LabelingTimeTruth(alpha=0.1, beta=0.1, gamma=6.0, sigma=0.1),
)
"""Seconds on a CPU: checks invariants in the test suite, says nothing about accuracy."""

CONFIGS = {c.name: c for c in (CPU, GPU, TINY)}
