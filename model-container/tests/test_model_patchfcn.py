"""PatchFCN (paper §2): DRN-D-38 + 1×1 pixel classifier, logits at the input resolution."""

from __future__ import annotations

import pytest
import torch

from ichal.model.patchfcn import PatchFCN, patchfcn, patchfcn_skeleton


@pytest.mark.parametrize(
    "height,width", [(160, 160), (176, 176), (200, 200), (512, 512), (161, 203), (37, 50)]
)
def test_logits_have_the_input_size(height: int, width: int) -> None:
    model = patchfcn(width=0.125).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, height, width))
    assert out.shape == (2, 2, height, width)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_non_divisible_input_is_zero_padded_internally() -> None:
    model = patchfcn(width=0.125, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(1, 3, 150, 157)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 2))
    with torch.inference_mode():
        torch.testing.assert_close(model(x), model(padded)[..., :150, :157])


def test_builder_options_and_errors() -> None:
    model = patchfcn(in_channels=1, num_classes=3, width=0.125, arch="drn_d_22")
    assert isinstance(model, PatchFCN)
    assert (model.in_channels, model.num_classes, model.arch, model.width) == (1, 3, "drn_d_22", 0.125)
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="unknown arch"):
        patchfcn(arch="resnet50")
    with pytest.raises(TypeError):
        patchfcn(3)  # type: ignore[misc]
    assert patchfcn_skeleton(width=0.125).head.weight.device.type == "meta"


def test_initial_logits_are_of_order_one_and_every_parameter_learns() -> None:
    model = patchfcn(width=0.125, generator=torch.Generator().manual_seed(0)).train()
    x = torch.rand(2, 3, 64, 64)
    logits = model(x)
    assert logits.std() < 10
    target = (x[:, 0] > 0.5).long()
    torch.nn.functional.cross_entropy(logits, target).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
