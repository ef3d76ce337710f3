"""Reading CDA R2 documents: the official CI-SIS examples, hostile inputs, and the CLI.

The example tests are driven by a MANIFEST.tsv (the columns of shared/data/README.md §2), so
they can be pointed at another example set with ``MONESPACE_CDA_EXAMPLES=/path/to/folder``.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from monespace import _xml
from monespace.cli._cda import cda
from monespace.errors import InvalidINSError, ValidationError
from monespace.identity import INS
from monespace.interop import (
    DEFAULT_MAX_BYTES,
    CdaParser,
    DocumentTooLargeError,
    HostileDocumentError,
    InvalidCdaError,
    MalformedDocumentError,
    parse_xml,
    read_cda,
)
from monespace.interop.cda import (
    CdaPatient,
    Coding,
    InstanceId,
    NonXmlBody,
    StructuredBody,
    format_ts,
    parse_ts,
)
from monespace.plugins import Plugins
from monespace.record import DocumentParser, ParsedDocument
from monespace.record._codes import is_member

from .conftest import SHARED_DATA
from .helpers import MARKER

EXAMPLES = Path(os.environ.get("MONESPACE_CDA_EXAMPLES", SHARED_DATA / "cisis" / "cda"))
MANIFEST = EXAMPLES / "MANIFEST.tsv"
INS_OIDS = {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10"}
INS_OIDS.add("1.2.250.1.213.1.4.11")
BOM = b"\xef\xbb\xbf"
PARIS = dt.timezone(dt.timedelta(hours=1))


def _rows():
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


ROWS = _rows()
needs_examples = pytest.mark.skipif(
    not ROWS, reason=f"CDA examples not found: no MANIFEST.tsv at {MANIFEST}"
)


def _example(row) -> bytes:
    return (EXAMPLES / row["file"]).read_bytes()


def _first(stem: str) -> dict:
    for row in ROWS:
        if row["file"].startswith(stem):
            return row
    pytest.skip(f"no example named {stem}* in {EXAMPLES}")
    raise AssertionError  # unreachable


def _instant(raw: str) -> dt.datetime:
    """An independent reading of the manifest's TS, with strptime."""
    fmt = {19: "%Y%m%d%H%M%S%z", 17: "%Y%m%d%H%M%z"}[len(raw)]
    return dt.datetime.strptime(raw, fmt)


def _minimal_cda(*, code='<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>', extra="",
                 body=None) -> bytes:  # fmt: skip
    if body is None:
        body = "<component><structuredBody><component><section/></component></structuredBody>"
        body += "</component>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        f'{code}<title>{MARKER}</title><effectiveTime value="20240102030405+0100"/>'
        f'<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>{extra}'
        "<recordTarget><patientRole>"
        '<id root="1.2.250.1.213.1.4.10" extension="279035121518989"/>'
        "</patientRole></recordTarget>"
        f"{body}</ClinicalDocument>"
    ).encode()


# --- the official examples ---------------------------------------------------------------------


