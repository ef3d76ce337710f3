"""Legacy DMP migration: strict matching, quarantine, ledger, idempotency, hostile sources."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor, ActorKind, ManualClock
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.audit import Outcome, event_from_row
from monespace.cli import main
from monespace.errors import (
    AccessDeniedError,
    DocumentTooLargeError,
    HostileDocumentError,
    MalformedDocumentError,
)
from monespace.identity import INS, INS_NIR_OID, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.interop.dmp import XdmLimits, formula_safe, iter_legacy_documents
from monespace.record import LOINC, Code
from monespace.testing import statements_of, storage_of

from .conftest import SHARED_DATA
from .helpers import open_space, rpps

CDA = SHARED_DATA / "cisis" / "cda"
OPERATOR = Actor.system("migration")
#: The patient of the official examples (all but CSE-CS8, whose INS has a wrong key).
EXAMPLE_NIR = "279035121518989"
EXAMPLE_TRAITS = {
    "birth_name": "Pat-Trois",
    "first_given_name": "Dominique",
    "birth_date": date(1979, 3, 28),
    "sex": "F",
}

pytestmark = pytest.mark.skipif(not CDA.is_dir(), reason=f"shared CDA examples missing: {CDA}")


def person(nir=EXAMPLE_NIR, oid=INS_NIR_TEST_OID, **changes):
    traits = INSTraits(**{**EXAMPLE_TRAITS, **changes})
    return PatientIdentity(
        INS(NIR.parse(nir), oid, traits),
        Contact(email="p@example.org"),
        vitale_serial="1234567890",
    )


@pytest.fixture
def space(url):
    with open_space(url, ManualClock(datetime(2024, 6, 1, tzinfo=UTC))) as opened:
        yield opened


@pytest.fixture
def folder(tmp_path):
    target = tmp_path / "export"
    shutil.copytree(CDA, target, ignore=shutil.ignore_patterns("*.tsv"))
    return target


def xdm(tmp_path, files, name="dmp.zip", metadata=None):
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in files:
            zf.write(file, f"IHE_XDM/SUBSET01/{file.name}")
        if metadata is not None:
            zf.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
    return archive


def counts(space):
    with storage_of(space).read() as tx:
        return (
            sum(len(tx.documents.for_patient(p)) for p in tx.patients.ids()),
            tx.audit.count(),
        )


def test_documents_attach_to_the_right_person_and_a_second_run_imports_nothing(space, folder):
    patient = space.accounts.register_patient(OPERATOR, person())
    first = space.dmp.import_sources(OPERATOR, [folder])
    assert (first.imported, first.duplicates, first.quarantined) == (12, 0, 1)
    assert first.reasons == {"invalid-ins": 1}  # CSE-CS8's INS has a wrong check key
    second = space.dmp.import_sources(OPERATOR, [folder])
    assert (second.imported, second.duplicates, second.quarantined) == (0, 12, 1)
    ledger = space.dmp.ledger(OPERATOR, first.run_id)
    assert len(ledger) == 13
    assert {line.outcome for line in ledger} == {"imported", "quarantined"}
    assert all(line.patient_id == patient.id for line in ledger if line.outcome == "imported")
    # Attached when the space opens: invisible before, visible after.
    with pytest.raises(AccessDeniedError):
        space.record.search(Actor.patient(patient.id), patient.id)
    space.accounts.create_space(OPERATOR, patient.id)
    page = space.record.search(Actor.patient(patient.id), patient.id)
    assert page.total == 12
    assert space.audit.verify().ok


def test_documents_are_imported_in_batches_and_a_quarantine_holds_back_nothing(tmp_path, folder):
    """The 13 documents of the folder are imported in one transaction (one commit for the
    batch); the quarantined one leaves its ledger line and its audit event in that batch,
    and the 12 others are imported. (On SQLite, whose statements a test can count.)"""
    space = open_space(f"sqlite:///{tmp_path / 'batches.db'}")
    space.accounts.register_patient(OPERATOR, person())
    documents, _ = counts(space)
    with statements_of(space) as statements:
        report = space.dmp.import_sources(OPERATOR, [folder])
    assert (report.imported, report.quarantined) == (12, 1)
    # The operator's decision to import (its own unit), then the one batch.
    assert statements.count("COMMIT") == 2, statements.count("COMMIT")
    assert counts(space)[0] == documents + 12
    with storage_of(space).read() as tx:
        trail = [event_from_row(r) for r in tx.audit.scan(limit=10_000)]
    quarantines = [e for e in trail if e.action == "dmp.quarantine"]
    assert [(e.outcome, e.rule) for e in quarantines] == [(Outcome.FAILURE, "invalid-ins")]
    assert sum(e.action == "dmp.import" and e.outcome is Outcome.SUCCESS for e in trail) >= 12
    space.close()


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (person(birth_name="Pat-Deux"), "traits-differ"),
        (person(birth_date=date(1979, 3, 27)), "traits-differ"),
        (person(first_given_name="Claude"), "traits-differ"),
        (person(oid=INS_NIR_OID), "ins-oid-differs"),
        (person(nir="279035121518989", oid=INS_NIR_TEST_OID, birth_name="PAT TROIS"), None),
        (person(nir=NIR.build("F", 79, 3, "51", "215", 898).value), "unknown-person"),
    ],
    ids=[
        "other-name",
        "other-birth-date",
        "other-given-name",
        "real-oid",
        "same-name-spelled",
        "look-alike-other-nir",
    ],
)
def test_look_alike_identities_are_quarantined_not_guessed(space, folder, who, reason):
    space.accounts.register_patient(OPERATOR, who)
    report = space.dmp.import_sources(OPERATOR, [folder])
    if reason is None:  # case, spaces and hyphens do not make a different person
        assert report.imported == 12
    else:
        assert report.imported == 0
        assert report.reasons[reason] == 12
        assert counts(space)[0] == 0


def test_an_opposed_persons_dmp_is_transitional_then_closed(space, folder):
    patient = space.accounts.register_patient(OPERATOR, person())
    code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
    space.accounts.oppose(
        nir=EXAMPLE_NIR, code=code, vitale_serial="1234567890", birth_date=date(1979, 3, 28)
    )
    report = space.dmp.import_sources(OPERATOR, [folder])
    assert report.imported == 12  # still before 1 January 2025: readable by professionals
    with pytest.raises(AccessDeniedError):
        space.record.search(Actor.patient(patient.id), patient.id)  # never by the holder
    assert "legacy_dmp_closed" not in space.tick(datetime(2024, 12, 31, 12, tzinfo=UTC))
    assert space.tick(datetime(2025, 1, 2, tzinfo=UTC))["legacy_dmp_closed"] == 1
    assert counts(space)[0] == 0
    space.clock.set(datetime(2025, 2, 1, tzinfo=UTC))
    late = space.dmp.import_sources(OPERATOR, [folder])
    assert (late.imported, late.duplicates) == (0, 12)  # the ledger remembers them


def test_an_opposed_persons_legacy_dmp_is_for_authorised_professionals_until_the_end(space, folder):
    """CNIL 2021-050 (§2): the DMP of a holder who opposed stays readable, and fed, by
    authorised professionals only until the transition ends; then it is closed."""
    patient = space.accounts.register_patient(OPERATOR, person())
    code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
    space.accounts.oppose(
        nir=EXAMPLE_NIR, code=code, vitale_serial="1234567890", birth_date=date(1979, 3, 28)
    )
    assert space.dmp.import_sources(OPERATOR, [folder]).imported == 12
    doctor, stranger = (Actor(ActorKind.PROFESSIONAL, rpps(n)) for n in (1, 2))
    for who in (doctor, stranger):
        space.access.register_professional(OPERATOR, Professional(who.id, "10", "Dr Exemple"))
    space.access.join_care_team(doctor, patient.id)
    assert space.record.search(doctor, patient.id).total == 12
    added = space.record.add_document(
        doctor, patient.id, b"%PDF-1.7\n", media_type="application/pdf",
        type_code=Code("11488-4", LOINC),
    )  # fmt: skip
    assert space.record.get_document(doctor, added.id).id == added.id
    for denied in (
        lambda: space.record.search(stranger, patient.id),  # not authorised
        lambda: space.record.search(Actor.patient(patient.id), patient.id),  # never the holder
    ):
        with pytest.raises(AccessDeniedError):
            denied()
    space.clock.set(datetime(2025, 1, 2, tzinfo=UTC))
    with pytest.raises(AccessDeniedError):
        space.record.search(doctor, patient.id)  # closed at the end of the transition


def test_after_the_transition_an_opposed_persons_dmp_is_not_imported(space, folder):
    patient = space.accounts.register_patient(OPERATOR, person())
    code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
    space.accounts.oppose(
        nir=EXAMPLE_NIR, code=code, vitale_serial="1234567890", birth_date=date(1979, 3, 28)
    )
    space.clock.set(datetime(2025, 1, 1, tzinfo=UTC))
    report = space.dmp.import_sources(OPERATOR, [folder])
    assert report.reasons == {"opposed-transition-ended": 12, "invalid-ins": 1}


def test_a_closed_space_receives_nothing(space, folder):
    patient = space.accounts.register_patient(OPERATOR, person())
    space.accounts.create_space(OPERATOR, patient.id)
    space.accounts.close(OPERATOR, patient.id)
    report = space.dmp.import_sources(OPERATOR, [folder])
    assert report.reasons["space-closed"] == 12


def test_an_xdm_archive_is_read_and_its_declared_hashes_checked(space, tmp_path):
    space.accounts.register_patient(OPERATOR, person())
    files = [CDA / "VAC-NOTE_2023.01.xml", CDA / "LDL-SES_2022.01.xml"]
    metadata = f"""<?xml version="1.0"?>
