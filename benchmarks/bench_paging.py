"""Benchmark of paging through a large record: keyset pages against offset pages.

Run ``python benchmarks/bench_paging.py`` (a record of 10,000 documents: a few minutes, most
of it filling the record and the offset pages; ``--quick`` for 2,000 documents). An
authorised professional reads the whole record of a patient, three ways:

- ``documents_of``: one call, every visible document (the baseline: the least a full read
  costs with the policy, the decryption and one audit event);
- every page of 50 with ``search(..., after=page.next)`` (keyset: each page reads from where
  the previous one ended);
- every page of 50 with ``search(..., offset=n)`` (each page decides on every document of the
  record before cutting its page, so the whole walk is quadratic). With 10,000 documents this
  takes about a minute, so it is measured once.

Each figure is the median of a few runs (``documents_of`` and the keyset walk alternated);
the ratio is the walk's time over one ``documents_of`` call (the goal for keyset pages: 2x
or less). ``--skip-offset`` leaves the quadratic walk out, ``--size N`` sets the record.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import monespace
from _common import describe_machine, parser, print_grid, print_machine, revision
from monespace import Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.record import LOINC, Code
from monespace.testing import storage_of

PAGE = 50
OPERATOR = Actor.system("bench")
AUTHOR = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000001").value)
READER = Actor(ActorKind.PROFESSIONAL, RPPS.build("1000000002").value)
TYPES = (Code("11502-2", LOINC), Code("18748-4", LOINC), Code("57833-6", LOINC))


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def fill(space: monespace.Space, size: int) -> str:
    """A patient with *size* documents by one physician (in the care team), read by a second
    one the patient authorised."""
    for actor, name in ((AUTHOR, "Dr Auteur"), (READER, "Dr Lecteur")):
        space.access.register_professional(OPERATOR, Professional(actor.id, "10", name))
    traits = INSTraits(birth_name="DURAND", first_given_name="MARIE",
                       birth_date=date(1980, 5, 12), sex="F")  # fmt: skip
    identity = PatientIdentity(
        INS(NIR.build("F", 80, 5, "75", 112, 1), INS_NIR_TEST_OID, traits),
        Contact(email="patient@example.org"),
    )
    patient_id = space.accounts.register_patient(OPERATOR, identity).id
    space.accounts.create_space(OPERATOR, patient_id)
    space.access.join_care_team(AUTHOR, patient_id)
    space.access.authorise(Actor.patient(patient_id), patient_id, READER.id)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    payload = b"%PDF-1.7\n" + bytes(4087)
    for i in range(size):
        space.record.add_document(
            AUTHOR,
            patient_id,
            payload,
            media_type="application/pdf",
            type_code=TYPES[i % len(TYPES)],
            title=f"Compte rendu n°{i}",
            created_at=start + timedelta(hours=6 * i),
        )
    return patient_id


def timed(op: Callable[[], int], runs: int, expected: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        assert op() == expected
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved(
    ops: tuple[Callable[[], int], Callable[[], int]], runs: int, expected: int
) -> tuple[float, float]:
    """Medians of *runs* runs of each op, alternated, so that a busy moment of the machine
    weighs on both."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for op, kept in zip(ops, samples, strict=True):
            start = time.perf_counter()
            assert op() == expected
            kept.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--skip-offset", action="store_true", help="do not walk with offset=")
    p.add_argument("--size", type=int, help="documents in the record")
    args = p.parse_args()
    size, runs = (2_000, 3) if args.quick else (10_000, 5)
    size = args.size or size
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent, packages=("monespace",), extra={"revision": revision(Path(__file__).parent)}
    )
    print(f"monespace paging benchmark ({'quick' if args.quick else 'full'} run)\n")
    print_machine(machine)
    try:
        space = monespace.open(
            f"sqlite:///{work / 'paging.db'}",
            key_provider=StaticKeyProvider(MasterKey.generate()),
            load_entrypoints=False,
        )
        # Filling is not measured: no need to wait for the disk.
        storage_of(space)._writer.execute("PRAGMA synchronous = OFF")  # type: ignore[attr-defined]
        progress(f"filling a record with {size:,} documents")
        patient_id = fill(space, size)
        search = space.record.search

        def documents_of() -> int:
            return len(list(space.record.documents_of(READER, patient_id)))

        def keyset() -> int:
            page = search(READER, patient_id, limit=PAGE)
            seen = len(page.documents)
            while page.next is not None:
                page = search(READER, patient_id, limit=PAGE, after=page.next)
                seen += len(page.documents)
            return seen

        def offsets() -> int:
            seen, offset = 0, 0
            while True:
                page = search(READER, patient_id, offset=offset, limit=PAGE)
                seen += len(page.documents)
                offset += PAGE
                if offset >= page.total:
                    return seen

        progress(f"documents_of and every page of {PAGE} with after=page.next, alternated")
        base, ours = interleaved((documents_of, keyset), runs, size)
        old = None
        if not args.skip_offset:
            progress(f"every page of {PAGE} with offset= (once)")
            old = timed(offsets, 1, size)
        space.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ["documents_of, one call", f"{base:.2f}", "1.00x"],
        [f"search, every page of {PAGE}, after=page.next", f"{ours:.2f}", f"{ours / base:.2f}x"],
    ]
    if old is not None:
        rows.append([f"search, every page of {PAGE}, offset=", f"{old:.2f}", f"{old / base:.2f}x"])
    print(f"\nAn authorised professional reading a record of {size:,} documents\n")
    print_grid(["figure", "seconds (median)", "vs documents_of"], rows, markdown=args.markdown)
    print(f"\nmedian of {runs} runs, alternated (offset pages: one run)")


if __name__ == "__main__":
    main()
