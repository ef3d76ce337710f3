"""Messaging's pure rules (threading, sides, sizes, filing) and its sealed payloads
(monespace.messaging._rules, monespace.messaging._mapping), without storage or a space."""

from __future__ import annotations

import json

import pytest

from monespace.actors import ActorKind
from monespace.errors import ValidationError
from monespace.messaging import MessagingSettings
from monespace.messaging._mapping import (
    MessagePayload,
    attachment_from_row,
    attachment_meta,
    message_payload,
    read_message_payload,
)
from monespace.messaging._rules import (
    MAX_REFERENCES,
    actor_side,
    check_attachment_sizes,
    filed_type,
    filename_of,
    reply_headers,
    reply_subject,
    title_of,
)
from monespace.record import LOINC, TRE_A05_TYPE, Code, ParsedDocument
from monespace.storage import AttachmentRow

PRO, PAT = "professional", "patient"


def test_a_reply_answers_the_other_sides_latest_message():
    earlier = [(PRO, "<1@x>"), (PAT, "<2@x>"), (PRO, "<3@x>"), (PAT, "<4@x>")]
    assert reply_headers(earlier, PRO) == ("<4@x>", ("<1@x>", "<2@x>", "<3@x>", "<4@x>"))
    assert reply_headers(earlier, PAT)[0] == "<3@x>"


def test_a_side_writing_alone_answers_its_own_latest_message_and_a_first_one_nothing():
    assert reply_headers([(PRO, "<1@x>"), (PRO, "<2@x>")], PRO)[0] == "<2@x>"
    assert reply_headers([], PRO) == (None, ())


def test_what_a_received_message_says_it_replies_to_is_kept():
    assert reply_headers([(PAT, "<1@x>")], PRO, "<0@elsewhere>")[0] == "<0@elsewhere>"


def test_references_keep_only_the_latest_ones():
    earlier = [(PRO, f"<{n}@x>") for n in range(MAX_REFERENCES + 5)]
    _, references = reply_headers(earlier, PAT)
    assert len(references) == MAX_REFERENCES
    assert references[-1] == f"<{MAX_REFERENCES + 4}@x>"


@pytest.mark.parametrize(
    ("subject", "limit", "expected"),
    [
        ("Résultats", 100, "Re: Résultats"),
        ("RE: Résultats", 100, "RE: Résultats"),
        ("x" * 10, 8, "Re: xxxx"),
    ],
)
def test_a_reply_subject_is_prefixed_once_and_bounded(subject, limit, expected):
    assert reply_subject(subject, limit) == expected


@pytest.mark.parametrize(
    ("kind", "side"),
    [
        (ActorKind.PROFESSIONAL, PRO),
        (ActorKind.PATIENT, PAT),
        (ActorKind.REPRESENTATIVE, PAT),
    ],
)
def test_representatives_write_from_the_patients_side(kind, side):
    assert actor_side(kind) == side


def test_attachment_limits_name_the_first_attachment_over_them():
    settings = MessagingSettings(max_attachments=3, max_attachment_bytes=10, max_message_bytes=25)
    check_attachment_sizes([10, 10, 5], settings)
    for sizes, message in [
        ([1, 1, 1, 1], "at most 3 attachments"),
        ([10, 10, 6], "total at most 25 bytes"),
        ([3, 0], "attachment 2 is empty"),
        ([11], "attachment 1 must be at most 10 bytes"),
    ]:
        with pytest.raises(ValidationError, match=message):
            check_attachment_sizes(sizes, settings)


@pytest.mark.parametrize(
    ("parsed", "expected"),
    [
        (None, "EXPPAT_2"),
        (ParsedDocument("cda-r2", type_code="11502-2", class_code="10"), "DOCPAT05"),
        (ParsedDocument("cda-r2", type_code="34112-3", class_code="10"), "DOCPAT03"),
        (ParsedDocument("cda-r2", type_code="57833-6", class_code="42"), "DOCPAT02"),
        (ParsedDocument("cda-r2", type_code="x", class_code="77"), "EXPPAT_2"),
    ],
)
def test_a_filed_attachment_takes_the_patients_type_of_its_class(parsed, expected):
    assert filed_type(parsed) == Code(expected, TRE_A05_TYPE)
    assert filed_type(parsed).system != LOINC


def test_file_names_and_titles_of_record_documents():
    assert filename_of("CR: échographie/2024", "application/pdf") == "CR_ échographie_2024.pdf"
    assert filename_of("???", "text/xml") == "___.xml"
    assert filename_of("", "image/png") == "document.png"
    assert title_of("ordonnance.pdf") == "ordonnance"
    assert title_of(".pdf") == ".pdf"
    assert title_of("") == "Document reçu"


def test_message_payloads_survive_sealing_and_read_those_written_by_hand():
    """The payload reads back equal, and a payload in the former hand-written form (a
    dict, references as a list, UTF-8 without escapes) reads back the same."""
    payload = MessagePayload("Résultats", "Bonjour,\nvoici.", "<1@x>", ("<0@x>", "<1@x>"))
    raw = message_payload(payload)
    assert read_message_payload(raw) == payload
    assert "Résultats".encode() in raw  # UTF-8, not \\u escapes
    legacy = json.dumps(
        {
            "subject": "Résultats",
            "body": "Bonjour,\nvoici.",
            "in_reply_to": "<1@x>",
            "references": ["<0@x>", "<1@x>"],
        },
        ensure_ascii=False,
    ).encode("utf-8")
    assert read_message_payload(legacy) == payload
    assert "Résultats" not in repr(payload)


def test_attachment_meta_survives_sealing():
    row = AttachmentRow(
        "a1", "m1", "t1", "p1", "c1", "application/pdf", 3, b"\x01\x02", b"sealed", 0
    )
    attachment = attachment_from_row(row, attachment_meta("cr.pdf", ("11502-2",)))
    assert (attachment.filename, attachment.cda_codes, attachment.sha256) == (
        "cr.pdf",
        ("11502-2",),
        "0102",
    )
    legacy = json.dumps({"filename": "cr.pdf", "cda_codes": ["11502-2"]}).encode()
    assert attachment_from_row(row, legacy) == attachment
