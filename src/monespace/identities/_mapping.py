"""A person's identity as the JSON text sealed with their data key, and directory rows <->
professionals, through the converters of :mod:`monespace.codec`."""

from __future__ import annotations

import json

from ..codec import make_converter, restructure
from ..storage import ProfessionalRow
from ._directory import Professional
from ._model import Contact, PatientIdentity

__all__ = [
    "contact_from_payload",
    "identity_from_payload",
    "identity_payload",
    "professional_from_row",
    "professional_row",
]

_JSON = make_converter()


def identity_payload(identity: PatientIdentity) -> bytes:
    """The JSON text of an identity, to be sealed with the person's data key."""
    return _JSON.dumps(identity).encode()


def identity_from_payload(raw: bytes) -> PatientIdentity:
    """The identity an opened payload holds."""
    identity: PatientIdentity = _JSON.loads(raw, PatientIdentity)
    return identity


def contact_from_payload(raw: bytes) -> Contact:
    """Only the contact details of an opened identity payload, without rebuilding (and
    re-validating) the whole identity."""
    contact: Contact = _JSON.structure(json.loads(raw)["contact"], Contact)
    return contact


def professional_row(professional: Professional) -> ProfessionalRow:
    """The row that stores a directory entry."""
    row: ProfessionalRow = restructure(professional, ProfessionalRow)
    return row


def professional_from_row(row: ProfessionalRow | None) -> Professional | None:
    """The directory entry a row stores (``None`` for no row)."""
    if row is None:
        return None
    professional: Professional = restructure(row, Professional)
    return professional
