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

Units nest: a ``core.unit()`` opened (on the same thread) while another is open joins it, so
several service calls made inside :meth:`Core.unit` (``Space.transaction``) are one
transaction, committed or rolled back together.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

import attrs

from ._ids import new_id
from .actors import Actor, ActorKind
from .audit import (
    AuditEvent,
    Checkpoint,
    CheckpointWatch,
    Outcome,
    PendingEvent,
    chain,
    close_appends,
    close_shards,
    event_from_row,
    event_row,
    shard_for,
)
from .clock import Clock
from .crypto import NOTIFICATION_KEY, Keyring
from .errors import AccessDeniedError, ConflictError, MonespaceError, UnknownProfessionalError
from .policy import Action, Decision, Facts, Resource, Rule, decide, default_rules
from .storage import DocumentRow, OutboxRow, StorageBackend, ThreadRow, Transaction

if TYPE_CHECKING:
    from ._settings import Settings
    from .plugins import Plugins

__all__ = ["Core", "FactsProvider", "Subscriber", "Trace", "Unit", "notice_row"]


class FactsProvider(Protocol):
    """Where a unit gets the facts the policy decides on (``monespace.access`` gathers them;
    the space injects its provider into the :class:`Core`)."""

    def subject(self, tx: Transaction, now: datetime, actor: Actor, resource: Resource) -> Facts:
        """The facts about *actor* and *resource*'s patient, read through *tx*."""
        ...

    def about(
        self,
        facts: Facts,
        now: datetime,
        *,
        document: DocumentRow | None = None,
        thread: ThreadRow | None = None,
    ) -> Facts:
        """*facts* completed with those of the document or thread the action is about."""
        ...

    def document_key(self, document: DocumentRow, now: datetime) -> Hashable:
        """A value equal for two documents whenever :meth:`about` gives them the same facts
        at *now* (cheaper to compute than the facts, to decide once per distinct set)."""
        ...


#: Called with each audit event a unit appends, in the unit's transaction (so what it writes
#: commits, or rolls back, with the event).
Subscriber = Callable[["Unit", AuditEvent], None]


class Trace(NamedTuple):
    """One audit event of a batch, for :meth:`Unit.record_many`: the arguments of
    :meth:`Unit.record`."""

    actor: Actor
    action: Action | str
    resource: Resource
    decision: Decision | str
    outcome: Outcome = Outcome.SUCCESS


def notice_row(
    keyring: Keyring,
    tx: Transaction,
    now: datetime,
    *,
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    kind: str,
    patient_id: str | None = None,
    idempotency_key: str | None = None,
) -> OutboxRow:
    """A notification ready to queue, its payload sealed with the space's notification key
    (which must exist: :meth:`Unit.notify` creates it). A batch seals its notices with this
    before its write transaction begins, then queues them all at once.

    The caller guarantees that *subject* and *body* hold no health content.
    """
    message_id = new_id()
    payload = json.dumps({"recipient": recipient, "subject": subject, "body": body})
    return OutboxRow(
        id=message_id,
        channel=channel,
        sealed=keyring.seal(tx, NOTIFICATION_KEY, "notification", message_id, payload.encode()),
        kind=kind,
        created_at=now,
        next_attempt_at=now,
        idempotency_key=idempotency_key or message_id,
        patient_id=patient_id,
    )


class _Denied(Exception):
    def __init__(self, event: PendingEvent, rule: str, *, unknown_professional: bool) -> None:
        self.event = event
        self.rule = rule
        self.unknown_professional = unknown_professional


def _unknown_professional(actor: Actor, facts: Facts) -> bool:
    """Whether *actor* is a professional the directory does not know. Their denials say so
    (:class:`UnknownProfessionalError`) instead of the uniform "access denied": the directory
    is public, so this tells nothing about the patient, and "access denied" would send them
    looking for a consent that cannot help."""
    return actor.kind is ActorKind.PROFESSIONAL and not (
        facts.professional is not None and facts.professional.registered
    )


