"""The keyed chain: canonical serialisation, keyed hashing, the head seal, verification.

This module depends on the event model and :mod:`._checkpoint` only (keys are handed in),
so that an auditor holding the audit keys can verify an exported trail with it alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import attrs

from ._checkpoint import checkpoint_problem
from ._model import (
    CHAIN_KEYED,
    CHAIN_UNKEYED,
    DEFAULT_SHARD,
    AuditEvent,
    Checkpoint,
    HeadSeal,
    PendingEvent,
    ShardHead,
)

__all__ = [
    "GENESIS_HASH",
    "ChainKey",
    "StoredEvent",
    "VerifyReport",
    "canonical_bytes",
    "chain",
    "event_hash",
    "keyed_hash",
    "seal",
    "seal_bytes",
    "verify",
]

#: The ``prev_hash`` of the first event.
GENESIS_HASH = bytes(32)

# Domain-separation prefixes: these hashes can never collide with a hash computed for another
# purpose over the same bytes (an event, a head seal, a checkpoint).
_PREFIX = b"monespace-audit-v1\x00"
_KEYED_PREFIX = b"monespace-audit-v2\x00"
_SEAL_PREFIX = b"monespace-audit-head-v1\x00"


class ChainKey(Protocol):
    """An audit key as the chain uses it (:class:`monespace.crypto.AuditKey` is one)."""

    id: str

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of *data*."""
        ...

    def public_key(self) -> bytes:
        """The raw Ed25519 public key that checks this key's checkpoint signatures."""
        ...


#: The audit key of an id, or ``None`` when the key provider does not hold it.
KeyLookup = Callable[[str], "ChainKey | None"]


def _timestamp(moment: datetime) -> str:
    # Fixed-width, microsecond, always UTC: one instant has exactly one serialisation.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StoredEvent(NamedTuple):
    """An event as stored: the values of its columns, its timestamp as the stored text.

    Verification hashes these directly: timestamps and enum values are stored in their
    canonical form already, so the canonical bytes need no parsing and no re-serialising.
    A stored text that is not canonical (an equivalent timestamp written another way) gives
    other bytes, and so fails its hash: stricter, never looser.

    .. versionadded:: 0.3
    """

    seq: int
    at: str
    actor_kind: str
    actor_id: str
    action: str
    outcome: str
    patient_id: str | None
    target_kind: str | None
    target_id: str | None
    mode: str
    purpose: str | None
    rule: str | None
    prev_hash: bytes
    hash: bytes
    key_id: str | None
    shard: str
    chain: int


def canonical_bytes(seq: int, event: PendingEvent | AuditEvent | StoredEvent) -> bytes:
    """Serialise the hashed fields of an event: sorted keys, no spaces, UTF-8."""
    if isinstance(event, StoredEvent):
        return _stored_bytes(seq, event)
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
    return _CANONICAL.encode(fields).encode()


#: One encoder for every event: sorted keys, no spaces, UTF-8 text kept as it is.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The string escaping JSONEncoder(ensure_ascii=False) applies (C-accelerated where built).
_STRING: Callable[[str], str] = json.encoder.encode_basestring


def _text(value: str | None) -> str:
    return "null" if value is None else _STRING(value)


def _stored_bytes(seq: int, e: StoredEvent) -> bytes:
    # The fields in sorted key order, written as _CANONICAL writes them (same separators,
    # same escaping, None as null): the same bytes as canonical_bytes of the event, without
    # building a dict and an encoder per event (a test compares the two on any text).
    return (
        f'{{"action":{_STRING(e.action)},"actor_id":{_STRING(e.actor_id)},'
        f'"actor_kind":{_STRING(e.actor_kind)},"at":{_STRING(e.at)},"mode":{_STRING(e.mode)},'
        f'"outcome":{_STRING(e.outcome)},"patient_id":{_text(e.patient_id)},'
        f'"purpose":{_text(e.purpose)},"rule":{_text(e.rule)},"seq":{int(seq)},'
        f'"target_id":{_text(e.target_id)},"target_kind":{_text(e.target_kind)},"v":1}}'
    ).encode()


