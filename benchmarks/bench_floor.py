"""What SQLite alone costs for the statements monespace runs: the floor under issue 18's goals.

Run ``python benchmarks/bench_floor.py`` (about 100 seconds; ``--quick`` for about 40
seconds, ``--json PATH`` to keep the figures). For each operation it measures, in the same run:

- **monespace**: the operation through the public API, on a copy of a prepared database;
- **replay**: every statement monespace ran for the same operations (recorded, with its
  parameters, on another copy of the same database), executed again by plain ``sqlite3``
  on a third copy, with the same connection settings. The replay does all the database
  work of the operation (the reads that feed the decision, the data key's row, the
  inserts and their indexes, the audit head, the commits) and none of the library's
  Python work (checks, decision, seals, chaining, JSON). It is the rate monespace would
  reach if its own code took no time at all;
- **crypto**: the cryptography the security model requires for one operation, called
  directly in a loop with the sizes monespace stored (for an addition: the content's
  SHA-256, the content and the metadata sealed with AES-256-GCM, the holder's identity
  opened for the notice's address and the notice sealed, the audit event's HMAC-SHA256);
- **floor**: replay and crypto together (``1 / (1/replay + 1/crypto)``): an implementation
  of the same data model and the same security with no other code at all;
- **raw**: the baseline issue 18's goal is stated against (the same one as in
  ``bench_record.py`` and ``bench_accounts.py``).

``replay / raw`` and ``floor / raw`` are therefore the best ratios the current data model,
and the data model with its cryptography, allow: when one is below a goal, no work on the
library's code can meet that goal; only fewer statements, rows, indexes or seals per
operation can. ``monespace / floor`` is what the library's own code costs on top.

It also writes 50 additions, each alone in the write-ahead log, and attributes each page
of their commits' WAL frames to the table or index it belongs to (SQLite's ``dbstat``), the
count issue 18's goal 11 is about; and it measures the floor under goal 9 (four writer
processes against one): the statements of each writer's additions, recorded for four
patients one after the other, replayed by one process, then by four at once, each queuing
on the same lock file as monespace's writers, beside monespace's own writers for the same
patients. Replayed
at once, one writer's audit append may find the others' events ahead of the head it
recorded: the guarded insert then writes nothing, where monespace would read the head and
append again (two statements more). The concurrent replay does less work than monespace
would, so it stays a floor.

The databases live in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import monespace
from _common import Report, describe_machine, parser, print_grid, print_machine, revision
from bench_accounts import OPERATOR, T0, Raw, Sizes
from bench_record import BIOLOGY, PROFESSIONAL, pdf_of, register_holder
from bench_writers import AUTHOR, PAYLOAD, TYPE, seed, trial
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider, content_aad, open_sealed, seal
from monespace.record import NewDocument
from monespace.storage._sqlite import _register_functions
from monespace.synth import synthetic_identities
from monespace.testing import storage_of

KIB = 1024


# --- recording the statements -----------------------------------------------------------------

#: One statement as a connection ran it: the connection's number, ``executemany`` or not,
#: the SQL and its parameters.
Statement = tuple[int, bool, str, Any]


class _RecordingCursor(sqlite3.Cursor):
    log: list[Statement] | None = None
    number = 0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.log is not None:
            self.log.append((self.number, False, sql, parameters))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        rows = list(seq_of_parameters)
        if self.log is not None:
            self.log.append((self.number, True, sql, rows))
        return super().executemany(sql, rows)


@contextmanager
def recording(log: list[Statement]) -> Iterator[Callable[[bool], None]]:
    """Connections opened inside the block record what their cursors run into *log* while
    the switch it yields is on."""
    real_connect = sqlite3.connect
    state = {"on": False}
    opened = 0

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        opened += 1
        number = opened

        class Cursor(_RecordingCursor):
            pass

        Cursor.number = number

        class Connection(sqlite3.Connection):
            def cursor(self, factory: Any = Cursor) -> Any:  # type: ignore[override]
                cursor = super().cursor(factory)
                cursor.log = log if state["on"] else None
                return cursor

        return real_connect(*args, factory=Connection, **kwargs)

    def switch(on: bool) -> None:
        state["on"] = on

    sqlite3.connect = connect  # type: ignore[assignment]
    try:
        yield switch
    finally:
        sqlite3.connect = real_connect  # type: ignore[assignment]


def replay(path: Path, log: Sequence[Statement], *, synchronous: str, start: Any = None) -> float:
    """Run *log* again on the database at *path* with plain ``sqlite3`` (one connection per
    recorded connection, set up as monespace sets up its own); return the seconds taken.

    Write transactions queue on the lock file monespace's writers use
    (``<file>-writer``) and wait for SQLite's lock in its busy handler, so that several
    processes replaying at once take turns as monespace's writers do. *start*, a barrier,
    is waited on before the clock starts.
    """
    conns: dict[int, sqlite3.Connection] = {}
    for number in sorted({entry[0] for entry in log}):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        _register_functions(conn)
        for pragma in (
            "PRAGMA busy_timeout = 10000",
            "PRAGMA journal_mode = WAL",
            f"PRAGMA synchronous = {synchronous}",
            "PRAGMA foreign_keys = ON",
            "PRAGMA secure_delete = ON",
        ):
            conn.execute(pragma)
        conns[number] = conn
    cursors = {number: conn.cursor() for number, conn in conns.items()}
    lock = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    if start is not None:
        start.wait()
    writing = None  # the connection in a write transaction, if any
    began = time.perf_counter()
    for number, many, sql, params in log:
        cur = cursors[number]
        if sql == "BEGIN IMMEDIATE":
            fcntl.flock(lock, fcntl.LOCK_EX)
            writing = number
        if many:
            cur.executemany(sql, params)
        else:
            cur.execute(sql, params).fetchall()
        if sql in ("COMMIT", "ROLLBACK") and number == writing:
            fcntl.flock(lock, fcntl.LOCK_UN)
            writing = None
    elapsed = time.perf_counter() - began
    os.close(lock)
    for conn in conns.values():
        conn.close()
    return elapsed


def copy_db(src: Path, dst: Path) -> Path:
    """Copy a closed database (its write-ahead log checkpointed away by the close)."""
    for suffix in ("-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            raise RuntimeError(f"{src} has a {suffix} file: close it first")
    shutil.copyfile(src, dst)
    return dst


# --- the scenarios ----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    unit: str
    count: int
    ours: list[float]
    replayed: list[float]
    raw: list[float]
    crypto: list[float]
    statements: int
    baseline: str

    def rates(self) -> tuple[float, float, float, float, float]:
        """Operations per second: monespace, replay, crypto, floor, raw."""
        ours, replayed, crypto, raw = (
            self.count / statistics.median(times)
            for times in (self.ours, self.replayed, self.crypto, self.raw)
        )
        return ours, replayed, crypto, 1 / (1 / replayed + 1 / crypto), raw


@dataclass
class Stored:
    """Mean sizes of what one operation stored, for the crypto column."""

    meta: int
    identity: int
    notice: int

    @classmethod
    def read(cls, path: Path) -> Stored:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            meta, identity, notice = conn.execute(
                "SELECT (SELECT avg(length(sealed_meta)) FROM documents),"
                " (SELECT avg(length(sealed_identity)) FROM patients),"
                " (SELECT avg(length(sealed)) FROM outbox)"
            ).fetchone()
        return cls(int(meta or 0), int(identity or 0), int(notice or 0))


_KEY = os.urandom(32)
_OVERHEAD = 29  # version, nonce and tag around a sealed plaintext
#: An audit event's canonical bytes are about this long (ids, action, instants, rule).
_EVENT_BYTES = 260


def _sealed(size: int) -> tuple[bytes, bytes]:
    aad = content_aad("kind", "owner-id-0123456789ab", "object-id-0123456789a")
    return seal(_KEY, os.urandom(max(size - _OVERHEAD, 1)), aad), aad


def _event_mac() -> None:
    hmac.digest(_KEY, os.urandom(_EVENT_BYTES), "sha256")


class Scenario:
    """A prepared database, an operation run *count* times on it, and the raw baseline."""

    name = ""
    unit = ""
    baseline = ""
    synchronous = "FULL"

    def __init__(self, work: Path, count: int) -> None:
        self.work = work
        self.count = count
        self.key = MasterKey.generate()
        self.clock = ManualClock(T0)

    def open(self, path: Path) -> monespace.Space:
        space = monespace.open(
            f"sqlite:///{path}",
            clock=self.clock,
            key_provider=StaticKeyProvider(self.key),
            load_entrypoints=False,
        )
        if self.synchronous != "FULL":
            storage_of(space)._writer.execute(f"PRAGMA synchronous = {self.synchronous}")  # type: ignore[attr-defined]
        return space

    def prepare(self, space: monespace.Space) -> None:
        raise NotImplementedError

    def run(self, space: monespace.Space) -> None:
        raise NotImplementedError

    def raw(self, path: Path) -> float:
        raise NotImplementedError

    def crypto(self, stored: Stored) -> Callable[[], None]:
        """One operation's cryptography, for sizes as *stored*."""
        raise NotImplementedError

    def measure(self, repeat: int) -> Row:
        base = self.work / f"{self.name}.db"
        space = self.open(base)
        self.prepare(space)
        space.close()
        ours, replayed, raw, crypto = [], [], [], []
        statements = 0
        for i in range(repeat):
            recorded = copy_db(base, self.work / f"{self.name}-rec-{i}.db")
            log: list[Statement] = []
            with recording(log) as switch:
                space = self.open(recorded)
                switch(True)
                self.run(space)
                switch(False)
                space.close()
            statements = sum(len(p) if many else 1 for _, many, _, p in log)
            unit = self.crypto(Stored.read(recorded))
            start = time.perf_counter()
            for _ in range(self.count):
                unit()
            crypto.append(time.perf_counter() - start)
            again = copy_db(base, self.work / f"{self.name}-replay-{i}.db")
            replayed.append(replay(again, log, synchronous=self.synchronous))
            mine = copy_db(base, self.work / f"{self.name}-ours-{i}.db")
            space = self.open(mine)
            start = time.perf_counter()
            self.run(space)
            ours.append(time.perf_counter() - start)
            space.close()
            raw.append(self.raw(self.work / f"{self.name}-raw-{i}.db"))
            for path in (recorded, again, mine):
                path.unlink()
        base.unlink()
        return Row(
            self.name,
            self.unit,
            self.count,
            ours,
            replayed,
            raw,
            crypto,
            statements // self.count,
            self.baseline,
        )


