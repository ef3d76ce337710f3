"""The audit trail against an attacker with write access to the SQLite file but not the key.

Every attack of the catalogue is run against a real SQLite file, after dropping the
append-only triggers with raw sqlite3, and must be detected by ``space.audit.verify()``:
edits with and without recomputing the chain, a truncated tail, a deleted trail, forged
appends, reordering, tampered checkpoints and a rollback caught by an exported checkpoint.
Key rotation and exported checkpoints must keep an intact trail verifying.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace import Actor, Settings
from monespace.audit import (
    CHAIN_KEYED,
    CHAIN_UNKEYED,
    AuditEvent,
    AuditSettings,
    Outcome,
    PendingEvent,
    ShardHead,
    StoredEvent,
    canonical_bytes,
    checkpoint_rows,
    event_from_row,
    event_hash,
    keyed_hash,
    seal_bytes,
    shard_for,
    sign_checkpoint,
)
from monespace.cli import main
from monespace.clock import ManualClock
from monespace.crypto import AuditKey, MasterKey, StaticKeyProvider
from monespace.storage import to_db_time
from monespace.testing import storage_of

from .helpers import add_note, identity, open_patient

KEY = MasterKey.generate()
PATIENTS = 20  # register, open, add a note: 60 events
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("auditor")


def _open(path, provider=None, settings=None):
    return monespace.open(
        f"sqlite:///{path}",
        key_provider=provider or StaticKeyProvider(KEY),
        clock=ManualClock(T0 + timedelta(days=1)),
        settings=settings,
        load_entrypoints=False,
    )


def _build(path, settings):
    with monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(KEY),
        clock=ManualClock(T0),
        settings=settings,
        load_entrypoints=False,
    ) as space:
        for n in range(1, PATIENTS + 1):
            patient = open_patient(space, identity(n))
            add_note(space, Actor.patient(patient.id), patient.id, b"x")


# Two templates, built once: the default settings (one checkpoint, on the first append, and
# then one per 1000 events: every event after it is protected by the head seal only) and
# frequent checkpoints (one every 10 events).
SETTINGS = {
    "seal-only": Settings(),
    "checkpoints": Settings(audit=AuditSettings(checkpoint_every=10, checkpoint_interval=None)),
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    built = {}
    for name, settings in SETTINGS.items():
        built[name] = folder / f"{name}.db"
        _build(built[name], settings)
    return built


@pytest.fixture(params=list(SETTINGS))
def db(request, templates, tmp_path):
    path = tmp_path / "space.db"
    shutil.copy(templates[request.param], path)
    return path


def _events(path) -> list[AuditEvent]:
    with _open(path) as space, storage_of(space).read() as tx:
        return [event_from_row(row) for row in tx.audit.scan(limit=100_000)]


def _sql(path, *statements, params=()):
    """Run *statements* as the attacker: triggers dropped, nothing but raw sqlite3."""
    with sqlite3.connect(path) as conn:
        for trigger in (
            "audit_events_no_update",
            "audit_events_no_delete",
            "audit_checkpoints_no_update",
            "audit_checkpoints_no_delete",
        ):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for statement in statements:
            conn.execute(statement, params)


def _rewrite(path, events):
    """Replace the stored rows of *events* (matched by seq) with their new values."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        for e in events:
            conn.execute(
                "UPDATE audit_events SET at = ?, actor_id = ?, action = ?, outcome = ?, "
                "patient_id = ?, target_id = ?, rule = ?, prev_hash = ?, hash = ?, key_id = ?, "
                "chain = ? WHERE seq = ?",
                (
                    to_db_time(e.at),
                    e.actor_id,
                    e.action,
                    str(e.outcome),
                    e.patient_id,
                    e.target_id,
                    e.rule,
                    e.prev_hash,
                    e.hash,
                    e.key_id,
                    e.chain,
                    e.seq,
                ),
            )


