"""Delivering queued notifications through the configured transports."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import timedelta

import attrs

from ._unit import Core
from .actors import Actor
from .audit import Outcome
from .crypto import NOTIFICATION_KEY
from .errors import TransportError
from .policy import Resource
from .storage import OutboxRow, OutboxStatus
from .transport import Envelope, Transport

__all__ = ["DispatchReport", "dispatch", "dispatcher_name"]

log = logging.getLogger("monespace.outbox")

_DISPATCHER = Actor.system("outbox")


@attrs.frozen
class DispatchReport:
    """What one :meth:`monespace.Space.dispatch` run did.

    :ivar sent: delivered (or recognised by the transport as already delivered).
    :ivar retrying: failed this time, will be retried later.
    :ivar dead: failed for good (permanent error, or out of attempts).
    :ivar no_transport: left pending because no transport is configured for their channel.
    """

    sent: int = 0
    retrying: int = 0
    dead: int = 0
    no_transport: int = 0


def dispatcher_name() -> str:
    """A name for one dispatcher: host, process and a random part (several dispatchers may
    run in one process, on threads)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dispatch(
    core: Core,
    transports: Mapping[str, Transport],
    *,
    limit: int,
    dispatcher: str | None = None,
    lease: timedelta = timedelta(minutes=5),
) -> DispatchReport:
    """Claim up to *limit* due notifications for this dispatcher, and try each once.

    Several dispatchers (threads, processes, machines) may run at once: each claims its
    notifications in a write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), holds
    them until *lease* has passed, and releases each with its outcome. A dispatcher that
    crashes leaves its claims to end; another then takes them over. A lease must outlast
    the slowest delivery: if it ends during one, another dispatcher may send the same
    notification again, which the transport recognises by its id, as it recognises any
    redelivery.
    """
    name = dispatcher or dispatcher_name()
    now = core.now()
    with core.storage.write() as tx:
        claimed = tx.outbox.claim(now, dispatcher=name, lease_until=now + lease, limit=limit)
    counts = {"sent": 0, "retrying": 0, "dead": 0, "no_transport": 0}
    for row in claimed:
        transport = transports.get(row.channel)
        if transport is None:
            # Released at once: a dispatcher configured for that channel may take it.
            _release(core, row)
            counts["no_transport"] += 1
            continue
        envelope = _envelope(core, row)
        try:
            transport.send(envelope)
        except TransportError as exc:
            updated = _failed(core, row, exc)
            counts["dead" if updated.status is OutboxStatus.DEAD else "retrying"] += 1
            # The log names the notification and the channel, never its recipient or text.
            log.warning(
                "delivery of notification %s on channel %s failed (attempt %d): %s",
                row.id,
                row.channel,
                updated.attempts,
                exc,
            )
        else:
            # Delivered: erase the recipient and text, which the space no longer needs.
            delivered = attrs.evolve(
                row,
                status=OutboxStatus.SENT,
                attempts=row.attempts + 1,
                sent_at=core.now(),
                last_error=None,
                sealed=None,
                claimed_by=None,
                lease_until=None,
            )
            _finish(core, delivered, Outcome.SUCCESS, row.claimed_by)
            counts["sent"] += 1
    return DispatchReport(**counts)


def _release(core: Core, row: OutboxRow) -> None:
    with core.storage.write() as tx:
        current = tx.outbox.get(row.id)
        if current is not None and current.claimed_by == row.claimed_by:
            tx.outbox.update(attrs.evolve(current, claimed_by=None, lease_until=None))


def _envelope(core: Core, row: OutboxRow) -> Envelope:
    assert row.sealed is not None  # only delivered notifications are erased
    with core.storage.read() as tx:
        raw = core.keyring.open(tx, NOTIFICATION_KEY, "notification", row.id, row.sealed)
    payload = json.loads(raw)
    return Envelope(
        row.id,
        row.channel,
        payload["recipient"],
        payload["subject"],
        payload["body"],
        row.kind,
        row.created_at,
    )


def _failed(core: Core, row: OutboxRow, exc: TransportError) -> OutboxRow:
    attempts = row.attempts + 1
    settings = core.settings
    give_up = exc.permanent or attempts >= settings.outbox_max_attempts
    now = core.now()
    updated = attrs.evolve(
        row,
        attempts=attempts,
        status=OutboxStatus.DEAD if give_up else OutboxStatus.PENDING,
        # A notification given up on is never sent: its recipient and text are erased.
        sealed=None if give_up else row.sealed,
        next_attempt_at=now if give_up else now + settings.retry_delay(attempts),
        last_error=str(exc)[:500],
        claimed_by=None,
        lease_until=None,
    )
    _finish(core, updated, Outcome.FAILURE, row.claimed_by)
    return updated


def _finish(core: Core, row: OutboxRow, outcome: Outcome, claimed_by: str | None) -> None:
    with core.unit() as unit:
        current = unit.tx.outbox.get(row.id)
        if current is None or current.claimed_by != claimed_by:
            # The lease ended during the delivery and another dispatcher took the
            # notification over: its outcome is the one kept.
            log.warning("notification %s: claim lost before its outcome was recorded", row.id)
            return
        unit.tx.outbox.update(row)
        unit.record(
            _DISPATCHER,
            "notification.send",
            Resource(row.patient_id, "notification", row.id),
            "outbox_delivery",
            outcome=outcome,
        )
