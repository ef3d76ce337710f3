"""Benchmark of the medical record: adding documents, reading CDA headers, listing a record.

Run ``python benchmarks/bench_record.py`` (under a minute; ``--quick`` for a noisier run of
about 10 seconds, ``--json PATH`` to keep the figures). Every rate is printed beside a raw
baseline doing the same storage or parsing work directly, measured in the same run:

- documents added per second through ``space.record.add_document`` by a professional (a
  4 KiB and a 1 MiB PDF content: media-type check, SHA-256, AES-256-GCM seal of the content
  and of the metadata, access decision, audit event, the holder's "new document" e-mail
  queued in the outbox, one transaction each) versus raw ``sqlite3`` inserts of the same
  bytes with the same durability (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``/``COMMIT``).
  There is no batch API for documents: each addition is its own transaction, so only
  single additions are measured;
- CDA headers read per second by ``monespace.interop.read_cda`` over the official CI-SIS
  examples (``shared/data/cisis/cda``, 13 files, 3.5 MB) versus a bare
  ``lxml.etree.fromstring`` of the same bytes;
- latency (p50 and p99) of listing a record of 1,000 documents: the first page of
  ``space.record.search(patient, patient_id, limit=50)`` and all of
  ``space.record.documents_of(patient, patient_id)``, versus a raw ``SELECT`` of the same
  rows with AES-GCM decryption of the same number of sealed metadata blobs.

The databases live in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

import monespace
from _common import (
    Figure,
    Report,
    compare,
    describe_machine,
    parser,
    print_grid,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider, content_aad
from monespace.identity import INS, RPPS, INSTraits
from monespace.interop import read_cda
from monespace.record import LOINC, Code, NewDocument
from monespace.testing import storage_of

KIB = 1 << 10
MIB = 1 << 20
CDA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cisis" / "cda"
RECORD_SIZE = 1000
PAGE = 50
BIOLOGY = Code("11502-2", LOINC)
PROFESSIONAL = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000123456").value)

# The same connection settings as monespace.storage.SQLiteStorage, for the raw baselines.
RAW_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


# --- fixtures -------------------------------------------------------------------------------


def open_space(path: Path) -> monespace.Space:
    return monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    )


def register_holder(space: monespace.Space) -> str:
    """The patient of the CI-SIS examples, with an e-mail address (so each new document
    queues a notification, as in a real deployment), and the depositing physician in the
    directory; return the patient's id."""
    traits = INSTraits(
        birth_name="PAT-TROIS",
        first_given_name="DOMINIQUE",
        birth_date=date(1979, 3, 15),
        sex="F",
    )
    identity = PatientIdentity(
        INS("279035121518989", "1.2.250.1.213.1.4.10", traits),
        Contact(email="patient@example.org"),
    )
    operator = Actor.system("bench")
    patient_id = space.accounts.register_patient(operator, identity).id
    space.accounts.create_space(operator, patient_id)
    # The depositing physician, whom the directory must know.
    space.access.register_professional(
        operator, Professional(PROFESSIONAL.id, "10", "Dr Banc d'Essai", specialty="SM26")
    )
    # Feeding a record takes standing (care team, authorisation, médecin traitant): the
    # physician declares taking part in the patient's care.
    space.access.join_care_team(PROFESSIONAL, patient_id)
    return patient_id


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in RAW_PRAGMAS:
        conn.execute(pragma)
    return conn


def pdf_of(size: int) -> bytes:
    head = b"%PDF-1.7\n"
    return head + os.urandom(size - len(head))


# --- documents added ------------------------------------------------------------------------


def bench_add(
    work: Path, size: int, label: str, seconds: float, repeat: int, *, sync: str = "FULL"
) -> Figure:
    progress(f"record.add_document {label} vs raw sqlite3 insert (synchronous={sync})")
    space = open_space(work / f"add-{size}.db")
    raw = raw_connect(work / f"raw-add-{size}.db")
    raw.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    if sync != "FULL":
        # The work without the wait for the disk: the same setting on both sides.
        raw.execute(f"PRAGMA synchronous = {sync}")
        storage_of(space)._writer.execute(f"PRAGMA synchronous = {sync}")  # type: ignore[attr-defined]
    patient_id = register_holder(space)
    payload = pdf_of(size)
    add = space.record.add_document
    cur = raw.cursor()

    def op_add(n: int) -> None:
        for _ in range(n):
            add(
                PROFESSIONAL,
                patient_id,
                payload,
                media_type="application/pdf",
                type_code=BIOLOGY,
                title="Compte rendu d'examens biologiques",
            )

    def op_raw(n: int) -> None:
        for _ in range(n):
            cur.execute("BEGIN IMMEDIATE")
            cur.execute("INSERT INTO blobs (data) VALUES (?)", (payload,))
            cur.execute("COMMIT")

    ours, theirs = compare(op_add, op_raw, seconds=seconds, repeat=repeat)
    space.close()
    raw.close()
    for name in (f"add-{size}.db", f"raw-add-{size}.db"):  # keep the disk usage down
        for suffix in ("", "-wal", "-shm"):
            (work / (name + suffix)).unlink(missing_ok=True)
    return Figure(
        f"record.add_document {label}, 1 tx each"
        + ("" if sync == "FULL" else f", synchronous={sync}"),
        "documents/s",
        ours,
        theirs,
        f"raw sqlite3: BEGIN IMMEDIATE; INSERT the same {label} into (id INTEGER PRIMARY "
        f"KEY, data BLOB); COMMIT - WAL, synchronous={sync}",
        note=f"{ours.median * size / MIB:,.1f} MiB/s of content (raw: "
        f"{theirs.median * size / MIB:,.1f} MiB/s)",
    )


