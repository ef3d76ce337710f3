"""Hostile inputs against every parser of outside data: no crash, no hang, bounded memory.

A mutation fuzzer. For each target it starts from real inputs (the CI-SIS CDA examples of
the shared data, an XDM archive built from them, an MSSanté message, the JSON bodies of
the demo server's API, calendars as booking platforms and calendar apps export them), adds
a fixed catalogue of known-hostile inputs (XXE, billion laughs, deep nesting, zip bombs,
path traversal, NUL bytes, overlong fields, endless recurrences), then mutates
the seeds: bytes flipped, inserted, deleted, truncated, chunks duplicated, hostile
fragments spliced in. Input *i* of a target is a pure function of the seed and *i*, so a
failure is replayed with ``--seed S --target T --only I``.

Oracles, per input:

- **no crash**: the parser returns, or raises one of the library's own errors
  (:class:`monespace.errors.MonespaceError`); for the API, every answer is < 500;
- **no hang**: each input has a deadline (``--timeout``, 5 s by default). Each target runs
  in a worker process that reports after every input; a worker silent past the deadline is
  killed, the input recorded as a hang, and a new worker goes on with the next input;
- **bounded memory**: the worker's address space is limited (``--memory``, 1 GiB by
  default, ``RLIMIT_AS``); a ``MemoryError`` or a worker killed for memory is a failure.
  The peak resident size of the workers is reported.

For the API, "accepted" counts every answer below 500 (a refusal with a problem document is
a correct answer there); only a 5xx is a crash.

Targets: ``cda`` (:func:`monespace.interop.cda.read_cda`), ``xdm``
(:func:`monespace.interop.dmp.iter_legacy_documents` on a ZIP archive), ``mime``
(:func:`monespace_smtp.parse_inbound`, when the SMTP plugin is importable), ``json`` (the
request bodies of the demo server's API, over ASGI, as a logged-in patient) and ``ics``
(``space.agenda.import_ics`` by the holder, each input into a fresh in-memory space whose
clock stands still, so that an input's outcome depends on that input alone).

```console
$ nice python benchmarks/fuzz_inputs.py                       # 10,000 inputs per target
$ python benchmarks/fuzz_inputs.py --quick                    # 300 per target
$ python benchmarks/fuzz_inputs.py --target cda --inputs 50000 --json fuzz.json
$ python benchmarks/fuzz_inputs.py --seed 7 --target xdm --only 4711   # replay one input
```
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx

import monespace
from _common import Report, describe_machine, parser, print_machine, revision
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
from monespace.agenda import Event as AgendaEvent
from monespace.agenda import EventKind, write_calendar
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import MonespaceError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.interop.cda import read_cda
from monespace.interop.dmp import XdmLimits, iter_legacy_documents

try:  # the demo server's extra
    from monespace import server
except ImportError:
    server = None
try:  # the SMTP plugin, a distribution of its own
    from monespace_smtp import parse_inbound
except ImportError:
    parse_inbound = None

SHARED = Path(
    os.environ.get("MONESPACE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)
CDA_DIR = SHARED / "cisis" / "cda"

# --- hostile fragments and the catalogue ------------------------------------------------------

XML_FRAGMENTS = [
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b"&e;",
    b"&d;",
    b'<?xml version="1.0" encoding="UTF-7"?>',
    b'<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?>',
    b"<![CDATA[" + b"]" * 50,
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"<a " + b'x="' + b"A" * 70_000 + b'"' + b">",
    b"<" * 5_000,
    b"</ClinicalDocument>",
    b'xmlns="urn:not-hl7"',
    b'value="99999999999999999999999999"',
    b'root="1.2.250.1.213.1.4.8" extension="' + b"9" * 40 + b'"',
    b"\xe2\x80\xae",  # right-to-left override
    b"\xed\xa0\x80",  # a lone surrogate in UTF-8
    b"\xc0\xaf",  # overlong UTF-8
]


def _deep(depth: int) -> bytes:
    return b"<ClinicalDocument>" + b"<a>" * depth + b"</a>" * depth + b"</ClinicalDocument>"


def xml_catalogue() -> list[bytes]:
    """Known-hostile XML documents, whole."""
    return [
        b"",
        b"<",
        b"<?xml version='1.0'?>",
        b'<?xml version="1.0"?>' + XML_FRAGMENTS[0] + b"<ClinicalDocument>&e;</ClinicalDocument>",
        b'<?xml version="1.0"?>' + XML_FRAGMENTS[1] + b"<ClinicalDocument>&d;</ClinicalDocument>",
        b'<?xml version="1.0"?>' + XML_FRAGMENTS[2] + b"<ClinicalDocument/>",
        _deep(100_000),
        _deep(300),
        b'<ClinicalDocument xmlns="urn:hl7-org:v3">' + b"x" * 3_000_000 + b"</ClinicalDocument>",
        b"%PDF-1.4\n<ClinicalDocument/>",
        b'<?xml version="1.0" encoding="bogus"?><ClinicalDocument/>',
        b"\x00" * 1024,
    ]


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def xdm_catalogue(cda: bytes) -> list[bytes]:
    """Known-hostile XDM archives."""
    sub = "IHE_XDM/SUBSET01/"
    return [
        _zip([]),
        _zip([(sub + "../../../etc/passwd.xml", cda)]),
        _zip([("/abs/DOC0001.XML", cda)]),
        _zip([(sub + "DOC\x00.XML", cda)]),
        _zip([(sub + "bomb.xml", b"<a>" + b" " * 60_000_000 + b"</a>")]),
        _zip([(sub + f"DOC{i:04}.XML", b"<x/>") for i in range(20_000)], zipfile.ZIP_STORED),
        _zip([(sub + "inner.zip", _zip([(sub + "DOC0001.XML", cda)]))]),
        _zip([(sub + "METADATA.XML", b'<?xml version="1.0"?>' + XML_FRAGMENTS[1] + b"<x>&d;</x>")]),
        _zip([(sub + "DOC0001.XML", cda), (sub + "DOC0001.XML", cda)]),
        _zip([(sub + "A" * 300 + ".XML", cda)]),
        b"PK\x03\x04" + b"\x00" * 100,
        b"PK\x05\x06" + b"\xff" * 18,
    ]


MIME_FRAGMENTS = [
    b'\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n',
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!!====",
    b"=?utf-8?b?" + base64.b64encode("é".encode() * 500) + b"?=",
    b"=?x-unknown?q?abc?=",
    b"\r\nFrom: a@b.fr\r\n",
    b"\r\nX-MSS-Type: \x00\r\n",
    b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n',
    b"Content-Disposition: attachment; filename*=utf-8''%E2%80%AEfdp.exe\r\n",
    b"\r\n" + b"X: " + b"y" * 100_000 + b"\r\n",
    b"--b--\r\n" * 50,
    b"\r\n\r\n",
    b"\x00\xff",
]


def mime_catalogue(seed: bytes) -> list[bytes]:
    """Known-hostile messages."""
    nested = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 200):
        nested += f"--b{i - 1}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n".encode()
    return [
        b"",
        b"\r\n",
        seed.replace(b"\r\n\r\n", b"\r\n", 1),
        b"From: x\r\n" * 10_000 + b"\r\nbody",
        b"From: <p@x.fr>\r\nTo: <q@y.fr>\r\nSubject: s\r\n" + nested,
        seed + b"\x00" * 10_000,
    ]


JSON_FRAGMENTS = [
    b'{"a":' * 10_000,
    b"[" * 100_000,
    b"NaN",
    b"Infinity",
    b"1" * 5_000,
    b'"\\ud800"',
    b'"\x00"',
    b'{"content": "' + b"A" * 1_000_000 + b'"}',
    b'{"x": 1, "x": 2}',
    b"-0e999999",
    b'"2024-02-30T25:61:61Z"',
    b'"../../etc/passwd"',
    b'"\' OR 1=1 --"',
]

# --- mutations --------------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes, fragments: list[bytes], others: list[bytes]) -> bytes:
    """One to four random edits of *data*."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(out) + 1)
        edit = rng.randrange(8)
        if edit == 0 and out:  # flip bits
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif edit == 1:  # random bytes
            out[position:position] = rng.randbytes(rng.randint(1, 16))
        elif edit == 2 and out:  # delete a span
            end = min(len(out), position + rng.randint(1, 256))
            del out[position:end]
        elif edit == 3:  # truncate
            del out[position:]
        elif edit == 4 and out:  # duplicate a chunk, many times
            start = rng.randrange(len(out))
            chunk = out[start : start + rng.randint(1, 64)]
            out[position:position] = chunk * rng.choice((2, 10, 1000))
        elif edit in (5, 6):  # a hostile fragment
            out[position:position] = rng.choice(fragments)
        elif others:  # splice another seed in
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            out[position:] = other[start:]
    return bytes(out)


