"""Benchmark of the account lifecycle at population scale, on SQLite.

Run ``python benchmarks/bench_accounts.py`` (1,000,000 people: about 30 minutes on 2 cores;
``--quick`` for 20,000 people in under a minute; ``--people N`` for any size; ``--profile``
to print where the time of an invitation goes). Every monespace figure is printed beside a
raw :mod:`sqlite3` baseline writing the same rows, to a database with the same schema, with
the same batching and durability (WAL, ``synchronous=FULL``, one ``BEGIN IMMEDIATE``/``COMMIT``
per batch), measured in the same run:

- people registered per second through ``space.accounts.register_patients(batch=B)``, versus
  raw inserts of the rows a registration writes (person, data key, account, identity proof,
  audit event);
- invitations created and stored per second through ``space.accounts.invite_registered(batch=B)``
  (information letter with a provisional code, queued in the outbox), which runs the batch
  path of ``space.accounts.invite_many`` (each batch prepared in a read transaction, then
  written a table at a time), versus a raw update of the account's state plus an insert of a
  code row and an outbox row per person;
- automatic creations per second by the deadline run (``space.tick()`` at the end of the
  opposition window of each round's invitations, sent a day apart), versus a raw
  select-and-update of the same account rows.

Each phase runs in rounds over slices of the population, the two sides alternating, so that
each figure has one sample per round (median and spread as in the other benchmarks). A last
context row measures the purge of a few hundred spaces in the full-size database.

The databases live in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import multiprocessing
import os
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends.openssl.backend import backend as openssl

import monespace
from _common import Figure, Rates, Report, describe_machine, parser, print_machine, revision
from _common import print_table as show
from monespace import Actor
from monespace._ids import new_id
from monespace.accounts import PatientIdentity
from monespace.accounts._lifecycle import end_of_paris_day
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.storage import Slice, SQLiteStorage, to_db_time
from monespace.synth import synthetic_identities
from monespace.testing import storage_of

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OPPOSITION = timedelta(days=42)
OPERATOR = Actor.system("bench")

# The same connection settings as monespace.storage.SQLiteStorage, for the raw baselines.
RAW_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)

ACCOUNT_FIELDS = (
    "patient_id, state, channel, invited_at, opened_at, activated_at, opposed_at, closed_at, "
    "archive_until, deletion_requested_at, purge_deadline, purged_at, suspended_at, "
    "suspension_deadline, resume_state, died_on"
)
ACCOUNT_UPDATE = (
    "UPDATE accounts SET state = ?, channel = ?, invited_at = ?, opened_at = ?, "
    "activated_at = ?, opposed_at = ?, closed_at = ?, archive_until = ?, "
    "deletion_requested_at = ?, purge_deadline = ?, purged_at = ?, suspended_at = ?, "
    "suspension_deadline = ?, resume_state = ?, died_on = ?, deadline_at = ? "
    "WHERE patient_id = ?"
)
CODE_UPSERT = (
    "INSERT INTO provisional_codes (patient_id, code_hash, issued_at, expires_at, attempts, "
    "used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (patient_id) DO UPDATE SET code_hash = excluded.code_hash, "
    "issued_at = excluded.issued_at, expires_at = excluded.expires_at, "
    "attempts = excluded.attempts, used_at = excluded.used_at, revoked_at = excluded.revoked_at"
)
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, patient_id, channel, kind, created_at, next_attempt_at, "
    "idempotency_key, sealed, status, attempts, last_error, sent_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, NULL, NULL)"
)
PATIENT_INSERT = (
    "INSERT INTO patients (id, nir_index, sealed_identity, created_at) VALUES (?, ?, ?, ?)"
)
KEY_INSERT = (
    "INSERT INTO data_keys (patient_id, master_key_id, wrapped, created_at, destroyed_at) "
    "VALUES (?, ?, ?, ?, NULL)"
)
ACCOUNT_INSERT = (
    f"INSERT INTO accounts ({ACCOUNT_FIELDS}, deadline_at) "
    "VALUES (?, 'registered', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL)"
)
PROOF_INSERT = (
    "INSERT INTO identity_proofs (patient_id, vitale_index, birth_index, failures, "
    "failures_since) VALUES (?, ?, ?, 0, NULL)"
)
AUDIT_INSERT = (
    "INSERT INTO audit_events (shard, seq, at, actor_kind, actor_id, action, outcome, "
    "patient_id, target_kind, target_id, mode, purpose, rule, prev_hash, hash, key_id, chain) "
    "VALUES ('0', ?, ?, 'system', 'bench', 'patient.register', 'success', ?, 'patient', ?, "
    "'normal', NULL, 'operator_administers', ?, ?, 'bench', 2)"
)


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def raw_connect(path: Path) -> sqlite3.Connection:
    """A connection set up as monespace sets up its own (autocommit, WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in RAW_PRAGMAS:
        conn.execute(pragma)
    return conn


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


class Sizes:
    """Average sizes of what monespace stored, so the raw rows have the same size."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA query_only = ON")
        self.identity = int(
            conn.execute("SELECT avg(length(sealed_identity)) FROM patients").fetchone()[0]
        )
        self.wrapped, self.master_key_id = conn.execute(
            "SELECT length(wrapped), master_key_id FROM data_keys "
            "WHERE patient_id NOT LIKE 'space:%' LIMIT 1"
        ).fetchone()
        self.outbox: dict[str, int] = {}
        self.email_share = 0.8
        conn.close()

    def measure_outbox(self, path: Path) -> None:
        conn = sqlite3.connect(path)
        rows = conn.execute(
            "SELECT channel, avg(length(sealed)), count(*) FROM outbox GROUP BY channel"
        ).fetchall()
        conn.close()
        self.outbox = {channel: int(size) for channel, size, _ in rows}
        total = sum(count for *_, count in rows)
        self.email_share = sum(c for ch, _, c in rows if ch == "email") / max(total, 1)


class Raw:
    """The raw sqlite3 side: the same tables and indexes (created by monespace's own
    migrations), written with plain statements."""

    def __init__(self, path: Path, batch: int) -> None:
        SQLiteStorage(path).close()  # the schema, exactly as monespace creates it
        self.conn = raw_connect(path)
        self.cur = self.conn.cursor()
        self.batch = batch
        self.seq = 0

    def register(self, count: int, sizes: Sizes, now: datetime) -> None:
        at = to_db_time(now)
        cur = self.cur
        remaining = count
        while remaining:
            size = min(self.batch, remaining)
            cur.execute("BEGIN IMMEDIATE")
            for _ in range(size):
                pid = new_id()
                cur.execute(PATIENT_INSERT, (pid, os.urandom(32), os.urandom(sizes.identity), at))
                cur.execute(KEY_INSERT, (pid, sizes.master_key_id, os.urandom(sizes.wrapped), at))
                cur.execute(ACCOUNT_INSERT, (pid,))
                cur.execute(PROOF_INSERT, (pid, os.urandom(32), os.urandom(32)))
                self.seq += 1
                cur.execute(AUDIT_INSERT, (self.seq, at, pid, pid, os.urandom(32), os.urandom(32)))
            cur.execute("COMMIT")
            remaining -= size

    def invite(self, count: int, sizes: Sizes, now: datetime) -> None:
        """Per person: the account moves to 'invited', a code row, an outbox row."""
        at, expires = to_db_time(now), to_db_time(now + OPPOSITION)
        email, letter = sizes.outbox.get("email", 1500), sizes.outbox.get("letter", 1600)
        cur = self.cur
        after, done = "", 0
        while done < count:
            ids = [
                r[0]
                for r in cur.execute(
                    "SELECT patient_id FROM accounts WHERE state = 'registered' "
                    "AND patient_id > ? ORDER BY patient_id LIMIT ?",
                    (after, min(self.batch, count - done)),
                ).fetchall()
            ]
            if not ids:
                return
            cur.execute("BEGIN IMMEDIATE")
            for pid in ids:
                channel = "email" if os.urandom(1)[0] < 256 * sizes.email_share else "letter"
                cur.execute(
                    ACCOUNT_UPDATE,
                    ("invited", channel, at, *(None,) * 12, expires, pid),
                )
                cur.execute(CODE_UPSERT, (pid, os.urandom(32), at, expires, 0, None, None))
                message = new_id()
                sealed = os.urandom(email if channel == "email" else letter)
                cur.execute(
                    OUTBOX_INSERT, (message, pid, channel, "invitation", at, at, message, sealed)
                )
            cur.execute("COMMIT")
            after, done = ids[-1], done + len(ids)

    def tick(self, now: datetime) -> int:
        """Select the accounts due and update each to 'created', batch per transaction."""
        cur, cutoff, done = self.cur, to_db_time(now), 0
        while True:
            cur.execute("BEGIN IMMEDIATE")
            rows = cur.execute(
                f"SELECT {ACCOUNT_FIELDS}, deadline_at FROM accounts WHERE deadline_at <= ? "
                "ORDER BY deadline_at, patient_id LIMIT ?",
                (cutoff, self.batch),
            ).fetchall()
            for row in rows:
                deadline = row[16]
                cur.execute(
                    ACCOUNT_UPDATE,
                    ("created", row[2], row[3], deadline, *row[5:16], None, row[0]),
                )
            cur.execute("COMMIT")
            done += len(rows)
            if len(rows) < self.batch:
                return done

    def close(self) -> None:
        self.conn.close()


def slices(total: int, rounds: int) -> list[int]:
    base, extra = divmod(total, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds) if base or i < extra]


def run(work: Path, people: int, rounds: int, batch: int, report: Report) -> list[Figure]:
    clock = ManualClock(T0)
    path = work / "monespace.db"
    space = monespace.open(
        f"sqlite:///{path}",
        clock=clock,
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    )
    raw = Raw(work / "raw.db", batch)
    sizes_ready: Sizes | None = None
    identities = synthetic_identities(people, seed=0, today=T0.date())
    chunks = slices(people, rounds)
    ours: dict[str, list[float]] = {"register": [], "invite": [], "tick": []}
    theirs: dict[str, list[float]] = {"register": [], "invite": [], "tick": []}
    phase_seconds: dict[str, float] = {}

    started = time.perf_counter()
    generated = 0.0
    for i, size in enumerate(chunks):
        t = time.perf_counter()
        chunk: list[PatientIdentity] = list(itertools.islice(identities, size))
        generated += time.perf_counter() - t
        elapsed = timed(
            lambda chunk=chunk: sum(
                1 for _ in space.accounts.register_patients(OPERATOR, chunk, batch=batch)
            )
        )
        ours["register"].append(size / elapsed)
        if sizes_ready is None:
            sizes_ready = Sizes(path)
        theirs["register"].append(
            size / timed(lambda size=size, sizes=sizes_ready: raw.register(size, sizes, T0))
        )
        progress(
            f"registered {sum(chunks[: i + 1]):,} / {people:,}: monespace "
            f"{ours['register'][-1]:,.0f}/s, raw {theirs['register'][-1]:,.0f}/s"
        )
    phase_seconds["register"] = time.perf_counter() - started - generated
    phase_seconds["generate identities"] = generated
    assert sizes_ready is not None
    sizes = sizes_ready

    started = time.perf_counter()
    invited_at = []
    for i, size in enumerate(chunks):
        # A day apart: an opposition window ends at midnight, Paris time, so the deadline
        # run of each round opens that round's spaces only.
        moment = T0 + timedelta(days=i, minutes=1)
        invited_at.append(moment)
        clock.set(moment)
        counts: dict[str, int] = {}

        def invite(size: int = size, counts: dict[str, int] = counts) -> None:
            counts.update(space.accounts.invite_registered(OPERATOR, batch=batch, limit=size))

        ours["invite"].append(size / timed(invite))
        assert counts["invited"] == size, counts
        if not sizes.outbox:
            sizes.measure_outbox(path)
        theirs["invite"].append(
            size / timed(lambda size=size, moment=moment: raw.invite(size, sizes, moment))
        )
        progress(
            f"invited {sum(chunks[: i + 1]):,} / {people:,}: monespace "
            f"{ours['invite'][-1]:,.0f}/s, raw {theirs['invite'][-1]:,.0f}/s"
        )
    phase_seconds["invite"] = time.perf_counter() - started

    started = time.perf_counter()
    for i, size in enumerate(chunks):
        due = end_of_paris_day(invited_at[i] + OPPOSITION)
        clock.set(due)
        result: dict[str, int] = {}
        ours["tick"].append(
            size / timed(lambda due=due, result=result: result.update(space.tick(due)))
        )
        assert result == {"created": size}, result
        done = [0]
        theirs["tick"].append(
            size / timed(lambda due=due, done=done: done.__setitem__(0, raw.tick(due)))
        )
        assert done[0] == size, done
        progress(
            f"opened {sum(chunks[: i + 1]):,} / {people:,}: monespace "
            f"{ours['tick'][-1]:,.0f}/s, raw {theirs['tick'][-1]:,.0f}/s"
        )
    phase_seconds["tick"] = time.perf_counter() - started

    # Context: a few purges in the full-size database (each also cancels the person's
    # pending notifications and replaces their NIR index). Nothing was delivered, so every
    # invitation is still pending in the outbox: the worst case for that cancellation.
    purges = min(200, max(10, 4_000_000 // people))
    with storage_of(space).read() as tx:
        pending = tx.outbox.count()
    with storage_of(space).read() as tx:
        doomed = tx.accounts.in_state("created", limit=purges)
    for pid in doomed:
        space.accounts.close(OPERATOR, pid, delete=True)
    purge_result: dict[str, int] = {}
    purge_seconds = timed(lambda: purge_result.update(space.tick(clock.now())))
    assert purge_result == {"purged": len(doomed)}, purge_result
    progress(f"purged {len(doomed)} spaces in {purge_seconds:.2f} s")

    states = space.accounts.count_by_state()
    events = space.audit.count()
    started = time.perf_counter()
    verified = space.audit.verify()
    verify_seconds = time.perf_counter() - started
    assert verified.ok, verified
    space.close()
    raw.close()
    size_ours = sum(f.stat().st_size for f in work.glob("monespace.db*"))
    size_raw = sum(f.stat().st_size for f in work.glob("raw.db*"))
    report.parameters.update(
        {
            "phase_seconds": {k: round(v, 1) for k, v in phase_seconds.items()},
            "final_states": states,
            "audit_events": events,
            "audit_verify_seconds": round(verify_seconds, 1),
            "monespace_db_bytes": size_ours,
            "raw_db_bytes": size_raw,
            "purges": len(doomed),
            "purge_seconds": round(purge_seconds, 3),
            "outbox_sizes": sizes.outbox,
            "sealed_identity_bytes": sizes.identity,
        }
    )

    same = f"same schema, batches of {batch} per BEGIN IMMEDIATE/COMMIT, WAL, synchronous=FULL"
    return [
        Figure(
            "register_patients",
            "people/s",
            Rates(ours["register"]),
            Rates(theirs["register"]),
            "raw sqlite3 INSERT of a person row (random sealed identity of the same size), a "
            f"data key, an account, an identity proof and an audit event per person; {same}",
            note=f"{people:,} people in {len(chunks)} rounds; identity generation excluded",
        ),
        Figure(
            "invite_registered",
            "invitations/s",
            Rates(ours["invite"]),
            Rates(theirs["invite"]),
            "raw sqlite3 SELECT of the next registered ids, then per person UPDATE of the "
            "account row, upsert of a code row and INSERT of an outbox row (random sealed "
            f"bytes of monespace's average size); {same}",
            note=f"e-mails {sizes.email_share:.0%}, letters the rest; sealed message about "
            f"{sizes.outbox.get('email', 0)} B (e-mail) / "
            f"{sizes.outbox.get('letter', 0)} B (letter)",
        ),
        Figure(
            "tick: automatic creation",
            "spaces/s",
            Rates(ours["tick"]),
            Rates(theirs["tick"]),
            "raw sqlite3 SELECT of the due account rows in deadline order, then UPDATE of each "
            f"row to 'created'; {same}",
            note="42 days after each round of invitations",
        ),
        Figure(
            "tick: purge on request",
            "spaces/s",
            Rates([len(doomed) / purge_seconds]),
            note=f"context only: {len(doomed)} deletion requests purged in a database of "
            f"{people:,} people with {pending:,} notifications pending in the outbox",
        ),
    ]


def _invite_slice(url: str, key: str, index: int, count: int, batch: int, start: Any) -> None:
    """One process of a sliced invitation run (``invite_registered(part=...)``)."""
    with monespace.open(
        url,
        clock=ManualClock(T0),
        key_provider=StaticKeyProvider(MasterKey.from_base64(key)),
        load_entrypoints=False,
    ) as space:
        start.wait()
        space.accounts.invite_registered(OPERATOR, batch=batch, part=Slice(index, count))


def slices_figure(work: Path, people: int, batch: int, processes: int, repeat: int) -> Figure:
    """Invitations of *people* registered people by *processes* processes, each inviting
    its slice, against one process inviting everyone: the same file copied before each
    run, alternated, *repeat* times each."""
    key = MasterKey.generate()
    base = work / "slices-base.db"
    with monespace.open(
        f"sqlite:///{base}",
        clock=ManualClock(T0),
        key_provider=StaticKeyProvider(key),
        load_entrypoints=False,
    ) as space:
        for _ in space.accounts.register_patients(
            OPERATOR, synthetic_identities(people, seed=3, today=T0.date()), batch=batch
        ):
            pass
        space.accounts.invite_many(OPERATOR, [])  # the space-wide keys, before the copies
    context = multiprocessing.get_context("spawn")
    rates: dict[int, list[float]] = {1: [], processes: []}
    for run_number in range(repeat):
        for count in (1, processes):
            path = work / f"slices-{run_number}-{count}.db"
            for suffix in ("", "-wal"):
                if Path(f"{base}{suffix}").exists():
                    shutil.copyfile(f"{base}{suffix}", f"{path}{suffix}")
            start = context.Barrier(count + 1)
            workers = [
                context.Process(
                    target=_invite_slice,
                    args=(f"sqlite:///{path}", key.to_base64(), index, count, batch, start),
                )
                for index in range(count)
            ]
            for worker in workers:
                worker.start()
            start.wait()
            began = time.perf_counter()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - began
            if any(worker.exitcode for worker in workers):
                raise RuntimeError("a process of the sliced invitation run failed")
            storage = SQLiteStorage(path)
            try:
                with storage.read() as tx:
                    invited = tx.accounts.count_by_state().get("invited", 0)
            finally:
                storage.close()
            if invited != people:
                raise RuntimeError(f"{invited:,} of {people:,} people invited")
            rates[count].append(people / elapsed)
            progress(f"sliced invitations, {count} process(es): {rates[count][-1]:,.0f}/s")
            for leftover in work.glob(f"{path.name}*"):
                leftover.unlink()
    return Figure(
        f"invite_registered, {processes} processes in slices",
        "invitations/s",
        Rates(rates[processes]),
        Rates(rates[1]),
        baseline_label=f"invite_registered by one process, same {people:,} people, same file",
        note=f"{people:,} people registered, copied before each run; each process invites "
        f"its slice (part=Slice(i, {processes})), its batches of {batch} prepared while "
        "another process writes; ratio = speed-up over one process",
    )


def profile_invitations(work: Path, count: int, batch: int) -> None:
    """Profile one invitation run and print where its time goes."""
    clock = ManualClock(T0)
    with monespace.open(
        f"sqlite:///{work / 'profile.db'}",
        clock=clock,
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    ) as space:
        for _ in space.accounts.register_patients(
            OPERATOR, synthetic_identities(count, seed=1), batch=batch
        ):
            pass
        profiler = cProfile.Profile()
        profiler.enable()
        space.accounts.invite_registered(OPERATOR, batch=batch)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"monespace|sqlite3|cattrs|json|secrets", 30)
    print(f"\nProfile of invite_registered over {count:,} people (cumulative time):")
    print(out.getvalue())


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--people", type=int, help="population size (default 1,000,000; quick 20,000)")
    p.add_argument("--batch", type=int, default=500, help="people per transaction (default 500)")
    p.add_argument("--rounds", type=int, help="rounds per phase (default 10; quick 4)")
    p.add_argument("--profile", action="store_true", help="also profile an invitation run")
    p.add_argument(
        "--slices",
        type=int,
        metavar="N",
        help="also time invitations by N processes, each inviting its slice, against one",
    )
    args = p.parse_args()
    people = args.people or (20_000 if args.quick else 1_000_000)
    rounds = args.rounds or (4 if args.quick else 10)
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-accounts-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "cryptography"),
        extra={
            "openssl": openssl.openssl_version_text(),
            "revision": revision(Path(__file__).parent),
        },
    )
    report = Report(
        script="benchmarks/bench_accounts.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={"people": people, "rounds": rounds, "batch": args.batch},
    )
    print(f"monespace accounts benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        figures = run(work, people, rounds, args.batch, report)
        if args.slices:
            sliced = min(people, 20_000)
            figures.append(slices_figure(work, sliced, args.batch, args.slices, repeat=3))
        if args.profile:
            profile_invitations(work, min(people, 10_000), args.batch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    report.figures = figures
    print(
        f"\n{people:,} people, batches of {args.batch}; one sample per round of "
        f"{people // rounds:,}; ratio = monespace / baseline; spread = (max - min) / median."
    )
    show(figures[:3], title="monespace against raw baselines", markdown=args.markdown)
    show(figures[3:], title="Context", markdown=args.markdown)
    params = report.parameters
    print(
        f"\nphases (s): {params['phase_seconds']}\n"
        f"states at the end: {params['final_states']}\n"
        f"audit trail: {params['audit_events']:,} events, verified in "
        f"{params['audit_verify_seconds']} s\n"
        f"database size: monespace {params['monespace_db_bytes'] / 1e6:,.0f} MB "
        f"({params['monespace_db_bytes'] / people:,.0f} B per person), raw "
        f"{params['raw_db_bytes'] / 1e6:,.0f} MB"
    )
    print(f"\nmeasured in {elapsed:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
