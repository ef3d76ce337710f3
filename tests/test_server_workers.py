"""Sessions and attempt limits shared by several server processes through the database.

Two applications over two spaces opened on the same SQLite file stand for two worker
processes (each has its own connections and its own memory): what one does, the other
sees. The same over PostgreSQL with ``monespace serve --workers 2`` on a real socket is in
the PostgreSQL plugin's tests (``test_postgres_workers.py``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

import monespace
from monespace.cli import main
from monespace.errors import ValidationError
from monespace.server import RateLimits, serve

from .test_server_world import build_world, client, create_app, login_patient, login_professional

pytestmark = pytest.mark.anyio


@pytest.fixture
def two_workers(tmp_path):
    """A world on an SQLite file, and a second space on the same file (another worker)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    world = build_world(url)
    other = monespace.open(url, clock=world.clock)
    yield world, other
    other.close()
    world.space.close()


async def test_a_session_opened_through_one_worker_is_honoured_by_the_other(two_workers):
    world, other = two_workers
    first = create_app(world.space, secure_cookies=False)
    second = create_app(other, secure_cookies=False)
    alice = world.alice.id
    async with client(first) as one, client(second) as two, client(first) as three:
        headers = await login_patient(one, world.alice)
        listing = await two.get(f"/api/v1/patients/{alice}/documents", headers=headers)
        assert listing.status_code == 200
        assert listing.json()["total"] == 2
        # a cookie session, and its CSRF token, work across workers too
        login = await three.post("/api/v1/session/patient", json=world.bob.login())
        csrf = login.json()["session"]["csrf_token"]
        cookie = {"monespace_session": login.cookies["monespace_session"]}
        two.cookies.update(cookie)
        me = await two.get("/api/v1/session")
        assert me.status_code == 200
        assert me.json()["person_id"] == world.bob.id
        refused = await two.delete("/api/v1/session")
        assert refused.status_code == 403  # no CSRF token
        ended = await two.delete("/api/v1/session", headers={"x-csrf-token": csrf})
        assert ended.status_code == 204
        assert (await three.get("/api/v1/session")).status_code == 401
        two.cookies.clear()
        # logging out through the second ends the session in the first
        assert (await two.delete("/api/v1/session", headers=headers)).status_code == 204
        assert (await one.get("/api/v1/session", headers=headers)).status_code == 401


async def test_an_emergency_declared_through_one_worker_holds_in_the_other(two_workers):
    world, other = two_workers
    bob = world.bob.id
    async with (
        client(create_app(world.space)) as one,
        client(create_app(other)) as two,
    ):
        stranger = await login_professional(one, world.stranger)
        assert (
            await two.get(f"/api/v1/patients/{bob}/documents", headers=stranger)
        ).status_code == 404
        glass = await one.post(
            f"/api/v1/patients/{bob}/emergency-access",
            json={"justification": "Patient inconscient aux urgences, allergies inconnues"},
            headers=stranger,
        )
        assert glass.status_code == 201, glass.text
        seen = await two.get(f"/api/v1/patients/{bob}/documents", headers=stranger)
        assert seen.status_code == 200
        # and it ends when the emergency does, in every worker
        world.clock.advance(hours=25)
        late = await login_professional(two, world.stranger)
        assert (await one.get(f"/api/v1/patients/{bob}/documents", headers=late)).status_code == 404


async def test_attempts_are_counted_across_workers(two_workers):
    world, other = two_workers
    limits = RateLimits(per_ip=100, per_person=3)
    first = create_app(world.space, rate_limits=limits)
    second = create_app(other, rate_limits=limits)
    wrong = {**world.alice.login(), "vitale_serial": "0000000000"}
    async with client(first) as one, client(second) as two:
        statuses = [
            (await http.post("/api/v1/session/patient", json=wrong)).status_code
            for http in (one, two, one, two)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3] == 429
        # the limit is the person's (from this address): another person logs in
        assert (
            await two.post("/api/v1/session/patient", json=world.bob.login())
        ).status_code == 201


async def test_a_session_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    world = build_world(url)
    async with client(create_app(world.space)) as http:
        headers = await login_patient(http, world.alice)
    world.space.close()
    with monespace.open(url, clock=world.clock) as space:
        async with client(create_app(space)) as http:
            assert (await http.get("/api/v1/session", headers=headers)).status_code == 200
            # idle for longer than the idle timeout: ended, and removed
            world.clock.advance(minutes=31)
            assert (await http.get("/api/v1/session", headers=headers)).status_code == 401
            assert space.sessions.count() == 0


async def test_ended_sessions_and_old_counters_are_purged(two_workers):
    world, _ = two_workers
    space = world.space
    async with client(create_app(space)) as http:
        await login_patient(http, world.alice)
        await login_patient(http, world.bob)
        assert space.sessions.count() == 2
        world.clock.advance(hours=13)
        # each login sweeps a few ended sessions: no job is needed to keep the table small
        await login_patient(http, world.alice)
        assert space.sessions.count() == 1
        world.clock.advance(hours=13)
        assert space.sessions.purge() == 1
        assert space.sessions.count() == 0
    window = timedelta(minutes=15)
    for _ in range(3):
        space.rate_limits.hit("login-ip", "192.0.2.1", limit=5, window=window)
        space.rate_limits.hit("other", "192.0.2.1", limit=5, window=window)
    world.clock.advance(minutes=20)
    # a hit in a new window sweeps its bucket's ended windows, not another bucket's
    assert space.rate_limits.hit("login-ip", "192.0.2.1", limit=5, window=window) is None
    assert space.rate_limits.purge("login-ip", window) == 0
    assert space.rate_limits.purge("other", window) == 1


def test_several_workers_need_a_store_other_processes_share(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    with monespace.open(url) as space:
        assert not space.shared_by_processes
        with pytest.raises(ValidationError, match="'workers' must be 1 on this store"):
            serve(space, port=0, workers=2)
        with pytest.raises(ValidationError, match="at least 1"):
            serve(space, port=0, workers=0)
    result = CliRunner().invoke(
        main, ["serve", "--db", str(tmp_path / "one.db"), "--port", "0", "--workers", "2"]
    )
    assert result.exit_code == 1
    assert "--workers 2 needs a database server" in result.output
