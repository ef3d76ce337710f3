"""What every service of a space shares, and the unit of work they run in.

Each service operation follows one shape::

    with core.unit() as unit:                          # one write transaction
        decision = unit.authorize(actor, action, res)  # policy; a denial ends here
        ...change rows through unit.tx...
        unit.record(actor, action, res, decision)      # audit event, same transaction
        unit.notify(...)                               # outbox row, same transaction

A denial rolls back everything the block did, then records the denial in a transaction of
its own (a denial must be traced even though nothing else happens) and raises
:class:`~monespace.errors.AccessDeniedError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import attrs

from ._ids import new_id
from ._settings import Settings
from .access import (
    Action,
    Decision,
    DocumentFacts,
    Facts,
    ProfessionalFacts,
    Resource,
    Rule,
    ThreadFacts,
    decide,
    default_rules,
)
from .access._mapping import emergencies_from_rows, grants_from_rows, settings_from_row
from .accounts._mapping import account_from_row, representation_from_row
from .actors import AccessMode, Actor, ActorKind
from .audit import AuditEvent, Outcome, PendingEvent, chain
from .audit._mapping import event_from_row, event_row
from .clock import Clock
from .crypto import NOTIFICATION_KEY, Keyring
from .errors import AccessDeniedError, MonespaceError
from .plugins import Plugins
from .storage import OutboxRow, StorageBackend, Transaction

__all__ = ["Core", "Unit"]


#: Reads that count as "a professional read the record" (first-access notices).
_READS = frozenset({"document.read", "document.search", "patient.read"})


class _Denied(Exception):
    def __init__(self, event: PendingEvent, rule: str) -> None:
        self.event = event
        self.rule = rule


@attrs.define
class Core:
    """The parts of a space its services share."""

    storage: StorageBackend
    keyring: Keyring
    clock: Clock
    plugins: Plugins
    settings: Settings
    rules: tuple[Rule, ...] | None = None
    #: Called after a professional's first successful read of a record (set by the space).
    first_read: Callable[[Unit, str, str], None] | None = None

    def __attrs_post_init__(self) -> None:
        if self.rules is None:
            self.rules = default_rules(self.settings.access)

    def now(self) -> datetime:
        """The current time from the space's clock."""
        return self.clock.now()

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        """A unit of work: one write transaction with its audit events and notifications."""
        unit: Unit | None = None
        try:
            with self.storage.write() as tx:
                unit = Unit(self, tx, self.now())
                yield unit
        except _Denied as denied:
            self._record_alone(denied.event)
            raise AccessDeniedError(denied.rule) from None
        except MonespaceError:
            # An authorised operation failed (bad input, tampered ciphertext, a conflict):
            # the change is rolled back, but the attempt is still traced, as a failure.
            if unit is not None:
                for pending in unit.authorized:
                    self._record_alone(attrs.evolve(pending, outcome=Outcome.FAILURE))
            raise
        assert unit is not None
        for event in unit.events:
            self.plugins.audit_event(event)

    def _record_alone(self, pending: PendingEvent) -> None:
        with self.storage.write() as tx:
            last = tx.audit.last()
            event = chain(None if last is None else event_from_row(last), pending)
            tx.audit.append(event_row(event))
        self.plugins.audit_event(event)