def _insert(path, event):
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO audit_events (seq, at, actor_kind, actor_id, action, outcome, "
            "patient_id, target_kind, target_id, mode, purpose, rule, prev_hash, hash, key_id, "
            "shard, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.seq,
                to_db_time(event.at),
                str(event.actor_kind),
                event.actor_id,
                event.action,
                str(event.outcome),
                event.patient_id,
                event.target_kind,
                event.target_id,
                str(event.mode),
                event.purpose,
                event.rule,
                event.prev_hash,
                event.hash,
                event.key_id,
                event.shard,
                event.chain,
            ),
        )


def _verify(path, checkpoints=(), provider=None):
    with _open(path, provider) as space:
        return space.audit.verify(checkpoints)


def _detected(path, at=None, checkpoints=()):
    report = _verify(path, checkpoints)
    assert not report.ok, "tampering not detected"
    assert report.reason
    if at is not None:
        assert report.first_bad_seq == at, report
    return report


# --- an intact trail --------------------------------------------------------------------------


def test_an_intact_trail_verifies_and_names_its_anchor(db):
    report = _verify(db)
    assert report.ok, report
    assert report.checked == 3 * PATIENTS
    assert report.unkeyed == 0
    assert report.anchor is not None
    assert report.anchor_source == "database"
    assert {e.chain for e in _events(db)} == {CHAIN_KEYED}


# --- edits --------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 17, 3 * PATIENTS])
@pytest.mark.parametrize(
    "edit",
    [
        "actor_id = 'attacker'",
        "patient_id = NULL",
        "at = replace(at, '.', ',')",
        "outcome = 'denied'",
        "key_id = 'k0000000000000000'",
        "hash = zeroblob(32)",
        "chain = 1",
    ],
)
def test_an_edit_is_detected_at_the_edited_event(db, seq, edit):
    _sql(db, f"UPDATE audit_events SET {edit} WHERE seq = {seq}")
    _detected(db, at=seq)


def _recomputed_from(events, start, rehash):
    """*events* with event *start* edited and every hash from it recomputed by *rehash*."""
    out = list(events)
    for i in range(start - 1, len(out)):
        event = out[i]
        if i == start - 1:
            event = attrs.evolve(event, actor_id="attacker")
        prev_hash = out[i - 1].hash if i else bytes(32)
        event = attrs.evolve(event, prev_hash=prev_hash)
        out[i] = attrs.evolve(event, **rehash(prev_hash, event))
    return out


def _unkeyed(prev_hash, event):
    # The attacker recomputes the whole chain as if it had been written before keying.
    return {"hash": event_hash(prev_hash, event.seq, event), "chain": CHAIN_UNKEYED, "key_id": None}


def _sha256_keeping_version(prev_hash, event):
    return {"hash": event_hash(prev_hash, event.seq, event)}


ATTACKER_KEY = AuditKey.derive(MasterKey.generate())


def _wrong_key(prev_hash, event):
    return {"hash": keyed_hash(ATTACKER_KEY, event.shard, prev_hash, event.seq, event)}


def _own_key(prev_hash, event):
    return {**_wrong_key(prev_hash, event), "key_id": ATTACKER_KEY.id}


@pytest.mark.parametrize("start", [1, 30, 3 * PATIENTS])
@pytest.mark.parametrize(
    "rehash",
    [_unkeyed, _sha256_keeping_version, _wrong_key, _own_key],
    ids=["unkeyed", "sha256", "wrong-key", "own-key"],
)
def test_an_edit_with_the_chain_recomputed_is_detected(db, start, rehash):
    _rewrite(db, _recomputed_from(_events(db), start, rehash)[start - 1 :])
    _detected(db, at=start)


# --- truncation and deletion -----------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 5, 50])
def test_a_truncated_tail_is_detected(db, cut):
    total = 3 * PATIENTS
    _sql(db, f"DELETE FROM audit_events WHERE seq > {total - cut}")
    report = _detected(db, at=total - cut + 1)
    assert "removed from the end" in report.reason


