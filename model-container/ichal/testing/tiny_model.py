"""A tiny untrained ensemble and small phantom studies, for contract tests of the served container.

Untrained weights: the scores it gives check the HTTP/SDK contract, not accuracy. Synthetic phantoms
only, never patient data.

    python -m ichal.testing.tiny_model --out MODEL_DIR
    python -m ichal.testing.tiny_model --study OUT.zip --seed 5 [--patient-name 'Doe^Jane']

``--out`` and ``--study`` may be given together. ``--patient-name`` plants a PatientName in every
frame (a study that was not de-identified), which the container must refuse with PHI_PRESENT.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TINY_ENSEMBLE = {"n": 2, "width": 0.125, "crop": 32, "stride": 16, "seeds": (3, 4)}
TINY_MANIFEST_EXTRA = {
    "grid_size": 64,
    "top_k": 20,
    "thresholds": [0.3, 0.5, 0.7],
    "detection_threshold": 0.5,
}
STUDY_SIZE = 64
STUDY_FRAMES = 24


def write_tiny_model(out: str | os.PathLike[str]) -> Path:
    """Saves the tiny ensemble with its manifest into ``out``; returns the manifest path."""
    from ichal.model.ensemble import build_ensemble

    spec = dict(TINY_ENSEMBLE)
    ensemble = build_ensemble(spec.pop("n"), **spec)
    return ensemble.save(out, manifest_extra=TINY_MANIFEST_EXTRA)


def write_study(
    out: str | os.PathLike[str], seed: int, *, patient_name: str | None = None, frames: int = STUDY_FRAMES
) -> str:
    """Writes a small phantom DICOM zip to ``out``; returns its SeriesInstanceUID."""
    from ichal.phantoms import generate_stack, write_dicom_zip

    extra_tags = {"PatientName": patient_name} if patient_name else None
    return write_dicom_zip(generate_stack(seed, size=STUDY_SIZE, frames=frames), out, extra_tags=extra_tags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ichal.testing.tiny_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, help="write the tiny ensemble (model_<i>.pt, manifest.json) here")
    parser.add_argument("--study", type=Path, help="write a phantom DICOM zip to this file")
    parser.add_argument("--seed", type=int, default=5, help="phantom seed (default 5)")
    parser.add_argument(
        "--frames", type=int, default=STUDY_FRAMES, help="phantom frames (default %(default)s)"
    )
    parser.add_argument("--patient-name", default=None, help="plant this PatientName (a study with PHI)")
    args = parser.parse_args(argv)
    if args.out is None and args.study is None:
        parser.error("give --out DIR, --study FILE.zip, or both")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_tiny_model(args.out)
    if args.study is not None:
        args.study.parent.mkdir(parents=True, exist_ok=True)
        write_study(args.study, args.seed, patient_name=args.patient_name, frames=args.frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
