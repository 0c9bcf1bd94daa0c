"""Key-frame thumbnails for the annotators' worklist, rendered at scoring time beside the overlays.

  key frames   the ``count`` frames with the highest frame score (ties: larger summed JS divergence,
               then the lower frame index), listed in frame order
  per frame    the CT in the brain window (level 40, width 80 HU) in grey, with the mean heatmap
               (transparent → red → amber → pale yellow) or the JS divergence (transparent → indigo →
               teal → pale cyan) laid over it, each colour's opacity rising with the value; box-filtered
               down to at most ``max_size`` pixels a side; 8-bit RGB PNG (Pillow)
  manifest     ``stack-<i>-thumbnails.json``: frames, grid height / width, thumbnail size and, per key
               frame, its index, score and the two PNG names (``stack-<i>-key-<f>-heatmap.png``,
               ``…-js.png``) — what the annotators' API presigns (lambdas/domain/completion.ts overlaysOf)

Everything is on the stack's own grid (the maps brought back from the model grid by
``from_model_grid``, as the viewer's volumes are), so a thumbnail shows the frame as the viewer does.
The PNGs carry no text chunks: pixels only.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

BRAIN_WINDOW = (40.0, 80.0)
# (value, r, g, b) stops; values are the maps' uint8 scale.
HEATMAP_STOPS = ((0, 40, 0, 0), (90, 200, 30, 20), (170, 250, 170, 30), (255, 255, 250, 190))
JS_STOPS = ((0, 10, 0, 60), (90, 70, 40, 190), (170, 30, 170, 170), (255, 200, 255, 255))


def key_frames(frame_scores: np.ndarray, js: np.ndarray, count: int = 3) -> list[int]:
    """Indices of the key frames (see the module docstring), ascending."""
    scores = np.asarray(frame_scores, dtype=np.float64)
    js_sums = np.asarray(js, dtype=np.float64).reshape(len(scores), -1).sum(axis=1)
    order = sorted(range(len(scores)), key=lambda f: (-scores[f], -js_sums[f], f))
    return sorted(order[:count])


def _colour(values: np.ndarray, stops) -> np.ndarray:
    at = np.array([s[0] for s in stops], dtype=np.float32)
    rgb = np.stack([np.interp(values, at, [s[c] for s in stops]) for c in (1, 2, 3)], axis=-1)
    return rgb.astype(np.float32)


def composite(ct_hu: np.ndarray, overlay: np.ndarray, stops, max_opacity: float = 0.85) -> np.ndarray:
    """One frame: the CT (HU, brain window) in grey with ``overlay`` (uint8) coloured over it → uint8 RGB."""
    level, width = BRAIN_WINDOW
    grey = np.clip((ct_hu.astype(np.float32) - (level - width / 2)) / width, 0, 1) * 255
    base = np.repeat(grey[..., None], 3, axis=-1)
    values = overlay.astype(np.float32)
    alpha = (np.clip(values / 255, 0, 1) * max_opacity)[..., None]
    return np.clip(np.rint(base * (1 - alpha) + _colour(values, stops) * alpha), 0, 255).astype(np.uint8)


def _png(rgb: np.ndarray, max_size: int) -> tuple[bytes, tuple[int, int]]:
    image = Image.fromarray(rgb, mode="RGB")
    scale = min(1.0, max_size / max(image.size))
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BOX)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue(), (size[1], size[0])


def render_thumbnails(
    ct_hu: np.ndarray,
    heatmap: np.ndarray,
    js: np.ndarray,
    frame_scores,
    prefix: str,
    *,
    count: int = 3,
    max_size: int = 160,
) -> dict[str, bytes]:
    """Files (name → bytes) for one stack: the manifest and two PNGs per key frame (names start with ``prefix``)."""
    frames, height, width = ct_hu.shape
    files: dict[str, bytes] = {}
    entries = []
    size = (height, width)
    for f in key_frames(np.asarray(frame_scores), js, count):
        names = {"heatmap": f"{prefix}-key-{f}-heatmap.png", "js": f"{prefix}-key-{f}-js.png"}
        files[names["heatmap"]], size = _png(composite(ct_hu[f], heatmap[f], HEATMAP_STOPS), max_size)
        files[names["js"]], _ = _png(composite(ct_hu[f], js[f], JS_STOPS), max_size)
        entries.append({"frame": int(f), "frameScore": float(frame_scores[f]), **names})
    manifest = {
        "frames": int(frames),
        "height": int(height),
        "width": int(width),
        "thumbnailHeight": int(size[0]),
        "thumbnailWidth": int(size[1]),
        "keyFrames": entries,
    }
    files[f"{prefix}-thumbnails.json"] = json.dumps(manifest).encode()
    return files