def bench_batch(work: Path, seconds: float, repeat: int, *, batch: int = 500) -> Figure:
    progress(f"record.add_documents, {batch} per call, vs raw inserts {batch} per transaction")
    space = open_space(work / "batch.db")
    raw = raw_connect(work / "raw-batch.db")
    raw.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    patient_id = register_holder(space)
    payload = pdf_of(4 * KIB)
    items = [
        NewDocument(
            patient_id,
            payload,
            "application/pdf",
            type_code=BIOLOGY,
            title="Compte rendu d'examens biologiques",
        )
    ] * batch
    add = space.record.add_documents
    cur = raw.cursor()

    def op_add(n: int) -> None:
        for _ in range(n):
            result = add(PROFESSIONAL, items)
            assert not result.rejected

    def op_raw(n: int) -> None:
        for _ in range(n):
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany("INSERT INTO blobs (data) VALUES (?)", [(payload,)] * batch)
            cur.execute("COMMIT")

    ours, theirs = compare(op_add, op_raw, seconds=seconds, repeat=repeat, per_unit=batch)
    space.close()
    raw.close()
    for name in ("batch.db", "raw-batch.db"):
        for suffix in ("", "-wal", "-shm"):
            (work / (name + suffix)).unlink(missing_ok=True)
    return Figure(
        f"record.add_documents 4 KiB, {batch} per call",
        "documents/s",
        ours,
        theirs,
        f"raw sqlite3: BEGIN IMMEDIATE; executemany INSERT of {batch} times the same 4 KiB "
        "into (id INTEGER PRIMARY KEY, data BLOB); COMMIT - WAL, synchronous=FULL",
    )


# --- CDA headers read -----------------------------------------------------------------------


def bench_cda(seconds: float, repeat: int) -> Figure | None:
    files = sorted(CDA_DIR.glob("*.xml"))
    if not files:
        progress(f"no CDA examples in {CDA_DIR}: CDA figure skipped")
        return None
    progress(f"read_cda over {len(files)} CI-SIS examples vs lxml.etree.fromstring")
    documents = [f.read_bytes() for f in files]
    total = sum(len(d) for d in documents)
    for data in documents:  # every example must read, or the rate means nothing
        read_cda(data)
    bare = etree.XMLParser()

    def op_read(n: int) -> None:
        for _ in range(n):
            for data in documents:
                read_cda(data)

    def op_raw(n: int) -> None:
        for _ in range(n):
            for data in documents:
                etree.fromstring(data, bare)

    ours, theirs = compare(op_read, op_raw, seconds=seconds, repeat=repeat, per_unit=len(files))
    return Figure(
        f"interop.read_cda, {len(files)} examples",
        "documents/s",
        ours,
        theirs,
        "lxml.etree.fromstring(data, etree.XMLParser()) of the same bytes (default parser: "
        "no header extraction, no hardening checks)",
        note=f"{ours.median * total / len(files) / MIB:,.1f} MiB/s of CDA "
        f"(mean file {total / len(files) / KIB:,.0f} KiB)",
    )


# --- listing a record -----------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1e3, cuts[98] * 1e3


