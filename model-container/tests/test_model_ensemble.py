"""Query-by-committee ensemble (paper §3.1: N = 4 PatchFCNs) and its on-disk format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ichal.model.ensemble import INTENDED_USE, MANIFEST_NAME, Ensemble, build_ensemble, read_manifest
from ichal.model.patchfcn import patchfcn
from ichal.model.sliding_window import predict_frames


def frames(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny() -> Ensemble:
    return build_ensemble(width=0.125)


def test_default_ensemble_has_four_differently_seeded_models(tiny: Ensemble) -> None:
    assert len(tiny) == 4 and tiny.seeds == (0, 1, 2, 3)
    weights = [m.backbone.layer0[0].weight for m in tiny.models]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(weights[i], weights[j])
    again = build_ensemble(2, seeds=(2, 3), width=0.125)
    for a, b in zip(again.models, list(tiny.models)[2:]):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), k


def test_build_leaves_global_rng_and_validates_seeds() -> None:
    state = torch.random.get_rng_state()
    build_ensemble(2, width=0.125)
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="seeds"):
        build_ensemble(3, seeds=(0, 1), width=0.125)
    with pytest.raises(ValueError, match="distinct"):
        build_ensemble(2, seeds=(5, 5), width=0.125)
    with pytest.raises(ValueError, match="share"):
        Ensemble([patchfcn(width=0.125), patchfcn(width=0.25)])


def test_predict_returns_per_model_probabilities(tiny: Ensemble) -> None:
    x = frames(2, 200, 176)
    probs = tiny.predict(x, batch_size=3)
    assert probs.shape == (4, 2, 200, 176) and probs.dtype == torch.float32
    assert probs.min() >= 0 and probs.max() <= 1
    for i, m in enumerate(tiny.models):
        torch.testing.assert_close(probs[i], predict_frames(m, x, batch_size=3), atol=1e-6, rtol=0)
    assert tiny(x[:, :, :160, :160]).shape == (4, 2, 2, 160, 160)


def test_save_load_round_trip_gives_identical_predictions(tiny: Ensemble, tmp_path: Path) -> None:
    manifest_path = tiny.save(tmp_path / "ens", {"training": {"seed_set": "S/32", "epochs": 3}})
    manifest = json.loads(manifest_path.read_text())
    assert manifest_path.name == MANIFEST_NAME
    assert manifest["intended_use"] == INTENDED_USE == "research, not diagnosis"
    expected = {"architecture": "drn_d_38", "width": 0.125, "in_channels": 3, "num_classes": 2}
    expected |= {"crop": 160, "stride": 80}
    assert {k: manifest[k] for k in expected} == expected
    assert manifest["ensemble_size"] == 4 and manifest["seeds"] == [0, 1, 2, 3]
    assert manifest["training"]["epochs"] == 3 and isinstance(manifest["version"], str)
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == [MANIFEST_NAME] + [
        f"model_{i}.pt" for i in range(4)
    ]

    loaded = Ensemble.load(tmp_path / "ens", map_location="cpu")
    assert (loaded.arch, loaded.width, loaded.crop, loaded.stride, loaded.seeds) == (
        "drn_d_38", 0.125, 160, 80, (0, 1, 2, 3)
    )  # fmt: skip
    x = frames(2, 176, 200, seed=1)
    assert torch.equal(loaded.predict(x), tiny.predict(x))


def test_save_rejects_core_key_overrides_and_load_detects_tampering(tiny: Ensemble, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="core manifest keys"):
        tiny.save(tmp_path / "a", {"intended_use": "diagnosis"})
    tiny.save(tmp_path / "b")
    weights = tmp_path / "b" / "model_1.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        Ensemble.load(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    manifest["format_version"] = 99
    (tmp_path / "b" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="manifest"):
        read_manifest(tmp_path / "b")
