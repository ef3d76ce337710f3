"""Appending to the trail: the head seal and the automatic signed checkpoints.

The unit of work calls :func:`close_appends` once per transaction that appended events,
in that transaction, so the seal and any checkpoint commit (or roll back) with the events.
"""

from __future__ import annotations

from datetime import datetime

from ..crypto import AuditKey
from ..storage import Transaction
from ._chain import seal
from ._checkpoint import sign_checkpoint
from ._mapping import checkpoint_rows, checkpoints_from_rows, seal_row
from ._model import AuditEvent, AuditSettings, Checkpoint, ShardHead

__all__ = ["close_appends", "write_checkpoint"]


def close_appends(
    tx: Transaction,
    key: AuditKey,
    head: AuditEvent,
    *,
    previous_seq: int,
    now: datetime,
    settings: AuditSettings,
) -> Checkpoint | None:
    """Seal *head* as the newest event of its shard and, when one is due, write a signed
    checkpoint; return it (``None`` when none was due).

    :param previous_seq: the newest ``seq`` before this transaction's events.
    """
    tx.audit.seal(seal_row(seal(key, head)))
    every = settings.checkpoint_every
    due = head.seq // every > previous_seq // every
    if not due:
        newest = checkpoints_from_rows(tx.audit.last_checkpoint())
        interval = settings.checkpoint_interval
        due = not newest or (interval is not None and now - newest[-1].at >= interval)
    return write_checkpoint(tx, key, head, now) if due else None


def write_checkpoint(tx: Transaction, key: AuditKey, head: AuditEvent, now: datetime) -> Checkpoint:
    """Sign and store a checkpoint of *head* (the newest event of the one SQLite shard)."""
    newest = tx.audit.last_checkpoint()
    number = 1 if not newest else newest[0].number + 1
    # Sequence numbers run 1, 2, 3... without gaps (the storage refuses anything else), so
    # the shard holds exactly head.seq events.
    checkpoint = sign_checkpoint(
        key, number, now, [ShardHead(head.shard, head.seq, head.hash, head.seq)]
    )
    tx.audit.add_checkpoint(checkpoint_rows(checkpoint))
    return checkpoint
