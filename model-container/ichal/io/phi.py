"""Verifying de-identification: identifying DICOM attributes that must be absent or empty.

Source: DICOM PS3.15 (Security and System Management Profiles), Annex E "Attribute
Confidentiality Profiles", Table E.1-1, Basic Application Level Confidentiality Profile: the
attributes below are those the basic profile removes (X), empties (Z) or replaces with dummies (D),
or combinations, that identify the patient, the people involved, the institution, the device, the
visit or the date. A DICOM object in which any of them is present with a non-empty value (anywhere,
also inside sequences) has not been de-identified and is rejected with PHI_PRESENT.

Deliberately not in the list:

* UIDs (Study/Series/SOP Instance UID): the basic profile replaces them (U) with new UIDs, which
  look the same as the originals, so their presence proves nothing;
* PatientSex, PatientAge, PatientSize, PatientWeight: kept under the profile's Retain Patient
  Characteristics Option, which research exports commonly use;
* times without dates (StudyTime, …): not identifying on their own;
* private attributes: their meaning is vendor-specific; exports should remove them, but we do not
  guess.

``BurnedInAnnotation`` = YES (identifying text drawn into the pixels) is reported too.
Checks read raw element bytes: values are never decoded, logged or returned, only keywords.
"""

from __future__ import annotations

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

PHI_ATTRIBUTES: tuple[str, ...] = (
    # Patient identity and demographics that identify
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "MilitaryRank",
    "BranchOfService",
    "Occupation",
    "CountryOfResidence",
    "RegionOfResidence",
    "EthnicGroup",
    "PatientInsurancePlanCodeSequence",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "AdditionalPatientHistory",
    "PatientComments",
    "MedicalAlerts",
    "Allergies",
    # Institution and device
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "StationName",
    "DeviceSerialNumber",
    # People
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "ScheduledPerformingPhysicianName",
    "PersonName",
    # Visit and order identifiers
    "AccessionNumber",
    "StudyID",
    "AdmissionID",
    "RequestedProcedureID",
    "PerformedProcedureStepID",
    # Dates (any non-empty date is treated as identifying)
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstanceCreationDate",
    "AcquisitionDateTime",
    "PerformedProcedureStepStartDate",
)

_PHI_TAGS: dict[int, str] = {}
for _keyword in PHI_ATTRIBUTES:
    _tag = tag_for_keyword(_keyword)
    if _tag is None:  # pragma: no cover - guarded by a test
        raise RuntimeError(f"{_keyword} is not a DICOM keyword known to pydicom")
    _PHI_TAGS[int(_tag)] = _keyword
_BURNED_IN = int(tag_for_keyword("BurnedInAnnotation") or 0)
_MAX_DEPTH = 16


def _is_sequence(tag: BaseTag, element: object) -> bool:
    vr = getattr(element, "VR", None)
    if vr == "SQ":
        return True
    if vr in (None, "UN") and not tag.is_private:
        try:
            return dictionary_VR(tag) == "SQ"
        except KeyError:
            return False
    return False


def _raw_non_empty(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(bytes(value).strip(b" \x00\\")) > 0
    if isinstance(value, Sequence):
        return any(len(item) > 0 for item in value)
    if isinstance(value, (list, tuple)):
        return any(_raw_non_empty(v) for v in value)
    return len(str(value).strip(" \x00\\")) > 0


def _walk(ds: Dataset, found: set[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for tag in list(ds.keys()):
        element = ds.get_item(tag)
        if element is None:
            continue
        keyword = _PHI_TAGS.get(int(tag))
        if _is_sequence(tag, element):
            sequence = ds[tag].value
            if keyword is not None and _raw_non_empty(sequence):
                found.add(keyword)
            for item in sequence or []:
                if isinstance(item, Dataset):
                    _walk(item, found, depth + 1)
            continue
        if keyword is not None:
            value = element.value
            if _raw_non_empty(value):
                found.add(keyword)
        elif int(tag) == _BURNED_IN:
            value = element.value
            is_bytes = isinstance(value, (bytes, bytearray))
            raw = bytes(value) if is_bytes else str(value).encode("ascii", "replace")
            if raw.strip(b" \x00").upper() == b"YES":
                found.add("BurnedInAnnotation")


def find_phi(ds: Dataset) -> list[str]:
    """Keywords of the identifying attributes ``ds`` still carries with a value (sorted)."""
    found: set[str] = set()
    _walk(ds, found, 0)
    return sorted(found)


__all__ = ["PHI_ATTRIBUTES", "find_phi"]
