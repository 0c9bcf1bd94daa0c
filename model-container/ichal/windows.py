"""Sliding-window geometry shared by inference (model/) and patch uncertainty (features/).

A frame of size H × W is covered by crops of ``crop`` pixels placed every ``stride`` pixels along
each axis, plus one last crop flush with the far border when the stride does not land there, so
every pixel is covered and no crop leaves the frame (paper Fig. 2: train on 160² crops, apply as a
sliding window). Frames smaller than the crop are padded to it by the caller.
"""

from __future__ import annotations

DEFAULT_CROP = 160
DEFAULT_STRIDE = 80


def window_starts(size: int, crop: int = DEFAULT_CROP, stride: int = DEFAULT_STRIDE) -> list[int]:
    """Start offsets along one axis of length ``size`` (``size >= crop``)."""
    if crop <= 0 or stride <= 0:
        raise ValueError(f"crop and stride must be positive, got crop={crop}, stride={stride}")
    if size < crop:
        raise ValueError(f"axis of {size} px is shorter than the {crop} px crop; pad the frame first")
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] != size - crop:
        starts.append(size - crop)
    return starts


def window_grid(
    height: int, width: int, crop: int = DEFAULT_CROP, stride: int = DEFAULT_STRIDE
) -> list[tuple[int, int]]:
    """All (top, left) crop offsets of a frame, row-major."""
    return [
        (top, left)
        for top in window_starts(height, crop, stride)
        for left in window_starts(width, crop, stride)
    ]
