"""A professional finds the space of the person in front of them from their carte Vitale."""

from __future__ import annotations

import pytest

import monespace
from monespace import Actor, ActorKind, Settings
from monespace.access import AccessPolicy, Professional
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import AccessDeniedError, NotFoundError, UnknownProfessionalError
from monespace.identity import RPPS

from .helpers import identity, open_patient

OPERATOR = Actor.system("test")


def test_lookup_needs_both_the_nir_and_the_birth_date_and_is_audited():
    with monespace.open(
        "memory://", key_provider=StaticKeyProvider(MasterKey.generate()), load_entrypoints=False
    ) as space:
        patient = open_patient(space, identity())
        rpps = RPPS.build("1000000001").value
        space.access.register_professional(OPERATOR, Professional(rpps, "10", "Dr Martin"))
        doctor = Actor(ActorKind.PROFESSIONAL, rpps)
        person = identity()
        nir, born = person.ins.matricule.value, person.ins.traits.birth_date
        assert space.access.find_patient(doctor, nir=nir, birth_date=born) == patient.id
        for bad_nir, bad_date in (
            (nir, born.replace(day=1)),
            ("not a nir", born),
            (identity(2).ins.matricule.value, born),
        ):
            with pytest.raises(NotFoundError) as info:
                space.access.find_patient(doctor, nir=bad_nir, birth_date=bad_date)
            assert str(info.value) == "nobody matches this carte Vitale"
        # Not in the directory: denied by the policy (and audited), said as unknown.
        stranger = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000002").value)
        with pytest.raises(UnknownProfessionalError):
            space.access.find_patient(stranger, nir=nir, birth_date=born)
        with pytest.raises(AccessDeniedError):
            space.access.find_patient(Actor.patient(patient.id), nir=nir, birth_date=born)
        lookups = [
            e for e in space.audit.for_patient(OPERATOR, patient.id) if e.action == "patient.lookup"
        ]
        assert [(e.actor_kind, e.actor_id) for e in lookups] == [(ActorKind.PROFESSIONAL, rpps)]


@pytest.mark.parametrize("spared", [False, True])
def test_a_blocked_treating_doctor_is_not_told_of_an_emergency_access(spared):
    """Unless blocks spare the médecin traitant (the default, §3.4 [P]): then they are
    still the médecin traitant, and told."""
    with monespace.open(
        "memory://",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        transports={"email": "memory://", "mssante": "memory://"},
        settings=Settings(access=AccessPolicy(block_spares_treating_doctor=spared)),
        load_entrypoints=False,
    ) as space:
        patient = open_patient(space, identity())
        me = Actor.patient(patient.id)
        doctor, urgentist = RPPS.build("1000000001").value, RPPS.build("1000000002").value
        space.access.register_professional(
            OPERATOR, Professional(doctor, "10", "Dr Martin", mssante="m@medecin.mssante.fr")
        )
        space.access.register_professional(OPERATOR, Professional(urgentist, "10", "Dr Urg"))
        space.access.declare_treating_doctor(me, patient.id, doctor)
        space.access.block(me, patient.id, doctor)
        space.access.break_glass(
            Actor(ActorKind.PROFESSIONAL, urgentist), patient.id, justification="inconscient, AVP"
        )
        space.dispatch()
        told = [e.kind for e in space.transports["mssante"].sent]
        assert told == (["emergency-access-doctor"] if spared else [])
        assert [e.kind for e in space.transports["email"].sent] == ["emergency-access"]
