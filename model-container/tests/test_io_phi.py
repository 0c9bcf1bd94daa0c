"""The de-identification gate (ichal.io.phi): the whole PS3.15 Table E.1-1, nested sequences, private
elements, BurnedInAnnotation and NIfTI header text; reasons name attributes, never their values."""

import io
import logging
import subprocess
import sys
import zipfile

import nibabel as nib
import pydicom
import pytest
from nibabel.nifti1 import Nifti1Extension
from pydicom.data import get_testdata_file
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from ichal.io import DEID_PROFILE, PHI_PRESENT, InputLimits, InputRejected, find_phi, phi, read_stacks
from ichal.phantoms import dataset_bytes, frame_datasets, generate_stack, write_dicom_zip, write_nifti

PLANTED = "Qzxv^PLANTED-7f3a9c"
CREATOR = "ACME_CT_1.0"

REQUIRED = {
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "InstitutionName",
    "InstitutionAddress",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "PhysiciansOfRecord",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "StudyID",
    "DeviceSerialNumber",
    "ImageComments",
    "StudyDescription",
    "SeriesDescription",
    "PatientComments",
}


@pytest.fixture(scope="module")
def stack():
    return generate_stack(21, negative=False, size=32, frames=20)


def zipped(stack, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(stack, buffer, **kwargs)
    return buffer.getvalue()


def rejection(data, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        read_stacks(data, **kwargs)
    assert caught.value.code == PHI_PRESENT
    return caught.value


def tag_of(keyword: str) -> int:
    return int(tag_for_keyword(keyword))


# ---- the table ----------------------------------------------------------------------------------------
def test_the_whole_table_is_loaded_with_its_edition():
    profile = phi.basic_profile()
    assert len(profile) >= 600 and profile.edition == "2026c"
    assert "Table E.1-1" in DEID_PROFILE and "2026c" in DEID_PROFILE and "dicom-anonymizer" in DEID_PROFILE
    # Independent truth, PS3.15 Table E.1-1 (Basic Profile column): Patient's Name Z, Image Comments X,
    # Accession Number Z, Study Instance UID U, Overlay Comments (60xx,4000) X in every overlay group.
    assert profile.action_for(0x00100010) == "Z"
    assert profile.action_for(0x00204000) == "X"
    assert profile.action_for(0x00080050) == "Z"
    assert profile.action_for(0x0020000D) == "U"
    assert profile.action_for(0x60004000) == profile.action_for(0x601E4000) == "X"
    assert profile.action_for(tag_of("Modality")) is None and profile.action_for(tag_of("PixelData")) is None
    for keyword in REQUIRED:
        assert profile.action_for(tag_of(keyword)) not in (None, "U", "X/Z/U*"), keyword
    for keyword in phi.RETAINED:
        assert profile.action_for(tag_of(keyword)) is not None, keyword


def test_the_table_is_read_once_and_a_changed_file_is_refused(monkeypatch):
    assert phi.basic_profile() is phi.basic_profile()
    monkeypatch.setattr(phi, "_TABLE_SHA256", "0" * 64)
    phi.basic_profile.cache_clear()
    try:
        with pytest.raises(phi.DeidProfileUnavailable, match="differs from the pinned edition"):
            phi.basic_profile()
    finally:
        monkeypatch.undo()
        phi.basic_profile.cache_clear()
    assert len(phi.basic_profile()) >= 600


def test_a_missing_table_fails_loudly_at_import():
    code = (
        "import importlib.metadata as m\n"
        "real = m.distribution\n"
        "def without_the_table(name):\n"
        "    if name == 'dicom-anonymizer':\n"
        "        raise m.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "m.distribution = without_the_table\n"
        "import ichal.io\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "DeidProfileUnavailable" in done.stderr and "dicom-anonymizer" in done.stderr


# ---- what passes --------------------------------------------------------------------------------------
def test_phantom_headers_carry_no_identifier(stack):
    # Type 2 attributes are present but empty: present-and-empty is not PHI.
    ds = frame_datasets(stack)[0]
    assert "PatientName" in ds and str(ds.PatientName) == ""
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
    assert find_phi(pydicom.dcmread(io.BytesIO(dataset_bytes(ds)))) == []
    assert len(read_stacks(zipped(stack))) == 1


def test_uids_retained_patient_characteristics_and_kept_image_references_pass(stack):
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = generate_uid()
    extra = {
        "PatientSex": "F",
        "PatientAge": "045Y",
        "PatientWeight": "70",
        "PatientSize": "1.7",
        "IrradiationEventUID": generate_uid(),  # U: replaced UIDs cannot be told from originals
        "ReferencedImageSequence": [reference],  # X/Z/U*: may be kept with its UIDs replaced
        "Manufacturer": "ACME",  # not in Table E.1-1
    }
    assert len(read_stacks(zipped(stack, extra_tags=extra))) == 1


# ---- what is refused ----------------------------------------------------------------------------------
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
        # free text
        ("ImageComments", f"scan of {PLANTED}"),
        ("StudyDescription", f"CT head {PLANTED}"),
        ("SeriesDescription", f"axial 5mm {PLANTED}"),
        ("PatientComments", f"{PLANTED} fell at home"),
        ("AdditionalPatientHistory", f"known to {PLANTED}"),
        ("ProtocolName", f"HEAD {PLANTED}"),
        ("DerivationDescription", f"MPR for {PLANTED}"),
        # retired attributes of the table
        ("IdentifyingComments", PLANTED),
        ("StudyComments", PLANTED),
        # identity, people, institution, device, visit
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
        ("StudyID", "S-4411"),
        ("DeviceSerialNumber", "SN-123456"),
        ("StationName", "CTROOM3"),
        # dates and times (Z, X/Z, X/D, Z/D), D-only attributes
        ("StudyDate", "20240102"),
        ("SeriesDate", "20240102"),
        ("AcquisitionDate", "20240102"),
        ("ContentDate", "20240102"),
        ("StudyTime", "101500"),
        ("AcquisitionDateTime", "20240102101500"),
        ("PersonName", "Doe^John"),
        ("ContrastBolusAgent", "ISOVUE 300"),
    ],
)
def test_each_identifying_attribute_is_caught(stack, keyword, value):
    error = rejection(zipped(stack, extra_tags={keyword: value}))
    assert keyword in error.reason
    assert value not in str(error) and "PLANTED" not in str(error)


def test_a_name_two_sequences_deep_is_found_and_named_by_its_path(stack):
    inner = Dataset()
    inner.PersonName = PLANTED
    item = Dataset()
    item.RequestedProcedureCodeSequence = [Dataset(), inner]
    item.ScheduledProcedureStepID = ""
    error = rejection(zipped(stack, extra_tags={"RequestAttributesSequence": [item]}))
    assert "RequestAttributesSequence[0].RequestedProcedureCodeSequence[1].PersonName" in error.reason
    assert "RequestAttributesSequence," in error.reason  # the sequence itself is X: removed by the profile
    assert "PLANTED" not in str(error)

    # Inside a sequence the profile keeps (X/Z/U*), only the nested attribute is reported.
    code = Dataset()
    code.PersonName = PLANTED
    reference = Dataset()
    reference.ReferencedSOPInstanceUID = generate_uid()
    reference.PurposeOfReferenceCodeSequence = [code]
    error = rejection(zipped(stack, extra_tags={"ReferencedImageSequence": [reference]}))
    assert error.reason.endswith(": ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0].PersonName")


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
    error = rejection(buffer.getvalue())
    assert "RequestAttributesSequence[0].AccessionNumber" in error.reason
    assert "NESTED-ACC-1" not in str(error)

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
    assert "OperatorsName" in rejection(buffer.getvalue()).reason


def _with_private(ds: Dataset, value: str = PLANTED) -> None:
    ds.private_block(0x0009, CREATOR, create=True).add_new(0x01, "LO", value)


def test_a_private_element_is_refused_unless_its_creator_is_allowed(stack):
    data = zipped(stack, mutate=lambda k, ds: _with_private(ds))
    error = rejection(data)
    assert error.reason.endswith(": (0009,1001)")
    assert "PLANTED" not in str(error) and CREATOR not in str(error)  # the creator is a value too

    allowed = InputLimits(allowed_private_creators=frozenset({CREATOR}))
    assert len(read_stacks(data, limits=allowed)) == 1
    other = InputLimits(allowed_private_creators=frozenset({"SOMEONE ELSE"}))
    assert rejection(data, limits=other).reason.endswith(": (0009,1001)")


def test_private_rules_creators_orphans_and_public_attributes_inside_private_sequences(stack):
    ds = frame_datasets(stack)[0]
    ds.private_block(0x0011, CREATOR, create=True)  # a creator element alone is not PHI
    assert find_phi(ds) == []
    ds.add_new(0x00131010, "LO", PLANTED)  # no creator element for block 10 of group 0013
    assert find_phi(ds, allowed_private_creators=[CREATOR]) == ["(0013,1010)"]
    del ds[0x00131010]
    item = Dataset()
    item.PatientName = PLANTED
    ds.private_block(0x0019, CREATOR, create=True).add_new(0x02, "SQ", [item])
    assert find_phi(ds, allowed_private_creators=[CREATOR]) == ["(0019,1002)[0].PatientName"]
    assert find_phi(ds) == ["(0019,1002)[0].PatientName", "(0019,1002)"]
    assert find_phi(ds, allowed_private_creators=["", "  "]) == find_phi(ds)  # blank never allows


def test_burned_in_annotation_counts_as_phi(stack):
    assert "BurnedInAnnotation" in rejection(zipped(stack, extra_tags={"BurnedInAnnotation": "YES"})).reason
    assert len(read_stacks(zipped(stack, extra_tags={"BurnedInAnnotation": "NO"}))) == 1


def test_overlay_comments_in_any_overlay_group_and_tags_pydicom_does_not_know(stack):
    def overlay(k, ds):
        ds.add_new(0x60024000, "LT", f"reviewed by {PLANTED}")

    assert rejection(zipped(stack, mutate=overlay)).reason.endswith(": OverlayComments")

    def name_to_use(k, ds):
        ds.add_new(0x00100012, "LO", PLANTED)  # Name to Use (2024), unknown to pydicom 3.0

    error = rejection(zipped(stack, mutate=name_to_use))
    assert error.reason.endswith(": (0010,0012)") and "PLANTED" not in str(error)


def test_an_age_of_90_or_more_is_refused_without_its_value(stack):
    error = rejection(zipped(stack, extra_tags={"PatientAge": "092Y"}))
    assert "PatientAge (90 years or more" in error.reason and "092" not in error.reason
    assert len(read_stacks(zipped(stack, extra_tags={"PatientAge": "089Y"}))) == 1
    assert len(read_stacks(zipped(stack, extra_tags={"PatientAge": "011M"}))) == 1


def test_sequences_nested_too_deep_are_refused_not_passed(stack):
    ds = frame_datasets(stack)[0]
    item = Dataset()
    for _ in range(phi.MAX_DEPTH + 2):
        outer = Dataset()
        outer.ReferencedImageSequence = [item]
        item = outer
    ds.ReferencedImageSequence = item.ReferencedImageSequence
    (finding,) = find_phi(ds)
    assert "nested deeper than" in finding


def test_the_reason_names_at_most_ten_attributes_then_a_count(stack):
    def many(k, ds):
        block = ds.private_block(0x0009, CREATOR, create=True)
        for element in range(25):
            block.add_new(element, "LO", PLANTED)

    error = rejection(zipped(stack, mutate=many, extra_tags={"PatientName": PLANTED}))
    assert error.reason.count("(0009,") == 9 and error.reason.endswith(" and 16 more")
    assert ": PatientName, (0009,1000)" in error.reason  # public attributes before private ones


def test_implicit_vr_files_are_checked_too(stack):
    ds = frame_datasets(stack, extra_tags={"PatientName": PLANTED, "ImageComments": PLANTED})[0]
    _with_private(ds)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    parsed = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert find_phi(parsed) == ["PatientName", "ImageComments", "(0009,1001)"]


def test_ct_small_is_identified_and_its_values_never_leak():
    path = get_testdata_file("CT_small.dcm")
    error = rejection(path, limits=InputLimits(min_frames=1))
    assert error.reason.count(", ") == 9 and " more" in error.reason
    found = find_phi(pydicom.dcmread(path))
    expected = "PatientName PatientID OtherPatientIDsSequence InstitutionName StudyDate StudyID ImageComments"
    assert set(expected.split()) <= set(found)
    assert "OtherPatientIDsSequence[0].PatientID" in found and "(0009,1001)" in found
    # Empty Type 2 attributes are not reported; retained patient characteristics (sex O, age 000Y) pass.
    for keyword in (
        "AccessionNumber",
        "PatientBirthDate",
        "ReferringPhysicianName",
        "PatientSex",
        "PatientAge",
    ):
        assert keyword not in found
    text = str(error) + " ".join(found)
    for value in (
        "CompressedSamples",
        "1CT1",
        "ABCD1234",
        "1234ABCD",
        "JFK IMAGING",
        "20040119",
        "CT01_OC0",
        "GEMS",
    ):
        assert value not in text
    assert len(read_stacks(path, limits=InputLimits(min_frames=1, check_phi=False))) == 1


# ---- NIfTI --------------------------------------------------------------------------------------------
def _nifti(stack, tmp_path, edit=None):
    path = tmp_path / "volume.nii"
    write_nifti(stack, path)
    if edit is not None:
        image = nib.load(path)
        edit(image.header)
        nib.save(nib.Nifti1Image(image.get_fdata(), image.affine, image.header), path)
    return path


def test_the_phantom_nifti_passes(stack, tmp_path):
    assert len(read_stacks(_nifti(stack, tmp_path))) == 1
    blank = _nifti(stack, tmp_path, lambda h: h.__setitem__("descrip", b"  \x00 "))
    assert len(read_stacks(blank)) == 1


@pytest.mark.parametrize("field", ["descrip", "aux_file", "intent_name", "db_name"])
def test_nifti_header_text_is_refused_naming_the_field(stack, tmp_path, field):
    path = _nifti(stack, tmp_path, lambda h: h.__setitem__(field, PLANTED[:15].encode()))
    error = rejection(path)
    assert error.reason.endswith(f": {field}") and PLANTED[:15] not in str(error)


def test_nifti_header_extensions_are_refused(stack, tmp_path):
    path = _nifti(stack, tmp_path, lambda h: h.extensions.append(Nifti1Extension(6, PLANTED.encode())))
    assert nib.load(path).header.extensions  # the extension really is in the file
    error = rejection(path)
    assert error.reason.endswith(": extension[0] (code 6)") and "PLANTED" not in str(error)
    assert len(read_stacks(path, limits=InputLimits(check_phi=False))) == 1