@pytest.mark.parametrize("cut", [1, 5, 50])
def test_a_truncated_tail_with_the_seal_and_checkpoints_deleted_is_detected(db, cut):
    total = 3 * PATIENTS
    _sql(
        db,
        f"DELETE FROM audit_events WHERE seq > {total - cut}",
        "UPDATE audit_shards SET head_seq = NULL, head_hash = NULL, key_id = NULL, head_mac = NULL",
        "DELETE FROM audit_checkpoints",
    )
    report = _detected(db)
    assert "head seal" in report.reason


@pytest.mark.parametrize("cut", [1, 5, 50])
def test_a_truncated_tail_with_a_replayed_seal_is_detected_by_an_exported_checkpoint(
    db, tmp_path, cut
):
    """The head seal of an earlier moment, saved by the attacker, names an earlier head: the
    rollback is then caught by a checkpoint kept outside the database."""
    total = 3 * PATIENTS
    earlier = tmp_path / "earlier.db"
    shutil.copy(db, earlier)
    _sql(earlier, f"DELETE FROM audit_events WHERE seq > {total - cut}")
    with _open(db) as space:
        exported = tmp_path / "checkpoints.json"
        space.audit.checkpoint()
        space.audit.export_checkpoints(exported)
        external = space.audit.load_checkpoints(exported)
    # Roll the database back to a copy whose trail ends earlier, seal and checkpoints
    # consistent with it (as a backup restored, or the attacker's own earlier copy).
    with sqlite3.connect(earlier) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_delete")
        conn.execute(f"DELETE FROM audit_checkpoints WHERE seq > {total - cut}")
        # Its seal must name its own head for the copy to pass on its own: the attacker
        # saved the seal written when the trail was that long. Simulate it with the key.
        last = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC").fetchone()
    _reseal(earlier, last[0], last[1])
    assert _verify(earlier).ok  # without the exported checkpoints, a rollback passes
    report = _verify(earlier, external)
    assert not report.ok
    assert report.first_bad_seq == total - cut + 1
    assert "(file)" in report.reason


def _reseal(path, seq, head_hash):
    key = AuditKey.derive(KEY)
    mac = key.mac(seal_bytes("0", seq, head_hash))
    _sql(
        path,
        "UPDATE audit_shards SET head_seq = ?, head_hash = ?, key_id = ?, head_mac = ?",
        params=(seq, head_hash, key.id, mac),
    )


def test_deleting_every_event_is_detected(db):
    _sql(db, "DELETE FROM audit_events")
    _detected(db, at=1)


def test_deleting_every_event_with_seal_and_checkpoints_is_detected(db):
    _sql(
        db,
        "DELETE FROM audit_events",
        "DELETE FROM audit_shards",
        "DELETE FROM audit_checkpoints",
    )
    report = _detected(db, at=1)
    assert "empty" in report.reason


@pytest.mark.parametrize("seq", [1, 30, 59])
def test_deleting_one_event_is_detected(db, seq):
    _sql(db, f"DELETE FROM audit_events WHERE seq = {seq}")
    _detected(db, at=seq)


# --- forged appends ----------------------------------------------------------------------------


def _forged_after(last: AuditEvent) -> AuditEvent:
    pending = PendingEvent(
        at=last.at + timedelta(seconds=1),
        actor_kind=last.actor_kind,
        actor_id="attacker",
        action="content.read",
        outcome=Outcome.SUCCESS,
        patient_id=last.patient_id,
        target_kind="content",
        target_id="forged",
        rule="patient_owns_space",
    )
    return AuditEvent(
        seq=last.seq + 1,
        prev_hash=last.hash,
        hash=b"",
        **{f: getattr(pending, f) for f in attrs.fields_dict(PendingEvent)},
    )


