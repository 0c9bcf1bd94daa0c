"""Writes key-frame thumbnails with the scoring container's own renderer (ichal.thumbnails).

Usage: python make-overlays.py OUT_DIR NAME[:SEED] ...  — for each argument, OUT_DIR/NAME/ holds what the
container writes beside a stack's overlays (`stack-0-thumbnails.json` and two PNGs per key frame): 24
frames of 128² brain-like CT with a seeded synthetic bleed (a smooth blob over a few frames) as the mean
heatmap and the ensemble's disagreement on its rim as the JS divergence, the shape real scoring gives.
"""

import sys
from pathlib import Path

import numpy as np
from ichal.thumbnails import render_thumbnails

FRAMES, SIZE = 24, 128


def maps(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
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
    js = 0.9 * 4 * heat * (1 - heat)
    head = ((yy - SIZE / 2) / 54) ** 2 + ((xx - SIZE / 2) / 44) ** 2 <= 1
    ct = np.where(head, 35 + rng.normal(0, 4, size=(FRAMES, SIZE, SIZE)), -1000).astype(
        np.int16
    )
    ct = np.where(heat > 0.5, 65, ct).astype(np.int16)
    scores = heat.reshape(FRAMES, -1).max(axis=1).tolist()
    return (
        ct,
        np.rint(heat * 255).astype(np.uint8),
        np.rint(js * 255).astype(np.uint8),
        scores,
    )


def main() -> None:
    out = Path(sys.argv[1])
    for arg in sys.argv[2:]:
        name, _, seed = arg.partition(":")
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, body in render_thumbnails(*maps(int(seed or 0)), "stack-0").items():
            (folder / file).write_bytes(body)


if __name__ == "__main__":
    main()
