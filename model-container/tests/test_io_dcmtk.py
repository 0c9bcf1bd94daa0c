"""DICOM readers against files written by an independent toolkit (OFFIS dcmtk), not by pydicom.

A phantom series is written frame by frame (``ichal.phantoms.frame_datasets``), every frame is
re-encoded by a dcmtk command-line tool into another transfer syntax, the frames are zipped under
random names in a shuffled order and read back with ``ichal.io.read_stacks``:

* Explicit VR Little Endian, Implicit VR Little Endian, Explicit VR Big Endian (retired, still
  read by pydicom), Deflated Explicit VR Little Endian and RLE Lossless must give the phantom's HU
  within the writer's 1-HU quantisation, frames back in slice order;
* JPEG Lossless (Process 14 and its Selection Value 1), JPEG Extended 12-bit and JPEG-LS Lossless
  cannot be decoded here (no pylibjpeg / GDCM; Pillow only does 8-bit JPEG) and must be rejected as
  UNREADABLE_ARCHIVE with a reason that names the transfer syntax UID;
* pydicom's own ``CT_small.dcm`` re-encoded by dcmtk must read with exactly the HU of the original.

Every converted file is checked to carry the intended transfer syntax and dcmtk's implementation
class UID, so a tool that silently copied its input would fail rather than pass vacuously.
The module is skipped where dcmtk is not installed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from ichal.io import (
    LOSSY_COMPRESSION,
    UNREADABLE_ARCHIVE,
    InputLimits,
    InputRejected,
    read_stack,
    read_stacks,
)
from ichal.phantoms import dataset_bytes, frame_datasets, generate_stack

if shutil.which("dcmconv") is None:
    pytest.skip(
        reason="dcmtk (Debian package dcmtk) is not installed; scripts/bootstrap.sh installs it where "
        "apt-get is available",
        allow_module_level=True,
    )

DCMTK_IMPLEMENTATION_ROOT = "1.2.276.0.7230010.3."  # OFFIS dcmtk's ImplementationClassUID prefix
CT_SMALL = get_testdata_file("CT_small.dcm")
THIRD_PARTY = InputLimits(min_frames=1, check_phi=False)
SEED, SIZE, FRAMES = 7, 64, 24

# variant → (dcmtk command, transfer syntax it must produce)
LOSSLESS_READABLE = {
    "explicit-little": (["dcmconv", "+te"], ExplicitVRLittleEndian),
    "implicit-little": (["dcmconv", "+ti"], ImplicitVRLittleEndian),
    "explicit-big": (["dcmconv", "+tb"], ExplicitVRBigEndian),
    "deflated": (["dcmconv", "+td"], DeflatedExplicitVRLittleEndian),
    "rle": (["dcmcrle"], RLELossless),
}
UNDECODABLE = {
    "jpeg-lossless-sv1": (["dcmcjpeg", "+e1"], JPEGLosslessSV1),
    "jpeg-lossless-p14": (["dcmcjpeg", "+el"], JPEGLossless),
    "jpeg-ls-lossless": (["dcmcjpls"], JPEGLSLossless),
}


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(reason=f"dcmtk tool {tool} is not installed (older or partial dcmtk)")


def _convert_one(command: list[str], source: Path, target: Path) -> None:
    done = subprocess.run(
        [*command, str(source), str(target)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if command[1:] == ["+td"] and ("zlib" in message.lower() or "deflate" in message.lower()):
            pytest.skip(reason=f"this dcmtk build cannot write deflated files: {message[:200]}")
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {message[:500]}")
    if command[0] in ("dcmcjpeg", "dcmcjpls"):
        # The JPEG compressor writes a free-text DerivationDescription, which the PS3.15 basic profile
        # removes (X) and the PHI check therefore refuses; these tests are about transfer syntaxes.
        _require("dcmodify")
        erase = ["dcmodify", "--no-backup", "--ignore-missing-tags", "--erase", "(0008,2111)", str(target)]
        done = subprocess.run(erase, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (done.stderr or done.stdout)[:500]


def convert(command: list[str], syntax: UID, sources: list[Path], out_dir: Path) -> list[bytes]:
    """Every source file re-encoded by ``command``; checks the result is dcmtk's, in ``syntax``."""
    _require(command[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / source.name for source in sources]
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        list(pool.map(lambda pair: _convert_one(command, *pair), zip(sources, targets)))
    outputs = []
    for target in targets:
        meta = pydicom.dcmread(target, stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == syntax, f"{command} wrote {meta.TransferSyntaxUID}, not {syntax}"
        assert str(meta.ImplementationClassUID).startswith(DCMTK_IMPLEMENTATION_ROOT)
        outputs.append(target.read_bytes())
    return outputs


def shuffled_zip(frames: list[bytes], seed: int) -> tuple[bytes, list[int]]:
    """The frames under random names in a random order; returns the zip and the frame order in it."""
    rng = np.random.default_rng(seed)
    order = [int(k) for k in rng.permutation(len(frames))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for k in order:
            archive.writestr(f"{int(rng.integers(0, 1 << 48)):012x}.dcm", frames[k])
    return buffer.getvalue(), order


@pytest.fixture(scope="module")
def phantom():
    return generate_stack(SEED, negative=False, size=SIZE, frames=FRAMES)


@pytest.fixture(scope="module")
def phantom_files(phantom, tmp_path_factory):
    """The phantom written by pydicom, one Explicit VR Little Endian file per frame, per encoding."""
    root = tmp_path_factory.mktemp("pydicom-frames")
    files: dict[str, list[Path]] = {}
    for encoding in ("uint12", "int16"):
        (root / encoding).mkdir()
        files[encoding] = []
        for k, ds in enumerate(frame_datasets(phantom, encoding=encoding)):
            path = root / encoding / f"frame{k:03d}.dcm"
            path.write_bytes(dataset_bytes(ds))
            files[encoding].append(path)
    return files


@pytest.mark.parametrize("encoding", ["uint12", "int16"])
@pytest.mark.parametrize("variant", sorted(LOSSLESS_READABLE))
def test_dcmtk_lossless_variants_read_as_the_phantom(variant, encoding, phantom, phantom_files, tmp_path):
    command, syntax = LOSSLESS_READABLE[variant]
    frames = convert(command, syntax, phantom_files[encoding], tmp_path / variant)
    data, order = shuffled_zip(frames, SEED)
    assert order != sorted(order)  # the archive really is shuffled

    stacks = read_stacks(data)
    assert len(stacks) == 1
    read = stacks[0]
    assert read.shape == phantom.hu.shape and read.hu.dtype == np.float32
    assert float(np.max(np.abs(read.hu - phantom.hu))) <= 0.5 + 1e-4  # 1-HU quantisation
    low, high = (-1024, 3071) if encoding == "uint12" else (-32768 - 1024, 32767 - 1024)
    expected = np.clip(np.rint(phantom.hu.astype(np.float64)), low, high).astype(np.float32)
    np.testing.assert_array_equal(read.hu, expected)  # exactly the writer's rounding and clipping
    np.testing.assert_allclose(read.positions, phantom.positions, atol=1e-5)  # slice order restored
    np.testing.assert_allclose(read.pixel_spacing, phantom.pixel_spacing, rtol=1e-6)
    assert read.slice_spacing == pytest.approx(5.0)


@pytest.mark.parametrize("variant", sorted(UNDECODABLE))
def test_dcmtk_jpeg_variants_are_rejected_naming_the_transfer_syntax(variant, phantom_files, tmp_path):
    command, syntax = UNDECODABLE[variant]
    frames = convert(command, syntax, phantom_files["uint12"], tmp_path / variant)
    data, _order = shuffled_zip(frames, SEED)
    with pytest.raises(InputRejected) as caught:
        read_stacks(data)
    assert caught.value.code == UNREADABLE_ARCHIVE
    assert caught.value.reason == f"pixel data in transfer syntax {syntax} cannot be decoded here"


LOSSY = {
    "jpeg-baseline-8bit": (["dcmcjpeg", "+eb"], JPEGBaseline8Bit),
    "jpeg-extended-12bit": (["dcmcjpeg", "+ee"], JPEGExtended12Bit),
}


@pytest.mark.parametrize("variant", sorted(LOSSY))
def test_dcmtk_lossy_jpeg_is_refused_before_decoding(variant, phantom_files, tmp_path):
    """Pillow (installed with scikit-image) can decode 8-bit JPEG Baseline: without this check the
    reader would accept dcmtk's lossy re-encoding, whose HU are off by ~20 HU (median) in brain."""
    command, syntax = LOSSY[variant]
    frames = convert(command, syntax, phantom_files["uint12"], tmp_path / variant)
    data, _order = shuffled_zip(frames, SEED)
    with pytest.raises(InputRejected) as caught:
        read_stacks(data)
    assert caught.value.code == LOSSY_COMPRESSION
    assert caught.value.reason == f"a CT image was lossy-compressed (transfer syntax {syntax})"


CT_SMALL_VARIANTS = {
    "implicit-little": LOSSLESS_READABLE["implicit-little"],
    "explicit-big": LOSSLESS_READABLE["explicit-big"],
    "deflated": LOSSLESS_READABLE["deflated"],
    "rle": LOSSLESS_READABLE["rle"],
}


@pytest.mark.parametrize("variant", sorted(CT_SMALL_VARIANTS))
def test_ct_small_converted_by_dcmtk_reads_with_identical_hu(variant, tmp_path):
    command, syntax = CT_SMALL_VARIANTS[variant]
    source = tmp_path / "CT_small.dcm"
    shutil.copyfile(CT_SMALL, source)
    (converted,) = convert(command, syntax, [source], tmp_path / variant)

    original = read_stack(CT_SMALL, limits=THIRD_PARTY)
    read = read_stack(converted, limits=THIRD_PARTY)
    np.testing.assert_array_equal(read.hu, original.hu)
    raw = pydicom.dcmread(CT_SMALL)
    stored = np.frombuffer(raw.PixelData, dtype="<i2").reshape(raw.Rows, raw.Columns)
    expected = stored.astype(np.float64) * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    np.testing.assert_array_equal(read.hu[0], expected.astype(np.float32))  # independent of the reader
    assert read.pixel_spacing == original.pixel_spacing
    assert read.positions == original.positions
    assert read.series_uid == original.series_uid
