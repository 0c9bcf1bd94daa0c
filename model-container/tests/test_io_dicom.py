import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLossless, RLELossless, SecondaryCaptureImageStorage, generate_uid

from ichal.io import (
    CORRUPT_DICOM,
    INCONSISTENT_GEOMETRY,
    TOO_FEW_FRAMES,
    UNREADABLE_ARCHIVE,
    WRONG_MODALITY,
    InputLimits,
    InputRejected,
    read_stack,
    read_stacks,
)
from ichal.phantoms import dataset_bytes, frame_datasets, generate_stack, nifti_affine, write_dicom_zip

CT_SMALL = get_testdata_file("CT_small.dcm")
THIRD_PARTY = InputLimits(min_frames=1, check_phi=False)


def phantom(seed: int = 1, frames: int = 24, size: int = 48):
    return generate_stack(seed, negative=False, size=size, frames=frames)


def zip_of(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def dicom_zip(stack, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(stack, buffer, **kwargs)
    return buffer.getvalue()


def files_of(datasets) -> list[tuple[str, bytes]]:
    return [(f"f{k:03d}.dcm", dataset_bytes(ds)) for k, ds in enumerate(datasets)]


def rejection(source, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        read_stacks(source, **kwargs)
    return caught.value


# --- reading against independent truth -------------------------------------------------------------


def test_ct_small_hu_equal_stored_values_times_slope_plus_intercept():
    raw = pydicom.dcmread(CT_SMALL)
    stored = np.frombuffer(raw.PixelData, dtype="<i2").reshape(raw.Rows, raw.Columns)  # signed 16-bit
    expected = stored.astype(np.float64) * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    stack = read_stack(CT_SMALL, limits=THIRD_PARTY)
    assert stack.shape == (1, 128, 128) and stack.hu.dtype == np.float32
    np.testing.assert_array_equal(stack.hu[0], expected.astype(np.float32))
    assert stack.pixel_spacing == (0.661468, 0.661468)
    assert stack.positions == pytest.approx((-75.699997,))
    assert stack.series_uid == raw.SeriesInstanceUID
    assert stack.slice_spacing is None


def _ct_small_series(count: int, slopes=None) -> tuple[list[pydicom.Dataset], list[np.ndarray]]:
    """``count`` copies of CT_small at 2.5 mm steps, PHI removed, each with its own rescale and pixels."""
    series = generate_uid()
    rng = np.random.default_rng(0)
    datasets, expected = [], []
    base = pydicom.dcmread(CT_SMALL)
    stored0 = np.frombuffer(base.PixelData, dtype="<i2").reshape(128, 128)
    for k in range(count):
        ds = pydicom.dcmread(CT_SMALL)
        for keyword in (
            "PatientName",
            "PatientID",
            "OtherPatientIDsSequence",
            "InstitutionName",
            "StudyDate",
            "SeriesDate",
            "AcquisitionDate",
            "ContentDate",
            "InstanceCreationDate",
            "StudyID",
            "StationName",
            "InstanceCreationTime",
            "StudyTime",
            "SeriesTime",
            "AcquisitionTime",
            "ContentTime",
            "TimezoneOffsetFromUTC",
            "StudyDescription",
            "ContrastBolusAgent",
            "ImageComments",
            "DataSetTrailingPadding",
        ):
            if keyword in ds:
                delattr(ds, keyword)
        ds.remove_private_tags()
        stored = (stored0 + rng.integers(-5, 6, size=stored0.shape)).astype("<i2")
        ds.PixelData = stored.tobytes()
        slope = 1.0 if slopes is None else slopes[k]
        ds.RescaleSlope = str(slope)
        ds.RescaleIntercept = "-1024"
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [-158.135803, -179.035797, -75.699997 + 2.5 * k]
        datasets.append(ds)
        expected.append(stored.astype(np.float64) * slope - 1024.0)
    return datasets, expected


def test_series_built_from_ct_small_with_varying_rescale():
    slopes = [1.0, 0.5, 2.0] * 7
    datasets, expected = _ct_small_series(21, slopes)
    order = np.random.default_rng(3).permutation(21)
    data = zip_of([(f"x{i}", dataset_bytes(datasets[i])) for i in order])  # names without extension
    stack = read_stack(data, limits=InputLimits(check_phi=True))
    np.testing.assert_allclose(stack.hu, np.stack(expected).astype(np.float32))
    assert stack.slice_spacing == pytest.approx(2.5)
    np.testing.assert_allclose(np.diff(stack.positions), 2.5, atol=1e-5)


@pytest.mark.parametrize("encoding", ["uint12", "int16"])
def test_phantom_round_trip_through_a_shuffled_zip(encoding):
    stack = phantom(2, frames=25)
    data = dicom_zip(stack, encoding=encoding)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        z_in_zip_order = [
            float(pydicom.dcmread(io.BytesIO(archive.read(name))).ImagePositionPatient[2])
            for name in archive.namelist()
        ]
    assert z_in_zip_order != sorted(z_in_zip_order)  # the archive really is shuffled
    read = read_stack(data)
    assert read.shape == stack.hu.shape
    assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4  # 1-HU quantisation
    np.testing.assert_allclose(read.positions, stack.positions, atol=1e-5)
    np.testing.assert_allclose(read.pixel_spacing, stack.pixel_spacing, rtol=1e-6)
    assert read.slice_spacing == pytest.approx(5.0)


def test_directory_with_junk_files_reads_the_same(tmp_path: Path):
    stack = phantom(3)
    series = write_dicom_zip(stack, tmp_path / "study.zip")
    target = tmp_path / "study"
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        archive.extractall(target / "nested")
    (target / "README.txt").write_text("not dicom")
    (target / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    read = read_stack(target)
    assert read.series_uid == series
    assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4


def test_one_stack_per_series_in_a_study():
    first, second = phantom(4, frames=24), phantom(5, frames=26)
    files = files_of(frame_datasets(first, series_uid="1.2.3.1")) + files_of(
        frame_datasets(second, series_uid="1.2.3.2", extra_tags={"SeriesNumber": 2})
    )
    files = [(f"s/{i}.dcm", data) for i, (_, data) in enumerate(files)]
    np.random.default_rng(0).shuffle(files)
    stacks = read_stacks(zip_of(files))
    assert [s.series_uid for s in stacks] == ["1.2.3.1", "1.2.3.2"]
    assert float(np.max(np.abs(stacks[0].hu - first.hu))) <= 0.5 + 1e-4
    assert float(np.max(np.abs(stacks[1].hu - second.hu))) <= 0.5 + 1e-4
    with pytest.raises(ValueError, match="2 series"):
        read_stack(zip_of(files))


def _rewrite(stack, transform):
    """Datasets whose pixels and orientation are re-expressed by ``transform(k, ds, pixels)``."""

    def mutate(k, ds):
        pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
        transform(k, ds, pixels)

    return files_of(frame_datasets(stack, mutate=mutate))


def test_flipped_and_transposed_orientations_are_canonicalised():
    stack = phantom(6, frames=22, size=40)
    rows, cols = stack.hu.shape[1:]
    x0, y0 = stack.origin
    row_mm, col_mm = stack.pixel_spacing

    def mirror_columns(k, ds, pixels):
        ds.PixelData = np.ascontiguousarray(pixels[:, ::-1]).tobytes()
        ds.ImageOrientationPatient = [-1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [x0 + (cols - 1) * col_mm, y0, float(stack.positions[k])]

    def mirror_rows_reverse_normal(k, ds, pixels):
        ds.PixelData = np.ascontiguousarray(pixels[::-1, :]).tobytes()
        ds.ImageOrientationPatient = [1, 0, 0, 0, -1, 0]
        ds.ImagePositionPatient = [x0, y0 + (rows - 1) * row_mm, float(stack.positions[k])]

    def transpose(k, ds, pixels):
        ds.PixelData = np.ascontiguousarray(pixels.T).tobytes()
        ds.ImageOrientationPatient = [0, 1, 0, 1, 0, 0]

    for transform in (mirror_columns, mirror_rows_reverse_normal, transpose):
        read = read_stack(zip_of(_rewrite(stack, transform)))
        assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4, transform.__name__
        np.testing.assert_allclose(read.positions, stack.positions, atol=1e-5)
        # The canonical grid sits where the writer put the phantom, whatever the stored orientation.
        np.testing.assert_allclose(read.affine, nifti_affine(stack), atol=1e-4, err_msg=transform.__name__)


def test_gantry_tilt_within_the_limit_is_accepted_and_beyond_it_rejected():
    stack = phantom(7, frames=22, size=40)

    def tilted(degrees):
        t = math.radians(degrees)
        normal = np.array([0.0, -math.sin(t), math.cos(t)])

        def transform(k, ds, pixels):
            ds.ImageOrientationPatient = [1, 0, 0, 0, math.cos(t), math.sin(t)]
            origin = np.array([stack.origin[0], stack.origin[1], 0.0]) + 5.0 * k * normal
            ds.ImagePositionPatient = [float(v) for v in origin]

        return zip_of(_rewrite(stack, transform))

    read = read_stack(tilted(15))
    np.testing.assert_allclose(read.hu, np.rint(stack.hu), atol=0.5 + 1e-4)
    assert read.slice_spacing == pytest.approx(5.0, rel=1e-4)
    error = rejection(tilted(45))
    assert error.code == INCONSISTENT_GEOMETRY and "not axial" in error.reason


def test_localizers_and_secondary_captures_are_skipped():
    stack = phantom(8)
    files = files_of(frame_datasets(stack))
    scout = frame_datasets(
        phantom(9, frames=1), extra_tags={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}
    )
    screen = frame_datasets(phantom(10, frames=1), extra_tags={"SOPClassUID": SecondaryCaptureImageStorage})
    extras = [("scout.dcm", dataset_bytes(scout[0])), ("dose.dcm", dataset_bytes(screen[0]))]
    read = read_stacks(zip_of(files + extras))
    assert len(read) == 1 and read[0].frames == stack.frames


def test_rle_compressed_series_is_decoded():
    stack = phantom(11, frames=20, size=32)
    datasets = frame_datasets(stack)
    for ds in datasets:
        ds.compress(RLELossless)
    read = read_stack(zip_of(files_of(datasets)))
    assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4


def test_skip_invalid_series_keeps_the_good_one():
    good, short = phantom(12, frames=24), phantom(13, frames=5)
    files = files_of(frame_datasets(good, series_uid="1.2.9.1")) + files_of(
        frame_datasets(short, series_uid="1.2.9.2", extra_tags={"SeriesNumber": 2})
    )
    files = [(f"{i}.dcm", d) for i, (_, d) in enumerate(files)]
    assert rejection(zip_of(files)).code == TOO_FEW_FRAMES
    stacks = read_stacks(zip_of(files), limits=InputLimits(skip_invalid_series=True))
    assert [s.series_uid for s in stacks] == ["1.2.9.1"]
    only_short = files[24:]
    assert rejection(zip_of(only_short), limits=InputLimits(skip_invalid_series=True)).code == TOO_FEW_FRAMES


# --- rejections --------------------------------------------------------------------------------------


def test_wrong_modality():
    error = rejection(dicom_zip(phantom(), extra_tags={"Modality": "MR"}))
    assert error.code == WRONG_MODALITY and "MR" in error.reason


def test_no_ct_image_at_all_is_wrong_modality():
    scouts = frame_datasets(phantom(frames=2), extra_tags={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    assert rejection(zip_of(files_of(scouts))).code == WRONG_MODALITY


def test_too_few_frames_default_and_configured():
    error = rejection(dicom_zip(generate_stack(1, size=32, frames=10)))
    assert error.code == TOO_FEW_FRAMES and "10 frames" in error.reason and "20" in error.reason
    assert rejection(dicom_zip(phantom(frames=24)), limits=InputLimits(min_frames=30)).code == TOO_FEW_FRAMES


def _one_frame_changed(change):
    def mutate(k, ds):
        if k == 7:
            change(ds)

    return files_of(frame_datasets(phantom(14), mutate=mutate))


def _resize(ds):
    ds.Rows, ds.Columns = 32, 32
    ds.PixelData = np.zeros((32, 32), "<u2").tobytes()


def _drop(keyword):
    return lambda ds: delattr(ds, keyword)


def _move(dx=0.0, dz=0.0):
    def change(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x + dx, y, z + dz]

    return change


GEOMETRY_CASES = {
    "mixed rows/columns": _resize,
    "mixed pixel spacing": lambda ds: setattr(ds, "PixelSpacing", ["0.7", "0.7"]),
    "mixed orientation": lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0.8, 0.6]),
    "uneven gap": _move(dz=2.0),
    "duplicate position": _move(dz=-5.0),
    "shifted in-plane": _move(dx=20.0),
    "missing position": _drop("ImagePositionPatient"),
    "missing spacing": _drop("PixelSpacing"),
    "not orthonormal": lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 1, 0, 0]),
}


@pytest.mark.parametrize("case", sorted(GEOMETRY_CASES))
def test_inconsistent_geometry(case):
    if case == "not orthonormal":  # on every frame, so that it is not merely a mixed orientation
        degenerate = {"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}
        files = files_of(frame_datasets(phantom(14), extra_tags=degenerate))
    else:
        files = _one_frame_changed(GEOMETRY_CASES[case])
    assert rejection(zip_of(files)).code == INCONSISTENT_GEOMETRY


def test_missing_frame_is_an_uneven_gap():
    files = files_of(frame_datasets(phantom(15)))
    del files[10]
    error = rejection(zip_of(files))
    assert error.code == INCONSISTENT_GEOMETRY and "uneven" in error.reason


def test_sagittal_series_is_not_axial():
    files = files_of(frame_datasets(phantom(16), extra_tags={"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}))
    assert rejection(zip_of(files)).code == INCONSISTENT_GEOMETRY


def test_truncated_files_are_corrupt():
    files = files_of(frame_datasets(phantom(17)))
    name, data = files[3]
    cut_in_pixels = files[:3] + [(name, data[: len(data) - 500])] + files[4:]
    error = rejection(zip_of(cut_in_pixels))
    assert error.code == CORRUPT_DICOM and "pixel data" in error.reason
    cut_in_header = files[:3] + [(name, data[:600])] + files[4:]
    assert rejection(zip_of(cut_in_header)).code == CORRUPT_DICOM
    cut_at_start = files[:3] + [(name, data[:100])] + files[4:]
    assert rejection(zip_of(cut_at_start)).code == CORRUPT_DICOM


def test_pixel_length_not_matching_rows_columns_bits_is_corrupt():
    files = _one_frame_changed(lambda ds: setattr(ds, "BitsAllocated", 8))
    assert rejection(zip_of(files)).code == CORRUPT_DICOM
    files = _one_frame_changed(lambda ds: setattr(ds, "PixelData", ds.PixelData[:-64]))
    assert rejection(zip_of(files)).code == CORRUPT_DICOM


def test_garbage_named_dcm_and_missing_rescale_are_corrupt():
    files = files_of(frame_datasets(phantom(18)))
    assert rejection(zip_of(files + [("junk.dcm", b"\x07" * 4000)])).code == CORRUPT_DICOM
    files = _one_frame_changed(_drop("RescaleIntercept"))
    assert rejection(zip_of(files)).code == CORRUPT_DICOM


def test_undecodable_compressed_pixels_are_unreadable():
    datasets = frame_datasets(phantom(19, frames=20, size=32))
    for ds in datasets:
        ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg stream \xff\xd9"])
        ds.file_meta.TransferSyntaxUID = JPEGLossless
    error = rejection(zip_of(files_of(datasets)))
    assert error.code == UNREADABLE_ARCHIVE and JPEGLossless in error.reason


def test_multiframe_objects_are_not_supported():
    files = _one_frame_changed(lambda ds: setattr(ds, "NumberOfFrames", 2))
    assert rejection(zip_of(files)).code == UNREADABLE_ARCHIVE
