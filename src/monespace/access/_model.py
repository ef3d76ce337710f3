"""The patient's authorisations and controls, and emergency access (the professionals
themselves are in the directory, :mod:`monespace.identities`).

docs/domain-rules.md §4 and docs/security-and-reliability.md §1.2 to 1.3.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import attrs

from ..actors import AccessMode

__all__ = ["AccessSettings", "EmergencySession", "Grant", "GrantKind"]


class GrantKind(StrEnum):
    """How a professional comes to have access to a record (strongest last)."""

    CARE_TEAM = "care_team"
    """Member of the care team: deemed authorised unless the patient objects (R1111-46)."""
    AUTHORISED = "authorised"
    """Authorised explicitly by the patient (R1111-32, L1110-4 III al. 2)."""
    EXTENDED = "extended"
    """Given by the patient the same rights as the médecin traitant."""
    TREATING_DOCTOR = "treating_doctor"
    """The médecin traitant declared by the patient."""


_STRENGTH = {
    GrantKind.CARE_TEAM: 1,
    GrantKind.AUTHORISED: 2,
    GrantKind.EXTENDED: 3,
    GrantKind.TREATING_DOCTOR: 4,
}


@attrs.frozen
class Grant:
    """A professional's access to a record, from ``since`` until ``until`` (exclusive) or its
    end (``ended_at``, when revoked).

    :param granted_by: who created it (the patient's id, or the professional who declared
        the care relationship).
    """

    patient_id: str
    professional_id: str
    kind: GrantKind
    since: datetime
    until: datetime | None = None
    ended_at: datetime | None = None
    granted_by: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the grant gives access at *now*."""
        if self.ended_at is not None or now < self.since:
            return False
        return self.until is None or now < self.until

    @property
    def strength(self) -> int:
        """Orders grants: the treating doctor's rights above an explicit authorisation."""
        return _STRENGTH[self.kind]


@attrs.frozen
class AccessSettings:
    """The patient's controls over professional access (docs/domain-rules.md §4.2).

    :param object_all: no professional may read the record in the normal mode, care team,
        authorised professionals and médecin traitant included (a blocking-all, [U]). Emergency
        access has its own objection, ``object_emergency`` (L1111-17 I); ``mask_all`` hides
        everything in every mode.
    :param object_emergency: no emergency access, bris de glace or SAMU (L1111-17 I).
    :param mask_all: everything is masked, including in emergencies: only the holder
        (and the authors of their documents) see it.
    :param notify_first_access: tell the holder when a professional reads the record for
        the first time (unconfirmed feature, on by default).
    :param object_research: the holder (or their representative) objects to the use of their
        data for research: :meth:`monespace.research.ResearchService.extract` leaves them out
        (CSP L1461-1 and the right to object of GDPR art. 21).

    .. versionchanged:: 0.2
       ``object_research``.
    """

    patient_id: str
    object_all: bool = False
    object_emergency: bool = False
    mask_all: bool = False
    notify_first_access: bool = True
    object_research: bool = False


@attrs.frozen(repr=False)
class EmergencySession:
    """An emergency access (bris de glace or SAMU regulation), open until ``expires_at``."""

    id: str
    patient_id: str
    professional_id: str
    mode: AccessMode
    started_at: datetime
    expires_at: datetime

    def active(self, now: datetime) -> bool:
        """Whether the session still gives access at *now*."""
        return self.started_at <= now < self.expires_at

    def __repr__(self) -> str:
        return f"EmergencySession(id={self.id!r}, mode={self.mode.value!r})"