class Unit:
    """One write transaction of a service operation."""

    def __init__(self, core: Core, tx: Transaction, now: datetime) -> None:
        self.core = core
        self.tx = tx
        self.now = now
        self.events: list[AuditEvent] = []
        self._facts: dict[tuple[Actor, str], Facts] = {}
        #: What was allowed in this unit, to be traced as failures if the unit fails.
        self.authorized: list[PendingEvent] = []

    def authorize(
        self,
        actor: Actor,
        action: Action,
        resource: Resource,
        *,
        purpose: str | None = None,
        document: DocumentFacts | None = None,
        thread: ThreadFacts | None = None,
    ) -> Decision:
        """Ask the policy; on a denial, abandon the unit (see :meth:`Core.unit`).

        The facts the policy needs about the resource's patient (is the space open, does the
        actor represent them) are looked up here, in the same transaction; the service passes
        those about the *document* or the messaging *thread* the action is about, if any.
        """
        facts = attrs.evolve(self.facts(actor, resource), document=document, thread=thread)
        decision = decide(actor, action, resource, facts, self.core.rules)
        pending = self._pending(
            actor=actor,
            action=str(action),
            resource=resource,
            rule=decision.rule,
            outcome=Outcome.SUCCESS if decision.allowed else Outcome.DENIED,
            purpose=purpose,
        )
        if not decision.allowed:
            raise _Denied(pending, decision.rule)
        self.authorized.append(pending)
        return decision

    def facts(self, actor: Actor, resource: Resource) -> Facts:
        """What the policy needs to know about *resource*'s patient, read in this transaction.

        Cached for the unit: a search decides once per document with the same facts.
        """
        patient_id = resource.patient_id
        if patient_id is None:
            if actor.kind is ActorKind.PROFESSIONAL:
                # No record concerned (a lookup, a mailbox): only who the professional is.
                known = self.tx.access.professional(actor.id) is not None
                return Facts(professional=ProfessionalFacts(registered=known))
            return Facts()
        key = (actor, patient_id)
        cached = self._facts.get(key)
        if cached is not None:
            return cached
        account = self.tx.accounts.get(patient_id)
        represents = False
        if actor.kind is ActorKind.REPRESENTATIVE and actor.on_behalf_of == patient_id:
            link = self.tx.representations.get(patient_id, actor.id)
            represents = link is not None and representation_from_row(link).active(self.now)
        facts = Facts(
            space_open=account is not None and account_from_row(account).is_open,
            represents=represents,
            professional=(
                self._professional_facts(actor, patient_id)
                if actor.kind is ActorKind.PROFESSIONAL
                else None
            ),
        )
        self._facts[key] = facts
        return facts

    def _professional_facts(self, actor: Actor, patient_id: str) -> ProfessionalFacts:
        access = self.tx.access
        professional = access.professional(actor.id)
        if professional is None:
            return ProfessionalFacts()
        grants = [
            g for g in grants_from_rows(access.grants(patient_id, actor.id)) if g.active(self.now)
        ]
        strongest = max(grants, key=lambda g: g.strength, default=None)
        settings = settings_from_row(access.settings(patient_id), patient_id)
        emergency = actor.mode is not AccessMode.NORMAL and any(
            s.active(self.now) and s.mode is actor.mode
            for s in emergencies_from_rows(access.emergencies(patient_id, actor.id))
        )
        return ProfessionalFacts(
            registered=True,
            profession=professional.profession,
            grant=None if strongest is None else str(strongest.kind),
            blocked=actor.id in access.blocked(patient_id),
            emergency=emergency,
            object_all=settings.object_all,
            object_emergency=settings.object_emergency,
            mask_all=settings.mask_all,
        )

    def record(
        self,
        actor: Actor,
        action: Action | str,
        resource: Resource,
        decision: Decision | str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event to the trail, in this transaction."""
        rule = decision.rule if isinstance(decision, Decision) else decision
        if (
            actor.kind is ActorKind.PROFESSIONAL
            and outcome is Outcome.SUCCESS
            and str(action) in _READS
            and resource.patient_id is not None
            and self.core.first_read is not None
            and self.tx.access.mark_seen(resource.patient_id, actor.id, self.now)
        ):
            self.core.first_read(self, resource.patient_id, actor.id)
        pending = self._pending(
            actor=actor,
            action=str(action),
            resource=resource,
            rule=rule,
            outcome=outcome,
            purpose=purpose,
        )
        if self.events:
            previous: AuditEvent | None = self.events[-1]
        else:
            last = self.tx.audit.last()
            previous = None if last is None else event_from_row(last)
        event = chain(previous, pending)
        self.tx.audit.append(event_row(event))
        self.events.append(event)
        return event

    def notify(
        self,
        *,
        channel: str,
        recipient: str,
        subject: str,
        body: str,
        kind: str,
        patient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> OutboxRow:
        """Queue a notification, delivered after commit by :meth:`monespace.Space.dispatch`.

        The caller guarantees that *subject* and *body* hold no health content.
        """
        message_id = new_id()
        payload = json.dumps({"recipient": recipient, "subject": subject, "body": body})
        keyring = self.core.keyring
        keyring.get_or_create(self.tx, NOTIFICATION_KEY, self.now)
        row = OutboxRow(
            id=message_id,
            channel=channel,
            sealed=keyring.seal(
                self.tx, NOTIFICATION_KEY, "notification", message_id, payload.encode()
            ),
            kind=kind,
            created_at=self.now,
            next_attempt_at=self.now,
            idempotency_key=idempotency_key or message_id,
            patient_id=patient_id,
        )
        self.tx.outbox.add(row)
        return row

    def _pending(
        self,
        *,
        actor: Actor,
        action: str,
        resource: Resource,
        rule: str,
        outcome: Outcome,
        purpose: str | None,
    ) -> PendingEvent:
        return PendingEvent(
            at=self.now,
            actor_kind=actor.kind,
            actor_id=actor.id,
            action=action,
            outcome=outcome,
            patient_id=resource.patient_id,
            target_kind=resource.kind,
            target_id=resource.id,
            mode=actor.mode,
            purpose=purpose,
            rule=rule,
        )