@pytest.mark.parametrize(
    "forge",
    ["unkeyed", "sha256-as-keyed", "wrong-key", "own-key", "no-key-id"],
)
@pytest.mark.parametrize("reseal", [False, True], ids=["seal-kept", "seal-moved"])
def test_a_forged_append_is_detected(db, forge, reseal):
    last = _events(db)[-1]
    event = _forged_after(last)
    prev = last.hash
    unkeyed_hash = event_hash(prev, event.seq, event)
    wrong = keyed_hash(ATTACKER_KEY, "0", prev, event.seq, event)
    event = {
        "unkeyed": attrs.evolve(event, hash=unkeyed_hash, chain=CHAIN_UNKEYED),
        "sha256-as-keyed": attrs.evolve(
            event, hash=unkeyed_hash, chain=CHAIN_KEYED, key_id=last.key_id
        ),
        "wrong-key": attrs.evolve(event, hash=wrong, chain=CHAIN_KEYED, key_id=last.key_id),
        "own-key": attrs.evolve(event, hash=wrong, chain=CHAIN_KEYED, key_id=ATTACKER_KEY.id),
        "no-key-id": attrs.evolve(event, hash=unkeyed_hash, chain=CHAIN_KEYED, key_id=None),
    }[forge]
    _insert(db, event)
    if reseal:
        # Point the seal at the forged event; its MAC cannot be recomputed without the key.
        _sql(
            db,
            "UPDATE audit_shards SET head_seq = ?, head_hash = ?",
            params=(event.seq, event.hash),
        )
    _detected(db, at=event.seq)


# --- reordering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(2, 6), (30, 31), (59, 60)])
def test_reordering_is_detected(db, a, b):
    _sql(
        db,
        f"UPDATE audit_events SET seq = -1 WHERE seq = {a}",
        f"UPDATE audit_events SET seq = {a} WHERE seq = {b}",
        f"UPDATE audit_events SET seq = {b} WHERE seq = -1",
    )
    _detected(db, at=a)


# --- checkpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        "head_hash = zeroblob(32)",
        "seq = seq + 1",
        "event_count = event_count + 1",
        "at = replace(at, '2026', '2025')",
        "signature = zeroblob(64)",
        "key_id = 'k0000000000000000'",
    ],
)
def test_an_edited_checkpoint_is_detected(db, edit):
    _sql(db, f"UPDATE audit_checkpoints SET {edit} WHERE number = 1")
    report = _detected(db)
    assert "checkpoint 1" in report.reason


def test_a_checkpoint_signed_by_another_key_is_detected(db):
    events = _events(db)
    head = events[-1]
    forged = sign_checkpoint(ATTACKER_KEY, 99, T0, [attrs.evolve(_head(head), count=head.seq + 1)])
    with sqlite3.connect(db) as conn:
        for row in checkpoint_rows(forged):
            conn.execute(
                "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.number,
                    row.shard,
                    row.seq,
                    row.hash,
                    row.count,
                    to_db_time(row.at),
                    row.root,
                    row.key_id,
                    row.signature,
                ),
            )
    report = _detected(db, at=head.seq)
    assert "checkpoint 99" in report.reason


def _head(event):
    return ShardHead(event.shard, event.seq, event.hash, event.seq)


# --- keys ---------------------------------------------------------------------------------


def test_master_key_rotation_keeps_the_trail_verifiable(tmp_path):
    path = tmp_path / "rotated.db"
    provider = StaticKeyProvider(MasterKey.generate())
    first = provider.current()
    with _open(path, provider) as space:
        open_patient(space, identity(1))
        space.rotate_master_key(OPERATOR)
        open_patient(space, identity(2))
        space.audit.checkpoint()
        report = space.audit.verify()
        assert report.ok, report
    key_ids = {e.key_id for e in _events_with(path, provider)}
    assert key_ids == {first.id, provider.current().id}
    # The previous keys are what verifies the older events; without them it fails, naming
    # the key, never claiming the trail intact.
    retired = StaticKeyProvider(provider.current())
    with _open(path, retired) as space:  # the data keys are all on the new key already
        report = space.audit.verify()
    assert not report.ok
    assert first.id in report.reason


def _events_with(path, provider):
    with _open(path, provider) as space, storage_of(space).read() as tx:
        return [event_from_row(row) for row in tx.audit.scan(limit=100_000)]


# --- exported checkpoints --------------------------------------------------------------------


