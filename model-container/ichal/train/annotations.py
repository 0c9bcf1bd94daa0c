"""Training stacks from what the annotation path saves: a study as uploaded and its accepted mask.

Channel layout (one folder per labeled stack; the learning loop assembles it from the records, the
studies bucket's ``uploads/`` and ``labels/``)::

    <channel>/<stackId>/study.<ext>    the uploaded study (DICOM zip or folder, .nii/.nii.gz, .npz)
    <channel>/<stackId>/mask.nii.gz    the accepted mask, ``labels/<stackId>/<uuid>.nii.gz``
    <channel>/<stackId>/stack.json     {"stackId": "...", "seriesIndex": 0}

The mask lies on the stack's canonical grid (lambdas/contracts/masks.ts: NIfTI data axes column, row,
frame; affine = ``CtStack.grid_affine()``), which is checked again here: a mask that does not match
the study it is paired with is a ``ValueError`` naming the stack, never silently trained on.
Label values > 0 are hemorrhage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..io import CtStack, read_stacks
from .trainer import TrainingStack, to_training_stack

STACK_FILE = "stack.json"
MASK_FILE = "mask.nii.gz"


def is_annotated_stack(path: Path) -> bool:
    return path.is_dir() and (path / STACK_FILE).is_file()


@dataclass(frozen=True)
class AnnotatedStack:
    stack_id: str
    stack: CtStack
    mask: np.ndarray
    """bool [frames, rows, columns]: the accepted mask on the stack's canonical grid (labels > 0)."""


def load_annotated_stack(folder: Path, grid_size: int) -> TrainingStack:
    """One ``<channel>/<stackId>/`` folder → a training stack on the model grid."""
    annotated = read_annotated_stack(folder)
    stack = annotated.stack
    return to_training_stack(
        stack.hu, annotated.mask, stack.pixel_spacing, grid_size, name=annotated.stack_id
    )


def read_annotated_stack(folder: Path) -> AnnotatedStack:
    """One ``<channel>/<stackId>/`` folder → the study's stack and its mask, checked to share a grid."""
    meta = json.loads((folder / STACK_FILE).read_text())
    stack_id = str(meta.get("stackId") or folder.name)
    index = int(meta.get("seriesIndex", 0))
    studies = [p for p in folder.iterdir() if p.name.startswith("study")]
    if len(studies) != 1:
        raise ValueError(f"{stack_id}: expected one study.* next to {STACK_FILE}, found {len(studies)}")
    series = read_stacks(studies[0])
    if not 0 <= index < len(series):
        raise ValueError(
            f"{stack_id}: the study has {len(series)} series; seriesIndex {index} is none of them"
        )
    stack = series[index]
    image = nib.load(folder / MASK_FILE)
    frames, rows, columns = stack.shape
    if tuple(image.shape) != (columns, rows, frames):
        raise ValueError(
            f"{stack_id}: the mask is {'×'.join(map(str, image.shape))} voxels, "
            f"the study {columns}×{rows}×{frames} (columns × rows × frames)"
        )
    expected = stack.grid_affine()
    tolerance = 0.01 * float(np.min(np.linalg.norm(expected[:3, :3], axis=0)))
    if not np.allclose(image.affine, expected, atol=tolerance):
        raise ValueError(f"{stack_id}: the mask's affine is not the study's grid")
    return AnnotatedStack(stack_id, stack, np.asarray(image.dataobj).transpose(2, 1, 0) > 0)


def annotated_folders(channel: Path) -> list[Path]:
    """The annotated stack folders of a channel, in name order."""
    return [p for p in sorted(channel.iterdir()) if is_annotated_stack(p)]


def load_annotated_channel(channel: Path, grid_size: int) -> list[TrainingStack]:
    """Every annotated stack folder in ``channel``, in name order."""
    return [load_annotated_stack(p, grid_size) for p in annotated_folders(channel)]
