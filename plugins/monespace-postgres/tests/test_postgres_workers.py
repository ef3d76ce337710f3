"""Many processes on one PostgreSQL space: concurrent writers, concurrent dispatchers, and the
demo server with several worker processes over a real socket.

Writers and servers run as separate processes (``python -c`` and ``python -m monespace``),
each opening the space from its URL with the machine's master key file, as a deployment's
processes would. Every loop is bounded in count and time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import monespace
import monespace_postgres
from monespace import Actor, ManualClock
from monespace.storage import OutboxStatus
from monespace.synth import synthetic_identities
from monespace.testing import storage_of
from monespace.transport import Envelope, Receipt, Transport

#: The fixtures (server, pg_url) live there: see its docstring.
pytest_plugins = ["postgres_support"]
#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow

OPERATOR = Actor.system("t")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]
#: The child processes import this checkout (the library and both plugins).
CHILD_PATH = os.pathsep.join(
    str(ROOT / p) for p in ("src", "plugins/monespace-postgres/src", "plugins/monespace-smtp/src")
)


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [CHILD_PATH, env.get("PYTHONPATH")]))
    return env


def _open(url: str, **options: object) -> monespace.Space:
    return monespace.open(
        url,
        plugins=[monespace_postgres],
        load_entrypoints=False,
        **options,  # type: ignore[arg-type]
    )


def _patients(space: monespace.Space, count: int, seed: int, *, invite: bool = False) -> list[str]:
    """Register *count* persons and open their spaces (or invite them: one notice each)."""
    ids = []
    for person in synthetic_identities(count, seed=seed, today=T0.date()):
        patient = space.accounts.register_patient(OPERATOR, person)
        if invite:
            space.accounts.invite(OPERATOR, patient.id)
        else:
            space.accounts.create_space(OPERATOR, patient.id)
        ids.append(patient.id)
    return ids


# --- concurrent writers ------------------------------------------------------------------

#: One writer process: adds COUNT weight measures to each patient of PATIENTS, as the holder.
WRITER = """
import os, monespace, monespace_postgres
from monespace import Actor
url, count = os.environ["URL"], int(os.environ["COUNT"])
with monespace.open(url, plugins=[monespace_postgres], load_entrypoints=False) as space:
    for n in range(count):
        for pid in os.environ["PATIENTS"].split(","):
            space.measures.add(Actor.patient(pid), pid, "weight", 60 + n / 10)
"""


def _run_writers(url: str, groups: list[list[str]], count: int) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER],
            env=_child_env(URL=url, COUNT=str(count), PATIENTS=",".join(group)),
            stderr=subprocess.PIPE,
            text=True,
        )
        for group in groups
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err[-2000:]


@pytest.mark.parametrize("same_patient", [False, True], ids=["different", "same"])
def test_concurrent_writer_processes_lose_no_update(pg_url: str, same_patient: bool) -> None:
    writers, count = 4, 10
    with _open(pg_url) as space:
        patients = _patients(space, 1 if same_patient else writers, seed=3)
        events_before = space.audit.count()
    groups = [patients] * writers if same_patient else [[pid] for pid in patients]
    _run_writers(pg_url, groups, count)
    with _open(pg_url) as space:
        for pid in patients:
            expected = count * sum(group.count(pid) for group in groups)
            assert len(space.measures.series(Actor.patient(pid), pid, "weight")) == expected
        report = space.audit.verify()
        assert report.ok, report
        # every addition is traced once (and the reads above)
        assert space.audit.count() >= events_before + writers * count


# --- concurrent dispatchers --------------------------------------------------------------


class CountingSink(Transport):
    """Counts every delivery attempt per notification id (one per id is exactly once)."""

    name = "counting"
    schemes = ("counting",)

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> CountingSink:
        return cls()

    def send(self, envelope: Envelope) -> Receipt:
        time.sleep(0.002)  # a delivery takes a little time: dispatchers overlap
        with self._lock:
            self.calls[envelope.id] += 1
        return Receipt(envelope.id, self.name)


def test_concurrent_dispatchers_deliver_every_notice_exactly_once(pg_url: str) -> None:
    with _open(pg_url) as space:
        _patients(space, 40, seed=5, invite=True)
        with storage_of(space).read() as tx:
            queued = tx.outbox.count(OutboxStatus.PENDING)
    assert queued >= 40
    sink = CountingSink()
    transports = {"email": sink, "letter": sink, "sms": sink}
    spaces = [_open(pg_url, transports=transports) for _ in range(4)]
    errors: list[BaseException] = []

    def drain(space: monespace.Space) -> None:
        try:
            for _ in range(100):
                if space.dispatch(limit=3).sent == 0 and _pending(space) == 0:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(s,)) for s in spaces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert len(sink.calls) == queued
        assert set(sink.calls.values()) == {1}  # no notice sent twice
        assert _pending(spaces[0]) == 0
        assert spaces[0].audit.verify().ok
    finally:
        for space in spaces:
            space.close()


def _pending(space: monespace.Space) -> int:
    with storage_of(space).read() as tx:
        return tx.outbox.count(OutboxStatus.PENDING)


#: One dispatcher process: delivers through a sink that appends each notice's id to a file
#: (one short append per delivery: the processes' lines never mix), until none is pending.
DISPATCHER = """
import os, time, monespace, monespace_postgres
from monespace.storage import OutboxStatus
from monespace.testing import storage_of
from monespace.transport import Receipt, Transport

