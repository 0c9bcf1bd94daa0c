"""Query-by-committee ensemble of PatchFCNs (paper §3.1, Fig. 1).

"The idea of query-by-committee (QBC) is to run multiple models on the same example and use their
disagreement to estimate uncertainty" (§3.1); the paper uses N = 4 PatchFCNs trained on the seed
set, differing only by their random initialisation (bootstrapping gave no benefit, §5.1). This
module holds the committee, runs it over frame stacks with the sliding window of §2 and returns the
per-model probability maps [N_models, F, H, W]; the mean heatmap and the Jensen-Shannon divergence
of Eq. (1) are computed from them by the features code.

On disk an ensemble is a directory with one state dict per model (``model_<i>.pt``) and a
``manifest.json`` that records how to rebuild the models, the sliding-window geometry, the
SHA-256 of every weight file (checked on load) and the intended use: research, not diagnosis.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ichal import __version__
from ichal.model.drn import ARCHITECTURES
from ichal.model.patchfcn import PatchFCN, patchfcn, patchfcn_skeleton
from ichal.model.sliding_window import DEFAULT_BATCH_SIZE, predict_frames_multi
from ichal.windows import DEFAULT_CROP, DEFAULT_STRIDE

__all__ = [
    "DEFAULT_ENSEMBLE_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "INTENDED_USE",
    "MANIFEST_NAME",
    "Ensemble",
    "build_ensemble",
    "read_manifest",
]

DEFAULT_ENSEMBLE_SIZE = 4
"""N = 4 models in the committee (§3.1: "We have tried larger N but didn't gain any performance")."""
MANIFEST_NAME = "manifest.json"
FORMAT = "ichal.patchfcn-ensemble"
FORMAT_VERSION = 1
INTENDED_USE = "research, not diagnosis"

_CORE_KEYS = frozenset(
    {
        "format", "format_version", "version", "intended_use", "architecture", "width", "in_channels",
        "num_classes", "crop", "stride", "ensemble_size", "seeds", "weights",
    }
)  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Ensemble(nn.Module):
    """A committee of PatchFCNs of one architecture, with the sliding-window geometry they use."""

    def __init__(
        self,
        models: Sequence[PatchFCN],
        *,
        crop: int = DEFAULT_CROP,
        stride: int = DEFAULT_STRIDE,
        seeds: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        first = models[0]
        signature = (first.arch, first.width, first.in_channels, first.num_classes)
        for m in models[1:]:
            if (m.arch, m.width, m.in_channels, m.num_classes) != signature:
                raise ValueError(
                    "all models of an ensemble must share arch, width, in_channels and num_classes"
                )
        if seeds is not None and len(seeds) != len(models):
            raise ValueError(f"{len(seeds)} seeds for {len(models)} models")
        if crop < 1 or stride < 1:
            raise ValueError(f"crop and stride must be positive, got crop={crop}, stride={stride}")
        self.models = nn.ModuleList(models)
        self.arch, self.width, self.in_channels, self.num_classes = signature
        self.crop = int(crop)
        self.stride = int(stride)
        self.seeds: tuple[int, ...] | None = None if seeds is None else tuple(int(s) for s in seeds)

    def __len__(self) -> int:
        return len(self.models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every model for a batch of patches: [N_models, N, num_classes, H, W]."""
        return torch.stack([m(x) for m in self.models])

    def predict(
        self,
        frames: torch.Tensor | np.ndarray,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        output_device: str | torch.device | None = "cpu",
    ) -> torch.Tensor:
        """Per-model hemorrhage probability maps of a frame stack: [N_models, F, H, W] float32.

        ``frames`` is [F, C, H, W] in model-input space; each patch batch is shared by all models.
        The maps are returned on ``output_device``: the CPU by default, or ``None`` to keep them on
        the ensemble's device (e.g. CUDA, for the torch backend of the features).
        Keyword arguments are those of :func:`ichal.model.sliding_window.predict_frames`.
        """
        return predict_frames_multi(
            list(self.models),
            frames,
            crop=self.crop,
            stride=self.stride,
            batch_size=batch_size,
            amp_dtype=amp_dtype,
            channels_last=channels_last,
            output_device=output_device,
        )

    def manifest(self, weights: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
        """The manifest describing this ensemble (``weights`` lists the saved files, if any)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": __version__,
            "intended_use": INTENDED_USE,
            "architecture": self.arch,
            "width": self.width,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "crop": self.crop,
            "stride": self.stride,
            "ensemble_size": len(self),
            "seeds": None if self.seeds is None else list(self.seeds),
            "weights": [dict(w) for w in weights],
        }

    def save(
        self, directory: str | os.PathLike[str], manifest_extra: Mapping[str, Any] | None = None
    ) -> Path:
        """Write ``model_<i>.pt`` state dicts and ``manifest.json`` into ``directory``.

        Returns the path of the manifest. ``manifest_extra`` (JSON-serialisable, e.g. training provenance) is merged into the
        manifest; it may not override the core keys. The manifest is written last and atomically.
        """
        extra = dict(manifest_extra or {})
        clash = sorted(_CORE_KEYS.intersection(extra))
        if clash:
            raise ValueError(f"manifest_extra may not override core manifest keys: {clash}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        weights = []
        for i, m in enumerate(self.models):
            path = out / f"model_{i}.pt"
            state = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}
            tmp = out / f".{path.name}.tmp"
            torch.save(state, tmp)
            os.replace(tmp, path)
            weights.append({"file": path.name, "sha256": _sha256(path)})
        manifest = {**self.manifest(weights), **extra}
        manifest_path = out / MANIFEST_NAME
        _atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        return manifest_path

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], map_location: str | torch.device | None = "cpu"
    ) -> Ensemble:
        """Rebuild an ensemble written by :meth:`save`, verifying format and weight checksums."""
        src = Path(directory)
        manifest = read_manifest(src)
        models = []
        for entry in manifest["weights"]:
            path = src / entry["file"]
            if Path(entry["file"]).name != entry["file"]:
                raise ValueError(f"weight file {entry['file']!r} must be a plain file name")
            if _sha256(path) != entry["sha256"]:
                raise ValueError(f"checksum mismatch for {path}")
            state = torch.load(path, map_location=map_location, weights_only=True)
            model = patchfcn_skeleton(
                in_channels=manifest["in_channels"],
                num_classes=manifest["num_classes"],
                width=manifest["width"],
                arch=manifest["architecture"],
            )
            model.load_state_dict(state, strict=True, assign=True)
            models.append(model)
        return cls(models, crop=manifest["crop"], stride=manifest["stride"], seeds=manifest["seeds"])


def weights_digest(manifest: Mapping[str, Any]) -> str:
    """12 hex digits naming a saved ensemble's weights (sha256 over the members' sha256, in order)."""
    return hashlib.sha256("".join(w["sha256"] for w in manifest["weights"]).encode()).hexdigest()[:12]


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``manifest.json`` of a saved ensemble."""
    path = Path(directory) / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a {FORMAT} v{FORMAT_VERSION} manifest "
            f"(format={manifest.get('format')!r}, format_version={manifest.get('format_version')!r})"
        )
    missing = sorted(_CORE_KEYS.difference(manifest))
    if missing:
        raise ValueError(f"{path} lacks keys {missing}")
    if manifest["architecture"] not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {manifest['architecture']!r}")
    if len(manifest["weights"]) != manifest["ensemble_size"] or manifest["ensemble_size"] < 1:
        raise ValueError(
            f"{path}: ensemble_size {manifest['ensemble_size']} but {len(manifest['weights'])} weight files"
        )
    return manifest


def build_ensemble(
    n: int = DEFAULT_ENSEMBLE_SIZE,
    *,
    seeds: Sequence[int] | None = None,
    width: float = 1.0,
    arch: str = "drn_d_38",
    in_channels: int = 3,
    num_classes: int = 2,
    crop: int = DEFAULT_CROP,
    stride: int = DEFAULT_STRIDE,
) -> Ensemble:
    """``n`` freshly initialised PatchFCNs, model i seeded by ``seeds[i]`` (default 0 … n-1).

    Each model draws its initial weights from its own ``torch.Generator``, so the result depends
    only on the seeds and leaves the global RNG untouched.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    seeds = tuple(range(n)) if seeds is None else tuple(int(s) for s in seeds)
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} models")
    if len(set(seeds)) != n:
        raise ValueError(f"seeds must be distinct, got {seeds}")
    models = [
        patchfcn(
            in_channels=in_channels,
            num_classes=num_classes,
            width=width,
            arch=arch,
            generator=torch.Generator().manual_seed(seed),
        )
        for seed in seeds
    ]
    return Ensemble(models, crop=crop, stride=stride, seeds=seeds)
