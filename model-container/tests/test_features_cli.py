"""stack_features() end to end and the `features` CLI (in-process and `python -m ichal.features`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.measure import perimeter

from ichal.features import features_main, stack_features

ROOT = Path(__file__).resolve().parents[1]


def _probs(seed: int = 0, shape=(4, 3, 176, 168)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape[1:]), (0, 6, 6))
    base = (base - base.min()) / (base.max() - base.min())
    noise = ndimage.gaussian_filter(rng.random(shape), (0, 0, 3, 3)) - 0.5
    return np.clip(base[None] + 0.3 * noise, 0, 1).astype(np.float32)


def test_stack_features_combines_the_stages_consistently() -> None:
    p = _probs()
    res = stack_features(torch.from_numpy(p), top_k=5, crop=80, stride=40)
    mean = p.mean(0)
    np.testing.assert_allclose(res.mean_heatmap.numpy(), mean, rtol=1e-6)
    assert res.top_k == 5 and len(res.top_patches) == 5
    # per-threshold values are the documented sums over frames
    for pt in res.per_threshold:
        m = res.mean_heatmap.numpy() >= pt.threshold
        assert pt.components == sum(ndimage.label(f, structure=np.ones((3, 3)))[1] for f in m)
        assert pt.boundary_length == pytest.approx(sum(perimeter(f, neighborhood=4) for f in m), rel=1e-9)
    assert res.boundary_length == pytest.approx(np.mean([pt.boundary_length for pt in res.per_threshold]))
    assert res.stack_score == pytest.approx(float(res.mean_heatmap.max()))
    assert len(res.frame_scores) == 3
    assert set(res.timings_s) == {"validate", "uncertainty", "labeling_features", "detection"}
    d = json.loads(json.dumps(res.to_dict()))
    assert {"stack_uncertainty", "top_k", "boundary_length", "components", "per_threshold", "regions"} <= set(
        d
    )
    # torch backend gives the same numbers
    res_t = stack_features(p, top_k=5, crop=80, stride=40, backend="torch")
    assert res_t.components == res.components
    assert res_t.boundary_length == pytest.approx(res.boundary_length, rel=1e-9)
    assert [r.to_dict() for r in res_t.regions] == [r.to_dict() for r in res.regions]


def test_cli_prints_the_contract_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "probs.npy"
    p = _probs(1)
    np.save(path, p)
    rc = features_main(["--probs", str(path), "--top-k", "7", "--thresholds", "0.4", "0.6"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)
    assert set(d) == {"stack_uncertainty", "top_k", "boundary_length", "components", "per_threshold"}
    assert d["top_k"] == 7
    assert [x["threshold"] for x in d["per_threshold"]] == [0.4, 0.6]
    assert set(d["per_threshold"][0]) == {"threshold", "boundary_length", "components"}
    ref = stack_features(p, top_k=7, thresholds=(0.4, 0.6))
    assert d["stack_uncertainty"] == pytest.approx(ref.stack_uncertainty)
    assert d["components"] == pytest.approx(ref.components)
    # --detail adds the detection summary
    assert features_main(["--probs", str(path), "--detail"]) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert {"stack_score", "frame_scores", "regions", "n_regions", "timings_s"} <= set(d2)


@pytest.mark.parametrize(
    "content,expect",
    [
        (None, "not found"),
        (np.zeros((3, 170, 170), np.float32), "4 dimensions"),
        (np.full((2, 1, 170, 170), 1.5, np.float32), "[0, 1]"),
        (np.full((2, 1, 170, 170), -0.1, np.float32), "[0, 1]"),
        (np.full((2, 1, 170, 170), np.nan, np.float32), "NaN"),
        (np.zeros((2, 1, 100, 170), np.float32), "shorter than"),
        ("garbage", "cannot read"),
    ],
)
def test_cli_bad_input_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content, expect: str
) -> None:
    path = tmp_path / "probs.npy"
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, str):
        path.write_text(content)
    rc = features_main(["--probs", str(path)])
    out = capsys.readouterr()
    assert rc == 2
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], out.err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert features_main([]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert features_main(["--probs", "x.npy", "--top-k", "0"]) == 2
    assert "top-k" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "probs.npy"
    np.save(path, _probs(2, shape=(2, 1, 160, 160)))
    ok = subprocess.run(
        [sys.executable, "-m", "ichal.features", "--probs", str(path), "--top-k", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["top_k"] == 1  # a single 160² window
    bad = subprocess.run(
        [sys.executable, "-m", "ichal.features", "--probs", str(tmp_path / "missing.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_dispatcher_entry_point_symbol() -> None:
    from ichal.features.__main__ import main

    assert main is features_main
