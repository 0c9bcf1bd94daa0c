"""Phantom pools with simulated labeling times, training, scoring and held-out AP for the experiments.

Everything goes through the project's own code: phantoms (``ichal.phantoms``), the model grid and
windows (``ichal.preprocessing``), training (``ichal.train.trainer``), the ensemble's sliding window
(``ichal.model.ensemble``), V, B and M (``ichal.features.stack_features``, ``labeling_features``) and
AP at pixel, region, frame and stack level (``ichal.features.metrics.DetectionEvaluator``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..features import DetectionEvaluator, labeling_features, stack_features
from ..model.ensemble import Ensemble
from ..phantoms import generate_pool
from ..preprocessing import window_channels
from ..train.trainer import TrainingStack, to_training_stack, train_ensemble
from .config import ExperimentConfig, LabelingTimeTruth

Progress = Callable[[str], None]
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""Training and scoring device: CUDA when present (``--config gpu``), else the CPU."""
METRICS = ("pixel_ap", "region_ap", "frame_ap", "stack_ap")


@dataclass
class PoolStack:
    """One phantom stack on the model grid with its true labeling features and simulated time."""

    id: str
    training: TrainingStack
    boundary_length: float
    """B of the true mask (pixels, summed over frames)."""
    components: float
    """M of the true mask (8-connected components, summed over frames)."""
    true_seconds: float
    """Simulated annotator time (``LabelingTimeTruth``)."""

    @property
    def positive(self) -> bool:
        return bool(self.training.mask.any())


@dataclass
class StackScore:
    """What the ensemble says about an unlabeled stack."""

    uncertainty: float
    """V (§3.1)."""
    boundary_length: float
    """B of the mean heatmap (mean over thresholds 0.3/0.5/0.7)."""
    components: float
    embedding: np.ndarray | None = None
    """Pooled backbone features (QBC + similarity only)."""


def simulated_seconds(
    truth: LabelingTimeTruth, boundary_length: float, components: float, noise: float
) -> float:
    """log t = α log(1+B) + β log(1+M) + γ + σ ε (paper eq. 2, with the project's log(1+·))."""
    return math.exp(
        truth.alpha * math.log1p(boundary_length)
        + truth.beta * math.log1p(components)
        + truth.gamma
        + truth.sigma * noise
    )


def build_pool(
    config: ExperimentConfig, count: int, seed: int, prefix: str, progress: Progress | None = None
) -> list[PoolStack]:
    """``count`` phantoms (pool seed ``seed``), mapped onto the model grid, with true B, M and time."""
    noise = np.random.default_rng(np.random.SeedSequence([seed, 7919])).standard_normal(count)
    stacks = []
    for i, phantom in enumerate(
        generate_pool(
            count,
            seed,
            negative_fraction=config.negative_fraction,
            size=config.grid_size,
            frames=config.frames,
        )
    ):
        training = to_training_stack(
            phantom.hu, phantom.mask, phantom.pixel_spacing, config.grid_size, name=f"{prefix}{i:04d}"
        )
        features = labeling_features(training.mask.astype(np.float32), backend="scipy", workers=1)
        b, m = features.boundary_length, features.components
        stacks.append(
            PoolStack(training.name, training, b, m, simulated_seconds(config.truth, b, m, float(noise[i])))
        )
        if progress and ((i + 1) % 16 == 0 or i + 1 == count):
            progress(f"  {prefix.rstrip('-')}: {i + 1}/{count} phantoms")
    return stacks


def train(
    config: ExperimentConfig, stacks: Sequence[PoolStack], seed: int, progress: Progress, label: str
) -> Ensemble:
    started = time.monotonic()
    quiet: Progress = lambda line: None
    ensemble, _ = train_ensemble(
        [s.training for s in stacks], config.hyperparameters(seed), device=DEVICE, progress=quiet
    )
    progress(
        f"  trained {label}: {len(ensemble)} models on {len(stacks)} stacks ({sum(s.positive for s in stacks)} positive) in {time.monotonic() - started:.0f}s"
    )
    return ensemble


def _frames(stack: PoolStack) -> torch.Tensor:
    return torch.from_numpy(window_channels(stack.training.hu.astype(np.float32)))


@torch.no_grad()
def embed(ensemble: Ensemble, stack: PoolStack) -> np.ndarray:
    """Per-stack feature vector: each model's backbone on whole frames, global mean and max pooled
    over pixels and frames, concatenated over models (the paper's patch-based similarity measure
    for the baseline, §5.1, applied to the frames the sliding window covers)."""
    frames = _frames(stack).to(DEVICE)
    parts = []
    for model in ensemble.models:
        maps = torch.cat(
            [model.backbone(frames[i : i + 8]) for i in range(0, frames.shape[0], 8)]
        )  # [F, C, h, w]
        pooled = maps.mean(dim=(2, 3))  # [F, C]
        parts += [pooled.mean(0), pooled.amax(0)]
    return torch.cat(parts).cpu().numpy().astype(np.float64)


@torch.no_grad()
def score(
    config: ExperimentConfig, ensemble: Ensemble, stacks: Sequence[PoolStack], *, with_embedding: bool = False
) -> dict[str, StackScore]:
    """V, heatmap B and M (and optionally the embedding) of each stack, through the serving features."""
    ensemble.to(DEVICE).eval()
    out = {}
    for stack in stacks:
        probs = ensemble.predict(_frames(stack))
        features = stack_features(probs, top_k=config.top_k, crop=ensemble.crop, stride=ensemble.stride)
        out[stack.id] = StackScore(
            uncertainty=float(features.stack_uncertainty),
            boundary_length=float(features.boundary_length),
            components=float(features.components),
            embedding=embed(ensemble, stack) if with_embedding else None,
        )
    return out


def embed_only(ensemble: Ensemble, stacks: Sequence[PoolStack]) -> dict[str, StackScore]:
    """Embeddings of labeled stacks (their V, B, M are not needed: NaN)."""
    ensemble.to(DEVICE).eval()
    nan = float("nan")
    return {
        s.id: StackScore(uncertainty=nan, boundary_length=nan, components=nan, embedding=embed(ensemble, s))
        for s in stacks
    }


@torch.no_grad()
def evaluate(config: ExperimentConfig, ensemble: Ensemble, test: Sequence[PoolStack]) -> dict[str, float]:
    """AP at pixel, region, frame and stack level on the test stacks (``DetectionEvaluator``)."""
    ensemble.to(DEVICE).eval()
    evaluator = DetectionEvaluator()
    for stack in test:
        probs = ensemble.predict(_frames(stack))
        evaluator.add(probs.mean(0), stack.training.mask)
    result = evaluator.result()
    return {k: float(result[k]) for k in METRICS}


def seed_subset(stacks: Sequence[PoolStack], count: int, rng: np.random.Generator) -> list[int]:
    """``count`` random indices, at least one of a positive stack (a seed set with no hemorrhage
    cannot train the detector; the paper's seed sets are large enough that this never arises)."""
    order = [int(i) for i in rng.permutation(len(stacks))]
    chosen = order[:count]
    if not any(stacks[i].positive for i in chosen):
        first_positive = next((i for i in order[count:] if stacks[i].positive), None)
        if first_positive is not None:
            chosen[-1] = first_positive
    return sorted(chosen)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
