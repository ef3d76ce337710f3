"""The hash chain: canonical serialisation, hashing and verification.

This module depends on nothing but the event model, so that an auditor can verify an exported
trail with it alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime

import attrs

from ._model import AuditEvent, Checkpoint, PendingEvent

__all__ = ["GENESIS_HASH", "VerifyReport", "canonical_bytes", "chain", "event_hash", "verify"]

#: The ``prev_hash`` of the first event.
GENESIS_HASH = bytes(32)

# A domain-separation prefix: these hashes can never collide with a hash computed for another
# purpose over the same bytes. The version lets the leaf format evolve (new fields get a v2).
_PREFIX = b"monespace-audit-v1\x00"


def _timestamp(moment: datetime) -> str:
    # Fixed-width, microsecond, always UTC: one instant has exactly one serialisation.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(seq: int, event: PendingEvent | AuditEvent) -> bytes:
    """Serialise the hashed fields of an event: sorted keys, no spaces, UTF-8."""
    fields = {
        "v": 1,
        "seq": seq,
        "at": _timestamp(event.at),
        "actor_kind": str(event.actor_kind),
        "actor_id": event.actor_id,
        "action": event.action,
        "outcome": str(event.outcome),
        "patient_id": event.patient_id,
        "target_kind": event.target_kind,
        "target_id": event.target_id,
        "mode": str(event.mode),
        "purpose": event.purpose,
        "rule": event.rule,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(prev_hash: bytes, seq: int, event: PendingEvent | AuditEvent) -> bytes:
    """Hash of one event given its predecessor's hash."""
    return hashlib.sha256(_PREFIX + prev_hash + canonical_bytes(seq, event)).digest()


def chain(prev: AuditEvent | None, pending: PendingEvent) -> AuditEvent:
    """Turn *pending* into the event that follows *prev* (``None`` for the first event)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    return AuditEvent(
        seq=seq,
        at=pending.at.astimezone(UTC),
        actor_kind=pending.actor_kind,
        actor_id=pending.actor_id,
        action=pending.action,
        outcome=pending.outcome,
        patient_id=pending.patient_id,
        target_kind=pending.target_kind,
        target_id=pending.target_id,
        mode=pending.mode,
        purpose=pending.purpose,
        rule=pending.rule,
        prev_hash=prev_hash,
        hash=event_hash(prev_hash, seq, pending),
    )


@attrs.frozen
class VerifyReport:
    """The result of :func:`verify`.

    :ivar ok: ``True`` when every event verified (and the checkpoint, if one was given).
    :ivar checked: how many events were read.
    :ivar first_bad_seq: the sequence number of the first event that fails, or ``None``.
    :ivar reason: what is wrong with it, in words.
    :ivar head: the last good event's sequence number and hash, for a new checkpoint.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head: Checkpoint | None = None


def verify(events: Iterable[AuditEvent], checkpoint: Checkpoint | None = None) -> VerifyReport:
    """Check a trail read in ``seq`` order.

    Detects an edited field (the hash no longer matches), a removed event (a gap in ``seq``
    and a broken ``prev_hash`` link), an inserted or reordered event (broken link). Removal
    of the newest events, or a rollback of the whole database, is detected only against a
    *checkpoint* taken earlier and kept elsewhere: the trail must still contain the
    checkpoint's event with the same hash.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    last: AuditEvent | None = None
    checkpoint_seen = checkpoint is None
    for event in events:
        checked += 1
        problem = None
        if event.seq != expected_seq:
            problem = f"expected event {expected_seq} but found event {event.seq}"
        elif not hmac.compare_digest(event.prev_hash, prev_hash):
            problem = "its link to the previous event is broken"
        elif not hmac.compare_digest(event.hash, event_hash(prev_hash, event.seq, event)):
            problem = "its content does not match its hash"
        if problem is not None:
            return VerifyReport(False, checked, expected_seq, problem, _head(last))
        if checkpoint is not None and event.seq == checkpoint.seq:
            if not hmac.compare_digest(event.hash, checkpoint.hash):
                return VerifyReport(
                    False, checked, event.seq, "it differs from the checkpoint", _head(last)
                )
            checkpoint_seen = True
        prev_hash = event.hash
        expected_seq += 1
        last = event
    if not checkpoint_seen:
        assert checkpoint is not None
        return VerifyReport(
            False,
            checked,
            expected_seq,
            f"the trail ends before checkpoint event {checkpoint.seq}: events were removed "
            "from the end, or the database was rolled back",
            _head(last),
        )
    return VerifyReport(True, checked, None, None, _head(last))


def _head(event: AuditEvent | None) -> Checkpoint | None:
    return None if event is None else Checkpoint(event.seq, event.hash, event.at)
