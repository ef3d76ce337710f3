"""Errors of the command line name what to do next; an RPPS that is not in the directory is
said as such; ``record add`` tells the media type from the bytes."""

from __future__ import annotations

import importlib
import pkgutil
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

import monespace
import monespace.cli
from monespace import Actor
from monespace.cli import main
from monespace.cli._errors import NEXT_STEPS, next_step, with_next_step
from monespace.errors import (
    AccessDeniedError,
    HostileDocumentError,
    MonespaceError,
    NotFoundError,
    SchemaVersionError,
    TransportError,
    UnknownProfessionalError,
    ValidationError,
)
from monespace.identities import Professional
from monespace.record import SUPPORTED_MEDIA_TYPES, detect_media_type
from monespace.synth import synthetic_identities

from .conftest import SHARED_DATA

OPERATOR = Actor.system("test")
KNOWN_RPPS = "10003777884"
UNKNOWN_RPPS = "10000000025"  # a valid number that the directory does not hold


def _error_tree() -> set[type[MonespaceError]]:
    """Every error class the command line can meet: the library's tree, with the classes
    of every module the command line imports (and the server, which ``serve`` runs)."""
    for module in pkgutil.walk_packages(monespace.__path__, "monespace."):
        if ".testing" in module.name or module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra that is not installed
            continue
    found: set[type[MonespaceError]] = set()
    todo: list[type[MonespaceError]] = [MonespaceError]
    while todo:
        klass = todo.pop()
        if klass in found:
            continue
        found.add(klass)
        todo.extend(klass.__subclasses__())
    return found


def test_every_error_class_of_the_library_has_a_next_step():
    """A new error class without a next step fails here: add it to ``cli._errors``."""
    missing = sorted(
        f"{klass.__module__}.{klass.__qualname__}"
        for klass in _error_tree()
        # A private class is a module's own detail; it takes its public parent's step.
        if not klass.__name__.startswith("_") and klass not in NEXT_STEPS
    )
    assert missing == []


@pytest.mark.parametrize(
    "klass", sorted(NEXT_STEPS, key=lambda k: f"{k.__module__}.{k.__qualname__}")
)
def test_each_next_step_is_a_sentence_that_says_what_to_do(klass):
    bare = klass.__new__(klass)  # the attributes a step may read default to none
    step = next_step(bare)
    assert step
    assert step == step.strip()
    assert not step.endswith(".")  # it follows the library's message after "; "
    assert "\n" not in step


def test_steps_that_depend_on_the_reason():
    dtd = HostileDocumentError("refused", reason="entity-declaration")
    assert "DTD" in next_step(dtd)
    assert "retrying cannot" in next_step(TransportError("x", permanent=True))
    assert "dispatch" in next_step(TransportError("x"))


def test_a_message_that_already_names_the_next_step_is_not_repeated():
    exc = SchemaVersionError(9, 3)
    assert with_next_step(exc) == str(exc)
    assert with_next_step(NotFoundError("no such document")).startswith("no such document; ")


def test_an_embedders_subclass_takes_its_parents_step():
    class Mine(AccessDeniedError):
        pass

    assert next_step(Mine("rule")) == next_step(AccessDeniedError("rule"))


# --- record add, from the command line ---------------------------------------------------------


