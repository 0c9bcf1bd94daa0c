"""What the bench's parts share: the phantom stacks it times (a DICOM zip in memory and the probabilities
the features stage is given), the read and preprocess stages, timing and output helpers.
The bench and its measurements are described in bench_scoring.py."""

from __future__ import annotations

import io
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FULL_FRAMES = 32
GRID = 512


def log(msg: str = "") -> None:
    print(msg, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Item:
    """One phantom stack: its DICOM zip, and the synthetic probabilities for the features stage."""

    seed: int
    zip_bytes: bytes
    phantom_probs: Any  # np.float32 [M, F, H, W] on the model grid
    placed: dict[str, Any] = field(default_factory=dict)  # device string -> torch tensor


def _phantom_probs(mask: Any, n_models: int, seed: int) -> Any:
    """Probabilities a trained-looking ensemble might give: the exact mask, blurred differently
    per model and scaled below 1, plus sparse low-amplitude background speckle."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBE7C4]))
    base = mask.astype(np.float32)
    out = np.empty((n_models, *base.shape), dtype=np.float32)
    for m in range(n_models):
        sigma = 1.0 + 0.6 * m
        p = ndimage.gaussian_filter(base, sigma=(0, sigma, sigma)) * np.float32(rng.uniform(0.8, 0.98))
        speckle = ndimage.gaussian_filter(rng.random(base.shape, dtype=np.float32), sigma=(0, 3, 3))
        speckle = np.clip((speckle - 0.5) * 6.0, 0.0, 1.0) * np.float32(0.4)
        out[m] = np.clip(np.maximum(p, speckle), 0.0, 1.0)
    return out


def make_items(n: int, seed: int, n_models: int, frames: int = FULL_FRAMES) -> list[Item]:
    from ichal.phantoms import generate_stack, write_dicom_zip
    from ichal.preprocessing import mask_to_model_grid, to_model_grid

    items = []
    for i in range(n):
        s = seed + i
        stack = generate_stack(s, negative=False, size=GRID, frames=frames)
        buffer = io.BytesIO()
        write_dicom_zip(stack, buffer)
        _, transform = to_model_grid(stack.hu, stack.pixel_spacing, GRID)
        mask = mask_to_model_grid(stack.mask, transform)  # phantom frames are in ascending position
        items.append(
            Item(seed=s, zip_bytes=buffer.getvalue(), phantom_probs=_phantom_probs(mask, n_models, s))
        )
    return items


# ---------------------------------------------------------------------------------------- the stages
def read_item(item: Item) -> Any:
    from ichal.io import read_stacks

    stacks = read_stacks(item.zip_bytes, name=f"phantom-{item.seed}.zip")
    if len(stacks) != 1:
        raise RuntimeError(f"expected one stack, read {len(stacks)}")
    return stacks[0]


def preprocess(stack: Any) -> Any:
    import torch

    from ichal.preprocessing import to_model_grid, window_channels

    grid, _ = to_model_grid(stack.hu, stack.pixel_spacing, GRID)
    return torch.from_numpy(window_channels(grid))


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, target)
