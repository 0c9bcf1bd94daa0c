"""`train` under SageMaker's training contract, also runnable locally with paths as options.

SageMaker runs the image with the argument ``train`` and provides:
  /opt/ml/input/config/hyperparameters.json   every value a string
  /opt/ml/input/data/<channel>/               one folder per input channel: ``train``, and optionally
                                              ``model`` (the model in service, for a warm start) and
                                              ``validation`` (annotated stacks never trained on)
  /opt/ml/model/                              written here, uploaded as model.tar.gz afterwards
  /opt/ml/output/data/evaluation.json         with a validation channel: the new and the warm-start
                                              model on it (uploaded in output.tar.gz)
  /opt/ml/output/failure                      one line explaining a failed job
Training data (``train``): annotated stacks, one folder each with the uploaded study and its accepted
mask (``ichal.train.annotations``: what the annotation path saves), and/or labeled ``.npz`` files
(keys ``hu``, ``mask``, ``pixel_spacing``, e.g. from ``python -m ichal phantoms --labeled``).
Warm start (``model``): a saved ensemble (``manifest.json`` and weights, or the ``model.tar.gz`` a
previous job left); its members are trained further instead of fresh ones, and the new manifest names
it (``training.warm_start``).
Validation (``validation``): after training, the new model and the warm-start model are evaluated on the
same stacks (``ichal.evaluate.evaluate_annotated``: pixel, region, frame and stack AP) and written as one
JSON document, ``{"candidate": …, "current": … or null, "training_stacks": n}``, which the learning
workflow's judge reads (lambdas/domain/learning.ts); each AP is also printed as ``<model>_<metric>=<value>``
for the training job's metric definitions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import traceback
from pathlib import Path
from typing import Any

from .. import __version__
from ..model.ensemble import Ensemble, read_manifest, weights_digest
from ..preprocessing import MODEL_SIZE, WINDOWS
from .annotations import annotated_folders, load_annotated_channel
from .hyperparameters import Hyperparameters
from .trainer import load_training_stacks, train_ensemble

PREFIX = Path("/opt/ml")


def _warm_start(folder: Path, scratch: Path) -> tuple[Ensemble | None, dict[str, Any] | None]:
    """The ensemble in ``folder`` (or in its ``model.tar.gz``) and what the manifest says of it; (None, None) if none."""
    if not folder.is_dir():
        return None, None
    archive = folder / "model.tar.gz"
    if not (folder / "manifest.json").is_file() and archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        folder = scratch
    if not (folder / "manifest.json").is_file():
        return None, None
    manifest = read_manifest(folder)
    return Ensemble.load(folder, map_location="cpu"), {
        "architecture": manifest["architecture"],
        "width": manifest["width"],
        "ensemble_size": manifest["ensemble_size"],
        "weights_digest": weights_digest(manifest),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-dir", type=Path, default=PREFIX / "input/data/train")
    parser.add_argument("--model-dir", type=Path, default=PREFIX / "model")
    parser.add_argument(
        "--warm-start-dir",
        type=Path,
        default=PREFIX / "input/data/model",
        help="the model to continue training (used when it holds a model)",
    )
    parser.add_argument(
        "--validation-dir",
        type=Path,
        default=PREFIX / "input/data/validation",
        help="annotated stacks to evaluate the new and the warm-start model on (used when it exists)",
    )
    parser.add_argument("--evaluation-file", type=Path, default=PREFIX / "output/data/evaluation.json")
    parser.add_argument("--hyperparameters", type=Path, default=PREFIX / "input/config/hyperparameters.json")
    parser.add_argument("--failure-file", type=Path, default=PREFIX / "output/failure")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one hyperparameter"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    try:
        values = json.loads(args.hyperparameters.read_text()) if args.hyperparameters.is_file() else {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
            values[key] = value
        hp = Hyperparameters.from_mapping(values)
        if not args.train_dir.is_dir():
            raise ValueError(f"the train channel {args.train_dir} does not exist")
        paths = sorted(args.train_dir.glob("*.npz"))
        stacks = load_training_stacks(paths, hp.grid_size) + load_annotated_channel(
            args.train_dir, hp.grid_size
        )
        if not stacks:
            raise ValueError(f"no annotated stacks or labeled .npz files in {args.train_dir}")
        with tempfile.TemporaryDirectory() as scratch:
            initial, warm_start = _warm_start(args.warm_start_dir, Path(scratch))
            current_dir = (
                Path(scratch) if (Path(scratch) / "manifest.json").is_file() else args.warm_start_dir
            )
            ensemble, logs = train_ensemble(stacks, hp, device=args.device, initial=initial)
            _save(ensemble, args.model_dir, hp, warm_start, stacks, logs)
            print(f"model written to {args.model_dir}", file=sys.stderr)
            if args.validation_dir.is_dir():
                report = _validate(
                    args.model_dir,
                    current_dir if initial is not None else None,
                    args.validation_dir,
                    args.device,
                )
                report["training_stacks"] = len(stacks)
                args.evaluation_file.parent.mkdir(parents=True, exist_ok=True)
                args.evaluation_file.write_text(json.dumps(report, indent=2, allow_nan=False))
                print(f"evaluation written to {args.evaluation_file}", file=sys.stderr)
        return 0
    except Exception as error:  # SageMaker shows the failure file as the job's failure reason
        message = f"{type(error).__name__}: {error}"
        try:
            args.failure_file.parent.mkdir(parents=True, exist_ok=True)
            args.failure_file.write_text(message + "\n")
        except OSError:
            pass
        traceback.print_exc()
        print(f"training failed: {message}", file=sys.stderr)
        return 1


def _save(ensemble: Ensemble, model_dir: Path, hp: Hyperparameters, warm_start, stacks, logs) -> None:
    ensemble.save(
        model_dir,
        manifest_extra={
            "package_version": __version__,
            "grid_size": hp.grid_size,
            "windows": [{"name": w.name, "level": w.level, "width": w.width} for w in WINDOWS],
            "thresholds": list(hp.thresholds),
            "top_k": hp.top_k,
            "detection_threshold": hp.detection_threshold,
            "hyperparameters": hp.to_json(),
            "training": {
                "warm_start": warm_start,
                "stacks": len(stacks),
                "positive_stacks": sum(int(s.mask.any()) for s in stacks),
                "models": logs,
            },
            "reference_grid_size": MODEL_SIZE,
        },
    )


def _validate(
    candidate_dir: Path, current_dir: Path | None, validation: Path, device: str | None
) -> dict[str, Any]:
    """Both models on the validation stacks; each AP also printed for SageMaker's metric definitions."""
    from ..evaluate import _json_ready, evaluate_annotated
    from ..scoring import StackScorer

    folders = annotated_folders(validation)
    report: dict[str, Any] = {"candidate": None, "current": None}
    for name, folder in (("candidate", candidate_dir), ("current", current_dir)):
        if folder is None:
            continue
        result = _json_ready(evaluate_annotated(StackScorer.from_model_dir(folder, device=device), folders))
        report[name] = result
        for metric, value in sorted(result["metrics"].items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                print(f"{name}_{metric}={value:.6f}", file=sys.stderr)
    return report
