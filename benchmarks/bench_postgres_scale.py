"""PostgreSQL at scale: writer processes, invitations in bulk, the sharded audit chain.

Run ``python benchmarks/bench_postgres_scale.py`` (a few minutes; ``--quick`` for a noisier
run of about a minute; ``--server URL`` for another server than
``postgresql://postgres@127.0.0.1/test``). Each monespace figure is measured in the same run
as its baseline, on a fresh schema of its own (``?schema=``, dropped at the end), and the
load average of the machine is printed with each part:

- **writers** (``--writers 1,2,4,8``, the default): documents added per second (4 KiB, a
  patient's own PDF, one transaction each) through ``space.record.add_document`` by 1, 2, 4
  and 8 writer processes, each for its own patient, beside raw psycopg inserts of the same
  bytes (one autocommit ``INSERT`` each into a plain table) by as many processes; the table
  gives each side's rate, the ratio, each side's scaling against the fewest processes, and
  how many backends waited on average for the schema's advisory write lock during
  monespace's window (``pg_locks``, sampled every 50 ms); ``--writers-json PATH`` also
  writes the curve, which ``benchmarks/plot_postgres_writers.py`` draws;
- **invitations** (``--people N``: 20,000 with ``--quick``, 100,000 otherwise; ``--rounds``,
  ``--batch``): N people are registered with ``space.accounts.register_patients`` (timed
  apart, no baseline), then invited with ``space.accounts.invite_registered(batch=B)``, in
  rounds, each round followed by the raw baseline: the rows that round's invitations wrote
  (the account row, the code row, the outbox row and the audit event of each person) read
  back, untimed, then written again with psycopg ``COPY ... FROM STDIN (FORMAT BINARY)``
  into plain tables of the same columns (no index, no constraint, no trigger), one
  transaction of four ``COPY`` per batch of B people. Between registration and
  invitations the schema's tables are analysed (``ANALYZE``, timed apart), as autovacuum
  would do in time on a server where it runs: without statistics the planner reads a
  batch's ``IN (...)`` lists by scanning whole partitions (``--no-analyze`` to measure
  that). ``--profile`` also profiles one invitation batch (cProfile) and prints where its
  time goes;
- **audit**: audit events appended per second (one per transaction, through the unit of
  work) by 4 processes for 4 different patients, on a trail of 16 patient shards (decision
  0015) and on a single chain (``?audit_shards=0``).

``--skip writers,invitations,audit`` leaves parts out. In the writers and audit parts every
process sets up (opens the space, does one operation), waits for the others at a barrier,
then runs for the same window; the rate is the sum of their operations over it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import monespace
from _common import describe_machine, print_grid, revision
from monespace import Actor
from monespace._ids import new_id
from monespace.access import Action, Resource
from monespace.accounts import PatientIdentity
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import TRE_A05_TYPE, Code
from monespace.storage import to_db_time
from monespace.synth import synthetic_identities

SERVER = "postgresql://postgres@127.0.0.1/test"
PAYLOAD = b"%PDF-1.4\n" + bytes(4096 - 9)
OWN = Code("EXPPAT_2", TRE_A05_TYPE)
RULE = "patient_owns_space"
PARTS = ("writers", "invitations", "audit")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("bench")
#: The tables an invitation writes a row to, and how to find the rows of one round's instant.
INVITATION_ROWS = (
    ("accounts", "invited_at = %s"),
    ("provisional_codes", "issued_at = %s"),
    ("outbox", "created_at = %s AND kind = 'invitation'"),
    ("audit_events", "at = %s AND action = 'account.invite'"),
)


def _identity(n: int) -> PatientIdentity:
    nir = NIR.build("F", 80, 5, "75", 112, n)
    traits = INSTraits(
        birth_name="DURAND", first_given_name="MARIE", birth_date=date(1980, 5, 12), sex="F"
    )
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits))


def _open(url: str, key: str, clock: ManualClock | None = None) -> monespace.Space:
    return monespace.open(
        url, clock=clock, key_provider=StaticKeyProvider(MasterKey.from_base64(key))
    )


def _register(url: str, key: str, n: int) -> str:
    with _open(url, key) as space:
        patient_id = space.accounts.register_patient(OPERATOR, _identity(n)).id
        space.accounts.create_space(OPERATOR, patient_id)
        return patient_id


def load() -> str:
    """The load average of the machine (1, 5 and 15 minutes)."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