def event_hash(prev_hash: bytes, seq: int, event: PendingEvent | AuditEvent | StoredEvent) -> bytes:
    """The unkeyed hash of one event (chain version 1, written before the trail was keyed).

    Anyone can compute it: it is still verified, for trails written by earlier versions,
    but never written any more.
    """
    return hashlib.sha256(_PREFIX + prev_hash + canonical_bytes(seq, event)).digest()


def keyed_hash(
    key: ChainKey,
    shard: str,
    prev_hash: bytes,
    seq: int,
    event: PendingEvent | AuditEvent | StoredEvent,
) -> bytes:
    """The keyed hash of one event (chain version 2): HMAC-SHA256 under *key* of the shard,
    the predecessor's hash and the canonical bytes."""
    return key.mac(
        _KEYED_PREFIX + shard.encode() + b"\x00" + prev_hash + canonical_bytes(seq, event)
    )


def chain(
    prev: AuditEvent | None,
    pending: PendingEvent,
    key: ChainKey,
    *,
    shard: str = DEFAULT_SHARD,
) -> AuditEvent:
    """Turn *pending* into the keyed event that follows *prev* (``None`` for the first)."""
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
        hash=keyed_hash(key, shard, prev_hash, seq, pending),
        key_id=key.id,
        shard=shard,
        chain=CHAIN_KEYED,
    )


def seal_bytes(shard: str, seq: int, head_hash: bytes) -> bytes:
    """What a head seal's MAC covers."""
    fields = {"shard": shard, "seq": seq, "hash": head_hash.hex()}
    return _SEAL_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def seal(key: ChainKey, head: AuditEvent) -> HeadSeal:
    """The seal that names *head* as the newest event of its shard."""
    mac = key.mac(seal_bytes(head.shard, head.seq, head.hash))
    return HeadSeal(head.shard, head.seq, head.hash, key.id, mac)


