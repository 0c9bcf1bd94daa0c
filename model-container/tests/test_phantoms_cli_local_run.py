"""The phantoms command's options for the local run: mixed sizes, one study carrying a planted
patient name (refused by the readers' PHI check, never written to the manifest), and the exact
masks' labeling-time features on the model grid."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pydicom
import pytest

from ichal.features.morphology import count_components_scipy, perimeter_scipy
from ichal.io.errors import InputRejected
from ichal.io.read import read_stacks
from ichal.phantoms import generate_pool, pool_seeds
from ichal.phantoms.__main__ import main, true_labeling_features
from ichal.preprocessing import mask_to_model_grid, plan_model_grid

PLANTED = "Zzplanted^Jane^Test"


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    code = main(
        [
            "--out",
            str(out),
            "--count",
            "4",
            "--seed",
            "5",
            "--sizes",
            "48",
            "64",
            "--frames",
            "6",
            "--negative-fraction",
            "0.25",
            "--patient-name",
            PLANTED,
            "--patient-name-index",
            "2",
            "--true-features-grid",
            "48",
        ]
    )
    assert code == 0
    return out, json.loads((out / "manifest.json").read_text())


def test_sizes_cycle_over_the_pool_and_match_generate_pool(pool):
    _, manifest = pool
    assert [entry["shape"][1] for entry in manifest["stacks"]] == [48, 64, 48, 64]
    expected = list(generate_pool(4, 5, negative_fraction=0.25, frames=6, sizes=(48, 64)))
    assert [entry["seed"] for entry in manifest["stacks"]] == pool_seeds(4, 5)
    assert [entry["negative"] for entry in manifest["stacks"]] == [s.negative for s in expected]


def test_the_planted_name_is_in_one_study_only_and_never_in_the_manifest(pool):
    out, manifest = pool
    assert [entry["identifier_planted"] for entry in manifest["stacks"]] == [False, False, True, False]
    assert PLANTED not in (out / "manifest.json").read_text()
    for entry in manifest["stacks"]:
        with zipfile.ZipFile(out / entry["files"]["dicom"]) as archive:
            names = {str(pydicom.dcmread(archive.open(n)).PatientName) for n in archive.namelist()}
        assert names == ({PLANTED} if entry["identifier_planted"] else {""})


def test_the_planted_study_is_refused_with_phi_present(pool):
    out, manifest = pool
    planted = next(e for e in manifest["stacks"] if e["identifier_planted"])
    with pytest.raises(InputRejected) as rejected:
        read_stacks(str(out / planted["files"]["dicom"]))
    assert rejected.value.code == "PHI_PRESENT"
    assert PLANTED not in str(rejected.value)


def test_true_features_are_the_exact_mask_measured_on_the_model_grid(pool):
    _, manifest = pool
    stacks = list(generate_pool(4, 5, negative_fraction=0.25, frames=6, sizes=(48, 64)))
    for entry, stack in zip(manifest["stacks"], stacks):
        transform = plan_model_grid(stack.hu.shape[1:], stack.pixel_spacing, 48)
        mask = mask_to_model_grid(stack.mask, transform)
        assert entry["true_boundary_length"] == pytest.approx(sum(perimeter_scipy(f) for f in mask))
        assert entry["true_components"] == sum(count_components_scipy(f) for f in mask)
        assert (entry["true_boundary_length"] == 0) == (not mask.any())
    first = manifest["stacks"][0]
    assert true_labeling_features(stacks[0], 48) == (
        pytest.approx(first["true_boundary_length"]),
        first["true_components"],
    )
    assert any(e["true_boundary_length"] > 0 for e in manifest["stacks"])
    assert np.isfinite([e["true_boundary_length"] for e in manifest["stacks"]]).all()


def test_patient_name_index_must_name_a_stack(tmp_path, capsys):
    assert (
        main(["--out", str(tmp_path), "--count", "2", "--patient-name", PLANTED, "--patient-name-index", "5"])
        == 2
    )
    assert PLANTED not in capsys.readouterr().err
