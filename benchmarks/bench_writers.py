"""Benchmark of several writer processes on one SQLite file: throughput and tail latency.

Run ``python benchmarks/bench_writers.py`` (about a minute; ``--quick``: about 15 seconds).
One process and four processes add documents at the same time, each to the record of its
own patient, on one SQLite file (WAL, ``synchronous=FULL``): a physician of the care team
adds a 4 KiB PDF, with the holder's notice, one transaction each
(``space.record.add_document``). The baseline runs the same number of processes, each doing
``BEGIN IMMEDIATE; INSERT`` the same 4,096 bytes ``; COMMIT`` on its own connection to one
file with the same settings and SQLite's own busy handler (``busy_timeout`` 10 s).

For each side and number of processes the script prints the operations per second of all
processes together and the p50 and p99 latency of one operation (waiting for the lock
included), over every operation of the repeats; then how the throughput changes from one
process to four (the issue's goal: at least 1.0x, and a p99 of 100 ms or less).
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import monespace
from _common import describe_machine, parser, print_grid, print_machine, revision
from monespace import Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.record import LOINC, Code

OPERATOR = Actor.system("bench")
AUTHOR = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000001").value)
PAYLOAD = b"%PDF-1.7\n" + bytes(4087)
TYPE = Code("11502-2", LOINC)


def seed(path: Path, key: bytes, patients: int) -> list[str]:
    """*patients* people with an open space, and the physician in each care team."""
    space = monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey(key)),
        load_entrypoints=False,
    )
    space.access.register_professional(OPERATOR, Professional(AUTHOR.id, "10", "Dr Auteur"))
    ids = []
    for n in range(patients):
        traits = INSTraits(birth_name="DURAND", first_given_name="MARIE",
                           birth_date=date(1980, 5, 12), sex="F")  # fmt: skip
        identity = PatientIdentity(
            INS(NIR.build("F", 80, 5, "75", 112 + n, 1), INS_NIR_TEST_OID, traits),
            Contact(email=f"patient{n}@example.org"),
        )
        patient_id = space.accounts.register_patient(OPERATOR, identity).id
        space.accounts.create_space(OPERATOR, patient_id)
        space.access.join_care_team(AUTHOR, patient_id)
        ids.append(patient_id)
    space.close()
    return ids


def _monespace_worker(path: str, key: bytes, patient_id: str) -> Callable[[], None]:
    space = monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey(key)),
        load_entrypoints=False,
    )

    def add() -> None:
        space.record.add_document(
            AUTHOR, patient_id, PAYLOAD, media_type="application/pdf", type_code=TYPE
        )

    return add


def _raw_worker(path: str) -> Callable[[], None]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")

    def insert() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (data) VALUES (?)", (PAYLOAD,))
        conn.execute("COMMIT")

    return insert


def _run(side: str, path: str, key: bytes, patient_id: str, seconds: float, start, out) -> None:
    """One writer process: operations until *seconds* after the common start, each timed."""
    op = _monespace_worker(path, key, patient_id) if side == "monespace" else _raw_worker(path)
    op()  # warm up: connections, caches
    start.wait()
    latencies = []
    begin = time.perf_counter()
    end = begin + seconds
    while True:
        t0 = time.perf_counter()
        op()
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if t1 >= end:
            break
    out.put((len(latencies), t1 - begin, latencies))


def trial(side: str, path: Path, key: bytes, patients: list[str], seconds: float):
    """(operations per second of all processes together, every latency)."""
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(len(patients))
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_run, args=(side, str(path), key, pid, seconds, start, out))
        for pid in patients
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    operations = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    return operations / elapsed, [lat for r in results for lat in r[2]]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=4, help="writer processes (default 4)")
    args = p.parse_args()
    seconds, repeat = (2.0, 1) if args.quick else (4.0, 3)
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work, packages=("monespace",), extra={"revision": revision(Path(__file__).parent)}
    )
    print(f"monespace writer-processes benchmark ({'quick' if args.quick else 'full'} run)\n")
    print_machine(machine)
    key = MasterKey.generate().material
    try:
        db, raw = work / "writers.db", work / "raw.db"
        patients = seed(db, key, args.processes)
        conn = sqlite3.connect(raw, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)")
        conn.close()
        figures: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
        for _ in range(repeat):
            for count in (1, args.processes):
                for side, path in (("monespace", db), ("raw", raw)):
                    rate, latencies = trial(side, path, key, patients[:count], seconds)
                    rates, kept = figures.setdefault((side, count), ([], []))
                    rates.append(rate)
                    kept.extend(latencies)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for side in ("monespace", "raw"):
        for count in (1, args.processes):
            rates, latencies = figures[(side, count)]
            q = statistics.quantiles(latencies, n=100)
            rows.append([
                f"{side}, {count} process{'es' if count > 1 else ''}",
                f"{statistics.median(rates):,.0f}",
                f"{q[49] * 1000:.1f}",
                f"{q[98] * 1000:.1f}",
                f"{max(latencies) * 1000:.1f}",
            ])  # fmt: skip
    print(f"\nOne document (4 KiB) per transaction, each process its own patient, {seconds:.0f} s")
    print(f"per trial, {repeat} trial(s), sides and process counts alternated\n")
    print_grid(
        ["figure", "operations/s (median)", "p50 ms", "p99 ms", "max ms"],
        rows,
        markdown=args.markdown,
    )
    print()
    for side in ("monespace", "raw"):
        one = statistics.median(figures[(side, 1)][0])
        many = statistics.median(figures[(side, args.processes)][0])
        print(f"{side}: {args.processes} processes vs 1: {many / one:.2f}x")


if __name__ == "__main__":
    main()
