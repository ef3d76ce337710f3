"""Shared fixtures and the Hypothesis profiles.

Profiles: "ci" (the default), "fast" (FAST=1, quick local runs) and "thorough" (long local
runs). Choose one with ``HYPOTHESIS_PROFILE=<name>`` or ``pytest --hypothesis-profile=<name>``.
Test modules hard-code no example counts: the stateful machines, each of whose examples is a
whole run of steps, take theirs from the "stateful" and "stateful-sqlite" profiles, which
:func:`pytest_configure` derives from the profile loaded.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, settings

from monespace import Actor, ActorKind
from monespace.accounts import RepresentationKind
from monespace.crypto import MasterKey, StaticKeyProvider

from .helpers import identity, open_patient

# "ci" keeps the whole suite within three minutes on a 2-core machine; "thorough" runs 1,000
# examples per test for long local runs.
settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=15, deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("fast" if os.environ.get("FAST") else "ci")
)

#: Runs of a stateful machine per example of the loaded profile ("ci": 30 runs of 50 steps).
STATEFUL_RUNS_PER_EXAMPLE = 1
#: Steps per run of a stateful machine.
STATEFUL_STEPS = 50
#: A machine on SQLite, whose steps are slower, makes one run for this many examples.
SQLITE_EXAMPLES_PER_RUN = 5


#: Where the suite's SQLite files go when nothing else is asked: memory-backed storage, if the
#: machine has one. The suite tests what the library does, not the disk: each commit's fsync
#: on a real disk would make the property tests wait rather than work. The files are real
#: SQLite files all the same (WAL, locks, several connections).
MEMORY_BACKED = Path("/dev/shm")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Put the temporary directories (pytest's and :mod:`tempfile`'s) on memory-backed
    storage unless ``--basetemp`` is given or ``MONESPACE_TEST_ON_DISK`` is set."""
    if config.option.basetemp or os.environ.get("MONESPACE_TEST_ON_DISK"):
        return
    if MEMORY_BACKED.is_dir() and os.access(MEMORY_BACKED, os.W_OK):
        folder = tempfile.mkdtemp(prefix="monespace-tests-", dir=MEMORY_BACKED)
        config.option.basetemp = os.path.join(folder, "pytest")
        os.environ["TMPDIR"] = folder  # tempfile, and the processes the tests start
        tempfile.tempdir = None  # forget the directory tempfile chose before
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options for the long runs of the reliability harness."""
    group = parser.getgroup("monespace reliability")
    group.addoption(
        "--cycles",
        type=int,
        default=6,
        help="kill cycles of tests/test_durability.py (default: 6, a few seconds)",
    )
    group.addoption(
        "--durability-seed",
        type=int,
        default=None,
        help="replay the kill cycles of a printed seed",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests marked ``slow`` first. The workers of pytest-xdist then end the run on
    short tests, instead of one worker finishing a long journey while the other waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Derive the stateful profiles from the loaded one (after ``--hypothesis-profile``)."""
    base = settings.default
    stateful = settings(
        base,
        max_examples=STATEFUL_RUNS_PER_EXAMPLE * base.max_examples,
        stateful_step_count=STATEFUL_STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    settings.register_profile("stateful", stateful)
    settings.register_profile(
        "stateful-sqlite",
        stateful,
        max_examples=max(1, base.max_examples // SQLITE_EXAMPLES_PER_RUN),
        stateful_step_count=STATEFUL_STEPS,
    )


#: The shared test data of the project (official CI-SIS and FHIR examples), beside the
#: checkout unless MONESPACE_SHARED_DATA names it (a git worktree lives elsewhere).
SHARED_DATA = Path(
    os.environ.get("MONESPACE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture(autouse=True)
def _isolated_key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test may touch the developer's own ~/.config/monespace key file."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("MONESPACE_MASTER_KEY", raising=False)
    monkeypatch.delenv("MONESPACE_PREVIOUS_MASTER_KEYS", raising=False)
    monkeypatch.delenv("MONESPACE_KEY_FILE", raising=False)


# --- spaces and the people in them ------------------------------------------------------------
# ``me`` and ``representative`` serve the modules that define ``space`` and ``holder``.


#: ``MONESPACE_TEST_BACKEND=postgresql://127.0.0.1/test`` runs every test that opens its space
#: on ``url`` on that PostgreSQL server instead of the built-in backends (it needs the
#: monespace-postgres plugin), each test in a schema of its own, dropped afterwards.
TEST_BACKEND = os.environ.get("MONESPACE_TEST_BACKEND", "")


@pytest.fixture(params=["postgresql"] if TEST_BACKEND else ["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that opens its space on ``url`` runs on both built-in backends (or on the
    server ``MONESPACE_TEST_BACKEND`` names)."""
    if request.param == "postgresql":
        yield from _postgresql_schema(TEST_BACKEND, request.getfixturevalue("monkeypatch"))
    elif request.param == "memory":
        yield "memory://"
    else:
        yield f"sqlite:///{tmp_path}/space.db"


#: The migrated database each test's own database is copied from, per PostgreSQL server
#: (and per process: pytest-xdist workers each make theirs).
_TEMPLATES: dict[str, str] = {}


def _postgresql_schema(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL naming schema ``monespace`` in a fresh database ``monespace_test_<random>`` on
    *server*, dropped once the test (and the spaces it opened) is done.

    Running the migrations takes seconds on PostgreSQL (hundreds of partitioned tables and
    indexes), copying a database a few milliseconds: the first test of the process migrates
    a template database, the others get a copy of it (``CREATE DATABASE … TEMPLATE``). The
    template holds the schema only, no space: each test opens its space with its own keys.

    Most tests open their spaces without entry-point plugins (``load_entrypoints=False``),
    so that the machine's plugins do not change what they test: for the test's duration,
    such spaces get the one plugin this run needs.
    """
    # Only a PostgreSQL run needs the plugin and its driver.
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    import monespace_postgres  # noqa: PLC0415
    from monespace.plugins import Plugins  # noqa: PLC0415

    plain_init = Plugins.__init__

    def init_with_postgres(self, plugins=(), *, load_entrypoints=True, environ=None):
        if not load_entrypoints:
            plugins = [*plugins, monespace_postgres]
        plain_init(self, plugins, load_entrypoints=load_entrypoints, environ=environ)

    monkeypatch.setattr(Plugins, "__init__", init_with_postgres)
    # Two partitions per table: the layout of a large deployment, at a fraction of the cost
    # of the default count. One audit chain, as on SQLite: these tests read the trail's
    # newest events in order; the sharded trail has its own tests (test_audit_tampering.py,
    # and the plugin's test_postgres_audit_shards.py).
    query = "schema=monespace&partitions=2&audit_shards=0"

    def on_database(name: str) -> str:
        parts = urlsplit(server)
        options = "&".join(filter(None, (parts.query, query)))
        return urlunsplit(parts._replace(path=f"/{name}", query=options))

    with psycopg.connect(server, autocommit=True) as conn:
        template = _TEMPLATES.get(server)
        if template is None:
            template = f"monespace_template_{secrets.token_hex(6)}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
            monespace_postgres.PostgresStorage.from_url(on_database(template)).close()
            _TEMPLATES[server] = template
            atexit.register(_drop_database, server, template)
        database = f"monespace_test_{secrets.token_hex(6)}"
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(database), sql.Identifier(template)
            )
        )
    yield on_database(database)
    _drop_database(server, database)


def _drop_database(server: str, name: str) -> None:
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def keys() -> StaticKeyProvider:
    """A fresh master key, kept in memory."""
    return StaticKeyProvider(MasterKey.generate())


@pytest.fixture
def me(holder) -> Actor:
    """The holder, acting on their own space."""
    return Actor.patient(holder.id)


@pytest.fixture
def representative(space, holder) -> Actor:
    """A protected adult's representative, acting for the holder."""
    person = open_patient(space, identity(7, email="rep@example.org"))
    space.accounts.add_representative(
        Actor.system("test"), holder.id, person.id, RepresentationKind.PROTECTED_ADULT
    )
    return Actor(ActorKind.REPRESENTATIVE, person.id, on_behalf_of=holder.id)
