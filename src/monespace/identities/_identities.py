"""Reading a person's sealed identity and contact; the NIR blind index."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ._mapping import contact_from_payload, identity_from_payload
from ._model import Contact, PatientIdentity

if TYPE_CHECKING:
    from .._unit import Core
    from ..storage import PatientRow, Transaction

__all__ = [
    "IDENTITY_KIND",
    "NIR_INDEX",
    "names_person",
    "nir_index",
    "open_identity",
    "read_contact",
    "read_identity",
    "row_by_nir",
]

#: The kind a person's identity is sealed under (part of the associated data).
IDENTITY_KIND = "identity"
#: The purpose of the blind index that finds a person by NIR.
NIR_INDEX = "nir"


def nir_index(core: Core, tx: Transaction, nir: str, now: datetime) -> bytes:
    """The blind index of *nir*: what ``PatientRow.nir_index`` holds and is searched by."""
    return core.keyring.blind_index(tx, NIR_INDEX, nir, now)


def row_by_nir(core: Core, tx: Transaction, nir: str, now: datetime) -> PatientRow | None:
    """The registered person whose NIR is *nir* (its 13-digit value), or ``None``.

    No policy check: the caller decides whether its actor may look a person up by NIR.
    """
    return tx.patients.find_by_nir_index(nir_index(core, tx, nir, now))


def open_identity(core: Core, tx: Transaction, row: PatientRow) -> PatientIdentity:
    """The decrypted identity sealed in *row*."""
    raw = core.keyring.open(tx, row.id, IDENTITY_KIND, row.id, row.sealed_identity)
    return identity_from_payload(raw)


def read_contact(core: Core, tx: Transaction, patient_id: str) -> Contact | None:
    """The contact details of a person, without rebuilding (and re-validating) their whole
    identity: invitations and notices need an address, and the INS was checked when the
    person was registered. About a quarter of an invitation's time went to that rebuild."""
    row = tx.patients.get(patient_id)
    if row is None:
        return None
    raw = core.keyring.open(tx, row.id, IDENTITY_KIND, row.id, row.sealed_identity)
    return contact_from_payload(raw)


def read_identity(core: Core, tx: Transaction, patient_id: str) -> PatientIdentity | None:
    """The decrypted identity of a person, for services that must contact them.

    No policy check: callers are services that already hold an authorised unit of work.
    """
    row = tx.patients.get(patient_id)
    return None if row is None else open_identity(core, tx, row)


def names_person(identity: PatientIdentity | None, ins: str, oid: str | None) -> bool:
    """Whether the INS a document carries (*ins*, qualified by *oid* when it says one) is
    *identity*'s: same matricule, and same OID, so that a test or demo INS never matches a
    real one with the same matricule (identity vigilance)."""
    if identity is None or identity.ins.matricule.value != ins.strip().upper():
        return False
    return oid is None or identity.ins.oid == oid.removeprefix("urn:oid:")