@needs_examples
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
class TestOfficialExamples:
    def test_header_matches_the_manifest(self, row):
        """Type, confidentiality, date, title, patient, authors and body, as the manifest says."""
        doc = read_cda(_example(row))
        assert doc.type.code == row["code"]
        assert doc.type.code_system == row["codeSystem"]
        assert doc.confidentiality_codes[0] == row["confidentialityCode"]
        assert doc.effective_time is not None
        assert doc.effective_time.tzinfo is not None
        assert doc.effective_time == _instant(row["effectiveTime"])
        assert doc.effective_time.utcoffset() == _instant(row["effectiveTime"]).utcoffset()
        assert doc.title == row["title"]
        assert doc.patient is not None
        assert [str(i) for i in doc.patient.ids] == row["patient_ids"].split("|")
        if row["ins_root"]:
            assert doc.patient.ins == InstanceId(row["ins_root"], row["ins_extension"])
        else:
            assert doc.patient.ins is None
        assert len(doc.authors) == int(row["n_authors"])
        assert [str(t) for t in doc.template_ids] == row["templateIds"].split("|")
        assert doc.auto_presentable == (row["root_element"] != "{urn:hl7-org:v3}ClinicalDocument")

    def test_body_matches_the_manifest(self, row):
        doc = read_cda(_example(row))
        if row["has_nonXMLBody"] == "true":
            assert isinstance(doc.body, NonXmlBody)
            assert doc.body.kind == "non_xml"
            assert doc.body.media_type == row["nonXMLBody_mediaType"]
            if row["nonXMLBody_mediaType"] == "application/pdf":
                assert doc.body.data.startswith(b"%PDF")
        else:
            assert isinstance(doc.body, StructuredBody)
            assert doc.body.kind == "structured"
            assert doc.body.sections == int(row["n_sections_top"])

    def test_type_code_is_in_j07(self, row):
        """Every official example's ClinicalDocument/code is a J07 typeCode."""
        assert is_member("J07", row["code"], row["codeSystem"])

    def test_document_class_is_derived(self, row):
        doc = read_cda(_example(row))
        assert doc.class_code is not None
        assert is_member("J06", doc.class_code, "1.2.250.1.213.1.1.4.1")

    def test_parser_plugin_fills_the_parsed_document(self, row):
        data = _example(row)
        parser = CdaParser()
        assert parser.accepts("text/xml", data)
        parsed = parser.parse(data)
        assert isinstance(parsed, ParsedDocument)
        assert parsed.parser == "cda-r2"
        assert (parsed.type_code, parsed.type_code_system) == (row["code"], row["codeSystem"])
        assert parsed.confidentiality[0] == row["confidentialityCode"]
        assert parsed.effective_time == _instant(row["effectiveTime"])
        assert parsed.title == row["title"]
        assert (parsed.patient_ins_oid or "", parsed.patient_ins or "") == (
            row["ins_root"],
            row["ins_extension"],
        )
        assert parsed.author_count == int(row["n_authors"])
        assert parsed.structured is (row["has_nonXMLBody"] != "true")
        assert parsed.body_media_type == (row["nonXMLBody_mediaType"] or None)
        assert parsed.class_code is not None
        assert parsed.class_code_system == "1.2.250.1.213.1.1.4.1"
        assert parsed.document_id
        assert parsed.set_id

    def test_with_and_without_byte_order_mark(self, row):
        data = _example(row)
        plain = data.removeprefix(BOM)
        assert read_cda(plain) == read_cda(BOM + plain) == read_cda(data)


