"""PatchFCN: a DRN-D backbone with a 1×1 pixel classifier, trained on patches (paper §2, Fig. 2).

The network "uses a patch as input and makes predictions for presence of hemorrhage for each pixel
within a specific patch" (§2); at test time it is applied as a sliding window (see
``ichal.model.sliding_window``). The stride-8 backbone features go through a 1×1 convolution to
``num_classes`` logits, which are bilinearly upsampled (``align_corners=False``) back to the input
size. Inputs whose sides are not multiples of 8 are zero-padded on the bottom/right (zero is air in
the CT-window space of the model input) and the logits are cropped back, so pixel (y, x) of the
output is always aligned with pixel (y, x) of the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ichal.model.drn import ARCHITECTURES, DRN, init_weights, scaled_channels

__all__ = ["PatchFCN", "patchfcn", "patchfcn_skeleton"]


class PatchFCN(nn.Module):
    """Backbone + 1×1 classifier; ``forward`` maps [N, C, H, W] to logits [N, num_classes, H, W]."""

    def __init__(
        self, backbone: DRN, num_classes: int = 2, *, arch: str = "drn_d_38", width: float = 1.0
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.backbone = backbone
        self.head = nn.Conv2d(backbone.out_channels, num_classes, 1, bias=True)
        self.arch = arch
        self.width = float(width)
        self.in_channels = backbone.in_channels
        self.num_classes = int(num_classes)
        self.output_stride = backbone.output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input [N, {self.in_channels}, H, W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        s = self.output_stride
        pad_h, pad_w = -h % s, -w % s
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        logits = self.head(self.backbone(x))
        logits = F.interpolate(logits, size=(h + pad_h, w + pad_w), mode="bilinear", align_corners=False)
        if pad_h or pad_w:
            logits = logits[..., :h, :w]
        return logits


def patchfcn_skeleton(
    *, in_channels: int = 3, num_classes: int = 2, width: float = 1.0, arch: str = "drn_d_38"
) -> PatchFCN:
    """An uninitialised PatchFCN on the meta device, to be filled by ``load_state_dict(..., assign=True)``."""
    try:
        blocks = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; known: {sorted(ARCHITECTURES)}") from None
    channels = scaled_channels(width)
    with torch.device("meta"):
        return PatchFCN(DRN(blocks, channels, in_channels=in_channels), num_classes, arch=arch, width=width)


def patchfcn(
    *,
    in_channels: int = 3,
    num_classes: int = 2,
    width: float = 1.0,
    arch: str = "drn_d_38",
    generator: torch.Generator | None = None,
) -> PatchFCN:
    """Build a freshly initialised PatchFCN on the CPU.

    Deterministic given ``generator``'s state and independent of the global RNG, which it leaves
    untouched. Backbone convolutions are Kaiming-normal; the classifier gets a LeCun-normal weight
    (std 1/sqrt(fan_in)) and zero bias, so initial logits are of order one.
    """
    model = patchfcn_skeleton(in_channels=in_channels, num_classes=num_classes, width=width, arch=arch)
    model = model.to_empty(device="cpu")
    init_weights(model.backbone, generator)
    with torch.no_grad():
        nn.init.normal_(model.head.weight, std=model.backbone.out_channels**-0.5, generator=generator)
        nn.init.zeros_(model.head.bias)
    return model
