"""Who a person is and how to reach them, and the directory of professionals: what several
services share, below all of them.

The accounts service registers a person and seals their identity (INS, traits, contact) with
their data key; the record, messaging, access and DMP migration read it back, to check that a
document names the holder of the record or to address a notice. The NIR blind index, which
finds a person by NIR without storing it in the clear, is computed in one place.

This package is internal: services import it, callers of the library do not.
"""

from ._directory import PROFESSIONS, Professional
from ._identities import (
    IDENTITY_KIND,
    NIR_INDEX,
    names_person,
    nir_index,
    open_identity,
    read_contact,
    read_identity,
    row_by_nir,
)
from ._mapping import (
    contact_from_payload,
    identity_from_payload,
    identity_payload,
    professional_from_row,
    professional_row,
)
from ._model import Contact, Patient, PatientIdentity, PostalAddress

__all__ = [
    "IDENTITY_KIND",
    "NIR_INDEX",
    "PROFESSIONS",
    "Contact",
    "Patient",
    "PatientIdentity",
    "PostalAddress",
    "Professional",
    "contact_from_payload",
    "identity_from_payload",
    "identity_payload",
    "names_person",
    "nir_index",
    "open_identity",
    "professional_from_row",
    "professional_row",
    "read_contact",
    "read_identity",
    "row_by_nir",
]