def test_exported_checkpoints_round_trip_and_anchor_verification(db, tmp_path):
    exported = tmp_path / "out" / "checkpoints.json"
    exported.parent.mkdir()
    with _open(db) as space:
        space.audit.checkpoint()
        count = space.audit.export_checkpoints(exported)
        stored = space.audit.checkpoints()
        loaded = space.audit.load_checkpoints(exported)
        public = space.audit.public_keys()
        assert count == len(stored) == len(loaded)
        assert loaded == stored
        report = space.audit.verify(loaded)
    assert report.ok, report
    assert report.anchor == stored[-1]
    assert report.anchor_source == "database"  # the same checkpoint, found there first
    assert set(public) == {c.key_id for c in stored}
    # Delete the stored checkpoints: the file still anchors the verification.
    _sql(db, "DELETE FROM audit_checkpoints")
    report = _verify(db, loaded)
    assert report.ok, report
    assert (report.anchor, report.anchor_source) == (stored[-1], "file")


def test_a_forged_checkpoint_file_is_refused(db, tmp_path):
    with _open(db) as space:
        loaded = space.audit.checkpoints()
    forged = [attrs.evolve(c, heads=(attrs.evolve(c.heads[0], count=999),)) for c in loaded]
    report = _verify(db, forged)
    assert not report.ok
    assert "(file)" in report.reason


def test_the_cli_verifies_against_an_exported_file(db, tmp_path, monkeypatch):
    monkeypatch.setenv("MONESPACE_MASTER_KEY", KEY.to_base64())
    exported = tmp_path / "checkpoints.json"
    runner = CliRunner()
    result = runner.invoke(
        main, ["audit", "checkpoint", "--db", str(db), "--export", str(exported)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["audit", "verify", "--db", str(db), "--checkpoints", str(exported)]
    )
    assert result.exit_code == 0, result.output
    assert f"intact: {3 * PATIENTS} events" in result.output
    _sql(db, "DELETE FROM audit_events WHERE seq > 10")
    result = runner.invoke(
        main, ["audit", "verify", "--db", str(db), "--checkpoints", str(exported)]
    )
    assert result.exit_code == 1
    assert "BROKEN at event 11" in result.output
    assert "events checked" in result.output


# --- trails written before the chain was keyed -------------------------------------------------


def _legacy_database(path, count):
    """A database as monespace left it before migration 0010: an unkeyed SHA-256 chain."""
    folder = importlib.resources.files("monespace.storage") / "migrations" / "sqlite"
    scripts = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        for script in scripts[:9]:
            conn.executescript(script.read_text(encoding="utf-8"))
            version, name = script.name[:4], script.name[5:-4]
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (int(version), name, to_db_time(T0)),
            )
    prev = None
    with sqlite3.connect(path) as conn:
        for seq in range(1, count + 1):
            pending = PendingEvent(
                at=T0 + timedelta(seconds=seq),
                actor_kind=OPERATOR.kind,
                actor_id=OPERATOR.id,
                action="patient.read",
                outcome=Outcome.SUCCESS,
                rule="operator_reads_administrative",
            )
            prev_hash = bytes(32) if prev is None else prev.hash
            event = AuditEvent(
                seq=seq,
                prev_hash=prev_hash,
                hash=event_hash(prev_hash, seq, pending),
                **{f: getattr(pending, f) for f in attrs.fields_dict(PendingEvent)},
            )
            conn.execute(
                "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    to_db_time(event.at),
                    str(event.actor_kind),
                    event.actor_id,
                    event.action,
                    str(event.outcome),
                    None,
                    None,
                    None,
                    str(event.mode),
                    None,
                    event.rule,
                    event.prev_hash,
                    event.hash,
                ),
            )
            prev = event


def test_a_trail_written_before_keying_still_verifies_and_continues_keyed(tmp_path):
    path = tmp_path / "legacy.db"
    _legacy_database(path, 12)
    report = _verify(path)
    assert report.ok, report
    assert (report.checked, report.unkeyed) == (12, 12)
    with _open(path) as space:
        open_patient(space, identity(1))
        report = space.audit.verify()
    assert report.ok, report
    assert report.unkeyed == 12
    assert report.checked > 12
    chains = [e.chain for e in _events(path)]
    assert chains == [CHAIN_UNKEYED] * 12 + [CHAIN_KEYED] * (len(chains) - 12)


