"""Benchmark of the foundation: encrypted content storage and the hash-chained audit trail.

Run ``python benchmarks/bench_foundation.py`` (about 75 seconds; ``--quick`` for a
noisier run of under 10 seconds, ``--json PATH`` to keep the figures). Every monespace figure
is printed beside a raw baseline doing the same work with :mod:`sqlite3`, :mod:`hashlib` or
``cryptography``'s ``AESGCM`` directly, measured in the same run, with their ratio:

- documents stored per second (4 KiB, one transaction each) through
  ``space.record.add_document`` (a patient's own PDF: content and metadata sealed) versus
  raw ``sqlite3`` inserts of the same bytes with the same durability settings (WAL,
  ``synchronous=FULL``, ``BEGIN IMMEDIATE``/``COMMIT``), and the in-memory AES-GCM seal rate;
- audit events appended per second through the keyed audit chain inside write transactions
  (1000 per transaction and one per transaction; each transaction also rewrites the head
  seal and may sign a checkpoint) versus raw inserts of rows of the same size, and the pure
  chain computation versus an ``hmac`` HMAC-SHA256 loop over the same canonical bytes;
- audit events verified per second by ``space.audit.verify()`` versus a raw loop computing
  the same HMACs over the same bytes read from the same database.

The databases live in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import hmac
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.backends.openssl.backend import backend as openssl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import monespace
from _common import (
    Figure,
    Report,
    compare,
    describe_machine,
    measure,
    parser,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import Actor, ActorKind
from monespace._ids import new_id
from monespace.access import Action, Resource
from monespace.accounts import PatientIdentity
from monespace.audit import (
    GENESIS_HASH,
    Outcome,
    PendingEvent,
    canonical_bytes,
    chain,
    events_from_rows,
)
from monespace.crypto import (
    AuditKey,
    MasterKey,
    StaticKeyProvider,
    content_aad,
    generate_data_key,
    seal,
)
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import TRE_A05_TYPE, Code
from monespace.storage import to_db_time
from monespace.testing import storage_of

CONTENT_BYTES = 4096
PDF_MAGIC = b"%PDF-1.7\n"
#: What a patient's own document is filed as ("Autre document du patient").
OWN = Code("EXPPAT_2", TRE_A05_TYPE)
BATCH = 1000  # audit events per transaction in the batched figure
MIB = 1 << 20
# The domain-separation prefix of monespace.audit._chain, so that the raw loops hash
# exactly the bytes monespace hashes (checked below against monespace's own hashes).
# The keyed chain's prefix and the one shard of SQLite (see docs/explanation/audit-trail.md).
AUDIT_PREFIX = b"monespace-audit-v2\x00" + b"0\x00"
#: The master key of every benchmark space: the raw baselines derive the same HMAC key.
MASTER = MasterKey.generate()
AUDIT_MAC_KEY = HKDF(
    algorithm=hashes.SHA256(), length=32, salt=None, info=b"monespace/audit/chain-hmac/v2"
).derive(MASTER.material)
RULE = "patient_owns_space"

# The same connection settings as monespace.storage.SQLiteStorage, for the raw baselines.
RAW_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)
# monespace's audit_events table and index (migration 0001), for rows of the same shape.
AUDIT_DDL = (
    "CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, "
    "actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, action TEXT NOT NULL, "
    "outcome TEXT NOT NULL, patient_id TEXT, target_kind TEXT, target_id TEXT, "
    "mode TEXT NOT NULL, purpose TEXT, rule TEXT, prev_hash BLOB NOT NULL, "
    "hash BLOB NOT NULL, key_id TEXT, shard TEXT NOT NULL, chain INTEGER NOT NULL) STRICT",
    "CREATE INDEX audit_events_by_patient ON audit_events (patient_id, seq)",
)
AUDIT_COLS = (
    "seq, at, actor_kind, actor_id, action, outcome, patient_id, target_kind, target_id, "
    "mode, purpose, rule, prev_hash, hash"
)
AUDIT_INSERT = (
    "INSERT INTO audit_events (at, actor_kind, actor_id, action, outcome, patient_id, "
    "target_kind, target_id, mode, purpose, rule, prev_hash, hash, key_id, shard, chain) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


# --- fixtures -------------------------------------------------------------------------------


def open_space(path: Path) -> monespace.Space:
    return monespace.open(f"sqlite:///{path}", key_provider=StaticKeyProvider(MASTER))


def register_patient(space: monespace.Space) -> str:
    """Register one synthetic person and open their space; return their id."""
    nir = NIR.build("F", 80, 5, "75", 112, 1)
    traits = INSTraits(
        birth_name="DURAND", first_given_name="MARIE", birth_date=date(1980, 5, 12), sex="F"
    )
    identity = PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits))
    operator = Actor.system("bench")
    patient_id = space.accounts.register_patient(operator, identity).id
    space.accounts.create_space(operator, patient_id)
    return patient_id


def raw_connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection set up as monespace sets up its own (autocommit, WAL, synchronous)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in RAW_PRAGMAS:
        conn.execute(pragma)
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def pending_events(patient_id: str, count: int) -> list[PendingEvent]:
    """Events like those a patient reading their contents leaves in the trail."""
    now = datetime.now(UTC)
    return [
        PendingEvent(
            at=now,
            actor_kind=ActorKind.PATIENT,
            actor_id=patient_id,
            action=str(Action.CONTENT_READ),
            outcome=Outcome.SUCCESS,
            patient_id=patient_id,
            target_kind="content",
            target_id=new_id(),
            rule=RULE,
        )
        for _ in range(count)
    ]


def raw_audit_rows(patient_id: str, count: int) -> list[tuple[object, ...]]:
    """Rows of the same shape and size as monespace's audit rows (hashes are random)."""
    at = to_db_time(datetime.now(UTC))
    return [
        (
            at,
            "patient",
            patient_id,
            "content.read",
            "success",
            patient_id,
            "content",
            new_id(),
            "normal",
            None,
            RULE,
            os.urandom(32),
            os.urandom(32),
            MASTER.id,
            "0",
            2,
        )
        for _ in range(count)
    ]


