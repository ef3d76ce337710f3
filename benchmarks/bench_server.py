"""Benchmark of the demo server: seeding, and authenticated requests over loopback.

Run ``python benchmarks/bench_server.py`` (10,000 patients seeded; a few minutes on 2 cores)
or ``--quick`` (1,000 patients; under a minute). Two figures:

- **seeding rate**: patients per second through :func:`monespace.synth.seed_demo` on a real
  SQLite file: registration, a parent for each minor, invitations, oppositions and
  activations, the six-week deadline run, the directory of professionals, a reimbursement
  document in every open space and full records for some, and the outbox delivered to files.
  It has no raw baseline (nothing else does that work); it is a context row.
- **record listing over loopback**, one client and four at once:
  ``GET /api/v1/patients/{id}/documents`` with a bearer token, answered by uvicorn in a
  separate process (one worker), against the demo's SQLite file, from keep-alive
  ``httpx.Client`` connections in this process. Beside it, in the same run and
  alternated with it, a **bare Starlette endpoint** served by the same uvicorn settings in
  another process, returning a JSON body of the same size. The ratio is the cost of the
  session check, the access decision, the decryption of each document's metadata, the
  audit event (a durable commit) and the encoding, over the web stack alone.

Beside them, two context rows without a baseline: the same listing through
``space.record.search`` in this process, on the same file while the server runs (the
decision, the decryption and the audit event's durable commit, without HTTP, the session
or the JSON), from one thread and from four at once, so that a request's time splits into
the library's search, the API layer around it and the web stack. Each row's note gives the
**ceiling** of the listing's ratio: what a request would reach if the API layer cost
nothing, the bare endpoint's time plus the search's (``search / (search + bare)`` in rates).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import monespace
from _common import (
    Figure,
    Rates,
    Report,
    compare,
    describe_machine,
    measure,
    parser,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import Actor
from monespace.clock import ManualClock
from monespace.crypto import ENV_KEY, MasterKey
from monespace.server import serve
from monespace.storage import SQLiteStorage
from monespace.synth import seed_demo

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_monespace(db: str, port: int, *, fsync: bool = True) -> None:
    if not fsync:
        # The experiment of the "without fsync" row: every connection of this process
        # commits with synchronous=OFF. Not a setting of monespace (read audits are durable
        # by decision, ADR 0019): it measures what the per-read fsync costs.
        connect = SQLiteStorage._connect

        def unsynchronised(self: SQLiteStorage) -> sqlite3.Connection:
            conn = connect(self)
            conn.execute("PRAGMA synchronous = OFF")
            return conn

        SQLiteStorage._connect = unsynchronised  # type: ignore[method-assign]
    with monespace.open(f"sqlite:///{db}") as space:
        serve(space, host="127.0.0.1", port=port, log_level="warning")


def _serve_bare(size: int, port: int) -> None:
    payload = {"documents": [], "padding": "x" * max(0, size - 30)}

    async def endpoint(_request):
        return JSONResponse(payload, headers={"cache-control": "no-store"})

    app = Starlette(routes=[Route("/bare/{patient_id}/documents", endpoint)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _ceiling(search: Rates, bare: Rates) -> str:
    """The most a request could reach against the bare endpoint if everything between the
    web stack and the library's search (the session, the hand-overs to worker threads, the
    JSON) cost nothing: a request then takes the bare endpoint's time plus the search's."""
    best = search.median / (search.median + bare.median)
    return f"with an API layer costing nothing, a request would reach {best:.2f}x at most"


def _start(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, *args, str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--patients", type=int, help="how many patients to seed")
    args = p.parse_args()
    patients = args.patients or (1_000 if args.quick else 10_000)
    seconds, repeat = (0.5, 3) if args.quick else (1.5, 5)
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-", dir=args.dir))
    env = {**os.environ, ENV_KEY: MasterKey.generate().to_base64()}
    os.environ[ENV_KEY] = env[ENV_KEY]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        db = tmp / "demo.db"
        outbox = f"file://{tmp / 'outbox'}"
        clock = ManualClock(datetime.now(UTC))
        started = time.perf_counter()
        with monespace.open(
            f"sqlite:///{db}", clock=clock, transports={"email": outbox, "letter": outbox}
        ) as space:
            summary = seed_demo(space, patients, seed=1)
            space.dispatch(limit=10 * patients + 100)
        elapsed = time.perf_counter() - started
        seeding = Rates([patients / elapsed])
        login = summary.login("patient")
        assert login is not None

        port, bare_port, unsynced_port = _free_port(), _free_port(), _free_port()
        processes.append(_start(["--serve-monespace", str(db)], port, env))
        processes.append(_start(["--serve-without-fsync", str(db)], unsynced_port, env))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            token = http.post(
                "/api/v1/session/patient",
                json={
                    "nir": login.nir,
                    "vitale_serial": login.vitale_serial,
                    "birth_date": login.birth_date.isoformat(),
                },
            ).json()["token"]
            headers = {"authorization": f"Bearer {token}"}
            path = f"/api/v1/patients/{login.patient_id}/documents"
            first = http.get(path, headers=headers)
            assert first.status_code == 200, first.text
            size, count = len(first.content), first.json()["total"]
        processes.append(_start(["--serve-bare", str(size)], bare_port, env))

        ours = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers)
        bare = httpx.Client(base_url=f"http://127.0.0.1:{bare_port}")

        def listing(n: int) -> None:
            for _ in range(n):
                ours.get(path).raise_for_status()

        def baseline(n: int) -> None:
            for _ in range(n):
                bare.get(f"/bare/{login.patient_id}/documents").raise_for_status()

        mine, theirs = compare(listing, baseline, seconds=seconds, repeat=repeat)

        # The same listing from the server whose commits skip the fsync (an experiment).
        unsynced = httpx.Client(base_url=f"http://127.0.0.1:{unsynced_port}", headers=headers)
        assert unsynced.get(path).status_code == 200

        def listing_unsynced(n: int) -> None:
            for _ in range(n):
                unsynced.get(path).raise_for_status()

        mine_unsynced, theirs_unsynced = compare(
            listing_unsynced, baseline, seconds=seconds, repeat=repeat
        )
        for client in (ours, bare, unsynced):
            client.close()

        # Four clients at once, each on its own keep-alive connection: the server answers
        # them from its thread pool, and their audit events share commits.
        clients = 4
        ours_many = [
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers)
            for _ in range(clients)
        ]
        bare_many = [httpx.Client(base_url=f"http://127.0.0.1:{bare_port}") for _ in range(clients)]
        pool = ThreadPoolExecutor(clients)

        def spread(pick: list[httpx.Client], url: str, n: int) -> None:
            def run(client: httpx.Client, count: int) -> None:
                for _ in range(count):
                    client.get(url).raise_for_status()

            shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
            for future in [pool.submit(run, c, k) for c, k in zip(pick, shares, strict=True)]:
                future.result()

        mine4, theirs4 = compare(
            lambda n: spread(ours_many, path, max(n, clients)),
            lambda n: spread(bare_many, f"/bare/{login.patient_id}/documents", max(n, clients)),
            seconds=seconds,
            repeat=repeat,
        )
        pool.shutdown()
        for client in (*ours_many, *bare_many):
            client.close()

        with monespace.open(f"sqlite:///{db}") as space:
            holder = Actor.patient(login.patient_id)

            def search(n: int) -> None:
                for _ in range(n):
                    space.record.search(holder, login.patient_id, limit=50)

            searched = measure(search, seconds=seconds, repeat=repeat)

            # The same searches from four threads at once, as the server's workers run
            # them: their audit events share commits.
            with ThreadPoolExecutor(clients) as threads:

                def search_many(n: int) -> None:
                    shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
                    for future in [threads.submit(search, k) for k in shares]:
                        future.result()

                searched4 = measure(
                    lambda n: search_many(max(n, clients)), seconds=seconds, repeat=repeat
                )
        figures = [
            Figure(
                f"seed_demo, {patients:,} patients",
                "patients/s",
                seeding,
                note=f"{elapsed:.1f} s in all, {summary.documents:,} documents, SQLite file",
            ),
            Figure(
                f"GET documents ({count} docs, {size:,} B), 1 client",
                "requests/s",
                mine,
                theirs,
                baseline_label="bare Starlette endpoint, same uvicorn settings, same body size",
            ),
            Figure(
                f"GET documents ({count} docs, {size:,} B), 1 client, without fsync",
                "requests/s",
                mine_unsynced,
                theirs_unsynced,
                baseline_label="the same bare endpoint, 1 client",
                note="an experiment, not a setting: the server's commits use "
                "synchronous=OFF, so a read's audit event does not wait for the disk (read "
                "audits stay durable by decision, ADR 0019); what the per-read fsync costs",
            ),
            Figure(
                f"GET documents ({count} docs, {size:,} B), {clients} clients",
                "requests/s",
                mine4,
                theirs4,
                baseline_label=f"the same bare endpoint, {clients} clients",
            ),
            Figure(
                f"record.search, the same {count} docs, in process",
                "searches/s",
                searched,
                note="context: the library's part of one request (decision, decryption, the "
                "audit event's durable commit), without HTTP, the session or the JSON; "
                + _ceiling(searched, theirs),
            ),
            Figure(
                f"record.search, the same {count} docs, {clients} threads in process",
                "searches/s",
                searched4,
                note=f"context: as above, from {clients} threads sharing commits; "
                + _ceiling(searched4, theirs4),
            ),
        ]
        info = describe_machine(tmp, packages=["starlette", "uvicorn", "httpx", "msgspec"])
        info["revision"] = revision(HERE.parent)
        print_machine(info)
        show(figures, title="Demo server", markdown=args.markdown)
        if args.json:
            Report(
                "bench_server.py",
                "quick" if args.quick else "full",
                info,
                {"patients": patients, "seconds": seconds, "repeat": repeat},
                figures,
            ).write(args.json)
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-monespace":
        _serve_monespace(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--serve-without-fsync":
        _serve_monespace(sys.argv[2], int(sys.argv[3]), fsync=False)
    elif len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        _serve_bare(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
