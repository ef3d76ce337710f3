"""Hostile inputs against every parser of outside data: no crash, no hang, bounded memory.

A mutation fuzzer. For each target it starts from real inputs (the CI-SIS CDA examples of
the shared data, an XDM archive built from them, an MSSanté message, the JSON bodies of
the demo server's API), adds a fixed catalogue of known-hostile inputs (XXE, billion
laughs, deep nesting, zip bombs, path traversal, NUL bytes, overlong fields), then mutates
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
request bodies of the demo server's API, over ASGI, as a logged-in patient) and ``ics``.

``ics`` is an **extension point**: there is no iCalendar importer in the tree yet (the
agenda has no ``.ics`` reader). :func:`_ics_target` returns ``None`` until one exists; when
it does, make it return the importer (a ``bytes -> object`` callable) and the seeds, and
the target runs like the others.

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
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx

import monespace
from _common import Report, describe_machine, parser, print_machine, revision
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
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


def _ics_target() -> Target | None:
    """Extension point: the agenda's iCalendar importer, when the tree has one.

    There is none yet (the agenda reads no ``.ics``). When one exists, return
    ``Target("ics", importer, catalogue, seeds, ICS_FRAGMENTS)`` here: seeds from real
    calendars, fragments such as folded lines of 10^5 characters, ``RRULE`` with huge
    ``COUNT``, nested ``BEGIN:VEVENT``, unknown ``TZID``, ``DTSTART`` in year 0 or 99999.
    """
    return None


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
