"""Verifying de-identification: DICOM against the whole PS3.15 Annex E basic profile, NIfTI header text.

The table: DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile), as the pinned
``dicom-anonymizer`` package (KitwareMedical, BSD-3-Clause) ships it, scraped from the standard:
``dicomanonymizer/dicom_anonymization_databases/dicomfields_<edition>.py``, one list per action.
The file is located with ``importlib.metadata``, checked against a pinned sha256 and read with
``ast.literal_eval`` at import: none of the package's code runs. A missing or changed file raises
``DeidProfileUnavailable`` at import, so the gate can never silently pass. ``DEID_PROFILE`` names
the edition. Tags are looked up by number (the table lists some pydicom does not know).

Policy (``find_phi``; any finding refuses the upload with PHI_PRESENT). Every data element of every
object, file meta included, recursively in every item of every sequence:

1. A Table E.1-1 attribute whose action is X, Z or D, or a combination of them (X/Z, X/D, X/Z/D,
   Z/D), present with a value, is reported. The profile also allows dummy values (D, and Z for
   Type 1), but a dummy cannot be told from a real value, so only removed or emptied attributes
   pass. A sequence has a value when any element in any of its items has one.
2. U (UIDs) pass: the profile replaces them with new UIDs, which look like the originals. X/Z/U*
   sequences (Referenced/Source Image Sequence) may be kept with their UIDs replaced: the
   sequence passes, its items are checked like everything else.
3. ``RETAINED`` attributes pass: PS3.15's Retain Patient Characteristics Option (sex, age, size,
   weight); a PatientAge of 90 years or more is reported (HIPAA Safe Harbor, 45 CFR 164.514(b)).
4. Private data elements (odd groups) with a value are reported unless the value of their private
   creator element (gggg,00xx) is in ``allowed_private_creators`` (per request, default none);
   private creator elements themselves are not PHI. Public attributes inside private sequences are
   still checked.
5. ``BurnedInAnnotation`` (0028,0301) = YES is reported (not in Table E.1-1: text in the pixels).
6. Sequences nested deeper than ``MAX_DEPTH`` are reported (not checked, so not passed).

NIfTI (``find_nifti_phi``): the header's text fields (``descrip``, ``aux_file``, ``intent_name``, and
the legacy ``db_name``, ``data_type``, ``unused_str``) with anything but NULs or whitespace, and any
header extension with content, are reported.

Findings name attributes: the keyword pydicom knows, else the tag ``(gggg,eeee)``, nested ones as a
path (``RequestAttributesSequence[0].PersonName``). Values are read as raw bytes only to decide
emptiness; they are never decoded into a message, logged or returned.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

EDITION = "2026c"
_DISTRIBUTION = "dicom-anonymizer"
_TABLE_FILE = f"dicomanonymizer/dicom_anonymization_databases/dicomfields_{EDITION}.py"
# sha256 of the data file in dicom-anonymizer 2.1.0 (its wheel's RECORD): the table cannot change unnoticed.
_TABLE_SHA256 = "a6b68dc888ab4b1ebfc9979796df194d9f1d836bc88ece7793dee93b1c98e1c2"
_LIST_ACTIONS = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
_PASSING_ACTIONS = frozenset({"U", "X/Z/U*"})
MAX_DEPTH = 16
MAX_NAMES_IN_REASON = 10

RETAINED: Mapping[str, str] = {
    "PatientSex": "Retain Patient Characteristics Option",
    "PatientAge": "Retain Patient Characteristics Option; 90 years or more is reported",
    "PatientSize": "Retain Patient Characteristics Option",
    "PatientWeight": "Retain Patient Characteristics Option",
}
"""Table E.1-1 attributes that may keep a value, with the reason."""

NIFTI_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name", "data_type", "unused_str")


class DeidProfileUnavailable(RuntimeError):
    """The PS3.15 Table E.1-1 data file is missing, altered or unreadable: nothing may be scored."""


@dataclass(frozen=True)
class BasicProfile:
    """Table E.1-1 by tag number: ``actions`` {tag: action}, ``repeating`` [(value, mask, action)]."""

    actions: Mapping[int, str]
    repeating: tuple[tuple[int, int, str], ...]
    edition: str
    source: str

    def __len__(self) -> int:
        return len(self.actions) + len(self.repeating)

    def action_for(self, tag: int) -> str | None:
        """The basic-profile action of a public tag (``X``, ``Z/D``, …), or None when not in the table."""
        action = self.actions.get(tag)
        if action is not None:
            return action
        for value, mask, repeating_action in self.repeating:
            if tag & mask == value & mask:
                return repeating_action
        return None


@cache
def basic_profile() -> BasicProfile:
    """Table E.1-1, read once from the pinned ``dicom-anonymizer`` data file (never imported)."""
    try:
        distribution = importlib.metadata.distribution(_DISTRIBUTION)
        path = next((f for f in distribution.files or () if str(f) == _TABLE_FILE), None)
        if path is None:
            raise FileNotFoundError(_TABLE_FILE)
        data = path.locate().read_bytes()
    except (importlib.metadata.PackageNotFoundError, OSError) as error:
        raise DeidProfileUnavailable(
            f"PS3.15 Table E.1-1 ({_TABLE_FILE} of {_DISTRIBUTION}, see requirements.txt) is not installed"
        ) from error
    if hashlib.sha256(data).hexdigest() != _TABLE_SHA256:
        raise DeidProfileUnavailable(f"{_TABLE_FILE} differs from the pinned edition {EDITION}")
    actions: dict[int, str] = {}
    repeating: list[tuple[int, int, str]] = []
    for node in ast.parse(data.decode("utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            action = _LIST_ACTIONS.get(node.targets[0].id)
            if action is None:
                continue
            for entry in ast.literal_eval(node.value):
                if len(entry) == 2:
                    actions[(entry[0] << 16) | entry[1]] = action
                else:
                    group, element, group_mask, element_mask = entry
                    repeating.append(((group << 16) | element, (group_mask << 16) | element_mask, action))
    profile = BasicProfile(actions, tuple(repeating), EDITION, f"{_DISTRIBUTION} {distribution.version}")
    if len(profile) < 600:
        raise DeidProfileUnavailable(f"{_TABLE_FILE} holds {len(profile)} attributes, not the whole table")
    return profile


_PROFILE = basic_profile()
DEID_PROFILE = f"PS3.15 Table E.1-1, {_PROFILE.edition} ({_PROFILE.source})"
_RETAINED_TAGS = {int(tag_for_keyword(keyword)): keyword for keyword in RETAINED}  # type: ignore[arg-type]
_PATIENT_AGE = int(tag_for_keyword("PatientAge"))  # type: ignore[arg-type]
_BURNED_IN = int(tag_for_keyword("BurnedInAnnotation"))  # type: ignore[arg-type]
_AGE = re.compile(rb"^(\d{3})([DWMY])$")


def _tag_name(tag: int) -> str:
    keyword = "" if tag >> 16 & 1 else keyword_for_tag(tag)
    return keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _has_value(value: Any) -> bool:
    """Whether a raw or decoded element value holds anything but padding (never decoded to text)."""
    if value is None:
        return False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(bytes(value).strip(b" \x00\\")) > 0
    if isinstance(value, Sequence):
        return any(isinstance(item, Dataset) and _item_has_value(item) for item in value)
    if isinstance(value, (list, tuple, MultiValue)):
        return any(_has_value(v) for v in value)
    if isinstance(value, (int, float)):
        return True
    return len(str(value).strip(" \x00\\")) > 0


def _item_has_value(item: Dataset) -> bool:
    return any(_has_value(_element_value(item, tag)) for tag in list(item.keys()))


def _is_sequence(tag: int, element: Any) -> bool:
    vr = getattr(element, "VR", None)
    if vr == "SQ":
        return True
    if vr in (None, "UN") and not tag >> 16 & 1:
        try:
            return dictionary_VR(tag) == "SQ"
        except KeyError:
            return False
    return False


def _element_value(ds: Dataset, tag: int) -> Any:
    element = ds.get_item(tag)
    if element is None:
        return None
    if _is_sequence(tag, element):
        return ds[tag].value
    return element.value


def _raw(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("ascii", "replace")


def _private_creator(ds: Dataset, tag: int) -> str | None:
    element = tag & 0xFFFF
    if element < 0x1000:
        return None
    creator = ds.get_item((tag & 0xFFFF0000) | (element >> 8))
    if creator is None or creator.value is None:
        return None
    return _raw(creator.value).decode("latin-1").strip(" \x00")


class _Findings:
    def __init__(self, allowed_private_creators: Iterable[str]) -> None:
        self.allowed = frozenset(c.strip(" \x00") for c in allowed_private_creators) - {""}
        self.names: dict[str, tuple] = {}

    def add(self, name: str, order: tuple) -> None:
        self.names.setdefault(name, order)

    def sorted(self) -> list[str]:
        return sorted(self.names, key=lambda name: self.names[name])

    def walk(self, ds: Dataset, prefix: str, path: tuple[int, ...]) -> None:
        depth = len(path)
        if depth > MAX_DEPTH:
            self.add(f"{prefix}… (sequences nested deeper than {MAX_DEPTH})", (3, *path))
            return
        for key in list(ds.keys()):
            tag = int(key)
            element = ds.get_item(tag)
            if element is None or tag & 0xFFFF == 0:  # group lengths
                continue
            name = prefix + _tag_name(tag)
            private = bool(tag >> 16 & 1)
            order = (2 if private else 1 if depth else 0, *path, tag)
            sequence = _is_sequence(tag, element)
            value = ds[tag].value if sequence else element.value
            if private:
                creator_element = 0x0010 <= tag & 0xFFFF <= 0x00FF
                if (
                    not creator_element
                    and _has_value(value)
                    and _private_creator(ds, tag) not in self.allowed
                ):
                    self.add(name, order)
            elif tag == _BURNED_IN:
                if _raw(value).strip(b" \x00").upper() == b"YES":
                    self.add(name, order)
            elif tag in _RETAINED_TAGS:
                if tag == _PATIENT_AGE and _has_value(value) and not _age_below_90(value):
                    self.add(f"{name} (90 years or more, or not an age)", order)
            else:
                action = _PROFILE.action_for(tag)
                if action is not None and action not in _PASSING_ACTIONS and _has_value(value):
                    self.add(name, order)
            if sequence:
                for index, item in enumerate(value or ()):
                    if isinstance(item, Dataset):
                        self.walk(item, f"{name}[{index}].", (*path, tag, index))


def _age_below_90(value: Any) -> bool:
    match = _AGE.match(_raw(value).strip(b" \x00"))
    return match is not None and (match.group(2) != b"Y" or int(match.group(1)) < 90)


def find_phi_in(datasets: Iterable[Dataset], *, allowed_private_creators: Iterable[str] = ()) -> list[str]:
    """Names of what ``datasets`` still carry that the policy (module docstring) refuses, in tag order:
    top-level public attributes, then nested ones, then private elements. Empty: de-identified."""
    findings = _Findings(allowed_private_creators)
    for ds in datasets:
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            findings.walk(meta, "", ())
        findings.walk(ds, "", ())
    return findings.sorted()


def find_phi(ds: Dataset, *, allowed_private_creators: Iterable[str] = ()) -> list[str]:
    """``find_phi_in`` for one dataset."""
    return find_phi_in([ds], allowed_private_creators=allowed_private_creators)


def find_nifti_phi(header: Any) -> list[str]:
    """The text fields and extensions of a nibabel NIfTI header that hold anything (module docstring)."""
    found = []
    for field in NIFTI_TEXT_FIELDS:
        if field in header and header[field].tobytes().replace(b"\x00", b"").strip():
            found.append(field)
    for index, extension in enumerate(getattr(header, "extensions", None) or ()):
        if bytes(extension.content or b"").replace(b"\x00", b"").strip():
            found.append(f"extension[{index}] (code {int(extension.get_code())})")
    return found


def phi_reason(what: str, names: list[str]) -> str:
    """One line for PHI_PRESENT: the first ``MAX_NAMES_IN_REASON`` names, then how many more."""
    shown = ", ".join(names[:MAX_NAMES_IN_REASON])
    more = len(names) - MAX_NAMES_IN_REASON
    return f"{what}: {shown}" + (f" and {more} more" if more > 0 else "")


__all__ = [
    "DEID_PROFILE",
    "RETAINED",
    "BasicProfile",
    "DeidProfileUnavailable",
    "basic_profile",
    "find_nifti_phi",
    "find_phi",
    "find_phi_in",
    "phi_reason",
]
