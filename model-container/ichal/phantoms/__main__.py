"""``python -m ichal phantoms``: write a seeded pool of synthetic head-CT studies.

    python -m ichal phantoms --out DIR [--count 10] [--seed 0] [--negative-fraction 0.3]
                             [--size 512] [--frames N] [--format dicom|nifti|npz ...] [--labeled]

Stack ``i`` is ``generate_pool(count, seed, …)``'s ``i``-th and is written as
``phantom-<i>.zip`` (DICOM, one CT file per frame, shuffled), ``phantom-<i>.nii.gz`` and/or
``phantom-<i>.npz`` (``hu``, ``pixel_spacing``, ``slice_spacing``, ``positions``). ``--labeled`` adds
the exact ``mask`` and ``labels`` to the npz (and writes npz even if not listed): the training
input of ``ichal.train``. ``manifest.json`` lists every stack with its seed, negative flag, geometry
and lesions. Synthetic data only, never patient data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ichal.phantoms.generator import HEMORRHAGE_TYPES, generate_pool, pool_seeds
from ichal.phantoms.writers import write_dicom_zip, write_nifti, write_npz

FORMATS = ("dicom", "nifti", "npz")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ichal phantoms", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--negative-fraction", type=float, default=0.3)
    parser.add_argument("--size", type=int, default=512, help="frame size in pixels (512 = paper geometry)")
    parser.add_argument("--frames", type=int, default=None, help="frames per stack (default: 27–38 at random)")
    parser.add_argument("--format", dest="formats", action="append", choices=FORMATS, help="repeatable")
    parser.add_argument("--labeled", action="store_true", help="npz with the exact mask and labels")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.count < 0:
        print("ichal phantoms: --count must be non-negative", file=sys.stderr)
        return 2
    formats = list(dict.fromkeys(args.formats or (["npz"] if args.labeled else ["dicom"])))
    if args.labeled and "npz" not in formats:
        formats.append("npz")
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = pool_seeds(args.count, args.seed)
    entries = []
    pool = generate_pool(
        args.count, args.seed, negative_fraction=args.negative_fraction, size=args.size, frames=args.frames
    )
    for index, stack in enumerate(pool):
        stem = f"phantom-{index:05d}"
        files: dict[str, str] = {}
        if "dicom" in formats:
            files["dicom"] = f"{stem}.zip"
            series_uid = write_dicom_zip(stack, args.out / files["dicom"])
        else:
            series_uid = None
        if "nifti" in formats:
            files["nifti"] = f"{stem}.nii.gz"
            write_nifti(stack, args.out / files["nifti"])
        if "npz" in formats:
            files["npz"] = f"{stem}.npz"
            write_npz(stack, args.out / files["npz"], include_mask=args.labeled)
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
            }
        )
    manifest = {
        "generator": "ichal.phantoms",
        "note": "synthetic phantoms, no patient data; not a clinical result",
        "seed": args.seed,
        "count": args.count,
        "negative_fraction": args.negative_fraction,
        "size": args.size,
        "hemorrhage_types": list(HEMORRHAGE_TYPES),
        "stacks": entries,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps({"out": str(args.out), "stacks": len(entries), "formats": formats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
