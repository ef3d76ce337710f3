"""Audit events: who did what, when, to which ids, with which outcome. Never health content."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from ..actors import AccessMode, ActorKind

__all__ = [
    "CHAIN_KEYED",
    "CHAIN_UNKEYED",
    "DEFAULT_SHARD",
    "AuditEvent",
    "AuditSettings",
    "Checkpoint",
    "HeadSeal",
    "Outcome",
    "PendingEvent",
    "ShardHead",
    "shard_for",
]

#: The chain version of events written before the trail was keyed: plain SHA-256.
CHAIN_UNKEYED = 1
#: The chain version of keyed events: HMAC-SHA256 under an audit key.
CHAIN_KEYED = 2
#: The shard of events without a patient, and of every event written before the trail was
#: sharded (decision 0015); the only shard of a space created with no patient shards.
DEFAULT_SHARD = "0"


def shard_for(patient_id: str | None, patient_shards: int) -> str:
    """The shard of the events about *patient_id* when the trail has *patient_shards*
    patient shards (``"1"`` to ``str(patient_shards)``): a stable hash of the id (SHA-256,
    never Python's per-process ``hash``), so every process and every release agrees.
    Events without a patient, and every event when there are no patient shards, go to
    :data:`DEFAULT_SHARD`.

    .. versionadded:: 0.3
    """
    if patient_id is None or patient_shards <= 0:
        return DEFAULT_SHARD
    digest = hashlib.sha256(patient_id.encode()).digest()
    return str(1 + int.from_bytes(digest[:8], "big") % patient_shards)


class Outcome(StrEnum):
    """How an audited operation ended."""

    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


@attrs.frozen
class PendingEvent:
    """An event not yet chained: what a service hands to the audit trail.

    :param action: a dotted action name (``"content.read"``).
    :param rule: the policy rule that allowed or denied the action.
    :param purpose: the declared purpose of use (``"TREAT"``, ``"ETREAT"``...), if any.
    """

    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    outcome: Outcome
    patient_id: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    mode: AccessMode = AccessMode.NORMAL
    purpose: str | None = None
    rule: str | None = None


@attrs.frozen
class AuditEvent:
    """A stored, hash-chained audit event.

    ``hash`` is an HMAC-SHA256, under the audit key ``key_id``, of the shard, the previous
    event's hash and the canonical serialisation of every other field (see
    :func:`monespace.audit.keyed_hash`), so changing, removing or reordering any stored
    event breaks the chain from that point on, and nobody without the key can recompute it.
    Events written before the trail was keyed (``chain`` 1) hold a plain SHA-256
    (:func:`monespace.audit.event_hash`) and no ``key_id``.

    .. versionchanged:: 0.2
       ``key_id``, ``shard`` and ``chain``.
    """

    seq: int
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    outcome: Outcome
    patient_id: str | None
    target_kind: str | None
    target_id: str | None
    mode: AccessMode
    purpose: str | None
    rule: str | None
    prev_hash: bytes
    hash: bytes
    key_id: str | None = None
    shard: str = DEFAULT_SHARD
    chain: int = CHAIN_UNKEYED


@attrs.frozen
class ShardHead:
    """The head of one shard's chain: its newest event and how many events it holds.

    .. versionadded:: 0.2
    """

    shard: str
    seq: int
    hash: bytes
    count: int


@attrs.frozen
class Checkpoint:
    """A signed statement of the heads of every shard at one moment.

    A chain alone cannot reveal that its newest events were cut off, or that the whole
    database was rolled back to a backup: the shorter chain is still a valid chain. A
    checkpoint can, and more so a copy kept outside the database. ``root`` is the Merkle
    root of the heads (:func:`monespace.audit.merkle_root`); ``signature`` is the Ed25519
    signature, by the audit key ``key_id``, of the number, the time and that root
    (:func:`monespace.audit.checkpoint_bytes`).

    .. versionchanged:: 0.2
       Signed, numbered, and covering the heads of every shard.
    """

    number: int
    at: datetime
    heads: tuple[ShardHead, ...]
    root: bytes
    key_id: str
    signature: bytes

    def head(self, shard: str = DEFAULT_SHARD) -> ShardHead | None:
        """The head of *shard* this checkpoint covers, if any."""
        return next((head for head in self.heads if head.shard == shard), None)


@attrs.frozen
class HeadSeal:
    """The newest event of a shard, keyed: written with every append, so that cutting the
    newest events off the trail (even after the last checkpoint) is detected.

    :ivar mac: HMAC-SHA256 under the audit key ``key_id`` (see
        :func:`monespace.audit.seal_bytes`).

    .. versionadded:: 0.2
    """

    shard: str
    seq: int
    hash: bytes
    key_id: str
    mac: bytes


@attrs.frozen
class AuditSettings:
    """When signed checkpoints are written.

    A checkpoint is written in the transaction that appends events, when the trail crosses
    a multiple of ``checkpoint_every`` events, or when the newest checkpoint is older than
    ``checkpoint_interval`` (and on the first append, when there is none yet). Events after
    the newest checkpoint are still protected by the head seal, against anyone without
    the key.

    :param checkpoint_every: events between two checkpoints.
    :param checkpoint_interval: the longest time between two checkpoints while events are
        written; ``None`` to count events only.

    .. versionadded:: 0.2
    """

    checkpoint_every: int = attrs.field(default=1000, validator=attrs.validators.ge(1))
    checkpoint_interval: timedelta | None = timedelta(minutes=15)
