"""Seeding a demo space: a synthetic population taken through the real lifecycle.

Everything goes through the public services, as an operator would drive them: people are
registered, minors attached to a parent, everyone invited (e-mails and letters land in the
outbox), a few oppose, some activate, and the deadline run opens the other spaces when their
six weeks are over. The clock is moved, not waited for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import attrs

from .._space import Space
from ..accounts import AccountState, PatientIdentity, RepresentationKind
from ..actors import Actor
from ..clock import ManualClock
from ..errors import ValidationError
from ._population import synthetic_identities

__all__ = ["DemoLogin", "DemoSummary", "seed_demo"]

#: Share of people who object (about 1.5 % did in 2022: docs/domain-rules.md §8).
OPPOSITION_RATE = 0.015
#: Share who activate their space themselves (15 to 35 % depending on the year, §8).
ACTIVATION_RATE = 0.30


@attrs.frozen(repr=False)
class DemoLogin:
    """What a person types to activate their space (synthetic data only)."""

    role: str
    patient_id: str
    nir: str
    vitale_serial: str
    birth_date: date
    code: str

    def __repr__(self) -> str:
        return f"DemoLogin(role={self.role!r}, patient_id={self.patient_id!r})"


@attrs.frozen
class DemoSummary:
    """What :func:`seed_demo` did: counts per state and a few ready-to-use logins."""

    patients: int
    states: dict[str, int]
    representations: int
    logins: tuple[DemoLogin, ...]


def seed_demo(
    space: Space,
    count: int,
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create *count* synthetic people in *space* and run them through the lifecycle.

    *space* must have been opened with a :class:`~monespace.ManualClock`: the invitations are
    dated seven weeks back so that the deadline run has spaces to open.
    """
    clock = space.clock
    if not isinstance(clock, ManualClock):
        raise ValidationError("the demo needs a space opened with a ManualClock")
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    operator = Actor.system("demo")
    today = clock.now()
    clock.set(today - timedelta(days=50))

    people: list[tuple[str, PatientIdentity]] = []
    for patient in space.accounts.register_patients(
        operator, synthetic_identities(count, seed=seed, today=today.date())
    ):
        people.append((patient.id, patient.identity))
        if progress is not None:
            progress(1)

    adults = [(pid, i) for pid, i in people if _age(i, today.date()) >= 25]
    links = 0
    for pid, identity in people:
        if _age(identity, today.date()) < space.accounts.lifecycle.majority_age and adults:
            parent_id, _ = rng.choice(adults)
            space.accounts.add_representative(
                operator, pid, parent_id, RepresentationKind.LEGAL_GUARDIAN
            )
            links += 1

    space.accounts.invite_registered(operator)

    clock.set(today - timedelta(days=45))
    logins: list[DemoLogin] = []
    for pid, identity in people:
        draw = rng.random()
        if draw < OPPOSITION_RATE:
            space.accounts.oppose(**_proof(space, operator, pid, identity))
        elif draw < OPPOSITION_RATE + ACTIVATION_RATE and not _has_guardian(space, pid):
            space.accounts.activate(**_proof(space, operator, pid, identity))

    clock.set(today)
    space.accounts.tick()
    space.dispatch(limit=10 * count + 100)

    for pid, identity in people:
        account = space.accounts.account(operator, pid)
        if account.state is AccountState.ACTIVE:
            continue
        if account.state is AccountState.CREATED and not _has_guardian(space, pid):
            logins.append(DemoLogin("patient", pid, **_proof(space, operator, pid, identity)))
            break
    _feed(space, operator, people)
    return DemoSummary(
        patients=len(people),
        states=space.accounts.count_by_state(),
        representations=links,
        logins=tuple(logins),
    )


def _age(identity: PatientIdentity, today: date) -> int:
    traits = identity.ins.traits
    assert traits is not None
    born = traits.birth_date
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _has_guardian(space: Space, patient_id: str) -> bool:
    links = space.accounts.representatives_of(Actor.system("demo"), patient_id)
    return any(link.ended_at is None for link in links)


def _proof(
    space: Space, operator: Actor, patient_id: str, identity: PatientIdentity
) -> dict[str, Any]:
    traits = identity.ins.traits
    assert traits is not None
    assert identity.vitale_serial is not None
    return {
        "nir": identity.ins.matricule.value,
        "code": space.accounts.issue_code(operator, patient_id, send=False),
        "vitale_serial": identity.vitale_serial,
        "birth_date": traits.birth_date,
    }


def _feed(space: Space, operator: Actor, people: list[tuple[str, PatientIdentity]]) -> None:
    """The health insurer feeds each open space with its reimbursement history."""
    for pid, _ in people:
        if space.accounts.account(operator, pid).is_open:
            space.contents.put(
                operator,
                pid,
                b"Historique de remboursements (synthetique)\n",
                media_type="text/plain",
            )
