"""A person's identity as the JSON text sealed with their data key, through the codec."""

from __future__ import annotations

from typing import Any

from ..codec import make_converter
from ._model import Contact, PatientIdentity

__all__ = ["contact_from_payload", "identity_from_payload", "identity_payload"]

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
    contact: Contact = _JSON.structure(_JSON.loads(raw, dict[str, Any])["contact"], Contact)
    return contact
