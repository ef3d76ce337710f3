"""Audit rows <-> events, through the row converter of :mod:`monespace.codec`.

The mapping changes no value the hash covers (:func:`~monespace.audit.canonical_bytes` reads
the enum values a row stores), so trails written before rows existed still verify.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

from cattrs.errors import BaseValidationError

from ..codec import restructure
from ..errors import AuditIntegrityError
from ..storage import AuditRow, AuditSealRow, CheckpointRow
from ._model import AuditEvent, Checkpoint, HeadSeal, ShardHead

__all__ = [
    "checkpoint_rows",
    "checkpoints_from_rows",
    "event_from_row",
    "event_row",
    "events_from_rows",
    "seal_from_row",
    "seal_row",
]


def event_row(event: AuditEvent) -> AuditRow:
    """The row that stores *event*."""
    row: AuditRow = restructure(event, AuditRow)
    return row


def event_from_row(row: AuditRow) -> AuditEvent:
    """The event a row stores.

    :raises AuditIntegrityError: when the row holds a value no event has (an unknown actor
        kind, outcome or mode): only an edit outside monespace writes one.
    """
    try:
        event: AuditEvent = restructure(row, AuditEvent)
    except (BaseValidationError, ValueError, TypeError) as exc:
        raise AuditIntegrityError(f"audit event {row.seq} is malformed", seq=row.seq) from exc
    return event


def events_from_rows(rows: Iterable[AuditRow]) -> list[AuditEvent]:
    """The events some rows store, in their order."""
    return [event_from_row(row) for row in rows]


def seal_row(seal: HeadSeal) -> AuditSealRow:
    """The row that stores a head seal."""
    return AuditSealRow(seal.shard, seal.seq, seal.hash, seal.key_id, seal.mac)


def seal_from_row(row: AuditSealRow) -> HeadSeal:
    """The head seal a row stores."""
    return HeadSeal(row.shard, row.seq, row.hash, row.key_id, row.mac)


def checkpoint_rows(checkpoint: Checkpoint) -> list[CheckpointRow]:
    """The rows, one per shard head, that store *checkpoint*."""
    return [
        CheckpointRow(
            checkpoint.number,
            head.shard,
            head.seq,
            head.hash,
            head.count,
            checkpoint.at,
            checkpoint.root,
            checkpoint.key_id,
            checkpoint.signature,
        )
        for head in checkpoint.heads
    ]


def checkpoints_from_rows(rows: Iterable[CheckpointRow]) -> list[Checkpoint]:
    """The checkpoints some rows (ordered by number) store.

    The rows of one checkpoint must agree on what they share; a disagreement can only come
    from an edit, and is left for the signature check to reject (the first row wins).
    """
    found = []
    for _, group in groupby(rows, key=lambda row: row.number):
        shard_rows = list(group)
        first = shard_rows[0]
        heads = tuple(ShardHead(r.shard, r.seq, r.hash, r.count) for r in shard_rows)
        found.append(
            Checkpoint(first.number, first.at, heads, first.root, first.key_id, first.signature)
        )
    return found