def _raw_blob_inserts(path: Path, payload: bytes, count: int, batch: int, sync: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("PRAGMA journal_mode = WAL", f"PRAGMA synchronous = {sync}"):
        conn.execute(pragma)
    conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    cur = conn.cursor()
    start = time.perf_counter()
    for _ in range(count // batch):
        cur.execute("BEGIN IMMEDIATE")
        cur.executemany("INSERT INTO blobs (data) VALUES (?)", [(payload,)] * batch)
        cur.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    path.unlink()
    return elapsed


class AddDocument(Scenario):
    unit = "documents/s"

    def __init__(self, work: Path, count: int, synchronous: str) -> None:
        super().__init__(work, count)
        self.synchronous = synchronous
        self.name = f"add_document 4 KiB, synchronous={synchronous}"
        self.baseline = (
            "BEGIN IMMEDIATE; INSERT the same 4 KiB into (id INTEGER PRIMARY KEY, data BLOB); "
            "COMMIT"
        )
        self.payload = pdf_of(4 * KIB)
        self.patient_id = ""

    def prepare(self, space: monespace.Space) -> None:
        self.patient_id = register_holder(space)
        for _ in range(200):  # a record that is not empty, indexes a few pages deep
            self.add(space)

    def add(self, space: monespace.Space) -> None:
        space.record.add_document(
            PROFESSIONAL,
            self.patient_id,
            self.payload,
            media_type="application/pdf",
            type_code=BIOLOGY,
            title="Compte rendu d'examens biologiques",
        )

    def run(self, space: monespace.Space) -> None:
        for _ in range(self.count):
            self.add(space)

    def raw(self, path: Path) -> float:
        return _raw_blob_inserts(path, self.payload, self.count, 1, self.synchronous)

    def crypto(self, stored: Stored) -> Callable[[], None]:
        aad = content_aad("content", "owner-id-0123456789ab", "object-id-0123456789a")
        meta = os.urandom(max(stored.meta - _OVERHEAD, 1))
        identity, identity_aad = _sealed(stored.identity)
        notice = os.urandom(max(stored.notice - _OVERHEAD, 1))
        payload = self.payload
        notices = self.notices_per_unit

        def unit() -> None:
            hashlib.sha256(payload).hexdigest()
            seal(_KEY, payload, aad)
            seal(_KEY, meta, aad)
            _event_mac()
            if notices:
                open_sealed(_KEY, identity, identity_aad)
                seal(_KEY, notice, aad)

        return unit

    #: Whether each addition queues a notice (a batch queues one per patient).
    notices_per_unit = True


class AddDocuments(AddDocument):
    def __init__(self, work: Path, count: int, batch: int) -> None:
        super().__init__(work, count, "FULL")
        self.batch = batch
        self.name = f"add_documents 4 KiB, {batch} a call"
        self.baseline = (
            f"BEGIN IMMEDIATE; executemany INSERT of {batch} times the same 4 KiB into "
            "(id INTEGER PRIMARY KEY, data BLOB); COMMIT"
        )

    def run(self, space: monespace.Space) -> None:
        item = NewDocument(
            self.patient_id,
            self.payload,
            "application/pdf",
            type_code=BIOLOGY,
            title="Compte rendu d'examens biologiques",
        )
        for _ in range(self.count // self.batch):
            result = space.record.add_documents(PROFESSIONAL, [item] * self.batch)
            assert not result.rejected, result.rejected

    def raw(self, path: Path) -> float:
        return _raw_blob_inserts(path, self.payload, self.count, self.batch, "FULL")

    notices_per_unit = False


class Invitations(Scenario):
    unit = "invitations/s"
    baseline = (
        "bench_accounts.py's raw side: per person, the account updated, a code row and an "
        "outbox row of the same sizes, into monespace's own tables and indexes"
    )

    def __init__(self, work: Path, count: int, batch: int) -> None:
        super().__init__(work, count)
        self.batch = batch
        self.name = f"invitations, {batch} a batch"
        self.sizes: Sizes | None = None

    def prepare(self, space: monespace.Space) -> None:
        people = synthetic_identities(self.count, seed=0, today=T0.date())
        for _ in space.accounts.register_patients(OPERATOR, people, batch=self.batch):
            pass
        self.clock.set(T0.replace(minute=1))

    def run(self, space: monespace.Space) -> None:
        counts = space.accounts.invite_registered(OPERATOR, batch=self.batch)
        assert counts["invited"] == self.count, counts
        if self.sizes is None:
            path = storage_of(space).path  # type: ignore[attr-defined]
            self.sizes = Sizes(path)
            self.sizes.measure_outbox(path)

    def crypto(self, stored: Stored) -> Callable[[], None]:
        identity, identity_aad = _sealed(stored.identity)
        letter = os.urandom(max(stored.notice - _OVERHEAD, 1))
        aad = content_aad("notification", "owner-id-0123456789ab", "object-id-0123456789a")

        def unit() -> None:
            open_sealed(_KEY, identity, identity_aad)  # the contact, for the letter
            hmac.digest(_KEY, os.urandom(6), "sha256")  # the provisional code's hash
            seal(_KEY, letter, aad)
            _event_mac()

        return unit

    def raw(self, path: Path) -> float:
        assert self.sizes is not None
        copy_db(self.work / f"{self.name}.db", path)
        raw = Raw(path, self.batch)  # on the prepared copy: the people are registered
        start = time.perf_counter()
        raw.invite(self.count, self.sizes, T0)
        elapsed = time.perf_counter() - start
        raw.close()
        path.unlink()
        return elapsed


# --- the pages of one commit ------------------------------------------------------------------


def wal_pages(work: Path, commits: int = 50) -> tuple[list[int], Counter[str]]:
    """Over *commits* additions, each alone in the write-ahead log: the WAL frames of each
    commit, and how many pages each B-tree took in all (page splits come and go with the
    record's size, so one commit alone can mislead)."""
    scenario = AddDocument(work, 1, "FULL")
    path = work / "frames.db"
    space = scenario.open(path)
    scenario.prepare(space)
    frames: list[int] = []
    owners: Counter[str] = Counter()
    for _ in range(commits):
        storage_of(space).scrub()  # checkpoint and truncate the log: it holds one commit next
        scenario.add(space)
        data = Path(f"{path}-wal").read_bytes()
        page_size = struct.unpack(">I", data[8:12])[0]
        pages = [
            struct.unpack(">I", data[offset : offset + 4])[0]
            for offset in range(32, len(data) - 23, 24 + page_size)
        ]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        frames.append(len(pages))
        owners.update(owner.get(page, "(free page)") for page in pages)
    space.close()
    return frames, owners


# --- several writer processes ------------------------------------------------------------------


def _replay_child(path: str, log: list[Statement], start: Any, out: Any) -> None:
    out.put(replay(Path(path), log, synchronous="FULL", start=start))


def replayed_by(path: Path, logs: list[list[Statement]], additions: int) -> float:
    """Additions per second when each of *logs* is replayed by its own process at once."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(len(logs)), ctx.Queue()
    procs = [ctx.Process(target=_replay_child, args=(str(path), log, start, out)) for log in logs]
    for proc in procs:
        proc.start()
    elapsed = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return additions * len(logs) / max(elapsed)


@dataclass
class Writers:
    """Goal 9's floor: the replayed statements of one writer process, then of four."""

    processes: int
    replayed: dict[int, list[float]]
    ours: dict[int, list[float]]


def writers_floor(work: Path, processes: int, additions: int, repeat: int) -> Writers:
    key = MasterKey.generate().material
    base = work / "writers.db"
    patients = seed(base, key, processes)
    result = Writers(processes, {1: [], processes: []}, {1: [], processes: []})
    for i in range(repeat):
        recorded = copy_db(base, work / f"writers-rec-{i}.db")
        log: list[Statement] = []
        logs = []
        with recording(log) as switch:
            space = monespace.open(
                f"sqlite:///{recorded}",
                key_provider=StaticKeyProvider(MasterKey(key)),
                load_entrypoints=False,
            )
            switch(True)
            for patient_id in patients:
                first = len(log)
                for _ in range(additions):
                    space.record.add_document(
                        AUTHOR, patient_id, PAYLOAD, media_type="application/pdf", type_code=TYPE
                    )
                logs.append(log[first:])
            switch(False)
            space.close()
        recorded.unlink()
        for count in (1, processes):
            again = copy_db(base, work / f"writers-replay-{i}-{count}.db")
            result.replayed[count].append(replayed_by(again, logs[:count], additions))
            again.unlink()
            mine = copy_db(base, work / f"writers-ours-{i}-{count}.db")
            rate, _ = trial("monespace", mine, key, patients[:count], 2.0)
            result.ours[count].append(rate)
            mine.unlink()
    base.unlink()
    return result


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    repeat = 3 if args.quick else 5
    count = 200 if args.quick else 500
    people = 2_000 if args.quick else 5_000
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "cryptography"),
        extra={"revision": revision(Path(__file__).parent)},
    )
    report = Report(
        script="benchmarks/bench_floor.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={"repeats": repeat, "additions": count, "people": people},
    )
    print(f"monespace: the floor under issue 18's goals ({report.mode} run, {report.started})\n")
    print_machine(machine)
    started = time.perf_counter()
    try:
        scenarios: list[Scenario] = [
            AddDocument(work, count, "OFF"),
            AddDocument(work, count, "FULL"),
            AddDocuments(work, count * 10, 500),
            Invitations(work, people, 500),
        ]
        rows = []
        for scenario in scenarios:
            print(f"  ... {scenario.name}", file=sys.stderr, flush=True)
            rows.append(scenario.measure(repeat))
        pages = wal_pages(work)
        print("  ... writer processes", file=sys.stderr, flush=True)
        writers = writers_floor(work, 4, 300 if args.quick else 1_000, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started

    grid = []
    for row in rows:
        ours, replayed, crypto, floor, raw = row.rates()
        grid.append(
            [
                row.name,
                f"{ours:,.0f}",
                f"{replayed:,.0f}",
                f"{crypto:,.0f}",
                f"{floor:,.0f}",
                f"{raw:,.0f}",
                f"{ours / raw:.2f}x",
                f"{replayed / raw:.2f}x",
                f"{floor / raw:.2f}x",
                f"{ours / floor:.2f}x",
                str(row.statements),
            ]
        )
        report.extra.setdefault("floor", []).append(  # type: ignore[union-attr]
            {
                "name": row.name,
                "unit": row.unit,
                "monespace": ours,
                "replay": replayed,
                "crypto": crypto,
                "floor": floor,
                "raw": raw,
                "statements_per_unit": row.statements,
                "baseline": row.baseline,
            }
        )
    print(f"\nMedians of {repeat} runs; rates in operations per second.")
    print_grid(
        [
            "operation",
            "monespace",
            "replay",
            "crypto",
            "floor",
            "raw",
            "monespace/raw",
            "replay/raw",
            "floor/raw",
            "monespace/floor",
            "statements",
        ],
        grid,
        markdown=args.markdown,
    )
    print("\nRaw baselines:")
    for row in rows:
        print(f"- {row.name}: {row.baseline}")
    frames, owners = pages
    print(
        f"\nWAL frames of one add_document commit, over {len(frames)} commits: median "
        f"{statistics.median(frames):g}, from {min(frames)} to {max(frames)}; pages per "
        "commit by B-tree:"
    )
    print_grid(
        ["table or index", "pages per commit"],
        [[name, f"{n / len(frames):.2f}"] for name, n in owners.most_common()],
        markdown=args.markdown,
    )
    report.extra["wal_frames"] = frames
    report.extra["wal_pages"] = dict(owners)
    many = writers.processes
    print(
        f"\nWriter processes on one file, each adding 4 KiB documents to its own patient's "
        f"record (medians of {repeat}):"
    )
    grid = []
    for side, rates in (("replay", writers.replayed), ("monespace", writers.ours)):
        one, more = statistics.median(rates[1]), statistics.median(rates[many])
        grid.append([side, f"{one:,.0f}", f"{more:,.0f}", f"{more / one:.2f}x"])
    print_grid(
        ["side", "1 process/s", f"{many} processes/s", f"{many} vs 1"], grid, markdown=args.markdown
    )
    report.extra["writers"] = {"replay": writers.replayed, "monespace": writers.ours}
    print(f"\nmeasured in {elapsed:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