# --- the work of one process: set up, wait for the others, run for *window* seconds --------


def _until(ready: Barrier, window: float, step: Callable[[], None]) -> int:
    step()  # warm: connections open, caches filled
    ready.wait()
    end = time.perf_counter() + window
    done = 0
    while time.perf_counter() < end:
        step()
        done += 1
    return done


def _add_documents(ready: Barrier, window: float, url: str, key: str, patient_id: str) -> int:
    with _open(url, key) as space:
        actor = Actor.patient(patient_id)

        def step() -> None:
            space.record.add_document(
                actor, patient_id, PAYLOAD, media_type="application/pdf", type_code=OWN
            )

        return _until(ready, window, step)


def _raw_inserts(ready: Barrier, window: float, url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        query = sql.SQL("INSERT INTO {} (patient_id, data) VALUES (%s, %s)").format(
            sql.Identifier(table)
        )
        patient_id = new_id()

        def step() -> None:
            conn.execute(query, (patient_id, PAYLOAD))

        return _until(ready, window, step)


def _audit_appends(ready: Barrier, window: float, url: str, key: str, patient_id: str) -> int:
    with _open(url, key) as space:
        actor = Actor.patient(patient_id)
        core = space._core  # the unit of work itself: one audit event per transaction

        def step() -> None:
            with core.unit() as unit:
                resource = Resource(patient_id, "content", new_id())
                unit.record(actor, Action.CONTENT_READ, resource, RULE)

        return _until(ready, window, step)


def _child(target: Callable[..., int], out: Queue, *args: object) -> None:  # type: ignore[type-arg]
    out.put(target(*args))


def _run(
    target: Callable[..., int],
    jobs: list[tuple[object, ...]],
    window: float,
    during: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> float:
    """Operations per second of *jobs* (one process each), released together once every
    one is set up; *during()* is entered when they are released and left when their window
    ends."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(jobs) + 1)  # the workers, and this process
    out = context.Queue()
    workers = [
        context.Process(target=_child, args=(target, out, ready, window, *job)) for job in jobs
    ]
    for w in workers:
        w.start()
    ready.wait(timeout=300)
    with during():
        time.sleep(window)
    total = sum(out.get(timeout=window + 300) for _ in workers)
    for w in workers:
        w.join()
    return total / window


class LockWaits:
    """Samples, every 50 ms in a thread, how many backends wait for the schema's advisory
    write lock (``pg_locks``, not granted)."""

    QUERY = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) "
        "= hashtext('monespace:' || %s)::bigint"
    )

    def __init__(self, server: str, schema: str) -> None:
        self.server, self.schema = server, schema
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._conn = psycopg.connect(server, autocommit=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            row = self._conn.execute(self.QUERY, (self.schema,)).fetchone()
            self.samples.append(row[0] if row else 0)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else 0.0


# --- the parts ----------------------------------------------------------------------------


class Bench:
    """The server, the master key, and the schemas made along the way (dropped at the end)."""

    def __init__(self, server: str, window: float) -> None:
        self.server = server
        self.window = window
        self.key = MasterKey.generate().to_base64()
        self.schemas: list[str] = []

    def schema(self) -> str:
        name = f"bench_{secrets.token_hex(4)}"
        self.schemas.append(name)
        return name

    def url(self, **params: str) -> str:
        query = "&".join([f"schema={self.schema()}", *(f"{k}={v}" for k, v in params.items())])
        return f"{self.server}{'&' if '?' in self.server else '?'}{query}"

    def drop(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

    def raw_rate(self, processes: int) -> float:
        table = f"raw_{secrets.token_hex(4)}"
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id BIGSERIAL PRIMARY KEY, patient_id TEXT, data BYTEA)"
                ).format(sql.Identifier(table))
            )
        try:
            return _run(_raw_inserts, [(self.server, table)] * processes, self.window)
        finally:
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def writers(bench: Bench, counts: Sequence[int]) -> dict[str, Any]:
    """Documents per second by each number of writer processes, beside raw inserts."""
    points = []
    for processes in counts:
        before = os.getloadavg()
        space_url = bench.url()
        patients = [_register(space_url, bench.key, n) for n in range(1, processes + 1)]
        waits = LockWaits(bench.server, bench.schemas[-1])
        jobs = [(space_url, bench.key, p) for p in patients]
        ours = _run(_add_documents, jobs, bench.window, during=lambda waits=waits: waits)
        raw = bench.raw_rate(processes)
        points.append(
            {
                "writers": processes,
                "monespace": ours,
                "raw": raw,
                "waiting_for_lock": waits.mean,
                "load_before": [round(v, 2) for v in before],
                "load_after": [round(v, 2) for v in os.getloadavg()],
            }
        )
        progress(f"{processes} writer(s): monespace {ours:,.0f}/s, raw {raw:,.0f}/s ({load()})")
    base = points[0]
    header = [
        "writers",
        "monespace docs/s",
        "raw psycopg inserts/s",
        "ratio",
        f"monespace vs {base['writers']}",
        f"raw vs {base['writers']}",
        "waiting for the lock",
        "load average after",
    ]
    rows = [
        [
            str(p["writers"]),
            f"{p['monespace']:,.0f}",
            f"{p['raw']:,.0f}",
            f"{p['monespace'] / p['raw']:.2f}x",
            f"{p['monespace'] / base['monespace']:.2f}x",
            f"{p['raw'] / base['raw']:.2f}x",
            f"{p['waiting_for_lock']:.1f}",
            " / ".join(f"{v:.2f}" for v in p["load_after"]),
        ]
        for p in points
    ]
    return {"points": points, "header": header, "rows": rows}


def audit(bench: Bench) -> dict[str, Any]:
    """Audit appends per second by 4 processes, sharded trail against a single chain."""
    before = load()
    rates = {}
    for label, params in (("16 shards", {}), ("single chain", {"audit_shards": "0"})):
        space_url = bench.url(**params)
        patients = [_register(space_url, bench.key, n) for n in range(1, 5)]
        rates[label] = _run(
            _audit_appends, [(space_url, bench.key, p) for p in patients], bench.window
        )
    header = ["figure", "16 shards", "single chain", "ratio", "load average before / after"]
    rows = [
        [
            "audit appends/s, 4 processes",
            f"{rates['16 shards']:,.0f}",
            f"{rates['single chain']:,.0f}",
            f"{rates['16 shards'] / rates['single chain']:.2f}x",
            f"{before}; {load()}",
        ]
    ]
    return {"rates": rates, "header": header, "rows": rows}


def slices(total: int, rounds: int) -> list[int]:
    base, extra = divmod(total, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds) if base or i < extra]


def _column_types(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def _payload_bytes(row: Sequence[object]) -> int:
    return sum(len(v) if isinstance(v, str | bytes) else 8 for v in row if v is not None)


class RawInvitations:
    """The raw baseline: a round's invitation rows, read back from monespace's schema and
    written again with ``COPY`` into plain tables of the same columns."""

    def __init__(self, bench: Bench, source: str, batch: int) -> None:
        self.source = source
        self.target = bench.schema()
        self.batch = batch
        self.conn = psycopg.connect(bench.server, autocommit=True)
        self.types: dict[str, list[str]] = {}
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.target)))
        for table, _ in INVITATION_ROWS:
            # LIKE copies the columns (and their defaults) only: no index, no constraint.
            self.conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                    sql.Identifier(self.target, table), sql.Identifier(source, table)
                )
            )
            self.types[table] = _column_types(self.conn, source, table)
        self.bytes_per_person = 0.0

    def read_round(self, moment: datetime, size: int) -> dict[str, list[tuple[Any, ...]]]:
        at = to_db_time(moment)
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for table, where in INVITATION_ROWS:
            query = sql.SQL("SELECT * FROM {} WHERE " + where).format(
                sql.Identifier(self.source, table)
            )
            rows[table] = self.conn.execute(query, (at,)).fetchall()
            assert len(rows[table]) == size, (table, len(rows[table]), size)
        self.bytes_per_person = sum(
            _payload_bytes(r) for table_rows in rows.values() for r in table_rows
        ) / max(size, 1)
        return rows

    def write(self, rows: dict[str, list[tuple[Any, ...]]], size: int) -> None:
        conn = self.conn
        for start in range(0, size, self.batch):
            with conn.transaction():
                for table, _ in INVITATION_ROWS:
                    statement = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier(self.target, table)
                    )
                    with conn.cursor().copy(statement) as copy:
                        copy.set_types(self.types[table])
                        for row in rows[table][start : start + self.batch]:
                            copy.write_row(row)

    def close(self) -> None:
        self.conn.close()


def _analyze(server: str, schema: str) -> float:
    """``ANALYZE`` every table of *schema* (partitions included); the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(server, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
    return time.perf_counter() - started


def invitations(
    bench: Bench, people: int, rounds: int, batch: int, *, profile: bool, analyze: bool
) -> dict[str, Any]:
    """Register *people*, then invite them in *rounds*, each beside the raw ``COPY``."""
    clock = ManualClock(T0)
    space_url = bench.url()
    source = bench.schemas[-1]
    extra = batch if profile else 0
    result: dict[str, Any] = {"people": people, "rounds": rounds, "batch": batch}
    with _open(space_url, bench.key, clock) as space:
        load_before = load()
        started = time.perf_counter()
        registered = 0
        for _ in space.accounts.register_patients(
            OPERATOR, synthetic_identities(people + extra, seed=0, today=T0.date()), batch=batch
        ):
            registered += 1
            if registered % 50_000 == 0:
                progress(f"registered {registered:,} / {people + extra:,} ({load()})")
        register_seconds = time.perf_counter() - started
        result["register"] = {
            "people": registered,
            "seconds": register_seconds,
            "rate": registered / register_seconds,
            "load": f"{load_before}; {load()}",
        }
        progress(f"registered {registered:,} in {register_seconds:.0f} s ({load()})")
        if analyze:
            result["analyze_seconds"] = _analyze(bench.server, source)
            progress(f"analysed in {result['analyze_seconds']:.0f} s ({load()})")
        raw = RawInvitations(bench, source, batch)
        ours: list[float] = []
        theirs: list[float] = []
        ours_seconds = theirs_seconds = 0.0
        load_before = load()
        try:
            for i, size in enumerate(slices(people, rounds)):
                moment = T0 + timedelta(days=i, minutes=1)
                clock.set(moment)
                start = time.perf_counter()
                counts = space.accounts.invite_registered(OPERATOR, batch=batch, limit=size)
                elapsed = time.perf_counter() - start
                assert counts["invited"] == size, counts
                ours.append(size / elapsed)
                ours_seconds += elapsed
                rows = raw.read_round(moment, size)
                start = time.perf_counter()
                raw.write(rows, size)
                elapsed = time.perf_counter() - start
                theirs.append(size / elapsed)
                theirs_seconds += elapsed
                del rows
                progress(
                    f"round {i + 1}: {size:,} invited, monespace {ours[-1]:,.0f}/s, "
                    f"raw COPY {theirs[-1]:,.0f}/s ({load()})"
                )
        finally:
            raw.close()
        result.update(
            {
                "monespace": ours,
                "raw": theirs,
                "monespace_seconds": ours_seconds,
                "raw_seconds": theirs_seconds,
                "bytes_per_person": raw.bytes_per_person,
                "load": f"{load_before}; {load()}",
            }
        )
        if profile:
            result["profile"] = _profile(space, clock, batch)
    return result


def _profile(space: monespace.Space, clock: ManualClock, batch: int) -> str:
    """cProfile of one invitation batch: where its time goes."""
    clock.set(T0 + timedelta(days=400))
    profiler = cProfile.Profile()
    profiler.enable()
    counts = space.accounts.invite_registered(OPERATOR, batch=batch, limit=batch)
    profiler.disable()
    assert counts["invited"] == batch, counts
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    out.write(f"one batch of {batch} invitations, {total:.3f} s of own time under cProfile\n")
    stats.sort_stats("cumulative").print_stats(r"monespace|psycopg|cattrs|json", 35)
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


def _median_spread(samples: Sequence[float]) -> tuple[float, float]:
    median = statistics.median(samples)
    return median, (max(samples) - min(samples)) / median


def invitation_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    ours, spread_ours = _median_spread(result["monespace"])
    theirs, spread_theirs = _median_spread(result["raw"])
    overall_ours = result["people"] / result["monespace_seconds"]
    overall_theirs = result["people"] / result["raw_seconds"]
    header = [
        "people",
        "monespace invitations/s (median / overall)",
        "raw COPY people/s (median / overall)",
        "ratio",
        "spread m/b",
        "monespace time",
        "load average before; after",
    ]
    rows = [
        [
            f"{result['people']:,}",
            f"{ours:,.0f} / {overall_ours:,.0f}",
            f"{theirs:,.0f} / {overall_theirs:,.0f}",
            f"{ours / theirs:.2f}x",
            f"{spread_ours:.0%} / {spread_theirs:.0%}",
            f"{result['monespace_seconds']:.0f} s",
            result["load"],
        ]
    ]
    return header, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer people")
    parser.add_argument(
        "--writers",
        default="1,2,4,8",
        help="numbers of writer processes, comma-separated (default 1,2,4,8)",
    )
    parser.add_argument(
        "--writers-json", metavar="PATH", help="also write the writers' curve as JSON to PATH"
    )
    parser.add_argument(
        "--people", type=int, help="people to register and invite (default 100,000; quick 20,000)"
    )
    parser.add_argument("--rounds", type=int, help="invitation rounds (default 5; quick 4)")
    parser.add_argument("--batch", type=int, default=500, help="people per transaction (500)")
    parser.add_argument("--profile", action="store_true", help="profile one invitation batch")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not ANALYZE the tables between registration and invitations",
    )
    parser.add_argument(
        "--skip", default="", help=f"parts to leave out, comma-separated ({', '.join(PARTS)})"
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args()
    skip = {part for part in args.skip.split(",") if part}
    if unknown := skip - set(PARTS):
        parser.error(f"unknown part(s) to skip: {', '.join(sorted(unknown))}")
    counts = [int(n) for n in args.writers.split(",")]
    people = args.people or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (4 if args.quick else 5)
    bench = Bench(args.server, 1.5 if args.quick else 5.0)
    with psycopg.connect(args.server) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    machine = describe_machine(
        tempfile.gettempdir(),
        packages=("monespace", "psycopg"),
        extra={
            "postgresql": f"{server_version} at {args.server}",
            "revision": revision(Path(__file__).parent),
        },
    )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"monespace PostgreSQL benchmark ({'quick' if args.quick else 'full'} run, {started})")
    for name, value in machine.items():
        print(f"{name:<12}  {value}")
    print(f"{'load':<12}  {load()} at the start")
    results: dict[str, Any] = {}
    try:
        if "writers" not in skip:
            results["writers"] = writers(bench, counts)
        if "invitations" not in skip:
            results["invitations"] = invitations(
                bench, people, rounds, args.batch, profile=args.profile, analyze=not args.no_analyze
            )
        if "audit" not in skip:
            results["audit"] = audit(bench)
    finally:
        bench.drop()
    if "writers" in results:
        print(
            f"\nDocuments added per second ({bench.window} s window per figure; raw: one "
            "autocommit INSERT of the same 4 KiB per operation, as many processes)\n"
        )
        print_grid(results["writers"]["header"], results["writers"]["rows"], markdown=args.markdown)
        print(
            "\nwaiting for the lock: backends waiting for the schema's advisory write lock, "
            "mean of samples every 50 ms over monespace's window"
        )
        if args.writers_json:
            curve = {
                "date": started,
                "machine": machine,
                "window_seconds": bench.window,
                "what": "documents added per second (4 KiB, one transaction each) by N writer "
                "processes, beside raw psycopg autocommit INSERTs of the same bytes by N processes",
                "points": results["writers"]["points"],
            }
            Path(args.writers_json).write_text(json.dumps(curve, indent=2) + "\n", "utf-8")
            print(f"\ncurve written to {args.writers_json}")
    if "invitations" in results:
        result = results["invitations"]
        reg = result["register"]
        print(
            f"\nInvitations, {result['people']:,} people in {result['rounds']} rounds, batches "
            f"of {result['batch']} (raw: COPY of the same rows, about "
            f"{result['bytes_per_person']:,.0f} B of values per person, into plain tables)\n"
        )
        print_grid(*invitation_table(result), markdown=args.markdown)
        print(
            f"\nregistration (not compared): {reg['people']:,} people in {reg['seconds']:.0f} s, "
            f"{reg['rate']:,.0f}/s (load {reg['load']}); "
            + (
                f"then ANALYZE of the schema's tables in {result['analyze_seconds']:.1f} s"
                if "analyze_seconds" in result
                else "no ANALYZE (--no-analyze)"
            )
        )
        if "profile" in result:
            print("\nProfile of one invitation batch on PostgreSQL\n")
            print(result["profile"])
    if "audit" in results:
        print(f"\nAudit appends ({bench.window} s window per figure)\n")
        print_grid(results["audit"]["header"], results["audit"]["rows"], markdown=args.markdown)
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
