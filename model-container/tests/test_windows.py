import numpy as np
import pytest

from ichal.windows import window_grid, window_starts


@pytest.mark.parametrize(
    "size,crop,stride", [(512, 160, 80), (512, 160, 160), (160, 160, 80), (300, 160, 70), (161, 160, 1)]
)
def test_windows_cover_every_pixel_and_stay_inside(size, crop, stride):
    starts = window_starts(size, crop, stride)
    covered = np.zeros(size, dtype=int)
    for s in starts:
        assert 0 <= s <= size - crop
        covered[s : s + crop] += 1
    assert covered.min() >= 1
    assert starts == sorted(set(starts))


def test_paper_geometry_counts():
    # 512² frames, 160² crops at stride 80: 6 × 6 = 36 crops per frame; ×32 frames = 1,152 (toolchain reference).
    assert len(window_grid(512, 512, 160, 80)) * 32 == 1152
    assert window_starts(512, 160, 80) == [0, 80, 160, 240, 320, 352]
    assert window_starts(512, 160, 160) == [0, 160, 320, 352]


def test_rejects_frames_smaller_than_the_crop():
    with pytest.raises(ValueError, match="shorter than the 160 px crop"):
        window_starts(100)
