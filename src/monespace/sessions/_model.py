"""What a logged-in session is (the stored row's typed view)."""

from __future__ import annotations

import hmac
from datetime import date, datetime
from enum import StrEnum

import attrs

from ..actors import AccessMode, Actor, ActorKind

__all__ = ["Session", "SessionKind"]


class SessionKind(StrEnum):
    """Who logged in."""

    PATIENT = "patient"
    """A person, with their carte Vitale (and, through it, the people they represent)."""
    PROFESSIONAL = "professional"
    """A health professional (simulated Pro Santé Connect in the demo)."""


@attrs.define
class Session:
    """One logged-in session (the storage keeps the hash of its token, never the token).

    :param person_id: the patient id, or the professional's RPPS number.
    :param ends_at: the session's absolute end, however active it stays.
    :param emergencies: for a professional, the emergency accesses they declared in this
        session: patient id → (mode, end).
    """

    kind: SessionKind
    person_id: str
    created_at: datetime
    last_seen: datetime
    csrf_token: str
    ends_at: datetime | None = None
    emergencies: dict[str, tuple[AccessMode, datetime]] = attrs.field(factory=dict)
    #: For a person, the first name and birth date of each space they open (theirs, their
    #: children's), read once per session and server process to say whose space is open.
    #: Never stored: the session table holds no identity.
    space_labels: dict[str, tuple[str, date]] = attrs.field(factory=dict)

    def actor_for(self, patient_id: str, now: datetime) -> Actor:
        """The actor this session acts as on *patient_id*'s space.

        A person acts as the holder of their own space and as a legal representative on
        anyone else's (the policy then checks that they do represent them); a professional
        acts in emergency mode on a space where they declared an emergency that still runs.
        """
        if self.kind is SessionKind.PATIENT:
            if patient_id == self.person_id:
                return Actor.patient(self.person_id)
            return Actor(ActorKind.REPRESENTATIVE, self.person_id, on_behalf_of=patient_id)
        mode = AccessMode.NORMAL
        emergency = self.emergencies.get(patient_id)
        if emergency is not None and now < emergency[1]:
            mode = emergency[0]
        return Actor(ActorKind.PROFESSIONAL, self.person_id, mode=mode)

    def csrf_matches(self, given: str | None) -> bool:
        """Whether *given* is this session's CSRF token (compared in constant time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())