@attrs.define
class Core:
    """The parts of a space its services share."""

    storage: StorageBackend
    keyring: Keyring
    clock: Clock
    plugins: Plugins
    settings: Settings
    facts: FactsProvider
    rules: tuple[Rule, ...] | None = None
    #: Whether the rules decide on a document from its facts alone, never from its id: true
    #: of the built-in rules, and what lets listings decide once per distinct set of facts
    #: (:meth:`Unit.document_reader`). False for an embedder's rules, which may read the id.
    rules_ignore_document_ids: bool = attrs.field(default=False, init=False)
    #: Called after each audit event a unit appends (registered by the space).
    subscribers: list[Subscriber] = attrs.Factory(list)
    #: The unit open on each thread, which a nested ``unit()`` joins.
    _open: threading.local = attrs.field(factory=threading.local, init=False, repr=False)
    #: How many patient shards the audit trail has: fixed when the store was created, so
    #: read once.
    _patient_shards: int | None = attrs.field(default=None, init=False, repr=False)
    #: The newest audit checkpoint known to be committed, so that most units need not read
    #: it (:class:`monespace.audit.CheckpointWatch`).
    checkpoints: CheckpointWatch = attrs.field(factory=CheckpointWatch, init=False, repr=False)
    #: By shard, the newest audit event this writer knows to be committed, so that a unit
    #: need not read its shard's head (see :meth:`Unit.record`). Another writer may have
    #: appended since: the storage refuses an event that does not follow the stored head,
    #: and the unit then reads the head and chains again. One entry per shard at most.
    _heads: dict[str, AuditEvent] = attrs.field(factory=dict, init=False, repr=False)
    _heads_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.rules is None:
            self.rules = default_rules(self.settings.access)
            self.rules_ignore_document_ids = True

    def now(self) -> datetime:
        """The current time from the space's clock."""
        return self.clock.now()

    def known_head(self, shard: str) -> AuditEvent | None:
        """The newest event of *shard* this writer saw committed, if any (it may be stale)."""
        return self._heads.get(shard)

    def committed_heads(self, heads: Sequence[AuditEvent]) -> None:
        """Remember *heads*, events just committed, as their shards' newest (never going
        back to an older one when units of several threads commit out of order)."""
        with self._heads_lock:
            for head in heads:
                known = self._heads.get(head.shard)
                if known is None or known.seq < head.seq:
                    self._heads[head.shard] = head

    def forget_head(self, shard: str) -> None:
        """Drop the remembered head of *shard*: it was found stale."""
        with self._heads_lock:
            self._heads.pop(shard, None)

    def audit_shard(self, tx: Transaction, patient_id: str | None) -> str:
        """The audit shard of the events about *patient_id* (decision 0015)."""
        if self._patient_shards is None:
            self._patient_shards = len(tx.audit.shards()) - 1
        return shard_for(patient_id, self._patient_shards)

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        """A unit of work: one write transaction with its audit events and notifications.

        Inside another unit of the same thread it is that unit: what fails propagates to the
        outermost one, which rolls everything back and traces the denial or the failure. A
        failure the caller catches inside the outer block still fails it: the failed call may
        have written half of its change.
        """
        joined: Unit | None = getattr(self._open, "unit", None)
        if joined is not None:
            try:
                yield joined
            except BaseException as exc:
                joined.failure = exc
                raise
            return
        unit: Unit | None = None
        try:
            with self.storage.write() as tx:
                unit = Unit(self, tx, self.now())
                self._open.unit = unit
                try:
                    yield unit
                    if unit.failure is not None:
                        raise unit.failure
                    unit.close_appends()
                finally:
                    self._open.unit = None
        except _Denied as denied:
            self._record_alone(denied.event)
            if denied.unknown_professional:
                raise UnknownProfessionalError() from None
            raise AccessDeniedError(denied.rule) from None
        except MonespaceError:
            # An authorised operation failed (bad input, tampered ciphertext, a conflict):
            # the change is rolled back, but the attempt is still traced, as a failure.
            if unit is not None:
                for pending in unit.authorized:
                    self._record_alone(attrs.evolve(pending, outcome=Outcome.FAILURE))
                # Denials a batch recorded in the unit were rolled back with it: trace them
                # again, alone, as every denial must be.
                for pending in unit.denied:
                    self._record_alone(pending)
            raise
        assert unit is not None
        # Committed: the space-wide keys the unit read may now serve other units, and the
        # checkpoint it wrote, if any, is the newest.
        self.keyring.committed(unit.tx)
        self.committed_heads([head for head, _ in unit._heads.values()])
        if unit.checkpoint is not None:
            self.checkpoints.saw(unit.checkpoint.at)
        for event in unit.events:
            self.plugins.audit_event(event)

    def _record_alone(self, pending: PendingEvent) -> None:
        with self.storage.write() as tx:
            shard = self.audit_shard(tx, pending.patient_id)
            last = tx.audit.last(shard)
            key = self.keyring.audit_key()
            event = chain(None if last is None else event_from_row(last), pending, key, shard=shard)
            tx.audit.append(event_row(event))
            checkpoint = close_appends(
                tx,
                key,
                event,
                previous_seq=event.seq - 1,
                now=self.now(),
                settings=self.settings.audit,
                watch=self.checkpoints,
            )
        self.committed_heads([event])
        if checkpoint is not None:
            self.checkpoints.saw(checkpoint.at)
        self.plugins.audit_event(event)