@pytest.fixture
def space_file(tmp_path, monkeypatch):
    """An SQLite space with one open record and one professional of the directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "errors.db"
    identity = next(synthetic_identities(1, seed=11))
    with monespace.open(f"sqlite:///{path}") as space:
        patient = space.accounts.register_patient(OPERATOR, identity)
        space.accounts.create_space(OPERATOR, patient.id)
        space.access.register_professional(OPERATOR, Professional(KNOWN_RPPS, "10", "Dr Roux"))
    return str(path), identity.ins.matricule.value


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _add(space_file, name: str, content: bytes, *extra: str):
    db, nir = space_file
    Path(name).write_bytes(content)
    return CliRunner().invoke(
        main,
        ["record", "add", "--db", db, "--nir", nir, name, "--type", "11488-4", *extra],
    )


@pytest.mark.parametrize(
    ("name", "content", "stored"),
    [
        ("cr.txt", "Consultation du 5 décembre : tension 12/8.\n".encode(), "text/plain"),
        ("scan.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "application/pdf"),
        ("photo.png", _png(), "image/png"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(64), "image/jpeg"),
    ],
)
def test_record_add_tells_the_media_type_from_the_bytes(space_file, name, content, stored):
    added = _add(space_file, name, content)
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added ")
    db, nir = space_file
    with monespace.open(f"sqlite:///{db}") as space:
        patient = space.accounts.find_by_nir(OPERATOR, nir)
        holder = Actor.patient(patient.id)
        [document] = space.record.search(holder, patient.id).documents
    assert document.media_type == stored


def test_an_explicit_media_type_wins(space_file):
    xml = b"<?xml version='1.0'?><note>Tension 12/8</note>\n"
    assert detect_media_type(xml) == "text/xml"
    added = _add(space_file, "note.xml", xml, "--media-type", "text/plain")
    assert added.exit_code == 0, added.output
    db, nir = space_file
    with monespace.open(f"sqlite:///{db}") as space:
        patient = space.accounts.find_by_nir(OPERATOR, nir)
        holder = Actor.patient(patient.id)
        [document] = space.record.search(holder, patient.id).documents
    assert document.media_type == "text/plain"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"II*\x00" + bytes(60), "image/tiff"),
        (b"MM\x00*" + bytes(60), "image/tiff"),
        (b"\x00\x01\x02\x03binary", "cannot be told"),
        ("café".encode("latin-1"), "cannot be told"),
    ],
)
def test_bytes_it_cannot_take_list_the_accepted_types_and_the_option(space_file, content, said):
    refused = _add(space_file, "scan.bin", content)
    assert refused.exit_code == 1
    line = refused.output
    assert line.startswith("Error: ")
    assert line.count("\n") == 1
    assert said in line
    assert all(media in line for media in SUPPORTED_MEDIA_TYPES)
    assert "--media-type" in line


def test_record_add_by_an_rpps_not_in_the_directory_says_so(space_file):
    refused = _add(
        space_file, "cr.txt", b"Compte rendu\n", "--media-type", "text/plain",
        "--professional", UNKNOWN_RPPS,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert refused.output == f"Error: {with_next_step(UnknownProfessionalError())}\n"
    assert "access denied" not in refused.output
    assert "monespace register professional" in refused.output
    # A professional of the directory without an authorisation is denied, with the way out.
    denied = _add(
        space_file, "cr.txt", b"Compte rendu\n", "--professional", KNOWN_RPPS,
    )  # fmt: skip
    assert denied.exit_code == 1
    assert denied.output.startswith("Error: access denied; ")
    assert "monespace access explain" in denied.output


def test_a_missing_database_names_the_way_to_create_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["info", "--db", "nowhere.db"])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "monespace demo --db" in result.output


# --- detect_media_type, on real files ----------------------------------------------------------


CDA = SHARED_DATA / "cisis" / "cda"


@pytest.mark.skipif(not CDA.is_dir(), reason=f"shared CDA examples missing: {CDA}")
def test_the_official_cda_examples_are_xml():
    examples = sorted(CDA.glob("*.xml"))
    assert examples
    for example in examples:
        assert detect_media_type(example.read_bytes()) == "text/xml", example.name


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data missing: {SHARED_DATA}")
def test_other_real_files_are_xml_or_text():
    value_set = next((SHARED_DATA / "cisis" / "value-sets").glob("JDV_*.xml"))
    assert detect_media_type(value_set.read_bytes()) == "text/xml"  # XML, not a CDA
    fhir = next((SHARED_DATA / "fhir" / "r4").glob("*.json"))
    assert detect_media_type(fhir.read_bytes()) == "text/plain"
    manifest = CDA / "MANIFEST.tsv"
    assert detect_media_type(manifest.read_bytes()) == "text/plain"


def test_nothing_is_told_from_nothing():
    with pytest.raises(ValidationError, match="empty"):
        detect_media_type(b"")
