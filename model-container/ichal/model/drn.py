"""Dilated residual network backbones (DRN-D) for the PatchFCN of paper §2.

Kuo et al. (MICCAI 2018, §2) use "the 38 layer dilated residual net (DRN) as specific FCN
architecture. It uses dilated convolutions to preserve spatial resolution together with residual
connections [14]". This module implements the D variant of Yu, Koltun & Funkhouser (CVPR 2017):

====== =========================== ========= ======== ========
level  kind                        stride    dilation blocks (D-38 / D-22)
====== =========================== ========= ======== ========
layer0 7×7 conv + BN + ReLU        1         1        —
layer1 3×3 conv + BN + ReLU        1         1        1 / 1
layer2 3×3 conv + BN + ReLU        2         1        1 / 1
layer3 residual BasicBlock         2         1        3 / 2
layer4 residual BasicBlock         2         1        4 / 2
layer5 residual BasicBlock         1         2        6 / 2
layer6 residual BasicBlock         1         4        3 / 2
layer7 3×3 conv + BN + ReLU        1         2        1 / 1
layer8 3×3 conv + BN + ReLU        1         1        1 / 1
====== =========================== ========= ======== ========

with channels (16, 32, 64, 128, 256, 512, 512, 512) times a ``width`` multiplier. The output
stride is 8: an H × W input gives ceil(H/8) × ceil(W/8) features.

Module names follow the reference layout (``layer0`` … ``layer8``, ``conv1``/``bn1``/``conv2``/
``bn2``/``downsample`` inside residual blocks), so the parameter names of a full-width model line up
with the published ImageNet DRN-D checkpoints minus their classifier.

Construction touches no global state: modules are created on the meta device and every parameter
and buffer is then initialised explicitly (Kaiming-normal convolutions, unit BatchNorm) from an
optional ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "DRN",
    "DRN_CHANNELS",
    "DRN_D_22_BLOCKS",
    "DRN_D_38_BLOCKS",
    "BasicBlock",
    "drn_d_22",
    "drn_d_38",
    "init_weights",
    "scaled_channels",
]

DRN_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 512, 512)
"""Full-width channel count of each of the eight levels."""
DRN_D_38_BLOCKS: tuple[int, ...] = (1, 1, 3, 4, 6, 3, 1, 1)
"""Convolutions (levels 1, 2, 7, 8) or residual blocks (levels 3–6) per level of DRN-D-38."""
DRN_D_22_BLOCKS: tuple[int, ...] = (1, 1, 2, 2, 2, 2, 1, 1)
"""Same for DRN-D-22."""
ARCHITECTURES: dict[str, tuple[int, ...]] = {"drn_d_38": DRN_D_38_BLOCKS, "drn_d_22": DRN_D_22_BLOCKS}
"""Block counts by architecture name (the ``arch`` of a PatchFCN and of an ensemble manifest)."""

MIN_CHANNELS = 4
OUTPUT_STRIDE = 8


def _conv3x3(in_ch: int, out_ch: int, *, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Residual block of two 3×3 convolutions with BatchNorm; 1×1 projection when the shape changes."""

    def __init__(
        self, in_ch: int, out_ch: int, *, stride: int = 1, dilation: tuple[int, int] = (1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, out_ch, stride=stride, dilation=dilation[0])
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_ch, out_ch, dilation=dilation[1])
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _conv_level(in_ch: int, out_ch: int, convs: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Plain (non-residual) level of the D variant: ``convs`` × (3×3 conv, BN, ReLU)."""
    modules: list[nn.Module] = []
    for i in range(convs):
        modules += [
            _conv3x3(in_ch if i == 0 else out_ch, out_ch, stride=stride if i == 0 else 1, dilation=dilation),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*modules)


def _residual_level(
    in_ch: int, out_ch: int, blocks: int, *, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """Residual level; a dilated level uses its full dilation from its first block on."""
    layers = [BasicBlock(in_ch, out_ch, stride=stride, dilation=(dilation, dilation))]
    layers += [BasicBlock(out_ch, out_ch, dilation=(dilation, dilation)) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class DRN(nn.Module):
    """DRN-D feature extractor: [N, C_in, H, W] → [N, ``out_channels``, ceil(H/8), ceil(W/8)]."""

    output_stride: int = OUTPUT_STRIDE

    def __init__(self, blocks: Sequence[int], channels: Sequence[int], *, in_channels: int = 3) -> None:
        super().__init__()
        if len(blocks) != 8 or len(channels) != 8:
            raise ValueError("DRN-D needs eight block counts and eight channel counts")
        if min(blocks) < 1 or min(channels) < 1 or in_channels < 1:
            raise ValueError(
                f"block and channel counts must be positive: {blocks}, {channels}, {in_channels}"
            )
        c = tuple(int(v) for v in channels)
        b = tuple(int(v) for v in blocks)
        self.channels = c
        self.blocks = b
        self.in_channels = int(in_channels)
        self.out_channels = c[7]
        self.layer0 = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 7, padding=3, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
        )
        self.layer1 = _conv_level(c[0], c[0], b[0])
        self.layer2 = _conv_level(c[0], c[1], b[1], stride=2)
        self.layer3 = _residual_level(c[1], c[2], b[2], stride=2)
        self.layer4 = _residual_level(c[2], c[3], b[3], stride=2)
        self.layer5 = _residual_level(c[3], c[4], b[4], dilation=2)
        self.layer6 = _residual_level(c[4], c[5], b[5], dilation=4)
        self.layer7 = _conv_level(c[5], c[6], b[6], dilation=2)
        self.layer8 = _conv_level(c[6], c[7], b[7])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for level in (
            self.layer0, self.layer1, self.layer2, self.layer3, self.layer4,
            self.layer5, self.layer6, self.layer7, self.layer8,
        ):  # fmt: skip
            x = level(x)
        return x


def scaled_channels(width: float, base: Sequence[int] = DRN_CHANNELS) -> tuple[int, ...]:
    """Channel counts for a width multiplier: ``max(4, round(c * width))`` per level."""
    if isinstance(width, bool) or not (
        isinstance(width, (int, float)) and math.isfinite(width) and width > 0
    ):
        raise ValueError(f"width must be a positive finite number, got {width!r}")
    return tuple(max(MIN_CHANNELS, round(c * width)) for c in base)


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Initialise every parameter and buffer of ``module`` in place.

    Convolutions: Kaiming-normal (fan-out, ReLU gain) as in the DRN reference, zero bias;
    BatchNorm: weight 1, bias 0, fresh running statistics. Any other module type that owns
    parameters raises, so that nothing is left uninitialised.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
        elif any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            raise TypeError(f"init_weights does not know how to initialise {type(m).__name__}")


def _build(
    blocks: Sequence[int], *, in_channels: int, width: float, generator: torch.Generator | None
) -> DRN:
    channels = scaled_channels(width)
    with torch.device("meta"):
        model = DRN(blocks, channels, in_channels=in_channels)
    model = model.to_empty(device="cpu")
    init_weights(model, generator)
    return model


def drn_d_38(*, in_channels: int = 3, width: float = 1.0, generator: torch.Generator | None = None) -> DRN:
    """DRN-D-38 backbone (output stride 8, ``out_channels`` = 512 × width), on the CPU."""
    return _build(DRN_D_38_BLOCKS, in_channels=in_channels, width=width, generator=generator)


def drn_d_22(*, in_channels: int = 3, width: float = 1.0, generator: torch.Generator | None = None) -> DRN:
    """DRN-D-22 backbone (output stride 8, ``out_channels`` = 512 × width), on the CPU."""
    return _build(DRN_D_22_BLOCKS, in_channels=in_channels, width=width, generator=generator)
