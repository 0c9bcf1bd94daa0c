"""Training on what the annotation path saves (ichal.train.annotations) and warm starts (sagemaker_entry).

A channel of phantom studies (DICOM zips, as uploaded) with their exact label maps written as the
annotators' normalised masks (``write_mask_nifti``, on the grid the container reports); the truth is
the phantom's own mask mapped to the model grid the way the npz training path maps it.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ichal.model.ensemble import Ensemble, read_manifest, weights_digest
from ichal.phantoms import generate_stack, write_dicom_zip, write_mask_nifti, write_npz
from ichal.train.annotations import load_annotated_channel
from ichal.train.sagemaker_entry import main as train_main
from ichal.train.trainer import to_training_stack

GRID = 64
TINY = ["ensemble_size=2", "width=0.125", "iterations=2", "batch_size=2", "crop=32", "stride=16"]
TINY += [f"grid_size={GRID}", "log_every=1", "amp=false"]
SETS = [part for setting in TINY for part in ("--set", setting)]


def annotated(channel: Path, stack_id: str, phantom, *, mask_of=None) -> None:
    folder = channel / stack_id
    folder.mkdir(parents=True)
    write_dicom_zip(phantom, folder / "study.zip")
    write_mask_nifti(mask_of or phantom, folder / "mask.nii.gz")
    (folder / "stack.json").write_text(json.dumps({"stackId": stack_id, "seriesIndex": 0}))


@pytest.fixture(scope="module")
def phantoms():
    return [generate_stack(seed, negative=seed == 2, size=48, frames=20) for seed in range(3)]


def test_channel_stacks_carry_the_annotated_masks_on_the_model_grid(tmp_path, phantoms):
    for i, phantom in enumerate(phantoms):
        annotated(tmp_path, f"study-{i}-s0", phantom)
    (tmp_path / "stray.txt").write_text("not a stack")
    stacks = load_annotated_channel(tmp_path, GRID)
    assert [s.name for s in stacks] == ["study-0-s0", "study-1-s0", "study-2-s0"]
    for stack, phantom in zip(stacks, phantoms):
        truth = to_training_stack(phantom.hu, phantom.mask, phantom.pixel_spacing, GRID)
        np.testing.assert_array_equal(stack.mask, truth.mask)
        assert np.max(np.abs(stack.hu.astype(int) - truth.hu.astype(int))) <= 1  # DICOM rounds HU
    assert stacks[0].mask.any() and not stacks[2].mask.any()


def test_a_mask_that_is_not_the_study_grid_is_refused_naming_the_stack(tmp_path, phantoms):
    other = generate_stack(7, size=48, frames=22)
    annotated(tmp_path, "study-x-s0", phantoms[0], mask_of=other)
    with pytest.raises(ValueError, match=r"study-x-s0: the mask is 48×48×22 voxels"):
        load_annotated_channel(tmp_path, GRID)


def test_train_reads_annotated_stacks_and_npz_and_warm_starts_from_the_model_channel(tmp_path, phantoms):
    channel = tmp_path / "train"
    annotated(channel, "study-0-s0", phantoms[0])
    annotated(channel, "study-2-s0", phantoms[2])
    write_npz(phantoms[1], channel / "extra.npz", include_mask=True)
    first = tmp_path / "v1"
    assert (
        train_main(
            [
                "--train-dir",
                str(channel),
                "--model-dir",
                str(first),
                "--device",
                "cpu",
                "--warm-start-dir",
                str(tmp_path / "none"),
                *SETS,
            ]
        )
        == 0
    )
    manifest = read_manifest(first)
    assert manifest["training"]["stacks"] == 3 and manifest["training"]["positive_stacks"] == 2
    assert manifest["training"]["warm_start"] is None

    # The model channel as SageMaker delivers a previous job's output: model.tar.gz. With a learning
    # rate of 0 and no weight decay the warm-started members come back unchanged …
    model_channel = tmp_path / "model"
    model_channel.mkdir()
    with tarfile.open(model_channel / "model.tar.gz", "w:gz") as tar:
        for path in first.iterdir():
            tar.add(path, arcname=path.name)
    second = tmp_path / "v2"
    frozen = [*SETS, "--set", "learning_rate=0", "--set", "weight_decay=0"]
    assert (
        train_main(
            [
                "--train-dir",
                str(channel),
                "--model-dir",
                str(second),
                "--device",
                "cpu",
                "--warm-start-dir",
                str(model_channel),
                *frozen,
            ]
        )
        == 0
    )
    before, after = Ensemble.load(first), Ensemble.load(second)
    for a, b in zip(before.models, after.models):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            if torch.is_floating_point(x) and "running" not in name:
                torch.testing.assert_close(x, y, msg=name)
    warm = read_manifest(second)["training"]["warm_start"]
    assert warm["weights_digest"] == weights_digest(read_manifest(first))
    assert warm["ensemble_size"] == 2
    # … while fresh members from the same seeds at the same settings differ from the trained ones.
    fresh = tmp_path / "fresh"
    assert (
        train_main(
            [
                "--train-dir",
                str(channel),
                "--model-dir",
                str(fresh),
                "--device",
                "cpu",
                "--warm-start-dir",
                str(tmp_path / "none"),
                *frozen,
            ]
        )
        == 0
    )
    differs = any(
        not torch.equal(x, y)
        for a, b in zip(before.models, Ensemble.load(fresh).models)
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items())
        if torch.is_floating_point(x) and "running" not in name
    )
    assert differs


def test_a_warm_start_of_another_shape_fails_the_job_with_the_reason(tmp_path, phantoms):
    channel = tmp_path / "train"
    annotated(channel, "study-0-s0", phantoms[0])
    first = tmp_path / "v1"
    args = ["--train-dir", str(channel), "--device", "cpu", *SETS]
    assert train_main([*args, "--model-dir", str(first), "--warm-start-dir", str(tmp_path / "none")]) == 0
    failure = tmp_path / "failure"
    code = train_main(
        [
            *args,
            "--set",
            "ensemble_size=3",
            "--model-dir",
            str(tmp_path / "v2"),
            "--warm-start-dir",
            str(first),
            "--failure-file",
            str(failure),
        ]
    )
    assert code != 0
    assert "warm start" in failure.read_text() and "'drn_d_38', 0.125, 3" in failure.read_text()


def test_evaluation_on_annotated_stacks_matches_the_phantom_path(tmp_path, phantoms, capsys):
    from ichal.evaluate import evaluate, evaluate_annotated
    from ichal.evaluate import main as evaluate_main
    from ichal.model.ensemble import build_ensemble
    from ichal.scoring import StackScorer
    from ichal.train.annotations import annotated_folders

    model = tmp_path / "model"
    build_ensemble(2, width=0.125, crop=32, stride=16, seeds=(3, 4)).save(
        model,
        manifest_extra={
            "grid_size": GRID,
            "top_k": 20,
            "thresholds": [0.3, 0.5, 0.7],
            "detection_threshold": 0.5,
        },
    )
    channel = tmp_path / "validation"
    for i, phantom in enumerate(phantoms):
        annotated(channel, f"study-{i}-s0", phantom)
    scorer = StackScorer.from_model_dir(model, device="cpu")
    on_channel = evaluate_annotated(scorer, annotated_folders(channel))
    # The phantom path scores the generator's own HU and masks, without DICOM, upload or mask files.
    direct = evaluate(scorer, phantoms)["metrics"]
    assert on_channel["stack_ids"] == ["study-0-s0", "study-1-s0", "study-2-s0"]
    for key in ("n_stacks", "n_frames", "n_pixels", "n_gt_regions"):
        assert on_channel["metrics"][key] == direct[key], key
    for key in ("pixel_ap", "frame_ap", "stack_ap"):
        assert on_channel["metrics"][key] == pytest.approx(direct[key], abs=0.02), key
    out = tmp_path / "metrics.json"
    args = ["--model-dir", str(model), "--annotated-dir", str(channel), "--device", "cpu", "--out", str(out)]
    assert evaluate_main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    # Nothing held out yet: metrics null (strict JSON), the model still named.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert evaluate_main(["--model-dir", str(model), "--annotated-dir", str(empty), "--device", "cpu"]) == 0
    nothing = json.loads(capsys.readouterr().out)
    assert nothing["metrics"]["pixel_ap"] is None and nothing["metrics"]["n_stacks"] == 0
    assert nothing["model_version"] == scorer.model_version
    assert printed["metrics"]["n_stacks"] == 3 and printed["model_version"] == scorer.model_version


def test_train_with_a_validation_channel_judges_both_models_on_the_same_stacks(tmp_path, phantoms, capsys):
    """The learning workflow's judge reads this report: candidate and warm-start model on one split."""
    from ichal.evaluate import _json_ready, evaluate_annotated
    from ichal.scoring import StackScorer
    from ichal.train.annotations import annotated_folders

    train, validation = tmp_path / "train", tmp_path / "validation"
    annotated(train, "study-0-s0", phantoms[0])
    annotated(validation, "study-1-s0", phantoms[1])
    annotated(validation, "study-2-s0", phantoms[2])
    first, report_file = tmp_path / "v1", tmp_path / "out/evaluation.json"
    base = ["--train-dir", str(train), "--validation-dir", str(validation), "--device", "cpu", *SETS]
    code = train_main(
        [
            *base,
            "--model-dir",
            str(first),
            "--warm-start-dir",
            str(tmp_path / "none"),
            "--evaluation-file",
            str(report_file),
        ]
    )
    assert code == 0
    report = json.loads(report_file.read_text())
    assert report["current"] is None and report["training_stacks"] == 1
    assert report["candidate"]["stack_ids"] == ["study-1-s0", "study-2-s0"]
    # The same numbers as evaluating the saved model on its own.
    alone = _json_ready(
        evaluate_annotated(StackScorer.from_model_dir(first, device="cpu"), annotated_folders(validation))
    )
    assert report["candidate"] == alone
    assert f"candidate_pixel_ap={alone['metrics']['pixel_ap']:.6f}" in capsys.readouterr().err

    # With a warm start the current model is evaluated as well: the row equals the first model's
    # evaluation on its own, on the same stacks as the candidate.
    second, second_report = tmp_path / "v2", tmp_path / "out2/evaluation.json"
    code = train_main(
        [
            *base,
            "--model-dir",
            str(second),
            "--warm-start-dir",
            str(first),
            "--evaluation-file",
            str(second_report),
        ]
    )
    assert code == 0
    both = json.loads(second_report.read_text())
    assert both["current"] == alone
    assert both["candidate"]["stack_ids"] == both["current"]["stack_ids"]
    assert both["candidate"]["model_version"] != alone["model_version"]