# --- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """A parser and its seeds; ``inputs(seed)`` yields input *i* for i = 0, 1, ..."""

    name: str
    run: Callable[[bytes], object]
    catalogue: list[bytes]
    seeds: list[bytes]
    fragments: list[bytes]
    allowed: tuple[type[BaseException], ...] = (MonespaceError,)
    close: Callable[[], None] = field(default=lambda: None)

    def input(self, seed: int, index: int) -> bytes:
        if index < len(self.catalogue):
            return self.catalogue[index]
        rng = random.Random(f"{seed}:{self.name}:{index}")
        return mutate(rng, rng.choice(self.seeds), self.fragments, self.seeds)


def _cda_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CDA_DIR.glob("*.xml"))]


def _cda_target() -> Target:
    seeds = _cda_seeds()
    return Target("cda", read_cda, xml_catalogue(), seeds, XML_FRAGMENTS)


def _xdm_target() -> Target:
    cdas = _cda_seeds()
    sub = "IHE_XDM/SUBSET01/"
    seeds = [
        _zip([(sub + f"DOC{i:04}.XML", cda) for i, cda in enumerate(cdas[:3], 1)]),
        _zip([(sub + "DOC0001.XML", cdas[0])], zipfile.ZIP_STORED),
        _zip([("INDEX.HTM", b"<html></html>"), (sub + "DOC0001.XML", cdas[-1])]),
    ]
    directory = Path(tempfile.mkdtemp(prefix="monespace-fuzz-xdm-"))
    path = directory / "archive.zip"
    limits = XdmLimits()

    def run(data: bytes) -> object:
        path.write_bytes(data)
        return [d.source for d in iter_legacy_documents(path, limits=limits)]

    def close() -> None:
        path.unlink(missing_ok=True)
        directory.rmdir()

    return Target("xdm", run, xdm_catalogue(cdas[0]), seeds, XML_FRAGMENTS, close=close)


