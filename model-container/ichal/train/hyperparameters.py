"""Training hyperparameters: defaults, parsing of SageMaker's all-strings hyperparameters.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..windows import DEFAULT_CROP, DEFAULT_STRIDE


@dataclass(frozen=True)
class Hyperparameters:
    ensemble_size: int = 4
    """N: PatchFCNs in the committee (paper §3.1: N = 4)."""
    arch: str = "drn_d_38"
    width: float = 1.0
    """Channel multiplier of the backbone: 1.0 is the paper's DRN-D-38; small values for CPU runs."""
    crop: int = DEFAULT_CROP
    """Training crop and sliding-window size (paper Fig. 2: 160)."""
    stride: int = DEFAULT_STRIDE
    grid_size: int = 512
    """Frames are mapped onto grid_size² pixels (ichal.preprocessing) for training and serving."""
    iterations: int = 4000
    """Optimiser steps per model."""
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    positive_fraction: float = 0.5
    """Hemorrhage-balanced sampling: share of crops centred near a hemorrhage pixel."""
    hemorrhage_weight: float = 1.0
    """Cross-entropy weight of the hemorrhage class."""
    bootstrap: bool = False
    """Query by bagging: model i trains on its own stratified bootstrap resample of the stacks
    (positives and negatives resampled separately, with replacement, from seed + i)."""
    seed: int = 0
    """Model i is initialised and sampled with seed + i."""
    top_k: int = 200
    thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)
    detection_threshold: float = 0.5
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    log_every: int = 50
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Hyperparameters:
        """Builds from a mapping whose values may be strings (SageMaker passes every value as a string)."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, raw in values.items():
            name = key.replace("-", "_")
            if name not in known:
                extra[key] = raw
                continue
            default = getattr(cls(), name)
            try:
                kwargs[name] = _coerce(raw, default)
            except (TypeError, ValueError) as error:
                raise ValueError(f"hyperparameter {key}={raw!r}: {error}") from None
        hp = cls(**kwargs, extra=extra)
        hp.validate()
        return hp

    @classmethod
    def from_file(cls, path: str | Path) -> Hyperparameters:
        return cls.from_mapping(json.loads(Path(path).read_text()))

    def validate(self) -> None:
        problems = []
        if self.ensemble_size < 1:
            problems.append("ensemble_size must be ≥ 1")
        if not 0 < self.width <= 4:
            problems.append("width must be in (0, 4]")
        if self.crop < 16 or self.crop > self.grid_size:
            problems.append(f"crop must be in [16, grid_size={self.grid_size}]")
        if self.stride < 1 or self.stride > self.crop:
            problems.append("stride must be in [1, crop]")
        if self.grid_size % 8:
            problems.append("grid_size must be a multiple of 8")
        if self.iterations < 1 or self.batch_size < 1:
            problems.append("iterations and batch_size must be ≥ 1")
        if not 0 <= self.positive_fraction <= 1:
            problems.append("positive_fraction must be in [0, 1]")
        if not self.thresholds or any(not 0 < t < 1 for t in self.thresholds):
            problems.append("thresholds must be in (0, 1)")
        if self.top_k < 1:
            problems.append("top_k must be ≥ 1")
        if problems:
            raise ValueError("; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["thresholds"] = list(self.thresholds)
        return out


def _coerce(raw: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        value = float(raw)
        if not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        items = json.loads(raw) if isinstance(raw, str) and raw.strip().startswith("[") else raw
        if isinstance(items, str):
            items = items.replace(",", " ").split()
        return tuple(float(x) for x in items)
    return str(raw)
