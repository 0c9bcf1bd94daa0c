import io
import logging
import zipfile

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.uid import ImplicitVRLittleEndian

from ichal.io import PHI_ATTRIBUTES, PHI_PRESENT, InputLimits, InputRejected, find_phi, read_stacks
from ichal.phantoms import dataset_bytes, frame_datasets, generate_stack, write_dicom_zip

PLANTED = "Qzxv^PLANTED-7f3a9c"

REQUIRED = set(
    "PatientName PatientID PatientBirthDate OtherPatientIDs PatientAddress PatientTelephoneNumbers "
    "InstitutionName InstitutionAddress AccessionNumber ReferringPhysicianName PerformingPhysicianName "
    "OperatorsName PhysiciansOfRecord StudyDate SeriesDate AcquisitionDate ContentDate StudyID "
    "DeviceSerialNumber".split()
)


@pytest.fixture(scope="module")
def stack():
    return generate_stack(21, negative=False, size=32, frames=20)


def zipped(stack, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(stack, buffer, **kwargs)
    return buffer.getvalue()


def test_the_list_covers_the_required_attributes_and_every_keyword_is_real():
    assert REQUIRED <= set(PHI_ATTRIBUTES)
    assert len(set(PHI_ATTRIBUTES)) == len(PHI_ATTRIBUTES)
    assert all(tag_for_keyword(keyword) is not None for keyword in PHI_ATTRIBUTES)


def test_phantom_headers_carry_no_identifier(stack):
    # Type 2 attributes are present but empty: present-and-empty is not PHI.
    ds = frame_datasets(stack)[0]
    assert "PatientName" in ds and str(ds.PatientName) == ""
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    assert find_phi(pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))) == []
    assert len(read_stacks(zipped(stack))) == 1


def test_planted_name_is_rejected_and_never_repeated(stack, caplog, recwarn, capsys):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InputRejected) as caught:
        read_stacks(zipped(stack, extra_tags={"PatientName": PLANTED}), name="upload.zip")
    error = caught.value
    assert error.code == PHI_PRESENT and "PatientName" in error.reason
    surfaces = [str(error), repr(error), error.reason, repr(error.args), repr(error.as_record())]
    surfaces += [caplog.text, "".join(str(w.message) for w in recwarn.list)]
    captured = capsys.readouterr()
    surfaces += [captured.out, captured.err]
    for text in surfaces:
        assert PLANTED not in text and "PLANTED" not in text
    assert error.__cause__ is None


@pytest.mark.parametrize(
    "keyword,value",
    [
        ("PatientID", "MRN-00424242"),
        ("PatientBirthDate", "19610704"),
        ("OtherPatientIDs", "ALT-77"),
        ("PatientAddress", "12 Example Road"),
        ("PatientTelephoneNumbers", "555-0199"),
        ("InstitutionName", "Example General Hospital"),
        ("InstitutionAddress", "1 Hospital Way"),
        ("AccessionNumber", "ACC99887"),
        ("ReferringPhysicianName", "Doe^Jane"),
        ("PerformingPhysicianName", "Roe^Rick"),
        ("OperatorsName", "Tech^Tom"),
        ("PhysiciansOfRecord", "Poe^Pat"),
        ("StudyDate", "20240102"),
        ("SeriesDate", "20240102"),
        ("AcquisitionDate", "20240102"),
        ("ContentDate", "20240102"),
        ("StudyID", "S-4411"),
        ("DeviceSerialNumber", "SN-123456"),
        ("StationName", "CTROOM3"),
    ],
)
def test_each_identifying_attribute_is_caught(stack, keyword, value):
    with pytest.raises(InputRejected) as caught:
        read_stacks(zipped(stack, extra_tags={keyword: value}))
    assert caught.value.code == PHI_PRESENT
    assert keyword in caught.value.reason
    assert value not in str(caught.value)


def test_identifiers_nested_in_sequences_and_on_non_image_objects(stack):
    item = Dataset()
    item.AccessionNumber = "NESTED-ACC-1"
    files = [(f"{k}.dcm", dataset_bytes(ds)) for k, ds in enumerate(frame_datasets(stack))]
    nested = frame_datasets(stack, extra_tags={"RequestAttributesSequence": [item]})
    files[0] = ("0.dcm", dataset_bytes(nested[0]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    with pytest.raises(InputRejected) as caught:
        read_stacks(buffer.getvalue())
    assert caught.value.code == PHI_PRESENT and "AccessionNumber" in caught.value.reason
    assert "NESTED-ACC-1" not in str(caught.value)

    # A non-image object (no pixel data, e.g. a report) riding along is checked too.
    report = frame_datasets(stack)[0]
    del report.PixelData
    report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    report.Modality = "SR"
    report.OperatorsName = "Hidden^Operator"
    with zipfile.ZipFile(buffer := io.BytesIO(), "w") as archive:
        for name, data in files[1:]:
            archive.writestr(name, data)
        archive.writestr("report.dcm", dataset_bytes(report))
    with pytest.raises(InputRejected) as caught:
        read_stacks(buffer.getvalue())
    assert caught.value.code == PHI_PRESENT and "OperatorsName" in caught.value.reason


def test_implicit_vr_files_are_checked_too(stack):
    ds = frame_datasets(stack, extra_tags={"PatientName": PLANTED})[0]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    parsed = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert find_phi(parsed) == ["PatientName"]


def test_burned_in_annotation_counts_as_phi(stack):
    with pytest.raises(InputRejected) as caught:
        read_stacks(zipped(stack, extra_tags={"BurnedInAnnotation": "YES"}))
    assert caught.value.code == PHI_PRESENT and "BurnedInAnnotation" in caught.value.reason


def test_ct_small_is_identified_and_its_values_never_leak():
    path = get_testdata_file("CT_small.dcm")
    with pytest.raises(InputRejected) as caught:
        read_stacks(path, limits=InputLimits(min_frames=1))
    error = caught.value
    assert error.code == PHI_PRESENT
    expected = "PatientName PatientID OtherPatientIDsSequence InstitutionName StudyDate StudyID".split()
    for keyword in expected:
        assert keyword in error.reason
    for value in ("CompressedSamples", "1CT1", "ABCD1234", "1234ABCD", "JFK IMAGING", "20040119", "CT01_OC0"):
        assert value not in str(error)
    # Empty Type 2 attributes (AccessionNumber, ReferringPhysicianName, PatientBirthDate) are not reported.
    assert "AccessionNumber" not in error.reason and "PatientBirthDate" not in error.reason
    assert len(read_stacks(path, limits=InputLimits(min_frames=1, check_phi=False))) == 1
