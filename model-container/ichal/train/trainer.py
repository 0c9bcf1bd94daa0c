"""Training the PatchFCN ensemble on 160 × 160 crops with hemorrhage-balanced sampling (paper §2, §5).

Data. Each labeled stack is mapped onto the model grid with the same preprocessing serving uses
(``ichal.preprocessing``) and kept as int16 HU plus a boolean mask, so a pool of full-size stacks
fits in memory (16 MB per 32 × 512² stack); crops are windowed into the three input channels as
they are drawn.

Sampling. With probability ``positive_fraction`` a crop is centred (± crop/4 jitter) on a random
hemorrhage pixel of a random positive frame; otherwise on a uniformly random position of a random
frame of any stack. Crops never leave the frame. Horizontal flips augment (the head is roughly
left–right symmetric). Without balancing, crops with blood would be rare (hemorrhage covers well
under 1 % of head-CT pixels) and the network would learn to answer "no bleed".

Ensemble. Model i has its own initialisation and its own sampling stream, both from seed + i (the
paper found no benefit in bootstrapping the data for AP; diversity comes from initialisation and
SGD). With ``bootstrap`` (query by bagging) model i also sees only its own stratified bootstrap
resample of the stacks (:func:`bootstrap_resample`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.ensemble import Ensemble, build_ensemble
from ..preprocessing import mask_to_model_grid, to_model_grid, window_channels
from .hyperparameters import Hyperparameters


@dataclass
class TrainingStack:
    """One labeled stack on the model grid."""

    hu: np.ndarray
    """int16 [frames, S, S] Hounsfield units."""
    mask: np.ndarray
    """bool [frames, S, S] hemorrhage."""
    name: str = ""


def to_training_stack(
    hu: np.ndarray, mask: np.ndarray, pixel_spacing: tuple[float, float], grid_size: int, name: str = ""
) -> TrainingStack:
    grid, transform = to_model_grid(hu, pixel_spacing, grid_size)
    grid_mask = mask_to_model_grid(np.asarray(mask, dtype=bool), transform)
    hu16 = np.clip(np.rint(grid), -32768, 32767).astype(np.int16)
    return TrainingStack(hu=hu16, mask=grid_mask.astype(bool), name=name)


class CropSampler:
    """Draws hemorrhage-balanced crops (see module docstring) from a list of training stacks."""

    def __init__(self, stacks: list[TrainingStack], crop: int, positive_fraction: float, seed: int):
        if not stacks:
            raise ValueError("no training stacks")
        self.stacks = stacks
        self.crop = crop
        self.positive_fraction = positive_fraction
        self.rng = np.random.default_rng(seed)
        self.frames = [(s, f) for s, stack in enumerate(stacks) for f in range(stack.hu.shape[0])]
        self.positive_frames = [(s, f) for s, f in self.frames if stacks[s].mask[f].any()]
        for stack in stacks:
            if stack.hu.shape[1] < crop or stack.hu.shape[2] < crop:
                raise ValueError(f"frames of {stack.hu.shape[1:]} are smaller than the {crop} px crop")

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs float32 [B, 3, crop, crop] in [0, 1], labels int64 [B, crop, crop])."""
        crop = self.crop
        inputs = np.empty((batch_size, 3, crop, crop), dtype=np.float32)
        labels = np.empty((batch_size, crop, crop), dtype=np.int64)
        for b in range(batch_size):
            positive = self.positive_frames and self.rng.random() < self.positive_fraction
            s, f = (self.positive_frames if positive else self.frames)[
                self.rng.integers(len(self.positive_frames if positive else self.frames))
            ]
            stack = self.stacks[s]
            height, width = stack.hu.shape[1:]
            if positive:
                rows, cols = np.nonzero(stack.mask[f])
                k = self.rng.integers(len(rows))
                jitter = self.rng.integers(-crop // 4, crop // 4 + 1, size=2)
                top = int(np.clip(rows[k] + jitter[0] - crop // 2, 0, height - crop))
                left = int(np.clip(cols[k] + jitter[1] - crop // 2, 0, width - crop))
            else:
                top = int(self.rng.integers(0, height - crop + 1))
                left = int(self.rng.integers(0, width - crop + 1))
            hu = stack.hu[f, top : top + crop, left : left + crop].astype(np.float32)
            mask = stack.mask[f, top : top + crop, left : left + crop]
            if self.rng.random() < 0.5:
                hu, mask = hu[:, ::-1], mask[:, ::-1]
            inputs[b] = window_channels(hu[None])[0]
            labels[b] = mask
        return inputs, labels


Progress = Callable[[str], None]


def bootstrap_resample(stacks: list[TrainingStack], seed: int) -> list[TrainingStack]:
    """A stratified bootstrap resample: as many positive and as many negative stacks as ``stacks``
    has, each drawn with replacement from its own class (so every member still sees hemorrhage)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB007]))
    out: list[TrainingStack] = []
    for members in ([s for s in stacks if s.mask.any()], [s for s in stacks if not s.mask.any()]):
        if members:
            out.extend(members[int(i)] for i in rng.integers(0, len(members), size=len(members)))
    return out


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_ensemble(
    stacks: list[TrainingStack],
    hp: Hyperparameters,
    *,
    device: str | torch.device | None = None,
    progress: Progress = _stderr,
    initial: Ensemble | None = None,
) -> tuple[Ensemble, list[dict[str, float]]]:
    """Trains ``hp.ensemble_size`` PatchFCNs; returns the ensemble (on CPU) and a per-model log.

    ``initial`` (warm start): its members are trained on instead of fresh ones (same member seeds for
    the crop samplers); it must match ``hp`` in architecture, width, size, crop and stride.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seeds = [hp.seed + i for i in range(hp.ensemble_size)]
    if initial is None:
        ensemble = build_ensemble(
            hp.ensemble_size, seeds=seeds, width=hp.width, arch=hp.arch, crop=hp.crop, stride=hp.stride
        )
    else:
        found = (initial.arch, float(initial.width), len(initial), initial.crop, initial.stride)
        wanted = (hp.arch, float(hp.width), hp.ensemble_size, hp.crop, hp.stride)
        if found != wanted:
            raise ValueError(
                f"warm start: the current model is (arch, width, size, crop, stride) = {found}, "
                f"the hyperparameters ask for {wanted}"
            )
        ensemble = initial
    positives = sum(int(s.mask.any()) for s in stacks)
    progress(
        f"training {hp.ensemble_size} × {hp.arch} (width {hp.width}) on {len(stacks)} stacks ({positives} with hemorrhage), "
        f"{hp.iterations} iterations × batch {hp.batch_size} of {hp.crop}² crops, device {device}"
    )
    weights = torch.tensor([1.0, hp.hemorrhage_weight], device=device)
    use_amp = hp.amp and device.type == "cuda"
    logs = []
    start_all = time.monotonic()
    for index, (model, seed) in enumerate(zip(ensemble.models, seeds)):
        torch.manual_seed(seed)
        member_stacks = bootstrap_resample(stacks, seed) if hp.bootstrap else stacks
        sampler = CropSampler(member_stacks, hp.crop, hp.positive_fraction, seed)
        model.to(device).train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, hp.iterations) / hp.iterations))
        )
        running = None
        start = time.monotonic()
        for step in range(1, hp.iterations + 1):
            x, y = sampler.sample(hp.batch_size)
            x_t = torch.from_numpy(x).to(device, non_blocking=True)
            y_t = torch.from_numpy(y).to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x_t)
            loss = F.cross_entropy(logits.float(), y_t, weight=weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            if step % hp.log_every == 0 or step == hp.iterations:
                elapsed = time.monotonic() - start
                eta = elapsed / step * (hp.iterations - step)
                progress(
                    f"model {index + 1}/{hp.ensemble_size}  step {step}/{hp.iterations}  "
                    f"loss {running:.4f}  {elapsed:.0f}s elapsed, ~{eta:.0f}s left for this model"
                )
        model.eval().to("cpu")
        logs.append(
            {
                "model": index,
                "seed": seed,
                "final_loss": float(running or 0.0),
                "seconds": time.monotonic() - start,
            }
        )
    progress(f"trained {hp.ensemble_size} models in {time.monotonic() - start_all:.0f}s")
    return ensemble, logs


def load_training_stacks(paths: Iterable, grid_size: int) -> list[TrainingStack]:
    """Reads labeled ``.npz`` stacks (keys ``hu``, ``mask``, ``pixel_spacing``) onto the model grid."""
    stacks = []
    for path in paths:
        with np.load(path) as data:
            missing = {"hu", "mask", "pixel_spacing"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{path}: a training stack needs keys hu, mask, pixel_spacing; missing {sorted(missing)}"
                )
            hu = data["hu"]
            if not np.isfinite(hu).all():
                raise ValueError(f"{path}: non-finite HU values")
            stacks.append(
                to_training_stack(hu, data["mask"], tuple(data["pixel_spacing"]), grid_size, name=str(path))
            )
    return stacks
