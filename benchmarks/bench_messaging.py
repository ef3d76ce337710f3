"""Benchmark of secure messaging through the SMTP plugin, against raw smtplib.

Run ``python benchmarks/bench_messaging.py`` (about a minute; ``--quick`` for a noisier run
of a few seconds, ``--json PATH`` to keep the figures). It needs the plugin
(``pip install -e plugins/monespace-smtp``) and aiosmtpd. Every figure is measured beside a
raw baseline in the same run, against the same loopback SMTP server (aiosmtpd on 127.0.0.1,
a handler that counts and accepts), with their ratio:

- messages stored and delivered per second: a patient's reply written with
  ``space.messaging.reply`` (policy, sealing, storage, audit event, outbox row, one durable
  SQLite transaction), then delivered by ``space.dispatch()`` through ``SmtpTransport`` (the
  outbox row opened, the MIME message written, SMTP on a kept connection, the delivery
  recorded in a second transaction), against raw ``smtplib.SMTP.sendmail`` of the same MIME
  bytes on one kept connection; with a 1 KiB text, and with a 64 KiB PDF attached;
- messages received per second by the inbound gateway (``InboundServer``: MIME parsed and
  checked, ``space.messaging.receive``), against the same bytes sent to an aiosmtpd server
  that accepts and discards them.

The database lives in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import itertools
import shutil
import smtplib
import socket
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from aiosmtpd.controller import Controller

import monespace
from _common import (
    Figure,
    Report,
    compare,
    describe_machine,
    measure,
    parser,
    print_machine,
    revision,
)
from _common import print_table as show
from monespace import Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.messaging import MSSANTE_CHANNEL, NewAttachment
from monespace.transport import MemoryTransport
from monespace_smtp import SmtpTransport, StartTLS
from monespace_smtp.inbound import InboundServer

OPERATOR = Actor.system("bench")
RPPS_NUMBER = RPPS.build("1000000001").value
PROFESSIONAL = Actor(ActorKind.PROFESSIONAL, RPPS_NUMBER)
PRO_ADDRESS = "dr.martin@ch-bench.mssante.fr"
# About 1 KiB of text in lines of 53 characters (SMTP lines stop at 998).
TEXT = "Bonjour docteur, voici les informations demandées.\n" * 20
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 256  # 64 KiB
THREADS = 200  # replies cycle over this many threads, as in a mailbox


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


class Counting:
    """An aiosmtpd handler that accepts and counts (a professional's mailbox server)."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        self.accepted += 1
        return "250 2.0.0 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_counting_server() -> tuple[Controller, Counting, int]:
    handler = Counting()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, handler, port


def open_space(path: Path, port: int) -> tuple[monespace.Space, SmtpTransport]:
    transport = SmtpTransport("127.0.0.1", port, starttls=StartTLS.NEVER, reuse=True)
    space = monespace.open(
        f"sqlite:///{path}",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        transports={MSSANTE_CHANNEL: transport},
    )
    space.access.register_professional(
        OPERATOR, Professional(RPPS_NUMBER, "10", "Dr Martin", mssante=PRO_ADDRESS)
    )
    return space, transport


def register_patient(space: monespace.Space, n: int = 1) -> str:
    """A synthetic patient without e-mail (so no notices queue up), space open."""
    nir = NIR.build("F", 80, 5, "75", 112, n)
    traits = INSTraits(
        birth_name="DURAND", first_given_name="MARIE", birth_date=date(1980, 5, 12), sex="F"
    )
    patient_id = space.accounts.register_patient(
        OPERATOR, PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits))
    ).id
    space.accounts.create_space(OPERATOR, patient_id)
    return patient_id