def _mime_target() -> Target | None:
    if parse_inbound is None:
        return None

    def message(attachments: list[tuple[str, str, bytes]]) -> bytes:
        mime = EmailMessage(policy=policy.SMTP)
        mime["From"] = "dr.martin@ch-test.mssante.fr"
        mime["To"] = "patient@patient.mssante.fr"
        mime["Subject"] = "Compte rendu de consultation"
        mime["Message-ID"] = "<cr-0001@ch-test.mssante.fr>"
        mime.set_content("Bonjour,\nvoici le compte rendu.\n")
        for filename, media, data in attachments:
            maintype, _, subtype = media.partition("/")
            mime.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        return mime.as_bytes()

    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    seeds = [
        message([]),
        message([("cr.pdf", "application/pdf", pdf)]),
        message([("cr.xml", "text/xml", _cda_seeds()[0][:20_000])]),
    ]

    def run(data: bytes) -> object:
        return parse_inbound(
            data,
            mail_from="dr.martin@ch-test.mssante.fr",
            recipient="patient@patient.mssante.fr",
        )

    return Target("mime", run, mime_catalogue(seeds[1]), seeds, MIME_FRAGMENTS)


class ServerError(Exception):
    """The API answered 5xx."""


def _json_target() -> Target | None:
    if server is None:
        return None
    space = monespace.open("memory://", load_entrypoints=False)
    operator = Actor.system("fuzz")
    birth = date(1980, 5, 4)
    nir = NIR.build("F", 80, 5, "75", "056", 11)
    traits = INSTraits(
        birth_name="FUZZ",
        first_given_name="CAMILLE",
        birth_date=birth,
        sex="F",
        birth_place_code="75056",
    )
    person = PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email="p@example.org"),
        vitale_serial="1000000011",
    )
    patient = space.accounts.register_patient(operator, person)
    space.accounts.invite(operator, patient.id)
    code = space.accounts.issue_code(operator, patient.id, send=False)
    space.accounts.activate(nir=nir.value, code=code, vitale_serial="1000000011", birth_date=birth)
    limits = server.RateLimits(per_ip=10**9, per_person=10**9)
    app = server.create_app(space, secure_cookies=False, rate_limits=limits)
    login = {"nir": nir.value, "vitale_serial": "1000000011", "birth_date": birth.isoformat()}
    routes = [
        (op.method, op.path.replace("{patient_id}", patient.id))
        for op in server.operations_of()
        if op.body is not None and set(op.path_params) <= {"patient_id"}
    ]
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz")

    async def token() -> str:
        answer = await client.post("/api/v1/session/patient", json=login)
        return str(answer.json()["token"])

    bearer = {"authorization": f"Bearer {loop.run_until_complete(token())}"}
    seeds = [
        json.dumps(login).encode(),
        b'{"section": "allergy", "label": "P\\u00e9nicilline", "started": "2024-01-01"}',
        b'{"content": "' + base64.b64encode(b"note") + b'", "media_type": "text/plain",'
        b' "type_code": {"code": "DOCPAT01", "system": "1.2.250.1.213.1.1.4.12"}}',
        b'{"words": "compte rendu", "limit": 10, "since": "2024-01-01T00:00:00Z"}',
        b'{"kind": "weight", "value": 70.5, "at": "2026-01-01T08:00:00Z"}',
        b'{"mask_all": true}',
        b'{"rpps": "10003456786", "until": "2030-01-01T00:00:00Z"}',
        b'{"subject": "Bonjour", "body": "Une question", "rpps": "10003456786"}',
    ]

    def run(data: bytes) -> object:
        method, path = routes[int.from_bytes(data[:2] or b"\0", "big") % len(routes)]

        async def call() -> int:
            answer = await client.request(
                method,
                path,
                content=data,
                headers={**bearer, "content-type": "application/json"},
            )
            return answer.status_code

        status = loop.run_until_complete(call())
        if status >= 500:
            raise ServerError(f"{method} {path} answered {status}")
        return status

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()
        space.close()

    # Any answer below 500 is an answer: the body is refused or accepted, never a crash.
    return Target("json", run, [b"", *JSON_FRAGMENTS], seeds, JSON_FRAGMENTS, (), close=close)


