"""Key-frame thumbnails rendered at scoring time (ichal.thumbnails): frame choice against a brute-force
ordering, the composite against its formula at chosen pixels, the PNGs read back by Pillow."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
from PIL import Image

from ichal.thumbnails import HEATMAP_STOPS, JS_STOPS, composite, key_frames, render_thumbnails


def test_key_frames_are_the_highest_scores_with_js_then_index_breaking_ties():
    rng = np.random.default_rng(3)
    for _ in range(300):
        frames = int(rng.integers(1, 9))
        scores = rng.choice([0.1, 0.5, 0.9], size=frames)
        js = rng.integers(0, 3, size=(frames, 2, 2)).astype(np.uint8)
        count = int(rng.integers(1, 4))
        sums = js.reshape(frames, -1).sum(axis=1)
        chosen = key_frames(scores, js, count)
        assert chosen == sorted(set(chosen)) and len(chosen) == min(count, frames)
        # Every chosen frame ranks before every frame left out (score, then JS sum, then lower index).
        rank = {f: (-scores[f], -int(sums[f]), f) for f in range(frames)}
        for f, g in itertools.product(chosen, set(range(frames)) - set(chosen)):
            assert rank[f] < rank[g], (scores, sums, chosen)


def test_composite_is_the_windowed_ct_where_the_map_is_zero_and_the_stop_colour_blend_where_it_is_full():
    ct = np.array([[0, 40, 80], [-100, 200, 60]], dtype=np.int16)
    overlay = np.array([[0, 0, 0], [255, 255, 0]], dtype=np.uint8)
    rgb = composite(ct, overlay, HEATMAP_STOPS, max_opacity=0.85)
    grey = np.clip((ct.astype(float) - 0) / 80, 0, 1) * 255
    np.testing.assert_array_equal(rgb[0, :, 0], np.rint(grey[0]).astype(np.uint8))
    assert (rgb[0] == rgb[0, :, :1]).all()  # grey: r = g = b
    top = np.array(HEATMAP_STOPS[-1][1:], dtype=float)
    for x in (0, 1):
        expected = np.rint(grey[1, x] * 0.15 + top * 0.85)
        np.testing.assert_array_equal(rgb[1, x], expected.astype(np.uint8))


def test_render_writes_a_manifest_and_two_pngs_per_key_frame_at_most_160_pixels():
    rng = np.random.default_rng(0)
    ct = rng.integers(-50, 120, size=(6, 300, 200)).astype(np.int16)
    heat = np.zeros((6, 300, 200), np.uint8)
    heat[4, 100:150, 50:90] = 230
    js = (heat // 2).astype(np.uint8)
    scores = [0.1, 0.2, 0.05, 0.3, 0.95, 0.3]
    files = render_thumbnails(ct, heat, js, scores, "stack-0")
    manifest = json.loads(files["stack-0-thumbnails.json"])
    assert [k["frame"] for k in manifest["keyFrames"]] == [3, 4, 5]
    assert manifest["frames"] == 6 and (manifest["height"], manifest["width"]) == (300, 200)
    assert (manifest["thumbnailHeight"], manifest["thumbnailWidth"]) == (160, 107)
    for key in manifest["keyFrames"]:
        for name in (key["heatmap"], key["js"]):
            image = Image.open(io.BytesIO(files[name]))
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (107, 160)
            assert not image.text  # no text chunks
    assert len(files) == 1 + 2 * 3
    # The bleed shows on frame 4's heatmap thumbnail (reds and ambers), not on frame 3's.
    hot = np.asarray(Image.open(io.BytesIO(files["stack-0-key-4-heatmap.png"]))).astype(int)
    cold = np.asarray(Image.open(io.BytesIO(files["stack-0-key-3-heatmap.png"]))).astype(int)
    assert (hot[..., 0] - hot[..., 2]).max() > 50 and (cold[..., 0] - cold[..., 2]).max() < 5
    assert JS_STOPS[-1][0] == 255