@pytest.mark.parametrize("seq", [1, 12])
def test_an_edited_legacy_event_is_detected_once_keyed_events_follow(tmp_path, seq):
    """The first keyed event's hash covers the last unkeyed one's: the legacy prefix can no
    longer be rewritten, even recomputed, without the key."""
    path = tmp_path / "legacy.db"
    _legacy_database(path, 12)
    with _open(path) as space:
        open_patient(space, identity(1))
    _rewrite(path, _recomputed_from(_events(path)[:12], seq, _unkeyed)[seq - 1 :])
    _detected(path, at=13)


def test_the_legacy_tail_cannot_be_truncated(tmp_path):
    path = tmp_path / "legacy.db"
    _legacy_database(path, 12)
    _open(path).close()  # migrate: records that 12 events were written unkeyed
    _sql(path, "DELETE FROM audit_events WHERE seq > 9")
    _detected(path, at=10)


def test_an_unkeyed_event_appended_to_a_legacy_trail_is_detected(tmp_path):
    path = tmp_path / "legacy.db"
    _legacy_database(path, 12)
    _open(path).close()
    last = _events(path)[-1]
    forged = _forged_after(last)
    _insert(path, attrs.evolve(forged, hash=event_hash(last.hash, forged.seq, forged)))
    _detected(path, at=13)


def test_a_trail_rewritten_as_unkeyed_with_every_marker_deleted_needs_an_exported_checkpoint(
    db, tmp_path
):
    """The documented blind spot: the whole trail recomputed as a pre-keying trail, its
    boundary raised, the seal and every stored checkpoint deleted, looks like a database
    never written by a keyed version. A checkpoint kept outside the database reveals it."""
    with _open(db) as space:
        external = space.audit.checkpoints()
    events = _events(db)
    _rewrite(db, _recomputed_from(events, 1, _unkeyed))
    _sql(
        db,
        f"UPDATE audit_shards SET legacy_until = {len(events)}, head_seq = NULL, "
        "head_hash = NULL, key_id = NULL, head_mac = NULL",
        "DELETE FROM audit_checkpoints",
    )
    assert _verify(db).ok  # nothing left in the database tells it apart
    report = _verify(db, external)
    assert not report.ok
    assert "(file)" in report.reason


# --- a sharded trail (decision 0015) ---------------------------------------------------------
# The same attacks on a trail of one system shard and four patient shards: each shard is a
# chain of its own, with its own head seal, and every checkpoint a Merkle root over all heads.

SHARDS = 4


@pytest.fixture(scope="module")
def sharded_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sharded") / "sharded.db"
    _open(path).close()  # migrated, still empty: the shards are added as a migration would
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO audit_shards (shard, legacy_until) VALUES (?, 0)",
            [(str(n),) for n in range(1, SHARDS + 1)],
        )
    with monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(KEY),
        clock=ManualClock(T0),
        settings=SETTINGS["checkpoints"],
        load_entrypoints=False,
    ) as space:
        # Patient ids are random, and so is their shard: more patients until every shard
        # has some, and a checkpoint at the end, so that the newest one covers every shard
        # (the automatic ones cover the shards that had events when they were written).
        filled: set[str] = set()
        n = 0
        while n < PATIENTS or len(filled) < SHARDS:
            n += 1
            patient = open_patient(space, identity(n))
            add_note(space, Actor.patient(patient.id), patient.id, b"x")
            filled.add(shard_for(patient.id, SHARDS))
        space.audit.checkpoint()
    with sqlite3.connect(path) as conn:  # everything in the file, none in its WAL: copied next
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def sharded(sharded_template, tmp_path):
    path = tmp_path / "sharded.db"
    shutil.copy(sharded_template, path)
    return path


def _shard_events(path, shard) -> list[AuditEvent]:
    with _open(path) as space, storage_of(space).read() as tx:
        return [event_from_row(r) for r in tx.audit.scan(limit=100_000, shard=shard)]


