"""Legal representatives: who may act for whom, and until when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import attrs

__all__ = ["ProofRecord", "Representation", "RepresentationKind"]


class RepresentationKind(StrEnum):
    """Why someone acts for the holder (CSP R1111-40 applies the Code civil to both)."""

    LEGAL_GUARDIAN = "legal_guardian"
    """A parent (or guardian) of a minor; ends at majority."""
    PROTECTED_ADULT = "protected_adult"
    """The person in charge of a legal protection measure with representation."""


@attrs.frozen
class Representation:
    """*representative_id* acts for *patient_id* from ``since`` until ``ends_at`` (exclusive).

    ``ended_at`` is set when the link actually ended (majority reached, removed, death).
    """

    patient_id: str
    representative_id: str
    kind: RepresentationKind
    since: datetime
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the representative may act for the holder at *now*."""
        if self.ended_at is not None or now < self.since:
            return False
        return self.ends_at is None or now < self.ends_at


@attrs.frozen
class ProofRecord:
    """What a person proves their identity with at activation, kept as keyed hashes, and the
    failed attempts counted against them.

    :param vitale_index: keyed hash of the carte Vitale serial number.
    :param birth_index: keyed hash of the birth date.
    :param failures: failed attempts against the person, until ``AttemptPolicy.window``
        passes without one.
    :param last_failure_at: when the last of them happened.
    """

    patient_id: str
    vitale_index: bytes
    birth_index: bytes
    failures: int = 0
    last_failure_at: datetime | None = None