<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
    xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList>
  <rim:ExtrinsicObject id="d1">
    <rim:Slot name="URI"><rim:ValueList>
      <rim:Value>VAC-NOTE_2023.01.xml</rim:Value></rim:ValueList></rim:Slot>
    <rim:Slot name="hash"><rim:ValueList>
      <rim:Value>{"0" * 40}</rim:Value></rim:ValueList></rim:Slot>
  </rim:ExtrinsicObject></rim:RegistryObjectList></SubmitObjectsRequest>"""
    report = space.dmp.import_sources(OPERATOR, [xdm(tmp_path, files, metadata=metadata)])
    assert (report.imported, report.reasons) == (1, {"hash-mismatch": 1})


def test_a_truncated_archive_is_refused_whole(space, tmp_path):
    space.accounts.register_patient(OPERATOR, person())
    archive = xdm(tmp_path, sorted(CDA.glob("*.xml")))
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.zip"
    middle = len(data) // 3
    corrupt.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
    )
    before = counts(space)
    for bad in (truncated, corrupt):
        with pytest.raises(MalformedDocumentError):
            space.dmp.import_sources(OPERATOR, [bad])
    assert counts(space)[0] == before[0] == 0


def test_hostile_archives_and_files(space, tmp_path):
    space.accounts.register_patient(OPERATOR, person())
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("IHE_XDM/SUBSET01/../../etc/cron.d/x.xml", "<x/>")
    with pytest.raises(HostileDocumentError):
        space.dmp.import_sources(OPERATOR, [slip])
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("IHE_XDM/SUBSET01/big.xml", b"<a>" + b" " * 5_000_000 + b"</a>")
    with pytest.raises(HostileDocumentError):
        space.dmp.import_sources(OPERATOR, [bomb])
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "laughs.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    )
    (folder / "xxe.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><l>&x;</l>'
    )
    (folder / "not-xml.xml").write_bytes(b"\x00\x01 not xml")
    report = space.dmp.import_sources(OPERATOR, [folder])
    assert report.quarantined == 3
    assert all(reason.startswith("unreadable:") for reason in report.reasons)


def test_only_the_operator_imports(space, folder):
    patient = space.accounts.register_patient(OPERATOR, person())
    with pytest.raises(AccessDeniedError):
        space.dmp.import_sources(Actor.patient(patient.id), [folder])


def test_the_cli_imports_and_writes_the_ledger(tmp_path, folder):
    db = tmp_path / "cli.db"
    with monespace.open(f"sqlite:///{db}") as space:
        space.accounts.register_patient(OPERATOR, person())
    ledger = tmp_path / "ledger.csv"
    result = CliRunner().invoke(
        main, ["dmp", "import", "--db", str(db), str(folder), "--ledger", str(ledger)]
    )
    assert result.exit_code == 0, result.output
    assert "imported 12, duplicates 0, quarantined 1" in result.output
    assert "quarantined (invalid-ins): 1" in result.output
    with ledger.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 13
    assert {r["outcome"] for r in rows} == {"imported", "quarantined"}
    again = CliRunner().invoke(main, ["dmp", "import", "--db", str(db), str(folder)])
    assert "imported 0, duplicates 12, quarantined 1" in again.output


# --- large archives: streamed, bounded, one member at a time --------------------------------

MiB = 1024 * 1024
_VAC_NOTE_ID = b'<id root="1.2.250.1.213.1.1.1.46.2023.1.1"/>'


def padding(size):
    """Text that deflates about 100:1, like the blank-padded exports of the attack run."""
    rng = random.Random(size)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(64)]
    line = b" ".join(rng.choices(words, k=2000))
    return (line * (size // len(line) + 1))[:size]


def large_cda(number, size):
    """The vaccination note of the official examples, with its own document id and XML
    comments (each under libxml2's 10 MB text limit) that bring it to about *size* bytes."""
    data = (CDA / "VAC-NOTE_2023.01.xml").read_bytes()
    assert _VAC_NOTE_ID in data
    data = data.replace(
        _VAC_NOTE_ID, b'<id root="1.2.250.1.213.1.1.1.46.2023.1.1" extension="L%d"/>' % number
    )
    comments = []
    left = size - len(data)
    while left > 0:
        chunk = min(left, 4 * MiB)
        comments.append(b"<!--" + padding(chunk - 7) + b"-->")
        left -= chunk
    return data.replace(b"</ClinicalDocument>", b"".join(comments) + b"</ClinicalDocument>")


def large_xdm(path, members, size):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(members):
            zf.writestr(f"IHE_XDM/SUBSET01/DOC{number:04d}.XML", large_cda(number, size))
    return path


_MEASURE = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
import monespace
from monespace import Actor, ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
sys.path.insert(0, sys.argv[3])
from tests.test_dmp import person

def status(field):
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

operator = Actor.system("migration")
with monespace.open(
    "sqlite:///" + sys.argv[1],
    key_provider=StaticKeyProvider(MasterKey.generate()),
    clock=ManualClock(datetime(2024, 6, 1, tzinfo=UTC)),
    load_entrypoints=False,
) as space:
    space.accounts.register_patient(operator, person())
    before = status("VmRSS")
    report = space.dmp.import_sources(operator, [Path(sys.argv[2])])
    peak = status("VmHWM")
print(json.dumps({"imported": report.imported, "before": before, "peak": peak}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_an_archive_is_imported_one_member_at_a_time(tmp_path):
    """Importing 40 members of 3 MiB grows the memory by a few members, not by the archive."""
    member, members = 3 * MiB, 40
    archive = large_xdm(tmp_path / "large.zip", members, member)
    assert archive.stat().st_size < member * members / 50  # highly compressible
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "m.db"), str(archive), root],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["imported"] == members
    growth = figures["peak"] - figures["before"]
    # Reading the archive whole took more than 120 MiB here (2.1 GB for 102 x 20 MiB).
    assert growth < 4 * member + 24 * MiB, f"peak grew by {growth / MiB:.0f} MiB"


def test_the_archive_total_budget_is_enforced_as_the_members_are_read(space, tmp_path, folder):
    """An archive over its total budget is refused whole, naming it; earlier sources stay."""
    space.accounts.register_patient(OPERATOR, person())
    archive = large_xdm(tmp_path / "budget.zip", 3, MiB)
    limits = XdmLimits(max_total_bytes=2 * MiB)
    with pytest.raises(HostileDocumentError) as refused:
        space.dmp.import_sources(OPERATOR, [folder, archive], limits=limits)
    assert refused.value.reason == "zip-size"
    assert "budget.zip" in str(refused.value)
    run_ids = [n.split()[2] for n in refused.value.__notes__ if n.startswith("import run ")]
    assert len(run_ids) == 1
    ledger = space.dmp.ledger(OPERATOR, run_ids[0])
    assert len(ledger) == 13  # the folder's lines, nothing of the archive
    assert not any(line.source.startswith("budget.zip") for line in ledger)
    assert counts(space)[0] == 12
    # Within the budget, the same archive imports.
    report = space.dmp.import_sources(OPERATOR, [archive], limits=XdmLimits())
    assert report.imported == 3


def test_a_member_that_under_declares_its_size_is_refused(tmp_path):
    """Members whose central directory under-declares their size cannot slip past the
    budget: what is decompressed beyond the declared size fails the CRC check."""
    archive = large_xdm(tmp_path / "liar.zip", 2, MiB)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        members, start = len(zf.infolist()), zf.start_dir
    # Central directory entries: signature PK\x01\x02, uncompressed size at offset 24.
    for _ in range(members):
        start = data.index(b"PK\x01\x02", start)
        data[start + 24 : start + 28] = (1000).to_bytes(4, "little")
        start += 4
    archive.write_bytes(bytes(data))
    with pytest.raises(MalformedDocumentError):
        list(iter_legacy_documents(archive, limits=XdmLimits(max_total_bytes=3000)))


def test_an_unknown_compression_method_is_a_malformed_archive(tmp_path):
    archive = large_xdm(tmp_path / "method.zip", 1, 64 * 1024)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        start = zf.start_dir
    # Central directory entry: compression method at offset 10 (99: AE-x encryption).
    data[start + 10 : start + 12] = (99).to_bytes(2, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(MalformedDocumentError):
        list(iter_legacy_documents(archive))


def test_a_member_over_the_limit_refuses_its_archive_by_name(space, tmp_path, folder):
    """A member over the per-document limit stops the run at its archive, named in the error;
    the documents imported before it stay imported, with their ledger lines."""
    space.accounts.register_patient(OPERATOR, person())
    good = large_xdm(tmp_path / "good.zip", 2, MiB)
    big = large_xdm(tmp_path / "big.zip", 2, 3 * MiB)
    with pytest.raises(DocumentTooLargeError) as refused:
        space.dmp.import_sources(OPERATOR, [good, big], limits=XdmLimits(max_member_bytes=2 * MiB))
    assert "big.zip" in str(refused.value)
    assert refused.value.limit == 2 * MiB
    assert counts(space)[0] == 2
    with storage_of(space).read() as tx:
        runs = {
            line.run_id for p in tx.patients.ids() for line in tx.ledger.imported_for_patient(p)
        }
    (run_id,) = runs
    ledger = space.dmp.ledger(OPERATOR, run_id)
    assert sorted(line.source for line in ledger) == [
        "good.zip!IHE_XDM/SUBSET01/DOC0000.XML",
        "good.zip!IHE_XDM/SUBSET01/DOC0001.XML",
    ]
    assert {line.outcome for line in ledger} == {"imported"}


def test_members_are_hashed_as_they_are_read(tmp_path):
    """Each document comes with the SHA-256 of its bytes, computed while streaming."""
    archive = large_xdm(tmp_path / "hashed.zip", 2, MiB)
    documents = list(iter_legacy_documents(archive))
    assert [len(d.data) for d in documents] == [MiB, MiB]
    for document in documents:
        assert document.sha256 == hashlib.sha256(document.data).hexdigest()


# --- the ledger as CSV: safe to open in a spreadsheet ---------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("export/DOC0001.xml", "export/DOC0001.xml"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_formula_safe_neutralises_what_a_spreadsheet_would_run(cell, written):
    assert formula_safe(cell) == written


def test_the_cli_ledger_cannot_inject_formulas(tmp_path):
    db = tmp_path / "cli.db"
    with monespace.open(f"sqlite:///{db}") as space:
        space.accounts.register_patient(OPERATOR, person())
    export = tmp_path / "export"
    export.mkdir()
    names = ["=1+1.xml", "+cmd.xml", "-2+3.xml", "@SUM(A1).xml", "\tx.xml", "plain.xml"]
    for name in names:
        shutil.copy(CDA / "VAC-NOTE_2023.01.xml", export / name)
    ledger = tmp_path / "ledger.csv"
    result = CliRunner().invoke(
        main, ["dmp", "import", "--db", str(db), str(export), "--ledger", str(ledger)]
    )
    assert result.exit_code == 0, result.output
    with ledger.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["source"] for r in rows) == sorted(
        name if name == "plain.xml" else "'" + name for name in names
    )
    for row in rows:
        assert not any(value[:1] in ("=", "+", "-", "@", "\t", "\r") for value in row.values())


# --- file names at rest: a legacy file's name can say what it is about ----------------------


def test_legacy_file_names_are_sealed_at_rest(tmp_path, folder):
    """A file name such as "compte-rendu-IVG.xml" reveals health content: the ledger stores
    it sealed (with the patient's key once matched, the space's ledger key before), and the
    operator's ledger reads it back."""
    revealing = "compte-rendu-IVG-CANARI-a91f"
    originals = sorted(folder.glob("*.xml"))
    originals[0].rename(folder / f"{revealing}.xml")  # a document that is imported
    stranger = folder / f"{revealing}-inconnu.xml"  # a document about no registered person
    stranger.write_bytes(
        originals[1].read_bytes().replace(EXAMPLE_NIR.encode(), b"180017512345678")
    )
    db = tmp_path / "space.db"
    with open_space(f"sqlite:///{db}") as space:
        patient = space.accounts.register_patient(OPERATOR, person())
        report = space.dmp.import_sources(OPERATOR, [folder])
        ledger = {line.source: line for line in space.dmp.ledger(OPERATOR, report.run_id)}
        assert ledger[f"{revealing}.xml"].outcome == "imported"
        assert ledger[f"{revealing}.xml"].patient_id == patient.id
        assert ledger[f"{revealing}-inconnu.xml"].outcome == "quarantined"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("space.db*"))
    assert revealing.encode() not in stored
    assert b"CANARI-a91f" not in stored


def test_a_shredded_patient_takes_their_file_names_along(tmp_path, folder):
    with open_space() as space:
        patient = space.accounts.register_patient(OPERATOR, person())
        report = space.dmp.import_sources(OPERATOR, [folder])
        with storage_of(space).write() as tx:
            space._core.keyring.destroy(tx, patient.id, space.clock.now())
        ledger = space.dmp.ledger(OPERATOR, report.run_id)
    imported = [line for line in ledger if line.outcome == "imported"]
    assert imported
    assert {line.source for line in imported} == {"[deleted with the patient's key]"}
    # the quarantined line named no patient: its name stays readable by the operator
    assert all(line.source.endswith(".xml") for line in ledger if line.outcome == "quarantined")
