"""Phantom pools with simulated labeling times, training, scoring and held-out AP for the experiments.

Everything goes through the project's own code: phantoms (``ichal.phantoms``), the model grid and
windows (``ichal.preprocessing``), training (``ichal.train.trainer``), the ensemble's sliding window
(``ichal.model.ensemble``), V, B and M (``ichal.features.stack_features``, ``labeling_features``) and
AP at pixel, region, frame and stack level (``ichal.features.metrics.DetectionEvaluator``).
"""

from __future__ import annotations

import copy
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
    config: ExperimentConfig,
    count: int,
    seed: int,
    prefix: str,
    progress: Progress | None = None,
    lesion_contrast: str = "drawn",
) -> list[PoolStack]:
    """``count`` phantoms (pool seed ``seed``), mapped onto the model grid, with true B, M and time;
    ``lesion_contrast="faint"`` gives the U domain (every bleed faint)."""
    noise = np.random.default_rng(np.random.SeedSequence([seed, 7919])).standard_normal(count)
    stacks = []
    for i, phantom in enumerate(
        generate_pool(
            count,
            seed,
            negative_fraction=config.negative_fraction,
            size=config.grid_size,
            frames=config.frames,
            lesion_contrast=lesion_contrast,
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


def _fit(
    config: ExperimentConfig,
    stacks: Sequence[PoolStack],
    seed: int,
    iterations: int,
    learning_rate: float,
    initial: Ensemble | None,
) -> Ensemble:
    """One cosine cycle of ``iterations`` steps per model; ``initial`` is copied, never changed."""
    hp = config.hyperparameters(seed, iterations, learning_rate)
    start = copy.deepcopy(initial) if initial is not None else None
    ensemble, _ = train_ensemble(
        [s.training for s in stacks], hp, device=DEVICE, progress=lambda line: None, initial=start
    )
    return ensemble


def train_to_plateau(
    config: ExperimentConfig,
    stacks: Sequence[PoolStack],
    validation: Sequence[PoolStack],
    seed: int,
    progress: Progress,
    label: str,
) -> tuple[Ensemble, list[dict[str, float]]]:
    """Cosine cycles of ``plateau_chunk`` steps (warm restarts, a new crop stream each) until the
    validation pixel AP has not gained ``plateau_min_gain`` over its best for ``plateau_patience``
    cycles; returns the last committee that gained that much, and the validation curve."""
    started = time.monotonic()
    ensemble: Ensemble | None = None
    best, best_ap, stale, curve = None, -1.0, 0, []
    for cycle in range(1, config.plateau_max_chunks + 1):
        ensemble = _fit(
            config, stacks, seed + 100 * (cycle - 1), config.plateau_chunk, config.learning_rate, ensemble
        )
        ap = evaluate(config, ensemble, validation)["pixel_ap"]
        curve.append({"steps": cycle * config.plateau_chunk, "validation_pixel_ap": ap})
        if ap >= best_ap + config.plateau_min_gain or best is None:
            best, best_ap, stale = copy.deepcopy(ensemble), max(ap, best_ap), 0
        else:
            stale += 1
            if stale >= config.plateau_patience:
                break
    progress(
        f"  trained {label} on {len(stacks)} stacks ({sum(s.positive for s in stacks)} positive) to a validation "
        f"plateau: {len(curve)} cycles, best pixel AP {best_ap:.3f}, {time.monotonic() - started:.0f}s"
    )
    assert best is not None
    return best, curve


def update_committee(
    config: ExperimentConfig,
    previous: Ensemble,
    stacks: Sequence[PoolStack],
    validation: Sequence[PoolStack],
    seed: int,
    progress: Progress,
    label: str,
) -> Ensemble:
    """The next round's committee on the grown labeled set: ``previous`` fine-tuned for a fixed
    schedule (same member seeds for every strategy), or, without ``warm_start``, a fresh committee
    trained to a validation plateau (the paper's retraining)."""
    if not config.warm_start:
        return train_to_plateau(config, stacks, validation, seed, progress, label)[0]
    started = time.monotonic()
    ensemble = _fit(config, stacks, seed, config.finetune_iterations, config.finetune_learning_rate, previous)
    progress(f"  fine-tuned {label} on {len(stacks)} stacks in {time.monotonic() - started:.0f}s")
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


@torch.no_grad()
def mean_heatmap(ensemble: Ensemble, stack: PoolStack) -> np.ndarray:
    """The committee's mean hemorrhage probability [F, H, W] (for the gallery)."""
    ensemble.to(DEVICE).eval()
    return ensemble.predict(_frames(stack)).mean(0).numpy()


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
