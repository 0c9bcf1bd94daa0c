"""Sizes of the experiments: ``cpu`` (default, ~20 min on 2 cores), ``gpu`` (closer to the paper), ``tiny`` (tests).

Every number that shapes a result is here and fixed before a run, so the README of a run prints the
configuration it used. The paper's scale: 934 train/val and 313 test stacks, 27–38 frames of 512²,
N = 4 DRN-D-38 PatchFCNs on 160² crops, K = 200, 61 stacks to fit the time model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..train.hyperparameters import Hyperparameters


@dataclass(frozen=True)
class LabelingTimeTruth:
    """The simulated annotator: log t = α log(1+B) + β log(1+M) + γ + σ ε, ε ~ N(0, 1) (paper eq. 2).

    B and M come from the *true* mask on the model grid (the project's features code); e^γ = 30 s
    is the time to review a stack with nothing to draw.
    """

    alpha: float = 0.55
    beta: float = 0.45
    gamma: float = 3.4
    sigma: float = 0.35


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    # data: the seed domain S, a second domain U with only faint bleeds, and held-out sets
    grid_size: int
    frames: int | None
    """Frames per stack; None draws 27–38 like the paper's scans."""
    pool_size: int
    """Training pool S (the paper's S_trainval)."""
    test_size: int
    validation_size: int
    """Stacks of each domain used to decide when the seed committee has plateaued (never the test set)."""
    timing_fit_size: int
    negative_fraction: float
    u_train_size: int
    u_test_size: int
    wild_size: int
    """Unlabeled U-domain stacks for the 'AL in the wild' batch."""
    wild_budget_share: float
    """The wild batch's budget as a share of that pool's predicted total hours."""
    # model and training (ichal.train.trainer)
    arch: str
    ensemble_size: int
    width: float
    crop: int
    stride: int
    batch_size: int
    learning_rate: float
    hemorrhage_weight: float
    top_k: int
    plateau_chunk: int
    """Steps per model of one cosine cycle; validation pixel AP is measured after each."""
    plateau_max_chunks: int
    plateau_patience: int
    """Stop after this many cycles without a gain of plateau_min_gain over the best."""
    plateau_min_gain: float
    finetune_iterations: int
    finetune_learning_rate: float
    warm_start: bool
    """True: each round fine-tunes the previous round's committee; False: the paper's retraining
    from scratch (to a validation plateau) on the grown labeled set."""
    # experiments
    repeats: int
    """Paired repeats: a repeat fixes the seed set, the seed committee and every training seed, and
    all strategies share them."""
    cost_rounds: int
    cost_increment: float
    """Round budget as a share of the unlabeled pool's predicted total hours."""
    core_seed_size: int
    selection_cost_sizes: tuple[int, ...]
    selection_cost_dims: int
    threads: int | None = None
    """Torch threads (None: the cores this process may use)."""
    truth: LabelingTimeTruth = LabelingTimeTruth()

    def hyperparameters(self, seed: int, iterations: int, learning_rate: float) -> Hyperparameters:
        return Hyperparameters(
            arch=self.arch,
            ensemble_size=self.ensemble_size,
            width=self.width,
            crop=self.crop,
            stride=self.stride,
            grid_size=self.grid_size,
            iterations=iterations,
            batch_size=self.batch_size,
            learning_rate=learning_rate,
            hemorrhage_weight=self.hemorrhage_weight,
            top_k=self.top_k,
            seed=seed,
            log_every=max(1, iterations),
        )

    def with_overrides(self, **changes) -> ExperimentConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["selection_cost_sizes"] = list(self.selection_cost_sizes)
        return out


CPU = ExperimentConfig(
    name="cpu",
    grid_size=64,
    frames=8,
    pool_size=128,
    test_size=40,
    validation_size=16,
    timing_fit_size=60,
    negative_fraction=0.3,
    u_train_size=64,
    u_test_size=40,
    wild_size=160,
    wild_budget_share=0.5,
    arch="drn_d_22",
    ensemble_size=2,
    width=0.125,
    crop=48,
    stride=16,
    batch_size=8,
    learning_rate=0.003,
    hemorrhage_weight=4.0,
    top_k=30,
    plateau_chunk=100,
    plateau_max_chunks=16,
    plateau_patience=2,
    plateau_min_gain=0.01,
    finetune_iterations=50,
    finetune_learning_rate=0.001,
    warm_start=True,
    repeats=5,
    cost_rounds=2,
    cost_increment=0.10,
    core_seed_size=8,
    selection_cost_sizes=(500, 1000, 2000, 4000, 8000),
    selection_cost_dims=64,
    threads=1,
)
"""~20 min on the shared 2-core machine: 64² grid, 8 frames, 2 × DRN-D-22 at width 0.125, one torch
thread (with other jobs running, two threads contended: 127 against 51 ms per training step)."""

GPU = dataclasses.replace(
    CPU,
    name="gpu",
    grid_size=256,
    frames=None,
    pool_size=512,
    test_size=128,
    validation_size=48,
    timing_fit_size=61,
    u_train_size=192,
    u_test_size=128,
    wild_size=400,
    arch="drn_d_38",
    ensemble_size=4,
    width=0.5,
    crop=96,
    stride=48,
    batch_size=16,
    learning_rate=0.002,
    top_k=100,
    plateau_chunk=400,
    plateau_max_chunks=12,
    finetune_iterations=300,
    finetune_learning_rate=0.0007,
    repeats=8,
    core_seed_size=16,
    selection_cost_sizes=(1000, 2000, 4000, 8000, 16000),
    selection_cost_dims=128,
    threads=None,
)
"""The paper's N = 4 DRN-D-38 committee on larger pools and frames; hours on one GPU (not yet run)."""

TINY = ExperimentConfig(
    name="tiny",
    grid_size=64,
    frames=4,
    pool_size=16,
    test_size=3,
    validation_size=2,
    timing_fit_size=8,
    negative_fraction=0.25,
    u_train_size=4,
    u_test_size=2,
    wild_size=6,
    wild_budget_share=0.5,
    arch="drn_d_22",
    ensemble_size=2,
    width=0.0625,
    crop=32,
    stride=32,
    batch_size=2,
    learning_rate=0.002,
    hemorrhage_weight=4.0,
    top_k=4,
    plateau_chunk=2,
    plateau_max_chunks=2,
    plateau_patience=1,
    plateau_min_gain=0.01,
    finetune_iterations=2,
    finetune_learning_rate=0.001,
    warm_start=True,
    repeats=2,
    cost_rounds=2,
    cost_increment=0.3,
    core_seed_size=4,
    selection_cost_sizes=(32,),
    selection_cost_dims=8,
)
"""Seconds on a CPU: checks invariants in the test suite, says nothing about accuracy."""

CONFIGS = {c.name: c for c in (CPU, GPU, TINY)}
