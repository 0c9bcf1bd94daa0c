"""``python -m ichal phantoms``: write a seeded pool of synthetic head-CT studies.

    python -m ichal phantoms --out DIR [--count 10] [--seed 0] [--negative-fraction 0.3]
                             [--size 512 | --sizes 96 128 160] [--frames N]
                             [--format dicom|nifti|npz ...] [--labeled]
                             [--patient-name NAME [--patient-name-index I]] [--true-features-grid N]
                             [--masks]

Stack ``i`` is ``generate_pool(count, seed, …)``'s ``i``-th and is written as
``phantom-<i>.zip`` (DICOM, one CT file per frame, shuffled), ``phantom-<i>.nii.gz`` and/or
``phantom-<i>.npz`` (``hu``, ``pixel_spacing``, ``slice_spacing``, ``positions``). ``--labeled`` adds
the exact ``mask`` and ``labels`` to the npz (and writes npz even if not listed): the training
input of ``ichal.train``. ``manifest.json`` lists every stack with its seed, negative flag, geometry
and lesions. Synthetic data only, never patient data.

``--sizes`` makes a pool of mixed frame sizes (stack ``i`` gets ``sizes[i % len(sizes)]``).
``--patient-name`` plants that PatientName in every frame of the DICOM study of stack
``--patient-name-index`` (default 0) — a study that was not de-identified, which the scoring
container must refuse (``PHI_PRESENT``); the manifest marks the stack ``"identifier_planted": true``
and never repeats the name. ``--true-features-grid N`` adds the labeling-time features of the
*exact* mask to each manifest entry: ``true_boundary_length`` B and ``true_components`` M, measured
as the scoring container measures them on its heatmap (``ichal.features.morphology``), on the mask
mapped onto the N² model grid (``ichal.preprocessing``) — the ground truth a simulated annotator's
time can be drawn from. ``--masks`` writes each stack's exact label map as the annotation mask a
simulated annotator uploads, ``phantom-<i>-mask.nii.gz`` (``write_mask_nifti``: NIfTI-1 uint8 on the
grid the scoring container reports for the stack; 0 background, 2 + i for ``HEMORRHAGE_TYPES[i]``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ichal.phantoms.generator import HEMORRHAGE_TYPES, LESION_CONTRASTS, generate_pool, pool_seeds
from ichal.phantoms.writers import write_dicom_zip, write_mask_nifti, write_nifti, write_npz

FORMATS = ("dicom", "nifti", "npz")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ichal phantoms", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--negative-fraction", type=float, default=0.3)
    parser.add_argument("--size", type=int, default=512, help="frame size in pixels (512 = paper geometry)")
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per stack (default: 27–38 at random)"
    )
    parser.add_argument("--format", dest="formats", action="append", choices=FORMATS, help="repeatable")
    parser.add_argument("--labeled", action="store_true", help="npz with the exact mask and labels")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="mixed frame sizes, cycled over stacks"
    )
    parser.add_argument(
        "--patient-name", default=None, help="plant this PatientName in one DICOM study (PHI)"
    )
    parser.add_argument(
        "--patient-name-index", type=int, default=0, help="which stack carries --patient-name"
    )
    parser.add_argument(
        "--lesion-contrast",
        choices=LESION_CONTRASTS,
        default="drawn",
        help="drawn (default: about 1 lesion in 5 faint), or every lesion acute / faint with the same shapes",
    )
    parser.add_argument(
        "--masks", action="store_true", help="write each exact label map as phantom-<i>-mask.nii.gz"
    )
    parser.add_argument(
        "--true-features-grid",
        type=int,
        default=None,
        help="add B and M of the exact mask on this model grid",
    )
    return parser


def true_labeling_features(stack, grid_size: int) -> tuple[float, int]:
    """(B, M) of the stack's exact mask on the model grid, measured like the container's heatmap features."""
    from ichal.features.morphology import labeling_features
    from ichal.preprocessing import mask_to_model_grid, plan_model_grid

    transform = plan_model_grid(stack.hu.shape[1:], stack.pixel_spacing, grid_size)
    mask = mask_to_model_grid(stack.mask, transform).astype("float32")
    features = labeling_features(mask, thresholds=(0.5,), backend="scipy", workers=1)
    return float(features.boundary_length), round(features.components)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.count < 0:
        print("ichal phantoms: --count must be non-negative", file=sys.stderr)
        return 2
    if args.patient_name is not None and not 0 <= args.patient_name_index < args.count:
        print("ichal phantoms: --patient-name-index must name one of the --count stacks", file=sys.stderr)
        return 2
    requested = args.formats or (["npz"] if args.labeled else ["dicom"])
    if args.patient_name is not None and "dicom" not in requested:
        print("ichal phantoms: --patient-name needs --format dicom", file=sys.stderr)
        return 2
    formats = list(dict.fromkeys(args.formats or (["npz"] if args.labeled else ["dicom"])))
    if args.labeled and "npz" not in formats:
        formats.append("npz")
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = pool_seeds(args.count, args.seed)
    entries = []
    pool = generate_pool(
        args.count,
        args.seed,
        negative_fraction=args.negative_fraction,
        size=args.size,
        frames=args.frames,
        sizes=args.sizes,
        lesion_contrast=args.lesion_contrast,
    )
    for index, stack in enumerate(pool):
        stem = f"phantom-{index:05d}"
        files: dict[str, str] = {}
        planted = args.patient_name is not None and index == args.patient_name_index
        if "dicom" in formats:
            files["dicom"] = f"{stem}.zip"
            extra_tags = {"PatientName": args.patient_name} if planted else None
            series_uid = write_dicom_zip(stack, args.out / files["dicom"], extra_tags=extra_tags)
        else:
            series_uid = None
        if "nifti" in formats:
            files["nifti"] = f"{stem}.nii.gz"
            write_nifti(stack, args.out / files["nifti"])
        if "npz" in formats:
            files["npz"] = f"{stem}.npz"
            write_npz(stack, args.out / files["npz"], include_mask=args.labeled)
        if args.masks:
            files["mask"] = f"{stem}-mask.nii.gz"
            write_mask_nifti(stack, args.out / files["mask"])
        truth = {}
        if args.true_features_grid is not None:
            boundary_length, components = true_labeling_features(stack, args.true_features_grid)
            truth = {"true_boundary_length": boundary_length, "true_components": components}
        entries.append(
            {
                "index": index,
                "seed": seeds[index],
                "negative": stack.negative,
                "files": files,
                "series_uid": series_uid,
                "frames": stack.frames,
                "shape": list(stack.hu.shape),
                "pixel_spacing": list(stack.pixel_spacing),
                "slice_spacing": stack.slice_spacing,
                "mask_voxels": int(stack.mask.sum()),
                "lesions": [lesion.as_dict() for lesion in stack.lesions],
                "identifier_planted": planted,
                **truth,
            }
        )
    manifest = {
        "generator": "ichal.phantoms",
        "note": "synthetic phantoms, no patient data; not a clinical result",
        "seed": args.seed,
        "count": args.count,
        "negative_fraction": args.negative_fraction,
        "size": args.size,
        "sizes": args.sizes,
        "true_features_grid": args.true_features_grid,
        "hemorrhage_types": list(HEMORRHAGE_TYPES),
        "stacks": entries,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps({"out": str(args.out), "stacks": len(entries), "formats": formats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
