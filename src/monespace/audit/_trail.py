"""Appending to the trail: the head seals and the automatic signed checkpoints.

The unit of work calls :func:`close_shards` once per transaction that appended events, in
that transaction, so the seals and any checkpoint commit (or roll back) with the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from ..crypto import AuditKey
from ..storage import Transaction
from ._chain import seal
from ._checkpoint import sign_checkpoint
from ._mapping import checkpoint_rows, checkpoints_from_rows, seal_row
from ._model import AuditEvent, AuditSettings, Checkpoint, ShardHead

__all__ = ["CheckpointWatch", "close_appends", "close_shards", "write_checkpoint"]


@attrs.define
class CheckpointWatch:
    """The time of the newest signed checkpoint a writer knows to be committed, so that an
    append need not read the newest checkpoint to learn that none is due.

    Checkpoints are only ever added: a committed checkpoint's time is a lower bound of the
    newest one's, whatever other processes wrote since, so an append that is not due
    against it is not due at all. Only when it might be due is the newest checkpoint read.
    Record only committed times: those read from the store, and those of checkpoints whose
    transaction committed.

    .. versionadded:: 0.3
    """

    newest_at: datetime | None = None

    def saw(self, at: datetime) -> None:
        """Remember that a checkpoint of time *at* is committed."""
        if self.newest_at is None or at > self.newest_at:
            self.newest_at = at


def close_shards(
    tx: Transaction,
    key: AuditKey,
    heads: Mapping[str, tuple[AuditEvent, int]],
    *,
    now: datetime,
    settings: AuditSettings,
    watch: CheckpointWatch | None = None,
) -> Checkpoint | None:
    """Seal the newest event of each shard a transaction appended to and, when one is due,
    write a signed checkpoint over every shard's head; return it (``None`` when none was
    due).

    :param heads: by shard, the newest event appended and the newest ``seq`` of that shard
        before this transaction.
    :param watch: the writer's knowledge of the newest committed checkpoint, which spares
        reading it while no checkpoint can be due by time; it learns what is read here.
        The caller records a returned checkpoint in it once the transaction commits.

    .. versionadded:: 0.3
    """
    every = settings.checkpoint_every
    due = False
    for head, previous_seq in heads.values():
        tx.audit.seal(seal_row(seal(key, head)))
        due = due or head.seq // every > previous_seq // every
    if not heads:
        return None
    if not due:
        interval = settings.checkpoint_interval
        known = None if watch is None else watch.newest_at
        if known is not None and (interval is None or now - known < interval):
            return None
        newest = checkpoints_from_rows(tx.audit.last_checkpoint())
        if newest and watch is not None:
            watch.saw(newest[-1].at)
        due = not newest or (interval is not None and now - newest[-1].at >= interval)
    return write_checkpoint(tx, key, None, now) if due else None


def close_appends(
    tx: Transaction,
    key: AuditKey,
    head: AuditEvent,
    *,
    previous_seq: int,
    now: datetime,
    settings: AuditSettings,
    watch: CheckpointWatch | None = None,
) -> Checkpoint | None:
    """:func:`close_shards` for a transaction that appended to one shard only.

    :param previous_seq: the newest ``seq`` of *head*'s shard before this transaction.
    """
    return close_shards(
        tx, key, {head.shard: (head, previous_seq)}, now=now, settings=settings, watch=watch
    )


def write_checkpoint(
    tx: Transaction, key: AuditKey, head: AuditEvent | None, now: datetime
) -> Checkpoint | None:
    """Sign and store a checkpoint of every shard's sealed head (*head*, when given, is one
    of them, sealed in this transaction); ``None`` when no shard has an event yet.

    .. versionchanged:: 0.3
       Over every shard (a Merkle root of their heads); *head* may be ``None``.
    """
    heads = {
        row.shard: ShardHead(row.shard, row.seq, row.hash, row.seq) for row in tx.audit.head_seals()
    }
    if head is not None:
        # Sequence numbers run 1, 2, 3... without gaps in a shard (the storage refuses
        # anything else), so a shard holds exactly head.seq events.
        heads[head.shard] = ShardHead(head.shard, head.seq, head.hash, head.seq)
    if not heads:
        return None
    newest = tx.audit.last_checkpoint()
    number = 1 if not newest else newest[0].number + 1
    checkpoint = sign_checkpoint(key, number, now, list(heads.values()))
    tx.audit.add_checkpoint(checkpoint_rows(checkpoint))
    return checkpoint
