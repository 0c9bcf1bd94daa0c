"""Sliding-window inference (paper §2, Fig. 2: train on 160² patches, test as a sliding window)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ichal.model.patchfcn import patchfcn
from ichal.model.sliding_window import predict_frames, predict_frames_multi
from ichal.windows import window_grid


class PointwiseStub(nn.Module):
    """A 1×1 convolution: local and translation-equivariant, so windowing must not change it."""

    in_channels = 3

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 3)
            self.conv.bias.copy_(torch.randn(2, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CropDependentStub(nn.Module):
    """Non-local: each pixel's logit depends on the mean of its whole crop, so every crop differs."""

    in_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = x[:, 0] - self.scale * x[:, 1].mean(dim=(-2, -1), keepdim=True)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


class ConstantStub(nn.Module):
    """Zero logits: probability 0.5 everywhere, whatever the coverage."""

    in_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 2, *x.shape[2:]) * self.dummy


def reference(model: nn.Module, frames: torch.Tensor, crop: int = 160, stride: int = 80) -> torch.Tensor:
    """Crop-by-crop loop: sum of probabilities over covering crops divided by their number."""
    model.eval()
    f, _, h, w = frames.shape
    total = torch.zeros(f, h, w, dtype=torch.float64)
    count = torch.zeros(h, w, dtype=torch.float64)
    with torch.no_grad():
        for top, left in window_grid(h, w, crop, stride):
            prob = torch.softmax(model(frames[:, :, top : top + crop, left : left + crop]), dim=1)[:, 1]
            total[:, top : top + crop, left : left + crop] += prob.double()
            count[top : top + crop, left : left + crop] += 1
    return (total / count).float()


def frames(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("height,width", [(160, 160), (200, 230), (240, 176), (512, 512)])
def test_pointwise_model_windowed_equals_whole_frame(height: int, width: int) -> None:
    model = PointwiseStub()
    x = frames(2, height, width)
    out = predict_frames(model, x)
    with torch.no_grad():
        whole = torch.softmax(model(x), dim=1)[:, 1]
    assert out.shape == (2, height, width) and out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out, whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "height,width,crop,stride", [(200, 200, 160, 80), (300, 250, 160, 80), (96, 80, 32, 24)]
)
def test_coverage_averaging_matches_crop_by_crop_reference(
    height: int, width: int, crop: int, stride: int
) -> None:
    model = CropDependentStub()
    x = frames(3, height, width, seed=1)
    out = predict_frames(model, x, crop=crop, stride=stride, batch_size=5)
    torch.testing.assert_close(out, reference(model, x, crop, stride), atol=1e-6, rtol=0)


def test_coverage_at_borders_and_centre() -> None:
    # 200² frame, 160² crops at stride 80 → starts (0, 40) per axis: corners are covered by one
    # crop, the centre by all four.
    model = CropDependentStub()
    x = frames(1, 200, 200, seed=2)
    out = predict_frames(model, x)[0]
    with torch.no_grad():
        probs = {
            (t, l): torch.softmax(model(x[:, :, t : t + 160, l : l + 160]), dim=1)[0, 1]
            for t, l in window_grid(200, 200)
        }
    assert set(probs) == {(0, 0), (0, 40), (40, 0), (40, 40)}
    exact = {"atol": 1e-7, "rtol": 0.0}
    torch.testing.assert_close(out[0, 0], probs[0, 0][0, 0], **exact)
    torch.testing.assert_close(out[199, 199], probs[40, 40][159, 159], **exact)
    torch.testing.assert_close(out[0, 199], probs[0, 40][0, 159], **exact)
    centre = sum(p[100 - t, 100 - l] for (t, l), p in probs.items()) / 4
    torch.testing.assert_close(out[100, 100], centre, **exact)
    torch.testing.assert_close(out[10, 100], (probs[0, 0][10, 100] + probs[0, 40][10, 60]) / 2, **exact)
    constant = predict_frames(ConstantStub(), frames(2, 300, 250))
    assert torch.equal(constant, torch.full((2, 300, 250), 0.5))