def latencies(
    op: Callable[[], object], baseline: Callable[[], object], count: int
) -> tuple[list[float], list[float]]:
    """*count* timings of each, interleaved."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(3):  # warm up
        op()
        baseline()
    for _ in range(count):
        start = time.perf_counter()
        op()
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        baseline()
        theirs.append(time.perf_counter() - start)
    return ours, theirs


def bench_listing(work: Path, count: int) -> list[dict[str, object]]:
    progress(f"filling a record with {RECORD_SIZE:,} documents")
    path = work / "listing.db"
    space = open_space(path)
    patient_id = register_holder(space)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    payload = pdf_of(4 * KIB)
    for i in range(RECORD_SIZE):
        space.record.add_document(
            PROFESSIONAL,
            patient_id,
            payload,
            media_type="application/pdf",
            type_code=BIOLOGY,
            title=f"Compte rendu d'examens biologiques n°{i}",
            created_at=start + timedelta(days=3 * i),
        )
    me = Actor.patient(patient_id)
    with storage_of(space).read() as tx:
        key = space._core.keyring.get(tx, patient_id)
    aead = AESGCM(key)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA query_only = ON")
    select = (
        "SELECT id, patient_id, lineage_id, version, unique_id, class_code, type_code, "
        "type_system, format_code, media_type, confidentiality, flags, author_kind, author_id, "
        "created_at, submitted_at, status, replaces, content_id, size, sha256, sealed_meta, "
        "release_at, notify_at FROM documents WHERE patient_id = ? ORDER BY created_at DESC, id"
    )

    def raw_list(decrypt: int) -> Callable[[], list[object]]:
        def run() -> list[object]:
            rows = raw.execute(select, (patient_id,)).fetchall()
            # monespace's sealed form: version byte, 12-byte nonce, ciphertext and tag.
            return [
                json.loads(
                    aead.decrypt(
                        r[21][1:13], r[21][13:], content_aad("document-meta", patient_id, r[0])
                    )
                )
                for r in rows[:decrypt]
            ]

        return run

    first = space.record.search(me, patient_id, limit=PAGE)
    assert (first.total, len(first.documents)) == (RECORD_SIZE, PAGE)
    assert len(raw_list(PAGE)()) == PAGE, "the raw baseline does not decrypt monespace's rows"
    results = []
    cases = [
        (
            f"search, first page of {PAGE}",
            lambda: space.record.search(me, patient_id, limit=PAGE),
            raw_list(PAGE),
            f"SELECT the {RECORD_SIZE:,} rows, decrypt {PAGE} metadata blobs",
        ),
        (
            f"documents_of, all {RECORD_SIZE:,}",
            lambda: list(space.record.documents_of(me, patient_id)),
            raw_list(RECORD_SIZE),
            f"SELECT the {RECORD_SIZE:,} rows, decrypt {RECORD_SIZE:,} metadata blobs",
        ),
    ]
    for name, op, baseline, label in cases:
        progress(f"latency of {name} ({count} runs)")
        ours, theirs = latencies(op, baseline, count)
        p50, p99 = percentiles(ours)
        b50, b99 = percentiles(theirs)
        results.append(
            {
                "name": name,
                "p50_ms": p50,
                "p99_ms": p99,
                "baseline_p50_ms": b50,
                "baseline_p99_ms": b99,
                "baseline_label": label,
                "runs": count,
            }
        )
    space.close()
    raw.close()
    return results


def show_latencies(results: list[dict[str, object]], *, markdown: bool) -> None:
    header = ["figure", "p50 ms", "p99 ms", "baseline p50", "baseline p99", "p50 ratio"]
    rows = [
        [
            str(r["name"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['baseline_p50_ms']:.2f}",
            f"{r['baseline_p99_ms']:.2f}",
            f"{float(r['p50_ms']) / float(r['baseline_p50_ms']):.1f}x",  # type: ignore[arg-type]
        ]
        for r in results
    ]
    print(f"\nListing a record of {RECORD_SIZE:,} documents (latency, lower is better)\n")
    print_grid(header, rows, markdown=markdown)
    print()
    for r in results:
        print(f"- {r['name']}: baseline = raw sqlite3 {r['baseline_label']} ({r['runs']} runs)")


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.quick:
        seconds, repeat, runs = 0.1, 3, 30
    else:
        seconds, repeat, runs = 0.8, 5, 200
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "cryptography", "lxml"),
        extra={"revision": revision(Path(__file__).parent)},
    )
    report = Report(
        script="benchmarks/bench_record.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "record_size": RECORD_SIZE,
            "page": PAGE,
            "latency_runs": runs,
            "cda_examples": str(CDA_DIR),
        },
    )
    print(f"monespace record benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        figures = [
            bench_add(work, 4 * KIB, "4 KiB", seconds, repeat),
            bench_add(work, 4 * KIB, "4 KiB", seconds, repeat, sync="OFF"),
            bench_add(work, MIB, "1 MiB", seconds, repeat),
            bench_batch(work, seconds, repeat),
        ]
        cda = bench_cda(seconds, repeat)
        if cda is not None:
            figures.append(cda)
        listing = bench_listing(work, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    report.figures = figures
    print(
        f"\nMedians of {repeat} repeats of ~{seconds} s each; ratio = monespace / baseline "
        "(1.00x: as fast as the raw code); spread = (max - min) / median."
    )
    show(figures, title="monespace against raw baselines", markdown=args.markdown)
    show_latencies(listing, markdown=args.markdown)
    print(f"\nmeasured in {elapsed:.0f} s")
    report.extra["latencies"] = listing
    report.save(args.json)


if __name__ == "__main__":
    main()
