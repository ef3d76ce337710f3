"""Signed checkpoints: the heads of every shard, as a Merkle root, signed with Ed25519.

A checkpoint is a few hundred bytes that live outside the database too (a file, a WORM
store, another organisation): whoever holds one can prove that the trail once reached that
head, and so detect a trail cut short or rolled back, even by someone with write access to
the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from ..crypto import verify_signature
from ._model import Checkpoint, ShardHead

__all__ = [
    "SigningKey",
    "checkpoint_bytes",
    "checkpoint_problem",
    "head_leaf",
    "merkle_root",
    "sign_checkpoint",
]

_CHECKPOINT_PREFIX = b"monespace-audit-checkpoint-v1\x00"


class SigningKey(Protocol):
    """What signs and checks checkpoints (:class:`monespace.crypto.AuditKey` is one)."""

    id: str

    def sign(self, data: bytes) -> bytes:
        """The signature of *data*."""
        ...

    def public_key(self) -> bytes:
        """The raw Ed25519 public key."""
        ...


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def head_leaf(head: ShardHead) -> bytes:
    """The canonical bytes of one shard head, a leaf of the Merkle tree."""
    fields = {"shard": head.shard, "seq": head.seq, "hash": head.hash.hex(), "count": head.count}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def merkle_root(heads: Sequence[ShardHead]) -> bytes:
    """The Merkle tree hash of *heads* in shard order (RFC 6962, section 2.1).

    Leaves and inner nodes are hashed with different prefixes (``0x00`` and ``0x01``), so
    a leaf can never pass for a node. One shard's root is its leaf's hash; with many shards,
    one signature covers them all, and a shard's head is proved with ``log2(n)`` hashes.
    """
    leaves = [
        hashlib.sha256(b"\x00" + head_leaf(h)).digest()
        for h in sorted(heads, key=lambda h: h.shard)
    ]
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _tree(leaves)


def _tree(nodes: list[bytes]) -> bytes:
    if len(nodes) == 1:
        return nodes[0]
    split = 1 << ((len(nodes) - 1).bit_length() - 1)  # the largest power of two below n
    return hashlib.sha256(b"\x01" + _tree(nodes[:split]) + _tree(nodes[split:])).digest()


def checkpoint_bytes(number: int, at: datetime, root: bytes, key_id: str) -> bytes:
    """What a checkpoint's signature covers."""
    fields = {"number": number, "at": _timestamp(at), "root": root.hex(), "key_id": key_id}
    return _CHECKPOINT_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign_checkpoint(
    key: SigningKey, number: int, at: datetime, heads: Sequence[ShardHead]
) -> Checkpoint:
    """A checkpoint of *heads*, signed with *key*."""
    ordered = tuple(sorted(heads, key=lambda h: h.shard))
    root = merkle_root(ordered)
    moment = at.astimezone(UTC)
    signature = key.sign(checkpoint_bytes(number, moment, root, key.id))
    return Checkpoint(number, moment, ordered, root, key.id, signature)


def checkpoint_problem(
    checkpoint: Checkpoint, public_key: Callable[[str], bytes | None]
) -> str | None:
    """What is wrong with *checkpoint*, or ``None`` when its signature holds.

    :param public_key: the public key of an audit key id, or ``None`` if unknown. It must
        come from the key provider (or a key published out of band), never from the
        database or the checkpoint file, which an attacker could have written.
    """
    if merkle_root(checkpoint.heads) != checkpoint.root:
        return f"checkpoint {checkpoint.number} does not match the heads it lists"
    key = public_key(checkpoint.key_id)
    if key is None:
        return (
            f"checkpoint {checkpoint.number} is signed with key {checkpoint.key_id}, which "
            "the key provider does not hold"
        )
    message = checkpoint_bytes(checkpoint.number, checkpoint.at, checkpoint.root, checkpoint.key_id)
    if not verify_signature(key, message, checkpoint.signature):
        return f"checkpoint {checkpoint.number} has an invalid signature"
    return None
