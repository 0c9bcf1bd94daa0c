import numpy as np
import pytest

from ichal.preprocessing import (
    AIR_HU,
    MODEL_SIZE,
    WINDOWS,
    from_model_grid,
    mask_to_model_grid,
    plan_model_grid,
    prepare_model_input,
    to_model_grid,
    window_channels,
)


def test_windows_are_the_documented_numbers():
    assert MODEL_SIZE == 512
    assert [(w.name, w.level, w.width) for w in WINDOWS] == [
        ("brain", 40.0, 80.0),
        ("subdural", 80.0, 200.0),
        ("bone", 600.0, 2800.0),
    ]
    assert [(w.low, w.high) for w in WINDOWS] == [(0.0, 80.0), (-20.0, 180.0), (-800.0, 2000.0)]


def test_window_channels_match_hand_computed_values():
    values = [-1024.0, -20.0, 0.0, 20.0, 40.0, 80.0, 100.0, 180.0, 600.0, 2000.0, 3071.0]
    hu = np.array(values, dtype=np.float32)
    out = window_channels(hu.reshape(1, 1, -1))
    assert out.shape == (1, 3, 1, hu.size) and out.dtype == np.float32
    # brain: (hu − 0) / 80, clipped
    brain = [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # subdural: (hu + 20) / 200, clipped
    subdural = [0.0, 0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 1.0, 1.0, 1.0, 1.0]
    # bone: (hu + 800) / 2800, clipped
    bone = [0.0, 0.2785714, 0.2857143, 0.2928571, 0.3, 0.3142857, 0.3214286, 0.35, 0.5, 1.0, 1.0]
    np.testing.assert_allclose(out[0, 0, 0], brain, atol=1e-6)
    np.testing.assert_allclose(out[0, 1, 0], subdural, atol=1e-6)
    np.testing.assert_allclose(out[0, 2, 0], bone, atol=1e-6)


def test_window_channels_rejects_non_volumes():
    with pytest.raises(ValueError, match="frames, H, W"):
        window_channels(np.zeros((4, 4)))


def test_full_size_frame_in_band_is_unchanged():
    rng = np.random.default_rng(0)
    hu = rng.normal(30, 10, size=(2, 512, 512)).astype(np.float32)
    grid, transform = to_model_grid(hu, (0.45, 0.45))
    assert not transform.resampled and transform.pad == (0, 0, 0, 0)
    np.testing.assert_array_equal(grid, hu)
    # A 512 frame with a body field of view (0.98 mm) would need more than 512 px at 0.48 mm:
    # the fit-to-512 rule brings the zoom back to exactly 1.
    grid, transform = to_model_grid(hu, (0.98, 0.98))
    assert not transform.resampled
    np.testing.assert_array_equal(grid, hu)


def test_small_frames_are_padded_centred_with_air():
    hu = np.full((1, 400, 461), 35.0, dtype=np.float32)
    grid, transform = to_model_grid(hu, (0.5, 0.5))
    assert grid.shape == (1, 512, 512)
    assert transform.pad == (56, 56, 25, 26)
    np.testing.assert_array_equal(grid[0, 56:456, 25:486], hu[0])
    assert np.all(grid[0, :56] == AIR_HU) and np.all(grid[0, :, 486:] == AIR_HU)
    assert transform.output_spacing == (0.5, 0.5)


def test_coarse_frames_are_resampled_to_the_target_spacing():
    transform = plan_model_grid((256, 256), (0.96, 0.96))
    assert transform.zoom == (2.0, 2.0)
    assert transform.resampled_shape == (512, 512)
    assert transform.output_spacing == (0.48, 0.48)
    transform = plan_model_grid((256, 256), (0.9, 0.9))
    assert transform.resampled_shape == (480, 480) and transform.pad == (16, 16, 16, 16)


def test_oversized_frames_shrink_to_fit_keeping_aspect():
    transform = plan_model_grid((600, 600), (0.45, 0.45))
    assert transform.resampled_shape == (512, 512)
    assert transform.output_spacing[0] == pytest.approx(0.45 * 600 / 512)
    anisotropic = plan_model_grid((300, 300), (0.9, 0.45))
    # rows: 0.9 mm is outside the band → zoom 1.875 (562.5 px) → scaled to 512;
    # columns follow by the same factor.
    assert anisotropic.resampled_shape == (512, round(300 * 512 / 562.5))
    assert anisotropic.zoom[0] / anisotropic.zoom[1] == pytest.approx(1.875)


def test_masks_follow_the_hu_transform():
    yy, xx = np.mgrid[:256, :256]
    disc = (yy - 100.0) ** 2 + (xx - 150.0) ** 2 < 20.0**2
    hu = np.where(disc, 70.0, 30.0).astype(np.float32)[None]
    grid, transform = to_model_grid(hu, (0.9, 0.9))
    mask = mask_to_model_grid(disc[None], transform)
    assert mask.dtype == np.bool_ and mask.shape == (1, 512, 512)
    zoom, top = transform.zoom[0], transform.pad[0]
    rows, cols = np.nonzero(mask[0])
    # Pixel-centre mapping: source centre c → (c + 0.5)·zoom − 0.5 + pad.
    assert rows.mean() == pytest.approx((100 + 0.5) * zoom - 0.5 + top, abs=0.5)
    assert cols.mean() == pytest.approx((150 + 0.5) * zoom - 0.5 + transform.pad[2], abs=0.5)
    assert mask.sum() == pytest.approx(disc.sum() * zoom**2, rel=0.03)
    # The mask marks the same voxels the HU grid shows as lesion (bilinear edges aside).
    assert np.mean(grid[mask] > 50.0) > 0.95
    labels = np.where(disc, 4, 0).astype(np.uint8)[None]
    mapped = mask_to_model_grid(labels, transform)
    assert set(np.unique(mapped)) <= {0, 4}


def test_from_model_grid_inverts_exactly_for_nearest_neighbour():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=(2, 256, 256)).astype(np.uint8)
    transform = plan_model_grid((256, 256), (0.96, 0.96))
    back = from_model_grid(mask_to_model_grid(labels, transform), transform)
    np.testing.assert_array_equal(back, labels)
    padded = plan_model_grid((300, 320), (0.5, 0.5))
    src = rng.integers(0, 2, size=(1, 300, 320)).astype(bool)
    np.testing.assert_array_equal(from_model_grid(mask_to_model_grid(src, padded), padded), src)


def test_prepare_model_input_shape_and_range():
    hu = np.linspace(-1024, 2000, 3 * 100 * 120, dtype=np.float32).reshape(3, 100, 120)
    x, transform = prepare_model_input(hu, (0.5, 0.5))
    assert x.shape == (3, 3, 512, 512) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert transform.output_shape == (512, 512)
