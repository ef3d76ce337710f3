"""The access policy: one place where every decision is taken, deny by default.

Rules are small named pure functions. :func:`decide` asks them in order; the first that has an
opinion decides, and when none does the request is denied by ``deny_by_default``. The
services call :func:`decide` before touching storage and record every decision, allowed or
denied, in the audit trail, so no storage backend can weaken the policy.

Later capabilities (care team, blocking, médecin traitant, emergency access) add rules here;
the structure does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

import attrs

from ..actors import Actor, ActorKind

__all__ = ["Action", "Decision", "Resource", "Rule", "decide", "default_rules"]


class Action(StrEnum):
    """What an actor wants to do. The value is also the audit action name."""

    PATIENT_REGISTER = "patient.register"
    PATIENT_READ = "patient.read"
    CONTENT_WRITE = "content.write"
    CONTENT_READ = "content.read"
    CONTENT_SHRED = "patient.shred"
    KEYS_ROTATE = "keys.rotate"
    AUDIT_READ = "audit.read"


#: Actions that only the operator may take.
_ADMINISTRATIVE = frozenset({Action.PATIENT_REGISTER, Action.CONTENT_SHRED, Action.KEYS_ROTATE})

#: What the operator may read: administrative data and the audit trail, never health content.
_OPERATOR_READS = frozenset({Action.PATIENT_READ, Action.AUDIT_READ})


@attrs.frozen
class Resource:
    """What an action is about: the patient it belongs to and, optionally, one object.

    :param patient_id: the patient whose space holds the resource (``None`` for space-wide).
    :param kind: the kind of object (``"content"``, ``"patient"``...).
    :param id: the object's id.
    """

    patient_id: str | None
    kind: str
    id: str | None = None


@attrs.frozen
class Decision:
    """The outcome of :func:`decide` and the name of the rule that took it."""

    allowed: bool
    rule: str


#: A rule returns a decision, or ``None`` when it has no opinion on the request.
Rule = Callable[[Actor, Action, Resource], Decision | None]


def operator_administers(actor: Actor, action: Action, resource: Resource) -> Decision | None:
    """The operator (a system actor) may register patients, rotate keys and shred data."""
    if action in _ADMINISTRATIVE:
        return Decision(actor.kind is ActorKind.SYSTEM, "operator_administers")
    return None


def patient_owns_space(actor: Actor, action: Action, resource: Resource) -> Decision | None:
    """A patient reads and writes what is in their own space."""
    if (
        actor.kind is ActorKind.PATIENT
        and resource.patient_id is not None
        and actor.id == resource.patient_id
    ):
        return Decision(True, "patient_owns_space")
    return None


def operator_feeds_record(actor: Actor, action: Action, resource: Resource) -> Decision | None:
    """The operator may add to a record (reimbursement data from the health insurer, legacy
    DMP migration: CSP R1111-42 1° d) but, like any writer, not read it back."""
    if action is Action.CONTENT_WRITE and actor.kind is ActorKind.SYSTEM:
        return Decision(resource.patient_id is not None, "operator_feeds_record")
    return None


def operator_reads_administrative(
    actor: Actor, action: Action, resource: Resource
) -> Decision | None:
    """The operator may read administrative data (identity, contacts) and the audit trail,
    which hold no health content; health content stays out of its reach."""
    if action in _OPERATOR_READS and actor.kind is ActorKind.SYSTEM:
        return Decision(True, "operator_reads_administrative")
    return None


def default_rules() -> tuple[Rule, ...]:
    """The rules in force, in the order they are asked."""
    return (
        operator_administers,
        patient_owns_space,
        operator_feeds_record,
        operator_reads_administrative,
    )


def decide(
    actor: Actor,
    action: Action,
    resource: Resource,
    rules: Sequence[Rule] | None = None,
) -> Decision:
    """Decide whether *actor* may perform *action* on *resource*.

    :return: the first opinion of *rules* (by default :func:`default_rules`), or a denial by
        the ``deny_by_default`` rule when none has one.
    """
    for rule in rules if rules is not None else default_rules():
        decision = rule(actor, action, resource)
        if decision is not None:
            return decision
    return Decision(False, "deny_by_default")
