"""``space.audit``: reading, verifying and checkpointing the trail."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import attrs

from ..actors import Actor
from ..errors import AuditIntegrityError
from ..policy import Action, Resource
from ._chain import ChainKey, KeyLookup, StoredEvent, VerifyReport, verify
from ._export import checkpoints_from_json, checkpoints_to_json
from ._mapping import checkpoints_from_rows, events_from_rows, seal_from_row
from ._model import DEFAULT_SHARD, AuditEvent, Checkpoint, HeadSeal
from ._trail import write_checkpoint

if TYPE_CHECKING:
    from .._unit import Core

__all__ = ["AuditService"]

_PAGE = 2000
#: Events per read while verifying: few round trips, a bounded memory (about 3 MB).
_VERIFY_PAGE = 10_000
#: Shards verified at once (each thread reads its own shard).
_VERIFY_THREADS = 4


class AuditService:
    """The hash-chained audit trail of a space.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def _scan_stored(self, shard: str) -> Iterator[StoredEvent]:
        # The stored values, hashed as they are (see StoredEvent); large pages, each in its
        # own read transaction, as in _scan.
        after = 0
        while True:
            with self._core.storage.read() as tx:
                page = tx.audit.scan_stored(after_seq=after, limit=_VERIFY_PAGE, shard=shard)
            if not page:
                return
            for values in page:
                yield _stored(values)
            after = int(page[-1][0])

    def verify(self, checkpoints: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Check the whole trail against the key provider's audit keys, its head seal, the
        signed checkpoints stored in the database and *checkpoints* kept elsewhere (read
        with :meth:`load_checkpoints`).

        Needs no actor (it reads identifiers and hashes only), but needs the audit keys: the
        current master key and the previous ones that chained older events.

        .. versionchanged:: 0.2
           Keyed; anchored to signed checkpoints; *checkpoints* replaces ``checkpoint``.
        """
        keyring = self._core.keyring

        def keys(key_id: str) -> ChainKey | None:
            return keyring.audit_key_by_id(key_id)

        # Read before the events: what a concurrent writer appends after this snapshot is
        # verified by its keyed hashes, and never taken for a truncation.
        with self._core.storage.read() as tx:
            shards = tx.audit.shards()
            legacy = {shard: tx.audit.legacy_until(shard) for shard in shards}
            seals = {row.shard: seal_from_row(row) for row in tx.audit.head_seals()}
            try:
                stored = checkpoints_from_rows(tx.audit.checkpoints())
            except AuditIntegrityError as exc:
                return VerifyReport(False, 0, exc.seq, "it is malformed")
            # Data keys exist from the first person registered: an empty trail beside them
            # was emptied.
            history = bool(tx.keys.master_key_ids()) or tx.patients.count() > 0
        sources = [(c, "database") for c in stored] + [(c, "file") for c in checkpoints]
        # The shards are '0' to 'N' without a gap, and every shard a checkpoint names is
        # one of them: a shard cannot be made to disappear with its events.
        expected = [str(n) for n in range(len(shards))]
        signed = {head.shard for checkpoint, _ in sources for head in checkpoint.heads}
        if shards != expected or not signed <= set(shards):
            return VerifyReport(
                False, 0, None, "the list of audit shards was altered (a shard is missing)"
            )

        def one(shard: str) -> VerifyReport:
            return self._verify_shard(shard, keys, sources, seals.get(shard), legacy[shard])

        if len(shards) > 1:
            # Each shard is a chain of its own: read and checked side by side.
            with ThreadPoolExecutor(max_workers=min(len(shards), _VERIFY_THREADS)) as pool:
                reports = list(pool.map(one, shards))
        else:
            reports = [one(shard) for shard in shards]
        checked = sum(r.checked for r in reports)
        for shard, report in zip(shards, reports, strict=True):
            if not report.ok:
                reason = report.reason if len(shards) == 1 else f"shard {shard}: {report.reason}"
                return attrs.evolve(report, checked=checked, reason=reason)
        if checked == 0 and history:
            return VerifyReport(
                False, 0, 1, "the trail is empty but the space holds data: its events were deleted"
            )
        main = reports[0]
        anchors = [r for r in reports if r.anchor is not None]
        return attrs.evolve(
            main,
            checked=checked,
            unkeyed=sum(r.unkeyed for r in reports),
            anchor=anchors[0].anchor if anchors else None,
            anchor_source=anchors[0].anchor_source if anchors else None,
        )

    def _verify_shard(
        self,
        shard: str,
        keys: KeyLookup,
        sources: list[tuple[Checkpoint, str]],
        stored_seal: HeadSeal | None,
        legacy_until: int,
    ) -> VerifyReport:
        checked = 0

        def counted() -> Iterator[StoredEvent]:
            nonlocal checked
            for event in self._scan_stored(shard):
                checked += 1
                yield event

        try:
            return verify(
                counted(),
                keys,
                checkpoints=sources,
                head_seal=stored_seal,
                legacy_until=legacy_until,
                history=False,
                shard=shard,
            )
        except AuditIntegrityError as exc:
            # A stored row that does not even parse: broken at that event.
            return VerifyReport(False, checked + 1, exc.seq, "it is malformed")

    def checkpoint(self) -> Checkpoint | None:
        """Sign and store a checkpoint of the current head now (``None`` on an empty trail),
        besides those written automatically (:class:`monespace.audit.AuditSettings`).

        .. versionchanged:: 0.2
           Signed and stored; it used to return the unsigned head.
        """
        key = self._core.keyring.audit_key()
        with self._core.storage.write() as tx:
            return write_checkpoint(tx, key, None, self._core.now())

    def checkpoints(self) -> list[Checkpoint]:
        """Every signed checkpoint stored in the database, oldest first.

        .. versionadded:: 0.2
        """
        with self._core.storage.read() as tx:
            return checkpoints_from_rows(tx.audit.checkpoints())

    def public_keys(self) -> dict[str, bytes]:
        """The Ed25519 public keys (raw, 32 bytes) that signed the stored checkpoints, by key
        id, for auditors who check exported checkpoints without the key provider.

        .. versionadded:: 0.2
        """
        keys: dict[str, bytes] = {}
        for checkpoint in self.checkpoints():
            if checkpoint.key_id not in keys:
                key = self._core.keyring.audit_key_by_id(checkpoint.key_id)
                if key is not None:
                    keys[checkpoint.key_id] = key.public_key()
        return keys

    def export_checkpoints(self, target: str | os.PathLike[str] | TextIO) -> int:
        """Write every stored checkpoint, and the public keys that sign them, as a JSON
        document to *target* (a path, replaced atomically, or an open text stream: a pipe,
        a socket, a transport's file); return how many.

        Keep the copy where whoever can write the database cannot: it is what reveals a
        trail rolled back, or deleted with its checkpoints.

        .. versionadded:: 0.2
        """
        checkpoints = self.checkpoints()
        document = checkpoints_to_json(checkpoints, self.public_keys())
        if isinstance(target, (str, os.PathLike)):
            path = Path(target)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(document, encoding="utf-8")
            os.replace(tmp, path)
        else:
            target.write(document)
        return len(checkpoints)

    @staticmethod
    def load_checkpoints(source: str | os.PathLike[str] | TextIO) -> list[Checkpoint]:
        """The checkpoints of a document :meth:`export_checkpoints` wrote, for :meth:`verify`.

        :raises ValidationError: when it is not such a document.

        .. versionadded:: 0.2
        """
        if isinstance(source, (str, os.PathLike)):
            text = Path(source).read_text(encoding="utf-8")
        else:
            text = source.read()
        return checkpoints_from_json(text)

    def count(self) -> int:
        """How many events the trail holds."""
        with self._core.storage.read() as tx:
            return tx.audit.count()

    def events(
        self, actor: Actor, *, after_seq: int = 0, limit: int = 1000, shard: str = DEFAULT_SHARD
    ) -> list[AuditEvent]:
        """Events of one shard of the trail (each shard is a chain of its own: decision
        0015), for the operator (reading the trail is itself audited).

        .. versionchanged:: 0.3
           *shard*.
        """
        with self._core.unit() as unit:
            resource = Resource(None, "audit")
            decision = unit.authorize(actor, Action.AUDIT_READ, resource)
            events = events_from_rows(
                unit.tx.audit.scan(after_seq=after_seq, limit=limit, shard=shard)
            )
            unit.record(actor, Action.AUDIT_READ, resource, decision)
            return events

    def for_patient(
        self,
        actor: Actor,
        patient_id: str,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        after_shard: str = DEFAULT_SHARD,
    ) -> list[AuditEvent]:
        """The raw events of one patient's space, for the operator, ordered by shard then
        ``seq``: the next page starts after the last event's ``(shard, seq)``.

        Holders and their representatives read their history through
        :meth:`monespace.AccessService.history`, which words it plainly and leaves out events
        about documents still hidden from them (a result awaiting its announcement, what a
        minor keeps from their parents): the raw trail would reveal them.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "audit")
            decision = unit.authorize(actor, Action.AUDIT_TRAIL, resource)
            rows = unit.tx.audit.for_patient(
                patient_id, after_seq=after_seq, limit=limit, after_shard=after_shard
            )
            events = events_from_rows(rows)
            unit.record(actor, Action.AUDIT_TRAIL, resource, decision)
            return events


def _stored(values: tuple[object, ...]) -> StoredEvent:
    # A driver may hand binary columns as memoryview: the chain compares bytes.
    row = list(values)
    row[12], row[13] = _bytes(row[12]), _bytes(row[13])
    return StoredEvent(*row)  # type: ignore[arg-type]


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else bytes(value)  # type: ignore[call-overload]
