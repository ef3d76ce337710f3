"""Audit events: who did what, when, to which ids, with which outcome. Never health content."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import attrs

from ..actors import AccessMode, ActorKind

__all__ = ["AuditEvent", "Checkpoint", "Outcome", "PendingEvent"]


class Outcome(StrEnum):
    """How an audited operation ended."""

    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


@attrs.frozen
class PendingEvent:
    """An event not yet chained: what a service hands to the audit trail.

    :param action: a dotted action name (``"content.read"``).
    :param rule: the policy rule that allowed or denied the action.
    :param purpose: the declared purpose of use (``"TREAT"``, ``"ETREAT"``...), if any.
    """

    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    outcome: Outcome
    patient_id: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    mode: AccessMode = AccessMode.NORMAL
    purpose: str | None = None
    rule: str | None = None


@attrs.frozen
class AuditEvent:
    """A stored, hash-chained audit event.

    ``hash`` is SHA-256 over the previous event's hash and the canonical serialisation of
    every other field (see :func:`monespace.audit.event_hash`), so changing, removing or
    reordering any stored event breaks the chain from that point on.
    """

    seq: int
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    outcome: Outcome
    patient_id: str | None
    target_kind: str | None
    target_id: str | None
    mode: AccessMode
    purpose: str | None
    rule: str | None
    prev_hash: bytes
    hash: bytes


@attrs.frozen
class Checkpoint:
    """The head of the chain at one moment, to be kept *outside* the database.

    A hash chain alone cannot reveal that its newest events were cut off, or that the whole
    database was rolled back to a backup: the shorter chain is still a valid chain. Comparing
    against a checkpoint kept elsewhere does.
    """

    seq: int
    hash: bytes
    at: datetime