class Sink(Transport):
    name, schemes = "sink", ("sink",)
    @classmethod
    def from_url(cls, url):
        return cls()
    def send(self, envelope):
        time.sleep(0.002)
        fd = os.open(os.environ["SINK"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (envelope.id + "\\n").encode())
        finally:
            os.close(fd)
        return Receipt(envelope.id, self.name)

sink = Sink()
with monespace.open(
    os.environ["URL"], plugins=[monespace_postgres], load_entrypoints=False,
    transports={"email": sink, "letter": sink},
) as space:
    for _ in range(200):
        if space.dispatch(limit=3).sent == 0:
            with storage_of(space).read() as tx:
                if tx.outbox.count(OutboxStatus.PENDING) == 0:
                    break
"""


def test_concurrent_dispatcher_processes_deliver_every_notice_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    with _open(pg_url) as space:
        _patients(space, 30, seed=6, invite=True)
        queued = _pending(space)
    sink = tmp_path / "delivered.txt"
    dispatchers = [
        subprocess.Popen(
            [sys.executable, "-c", DISPATCHER],
            env=_child_env(URL=pg_url, SINK=str(sink)),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for dispatcher in dispatchers:
        _, err = dispatcher.communicate(timeout=240)
        assert dispatcher.returncode == 0, err[-2000:]
    delivered = Counter(sink.read_text(encoding="utf-8").split())
    assert len(delivered) == queued
    assert set(delivered.values()) == {1}
    with _open(pg_url) as space:
        assert _pending(space) == 0
        assert space.audit.verify().ok


def test_a_crashed_dispatchers_claims_are_taken_over_when_its_lease_ends(pg_url: str) -> None:
    with _open(pg_url) as space:
        _patients(space, 1, seed=9, invite=True)
        now = space.clock.now()
        with storage_of(space).write() as tx:
            # a dispatcher claims the notice for a second, then dies without a word
            (claimed,) = tx.outbox.claim(
                now, dispatcher="dead", lease_until=now.replace(microsecond=0), limit=10
            )
    sink = CountingSink()
    with _open(pg_url, transports={"email": sink, "letter": sink}) as space:
        assert space.dispatch().sent == 1
        assert sink.calls == {claimed.id: 1}


# --- the server with several worker processes ---------------------------------------------


def _demo(url: str, folder: Path) -> tuple[dict[str, str], str]:
    """Seed a small demo space at *url* (its notices written under *folder*); return a
    patient's login and their space id."""
    done = subprocess.run(
        [sys.executable, "-m", "monespace", "demo", "--db", url, "--patients", "6", "--no-serve"],
        check=False,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(
        r"a patient:\s+NIR (\d+)\s+carte Vitale (\d+)\s+born (\S+)\s+\(space (\S+)\)", done.stdout
    )
    assert found, done.stdout
    nir, vitale, born, space_id = found.groups()
    return {"nir": nir, "vitale_serial": vitale, "birth_date": born}, space_id


class Served:
    """``monespace serve`` in a child process, on a port the system chose."""

    def __init__(self, url: str, workers: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monespace",
                "serve",
                "--db",
                url,
                "--port",
                "0",
                "--workers",
                str(workers),
            ],
            env=_child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.lines: list[str] = []
        self.base = ""
        deadline = time.monotonic() + 60
        ready = 0
        while time.monotonic() < deadline and ready < workers:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if found := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
                self.base = f"http://127.0.0.1:{found[1]}"
            ready += "Application startup complete" in line
        assert self.base, "".join(self.lines)
        assert ready == workers, "".join(self.lines)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def pids_serving(self, route: str) -> set[str]:
        """The worker processes whose log shows a request to *route*."""
        return {
            m[1]
            for line in self.lines
            if (m := re.search(r"monespace\.server\[(\d+)\]: \S+ (\S+) -> 200", line))
            and m[2] == route
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_a_session_opened_through_one_worker_is_honoured_by_the_others(
    pg_url: str, tmp_path: Path
) -> None:
    login, space_id = _demo(pg_url, tmp_path)
    served = Served(pg_url, workers=2)
    try:
        with httpx.Client(base_url=served.base, timeout=30) as http:
            opened = http.post("/api/v1/session/patient", json=login)
            assert opened.status_code == 201, opened.text
            headers = {"authorization": f"Bearer {opened.json()['token']}"}
        # A new connection per request, until both workers served the session (bounded).
        codes = []
        for _ in range(400):
            with httpx.Client(base_url=served.base, timeout=30) as http:
                codes.append(http.get("/api/v1/session", headers=headers).status_code)
            if len(served.pids_serving("/api/v1/session")) == 2:
                break
            time.sleep(0.01)
        assert set(codes) == {200}
        assert len(served.pids_serving("/api/v1/session")) == 2, "".join(served.lines[-20:])
        with httpx.Client(base_url=served.base, timeout=30) as http:
            listing = http.get(f"/api/v1/patients/{space_id}/documents", headers=headers)
            assert listing.status_code == 200
            assert http.delete("/api/v1/session", headers=headers).status_code == 204
            for _ in range(4):
                assert http.get("/api/v1/session", headers=headers).status_code == 401
    finally:
        served.stop()


def test_two_servers_on_one_database_share_sessions(pg_url: str, tmp_path: Path) -> None:
    """Two separate server processes (behind a load balancer, say): deterministic."""
    login, space_id = _demo(pg_url, tmp_path)
    first, second = Served(pg_url, workers=1), Served(pg_url, workers=1)
    try:
        with httpx.Client(base_url=first.base, timeout=30) as one:
            opened = one.post("/api/v1/session/patient", json=login)
            assert opened.status_code == 201, opened.text
            headers = {"authorization": f"Bearer {opened.json()['token']}"}
        with httpx.Client(base_url=second.base, timeout=30) as two:
            listing = two.get(f"/api/v1/patients/{space_id}/documents", headers=headers)
            assert listing.status_code == 200
            assert two.delete("/api/v1/session", headers=headers).status_code == 204
        with httpx.Client(base_url=first.base, timeout=30) as one:
            assert one.get("/api/v1/session", headers=headers).status_code == 401
    finally:
        first.stop()
        second.stop()


# --- the deadlines in parallel slices ------------------------------------------------------


def test_tick_slices_run_at_once_apply_each_deadline_once(pg_url: str) -> None:
    clock = ManualClock(T0)
    with _open(pg_url, clock=clock) as space:
        ids = _patients(space, 24, seed=11, invite=True)
    clock.advance(days=43)
    spaces = [_open(pg_url, clock=clock) for _ in range(4)]
    results: dict[int, dict[str, int]] = {}
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = spaces[index].tick(slice=(index, 4))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert sum(r.get("created", 0) for r in results.values()) == len(ids)
        assert spaces[0].accounts.count_by_state() == {"created": len(ids)}
        assert spaces[0].tick() == {}
        assert spaces[0].audit.verify().ok
    finally:
        for space in spaces:
            space.close()
