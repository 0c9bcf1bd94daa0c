"""Writes overlay npz files with the scoring container's own writer (ichal.scoring.overlay_npz).

Usage: python make-overlays.py OUT_DIR NAME[:SEED] ...  — one `<NAME>.npz` per argument: 24 frames of
128² with a seeded synthetic bleed (a smooth blob over a few frames) as the mean heatmap and the
ensemble's disagreement on its rim as the JS divergence, the shape real scoring gives.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ichal.scoring import JS_MAX, overlay_npz

FRAMES, SIZE = 24, 128


def features(seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    heat = np.zeros((FRAMES, SIZE, SIZE), np.float32)
    centre = rng.integers(8, FRAMES - 8)
    cy, cx = rng.uniform(40, 88, size=2)
    radius = rng.uniform(9, 18)
    for f in range(FRAMES):
        extent = max(0.0, 1 - abs(f - centre) / 5)
        if extent > 0:
            r = radius * np.sqrt(extent)
            d = np.sqrt(((yy - cy) / 1.0) ** 2 + ((xx - cx) / 1.3) ** 2)
            heat[f] = 1 / (1 + np.exp((d - r) / 2.2)) * (0.55 + 0.45 * extent)
        heat[f] += rng.uniform(0, 0.02, size=(SIZE, SIZE)).astype(np.float32)
    heat = np.clip(heat, 0, 1)
    js = JS_MAX * 0.9 * 4 * heat * (1 - heat)
    frame_scores = heat.reshape(FRAMES, -1).max(axis=1)
    return SimpleNamespace(mean_heatmap=torch.from_numpy(heat), js_map=torch.from_numpy(js), frame_scores=frame_scores.tolist())


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for arg in sys.argv[2:]:
        name, _, seed = arg.partition(":")
        (out / f"{name}.npz").write_bytes(overlay_npz(features(int(seed or 0))))


if __name__ == "__main__":
    main()
