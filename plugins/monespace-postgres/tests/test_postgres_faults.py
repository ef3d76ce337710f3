"""Faults on the partitioned, sharded layout: a connection killed in the middle of a space's
write (pg_terminate_backend) loses nothing committed, writes nothing half, leaves every audit
chain intact, and the next write goes through on a fresh connection."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

import monespace
import monespace_postgres
from monespace import Actor
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import StorageError
from monespace.synth import synthetic_identities

#: The fixtures (server, pg_url) live there: see its docstring.
pytest_plugins = ["postgres_support"]

KEY = MasterKey.generate()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("t")


def test_a_write_killed_midway_keeps_what_was_committed(server: str, pg_url: str) -> None:
    people = list(synthetic_identities(3, seed=21, today=T0.date()))
    with monespace.open(
        pg_url,
        key_provider=StaticKeyProvider(KEY),
        clock=ManualClock(T0),
        plugins=[monespace_postgres],
        load_entrypoints=False,
    ) as space:
        first = space.accounts.register_patient(OPERATOR, people[0])
        before = space.audit.count()
        with pytest.raises(StorageError), space.transaction():
            space.accounts.register_patient(OPERATOR, people[1])
            # The transaction's own connection, killed before it commits.
            pid = _backend_pid_of_writer(space)
            with psycopg.connect(server, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
            space.accounts.register_patient(OPERATOR, people[2])
        # Nothing of the killed transaction; everything committed before it.
        assert space.accounts.count() == 1
        assert space.accounts.get_patient(OPERATOR, first.id).identity == people[0]
        report = space.audit.verify()
        assert report.ok, report
        # The failure is traced (in a transaction of its own), nothing else was added.
        assert space.audit.count() >= before
        again = space.accounts.register_patient(OPERATOR, people[1])
        assert space.accounts.count() == 2
        assert again.id != first.id
        assert space.audit.verify().ok


def _backend_pid_of_writer(space: monespace.Space) -> int:
    # The unit open on this thread holds the write transaction: ask its connection.
    unit = space._core._open.unit
    return int(unit.tx.cursor.execute("SELECT pg_backend_pid()").fetchone()[0])
