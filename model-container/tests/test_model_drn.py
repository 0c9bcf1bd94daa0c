"""DRN-D backbones (paper §2: "the 38 layer dilated residual net")."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ichal.model.drn import DRN, BasicBlock, drn_d_22, drn_d_38, scaled_channels


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", [160, 176, 200, 512, 37])
def test_output_stride_is_8(size: int) -> None:
    model = drn_d_38(width=0.125).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, size, size + 8))
    assert out.shape == (1, model.out_channels, math.ceil(size / 8), math.ceil((size + 8) / 8))
    assert model.output_stride == 8


def test_full_width_parameter_count_matches_published_drn_d_38() -> None:
    # The classification DRN-D-38 has 26.5 M parameters, of which 513,000 are its 512→1000 fc.
    n = _n_params(drn_d_38())
    print(f"DRN-D-38 backbone, width 1.0: {n:,} parameters")
    assert 25_800_000 <= n <= 26_100_000
    n22 = _n_params(drn_d_22())
    print(f"DRN-D-22 backbone, width 1.0: {n22:,} parameters")
    assert 15_700_000 <= n22 <= 16_000_000  # published 16.4 M with fc


def test_width_multiplier_scales_channels_with_a_floor() -> None:
    assert drn_d_38().out_channels == 512
    assert drn_d_38(width=0.25).channels == (4, 8, 16, 32, 64, 128, 128, 128)
    assert min(drn_d_38(width=0.01).channels) == 4
    n = _n_params(drn_d_38(width=0.25))
    print(f"DRN-D-38 backbone, width 0.25: {n:,} parameters")
    assert 1_500_000 <= n <= 1_700_000
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            scaled_channels(bad)


def test_builders_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        drn_d_38(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        drn_d_22(3, 1.0)  # type: ignore[misc]


def test_d_variant_layout() -> None:
    model = drn_d_38(width=0.125)

    def convs(level: nn.Module) -> list[nn.Conv2d]:
        return [m for m in level.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]

    assert model.layer0[0].kernel_size == (7, 7)
    blocks = [len([m for m in getattr(model, f"layer{i}") if isinstance(m, BasicBlock)]) for i in range(1, 9)]
    assert blocks == [0, 0, 3, 4, 6, 3, 0, 0]  # levels 1, 2, 7, 8 are plain convolutions (D variant)
    strides = [convs(getattr(model, f"layer{i}"))[0].stride[0] for i in range(1, 9)]
    assert strides == [1, 2, 2, 2, 1, 1, 1, 1]
    dilations = [{c.dilation[0] for c in convs(getattr(model, f"layer{i}"))} for i in range(1, 9)]
    assert dilations == [{1}, {1}, {1}, {1}, {2}, {4}, {2}, {1}]
    # Reference parameter names, so that a published DRN-D-38 checkpoint lines up.
    keys = set(drn_d_38(width=0.125).state_dict())
    assert {
        "layer0.0.weight",
        "layer3.0.downsample.0.weight",
        "layer6.2.bn2.running_var",
        "layer8.0.weight",
    } <= keys


def test_construction_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = drn_d_38(width=0.125, generator=torch.Generator().manual_seed(3))
    b = drn_d_38(width=0.125, generator=torch.Generator().manual_seed(3))
    c = drn_d_38(width=0.125, generator=torch.Generator().manual_seed(4))
    assert torch.equal(state, torch.random.get_rng_state())
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.layer0[0].weight, c.layer0[0].weight)
    assert all(torch.isfinite(p).all() for p in a.parameters())


def test_rejects_malformed_configurations() -> None:
    with pytest.raises(ValueError):
        DRN((1, 1, 3), (16, 32, 64))
    with pytest.raises(ValueError):
        DRN((1, 1, 3, 4, 6, 3, 1, 0), (16, 32, 64, 128, 256, 512, 512, 512))
