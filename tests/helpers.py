"""Small builders shared by the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import date

import monespace
from monespace import AccessMode, Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import AccessDeniedError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.record import LOINC, TRE_A05_TYPE, Code
from monespace.transport import MemoryTransport

#: A string planted in contents and names to check that nothing is stored in clear.
MARKER = "CANARI-7f3a9c-ne-doit-jamais-apparaitre"

#: The patient of the official CI-SIS examples (PAT-TROIS DOMINIQUE): a test INS-NIR.
HOLDER_NIR = "279035121518989"
HOLDER_OID = "1.2.250.1.213.1.4.10"


def rpps(n: int) -> str:
    """A valid 11-digit RPPS number (Luhn key added), different for each *n*."""
    return RPPS.build(f"{1000000000 + n}").value


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


def holder_identity(
    email: str | None = "patient@example.org", phone: str | None = None
) -> PatientIdentity:
    """The holder of the official examples' INS: a woman born in March 1979, as the NIR says."""
    traits = INSTraits(
        birth_name="PAT-TROIS",
        first_given_name="DOMINIQUE",
        birth_date=date(1979, 3, 15),
        sex="F",
    )
    return PatientIdentity(INS(HOLDER_NIR, HOLDER_OID, traits), Contact(email=email, phone=phone))


def open_space(
    url: str = "memory://",
    clock=None,
    *,
    keys=None,
    transports: Iterable[str] = (),
    **options,
) -> monespace.Space:
    """Open a space as most tests do: a fresh master key unless *keys* is given, a
    ``MemoryTransport`` for each channel named in *transports* (none: the library's
    defaults), no entry-point plugins; *options* go to :func:`monespace.open`."""
    if transports:
        options["transports"] = {name: MemoryTransport() for name in transports}
    return monespace.open(
        url,
        key_provider=keys or StaticKeyProvider(MasterKey.generate()),
        clock=clock,
        load_entrypoints=False,
        **options,
    )


def register_physicians(space, count: int = 3, *, specialty=None, mssante=None) -> list[str]:
    """Put physicians ``rpps(1)`` .. ``rpps(count)``, "Dr Médecin <n>", in the directory
    (unknown professionals act on no record); *mssante* maps n to an MSSanté address."""
    numbers = [rpps(n) for n in range(1, count + 1)]
    for n, number in enumerate(numbers, 1):
        address = mssante(n) if mssante else None
        space.access.register_professional(
            Actor.system("test"),
            Professional(number, "10", f"Dr Médecin {n}", specialty=specialty, mssante=address),
        )
    return numbers


def open_patient(space, person=None, operator=None):
    """Register a person and open their space at once (the counter flow): a patient whose
    space exists, ready to read and be fed."""
    operator = operator or Actor.system("test")
    patient = space.accounts.register_patient(operator, person or identity())
    space.accounts.create_space(operator, patient.id)
    return patient


def feeder(space, actor, patient_id) -> None:
    """Give a professional who is about to add to a record the right to feed it (L1111-17
    III): they declare taking part in the care. A declaration the patient's controls refuse
    (a block, an objection) is left for the addition itself to meet. Other actors and
    professionals in an emergency mode are left as they are."""
    if actor.kind is not ActorKind.PROFESSIONAL or actor.mode is not AccessMode.NORMAL:
        return
    with contextlib.suppress(AccessDeniedError):
        space.access.join_care_team(actor, patient_id)


def add_note(space, actor, patient_id, data=b"note", *, media_type="text/plain", **kwargs):
    """Add *data* to a record as a document of a type *actor* may deposit: a patient's
    document (EXPPAT_2) for the holder's side, a reimbursement statement (REMB) for the
    operator, a consultation note for a professional."""
    type_code = {
        ActorKind.PATIENT: Code("EXPPAT_2", TRE_A05_TYPE),
        ActorKind.REPRESENTATIVE: Code("EXPPAT_2", TRE_A05_TYPE),
        ActorKind.SYSTEM: Code("REMB", TRE_A05_TYPE),
    }.get(actor.kind, Code("11488-4", LOINC))
    feeder(space, actor, patient_id)
    return space.record.add_document(
        actor, patient_id, data, media_type=media_type, type_code=type_code, **kwargs
    )
