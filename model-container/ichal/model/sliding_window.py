"""Sliding-window inference of PatchFCNs over whole frames (paper §2, Fig. 2).

"We train the network on patches and test it in a sliding window fashion" (Fig. 2): every frame is
cut into ``crop`` × ``crop`` patches on the grid of :func:`ichal.windows.window_grid` (160² crops
every 80 px by default), each patch goes through the network, and the hemorrhage probability of a
pixel (softmax, class 1) is the mean over the patches that cover it.

Implementation notes. Patches are gathered from a strided ``unfold`` view of the frame stack, so
only the patches of the current batch are materialised; patches of all frames are flattened into
one sequence and cut into batches of ``batch_size`` regardless of frame boundaries. Probabilities
are summed into a flat float32 accumulator with ``index_add_`` and divided by the coverage count,
which is the outer product of the per-axis coverage because the grid is a Cartesian product.
Several models can share one pass over the patches (:func:`predict_frames_multi`), which is what
the query-by-committee ensemble of §3.1 uses. The result is copied to ``output_device`` (default the
CPU); ``output_device=None`` leaves it on the model's device, so that GPU post-processing (the torch
backend of :mod:`ichal.features`) needs no device → host → device round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ichal.windows import DEFAULT_CROP, DEFAULT_STRIDE, window_grid, window_starts

__all__ = ["DEFAULT_BATCH_SIZE", "predict_frames", "predict_frames_multi"]

DEFAULT_BATCH_SIZE = 64
"""Patches per forward pass."""

_AMP_DTYPES = (torch.float16, torch.bfloat16)


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _coverage(size: int, crop: int, stride: int) -> torch.Tensor:
    count = torch.zeros(size, dtype=torch.float32)
    for start in window_starts(size, crop, stride):
        count[start : start + crop] += 1
    return count


def predict_frames(
    model: nn.Module,
    frames: torch.Tensor | np.ndarray,
    *,
    crop: int = DEFAULT_CROP,
    stride: int = DEFAULT_STRIDE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    output_device: str | torch.device | None = "cpu",
) -> torch.Tensor:
    """Hemorrhage probability map of every frame, [F, H, W] float32 on ``output_device``.

    ``frames`` is [F, C, H, W] (model input space, float in [0, 1]); it is moved to the device of
    the model's parameters. Frames smaller than ``crop`` are zero-padded on the bottom/right and the
    result is cropped back. ``amp_dtype`` (float16 or bfloat16) runs the network under autocast;
    probabilities are always accumulated in float32. ``channels_last`` converts the model (in place;
    values unchanged) and the patches to the channels-last memory format. The model is run in eval
    mode and its training flag restored afterwards. ``output_device`` is where the (contiguous)
    result is returned: the CPU by default, any torch device, or ``None`` for the model's own device
    (no copy off a GPU); accumulation always happens in float32 on the model's device.
    """
    return predict_frames_multi(
        [model],
        frames,
        crop=crop,
        stride=stride,
        batch_size=batch_size,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        output_device=output_device,
    )[0]


def predict_frames_multi(
    models: Sequence[nn.Module],
    frames: torch.Tensor | np.ndarray,
    *,
    crop: int = DEFAULT_CROP,
    stride: int = DEFAULT_STRIDE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    output_device: str | torch.device | None = "cpu",
) -> torch.Tensor:
    """Like :func:`predict_frames` for several models sharing each patch batch: [M, F, H, W].

    All models must live on the same device. Model m's map is ``result[m]``.
    """
    models = list(models)
    if not models:
        raise ValueError("need at least one model")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if amp_dtype is not None and amp_dtype not in _AMP_DTYPES:
        raise ValueError(f"amp_dtype must be None, torch.float16 or torch.bfloat16, got {amp_dtype}")
    device = _model_device(models[0])
    if any(_model_device(m) != device for m in models[1:]):
        raise ValueError("all models must be on the same device")
    target = device if output_device is None else torch.device(output_device)

    x = torch.as_tensor(frames)
    if x.dim() != 4:
        raise ValueError(f"frames must be [F, C, H, W], got shape {tuple(x.shape)}")
    for m in models:
        expected = getattr(m, "in_channels", None)
        if expected is not None and x.shape[1] != expected:
            raise ValueError(f"frames have {x.shape[1]} channels, the model expects {expected}")
    n_frames, _, height, width = x.shape
    if n_frames == 0:
        return torch.zeros((len(models), 0, height, width), dtype=torch.float32, device=target)

    x = x.to(device=device, dtype=torch.float32, non_blocking=True)
    pad_h, pad_w = max(0, crop - height), max(0, crop - width)
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w

    grid = torch.tensor(window_grid(hp, wp, crop, stride), dtype=torch.long, device=device)  # [K, 2]
    n_crops = n_frames * grid.shape[0]
    frame_of = torch.arange(n_frames, device=device).repeat_interleave(grid.shape[0])
    top_of = grid[:, 0].repeat(n_frames)
    left_of = grid[:, 1].repeat(n_frames)
    # Flat offset of each crop's top-left pixel in the [F, hp, wp] accumulator, and of each pixel
    # of a crop relative to it.
    base_of = frame_of * (hp * wp) + top_of * wp + left_of
    ar = torch.arange(crop, device=device)
    within = (ar[:, None] * wp + ar[None, :]).reshape(-1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    # Strided view of every crop position, no copy: [F, hp-crop+1, wp-crop+1, C, crop, crop].
    patches = x.unfold(2, crop, 1).unfold(3, crop, 1).permute(0, 2, 3, 1, 4, 5)

    acc = torch.zeros((len(models), n_frames * hp * wp), dtype=torch.float32, device=device)
    was_training = [m.training for m in models]
    if channels_last:
        for m in models:
            m.to(memory_format=torch.channels_last)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    )
    try:
        for m in models:
            m.eval()
        with torch.inference_mode(), autocast:
            for start in range(0, n_crops, batch_size):
                sel = slice(start, min(start + batch_size, n_crops))
                # The gather keeps the frames' memory layout; ``contiguous`` is then a no-op.
                batch = patches[frame_of[sel], top_of[sel], left_of[sel]].contiguous(memory_format=fmt)
                index = (base_of[sel, None] + within[None, :]).reshape(-1)
                for i, m in enumerate(models):
                    prob = torch.softmax(m(batch).float(), dim=1)[:, 1]
                    acc[i].index_add_(0, index, prob.reshape(-1))
    finally:
        for m, flag in zip(models, was_training):
            m.train(flag)

    coverage = (_coverage(hp, crop, stride)[:, None] * _coverage(wp, crop, stride)[None, :]).to(device)
    out = acc.view(len(models), n_frames, hp, wp).div_(coverage)
    return out[..., :height, :width].to(target).contiguous()