# --- the measurements -------------------------------------------------------------------------


def bench_contents(work: Path, payload: bytes, seconds: float, repeat: int) -> list[Figure]:
    figures: list[Figure] = []
    for synchronous in ("FULL", "OFF"):
        progress(f"record.add_document vs raw sqlite3 insert, synchronous={synchronous}")
        space = open_space(work / f"contents-{synchronous}.db")
        raw = raw_connect(work / f"raw-contents-{synchronous}.db", synchronous=synchronous)
        if synchronous != "FULL":
            # Not a supported setting: it shows what adding costs when no commit waits for the
            # disk.
            storage_of(space)._writer.execute(f"PRAGMA synchronous = {synchronous}")
        raw.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        patient_id = register_patient(space)
        actor = Actor.patient(patient_id)
        add = space.record.add_document
        cur = raw.cursor()

        def op_put(n: int, add=add, actor=actor, patient_id=patient_id) -> None:
            for _ in range(n):
                add(actor, patient_id, payload, media_type="application/pdf", type_code=OWN)

        def op_raw(n: int, cur=cur) -> None:
            for _ in range(n):
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("INSERT INTO blobs (data) VALUES (?)", (payload,))
                cur.execute("COMMIT")

        ours, theirs = compare(op_put, op_raw, seconds=seconds, repeat=repeat)
        label = (
            f"raw sqlite3: BEGIN IMMEDIATE; INSERT the same {CONTENT_BYTES} bytes into "
            f"(id INTEGER PRIMARY KEY, data BLOB); COMMIT - WAL, synchronous={synchronous}"
        )
        if synchronous == "FULL":
            figures.append(Figure("record.add 4 KiB, 1 tx each", "contents/s", ours, theirs, label))
            figures.append(
                Figure(
                    "record.add 4 KiB, plaintext",
                    "MiB/s",
                    ours,
                    theirs,
                    label,
                    scale=CONTENT_BYTES / MIB,
                )
            )
        else:
            figures.append(
                Figure(
                    "record.add 4 KiB, synchronous=OFF",
                    "contents/s",
                    ours,
                    theirs,
                    label,
                    note="context only: no fsync at commit (not a setting monespace offers); "
                    "the gap to the FULL row is the cost of waiting for the disk",
                )
            )
        space.close()
        raw.close()
    return figures