@needs_examples
class TestExampleDetails:
    def test_auto_presentable_form(self):
        row = _first("BIO-CR-BIO_2021.01_Auto-Presentable")
        assert row["root_element"] == "{http://www.w3.org/1999/XSL/Transform}stylesheet"
        assert read_cda(_example(row)).auto_presentable

    def test_byte_order_mark_example(self):
        row = _first("eP-MED-DM_2024.01_PosoStruct")
        assert _example(row).startswith(BOM)
        assert read_cda(_example(row)).type.code == "57833-6"

    def test_unstructured_body_is_the_decoded_pdf(self):
        row = _first("DOC_NON_STRUCTURE_CDA-R2-N1")
        body = read_cda(_example(row)).body
        assert isinstance(body, NonXmlBody)
        assert body.data.startswith(b"%PDF")
        assert body.data.rstrip().endswith(b"%%EOF")
        assert body.compression is None
        assert "data" not in repr(body)

    def test_authors_and_custodian(self):
        doc = read_cda(_example(_first("BIO-CR-BIO_2024.01_DEP-CCU")))
        assert len(doc.authors) == 2
        for author in doc.authors:
            assert author.national_id is not None
            assert author.national_id.startswith("8")
            assert author.specialty is not None
            assert is_member("J01", author.specialty.code, author.specialty.code_system or "")
            assert author.time is not None
        assert doc.custodian is not None
        assert doc.custodian.ids[0].root == "1.2.250.1.71.4.2.2"
        assert doc.document_id is not None
        assert doc.set_id is not None
        assert doc.version_number == 1

    def test_ins_traits(self):
        """The traits of the test INS are read and consistent with its matricule."""
        doc = read_cda(_example(_first("VAC-NOTE_2023.01")))
        assert doc.patient is not None
        traits = doc.patient.traits
        assert traits is not None
        assert traits.birth_name == "PAT-TROIS"
        assert traits.first_given_name == "DOMINIQUE"
        assert traits.given_names == ("DOMINIQUE", "MARIE-LOUISE")
        assert traits.birth_date == dt.date(1979, 3, 28)
        assert traits.sex == "F"
        assert traits.birth_place_code == "51215"
        ins = doc.patient.to_ins()
        assert isinstance(ins, INS)
        assert ins.is_test

    def test_ins_is_not_validated_by_the_reader(self):
        """CSE-CS8's INS-NIR fails the NIR key: it is read as is, and to_ins() refuses it."""
        doc = read_cda(_example(_first("CSE-CS8_2024.01")))
        assert doc.patient is not None
        assert doc.patient.ins == InstanceId("1.2.250.1.213.1.4.8", "223042545611404")
        with pytest.raises(InvalidINSError):
            doc.patient.to_ins()

    def test_patient_repr_is_redacted(self):
        doc = read_cda(_example(_first("VAC-NOTE_2023.01")))
        assert doc.patient is not None
        for ident in doc.patient.ids:
            assert ident.extension not in repr(doc.patient)
            assert ident.extension not in repr(doc)
        assert "PAT-TROIS" not in repr(doc)

    def test_typographic_display_name_does_not_matter(self):
        doc = read_cda(_example(_first("IMG_CR_IMG_2024.01")))
        assert doc.type.display == "CR d\u2019imagerie médicale"  # a typographic apostrophe
        assert doc.type == Coding("18748-4", "2.16.840.1.113883.6.1", "CR d'imagerie médicale")
        assert doc.class_code == "31"


# --- synthetic documents ------------------------------------------------------------------------


