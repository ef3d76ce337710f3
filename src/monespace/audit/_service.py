"""``space.audit``: reading and verifying the trail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..actors import Actor
from ..errors import AuditIntegrityError
from ..policy import Action, Resource
from ._chain import VerifyReport, verify
from ._mapping import events_from_rows
from ._model import AuditEvent, Checkpoint

if TYPE_CHECKING:
    from .._unit import Core

__all__ = ["AuditService"]

_PAGE = 2000


class AuditService:
    """The hash-chained audit trail of a space.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def _scan(self) -> Iterator[AuditEvent]:
        # Each page in its own read transaction: a long verification does not hold a
        # snapshot (and so the WAL) open for its whole duration. Events are append-only, so
        # pages read at different moments still form one prefix of the trail.
        after = 0
        while True:
            with self._core.storage.read() as tx:
                try:
                    page = events_from_rows(tx.audit.scan(after_seq=after, limit=_PAGE))
                except AuditIntegrityError as exc:
                    # A row that does not parse: hand over the good rows before it first, so
                    # that an earlier break is still reported as the first one.
                    if exc.seq is not None and int(exc.seq) > after + 1:
                        good = tx.audit.scan(after_seq=after, limit=int(exc.seq) - after - 1)
                        yield from events_from_rows(good)
                    raise
            if not page:
                return
            yield from page
            after = page[-1].seq

    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyReport:
        """Check the whole chain (and, if given, that it still holds *checkpoint*).

        Needs no key and no actor: it reads identifiers and hashes only.
        """
        checked = 0

        def counted() -> Iterator[AuditEvent]:
            nonlocal checked
            for event in self._scan():
                checked += 1
                yield event

        try:
            return verify(counted(), checkpoint)
        except AuditIntegrityError as exc:
            # A stored row that does not even parse: broken at that event.
            return VerifyReport(False, checked + 1, exc.seq, "it is malformed")

    def checkpoint(self) -> Checkpoint | None:
        """The current head of the chain, to store outside the database (``None`` if empty)."""
        with self._core.storage.read() as tx:
            last = tx.audit.last()
        return None if last is None else Checkpoint(last.seq, last.hash, last.at)

    def count(self) -> int:
        """How many events the trail holds."""
        with self._core.storage.read() as tx:
            return tx.audit.count()

    def events(self, actor: Actor, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        """Events of the whole space, for the operator (reading the trail is itself audited)."""
        with self._core.unit() as unit:
            resource = Resource(None, "audit")
            decision = unit.authorize(actor, Action.AUDIT_READ, resource)
            events = events_from_rows(unit.tx.audit.scan(after_seq=after_seq, limit=limit))
            unit.record(actor, Action.AUDIT_READ, resource, decision)
            return events

    def for_patient(
        self, actor: Actor, patient_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        """The raw events of one patient's space, for the operator.

        Holders and their representatives read their history through
        :meth:`monespace.AccessService.history`, which words it plainly and leaves out events
        about documents still hidden from them (a result awaiting its announcement, what a
        minor keeps from their parents): the raw trail would reveal them.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "audit")
            decision = unit.authorize(actor, Action.AUDIT_TRAIL, resource)
            rows = unit.tx.audit.for_patient(patient_id, after_seq=after_seq, limit=limit)
            events = events_from_rows(rows)
            unit.record(actor, Action.AUDIT_TRAIL, resource, decision)
            return events