def bench_seal(payload: bytes, seconds: float, repeat: int) -> Figure:
    progress("AES-256-GCM seal of 4 KiB in memory")
    key = generate_data_key()
    aad = content_aad("content", new_id(), new_id())
    aead = AESGCM(key)

    def op_seal(n: int) -> None:
        for _ in range(n):
            seal(key, payload, aad)

    def op_raw(n: int) -> None:
        for _ in range(n):
            aead.encrypt(os.urandom(12), payload, aad)

    ours, theirs = compare(op_seal, op_raw, seconds=seconds, repeat=repeat)
    return Figure(
        "crypto.seal 4 KiB in memory",
        "contents/s",
        ours,
        theirs,
        "cryptography AESGCM.encrypt(os.urandom(12), data, aad) on one reused AESGCM object",
        note=f"{ours.median * CONTENT_BYTES / MIB:,.0f} MiB/s of plaintext",
    )


def bench_audit_append(work: Path, seconds: float, repeat: int) -> list[Figure]:
    space = open_space(work / "audit-append.db")
    raw = raw_connect(work / "raw-audit-append.db")
    for statement in AUDIT_DDL:
        raw.execute(statement)
    patient_id = register_patient(space)
    actor = Actor.patient(patient_id)
    core = space._core
    resources = [Resource(patient_id, "content", new_id()) for _ in range(BATCH)]
    rows = raw_audit_rows(patient_id, BATCH)
    cur = raw.cursor()
    read = Action.CONTENT_READ

    def op_batched(n: int) -> None:
        for _ in range(n):
            with core.unit() as unit:
                for resource in resources:
                    unit.record(actor, read, resource, RULE)

    def op_raw_batched(n: int) -> None:
        for _ in range(n):
            cur.execute("BEGIN IMMEDIATE")
            for row in rows:
                cur.execute(AUDIT_INSERT, row)
            cur.execute("COMMIT")

    def op_single(n: int) -> None:
        for i in range(n):
            with core.unit() as unit:
                unit.record(actor, read, resources[i % BATCH], RULE)

    def op_raw_single(n: int) -> None:
        for i in range(n):
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(AUDIT_INSERT, rows[i % BATCH])
            cur.execute("COMMIT")

    label = (
        "raw sqlite3 INSERT of rows of the same shape into the same audit_events table "
        "and index, {}, WAL, synchronous=FULL"
    )
    progress(f"audit append, {BATCH} events per transaction")
    ours, theirs = compare(
        op_batched, op_raw_batched, seconds=seconds, repeat=repeat, per_unit=BATCH
    )
    batched = Figure(
        f"audit append, {BATCH} per tx",
        "events/s",
        ours,
        theirs,
        label.format(f"{BATCH} per BEGIN IMMEDIATE/COMMIT"),
    )
    progress("audit append, one event per transaction")
    ours, theirs = compare(op_single, op_raw_single, seconds=seconds, repeat=repeat)
    single = Figure(
        "audit append, 1 per tx",
        "events/s",
        ours,
        theirs,
        label.format("one per BEGIN IMMEDIATE/COMMIT"),
    )
    assert space.audit.verify().ok
    space.close()
    raw.close()
    return [batched, single]


def bench_chain(count: int, seconds: float, repeat: int) -> Figure:
    progress(f"audit chain computation over {count:,} events in memory")
    pendings = pending_events(new_id(), count)
    canonical = [canonical_bytes(seq, p) for seq, p in enumerate(pendings, 1)]
    key = AuditKey.derive(MASTER)

    def run_chain() -> bytes:
        prev = None
        for pending in pendings:
            prev = chain(prev, pending, key)
        assert prev is not None
        return prev.hash

    def run_raw() -> bytes:
        digest = GENESIS_HASH
        for body in canonical:
            digest = hmac.digest(AUDIT_MAC_KEY, AUDIT_PREFIX + digest + body, "sha256")
        return digest

    # The baseline must hash exactly what monespace hashes.
    assert run_chain() == run_raw(), "the raw loop does not reproduce monespace's hashes"

    def op_chain(n: int) -> None:
        for _ in range(n):
            run_chain()

    def op_raw(n: int) -> None:
        for _ in range(n):
            run_raw()

    ours, theirs = compare(op_chain, op_raw, seconds=seconds, repeat=repeat, per_unit=count)
    return Figure(
        "audit.chain, in memory",
        "events/s",
        ours,
        theirs,
        "hmac.digest(key, prefix + prev_hash + canonical_bytes, 'sha256') over the "
        "same canonical bytes, precomputed",
    )


