"""``monespace storage copy``: a seeded demo space from SQLite to PostgreSQL and back, row for
row, resumable, with the audit trail verifying on each side."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import monespace
import monespace_postgres
from monespace.cli import main
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.plugins import Plugins
from monespace.storage import compare_stores, copy_store
from monespace.synth import seed_demo

#: The fixtures (pg_url, schema) live there: see its docstring.
pytest_plugins = ["postgres_support"]

KEY = MasterKey.generate()
PEOPLE = 8


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("copy") / "demo.db"
    with monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(KEY),
        clock=ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
        load_entrypoints=False,
    ) as space:
        seed_demo(space, PEOPLE, seed=5)
        assert space.audit.verify().ok
    return f"sqlite:///{path}"


def _storage(url: str):
    return Plugins([monespace_postgres], load_entrypoints=False).open_storage(url)


def test_a_demo_space_round_trips_sqlite_postgresql_sqlite(
    demo_db: str, pg_url: str, tmp_path
) -> None:
    back = f"sqlite:///{tmp_path}/back.db"
    with _storage(demo_db) as src, _storage(pg_url) as pg:
        report = copy_store(src, pg)
        assert report.patients >= PEOPLE  # the demo's people and their representatives
        assert report.skipped == 0
        assert compare_stores(src, pg) == []
        with _storage(back) as again:
            copy_store(pg, again)
            assert compare_stores(src, again) == []
    counts = set()
    for url in (demo_db, pg_url, back):
        with monespace.open(
            url,
            key_provider=StaticKeyProvider(KEY),
            plugins=[monespace_postgres],
            load_entrypoints=False,
        ) as space:
            verified = space.audit.verify()
            assert verified.ok, verified
            counts.add((space.accounts.count(), verified.checked))
    assert len(counts) == 1  # the same people and the same trail on each side


def test_an_interrupted_copy_goes_on_where_it_stopped(demo_db: str, pg_url: str) -> None:
    with _storage(demo_db) as src, _storage(pg_url) as pg:
        stop_after = 3

        def interrupt(done: int, total: int) -> None:
            if done == stop_after:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            copy_store(src, pg, progress=interrupt)
        resumed = copy_store(src, pg)
        assert resumed.skipped == stop_after
        assert compare_stores(src, pg) == []


def test_a_tampered_copy_is_reported(demo_db: str, tmp_path) -> None:
    target = tmp_path / "copy.db"
    with _storage(demo_db) as src, _storage(f"sqlite:///{target}") as dst:
        copy_store(src, dst)
    with sqlite3.connect(target) as conn:
        conn.execute("UPDATE blobs SET sealed = x'00' WHERE rowid = 1")
    with _storage(demo_db) as src, _storage(f"sqlite:///{target}") as dst:
        assert compare_stores(src, dst) == ["blobs"]


def test_the_command_copies_and_verifies(demo_db: str, pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("MONESPACE_MASTER_KEY", KEY.to_base64())
    result = CliRunner().invoke(main, ["storage", "copy", demo_db, pg_url])
    assert result.exit_code == 0, result.output
    assert "every table identical; audit trail intact" in result.output
    assert "secret" not in result.output