def test_a_sharded_trail_spreads_patients_and_verifies(sharded):
    per_shard = {str(n): _shard_events(sharded, str(n)) for n in range(SHARDS + 1)}
    assert all(per_shard[str(n)] for n in range(1, SHARDS + 1)), {
        s: len(e) for s, e in per_shard.items()
    }
    for shard, events in per_shard.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert {e.shard for e in events} <= {shard}
        # A patient's events all live in the patient's shard.
        assert all(shard_for(e.patient_id, SHARDS) == shard for e in events if e.patient_id)
    report = _verify(sharded)
    assert report.ok, report
    patients = {e.patient_id for events in per_shard.values() for e in events if e.patient_id}
    assert len(patients) >= PATIENTS
    assert report.checked == sum(len(e) for e in per_shard.values()) == 3 * len(patients)
    with _open(sharded) as space:
        newest = space.audit.checkpoints()[-1]
    assert {h.shard for h in newest.heads} >= {str(n) for n in range(1, SHARDS + 1)}


def test_the_shard_of_a_patient_is_stable():
    # Pinned values: a change of hash would send a patient's next events to another chain
    # than their earlier ones (and every process must agree, whatever PYTHONHASHSEED).
    assert [shard_for(f"p00000{n}", 16) for n in range(1, 6)] == ["15", "2", "12", "12", "2"]
    assert shard_for(None, 16) == shard_for("anyone", 0) == "0"
    assert {shard_for(f"p{n}", 16) for n in range(500)} == {str(n) for n in range(1, 17)}


@pytest.mark.parametrize("shard", ["1", "2", "3", "4"])
def test_a_truncated_shard_is_detected(sharded, shard):
    last = _shard_events(sharded, shard)[-1]
    _sql(sharded, f"DELETE FROM audit_events WHERE shard = '{shard}' AND seq = {last.seq}")
    report = _detected(sharded, at=last.seq)
    assert report.reason.startswith(f"shard {shard}:")


@pytest.mark.parametrize("shard", ["1", "3"])
def test_a_shard_emptied_with_its_seal_is_detected_by_a_checkpoint(sharded, shard):
    _sql(
        sharded,
        f"DELETE FROM audit_events WHERE shard = '{shard}'",
        "UPDATE audit_shards SET head_seq = NULL, head_hash = NULL, key_id = NULL, "
        f"head_mac = NULL WHERE shard = '{shard}'",
    )
    _detected(sharded, at=1)


def test_a_shard_removed_from_the_list_is_detected(sharded):
    _sql(sharded, "DELETE FROM audit_shards WHERE shard = '4'")
    report = _detected(sharded)
    assert "shard" in report.reason


@pytest.mark.parametrize("shard", ["2", "4"])
@pytest.mark.parametrize("forge", ["wrong-key", "own-key"])
def test_a_forged_append_to_one_shard_is_detected(sharded, shard, forge):
    last = _shard_events(sharded, shard)[-1]
    event = attrs.evolve(_forged_after(last), shard=shard)
    wrong = keyed_hash(ATTACKER_KEY, shard, last.hash, event.seq, event)
    key_id = last.key_id if forge == "wrong-key" else ATTACKER_KEY.id
    _insert(sharded, attrs.evolve(event, hash=wrong, chain=CHAIN_KEYED, key_id=key_id))
    _detected(sharded, at=event.seq)


def test_an_event_moved_to_another_shard_is_detected(sharded):
    """An event keyed for shard 1, copied at the end of shard 2 (hash and all)."""
    source = _shard_events(sharded, "1")[0]
    last = _shard_events(sharded, "2")[-1]
    moved = attrs.evolve(source, seq=last.seq + 1, prev_hash=last.hash, shard="2")
    _insert(sharded, moved)
    _detected(sharded, at=moved.seq)


# --- verification hashes the stored text -----------------------------------------------------