@attrs.frozen
class VerifyReport:
    """The result of :func:`verify`.

    :ivar ok: ``True`` when every event, the head seal and every checkpoint verified.
    :ivar checked: how many events were read.
    :ivar first_bad_seq: the sequence number of the first event that fails (or that is
        missing), or ``None``.
    :ivar reason: what is wrong, in words (never health data: sequence numbers and key ids).
    :ivar head: the last good event's shard head, for comparison with a checkpoint.
    :ivar anchor: the newest signed checkpoint the trail was checked against, if any.
    :ivar anchor_source: where that checkpoint came from (``"database"`` or ``"file"``).
    :ivar unkeyed: how many events were written before the trail was keyed.

    .. versionchanged:: 0.2
       ``anchor``, ``anchor_source`` and ``unkeyed``; ``head`` is a :class:`ShardHead`.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head: ShardHead | None = None
    anchor: Checkpoint | None = None
    anchor_source: str | None = None
    unkeyed: int = 0


def verify(
    events: Iterable[AuditEvent | StoredEvent],
    keys: KeyLookup,
    *,
    checkpoints: Iterable[tuple[Checkpoint, str]] = (),
    head_seal: HeadSeal | None = None,
    legacy_until: int = 0,
    history: bool = False,
    shard: str = DEFAULT_SHARD,
) -> VerifyReport:
    """Check one shard's trail, read in ``seq`` order.

    Detects, at the first event concerned:

    - an edited event, with or without its hash recomputed: a keyed hash cannot be
      recomputed without the audit key, and an unkeyed one is accepted only for events
      written before the trail was keyed (``seq <= legacy_until``, and never after a keyed
      event);
    - a removed, inserted or reordered event (a gap in ``seq``, a broken ``prev_hash`` link);
    - a forged append (its keyed hash does not verify, or its key is unknown);
    - a truncated tail: the trail ends before the head seal, before a signed checkpoint's
      head or count, or before ``legacy_until``; the head seal or a checkpoint differs;
    - a trail emptied on a space with history.

    :param keys: the audit key of an id (from the key provider, never from the database).
    :param checkpoints: signed checkpoints and where each came from (``"database"``,
        ``"file"``); each must be validly signed and match the trail.
    :param head_seal: the stored head seal, or ``None`` if there is none.
    :param legacy_until: the last ``seq`` written before the trail was keyed (recorded by
        the schema migration that keyed it; 0 for a space created keyed).
    :param history: whether the space shows other signs of having been used (data keys,
        persons): an empty trail is then a deleted one.
    """
    verifier = _Verifier(keys, shard, legacy_until, head_seal)
    return verifier.run(events, checkpoints, history=history)


class _Problem(Exception):
    """The first thing wrong with the trail: where (``seq``) and why."""

    def __init__(self, seq: int | None, reason: str) -> None:
        self.seq = seq
        self.reason = reason


class _Verifier:
    def __init__(
        self, keys: KeyLookup, shard: str, legacy_until: int, head_seal: HeadSeal | None
    ) -> None:
        self.keys = keys
        self.known_keys: dict[str, ChainKey | None] = {}
        self.shard = shard
        self.legacy_until = legacy_until
        self.head_seal = head_seal
        # The hash of the event the head seal names, once read.
        self.sealed_hash: bytes | None = None
        self.checked = 0
        self.unkeyed = 0
        self.last: AuditEvent | StoredEvent | None = None
        self.keyed_seen = False
        # Signed heads this shard must contain: seq -> (hash, checkpoint, source).
        self.expected: dict[int, tuple[bytes, Checkpoint, str]] = {}
        # The newest of them: the trail must reach at least its seq and count.
        self.required: tuple[ShardHead, Checkpoint, str] | None = None

    def run(
        self,
        events: Iterable[AuditEvent | StoredEvent],
        checkpoints: Iterable[tuple[Checkpoint, str]],
        *,
        history: bool,
    ) -> VerifyReport:
        try:
            for checkpoint, source in checkpoints:
                self.add_checkpoint(checkpoint, source)
            for event in events:
                self.checked += 1
                self.check_event(event)
            self.check_end(history=history)
        except _Problem as problem:
            return VerifyReport(
                False,
                self.checked,
                problem.seq,
                problem.reason,
                _head(self.shard, self.last),
                None,
                None,
                self.unkeyed,
            )
        anchor = None if self.required is None else self.required[1]
        anchor_source = None if self.required is None else self.required[2]
        return VerifyReport(
            True,
            self.checked,
            None,
            None,
            _head(self.shard, self.last),
            anchor,
            anchor_source,
            self.unkeyed,
        )

    def key(self, key_id: str) -> ChainKey | None:
        # A trail holds a handful of key ids (one per master key): look each up once.
        if key_id not in self.known_keys:
            self.known_keys[key_id] = self.keys(key_id)
        return self.known_keys[key_id]

    def public_key(self, key_id: str) -> bytes | None:
        key = self.keys(key_id)
        return None if key is None else key.public_key()

    def add_checkpoint(self, checkpoint: Checkpoint, source: str) -> None:
        problem = checkpoint_problem(checkpoint, self.public_key)
        head = checkpoint.head(self.shard)
        if problem is not None:
            raise _Problem(None if head is None else head.seq, f"{problem} ({source})")
        if head is None:
            return
        known = self.expected.get(head.seq)
        if known is not None and not hmac.compare_digest(known[0], head.hash):
            raise _Problem(
                head.seq,
                f"signed checkpoints {known[1].number} and {checkpoint.number} disagree "
                f"about event {head.seq}",
            )
        self.expected[head.seq] = (head.hash, checkpoint, source)
        newest = self.required
        if newest is None or (head.seq, head.count, checkpoint.number) > (
            newest[0].seq,
            newest[0].count,
            newest[1].number,
        ):
            self.required = (head, checkpoint, source)

    def check_event(self, event: AuditEvent | StoredEvent) -> None:
        seq = 1 if self.last is None else self.last.seq + 1
        prev_hash = GENESIS_HASH if self.last is None else self.last.hash
        problem = self.event_problem(event, seq, prev_hash)
        if problem is None and event.seq in self.expected:
            signed_hash, checkpoint, source = self.expected[event.seq]
            if not hmac.compare_digest(event.hash, signed_hash):
                problem = f"it differs from signed checkpoint {checkpoint.number} ({source})"
        if problem is not None:
            raise _Problem(seq, problem)
        if event.chain == CHAIN_KEYED:
            self.keyed_seen = True
        else:
            self.unkeyed += 1
        if self.head_seal is not None and event.seq == self.head_seal.seq:
            self.sealed_hash = event.hash
        self.last = event

    def event_problem(
        self, event: AuditEvent | StoredEvent, seq: int, prev_hash: bytes
    ) -> str | None:
        if event.seq != seq:
            return f"expected event {seq} but found event {event.seq}"
        if event.shard != self.shard:
            return f"it belongs to shard {event.shard!r}, not {self.shard!r}"
        if not hmac.compare_digest(event.prev_hash, prev_hash):
            return "its link to the previous event is broken"
        if event.chain == CHAIN_KEYED:
            return self.keyed_problem(event, seq, prev_hash)
        return self.unkeyed_problem(event, seq, prev_hash)

    def unkeyed_problem(
        self, event: AuditEvent | StoredEvent, seq: int, prev_hash: bytes
    ) -> str | None:
        if event.chain != CHAIN_UNKEYED:
            return f"it has an unknown chain version {event.chain}"
        if self.keyed_seen or seq > self.legacy_until:
            return (
                "it is unkeyed where only keyed events may be (forged, or recomputed "
                "without the key)"
            )
        if not hmac.compare_digest(event.hash, event_hash(prev_hash, seq, event)):
            return "its content does not match its hash"
        return None

    def keyed_problem(
        self, event: AuditEvent | StoredEvent, seq: int, prev_hash: bytes
    ) -> str | None:
        key = None if event.key_id is None else self.key(event.key_id)
        if key is None:
            return (
                f"it is keyed with key {event.key_id}, which the key provider does not "
                "hold (a forged event, or a master key retired too early)"
            )
        if not hmac.compare_digest(event.hash, keyed_hash(key, self.shard, prev_hash, seq, event)):
            return "its content does not match its keyed hash (edited, or forged without the key)"
        return None

    def check_end(self, *, history: bool) -> None:
        head_seal = self.head_seal
        last_seq = 0 if self.last is None else self.last.seq
        if self.required is not None:
            head, checkpoint, source = self.required
            if last_seq < head.seq or self.checked < head.count:
                raise _Problem(
                    last_seq + 1,
                    f"the trail ends at event {last_seq} but signed checkpoint "
                    f"{checkpoint.number} ({source}) covers {head.count} events up to event "
                    f"{head.seq}: events were removed from the end, or the database was "
                    "rolled back",
                )
        if last_seq < self.legacy_until:
            raise _Problem(
                last_seq + 1,
                f"the trail ends at event {last_seq} but held {self.legacy_until} events "
                "when it became keyed: events were removed from the end",
            )
        if head_seal is not None:
            self.check_seal(head_seal, last_seq)
        elif self.keyed_seen:
            raise _Problem(last_seq, "the head seal of the trail was removed")
        if self.checked == 0 and history:
            raise _Problem(
                1, "the trail is empty but the space holds data: its events were deleted"
            )

    def check_seal(self, head_seal: HeadSeal, last_seq: int) -> None:
        problem = _seal_problem(head_seal, self.keys, self.shard)
        if problem is not None:
            raise _Problem(head_seal.seq, problem)
        if last_seq < head_seal.seq:
            raise _Problem(
                last_seq + 1,
                f"the trail ends at event {last_seq} but its head seal names event "
                f"{head_seal.seq}: events were removed from the end",
            )
        # Events after the seal were appended after it was read (verification does not
        # hold one snapshot for the whole trail); their keyed hashes vouch for them.
        if self.sealed_hash is None or not hmac.compare_digest(self.sealed_hash, head_seal.hash):
            raise _Problem(head_seal.seq, "it is not the event its head seal names")


def _seal_problem(head_seal: HeadSeal, keys: KeyLookup, shard: str) -> str | None:
    if head_seal.shard != shard:
        return f"the head seal belongs to shard {head_seal.shard!r}"
    key = keys(head_seal.key_id)
    if key is None:
        return (
            f"the head seal is keyed with key {head_seal.key_id}, which the key provider "
            "does not hold"
        )
    mac = key.mac(seal_bytes(head_seal.shard, head_seal.seq, head_seal.hash))
    if not hmac.compare_digest(mac, head_seal.mac):
        return "the head seal is forged"
    return None


def _head(shard: str, event: AuditEvent | StoredEvent | None) -> ShardHead | None:
    # Sequence numbers run 1, 2, 3... without gaps in a verified shard: the count is the seq.
    return None if event is None else ShardHead(shard, event.seq, event.hash, event.seq)
