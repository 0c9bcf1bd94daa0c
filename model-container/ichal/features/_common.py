"""Input conversion and validation shared by the feature modules (internal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = Any  # torch.Tensor | np.ndarray | nested sequences


class InputError(ValueError):
    """The probability input is malformed (shape, dtype, NaN, values outside [0, 1])."""


def as_tensor(x: ArrayLike, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Tensor view of ``x``, no copy when possible (numpy shares memory; tensors stay on their device)."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        arr = x
        if arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if not arr.flags.writeable:
            arr = arr.copy()  # torch.from_numpy refuses read-only buffers (e.g. memory-mapped .npy)
        t = torch.from_numpy(arr)
    else:
        t = torch.as_tensor(np.asarray(x))
    if device is not None:
        t = t.to(device)
    return t


def as_float(t: torch.Tensor) -> torch.Tensor:
    """Floating view of a probability tensor: float16/bfloat16/ints become float32; float32/64 are kept."""
    if t.dtype in (torch.float32, torch.float64):
        return t
    return t.to(torch.float32)


def check_probabilities(t: torch.Tensor, *, ndim: int, name: str = "probs") -> None:
    """Raise :class:`InputError` unless ``t`` has ``ndim`` dims, is non-empty, finite and inside [0, 1]."""
    if t.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got {t.ndim} (shape {tuple(t.shape)})")
    if t.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(t.shape)})")
    if t.dtype == torch.bool or not (
        t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    ):
        raise InputError(f"{name} must be a real-valued array, got dtype {t.dtype}")
    # One reduction pass for the three checks (a single device sync on CUDA).
    tf = as_float(t)
    clean = tf.nan_to_num(0.0)
    stats = torch.stack([torch.isnan(tf).any().to(tf.dtype), clean.amin(), clean.amax()]).tolist()
    has_nan, lo, hi = stats
    if has_nan:
        raise InputError(f"{name} contains NaN values")
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} values must lie in [0, 1], found range [{lo:.6g}, {hi:.6g}]")
