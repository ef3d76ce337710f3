"""Who performs an operation.

Every service operation names its :class:`Actor`. Nothing reads or writes health data without
one, and the access policy decides on the actor, never on the caller's say-so.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import attrs

__all__ = ["AccessMode", "Actor", "ActorKind"]


class ActorKind(StrEnum):
    """The kinds of actor the rules distinguish."""

    PATIENT = "patient"
    """The holder of the space."""
    REPRESENTATIVE = "representative"
    """A legal representative of a minor, or the representative of a protected adult."""
    PROFESSIONAL = "professional"
    """A health professional (identified by RPPS) or an establishment."""
    APP = "app"
    """A referenced third-party application acting under the patient's grant."""
    SYSTEM = "system"
    """The operator itself: batch jobs, deadlines, migrations, administration."""
    VENDOR = "vendor"
    """The publisher of an application, applying for its référencement (never a reader of
    health data)."""
    AUTHORITY = "authority"
    """A party of the référencement: a reviewer, the commission, the minister's office
    (the :attr:`Actor.role` says which)."""


class AccessMode(StrEnum):
    """How a professional is accessing the record (recorded in every audit event)."""

    NORMAL = "normal"
    EMERGENCY = "emergency"
    """Bris de glace: emergency access by a professional (CSP L1111-17, R1111-48)."""
    REGULATION = "regulation"
    """Access by a SAMU regulating doctor (centre 15)."""


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value or value != value.strip() or any(ord(c) < 32 for c in value):
        raise ValueError(
            f"'{attribute.name}' must be a non-empty identifier without spaces at the ends "
            "or control characters"
        )


def _scope_set(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("scopes must be a collection of scope names, not one string")
    return frozenset(value)


@attrs.frozen
class Actor:
    """An authenticated party performing an operation.

    :param kind: what kind of actor this is.
    :param id: a stable identifier: a patient id, an RPPS number, an app's client id, or the
        name of a system job.
    :param mode: the access mode (professionals only; others are always ``normal``).
    :param on_behalf_of: for a representative or an app, the id of the patient they act
        for.
    :param scopes: for an app, the scopes of the token it presents (``documents.read``...);
        what it may do is also bounded by the patient's consent and rights.
    :param role: for an authority, its part in the référencement (``reviewer``,
        ``commission``, ``minister``).
    """

    kind: ActorKind = attrs.field(converter=ActorKind)
    id: str = attrs.field(validator=_non_empty)
    mode: AccessMode = attrs.field(default=AccessMode.NORMAL, converter=AccessMode)
    on_behalf_of: str | None = None
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_scope_set)
    role: str | None = None

    @classmethod
    def system(cls, job: str = "monespace") -> Actor:
        """The operator, running *job* (the job's name appears in the audit trail)."""
        return cls(ActorKind.SYSTEM, job)

    @classmethod
    def patient(cls, patient_id: str) -> Actor:
        """The holder of the space *patient_id*."""
        return cls(ActorKind.PATIENT, patient_id)

    @classmethod
    def app(cls, client_id: str, patient_id: str, scopes: Iterable[str] = ()) -> Actor:
        """The referenced application *client_id* acting for *patient_id* with a token
        carrying *scopes* (what it may do is decided by the policy, never by the token alone).

        .. versionadded:: 0.2
        """
        return cls(ActorKind.APP, client_id, on_behalf_of=patient_id, scopes=frozenset(scopes))

    @classmethod
    def vendor(cls, vendor_id: str) -> Actor:
        """The publisher *vendor_id* of an application (its account at the CNAM service).

        .. versionadded:: 0.2
        """
        return cls(ActorKind.VENDOR, vendor_id)

    @classmethod
    def authority(cls, person_id: str, role: str) -> Actor:
        """*person_id* acting in the référencement as *role*: ``reviewer`` (the instruction
        of the dossier), ``commission`` (the commission de référencement's opinion) or
        ``minister`` (the minister's office: decision, convention, suspension, withdrawal).

        .. versionadded:: 0.2
        """
        return cls(ActorKind.AUTHORITY, person_id, role=role)
