"""Training under SageMaker's contract, then held-out accuracy of the small CPU ensemble.

The accuracy test trains 4 × DRN-D-38 (width 0.25) on 24 labeled phantoms at a 128² grid with
64² crops (the paper's 160² crops on 512² frames, scaled with the grid) for 400 steps each
(~2.5 min on 2 cores), and scores 20 held-out phantoms through the serving path. Phantom figures
are properties of the simulation, not clinical results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ichal.evaluate import evaluate, paired_contrast
from ichal.model.ensemble import read_manifest
from ichal.phantoms import generate_pool, generate_stack, pool_seeds, write_npz
from ichal.scoring import StackScorer
from ichal.train.hyperparameters import Hyperparameters
from ichal.train.sagemaker_entry import main as train_main

SMALL_CPU_ENSEMBLE = {
    "ensemble_size": "4",
    "width": "0.25",
    "grid_size": "128",
    "crop": "64",
    "stride": "32",
    "iterations": "400",
    "batch_size": "16",
    "learning_rate": "0.002",
    "top_k": "50",
    "log_every": "100",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SageMaker-shaped job: hyperparameters.json (all strings), channel `train`, model dir."""
    root = tmp_path_factory.mktemp("opt-ml")
    channel = root / "input/data/train"
    channel.mkdir(parents=True)
    for i, stack in enumerate(generate_pool(24, seed=1, size=128)):
        write_npz(stack, channel / f"stack-{i:03d}.npz", include_mask=True)
    config = root / "input/config/hyperparameters.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(SMALL_CPU_ENSEMBLE))
    code = train_main(
        [
            "--train-dir",
            str(channel),
            "--model-dir",
            str(root / "model"),
            "--hyperparameters",
            str(config),
            "--failure-file",
            str(root / "output/failure"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    return root / "model"


def test_model_directory_carries_the_manifest(trained):
    manifest = read_manifest(trained)
    assert manifest["intended_use"] == "research, not diagnosis"
    assert manifest["architecture"] == "drn_d_38" and manifest["ensemble_size"] == 4
    assert manifest["grid_size"] == 128 and manifest["top_k"] == 50
    assert manifest["thresholds"] == [0.3, 0.5, 0.7]
    assert [w["name"] for w in manifest["windows"]] == ["brain", "subdural", "bone"]
    assert manifest["training"]["stacks"] == 24 and manifest["training"]["positive_stacks"] > 10


def test_small_cpu_ensemble_detects_hemorrhage_on_held_out_phantoms(trained):
    scorer = StackScorer.from_model_dir(trained, device="cpu")
    report = evaluate(scorer, generate_pool(20, seed=777_001, size=128))
    metrics = report["metrics"]
    keys = ("uncertainty_by_group", "uncertainty_rank_correlation")
    print(json.dumps({"metrics": metrics, **{key: report[key] for key in keys}}, indent=2))
    assert metrics["n_stacks"] == 20
    assert metrics["stack_ap"] >= 0.9
    assert metrics["pixel_ap"] >= 0.5
    for key in ("pixel_ap", "frame_ap", "stack_ap", "region_ap"):
        assert 0.0 <= metrics[key] <= 1.0


def test_same_lesions_made_faint_look_less_like_blood_to_the_ensemble(trained):
    """Paired phantoms (same head, noise and lesion shapes; only the blood density differs): the
    ensemble's mean heatmap inside the true mask must drop when the lesions are faint. V and the JS
    divergence inside the mask are reported, not asserted: on these phantoms the committee's members
    tend to miss faint blood together, and JS measures their disagreement (README, Limitations)."""
    scorer = StackScorer.from_model_dir(trained, device="cpu")
    paired = paired_contrast(scorer, pool_seeds(6, 424_242), size=128)
    summary = paired["summary"]
    print(json.dumps(summary, indent=2))
    assert summary["pairs"] == 6
    assert summary["faint"]["mean_heatmap_in_mask"] < summary["acute"]["mean_heatmap_in_mask"]
    for pair in paired["pairs"]:
        for contrast in ("acute", "faint"):
            assert 0.0 <= pair[contrast]["mean_js_in_mask"] <= float(np.log(2.0))
            assert pair[contrast]["stack_uncertainty"] >= 0.0


def test_training_failure_is_written_where_sagemaker_reads_it(tmp_path):
    failure = tmp_path / "output/failure"
    code = train_main(
        [
            "--train-dir",
            str(tmp_path / "empty"),
            "--model-dir",
            str(tmp_path / "model"),
            "--hyperparameters",
            str(tmp_path / "none.json"),
            "--failure-file",
            str(failure),
        ]
    )
    assert code == 1
    assert failure.read_text().startswith("ValueError: the train channel ")
    (tmp_path / "empty").mkdir()
    args = ["--train-dir", str(tmp_path / "empty"), "--model-dir", str(tmp_path / "model")]
    args += ["--hyperparameters", str(tmp_path / "none.json"), "--failure-file", str(failure)]
    assert train_main(args) == 1
    assert failure.read_text().startswith("ValueError: no annotated stacks or labeled .npz files in")


@pytest.mark.parametrize(
    "values,message",
    [
        ({"width": "wide"}, "hyperparameter width='wide'"),
        ({"crop": "600", "grid_size": "512"}, "crop must be in"),
        ({"thresholds": "[0.5, 1.5]"}, "thresholds must be in (0, 1)"),
        ({"amp": "maybe"}, "expected true or false"),
    ],
)
def test_bad_hyperparameters_are_named(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Hyperparameters.from_mapping(values)


def test_sagemaker_strings_are_coerced():
    hp = Hyperparameters.from_mapping(
        {"iterations": "12", "width": "0.5", "amp": "false", "thresholds": "0.2 0.4", "extra_key": "x"}
    )
    assert (hp.iterations, hp.width, hp.amp, hp.thresholds) == (12, 0.5, False, (0.2, 0.4))
    assert hp.extra == {"extra_key": "x"}


def test_crop_sampler_is_hemorrhage_balanced():
    from ichal.train.trainer import CropSampler, to_training_stack

    stacks = [generate_stack(s, size=128, negative=(s % 2 == 0)) for s in range(4)]
    training = [to_training_stack(s.hu, s.mask, s.pixel_spacing, 128) for s in stacks]
    sampler = CropSampler(training, crop=64, positive_fraction=0.5, seed=0)
    _, labels = sampler.sample(400)
    with_blood = np.mean([labels[i].any() for i in range(400)])
    overall = np.mean([t.mask.mean() for t in training])
    assert with_blood > 0.45  # ≥ the positive fraction, far above the ~1 % base rate of bleeding pixels
    assert overall < 0.05


def test_bootstrap_resample_is_stratified_seeded_and_differs_between_members():
    from ichal.train.trainer import TrainingStack, bootstrap_resample

    def stack(name: str, positive: bool) -> TrainingStack:
        mask = np.zeros((2, 8, 8), dtype=bool)
        mask[0, 3, 3] = positive
        return TrainingStack(hu=np.zeros((2, 8, 8), dtype=np.int16), mask=mask, name=name)

    stacks = [stack(f"p{i}", True) for i in range(7)] + [stack(f"n{i}", False) for i in range(3)]
    a, b, again = bootstrap_resample(stacks, 0), bootstrap_resample(stacks, 1), bootstrap_resample(stacks, 0)
    for sample in (a, b):
        assert len(sample) == 10
        assert sum(s.mask.any() for s in sample) == 7  # positives drawn only from positives
        assert all(s.name.startswith("p") for s in sample[:7]) and all(
            s.name.startswith("n") for s in sample[7:]
        )
        assert len({s.name for s in sample}) < 10  # with replacement: 10 draws from 10 rarely cover all
    assert [s.name for s in a] == [s.name for s in again]
    assert [s.name for s in a] != [s.name for s in b]
    assert Hyperparameters.from_mapping({"bootstrap": "true"}).bootstrap is True


def test_rank_correlation_of_uncertainty_against_cost_matches_ranked_pearson():
    from ichal.evaluate import _rank_correlation

    rng = np.random.default_rng(3)
    rows = [{"group": "negative", "stack_uncertainty": 9.0, "boundary_length": 0.0, "true_voxels": 0}] + [
        {"group": "medium", "stack_uncertainty": float(v), "boundary_length": float(b), "true_voxels": int(t)}
        for v, b, t in zip(rng.random(12), rng.random(12) * 100, rng.permutation(1000)[:12], strict=True)
    ]
    positive = rows[1:]

    def ranked_pearson(key: str) -> float:  # no ties here, so Spearman = Pearson of the ranks
        ranks = [np.argsort(np.argsort([row[k] for row in positive])) for k in ("stack_uncertainty", key)]
        return float(np.corrcoef(ranks[0], ranks[1])[0, 1])

    result = _rank_correlation(rows)
    assert result["n"] == 12
    assert result["v_vs_boundary_length"] == pytest.approx(ranked_pearson("boundary_length"))
    assert result["v_vs_true_voxels"] == pytest.approx(ranked_pearson("true_voxels"))
    assert _rank_correlation(rows[:3]) == {"n": 2, "v_vs_boundary_length": None, "v_vs_true_voxels": None}


def test_evaluate_cli_writes_report_and_paired_figure(trained, tmp_path, capsys):
    from ichal.evaluate import main as evaluate_main

    figure = tmp_path / "pairs.png"
    code = evaluate_main(
        [
            "--model-dir",
            str(trained),
            "--count",
            "3",
            "--seed",
            "5150",
            "--size",
            "128",
            "--device",
            "cpu",
            "--paired-contrast",
            "1",
            "--figure",
            str(figure),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["n_stacks"] == 3 and "stacks" not in report
    assert report["paired_contrast"]["summary"]["pairs"] == 1 and "pairs" not in report["paired_contrast"]
    assert report["uncertainty_rank_correlation"]["n"] <= 3
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        evaluate_main(["--model-dir", str(trained), "--figure", str(tmp_path / "x.png")])
    assert "give --paired-contrast N too" in capsys.readouterr().err
