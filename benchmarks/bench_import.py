"""Benchmark of the legacy DMP import: documents per second, and the memory an archive takes.

Run ``python benchmarks/bench_import.py`` (about 90 seconds; ``--quick`` for a noisier run of
about 15 seconds, ``--json PATH`` to keep the figures). Every rate is printed beside a raw
baseline reading the same bytes, measured in the same run:

- documents imported per second by ``space.dmp.import_sources`` from a folder of CDA files
  and from an IHE XDM archive holding the same files (hardened CDA parse, strict INS and
  traits matching, AES-256-GCM seal, document row, ledger line and audit event, one
  transaction per batch of up to 100 on a SQLite file), versus reading the same files and
  hashing them with SHA-256 (``Path.read_bytes``, or ``zipfile`` and ``hashlib`` for the
  archive);
- documents read per second by ``monespace.interop.dmp.iter_legacy_documents`` alone from
  the archive (every member checked in a first pass, then each document read again as it is
  asked for), versus the same ``zipfile`` and ``hashlib`` baseline;
- the peak memory of importing an archive of large, highly compressible members (the shape
  of the attack that made the reader stream): the growth of the resident set of a fresh
  process during the import, beside the size of one member and of the whole archive.

Each repeat imports into a fresh database, so that no document is a duplicate. The documents
are the official CI-SIS vaccination note (``shared/data/cisis/cda``), each given its own
document id (and padded with XML comments for the memory figure). The databases live in a
temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import monespace
from _common import (
    Figure,
    Rates,
    Report,
    describe_machine,
    parser,
    print_grid,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import Actor, ManualClock
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.interop.dmp import iter_legacy_documents

MIB = 1024 * 1024
CDA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cisis" / "cda"
NOTE = CDA / "VAC-NOTE_2023.01.xml"
NOTE_ID = b'<id root="1.2.250.1.213.1.1.1.46.2023.1.1"/>'
OPERATOR = Actor.system("migration")


def cda(number: int, size: int = 0) -> bytes:
    """The vaccination note with its own document id, padded with XML comments (each under
    libxml2's 10 MB text limit, about 100:1 under deflate) to about *size* bytes."""
    data = NOTE.read_bytes().replace(
        NOTE_ID, b'<id root="1.2.250.1.213.1.1.1.46.2023.1.1" extension="B%d"/>' % number
    )
    rng = random.Random(size)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(64)]
    line = b" ".join(rng.choices(words, k=2000))
    comments = []
    left = size - len(data)
    while left > 0:
        chunk = min(left, 4 * MIB)
        comments.append(b"<!--" + (line * (chunk // len(line) + 1))[: chunk - 7] + b"-->")
        left -= chunk
    return data.replace(b"</ClinicalDocument>", b"".join(comments) + b"</ClinicalDocument>")


def write_sources(work: Path, count: int) -> tuple[Path, Path]:
    """A folder of *count* distinct notes, and an XDM archive of the same files."""
    folder = work / "export"
    folder.mkdir()
    archive = work / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(count):
            data = cda(number)
            (folder / f"DOC{number:05d}.xml").write_bytes(data)
            zf.writestr(f"IHE_XDM/SUBSET01/DOC{number:05d}.XML", data)
    return folder, archive


def open_space(path: Path) -> monespace.Space:
    """A fresh space on a SQLite file, with the person the notes are about registered."""
    space = monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        clock=ManualClock(datetime(2024, 6, 1, tzinfo=UTC)),
        load_entrypoints=False,
    )
    traits = INSTraits(
        birth_name="Pat-Trois",
        first_given_name="Dominique",
        birth_date=date(1979, 3, 28),
        sex="F",
    )
    identity = INS(NIR.parse("279035121518989"), INS_NIR_TEST_OID, traits)
    space.accounts.register_patient(
        OPERATOR,
        PatientIdentity(identity, Contact(email="p@example.org"), vitale_serial="1234567890"),
    )
    return space


def import_rate(work: Path, source: Path, count: int, label: str) -> float:
    path = work / f"{label}.db"
    with open_space(path) as space:
        start = time.perf_counter()
        report = space.dmp.import_sources(OPERATOR, [source])
        elapsed = time.perf_counter() - start
    assert report.imported == count, report
    for file in work.glob(f"{label}.db*"):
        file.unlink()
    return count / elapsed


def read_folder_rate(folder: Path, count: int) -> float:
    start = time.perf_counter()
    for file in sorted(folder.glob("*.xml")):
        hashlib.sha256(file.read_bytes()).digest()
    return count / (time.perf_counter() - start)


def read_archive_rate(archive: Path, count: int) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            hashlib.sha256(zf.read(info)).digest()
    return count / (time.perf_counter() - start)


def reader_rate(archive: Path, count: int) -> float:
    start = time.perf_counter()
    read = sum(1 for _ in iter_legacy_documents(archive))
    assert read == count
    return count / (time.perf_counter() - start)


def bench_rates(work: Path, count: int, repeat: int) -> list[Figure]:
    folder, archive = write_sources(work, count)
    kinds = ("folder", "raw-f", "xdm", "raw-x", "reader")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeat):
        samples["folder"].append(import_rate(work, folder, count, "folder"))
        samples["raw-f"].append(read_folder_rate(folder, count))
        samples["xdm"].append(import_rate(work, archive, count, "xdm"))
        samples["raw-x"].append(read_archive_rate(archive, count))
        samples["reader"].append(reader_rate(archive, count))
    size = f"{len(cda(0)) // 1024} KiB"
    return [
        Figure(
            f"dmp import, folder of {count} x {size}",
            "docs/s",
            Rates(samples["folder"]),
            Rates(samples["raw-f"]),
            "Path.read_bytes + hashlib.sha256 of the same files",
        ),
        Figure(
            f"dmp import, XDM archive of {count} x {size}",
            "docs/s",
            Rates(samples["xdm"]),
            Rates(samples["raw-x"]),
            "zipfile read + hashlib.sha256 of the same members",
        ),
        Figure(
            f"interop.dmp reader alone, XDM archive of {count} x {size}",
            "docs/s",
            Rates(samples["reader"]),
            Rates(samples["raw-x"]),
            "zipfile read + hashlib.sha256 of the same members",
            note="iter_legacy_documents: checked whole (CRC, sizes, budget), then streamed",
        ),
    ]


_CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench_import import OPERATOR, open_space

def status(field):
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

with open_space(Path(sys.argv[1])) as space:
    before = status("VmRSS")
    report = space.dmp.import_sources(OPERATOR, [Path(sys.argv[2])])
    peak = status("VmHWM")
print(json.dumps({"imported": report.imported, "before": before, "peak": peak}))
"""


def bench_memory(work: Path, members: int, member: int) -> dict[str, float]:
    """Peak resident-set growth of a fresh process importing *members* x *member* bytes."""
    archive = work / "large.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(members):
            zf.writestr(f"IHE_XDM/SUBSET01/DOC{number:04d}.XML", cda(number, member))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(work / "memory.db"),
            str(archive),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout)
    assert figures["imported"] == members, figures
    return {
        "members": members,
        "member_mib": member / MIB,
        "uncompressed_mib": members * member / MIB,
        "archive_mib": archive.stat().st_size / MIB,
        "rss_before_mib": figures["before"] / MIB,
        "peak_growth_mib": (figures["peak"] - figures["before"]) / MIB,
    }


def show_memory(memory: dict[str, float], *, markdown: bool) -> None:
    print("\nPeak memory of importing one large archive (fresh process)\n")
    header = ["archive", "uncompressed", "one member", "RSS before", "peak growth", "growth/member"]
    row = [
        f"{memory['archive_mib']:.1f} MiB, {memory['members']:.0f} members",
        f"{memory['uncompressed_mib']:.0f} MiB",
        f"{memory['member_mib']:.0f} MiB",
        f"{memory['rss_before_mib']:.0f} MiB",
        f"{memory['peak_growth_mib']:.0f} MiB",
        f"{memory['peak_growth_mib'] / memory['member_mib']:.1f}x",
    ]
    print_grid(header, [row], markdown=markdown)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.quick:
        count, repeat, members, member = 100, 3, 10, 4 * MIB
    else:
        count, repeat, members, member = 500, 5, 25, 19 * MIB
    if not NOTE.is_file():
        sys.exit(f"the CI-SIS examples are missing: {CDA}")
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "cryptography", "lxml"),
        extra={"revision": revision(Path(__file__).parent)},
    )
    report = Report(
        script="benchmarks/bench_import.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "documents": count,
            "repeats": repeat,
            "memory_members": members,
            "memory_member_bytes": member,
        },
    )
    print(f"monespace DMP import benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    started = time.perf_counter()
    try:
        figures = bench_rates(work, count, repeat)
        memory = bench_memory(work, members, member)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    report.figures = figures
    print(
        f"\nMedians of {repeat} repeats, each into a fresh database; ratio = monespace / "
        "baseline (1.00x: as fast as the raw code); spread = (max - min) / median."
    )
    show(figures, title="monespace against raw baselines", markdown=args.markdown)
    show_memory(memory, markdown=args.markdown)
    print(
        f"\nmeasured in {elapsed:.0f} s, peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    report.extra["memory"] = memory
    report.save(args.json)


if __name__ == "__main__":
    main()