class TestSyntheticDocuments:
    def test_minimal_document(self):
        doc = read_cda(_minimal_cda())
        assert doc.type == Coding("11502-2", "2.16.840.1.113883.6.1")
        assert doc.class_code == "10"
        assert doc.effective_time == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PARIS)
        assert doc.body == StructuredBody(1)
        assert doc.authors == ()
        assert doc.custodian is None
        assert doc.document_id is None
        assert doc.version_number is None
        assert doc.patient is not None
        assert doc.patient.traits is None

    def test_unknown_type_has_no_class(self):
        doc = read_cda(_minimal_cda(code='<code code="XYZ" codeSystem="1.2.3"/>'))
        assert doc.class_code is None
        assert doc.to_parsed().class_code is None

    def test_dmp_masking_codes_are_collected(self):
        code = (
            '<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>'
            '<confidentialityCode code="R" codeSystem="2.16.840.1.113883.5.25">'
            '<translation code="MASQUE_PS" codeSystem="1.2.250.1.213.1.1.4.13"/>'
            '<translation code="X" codeSystem="9.9"/>'
            "</confidentialityCode>"
        )
        doc = read_cda(_minimal_cda(code=code))
        assert doc.confidentiality_codes == ("R", "MASQUE_PS", "N")

    def test_base64_body_is_decoded(self):
        payload = base64.encodebytes(b"%PDF-1.7 " + MARKER.encode()).decode()
        body = (
            '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
            f"{payload}</text></nonXMLBody></component>"
        )
        doc = read_cda(_minimal_cda(body=body))
        assert doc.body == NonXmlBody("application/pdf", b"%PDF-1.7 " + MARKER.encode())

    def test_payload_around_reference_and_thumbnail(self):
        body = (
            '<component><nonXMLBody><text mediaType="image/jpeg" representation="B64">'
            '<reference value="http://example.org/a.jpg"/>QU'
            '<thumbnail mediaType="image/jpeg" representation="B64">WFla</thumbnail>JD'
            "</text></nonXMLBody></component>"
        )
        doc = read_cda(_minimal_cda(body=body))
        assert doc.body == NonXmlBody("image/jpeg", b"ABC", reference="http://example.org/a.jpg")

    def test_text_body(self):
        body = "<component><nonXMLBody><text>bonjour</text></nonXMLBody></component>"
        doc = read_cda(_minimal_cda(body=body))
        assert doc.body == NonXmlBody("text/plain", b"bonjour")

    def test_document_without_offset_is_read_as_paris_time(self):
        data = _minimal_cda().replace(b"20240102030405+0100", b"20240702030405")
        assert read_cda(data).effective_time == dt.datetime(
            2024, 7, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))
        )
        reunion = dt.timezone(dt.timedelta(hours=4))
        assert read_cda(data, assume_tz=reunion).effective_time == dt.datetime(
            2024, 7, 2, 3, 4, 5, tzinfo=reunion
        )

    def test_effective_time_is_optional(self):
        data = _minimal_cda().replace(b'<effectiveTime value="20240102030405+0100"/>', b"")
        assert read_cda(data).effective_time is None

    def test_bare_doctype_is_harmless(self):
        doctype = b"<!DOCTYPE ClinicalDocument><ClinicalDocument"
        data = _minimal_cda().replace(b"<ClinicalDocument", doctype, 1)
        assert read_cda(data).type.code == "11502-2"

    def test_latin1_document(self):
        data = (
            _minimal_cda()
            .decode()
            .replace(MARKER, "Compte rendu d'hépatologie")
            .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
            .encode("latin-1")
        )
        assert read_cda(data).title == "Compte rendu d'hépatologie"


# --- hostile and broken inputs ------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title a="&lol9;">&lol9;</title></ClinicalDocument>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "file:///etc/passwd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<ClinicalDocument xmlns="urn:hl7-org:v3"/>
"""
NETWORK_DTD = b"""<!DOCTYPE ClinicalDocument PUBLIC "-//x//DTD y//EN" "http://example.invalid/a.dtd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>"""

HOSTILE = {
    "billion-laughs": (BILLION_LAUGHS, "entity-declaration"),
    "external-entity": (XXE, "entity-declaration"),
    "external-dtd": (EXTERNAL_DTD, "external-dtd"),
    "parameter-entity": (PARAMETER_ENTITY, "entity-declaration"),
    "network-dtd": (NETWORK_DTD, "external-dtd"),
    "external-entity-utf16": (XXE.decode().encode("utf-16"), "entity-declaration"),
    "external-dtd-after-comment": (b"<!-- x --><?pi?>\n" + EXTERNAL_DTD[22:], "external-dtd"),
    "internal-subset": (
        b'<!DOCTYPE ClinicalDocument [<!ATTLIST ClinicalDocument a CDATA "b">]><x/>',
        "internal-dtd-subset",
    ),
    "deep-nesting": (b"<a>" * 100_000 + b"</a>" * 100_000, "ERR_RESOURCE_LIMIT"),
}