def test_batch_size_independence() -> None:
    x = frames(3, 240, 200, seed=3)
    stub = CropDependentStub()
    outs = [predict_frames(stub, x, batch_size=b) for b in (1, 7, 64)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    # The real network: CPU convolution kernels pick batch-size-dependent algorithms, so the
    # per-crop logits themselves differ in the last bits; the windowing adds nothing to that.
    net = patchfcn(width=0.25, generator=torch.Generator().manual_seed(0))
    outs = [predict_frames(net, x, batch_size=b) for b in (1, 7, 64)]
    for other in outs[1:]:
        torch.testing.assert_close(other, outs[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("height,width", [(100, 120), (64, 300), (159, 160)])
def test_frames_smaller_than_the_crop_are_padded_and_cropped_back(height: int, width: int) -> None:
    x = frames(2, height, width, seed=4)
    stub = PointwiseStub()
    with torch.no_grad():
        whole = torch.softmax(stub(x), dim=1)[:, 1]
    torch.testing.assert_close(predict_frames(stub, x), whole, atol=1e-6, rtol=0)
    net = patchfcn(width=0.125, generator=torch.Generator().manual_seed(0))
    out = predict_frames(net, x)
    assert out.shape == (2, height, width)
    padded = torch.nn.functional.pad(x, (0, max(0, 160 - width), 0, max(0, 160 - height)))
    torch.testing.assert_close(out, reference(net, padded)[:, :height, :width], atol=1e-5, rtol=0)


def test_multi_model_pass_equals_single_model_passes_and_restores_training_flag() -> None:
    x = frames(2, 200, 170, seed=5)
    models = [patchfcn(width=0.125, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    models[0].train()
    models[1].eval()
    multi = predict_frames_multi(models, x, batch_size=4)
    assert multi.shape == (2, 2, 200, 170)
    for i, m in enumerate(models):
        torch.testing.assert_close(multi[i], predict_frames(m, x, batch_size=4), atol=1e-6, rtol=0)
    assert models[0].training and not models[1].training


def test_inputs_options_and_errors() -> None:
    stub = PointwiseStub()
    x = frames(2, 170, 180, seed=6)
    torch.testing.assert_close(predict_frames(stub, x.numpy()), predict_frames(stub, x))
    assert predict_frames(stub, np.zeros((0, 3, 200, 200), np.float32)).shape == (0, 200, 200)
    torch.testing.assert_close(
        predict_frames(stub, x, channels_last=True), predict_frames(stub, x), atol=1e-6, rtol=0
    )
    net = patchfcn(width=0.125, generator=torch.Generator().manual_seed(0))
    amp = predict_frames(net, x, amp_dtype=torch.bfloat16)
    torch.testing.assert_close(amp, predict_frames(net, x), atol=0.1, rtol=0)
    with pytest.raises(ValueError, match="F, C, H, W"):
        predict_frames(stub, x[0])
    with pytest.raises(ValueError, match="channels"):
        predict_frames(stub, x[:, :1])
    with pytest.raises(ValueError, match="batch_size"):
        predict_frames(stub, x, batch_size=0)
    with pytest.raises(ValueError, match="amp_dtype"):
        predict_frames(stub, x, amp_dtype=torch.float64)


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device here; the CUDA path (device placement, fp16/bf16 autocast, channels_last) "
    "runs only where a GPU is present",
)
def test_cuda_path_matches_cpu() -> None:
    x = frames(3, 230, 210, seed=7)
    net = patchfcn(width=0.25, generator=torch.Generator().manual_seed(0))
    cpu = predict_frames(net, x)
    net = net.cuda()
    # cuDNN may use TF32 for fp32 convolutions, hence the loose tolerances.
    gpu = predict_frames(net, x, batch_size=5)
    assert gpu.device.type == "cpu" and gpu.dtype == torch.float32
    torch.testing.assert_close(gpu, cpu, atol=1e-2, rtol=0)
    torch.testing.assert_close(predict_frames(net, x.cuda()), gpu, atol=1e-5, rtol=0)
    for dtype in (torch.float16, torch.bfloat16):
        amp = predict_frames(net, x, amp_dtype=dtype, channels_last=True)
        assert amp.dtype == torch.float32
        torch.testing.assert_close(amp, cpu, atol=0.1, rtol=0)


def test_output_device_none_on_cpu_is_identical_to_the_default() -> None:
    # output_device=None keeps the result on the model's device; on the CPU that must be exactly
    # the default ("cpu") result: same values, dtype, shape and a contiguous layout.
    from ichal.model.ensemble import build_ensemble

    padded, full = frames(2, 150, 170, seed=8), frames(2, 200, 230, seed=9)
    net = patchfcn(width=0.125, generator=torch.Generator().manual_seed(0))
    for model in (PointwiseStub(), CropDependentStub(), net):
        for x in (padded, full):
            default = predict_frames(model, x, batch_size=7)
            for device in (None, "cpu", torch.device("cpu")):
                kept = predict_frames(model, x, batch_size=7, output_device=device)
                assert kept.device.type == "cpu" and kept.dtype == torch.float32 and kept.is_contiguous()
                assert torch.equal(kept, default)
    models = [patchfcn(width=0.125, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    multi = predict_frames_multi(models, full, batch_size=5, output_device=None)
    assert multi.device.type == "cpu" and torch.equal(multi, predict_frames_multi(models, full, batch_size=5))
    empty = predict_frames_multi(models, np.zeros((0, 3, 200, 200), np.float32), output_device=None)
    assert empty.shape == (2, 0, 200, 200) and empty.device.type == "cpu"
    ensemble = build_ensemble(2, width=0.125)
    kept = ensemble.predict(full, batch_size=6, output_device=None)
    assert kept.device.type == "cpu" and torch.equal(kept, ensemble.predict(full, batch_size=6))


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device here; output_device=None must keep the probabilities on the GPU",
)
def test_cuda_output_device_none_stays_on_the_gpu() -> None:
    x = frames(2, 230, 210, seed=10)
    net = patchfcn(width=0.25, generator=torch.Generator().manual_seed(0)).cuda()
    for amp_dtype, channels_last in ((None, False), (torch.float16, True)):
        host = predict_frames(net, x, batch_size=5, amp_dtype=amp_dtype, channels_last=channels_last)
        kept = predict_frames(
            net, x, batch_size=5, amp_dtype=amp_dtype, channels_last=channels_last, output_device=None
        )
        assert host.device.type == "cpu"
        assert kept.device.type == "cuda" and kept.dtype == torch.float32 and kept.is_contiguous()
        torch.testing.assert_close(kept.cpu(), host, atol=1e-5, rtol=0)  # CUDA index_add_ uses atomics
    moved = predict_frames(net, x, output_device="cuda")
    assert moved.device.type == "cuda"
