"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import date

from monespace import Actor, ActorKind
from monespace.accounts import Contact, PatientIdentity
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import LOINC, TRE_A05_TYPE, Code

#: A string planted in contents and names to check that nothing is stored in clear.
MARKER = "CANARI-7f3a9c-ne-doit-jamais-apparaitre"


def identity(
    n: int = 1, *, email: str | None = "patient@example.org", birth_name: str = "DUPONT"
) -> PatientIdentity:
    """A valid synthetic identity; *n* varies the NIR (the order number)."""
    nir = NIR.build("F", 85, 3, "75", "056", n)
    traits = INSTraits(
        birth_name=birth_name,
        first_given_name="MARIE",
        birth_date=date(1985, 3, 14),
        sex="F",
        birth_place_code="75056",
    )
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=email))


def open_patient(space, person=None, operator=None):
    """Register a person and open their space at once (the counter flow): a patient whose
    space exists, ready to read and be fed."""
    operator = operator or Actor.system("test")
    patient = space.accounts.register_patient(operator, person or identity())
    space.accounts.create_space(operator, patient.id)
    return patient


def add_note(space, actor, patient_id, data=b"note", *, media_type="text/plain", **kwargs):
    """Add *data* to a record as a document of a type *actor* may deposit: a patient's
    document (EXPPAT_2) for the holder's side, a reimbursement statement (REMB) for the
    operator, a consultation note for a professional."""
    type_code = {
        ActorKind.PATIENT: Code("EXPPAT_2", TRE_A05_TYPE),
        ActorKind.REPRESENTATIVE: Code("EXPPAT_2", TRE_A05_TYPE),
        ActorKind.SYSTEM: Code("REMB", TRE_A05_TYPE),
    }.get(actor.kind, Code("11488-4", LOINC))
    return space.record.add_document(
        actor, patient_id, data, media_type=media_type, type_code=type_code, **kwargs
    )
