"""The sharded audit trail on PostgreSQL (decision 0015): a demo space's events spread over
the patient shards, every chain verifies, and writers in several processes appending for
different patients at once leave every chain intact."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

import monespace
import monespace_postgres
from monespace import Actor
from monespace.audit import shard_for
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identities import PatientIdentity
from monespace.synth import seed_demo, synthetic_identities

#: The fixtures (pg_url, schema) live there: see its docstring.
pytest_plugins = ["postgres_support"]

KEY = MasterKey.generate()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _open(url: str, key: MasterKey = KEY) -> monespace.Space:
    return monespace.open(
        url,
        key_provider=StaticKeyProvider(key),
        clock=ManualClock(T0),
        plugins=[monespace_postgres],
        load_entrypoints=False,
    )


def _per_shard(server: str, schema: str) -> dict[str, int]:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        rows = conn.execute("SELECT shard, count(*) FROM audit_events GROUP BY shard").fetchall()
    return {str(shard): int(n) for shard, n in rows}


def test_a_demo_space_spreads_its_trail_over_the_shards_and_verifies(
    server: str, pg_url: str, schema: str
) -> None:
    with _open(pg_url) as space:
        seed_demo(space, 12, seed=2)
        report = space.audit.verify()
        assert report.ok, report
        checkpoint = space.audit.checkpoint()
    assert checkpoint is not None
    spread = _per_shard(server, schema)
    assert sum(spread.values()) == report.checked
    # Patient ids are random: which shards fill varies, never that each patient's events
    # are in the patient's shard, and 12 people (and relatives) in one shard of 16 would be
    # a 1 in 16**11 draw.
    assert len([s for s in spread if s != "0"]) >= 2
    assert {h.shard for h in checkpoint.heads} == set(spread)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        placed = conn.execute(
            "SELECT DISTINCT patient_id, shard FROM audit_events WHERE patient_id IS NOT NULL"
        ).fetchall()
    assert placed
    assert all(shard == shard_for(patient_id, 16) for patient_id, shard in placed)


def _writer(url: str, key: str, people: list[PatientIdentity]) -> None:
    with _open(url, MasterKey.from_base64(key)) as space:
        for person in people:
            space.accounts.register_patient(Actor.system("writer"), person)


def test_writers_in_several_processes_keep_every_chain_intact(pg_url: str) -> None:
    _open(pg_url).close()  # migrated once, before the writers race for it
    processes, each = 3, 10
    people = list(synthetic_identities(processes * each, seed=11, today=T0.date()))
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_writer, args=(pg_url, KEY.to_base64(), people[i * each : (i + 1) * each])
        )
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    with _open(pg_url) as space:
        report = space.audit.verify()
        assert report.ok, report
        assert space.accounts.count() == processes * each
        assert report.checked >= processes * each


def test_migration_0015_partitions_a_used_schema_and_keeps_its_trail(
    server: str, pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A space written at schema 14 (one chain, tables not partitioned), then migrated: every
    row is still there, in partitioned tables, and the trail verifies and goes on."""
    from monespace_postgres import _backend  # noqa: PLC0415 - the migrations it applies

    with monkeypatch.context() as before:
        before.setattr(_backend, "_MIGRATIONS", _backend._MIGRATIONS[:14])
        before.setattr(_backend, "LATEST_SCHEMA_VERSION", 14)
        with _open(pg_url) as space:
            # Today's code writes the outbox's claim columns (migration 0017): lend them to
            # the schema-14 store while today's code seeds it, and take them back after.
            _outbox_claim_columns(server, schema, "ADD COLUMN {} TEXT")
            seed_demo(space, 6, seed=4)
            old = space.audit.verify()
            assert old.ok, old
            people = space.accounts.count()
        _outbox_claim_columns(server, schema, "DROP COLUMN {}")
    with _open(pg_url) as space:
        migrated = space.audit.verify()
        assert migrated.ok, migrated
        assert migrated.checked == old.checked
        assert space.accounts.count() == people
        space.accounts.register_patient(Actor.system("t"), _identities(1)[0])
        after = space.audit.verify()
        assert after.ok, after
        assert after.checked > old.checked
    spread = _per_shard(server, schema)
    assert spread["0"] == old.checked  # the old trail stays shard 0, untouched
    assert sum(spread.values()) == after.checked
    with psycopg.connect(server, autocommit=True) as conn:
        kind = conn.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = 'documents'",
            (schema,),
        ).fetchone()
    assert kind == ("p",)


def _outbox_claim_columns(server: str, schema: str, change: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        for column in ("claimed_by", "lease_until"):
            conn.execute(
                sql.SQL("ALTER TABLE {}.outbox " + change).format(
                    sql.Identifier(schema), sql.Identifier(column)
                )
            )


def _identities(n: int) -> list[PatientIdentity]:
    return list(synthetic_identities(n, seed=99, today=T0.date()))
