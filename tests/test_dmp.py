"""Legacy DMP migration: strict matching, quarantine, ledger, idempotency, hostile sources."""

from __future__ import annotations

import csv
import shutil
import zipfile
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor, ManualClock
from monespace.accounts import Contact, PatientIdentity
from monespace.cli import main
from monespace.errors import AccessDeniedError, HostileDocumentError, MalformedDocumentError
from monespace.identity import INS, INS_NIR_OID, INS_NIR_TEST_OID, NIR, INSTraits

from .conftest import SHARED_DATA
from .helpers import open_space

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
    with space.storage.read() as tx:
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