def bench_verify(work: Path, count: int, seconds: float, repeat: int) -> Figure:
    progress(f"audit verify over {count:,} stored events")
    path = work / "audit-verify.db"
    space = open_space(path)
    patient_id = register_patient(space)
    actor = Actor.patient(patient_id)
    resources = [Resource(patient_id, "content", new_id()) for _ in range(BATCH)]
    while space.audit.count() < count:
        missing = count - space.audit.count()
        with space._core.unit() as unit:
            for resource in resources[:missing]:
                unit.record(actor, Action.CONTENT_READ, resource, RULE)
    with storage_of(space).read() as tx:
        events = events_from_rows(tx.audit.scan(limit=count))
        canonical = [canonical_bytes(e.seq, e) for e in events]
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA query_only = ON")
    select = f"SELECT {AUDIT_COLS} FROM audit_events ORDER BY seq"

    def op_verify(n: int) -> None:
        for _ in range(n):
            report = space.audit.verify()
            assert report.ok, report
            assert report.checked == count

    def op_raw(n: int) -> None:
        for _ in range(n):
            prev, expected = GENESIS_HASH, 1
            for row, body in zip(raw.execute(select), canonical, strict=True):
                digest = hmac.digest(AUDIT_MAC_KEY, AUDIT_PREFIX + prev + body, "sha256")
                if not (
                    row[0] == expected
                    and hmac.compare_digest(row[12], prev)
                    and hmac.compare_digest(row[13], digest)
                ):
                    raise AssertionError(f"raw verification failed at event {expected}")
                prev, expected = row[13], expected + 1

    ours, theirs = compare(op_verify, op_raw, seconds=seconds, repeat=repeat, per_unit=count)
    space.close()
    raw.close()
    return Figure(
        "audit.verify, stored trail",
        "events/s",
        ours,
        theirs,
        "raw sqlite3 SELECT of every column of the same rows in seq order, checking seq, "
        "prev_hash and the HMAC-SHA256 of prefix + prev_hash + canonical_bytes against the "
        "stored hash; canonical bytes precomputed",
        note=f"over a trail of {count:,} events",
    )


def bench_fsync(work: Path, seconds: float, repeat: int) -> Figure:
    progress("write 4 KiB + fsync")
    path = work / "fsync.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    slots = 256
    os.write(fd, bytes(CONTENT_BYTES * slots))
    os.fsync(fd)
    block = os.urandom(CONTENT_BYTES)

    def op(n: int) -> None:
        for i in range(n):
            os.pwrite(fd, block, (i % slots) * CONTENT_BYTES)
            os.fsync(fd)

    rates = measure(op, seconds=seconds, repeat=repeat)
    os.close(fd)
    return Figure(
        "os.pwrite 4 KiB + os.fsync",
        "fsyncs/s",
        rates,
        note="context only: the disk's flush rate, the ceiling of any durable commit rate",
    )


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.quick:
        seconds, repeat, chain_count, verify_count = 0.1, 3, 1000, 5000
    else:
        seconds, repeat, chain_count, verify_count = 0.8, 5, 5000, 20000
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "cryptography"),
        extra={
            "openssl": openssl.openssl_version_text(),
            "revision": revision(Path(__file__).parent),
        },
    )
    report = Report(
        script="benchmarks/bench_foundation.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "content_bytes": CONTENT_BYTES,
            "audit_batch": BATCH,
            "chain_events": chain_count,
            "verify_events": verify_count,
        },
    )
    print(f"monespace foundation benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    # A PDF by its magic bytes, which the record checks against the declared media type.
    payload = PDF_MAGIC + os.urandom(CONTENT_BYTES - len(PDF_MAGIC))
    try:
        durable = bench_contents(work, payload, seconds, repeat)
        figures = [durable[0], durable[1], bench_seal(payload, seconds, repeat)]
        figures += bench_audit_append(work, seconds, repeat)
        figures.append(bench_chain(chain_count, seconds, repeat))
        figures.append(bench_verify(work, verify_count, seconds, repeat))
        context = [durable[2], bench_fsync(work, seconds, repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    report.figures = figures + context
    print(
        f"\nMedians of {repeat} repeats of ~{seconds} s each; ratio = monespace / baseline "
        "(1.00x: as fast as the raw code); spread = (max - min) / median."
    )
    show(figures, title="monespace against raw baselines", markdown=args.markdown)
    show(context, title="Context", markdown=args.markdown)
    print(f"\nmeasured in {elapsed:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
