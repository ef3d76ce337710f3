"""Shared fixtures and the Hypothesis profiles.

Profiles: "ci" (the default), "fast" (FAST=1, quick local runs) and "thorough" (long local
runs). Choose one with ``HYPOTHESIS_PROFILE=<name>`` or ``pytest --hypothesis-profile=<name>``.
Test modules hard-code no example counts: the stateful machines, each of whose examples is a
whole run of steps, take theirs from the "stateful" and "stateful-sqlite" profiles, which
:func:`pytest_configure` derives from the profile loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from monespace import Actor, ActorKind
from monespace.accounts import RepresentationKind
from monespace.crypto import MasterKey, StaticKeyProvider

from .helpers import identity, open_patient

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=15, deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("fast" if os.environ.get("FAST") else "ci")
)

#: Runs of a stateful machine per example of the loaded profile ("ci": 200 runs of 100 steps).
STATEFUL_RUNS_PER_EXAMPLE = 2
#: A machine on SQLite, whose steps are slower, makes one run for this many examples.
SQLITE_EXAMPLES_PER_RUN = 3


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


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Derive the stateful profiles from the loaded one (after ``--hypothesis-profile``)."""
    base = settings.default
    stateful = settings(
        base,
        max_examples=STATEFUL_RUNS_PER_EXAMPLE * base.max_examples,
        stateful_step_count=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    settings.register_profile("stateful", stateful)
    settings.register_profile(
        "stateful-sqlite",
        stateful,
        max_examples=max(1, base.max_examples // SQLITE_EXAMPLES_PER_RUN),
        stateful_step_count=60,
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


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that opens its space on ``url`` runs on both built-in backends."""
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/space.db"


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