def test_the_stored_values_give_the_canonical_bytes_of_the_event(sharded):
    """Verification builds the canonical bytes from the stored text (StoredEvent): the same
    bytes as from the event itself, for every event of every shard."""
    with _open(sharded) as space, storage_of(space).read() as tx:
        for shard in tx.audit.shards():
            stored = tx.audit.scan_stored(limit=100_000, shard=shard)
            events = [event_from_row(r) for r in tx.audit.scan(limit=100_000, shard=shard)]
            assert len(stored) == len(events)
            for values, event in zip(stored, events, strict=True):
                raw = StoredEvent(*values)
                assert canonical_bytes(raw.seq, raw) == canonical_bytes(event.seq, event)


@pytest.mark.parametrize(
    "at",
    ["2026-06-01T09:00:00.000000+00:00", "2026-06-01 09:00:00.000000Z", "2026-06-01T09:00:00Z"],
)
def test_a_timestamp_rewritten_in_an_equivalent_form_is_detected(db, at):
    first = _events(db)[0]
    _sql(db, "UPDATE audit_events SET at = ? WHERE seq = 1", params=(at,))
    assert first.seq == 1
    _detected(db, at=1)


_TEXT = st.text(max_size=20)
_OPTIONAL = st.none() | _TEXT


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    texts=st.tuples(_TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT),
    optional=st.tuples(_OPTIONAL, _OPTIONAL, _OPTIONAL, _OPTIONAL, _OPTIONAL),
)
def test_the_stored_bytes_are_the_encoders_on_any_text(seq, texts, optional):
    """The hand-written canonical bytes of a stored event equal the JSON encoder's, for any
    text (quotes, backslashes, controls, any plane of Unicode) and any missing field."""
    at, actor_kind, actor_id, action, outcome, mode = texts
    patient_id, target_kind, target_id, purpose, rule = optional
    stored = StoredEvent(
        seq,
        at,
        actor_kind,
        actor_id,
        action,
        outcome,
        patient_id,
        target_kind,
        target_id,
        mode,
        purpose,
        rule,
        b"",
        b"",
        None,
        "0",
        CHAIN_KEYED,
    )
    fields = {
        "v": 1,
        "seq": seq,
        "at": at,
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "action": action,
        "outcome": outcome,
        "patient_id": patient_id,
        "target_kind": target_kind,
        "target_id": target_id,
        "mode": mode,
        "purpose": purpose,
        "rule": rule,
    }
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(seq, stored) == expected.encode()


def test_a_patient_s_events_in_two_chains_page_once_each(tmp_path):
    """A patient of a trail sharded after they started (their first events in shard 0, the
    next in their shard): the operator's pages by (shard, seq) and the holder's history read
    every event exactly once."""
    path = tmp_path / "resharded.db"
    with _open(path) as space:
        patient = open_patient(space, identity(1))
        for n in range(3):
            add_note(space, Actor.patient(patient.id), patient.id, b"before %d" % n)
    with sqlite3.connect(path) as conn:  # as the migration of a sharded backend would
        conn.executemany(
            "INSERT INTO audit_shards (shard, legacy_until) VALUES (?, 0)",
            [(str(n),) for n in range(1, SHARDS + 1)],
        )
    with _open(path) as space:
        for n in range(4):
            add_note(space, Actor.patient(patient.id), patient.id, b"after %d" % n)
        assert space.audit.verify().ok
        # Through the storage: the operator's audited reading would add an event per page.
        pages, shard, seq = [], "0", 0
        with storage_of(space).read() as tx:
            while page := tx.audit.for_patient(
                patient.id, after_shard=shard, after_seq=seq, limit=2
            ):
                pages += [(e.shard, e.seq) for e in page]
                shard, seq = page[-1].shard, page[-1].seq
        mine = shard_for(patient.id, SHARDS)
        assert {s for s, _ in pages} == {"0", mine}
        assert len(pages) == len(set(pages))
        with storage_of(space).read() as tx:
            assert len(pages) == len(tx.audit.for_patient(patient.id, limit=100_000))
        history = space.access.history(Actor.patient(patient.id), patient.id, limit=1000)
        assert len(history) == len(pages)  # nothing hidden: every event, once
