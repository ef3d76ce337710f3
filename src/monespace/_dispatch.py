"""Delivering queued notifications through the configured transports."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import attrs

from ._unit import Core
from .actors import Actor
from .audit import Outcome
from .crypto import NOTIFICATION_KEY
from .errors import TransportError
from .policy import Resource
from .storage import OutboxRow, OutboxStatus
from .transport import Envelope, Transport

__all__ = ["DispatchReport", "dispatch"]

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


def dispatch(core: Core, transports: Mapping[str, Transport], *, limit: int) -> DispatchReport:
    """Try every due notification once."""
    now = core.now()
    with core.storage.read() as tx:
        due = tx.outbox.due(now, limit=limit)
    counts = {"sent": 0, "retrying": 0, "dead": 0, "no_transport": 0}
    for row in due:
        transport = transports.get(row.channel)
        if transport is None:
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
            )
            _finish(core, delivered, Outcome.SUCCESS)
            counts["sent"] += 1
    return DispatchReport(**counts)


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
    )
    _finish(core, updated, Outcome.FAILURE)
    return updated


def _finish(core: Core, row: OutboxRow, outcome: Outcome) -> None:
    with core.unit() as unit:
        unit.tx.outbox.update(row)
        unit.record(
            _DISPATCHER,
            "notification.send",
            Resource(row.patient_id, "notification", row.id),
            "outbox_delivery",
            outcome=outcome,
        )
