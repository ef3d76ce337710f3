"""The tamper-evident audit trail: a keyed hash chain, a head seal and signed checkpoints.

.. versionadded:: 0.1
.. versionchanged:: 0.2
   Keyed (HMAC-SHA256) and anchored to Ed25519-signed checkpoints.
"""

from ._chain import (
    GENESIS_HASH,
    ChainKey,
    StoredEvent,
    VerifyReport,
    canonical_bytes,
    chain,
    event_hash,
    keyed_hash,
    seal,
    seal_bytes,
    verify,
)
from ._checkpoint import (
    SigningKey,
    checkpoint_bytes,
    checkpoint_problem,
    head_leaf,
    merkle_root,
    sign_checkpoint,
)
from ._export import CHECKPOINTS_FORMAT, checkpoints_from_json, checkpoints_to_json
from ._mapping import (
    checkpoint_rows,
    checkpoints_from_rows,
    event_from_row,
    event_row,
    events_from_rows,
    seal_from_row,
    seal_row,
)
from ._model import (
    CHAIN_KEYED,
    CHAIN_UNKEYED,
    DEFAULT_SHARD,
    AuditEvent,
    AuditSettings,
    Checkpoint,
    HeadSeal,
    Outcome,
    PendingEvent,
    ShardHead,
    shard_for,
)
from ._trail import CheckpointWatch, close_appends, close_shards, write_checkpoint

__all__ = [
    "CHAIN_KEYED",
    "CHAIN_UNKEYED",
    "CHECKPOINTS_FORMAT",
    "DEFAULT_SHARD",
    "GENESIS_HASH",
    "AuditEvent",
    "AuditSettings",
    "ChainKey",
    "Checkpoint",
    "CheckpointWatch",
    "HeadSeal",
    "Outcome",
    "PendingEvent",
    "ShardHead",
    "SigningKey",
    "StoredEvent",
    "VerifyReport",
    "canonical_bytes",
    "chain",
    "checkpoint_bytes",
    "checkpoint_problem",
    "checkpoint_rows",
    "checkpoints_from_json",
    "checkpoints_from_rows",
    "checkpoints_to_json",
    "close_appends",
    "close_shards",
    "event_from_row",
    "event_hash",
    "event_row",
    "events_from_rows",
    "head_leaf",
    "keyed_hash",
    "merkle_root",
    "seal",
    "seal_bytes",
    "seal_from_row",
    "seal_row",
    "shard_for",
    "sign_checkpoint",
    "verify",
    "write_checkpoint",
]
