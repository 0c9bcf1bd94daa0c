"""`train` under SageMaker's training contract, also runnable locally with paths as options.

SageMaker runs the image with the argument ``train`` and provides:
  /opt/ml/input/config/hyperparameters.json   every value a string
  /opt/ml/input/data/<channel>/               one folder per input channel; we read ``train``
  /opt/ml/model/                              written here, uploaded as model.tar.gz afterwards
  /opt/ml/output/failure                      one line explaining a failed job
Training data: labeled stacks as ``.npz`` files (keys ``hu``, ``mask``, ``pixel_spacing``), e.g.
written by ``python -m ichal phantoms --labeled``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..preprocessing import MODEL_SIZE, WINDOWS
from .hyperparameters import Hyperparameters
from .trainer import load_training_stacks, train_ensemble

PREFIX = Path("/opt/ml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-dir", type=Path, default=PREFIX / "input/data/train")
    parser.add_argument("--model-dir", type=Path, default=PREFIX / "model")
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
        paths = sorted(args.train_dir.glob("*.npz"))
        if not paths:
            raise ValueError(f"no labeled .npz stacks in {args.train_dir}")
        stacks = load_training_stacks(paths, hp.grid_size)
        ensemble, logs = train_ensemble(stacks, hp, device=args.device)
        ensemble.save(
            args.model_dir,
            manifest_extra={
                "package_version": __version__,
                "grid_size": hp.grid_size,
                "windows": [{"name": w.name, "level": w.level, "width": w.width} for w in WINDOWS],
                "thresholds": list(hp.thresholds),
                "top_k": hp.top_k,
                "detection_threshold": hp.detection_threshold,
                "hyperparameters": hp.to_json(),
                "training": {
                    "stacks": len(stacks),
                    "positive_stacks": sum(int(s.mask.any()) for s in stacks),
                    "models": logs,
                },
                "reference_grid_size": MODEL_SIZE,
            },
        )
        print(f"model written to {args.model_dir}", file=sys.stderr)
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