ICS_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the importer's clock: replays are exact


def _ics_lines(*lines: str) -> bytes:
    """An iCalendar file from its logical lines, folded at 75 characters as RFC 5545 says."""
    folded = []
    for line in lines:
        parts = [line[:75]] + [line[i : i + 74] for i in range(75, len(line), 74)]
        folded.append("\r\n ".join(parts))
    return ("\r\n".join(folded) + "\r\n").encode()


PARIS_VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "X-LIC-LOCATION:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]

_BOOKING_UID = "rdv-8f3a2c1e-4b7d-4e21-9c55-0d1f2e3a4b5c@booking.example.fr"


def _booking_event(start: str, end: str, sequence: int, modified: str, status: str) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{_BOOKING_UID}",
        "DTSTAMP:20260301T080000Z",
        "CREATED:20260215T101500Z",
        f"LAST-MODIFIED:{modified}",
        f"DTSTART;TZID=Europe/Paris:{start}",
        f"DTEND;TZID=Europe/Paris:{end}",
        "SUMMARY:Consultation - Dr Claire Martin (médecin généraliste)",
        "LOCATION:Cabinet médical\\, 12 rue de la République\\, 69002 Lyon",
        "DESCRIPTION:Pensez à apporter votre carte Vitale et votre ordonnance.\\n"
        "Pour déplacer ou annuler ce rendez-vous : https://booking.example.fr/rdv/8f3a2c1e",
        'ORGANIZER;CN="Dr Claire Martin":mailto:no-reply@booking.example.fr',
        f"STATUS:{status}",
        f"SEQUENCE:{sequence}",
        "TRANSP:OPAQUE",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Rappel de rendez-vous",
        "TRIGGER:-PT1H",
        "END:VALARM",
        "END:VEVENT",
    ]