def bench_outbound(
    work: Path, label: str, attachments: list[NewAttachment], seconds: float, repeat: int
) -> tuple[Figure, Figure]:
    controller, counter, port = start_counting_server()
    space, transport = open_space(work / f"out-{label}.db", port)
    try:
        patient_id = register_patient(space)
        me = Actor.patient(patient_id)
        threads = [
            space.messaging.start_thread(
                PROFESSIONAL, patient_id, subject=f"Suivi {n}", body="Bonjour"
            ).thread_id
            for n in range(THREADS)
        ]
        cycle = itertools.cycle(threads)

        # The baseline's bytes: what the transport writes for one such reply.
        capture = MemoryTransport()
        space.transports[MSSANTE_CHANNEL] = capture
        space.messaging.reply(me, next(cycle), body=TEXT, attachments=attachments)
        space.dispatch()
        sender, recipient, mime = transport.render(capture.sent[0])
        data = mime.as_bytes()
        space.transports[MSSANTE_CHANNEL] = transport

        def op_store_and_deliver(n: int) -> None:
            for _ in range(n):
                space.messaging.reply(me, next(cycle), body=TEXT, attachments=attachments)
            report = space.dispatch(limit=n + 10)
            assert report.sent == n, report

        raw = smtplib.SMTP("127.0.0.1", port)
        raw.ehlo()

        def op_raw(n: int) -> None:
            for _ in range(n):
                raw.sendmail(sender, [recipient], data)

        progress(f"replies stored and delivered over SMTP ({label})")
        before = counter.accepted
        ours, theirs = compare(op_store_and_deliver, op_raw, seconds=seconds, repeat=repeat)
        raw.quit()
        assert counter.accepted > before
        delivered = Figure(
            f"reply stored + delivered, {label}",
            "messages/s",
            ours,
            theirs,
            "smtplib.sendmail of the same MIME bytes, one kept connection",
            note=f"{len(data):,} bytes of MIME per message",
        )

        def op_store(n: int) -> None:
            for _ in range(n):
                space.messaging.reply(me, next(cycle), body=TEXT, attachments=attachments)

        progress(f"replies stored and queued, not delivered ({label})")
        stored = Figure(
            f"reply stored + queued only, {label}",
            "messages/s",
            measure(op_store, seconds=seconds, repeat=repeat),
        )
        return delivered, stored
    finally:
        space.close()
        controller.stop()


def bench_inbound(work: Path, seconds: float, repeat: int) -> Figure:
    space, _ = open_space(work / "in.db", free_port())
    patient_id = register_patient(space)
    address = f"{NIR.build('F', 80, 5, '75', 112, 1).value}@patient.mssante.fr"
    del patient_id
    gateway = InboundServer(space, "127.0.0.1", free_port())
    gateway.start()
    discard, _, discard_port = start_counting_server()
    counter = itertools.count()
    template = (
        f"From: {PRO_ADDRESS}\r\nTo: {address}\r\nSubject: Compte rendu\r\n"
        "Message-ID: <bench-{n}@ch-bench.mssante.fr>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + TEXT.replace("\n", "\r\n")
    )

    def sender(port: int) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", port)
        client.ehlo()
        return client

    ours_client, raw_client = sender(gateway.port), sender(discard_port)

    def op_receive(n: int) -> None:
        for _ in range(n):
            data = template.replace("{n}", str(next(counter))).encode()
            refused = ours_client.sendmail(PRO_ADDRESS, [address], data)
            assert not refused

    def op_raw(n: int) -> None:
        for _ in range(n):
            data = template.replace("{n}", str(next(counter))).encode()
            raw_client.sendmail(PRO_ADDRESS, [address], data)

    try:
        progress("messages received by the inbound gateway")
        ours, theirs = compare(op_receive, op_raw, seconds=seconds, repeat=repeat)
    finally:
        ours_client.quit()
        raw_client.quit()
        gateway.stop()
        discard.stop()
        space.close()
    return Figure(
        "message received by the gateway, 1 KiB",
        "messages/s",
        ours,
        theirs,
        "the same bytes to an aiosmtpd server that accepts and discards them",
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    seconds, repeat = (0.2, 3) if args.quick else (1.0, 5)
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent,
        packages=("monespace", "monespace-smtp", "aiosmtpd"),
        extra={"revision": revision(Path(__file__).parent)},
    )
    report = Report(
        script="benchmarks/bench_messaging.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "text_bytes": len(TEXT.encode()),
            "attachment_bytes": len(PDF),
            "threads": THREADS,
        },
    )
    print(f"monespace messaging benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        text, text_store = bench_outbound(work, "1 KiB text", [], seconds, repeat)
        pdf, pdf_store = bench_outbound(
            work,
            "64 KiB PDF attached",
            [NewAttachment("resultats.pdf", "application/pdf", PDF)],
            seconds,
            repeat,
        )
        inbound = bench_inbound(work, seconds, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report.parameters["elapsed_seconds"] = round(elapsed, 1)
    figures = [text, pdf, inbound]
    context = [text_store, pdf_store]
    report.figures = figures + context
    print(
        f"\nMedians of {repeat} repeats of ~{seconds} s each; ratio = monespace / baseline "
        "(1.00x: as fast as the raw code); spread = (max - min) / median."
    )
    show(figures, title="monespace against raw baselines", markdown=args.markdown)
    show(context, title="Context", markdown=args.markdown)
    print(f"\nmeasured in {elapsed:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