@pytest.mark.parametrize(("data", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_documents_are_refused(data, reason):
    with pytest.raises(HostileDocumentError) as caught:
        read_cda(data)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValidationError)
    assert "root:" not in str(caught.value)


def _truncated() -> bytes:
    data = _minimal_cda()
    return data[: data.index(MARKER.encode()) + 5]


BROKEN = {
    "empty": (b"", MalformedDocumentError),
    "whitespace": (b" \n\t", MalformedDocumentError),
    "not-xml": (b"%PDF-1.7\n" + MARKER.encode(), MalformedDocumentError),
    "truncated": (_truncated(), MalformedDocumentError),
    "wrong-encoding": (
        _minimal_cda().replace(MARKER.encode(), b"\xff\xfe" + MARKER.encode()),
        MalformedDocumentError,
    ),
    "no-code": (_minimal_cda(code=""), InvalidCdaError),
    "null-code": (_minimal_cda(code='<code nullFlavor="UNK"/>'), InvalidCdaError),
    "no-code-system": (_minimal_cda(code='<code code="11502-2"/>'), InvalidCdaError),
    "no-namespace": (
        _minimal_cda().replace(b' xmlns="urn:hl7-org:v3"', b""),
        InvalidCdaError,
    ),
    "other-root": (b"<html><body>" + MARKER.encode() + b"</body></html>", InvalidCdaError),
    "stylesheet-without-cda": (
        b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"/>',
        InvalidCdaError,
    ),
    "stylesheet-with-two-cda": (
        b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
        + _minimal_cda()[38:] * 2
        + b"</xsl:stylesheet>",
        InvalidCdaError,
    ),
    "no-body": (_minimal_cda(body=""), InvalidCdaError),
    "bad-base64": (
        _minimal_cda(
            body='<component><nonXMLBody><text representation="B64">'
            f"{MARKER}!!</text></nonXMLBody></component>"
        ),
        InvalidCdaError,
    ),
    "bad-effective-time": (
        _minimal_cda().replace(b"20240102030405+0100", b"20241302030405+0100"),
        InvalidCdaError,
    ),
    "year-only-effective-time": (
        _minimal_cda().replace(b"20240102030405+0100", b"2024"),
        InvalidCdaError,
    ),
    "bad-version-number": (
        _minimal_cda(
            code='<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>'
            '<versionNumber value="un"/>'
        ),
        InvalidCdaError,
    ),
}


@pytest.mark.parametrize(("data", "error"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_documents_are_clear_validation_errors(data, error):
    with pytest.raises(error) as caught:
        read_cda(data)
    assert isinstance(caught.value, ValidationError)
    message = str(caught.value)
    assert MARKER not in message
    assert "279035121518989" not in message


def test_huge_documents_are_refused_before_parsing():
    with pytest.raises(DocumentTooLargeError) as caught:
        read_cda(b"<a>" + b" " * DEFAULT_MAX_BYTES + b"</a>")
    assert caught.value.limit == DEFAULT_MAX_BYTES
    assert caught.value.size == DEFAULT_MAX_BYTES + 7
    data = _minimal_cda()
    with pytest.raises(DocumentTooLargeError):
        read_cda(data, max_bytes=len(data) - 1)
    assert read_cda(data, max_bytes=len(data)).type.code == "11502-2"


def test_huge_text_nodes_hit_the_parser_limit():
    with pytest.raises(HostileDocumentError):
        parse_xml(b"<a>" + b"A" * 10_000_001 + b"</a>")


def test_parse_xml_takes_bytes_only():
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]
    assert parse_xml(bytearray(b"<a/>")).tag == "a"


def test_comments_and_processing_instructions_are_dropped():
    root = parse_xml(b"<?xml-stylesheet href='x.xsl'?><!-- c --><a><!-- d --><?e f?>t</a>")
    assert root.text == "t"
    assert len(root) == 0


@pytest.fixture
def secret_file(tmp_path):
    """A file the parser must never read; the tests point entities and DTDs at it."""
    path = tmp_path / "secret.dtd"
    path.write_text(f'<!ENTITY leak "{MARKER}">\n', encoding="utf-8")
    return path


def _point_at(data: bytes, path: Path) -> bytes:
    return data.replace(b"file:///etc/passwd", path.as_uri().encode())


@pytest.mark.parametrize("data", [XXE, EXTERNAL_DTD, PARAMETER_ENTITY])
def test_second_line_of_defence_without_the_prolog_check(data, secret_file, monkeypatch):
    """With the pre-parse check disabled, the parser options and the post-parse check still
    refuse the document, and nothing of the file reaches the result or the message."""
    monkeypatch.setattr(_xml, "_check_doctype", lambda data: None)
    pointed = _point_at(data, secret_file)
    with pytest.raises(HostileDocumentError):
        read_cda(pointed)
    # Using an entity the secret file would declare: refused too, and never expanded.
    with pytest.raises(ValidationError) as caught:
        read_cda(pointed.replace(b"/>", b"><title>&leak;</title></ClinicalDocument>", 1))
    assert MARKER not in str(caught.value)


def test_resolver_stops_reads_even_with_weakened_parser_options(secret_file, monkeypatch):
    """lxml 6.1 loads an external DTD when collect_ids=False, despite load_dtd=False; the
    resolver answers with nothing and the document is refused."""
    monkeypatch.setattr(_xml, "_check_doctype", lambda data: None)

    def weakened(resolver):
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False
        )
        parser.resolvers.add(resolver)
        return parser

    monkeypatch.setattr(_xml, "_parser", weakened)
    with pytest.raises(HostileDocumentError) as caught:
        read_cda(_point_at(EXTERNAL_DTD, secret_file))
    assert caught.value.reason == "external-resource"
    data = _point_at(EXTERNAL_DTD, secret_file).replace(b"/>", b">&leak;</ClinicalDocument>")
    with pytest.raises(ValidationError) as caught:
        read_cda(data)
    assert MARKER not in str(caught.value)


_PROBE = """
import sys
from pathlib import Path
from monespace import _xml
from monespace.interop import read_cda
from monespace.errors import ValidationError
if sys.argv[2] == "without-prolog-check":
    _xml._check_doctype = lambda data: None
try:
    read_cda(Path(sys.argv[1]).read_bytes())
except ValidationError as exc:
    print(type(exc).__name__)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a POSIX named pipe")
@pytest.mark.parametrize("check", ["with-prolog-check", "without-prolog-check"])
@pytest.mark.parametrize("data", [XXE, EXTERNAL_DTD, PARAMETER_ENTITY], ids=["xxe", "dtd", "pe"])
def test_external_files_are_never_opened(data, check, tmp_path):
    """The entity or DTD target is a named pipe with no writer: opening it would block, and
    the reader (in a subprocess) would time out."""
    fifo = tmp_path / "trap"
    os.mkfifo(fifo)
    document = tmp_path / "doc.xml"
    document.write_bytes(_point_at(data, fifo))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(document), check],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HostileDocumentError"


@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_never_crash(data):
    with contextlib.suppress(ValidationError):
        read_cda(data)


@needs_examples
@given(st.data())
def test_truncated_or_corrupted_examples_never_crash(data):
    row = data.draw(st.sampled_from([r for r in ROWS if int(r["size_bytes"]) < 300_000]))
    original = _example(row)
    cut = data.draw(st.integers(0, len(original)))
    flip = data.draw(st.integers(0, len(original) - 1))
    for candidate in (
        original[:cut],
        original[:flip] + bytes([original[flip] ^ 0x20]) + original[flip + 1 :],
    ):
        _read_or_refuse(candidate)


def _read_or_refuse(data: bytes) -> None:
    """read_cda either succeeds or raises a ValidationError that names no identifier."""
    try:
        read_cda(data)
    except ValidationError as exc:
        message = str(exc)
    else:
        return
    assert "279035121518989" not in message


# --- HL7 TS timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20210401171000+0100", dt.datetime(2021, 4, 1, 17, 10, tzinfo=PARIS)),
        ("202302091130+0100", dt.datetime(2023, 2, 9, 11, 30, tzinfo=PARIS)),
        ("2023020911+0100", dt.datetime(2023, 2, 9, 11, tzinfo=PARIS)),
        ("20230209+0100", dt.datetime(2023, 2, 9, tzinfo=PARIS)),
        ("20230209", dt.datetime(2023, 2, 9, tzinfo=PARIS)),
        ("20230709120000", dt.datetime(2023, 7, 9, 10, tzinfo=dt.UTC)),
        ("20231201093000.5-0330", dt.datetime(2023, 12, 1, 13, 0, 0, 500_000, tzinfo=dt.UTC)),
        (" 20210401171000+0000 ", dt.datetime(2021, 4, 1, 17, 10, tzinfo=dt.UTC)),
    ],
)
def test_parse_ts(value, expected):
    parsed = parse_ts(value)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2021",
        "202104",
        "20211301",
        "20210230",
        "20210401250000",
        "20210401176000",
        "20210401+2400",
        "20210401+0160",
        "2021-04-01T17:10:00+01:00",
        "\uff12\uff10\uff12\uff11\uff10\uff14\uff10\uff11",  # full-width digits
        "20210401171000+01",
        "20210401171000.1234567",
    ],
)
def test_parse_ts_refuses(value):
    with pytest.raises(InvalidCdaError):
        parse_ts(value)


_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1), timezones=_OFFSETS))
def test_ts_round_trip_from_datetimes(value):
    """format_ts then parse_ts gives the same instant with the same offset."""
    parsed = parse_ts(format_ts(value))
    assert parsed == value
    assert parsed.utcoffset() == value.utcoffset()


@given(
    st.datetimes(min_value=dt.datetime(1000, 1, 1), timezones=_OFFSETS).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_ts_round_trip_from_text(value):
    text = format_ts(value)
    assert len(text) == 19
    assert format_ts(parse_ts(text)) == text


@given(st.text(max_size=40))
def test_parse_ts_only_raises_invalid_cda(text):
    with contextlib.suppress(InvalidCdaError):
        parse_ts(text)


def test_format_ts_needs_an_aware_datetime():
    with pytest.raises(ValueError):
        format_ts(dt.datetime(2024, 1, 1))


# --- the parser plugin --------------------------------------------------------------------------


class TestCdaParser:
    def test_follows_the_protocol_and_is_built_in(self):
        parser = CdaParser()
        assert isinstance(parser, DocumentParser)
        assert parser.name == "cda-r2"
        assert isinstance(Plugins(load_entrypoints=False).document_parsers["cda-r2"], CdaParser)

    @pytest.mark.parametrize(
        "media_type",
        ["text/xml", "application/xml", "TEXT/XML; charset=UTF-8", "application/hl7-v3+xml"],
    )
    def test_accepts_xml_media_types(self, media_type):
        assert CdaParser().accepts(media_type, _minimal_cda())

    def test_refuses_other_media_types_and_other_xml(self):
        parser = CdaParser()
        assert not parser.accepts("application/pdf", _minimal_cda())
        assert not parser.accepts("application/octet-stream", _minimal_cda())
        assert not parser.accepts("text/xml", b"%PDF-1.7")
        assert not parser.accepts("text/xml", b"<feed xmlns='http://www.w3.org/2005/Atom'/>")
        assert not parser.accepts("text/xml", b"<ClinicalDocument/>")

    def test_parse_errors_are_validation_errors(self):
        with pytest.raises(ValidationError):
            CdaParser().parse(BILLION_LAUGHS)
        with pytest.raises(DocumentTooLargeError):
            CdaParser(max_bytes=10).parse(_minimal_cda())

    def test_parsed_document(self):
        parsed = CdaParser().parse(_minimal_cda())
        assert parsed == ParsedDocument(
            parser="cda-r2",
            type_code="11502-2",
            type_code_system="2.16.840.1.113883.6.1",
            title=MARKER,
            effective_time=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PARIS),
            confidentiality=("N",),
            patient_ins="279035121518989",
            patient_ins_oid="1.2.250.1.213.1.4.10",
            author_count=0,
            class_code="10",
            class_code_system="1.2.250.1.213.1.1.4.1",
            structured=True,
        )


def test_patient_without_ins():
    data = _minimal_cda().replace(b"1.2.250.1.213.1.4.10", b"1.2.250.1.213.1.4.13")
    doc = read_cda(data)
    assert doc.patient is not None
    assert doc.patient.ins is None
    with pytest.raises(InvalidINSError):
        doc.patient.to_ins()
    assert "CdaPatient(<redacted>" in repr(doc.patient)
    assert isinstance(doc.patient, CdaPatient)


# --- the command line ---------------------------------------------------------------------------

KEYS = [
    "file",
    "type_code",
    "type_code_system",
    "class_code",
    "confidentiality",
    "effective_time",
    "title",
    "patient",
    "authors",
    "body",
    "error",
]


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_bytes(b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>' + MARKER.encode())
    return path


@needs_examples
class TestCli:
    def test_json_lines_with_one_bad_file(self, bad_file, tmp_path):
        files = [EXAMPLES / row["file"] for row in ROWS]
        hostile = tmp_path / "xxe.xml"
        hostile.write_bytes(XXE)
        arguments = [str(f) for f in files[:2]] + [str(bad_file), str(hostile)]
        arguments += [str(tmp_path / "missing.xml")] + [str(f) for f in files[2:]]
        result = CliRunner().invoke(cda, ["inspect", "--json", *arguments])
        assert result.exit_code == 1
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [line["file"] for line in lines] == arguments
        by_file = {line["file"]: line for line in lines}
        for line in lines:
            assert list(line) == KEYS
        for failed in (bad_file, hostile, tmp_path / "missing.xml"):
            line = by_file[str(failed)]
            assert line["error"]
            assert MARKER not in line["error"]
            assert all(line[key] is None for key in KEYS if key not in ("file", "error"))
        assert "entities" in by_file[str(hostile)]["error"]
        assert "No such file" in by_file[str(tmp_path / "missing.xml")]["error"]
        assert MARKER not in result.output
        for row in ROWS:
            line = by_file[str(EXAMPLES / row["file"])]
            assert line["error"] is None
            assert line["type_code"] == row["code"]
            assert line["type_code_system"] == row["codeSystem"]
            assert line["class_code"]
            assert line["confidentiality"][0] == row["confidentialityCode"]
            assert dt.datetime.fromisoformat(line["effective_time"]) == _instant(
                row["effectiveTime"]
            )
            assert line["title"] == row["title"]
            if row["ins_root"]:
                assert line["patient"] == {"ins": row["ins_extension"], "oid": row["ins_root"]}
            else:
                assert line["patient"] is None
            assert line["authors"] == int(row["n_authors"])
            if row["has_nonXMLBody"] == "true":
                assert line["body"] == {
                    "kind": "non_xml",
                    "media_type": row["nonXMLBody_mediaType"],
                }
            else:
                assert line["body"] == {
                    "kind": "structured",
                    "sections": int(row["n_sections_top"]),
                }

    def test_table(self):
        files = [str(EXAMPLES / row["file"]) for row in ROWS]
        result = CliRunner().invoke(cda, ["inspect", *files])
        assert result.exit_code == 0, result.output
        for row in ROWS:
            assert row["file"] in result.stdout
            assert row["code"] in result.stdout
            # The table never shows identifiers.
            if row["ins_extension"]:
                assert row["ins_extension"] not in result.stdout

    def test_table_with_a_bad_file(self, bad_file):
        good = str(EXAMPLES / ROWS[0]["file"])
        result = CliRunner().invoke(cda, ["inspect", str(bad_file), good])
        assert result.exit_code == 1
        assert good in result.stdout
        assert "error:" in result.stdout
        assert MARKER not in result.output
        assert "1 of 2 file(s) could not be read" in result.output

    def test_max_bytes(self):
        row = ROWS[0]
        result = CliRunner().invoke(
            cda, ["inspect", "--json", "--max-bytes", "100", str(EXAMPLES / row["file"])]
        )
        assert result.exit_code == 1
        assert "limit is 100 bytes" in json.loads(result.stdout)["error"]


def test_cli_needs_a_file():
    result = CliRunner().invoke(cda, ["inspect"])
    assert result.exit_code == 2