def ics_seeds() -> list[bytes]:
    """Calendars as booking platforms and calendar apps write them, dated around
    :data:`ICS_NOW`."""
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Booking Example//Rendez-vous 4.2//FR"]
    booking = _ics_lines(
        *head,
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Mes rendez-vous",
        *PARIS_VTIMEZONE,
        *_booking_event("20260310T093000", "20260310T100000", 0, "20260215T101500Z", "CONFIRMED"),
        "BEGIN:VEVENT",
        "UID:rdv-1c9e7a55-2f40-4d8b-a6e3-77b0c4d2e9f1@booking.example.fr",
        "DTSTAMP:20260301T080000Z",
        "DTSTART;TZID=Europe/Paris:20260402T101500",
        "DTEND;TZID=Europe/Paris:20260402T103000",
        "SUMMARY:Vaccination - Pharmacie du Marché",
        "LOCATION:Pharmacie du Marché\\, 3 place Carnot\\, 69002 Lyon",
        "STATUS:CONFIRMED",
        "SEQUENCE:0",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    weekly = _ics_lines(
        *head,
        "METHOD:PUBLISH",
        *PARIS_VTIMEZONE,
        "BEGIN:VEVENT",
        "UID:serie-kine-5521@booking.example.fr",
        "DTSTAMP:20260301T080000Z",
        "DTSTART;TZID=Europe/Paris:20260303T180000",
        "DTEND;TZID=Europe/Paris:20260303T183000",
        "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;UNTIL=20260528T215959Z",
        "EXDATE;TZID=Europe/Paris:20260409T180000",
        "SUMMARY:Rééducation du genou - M. Karim Benali (masseur-kinésithérapeute)",
        "LOCATION:Cabinet de kinésithérapie\\, 40 cours Gambetta\\, 69003 Lyon",
        "SEQUENCE:0",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:serie-kine-5521@booking.example.fr",
        "RECURRENCE-ID;TZID=Europe/Paris:20260416T180000",
        "DTSTAMP:20260301T080000Z",
        "DTSTART;TZID=Europe/Paris:20260416T190000",
        "DTEND;TZID=Europe/Paris:20260416T193000",
        "SUMMARY:Rééducation du genou - séance déplacée",
        "SEQUENCE:1",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    update = _ics_lines(
        *head,
        "METHOD:REQUEST",
        *PARIS_VTIMEZONE,
        *_booking_event("20260312T143000", "20260312T150000", 2, "20260305T161200Z", "CONFIRMED"),
        "END:VCALENDAR",
    )
    cancel = _ics_lines(
        *head,
        "METHOD:CANCEL",
        *PARIS_VTIMEZONE,
        *_booking_event("20260312T143000", "20260312T150000", 3, "20260310T070500Z", "CANCELLED"),
        "END:VCALENDAR",
    )
    google = _ics_lines(
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Santé",
        "X-WR-TIMEZONE:Europe/Paris",
        "BEGIN:VEVENT",
        "DTSTART;VALUE=DATE:20260520",
        "DTEND;VALUE=DATE:20260521",
        "DTSTAMP:20260301T080000Z",
        "UID:4k2j9v1q8s7t6u5r3p0o@google.com",
        "CREATED:20260110T120000Z",
        "LAST-MODIFIED:20260110T120000Z",
        "SUMMARY:Mammographie de dépistage",
        "DESCRIPTION:Courrier de l'assurance maladie du 5 janvier",
        "STATUS:CONFIRMED",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "DTSTART:20260615T070000Z",
        "DTEND:20260615T074500Z",
        "DTSTAMP:20260301T080000Z",
        "UID:9a8b7c6d5e4f3g2h1i0j@google.com",
        "SUMMARY:Prise de sang à jeun",
        "LOCATION:Laboratoire Bioaccess\\, 18 avenue Berthelot\\, Lyon",
        "SEQUENCE:1",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    own = write_calendar(
        [
            AgendaEvent(
                id=f"e{n}",
                patient_id="p",
                kind=kind,
                starts_at=ICS_NOW + timedelta(days=7 * n + 1, hours=n),
                ends_at=ICS_NOW + timedelta(days=7 * n + 1, hours=n, minutes=30),
                title=title,
                place="Centre de santé, 8 rue Victor Hugo, 69002 Lyon",
                notes="Apporter le carnet de vaccination\net la carte Vitale",
                uid=f"e{n}@monespace",
                sequence=n,
            )
            for n, (kind, title) in enumerate(
                [
                    (EventKind.VACCINATION, "Rappel dTcaP"),
                    (EventKind.BILAN_PREVENTION, "Bilan prévention 45-50 ans"),
                    (EventKind.SCREENING, None),
                ]
            )
        ],
        include_details=True,
        now=ICS_NOW,
    )
    return [booking, weekly, update, cancel, google, own]


def _vevents(count: int, *extra: str) -> bytes:
    return b"".join(
        _ics_lines("BEGIN:VEVENT", f"UID:f{n}", "DTSTART:20260310T093000Z", *extra, "END:VEVENT")
        for n in range(count)
    )


ICS_FRAGMENTS = [
    b"\r\nDESCRIPTION:" + b"A" * 74 + b"\r\n " + b"\r\n ".join([b"B" * 73] * 1400),
    b"\r\nRRULE:FREQ=SECONDLY;COUNT=999999999\r\n",
    b"\r\nRRULE:FREQ=MINUTELY\r\n",
    b"\r\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\r\n",
    b"\r\nRRULE:FREQ=YEARLY;INTERVAL=4294967295\r\n",
    b"\r\nRRULE:FREQ=WEEKLY;UNTIL=99991231T235959Z\r\n",
    b"\r\nRDATE:" + b",".join([b"20260310T093000Z"] * 3000) + b"\r\n",
    b"\r\nEXDATE:" + b",".join([b"20260310T093000Z"] * 3000) + b"\r\n",
    b"\r\nRECURRENCE-ID:20260310T093000Z\r\n",
    b"\r\nBEGIN:VEVENT\r\n",
    b"\r\nEND:VEVENT\r\n",
    b"\r\nBEGIN:VCALENDAR\r\n",
    b"\r\nEND:VCALENDAR\r\n",
    b"\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n",
    b";TZID=Mars/Olympus_Mons",
    b";TZID=../../../../etc/passwd",
    b";TZID=/etc/localtime",
    b';TZID="Romance Standard Time"',
    b";VALUE=DATE",
    b";VALUE=PERIOD",
    b"\r\nDTSTART:00000101T000000\r\n",
    b"\r\nDTSTART:99999101T000000\r\n",
    b"\r\nDTSTART:00010101T000000Z\r\n",
    b"\r\nDTEND;VALUE=DATE:99991231\r\n",
    b"\r\nDURATION:P99999999W\r\n",
    b"\r\nDURATION:-P1D\r\n",
    b"\r\nSEQUENCE:99999999999999999999\r\n",
    b"\r\nSEQUENCE:-1\r\n",
    b"\r\nLAST-MODIFIED:99991231T235959Z\r\n",
    b"\\r\\nX-EVIL:1",
    b"\rX-EVIL:1",
    b"\nATTENDEE:mailto:x@evil.example\n",
    b"\r\n ",
    b'";X-P="',
    b":" * 1000,
    b";" * 5000,
    b"\r\nBEGIN:X-DEEP\r\n" * 50,
    _vevents(50),
    b"\x00",
    b"\xff\xfe",
    b"\xed\xa0\x80",  # a lone surrogate in UTF-8
    bytes(range(256)),
]


def ics_catalogue(seed: bytes) -> list[bytes]:
    """Known-hostile calendars, whole."""
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//FR"]
    tail = b"END:VCALENDAR\r\n"

    def calendar(*lines: str) -> bytes:
        return _ics_lines(*head, *lines, "END:VCALENDAR")

    def event(*lines: str, start: str = "DTSTART:20260310T093000Z") -> bytes:
        return calendar("BEGIN:VEVENT", "UID:hostile@fuzz", start, *lines, "END:VEVENT")

    return [
        b"",
        b"BEGIN:VCALENDAR",
        b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        event("DESCRIPTION:" + "x" * 100_000),
        event("RRULE:FREQ=SECONDLY;COUNT=999999999"),
        event("RRULE:FREQ=SECONDLY"),
        event("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"),
        event("RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"),
        event("RRULE:FREQ=YEARLY;BYSETPOS=-366;BYYEARDAY=-366"),
        event("RRULE:FREQ=WEEKLY;UNTIL=99991231T235959Z"),
        event("RRULE:FREQ=WEEKLY;INTERVAL=0"),
        event(*(f"RRULE:FREQ=DAILY;INTERVAL={n}" for n in range(1, 500))),
        event(
            "RDATE:"
            + ",".join(f"2026{m:02}{d:02}T093000Z" for m in range(1, 13) for d in range(1, 29))
        ),
        event(*["BEGIN:VEVENT", "UID:nested@fuzz"] * 10_000, *["END:VEVENT"] * 10_000),
        _ics_lines(*head) + b"BEGIN:X\r\n" * 50_000 + b"END:X\r\n" * 50_000 + tail,
        event(start="DTSTART;TZID=Mars/Olympus_Mons:20260310T093000"),
        event(start="DTSTART:00000101T000000"),
        event(start="DTSTART:99999101T000000"),
        event(start="DTSTART;VALUE=DATE:00010101"),
        event("DTEND;VALUE=DATE:99991231", start="DTSTART;VALUE=DATE:99991231"),
        event("SUMMARY:Bonjour\\r\\nATTENDEE:mailto:x@evil.example"),
        _ics_lines(*head, "BEGIN:VEVENT", "UID:a@fuzz", "DTSTART:20260310T093000Z")
        + b"SUMMARY:x\rX-EVIL:1\nDESCRIPTION:y\r\nEND:VEVENT\r\n"
        + tail,
        _ics_lines(*head) + _vevents(2_000) + tail,
        _ics_lines(*head) + _vevents(6_000) + tail,
        _ics_lines(*head) + _vevents(1_000, "RRULE:FREQ=DAILY;COUNT=3") + tail,
        seed + b" " * (1024 * 1024),
        bytes(range(256)) * 100,
        b"\x00" * 1024,
    ]


def _ics_target() -> Target:
    """The agenda's iCalendar importer, ``space.agenda.import_ics``, as the holder.

    Each input goes into a fresh in-memory space holding one registered patient (born in
    1980) whose clock stands at :data:`ICS_NOW`: an input's outcome does not depend on the
    inputs before it, so ``--only`` replays it exactly, and the space never grows.
    """
    operator = Actor.system("fuzz")
    keys = StaticKeyProvider(MasterKey.generate())
    nir = NIR.build("M", 80, 5, "69", "382", 17)
    traits = INSTraits(
        birth_name="FUZZ",
        first_given_name="DOMINIQUE",
        birth_date=date(1980, 5, 4),
        sex="M",
        birth_place_code="69382",
    )
    person = PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email="p@example.org"))

    def run(data: bytes) -> object:
        space = monespace.open(
            "memory://", clock=ManualClock(ICS_NOW), key_provider=keys, load_entrypoints=False
        )
        try:
            patient = space.accounts.register_patient(operator, person)
            space.accounts.create_space(operator, patient.id)
            return space.agenda.import_ics(Actor.patient(patient.id), patient.id, data)
        finally:
            space.close()

    seeds = ics_seeds()
    return Target("ics", run, ics_catalogue(seeds[0]), seeds, ICS_FRAGMENTS)


TARGETS: dict[str, Callable[[], Target | None]] = {
    "cda": _cda_target,
    "xdm": _xdm_target,
    "mime": _mime_target,
    "json": _json_target,
    "ics": _ics_target,
}

# --- the worker and the watchdog --------------------------------------------------------------


def _worker(name: str, seed: int, start: int, stop: int, memory: int, conn: object) -> None:
    """Run inputs [start, stop) of target *name*, reporting after each one."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    target = TARGETS[name]()
    assert target is not None
    send = conn.send  # type: ignore[attr-defined]
    try:
        for index in range(start, stop):
            send(("start", index))
            data = target.input(seed, index)
            try:
                target.run(data)
                send(("ok", index, None))
            except target.allowed:
                send(("refused", index, None))
            except MemoryError:
                send(("memory", index, "MemoryError"))
            except Exception as exc:
                frames = traceback.extract_tb(exc.__traceback__)
                where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
                send(("crash", index, f"{type(exc).__name__} at {where}"))
    finally:
        target.close()
        send(("done", stop, None))


@dataclass
class Outcome:
    """What one target did."""

    target: str
    inputs: int = 0
    refused: int = 0
    accepted: int = 0
    crashes: list[tuple[int, str]] = field(default_factory=list)
    hangs: list[int] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)
    died: list[int] = field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0


def fuzz(name: str, seed: int, count: int, *, timeout: float, memory: int) -> Outcome:
    """Run *count* inputs of target *name* in workers, with a deadline per input."""
    outcome = Outcome(name)
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    index = 0
    while index < count:
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(
            target=_worker, args=(name, seed, index, count, memory, send), daemon=True
        )
        worker.start()
        send.close()
        current, began = index, time.perf_counter()
        warmup = 120.0  # building the target (the API's space) before the first input
        finished = False
        while True:
            if not receive.poll(warmup):
                worker.kill()
                outcome.hangs.append(current)
                outcome.inputs += 1
                index = current + 1
                break
            try:
                message = receive.recv()
            except EOFError:  # the worker died (killed for memory, a crash in C code)
                worker.join()
                outcome.died.append(current)
                outcome.inputs += 1
                index = current + 1
                break
            kind, at, detail = message if len(message) == 3 else (*message, None)
            if kind == "start":
                current, began = at, time.perf_counter()
                warmup = timeout
                continue
            if kind == "done":
                finished = True
                break
            outcome.inputs += 1
            outcome.slowest = max(outcome.slowest, time.perf_counter() - began)
            if kind == "ok":
                outcome.accepted += 1
            elif kind == "refused":
                outcome.refused += 1
            elif kind == "memory":
                outcome.memory.append(at)
            else:
                outcome.crashes.append((at, str(detail)))
            current = at + 1
        worker.join(5)
        receive.close()
        if finished:
            break
    outcome.seconds = time.perf_counter() - started
    return outcome


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=10_000, help="inputs per target (10,000)")
    p.add_argument("--target", action="append", choices=sorted(TARGETS), help="repeatable")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per input")
    p.add_argument("--memory", type=int, default=1024, help="MiB of address space per worker")
    p.add_argument("--only", type=int, default=None, help="replay one input (with --target)")
    args = p.parse_args()
    seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    count = 300 if args.quick else args.inputs
    memory = args.memory * 1024 * 1024
    machine = describe_machine(tempfile.gettempdir(), packages=("monespace", "lxml"))
    machine["revision"] = revision(Path(__file__).parent)
    print_machine(machine)
    print(f"seed {seed} (replay with --seed {seed})\n")
    if args.only is not None:
        for name in args.target or []:
            target = TARGETS[name]()
            assert target is not None
            print(f"{name} input {args.only}: {target.run(target.input(seed, args.only))!r:.200}")
        return 0
    outcomes: list[Outcome] = []
    for name in args.target or list(TARGETS):
        probe = TARGETS[name]()
        if probe is None:
            print(f"{name:<5} skipped: no {name} parser in this tree (see _{name}_target)")
            continue
        probe.close()
        outcome = fuzz(name, seed, count, timeout=args.timeout, memory=memory)
        outcomes.append(outcome)
        print(
            f"{name:<5} {outcome.inputs:>7} inputs in {outcome.seconds:6.1f} s: "
            f"{outcome.accepted} accepted, {outcome.refused} refused, "
            f"{len(outcome.crashes)} crashes, {len(outcome.hangs)} hangs, "
            f"{len(outcome.memory)} over memory, {len(outcome.died)} workers died; "
            f"slowest input {outcome.slowest:.2f} s",
            flush=True,
        )
        for at, detail in outcome.crashes[:10]:
            print(f"      crash at input {at}: {detail}")
        for label, indexes in (("hang", outcome.hangs), ("memory", outcome.memory)):
            for at in indexes[:10]:
                print(f"      {label} at input {at}")
        for at in outcome.died[:10]:
            print(f"      worker died at input {at}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = sum(o.inputs for o in outcomes)
    failures = sum(len(o.crashes) + len(o.hangs) + len(o.memory) + len(o.died) for o in outcomes)
    print(f"\n{total} inputs, {failures} failures; peak worker RSS {peak:.0f} MiB")
    if args.json:
        run = Report("fuzz_inputs", "quick" if args.quick else "full", machine)
        run.parameters = {"seed": seed, "inputs": count, "timeout": args.timeout}
        run.extra = {
            "targets": [o.__dict__ for o in outcomes],
            "peak_worker_rss_mib": round(peak),
        }
        run.write(args.json)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