class Unit:
    """One write transaction of a service operation."""

    def __init__(self, core: Core, tx: Transaction, now: datetime) -> None:
        self.core = core
        self.tx = tx
        self.now = now
        self.events: list[AuditEvent] = []
        #: By shard appended to: the newest event this unit appended, and the shard's
        #: newest ``seq`` before the unit (the head is read once, then kept here; the
        #: storage re-checks it at each append, so two writers never fork a chain).
        self._heads: dict[str, tuple[AuditEvent, int]] = {}
        #: Shards whose head in :attr:`_heads` is the writer's remembered one, not yet
        #: confirmed by an append that the storage accepted.
        self._unconfirmed: set[str] = set()
        #: The signed checkpoint this unit wrote before committing, if one was due.
        self.checkpoint: Checkpoint | None = None
        #: The first failure of a unit nested in this one (see ``Core.unit``).
        self.failure: BaseException | None = None
        self._facts: dict[tuple[Actor, str | None], Facts] = {}
        #: What was allowed in this unit, to be traced as failures if the unit fails.
        self.authorized: list[PendingEvent] = []
        #: What was denied without ending the unit (:meth:`decide_or_record`), to be traced
        #: again if the unit fails.
        self.denied: list[PendingEvent] = []

    def authorize(
        self,
        actor: Actor,
        action: Action,
        resource: Resource,
        *,
        purpose: str | None = None,
        document: DocumentRow | None = None,
        thread: ThreadRow | None = None,
    ) -> Decision:
        """Ask the policy; on a denial, abandon the unit (see :meth:`Core.unit`).

        The facts come from the space's facts provider, read in this transaction; the
        service passes the stored *document* or messaging *thread* the action is about, if
        any, and the provider derives their facts.
        """
        facts = self.facts(actor, resource, document=document, thread=thread)
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
            unknown = _unknown_professional(actor, facts)
            raise _Denied(pending, decision.rule, unknown_professional=unknown)
        self.authorized.append(pending)
        return decision

    def decide_or_record(
        self,
        actor: Actor,
        action: Action,
        resource: Resource,
        *,
        document: DocumentRow | None = None,
    ) -> Decision:
        """Ask the policy, for one item of a batch: an allowed decision is returned as by
        :meth:`authorize`; a denial is recorded in this unit (an audit event with the
        ``denied`` outcome) and returned, and the unit goes on with the other items."""
        facts = self.facts(actor, resource, document=document)
        decision = decide(actor, action, resource, facts, self.core.rules)
        pending = self._pending(
            actor=actor,
            action=str(action),
            resource=resource,
            rule=decision.rule,
            outcome=Outcome.SUCCESS if decision.allowed else Outcome.DENIED,
            purpose=None,
        )
        if decision.allowed:
            self.authorized.append(pending)
        else:
            self.denied.append(pending)
            self.record(actor, action, resource, decision, outcome=Outcome.DENIED)
        return decision

    def refusal(self, actor: Actor, resource: Resource, rule: str) -> MonespaceError:
        """The error to raise for a denial :meth:`decide_or_record` returned: the uniform
        :class:`AccessDeniedError`, or :class:`UnknownProfessionalError` for a professional
        the directory does not know (as :meth:`authorize` does)."""
        if _unknown_professional(actor, self.facts(actor, resource)):
            return UnknownProfessionalError()
        return AccessDeniedError(rule)

    def facts(
        self,
        actor: Actor,
        resource: Resource,
        *,
        document: DocumentRow | None = None,
        thread: ThreadRow | None = None,
    ) -> Facts:
        """What the policy needs to know to decide for *actor* on *resource* (and the
        *document* or *thread* it is about), read in this transaction.

        The facts about the actor and the patient are cached for the unit: a search decides
        once per document with the same facts.
        """
        key = (actor, resource.patient_id)
        subject = self._facts.get(key)
        if subject is None:
            subject = self.core.facts.subject(self.tx, self.now, actor, resource)
            self._facts[key] = subject
        if document is None and thread is None:
            return subject
        return self.core.facts.about(subject, self.now, document=document, thread=thread)

    def document_reader(self, actor: Actor, patient_id: str) -> Callable[[DocumentRow], bool]:
        """Whether *actor* may read each document of *patient_id*'s record it is given, for
        a listing: the listing's own decision is audited, these filter its rows.

        With the built-in rules (:attr:`Core.rules_ignore_document_ids`), documents with the
        same facts get the same answer, so each distinct set of facts is decided once: a
        record's documents share a handful of authors, codes and flags, and deciding on each
        of 10,000 rows was most of the cost of counting what a listing may show.
        """
        rules = self.core.rules
        if not self.core.rules_ignore_document_ids:

            def each(row: DocumentRow) -> bool:
                resource = Resource(patient_id, "document", row.id)
                facts = self.facts(actor, resource, document=row)
                return decide(actor, Action.DOCUMENT_READ, resource, facts, rules).allowed

            return each
        # The subject facts do not name the document: one resource (without an id) and the
        # unit's subject serve every row.
        resource = Resource(patient_id, "document")
        subject = self.facts(actor, resource)
        provider, now = self.core.facts, self.now
        known: dict[Hashable, bool] = {}

        def memoised(row: DocumentRow) -> bool:
            key = provider.document_key(row, now)
            allowed = known.get(key)
            if allowed is None:
                facts = provider.about(subject, now, document=row)
                of_row = Resource(patient_id, "document", row.id)
                allowed = decide(actor, Action.DOCUMENT_READ, of_row, facts, rules).allowed
                known[key] = allowed
            return allowed

        return memoised

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
        """Append an audit event to the trail, in this transaction, and hand it to the
        space's subscribers (:attr:`Core.subscribers`), in this transaction too."""
        rule = decision.rule if isinstance(decision, Decision) else decision
        pending = self._pending(
            actor=actor,
            action=str(action),
            resource=resource,
            rule=rule,
            outcome=outcome,
            purpose=purpose,
        )
        event = self._link(pending, remembered=True)
        try:
            self.tx.audit.append(event_row(event))
        except ConflictError:
            if event.shard not in self._unconfirmed:
                raise
            # Another writer appended to the shard since this writer last did: chain again
            # on the stored head. The unit holds the write lock, so the head read now stays
            # the newest until the unit commits.
            self.core.forget_head(event.shard)
            self._unconfirmed.discard(event.shard)
            del self._heads[event.shard]
            event = self._link(pending)
            self.tx.audit.append(event_row(event))
        self._unconfirmed.discard(event.shard)
        self.events.append(event)
        for subscriber in self.core.subscribers:
            subscriber(self, event)
        return event

    def _link(self, pending: PendingEvent, *, remembered: bool = False) -> AuditEvent:
        """*pending* chained after the newest event of its shard, which becomes the head.

        The shard's head is the one this unit appended last, else (with *remembered*) the
        one the writer remembers from its last commit, unconfirmed until the storage accepts
        the append, else the stored one, read.
        """
        shard = self.core.audit_shard(self.tx, pending.patient_id)
        known = self._heads.get(shard)
        previous: AuditEvent | None
        if known is not None:
            previous, before = known
        else:
            previous = self.core.known_head(shard) if remembered else None
            if previous is not None:
                self._unconfirmed.add(shard)
            else:
                last = self.tx.audit.last(shard)
                previous = None if last is None else event_from_row(last)
            before = 0 if previous is None else previous.seq
        event = chain(previous, pending, self.core.keyring.audit_key(), shard=shard)
        self._heads[shard] = (event, before)
        return event

    def record_many(self, traces: Sequence[Trace]) -> list[AuditEvent]:
        """:meth:`record` each of *traces*, in order, with the events stored in one round
        trip (``AuditRepository.append_many``); the subscribers are then handed each event,
        in order, in this transaction."""
        events = [
            self._link(
                self._pending(
                    actor=trace.actor,
                    action=str(trace.action),
                    resource=trace.resource,
                    rule=(
                        trace.decision.rule
                        if isinstance(trace.decision, Decision)
                        else trace.decision
                    ),
                    outcome=trace.outcome,
                    purpose=None,
                )
            )
            for trace in traces
        ]
        self.tx.audit.append_many([event_row(event) for event in events])
        self.events += events
        for event in events:
            for subscriber in self.core.subscribers:
                subscriber(self, event)
        return events

    def record_failure(
        self, actor: Actor, action: Action, resource: Resource, decision: Decision
    ) -> AuditEvent:
        """Trace, in this unit, an allowed action that failed while the unit goes on (an
        item of a batch): what :meth:`Core.unit` records alone when a whole unit fails."""
        return self.record(actor, action, resource, decision, outcome=Outcome.FAILURE)

    def close_appends(self) -> None:
        """Seal the newest event this unit appended, and write a signed checkpoint when one
        is due (:func:`monespace.audit.close_appends`), before the unit commits."""
        if self._heads:
            self.checkpoint = close_shards(
                self.tx,
                self.core.keyring.audit_key(),
                self._heads,
                now=self.now,
                settings=self.core.settings.audit,
                watch=self.core.checkpoints,
            )

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
        keyring = self.core.keyring
        keyring.get_or_create(self.tx, NOTIFICATION_KEY, self.now)
        row = notice_row(
            keyring,
            self.tx,
            self.now,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            kind=kind,
            patient_id=patient_id,
            idempotency_key=idempotency_key,
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
