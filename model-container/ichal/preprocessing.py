"""The one preprocessing shared by training and serving: HU stack → model grid → windowed channels.

Windowing
---------
A CT window (level L, width W) maps Hounsfield units linearly onto [0, 1]::

    x = clip((hu − (L − W/2)) / W, 0, 1)

so ``L − W/2`` maps to 0 and ``L + W/2`` maps to 1 (the continuous form, not the DICOM PS3.3
C.11.2.1.2 "c − 0.5, w − 1" integer form). The model input has three channels, in this order:

=========  =====  =====  ===================
channel    level  width  HU range → [0, 1]
=========  =====  =====  ===================
brain         40     80  [0, 80]
subdural      80    200  [−20, 180]
bone         600   2800  [−800, 2000]
=========  =====  =====  ===================

``window_channels`` turns an HU volume ``[frames, H, W]`` (float32) into ``[frames, 3, H, W]``
float32 in [0, 1]. Non-finite HU are not accepted (the readers in ``ichal.io`` reject them).

Model grid
----------
The network sees frames of ``MODEL_SIZE`` × ``MODEL_SIZE`` = 512 × 512 pixels. ``to_model_grid``
maps a frame of H × W pixels with pixel spacing (row, col) in mm onto that grid by one
deterministic rule, applied per in-plane axis:

1. **Spacing.** If the axis's spacing lies inside ``SPACING_BAND_MM`` = [0.35, 0.70] mm (head CT
   is reconstructed at 0.39–0.55 mm on a 512 matrix), it is kept: zoom 1. Otherwise the axis is
   resampled to ``TARGET_SPACING_MM`` = 0.48 mm: zoom = spacing / 0.48.
2. **Size.** The zoomed size is ``round(n · zoom)``. If either axis would exceed 512 pixels, both
   zooms are multiplied by the same factor so that the larger axis is exactly 512 (the aspect
   ratio is kept; nothing is ever cropped).
3. **Resample** (only when some zoom ≠ 1) with pixel-centre alignment: output pixel ``i`` samples
   input coordinate ``(i + 0.5) / zoom − 0.5``; bilinear (order 1) for HU, nearest neighbour
   (order 0) for masks; samples beyond the border take the nearest edge value.
4. **Pad** to 512 × 512, centred (the odd pixel goes to the bottom/right), with −1024 HU (air) for
   HU and ``False``/0 for masks.

The returned ``GridTransform`` records every number used, so ``mask_to_model_grid`` maps a mask
exactly as its HU stack was mapped, and ``from_model_grid`` maps model-grid outputs back to the
source frame grid. Frames (the slice axis) are never resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MODEL_SIZE = 512
AIR_HU = -1024.0
SPACING_BAND_MM: tuple[float, float] = (0.35, 0.70)
TARGET_SPACING_MM = 0.48


@dataclass(frozen=True)
class Window:
    """A CT display window: HU ``level − width/2`` → 0, ``level + width/2`` → 1."""

    name: str
    level: float
    width: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0


WINDOWS: tuple[Window, ...] = (
    Window("brain", 40.0, 80.0),
    Window("subdural", 80.0, 200.0),
    Window("bone", 600.0, 2800.0),
)


def window_channels(hu: np.ndarray) -> np.ndarray:
    """HU volume ``[frames, H, W]`` → float32 ``[frames, 3, H, W]`` in [0, 1] (brain, subdural, bone)."""
    hu = np.asarray(hu)
    if hu.ndim != 3:
        raise ValueError(f"expected an HU volume [frames, H, W], got shape {hu.shape}")
    hu = hu.astype(np.float32, copy=False)
    out = np.empty((hu.shape[0], len(WINDOWS), hu.shape[1], hu.shape[2]), dtype=np.float32)
    for c, window in enumerate(WINDOWS):
        channel = out[:, c]
        np.subtract(hu, np.float32(window.low), out=channel)
        np.multiply(channel, np.float32(1.0 / window.width), out=channel)
        np.clip(channel, 0.0, 1.0, out=channel)
    return out


@dataclass(frozen=True)
class GridTransform:
    """How one frame grid was mapped onto the model grid (see the module docstring)."""

    source_shape: tuple[int, int]
    source_spacing: tuple[float, float]
    zoom: tuple[float, float]
    resampled_shape: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, bottom, left, right
    output_spacing: tuple[float, float]

    @property
    def resampled(self) -> bool:
        return self.zoom != (1.0, 1.0)

    @property
    def output_shape(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return (self.resampled_shape[0] + top + bottom, self.resampled_shape[1] + left + right)


def plan_model_grid(
    shape: tuple[int, int], pixel_spacing: tuple[float, float], size: int = MODEL_SIZE
) -> GridTransform:
    """The transform ``to_model_grid`` applies to frames of ``shape`` at ``pixel_spacing`` (row, col) mm."""
    rows, cols = int(shape[0]), int(shape[1])
    spacing = (float(pixel_spacing[0]), float(pixel_spacing[1]))
    if rows < 1 or cols < 1:
        raise ValueError(f"frame shape must be positive, got {shape}")
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"pixel spacing must be positive and finite, got {pixel_spacing}")
    low, high = SPACING_BAND_MM
    zoom = [1.0 if low <= s <= high else s / TARGET_SPACING_MM for s in spacing]
    sizes = [max(1, round(n * z)) for n, z in zip((rows, cols), zoom)]
    largest = max(sizes)
    if largest > size:
        # Shrink both axes by one factor so the larger one is exactly `size`.
        factor = size / max(n * z for n, z in zip((rows, cols), zoom))
        zoom = [z * factor for z in zoom]
        sizes = [min(size, max(1, round(n * z))) for n, z in zip((rows, cols), zoom)]
    zoom = [1.0 if abs(z - 1.0) < 1e-9 else z for z in zoom]
    pad_rows, pad_cols = size - sizes[0], size - sizes[1]
    pad = (pad_rows // 2, pad_rows - pad_rows // 2, pad_cols // 2, pad_cols - pad_cols // 2)
    return GridTransform(
        source_shape=(rows, cols),
        source_spacing=spacing,
        zoom=(float(zoom[0]), float(zoom[1])),
        resampled_shape=(sizes[0], sizes[1]),
        pad=pad,
        output_spacing=(spacing[0] / zoom[0], spacing[1] / zoom[1]),
    )


def _resample(
    volume: np.ndarray, scale: tuple[float, float], shape: tuple[int, int], order: int
) -> np.ndarray:
    """Output pixel i (per in-plane axis) samples input coordinate (i + 0.5)·scale − 0.5."""
    matrix = np.array([1.0, scale[0], scale[1]])
    offset = 0.5 * matrix - 0.5
    is_bool = volume.dtype == np.bool_
    source = volume.view(np.uint8) if is_bool else volume
    out = ndimage.affine_transform(
        source,
        matrix,
        offset=offset,
        output_shape=(volume.shape[0], shape[0], shape[1]),
        order=order,
        mode="nearest",
        prefilter=False,
    )
    return out.astype(np.bool_) if is_bool else out


def _apply(volume: np.ndarray, transform: GridTransform, order: int, fill: float | bool) -> np.ndarray:
    if volume.ndim != 3 or tuple(volume.shape[1:]) != transform.source_shape:
        raise ValueError(
            f"expected a volume [frames, {transform.source_shape[0]}, {transform.source_shape[1]}], "
            f"got shape {volume.shape}"
        )
    if transform.resampled:
        inverse = (1.0 / transform.zoom[0], 1.0 / transform.zoom[1])
        volume = _resample(volume, inverse, transform.resampled_shape, order)
    top, bottom, left, right = transform.pad
    return np.pad(volume, ((0, 0), (top, bottom), (left, right)), mode="constant", constant_values=fill)


def to_model_grid(
    hu: np.ndarray, pixel_spacing: tuple[float, float], size: int = MODEL_SIZE
) -> tuple[np.ndarray, GridTransform]:
    """HU ``[frames, H, W]`` → (float32 ``[frames, 512, 512]``, the transform used)."""
    hu = np.asarray(hu)
    if hu.ndim != 3:
        raise ValueError(f"expected an HU volume [frames, H, W], got shape {hu.shape}")
    transform = plan_model_grid(hu.shape[1:], pixel_spacing, size)
    return _apply(hu.astype(np.float32, copy=False), transform, 1, AIR_HU), transform


def mask_to_model_grid(mask: np.ndarray, transform: GridTransform) -> np.ndarray:
    """A mask ``[frames, H, W]`` mapped exactly as its HU stack was (nearest neighbour, pad 0)."""
    mask = np.asarray(mask)
    fill: float | bool = False if mask.dtype == np.bool_ else 0
    return _apply(mask, transform, 0, fill)


def from_model_grid(array: np.ndarray, transform: GridTransform, *, order: int = 0) -> np.ndarray:
    """Model-grid ``[frames, 512, 512]`` → the source frame grid (crop the pad, undo the zoom).

    ``order`` 0 (nearest) for masks and labels, 1 (bilinear) for probabilities.
    """
    array = np.asarray(array)
    if array.ndim != 3 or tuple(array.shape[1:]) != transform.output_shape:
        raise ValueError(f"expected a volume [frames, {transform.output_shape}], got shape {array.shape}")
    top, _, left, _ = transform.pad
    rows, cols = transform.resampled_shape
    inner = array[:, top : top + rows, left : left + cols]
    if not transform.resampled:
        return inner.copy()
    return _resample(inner, transform.zoom, transform.source_shape, order)


def prepare_model_input(
    hu: np.ndarray, pixel_spacing: tuple[float, float]
) -> tuple[np.ndarray, GridTransform]:
    """HU ``[frames, H, W]`` → (model input float32 ``[frames, 3, 512, 512]`` in [0, 1], transform)."""
    grid, transform = to_model_grid(hu, pixel_spacing)
    return window_channels(grid), transform
