"""The ``monespace`` command line.

Every command is a thin edge over the services: it opens a space, calls the Python API and
prints the outcome. Errors from the library are shown as one line, without a traceback.
"""

from __future__ import annotations

import base64
import csv
import json
import mimetypes
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from ._cli_cda import cda
from ._space import Space
from ._space import open as open_space
from .actors import AccessMode, Actor, ActorKind
from .audit import Checkpoint
from .clock import ManualClock
from .crypto import ENV_KEY, default_key_file
from .errors import MonespaceError
from .identity import RPPS
from .interop.dmp import formula_safe
from .messaging import NewAttachment
from .record import LOINC, Category, Code
from .synth import seed_demo

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The operator, as seen in the audit trail when acting from the command line.
CLI_OPERATOR = Actor.system("cli")


def _url(db: str) -> str:
    """A ``--db`` value is a storage URL, or a path to an SQLite file."""
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def _db_option(*, must_exist: bool) -> Callable[[_F], _F]:
    def check(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
        if must_exist and "://" not in value and not Path(value).expanduser().exists():
            raise click.BadParameter(f"{value} does not exist")
        return value

    return click.option(
        "--db",
        required=must_exist,
        default=None if must_exist else "monespace-demo.db",
        show_default=not must_exist,
        callback=check,
        help="An SQLite file path, or a storage URL (memory://, sqlite:///..., postgresql://...).",
    )


@contextmanager
def _space(db: str, **kwargs: Any) -> Iterator[Space]:
    try:
        with open_space(_url(db), **kwargs) as space:
            yield space
    except MonespaceError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monespace")
def main() -> None:
    """monespace: a reference personal health space, in the style of Mon espace santé."""


main.add_command(cda)


# --- demo ------------------------------------------------------------------------------------


@main.command()
@_db_option(must_exist=False)
@click.option("--patients", default=25, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=0, show_default=True, help="Same seed, same population.")
@click.option(
    "--serve/--no-serve",
    default=None,
    help="Serve the demo after seeding (default: yes when run from a terminal).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def demo(db: str, patients: int, seed: int, serve: bool | None, host: str, port: int) -> None:
    """Create a demo space with a synthetic population (if DB is new), print a summary and
    ready-to-use logins, then serve the demo web page and JSON API.

    The population goes through the real lifecycle: registered, minors attached to a parent,
    invited (e-mails and letters are written to DB-outbox/), a few oppose, some activate, and
    the six-week deadline opens the other spaces. Professionals are registered, records are
    fed (CDA documents, a PDF, a masked document, a result hidden until its announcement,
    the profil médical, measures) and a médecin traitant declared.

    This is a demonstration with synthetic data, not an HDS deployment.

    \b
    Examples:
      monespace demo
      monespace demo --db /tmp/demo.db --patients 200 --seed 7 --port 8080
      monespace demo --no-serve
    """
    outbox = Path(f"{Path(db).expanduser()}-outbox") if "://" not in db else Path("outbox")
    logins_file = Path(f"{Path(db).expanduser()}-logins.txt") if "://" not in db else None
    transport = f"file://{outbox.resolve()}"
    transports = {"email": transport, "letter": transport, "mssante": transport}
    clock = ManualClock(datetime.now(UTC))
    with _space(db, clock=clock, transports=transports) as space:
        summary = None
        if space.accounts.count() == 0:
            with click.progressbar(length=patients, label="Creating patients") as bar:
                summary = seed_demo(space, patients, seed=seed, progress=bar.update)
        report = space.dispatch(limit=10 * patients + 100)
        verified = space.audit.verify()
        click.echo(f"monespace {__version__} demo space: {_url(db)}")
        key_source = ENV_KEY if os.environ.get(ENV_KEY) else str(default_key_file())
        click.echo(f"  master key:          {key_source}")
        created = summary.patients if summary else 0
        click.echo(f"  patients:            {space.accounts.count()} ({created} created now)")
        states = ", ".join(f"{k} {v}" for k, v in sorted(space.accounts.count_by_state().items()))
        click.echo(f"  spaces:              {states}")
        if summary:
            click.echo(f"  minors with a parent: {summary.representations}")
            click.echo(f"  message threads:     {summary.threads}")
            click.echo(f"  documents:           {summary.documents}")
        click.echo(f"  notifications:       written to {outbox} ({report.sent} just now)")
        status = "intact" if verified.ok else f"BROKEN at event {verified.first_bad_seq}"
        click.echo(f"  audit trail:         {verified.checked} events, {status}")
    logins = _demo_logins_text(summary, db) if summary else None
    if logins is not None and logins_file is not None:
        fd = os.open(logins_file, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(logins)
    elif logins is None and logins_file is not None and logins_file.exists():
        logins = logins_file.read_text(encoding="utf-8")
    if logins:
        click.echo(logins, nl=False)
    if serve is None:
        serve = sys.stdin.isatty()
        if not serve:
            click.echo("Not serving: standard input is not a terminal (pass --serve to serve).")
    if not serve:
        click.echo("Next: monespace serve --db " + db)
        return
    _serve(db, host, port)


def _demo_logins_text(summary: Any, db: str) -> str:
    """The ready-to-use logins of a freshly seeded demo, as printed."""
    lines = ["Demo logins (synthetic identities; the page: log in with the carte Vitale):"]
    for role, text in (
        ("patient", "a patient"),
        ("representative", "a parent (reaches a child's space too)"),
    ):
        login = summary.login(role)
        if login is not None:
            lines.append(
                f"  {text}:  NIR {login.nir}  carte Vitale {login.vitale_serial}  "
                f"born {login.birth_date.isoformat()}  (space {login.patient_id})"
            )
    for pro in summary.professionals:
        if pro.role in ("treating_doctor", "unauthorised"):
            what = (
                "médecin traitant of the patient above"
                if pro.role == "treating_doctor"
                else "no authorisation: try the emergency access"
            )
            lines.append(f"  a professional:  RPPS {pro.rpps}  {pro.name} ({what})")
    activation = summary.login("activation")
    if activation is not None:
        lines.append("Try activating a space that opened by itself:")
        lines.append(
            f"  monespace activate --db {db} --nir {activation.nir} --code {activation.code} "
            f"--vitale {activation.vitale_serial} --birth-date {activation.birth_date.isoformat()}"
        )
    return "\n".join(lines) + "\n"


def _serve(db: str, host: str, port: int) -> None:
    try:
        from .server import serve  # noqa: PLC0415 - the server extra is optional
        from .server._run import is_loopback  # noqa: PLC0415
    except ImportError as exc:  # the server extra is not installed
        raise click.ClickException(
            "the demo server needs the 'server' extra: pip install 'monespace[server]'"
        ) from exc
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving the demo on http://{shown}:{port}/ (Ctrl-C to stop).")
    click.echo("This is a demonstration with synthetic data, not an HDS deployment.")
    if not is_loopback(host):
        click.echo(
            "Warning: listening beyond this machine over plain HTTP; session cookies are "
            "marked Secure and browsers will only send them over HTTPS (put a TLS proxy in "
            "front)."
        )
    with _space(db) as space:
        serve(space, host=host, port=port)


@main.command("serve")
@_db_option(must_exist=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve_command(db: str, host: str, port: int) -> None:
    """Serve the demo web page and JSON API (OpenAPI at /openapi.json) over a space.

    The logins are the demo's: carte Vitale details for patients, a bare RPPS number for
    professionals (simulated Pro Santé Connect). Not an HDS deployment.

    \b
    Examples:
      monespace serve --db monespace-demo.db
      monespace serve --db monespace-demo.db --host 127.0.0.1 --port 8080
    """
    _serve(db, host, port)


# --- audit -----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Check the tamper-evident audit trail."""


def _checkpoint_to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "seq": checkpoint.seq,
        "hash": base64.b16encode(checkpoint.hash).decode().lower(),
        "at": checkpoint.at.isoformat(),
    }


@audit.command("verify")
@_db_option(must_exist=True)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.File("r"),
    help="A checkpoint saved earlier by 'monespace audit checkpoint': also detects events "
    "removed from the end and a database rolled back.",
)
def audit_verify(db: str, checkpoint_file: Any) -> None:
    """Verify the hash chain. Exits 0 when intact, 1 naming the first bad event.

    \b
    Examples:
      monespace audit verify --db monespace.db
      monespace audit checkpoint --db monespace.db > head.json
      monespace audit verify --db monespace.db --checkpoint head.json
    """
    checkpoint = None
    if checkpoint_file is not None:
        try:
            data = json.load(checkpoint_file)
            checkpoint = Checkpoint(
                int(data["seq"]),
                base64.b16decode(data["hash"].upper()),
                _parse_time(data["at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException("the checkpoint file is malformed") from exc
    with _space(db) as space:
        report = space.audit.verify(checkpoint)
    if report.ok:
        head = report.head
        suffix = "" if head is None else f", head {head.seq} {head.hash.hex()[:16]}"
        click.echo(f"audit trail intact: {report.checked} events{suffix}")
        return
    click.echo(f"audit trail BROKEN at event {report.first_bad_seq}: {report.reason}", err=True)
    sys.exit(1)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@audit.command("checkpoint")
@_db_option(must_exist=True)
def audit_checkpoint(db: str) -> None:
    """Print the head of the chain as JSON, to keep outside the database."""
    with _space(db) as space:
        checkpoint = space.audit.checkpoint()
    if checkpoint is None:
        raise click.ClickException("the audit trail is empty")
    click.echo(json.dumps(_checkpoint_to_json(checkpoint)))


# --- keys ------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Manage the master key."""


@keys.command("rotate")
@_db_option(must_exist=True)
@click.option(
    "--no-new-key",
    is_flag=True,
    help="Do not create a key: move every data key onto the provider's current key "
    "(after MONESPACE_MASTER_KEY was changed, say).",
)
def keys_rotate(db: str, no_new_key: bool) -> None:
    """Re-wrap every data key with a new master key. Safe to run again if interrupted.

    \b
    Example:
      monespace keys rotate --db monespace.db
    """
    with _space(db) as space:
        report = space.rotate_master_key(CLI_OPERATOR, new_key=not no_new_key)
    click.echo(f"master key {report.master_key_id}: {report.rewrapped} data keys re-wrapped")


# --- operations ------------------------------------------------------------------------------


@main.command()
@_db_option(must_exist=True)
def info(db: str) -> None:
    """Show the schema version, counts and plugins of a space (no personal data)."""
    with _space(db) as space:
        click.echo(f"storage:         {space.storage!r}")
        click.echo(f"schema version:  {space.storage.schema_version}")
        click.echo(f"patients:        {space.accounts.count()}")
        click.echo(f"audit events:    {space.audit.count()}")
        click.echo(f"plugins:         {', '.join(space.plugins.names())}")


@main.command()
@_db_option(must_exist=True)
@click.option(
    "--transport",
    "transports",
    multiple=True,
    metavar="CHANNEL=URL",
    help="Where a channel's notifications go, e.g. email=file:///var/spool/monespace.",
)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1))
def dispatch(db: str, transports: tuple[str, ...], limit: int) -> None:
    """Deliver due notifications from the outbox.

    \b
    Example:
      monespace dispatch --db monespace.db --transport email=file:///tmp/outbox
    """
    mapping: dict[str, str] = {}
    for item in transports:
        channel, sep, url = item.partition("=")
        if not sep or not channel or not url:
            raise click.BadParameter(f"{item!r} is not CHANNEL=URL", param_hint="--transport")
        mapping[channel] = url
    with _space(db, transports=mapping) as space:
        report = space.dispatch(limit=limit)
    click.echo(
        f"sent {report.sent}, retrying {report.retrying}, dead {report.dead}, "
        f"no transport {report.no_transport}"
    )


# --- accounts --------------------------------------------------------------------------------


@main.command()
@_db_option(must_exist=True)
@click.option("--limit", type=click.IntRange(1), help="Invite at most this many people.")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1))
def invite(db: str, limit: int | None, batch: int) -> None:
    """Invite every registered person: information and provisional code (CSP R1111-28).

    By e-mail when an address is known, else by postal letter; for a minor, to the parent.
    Run 'monespace dispatch' (or a scheduler) to deliver them.

    \b
    Example:
      monespace invite --db monespace.db
    """
    with _space(db) as space:
        total = space.accounts.count_by_state().get("registered", 0)
        total = min(total, limit) if limit else total
        with click.progressbar(length=total, label="Inviting") as bar:
            counts = space.accounts.invite_registered(
                CLI_OPERATOR, batch=batch, limit=limit, progress=bar.update
            )
    click.echo(
        f"invited {counts['invited']} ({counts['by_email']} by e-mail, "
        f"{counts['by_letter']} by letter); skipped {counts['skipped']} without any contact"
    )


def _proof_options(function: _F) -> _F:
    for option in reversed(
        [
            click.option("--nir", required=True, help="The social security number (NIR)."),
            click.option("--code", required=True, help="The provisional code."),
            click.option("--vitale", required=True, help="The carte Vitale serial number."),
            click.option(
                "--birth-date",
                required=True,
                type=click.DateTime(["%Y-%m-%d"]),
                help="YYYY-MM-DD.",
            ),
        ]
    ):
        function = option(function)
    return function


@main.command()
@_db_option(must_exist=True)
@_proof_options
def activate(db: str, nir: str, code: str, vitale: str, birth_date: datetime) -> None:
    """Activate a space with the provisional code and the carte Vitale.

    \b
    Example:
      monespace activate --db monespace.db --nir 255081416802538 \\
          --code ABCD-EFGH-JKMN --vitale 1234567890 --birth-date 1955-08-01
    """
    with _space(db) as space:
        account = space.accounts.activate(
            nir=nir, code=code, vitale_serial=vitale, birth_date=birth_date.date()
        )
    click.echo(f"space {account.patient_id} is now {account.state}")


@main.command()
@_db_option(must_exist=True)
@_proof_options
@click.option("--proof", "proof_file", type=click.File("w"), help="Write the proof here.")
def oppose(
    db: str, nir: str, code: str, vitale: str, birth_date: datetime, proof_file: Any
) -> None:
    """Object to the creation of a space, within six weeks of the information.

    Prints (or writes) a signed proof of opposition for the person to keep.

    \b
    Example:
      monespace oppose --db monespace.db --nir 255081416802538 \\
          --code ABCD-EFGH-JKMN --vitale 1234567890 --birth-date 1955-08-01 --proof proof.json
    """
    with _space(db) as space:
        proof = space.accounts.oppose(
            nir=nir, code=code, vitale_serial=vitale, birth_date=birth_date.date()
        )
    if proof_file is not None:
        proof_file.write(proof.document + "\n")
        click.echo(f"opposition recorded; proof {proof.proof_id} written")
    else:
        click.echo(proof.document)


@main.command()
@_db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the holder who asked for closure.")
@click.option(
    "--delete", is_flag=True, help="Delete the data now rather than archive them ten years."
)
def close(db: str, nir: str, delete: bool) -> None:
    """Close a space at its holder's request (R1111-36): archived ten years, then purged.

    \b
    Examples:
      monespace close --db monespace.db --nir 255081416802538
      monespace close --db monespace.db --nir 255081416802538 --delete
    """
    with _space(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        account = space.accounts.close(CLI_OPERATOR, patient.id, delete=delete)
    if account.purge_deadline is not None:
        detail = (
            " (the data are purged at the next deadline run, at the latest "
            f"{account.purge_deadline:%Y-%m-%d})"
        )
    elif account.archive_until is not None:
        detail = f" (archived until {account.archive_until:%Y-%m-%d})"
    else:
        detail = ""
    click.echo(f"space {account.patient_id} is now {account.state}{detail}")


@main.command()
@_db_option(must_exist=True)
@click.option(
    "--now",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Apply the deadlines as of this moment (default: now). Naive times are UTC.",
)
def tick(db: str, now: datetime | None) -> None:
    """Apply every passed deadline: open spaces after six weeks, close unanswered
    suspensions, purge ended archives and requested deletions, end guardianship at majority.

    \b
    Examples:
      monespace tick --db monespace.db
      monespace tick --db monespace.db --now 2026-03-31
    """
    moment = None if now is None else (now if now.tzinfo else now.replace(tzinfo=UTC))
    with _space(db) as space:
        counts = space.tick(moment)
    if not counts:
        click.echo("nothing was due")
    for name, count in sorted(counts.items()):
        click.echo(f"{name}: {count}")


# --- legacy DMP ------------------------------------------------------------------------------


@main.group()
def dmp() -> None:
    """Migrate legacy DMPs into the spaces."""


@dmp.command("import")
@_db_option(must_exist=True)
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--ledger", "ledger_file", type=click.File("w"), help="Write the ledger as CSV.")
def dmp_import(db: str, sources: tuple[str, ...], ledger_file: Any) -> None:
    """Import legacy DMP documents from folders of CDA files and IHE XDM archives.

    Each document is attached to the space of the person its INS and identity traits name,
    or quarantined with a reason; running the same import again imports nothing twice.

    \b
    Examples:
      monespace dmp import --db monespace.db exports/dmp-2021/
      monespace dmp import --db monespace.db archive1.zip archive2.zip --ledger ledger.csv
    """
    with _space(db) as space:
        with click.progressbar(length=0, label="Importing", show_pos=True) as bar:
            report = space.dmp.import_sources(CLI_OPERATOR, sources, progress=bar.update)
        if ledger_file is not None:
            writer = csv.writer(ledger_file)
            writer.writerow(["source", "outcome", "reason", "patient_id", "document_id"])
            for line in space.dmp.ledger(CLI_OPERATOR, report.run_id):
                cells = [line.source, line.outcome, line.reason, line.patient_id, line.document_id]
                writer.writerow([formula_safe(cell) for cell in cells])
    click.echo(
        f"run {report.run_id}: imported {report.imported}, duplicates {report.duplicates}, "
        f"quarantined {report.quarantined}"
    )
    for reason, count in sorted(report.reasons.items()):
        click.echo(f"  quarantined ({reason}): {count}")


# --- record ----------------------------------------------------------------------------------


def _login_options(function: _F) -> _F:
    for option in reversed(
        [
            click.option("--nir", required=True, help="The holder's NIR."),
            click.option("--vitale", required=True, help="The carte Vitale serial number."),
            click.option(
                "--birth-date",
                required=True,
                type=click.DateTime(["%Y-%m-%d"]),
                help="YYYY-MM-DD.",
            ),
        ]
    ):
        function = option(function)
    return function


def _login(space: Space, nir: str, vitale: str, birth_date: datetime) -> Actor:
    """Demo login with the carte Vitale details (see AccountService.authenticate)."""
    return space.accounts.authenticate(nir=nir, vitale_serial=vitale, birth_date=birth_date.date())


@main.group()
def record() -> None:
    """Read and feed a patient's record (logins here are the demo's carte Vitale login)."""


@record.command("add")
@_db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the record's holder.")
@click.argument("file", type=click.File("rb"))
@click.option("--media-type", default="text/xml", show_default=True)
@click.option("--type", "type_code", help="Type code as CODE or CODE@SYSTEM-OID (CDA: read).")
@click.option("--title")
@click.option(
    "--professional",
    metavar="RPPS",
    help="Add as this professional (default: the operator, as the health insurer does).",
)
def record_add(
    db: str,
    nir: str,
    file: Any,
    media_type: str,
    type_code: str | None,
    title: str | None,
    professional: str | None,
) -> None:
    """Add a document to a record (a CDA's header fills its metadata).

    \b
    Examples:
      monespace record add --db monespace.db --nir 279035121518989 report.xml \\
          --professional 10003456786
      monespace record add --db monespace.db --nir 279035121518989 remb.pdf \\
          --media-type application/pdf --type REMB@1.2.250.1.213.1.1.4.12 --title Remboursements
    """
    code = None
    if type_code:
        value, _, system = type_code.partition("@")
        code = Code(value, system or LOINC)
    with _space(db) as space:
        actor = (
            Actor(ActorKind.PROFESSIONAL, RPPS.parse(professional).value)
            if professional
            else CLI_OPERATOR
        )
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        document = space.record.add_document(
            actor, patient.id, file.read(), media_type=media_type, type_code=code, title=title
        )
    click.echo(f"added {document.id} ({document.type_code.code}, {document.category})")


@record.command("list")
@_db_option(must_exist=True)
@_login_options
@click.option("--category", type=click.Choice([c.value for c in Category]))
@click.option("--text", help="Words that must appear in the title or comments.")
def record_list(
    db: str, nir: str, vitale: str, birth_date: datetime, category: str | None, text: str | None
) -> None:
    """List the documents of your record, newest first.

    \b
    Example:
      monespace record list --db monespace.db --nir 279035121518989 \\
          --vitale 1234567890 --birth-date 1979-03-28 --category results
    """
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        page = space.record.search(me, me.id, category=category, text=text, limit=500)
    for document in page.documents:
        flags = " [masked]" if document.masked else ""
        click.echo(
            f"{document.id}  {document.created_at:%Y-%m-%d}  {document.category:<18} "
            f"{document.title}{flags}"
        )
    click.echo(f"{page.total} document(s)")


@record.command("show")
@_db_option(must_exist=True)
@_login_options
@click.argument("document_id")
@click.option("--output", type=click.File("wb"), help="Write the content to this file.")
def record_show(
    db: str, nir: str, vitale: str, birth_date: datetime, document_id: str, output: Any
) -> None:
    """Show a document's metadata, and save its content with --output."""
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        document = space.record.get_document(me, document_id)
        if output is not None:
            output.write(space.record.read_content(me, document_id))
    click.echo(f"title:     {document.title}")
    click.echo(f"type:      {document.type_code.code} ({document.type_code.system})")
    click.echo(f"class:     {document.class_code} ({document.category})")
    click.echo(f"created:   {document.created_at.isoformat()}")
    click.echo(f"author:    {document.author.kind} {document.author.id}")
    click.echo(f"masked:    {'yes' if document.masked else 'no'}")


@record.command("mask")
@_db_option(must_exist=True)
@_login_options
@click.argument("document_id")
@click.option("--undo", is_flag=True, help="Unmask instead.")
def record_mask(
    db: str, nir: str, vitale: str, birth_date: datetime, document_id: str, undo: bool
) -> None:
    """Hide one of your documents from professionals (its author still sees it)."""
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        change = space.record.unmask if undo else space.record.mask
        document = change(me, document_id)
    click.echo(f"{document.id} is now {'masked' if document.masked else 'visible'}")


# --- access ----------------------------------------------------------------------------------


@main.group()
def access() -> None:
    """Professionals' access to records: explain a decision."""


@access.command("explain")
@_db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the record's holder.")
@click.option("--professional", "rpps", metavar="RPPS", help="Explain for this professional.")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in AccessMode]),
    default="normal",
    show_default=True,
)
@click.option("--as-patient", is_flag=True, help="Explain for the holder instead.")
@click.option("--document", "document_id", help="A document id (default: the record).")
@click.option(
    "--action",
    type=click.Choice(["document.read", "document.search", "patient.read"]),
    default=None,
    help="Default: document.read with --document, document.search without.",
)
def access_explain(
    db: str,
    nir: str,
    rpps: str | None,
    mode: str,
    as_patient: bool,
    document_id: str | None,
    action: str | None,
) -> None:
    """Say whether an actor may read a record or a document, and which rule decides.

    \b
    Examples:
      monespace access explain --db monespace.db --nir 279035121518989 \\
          --professional 10003456786 --document <id>
      monespace access explain --db monespace.db --nir 279035121518989 --as-patient
    """
    if bool(rpps) == as_patient:
        raise click.UsageError("give either --professional RPPS or --as-patient")
    with _space(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        actor = (
            Actor.patient(patient.id)
            if as_patient
            else Actor(ActorKind.PROFESSIONAL, RPPS.parse(rpps or "").value, mode=AccessMode(mode))
        )
        chosen = action or ("document.read" if document_id else "document.search")
        explanation = space.access.explain(
            actor, chosen, patient_id=patient.id, document_id=document_id
        )
    verdict = "ALLOWED" if explanation.allowed else "DENIED"
    click.echo(f"{verdict} by rule {explanation.rule}")
    pro = explanation.facts.professional
    if pro is not None:
        click.echo(
            f"  professional: registered={pro.registered} profession={pro.profession} "
            f"grant={pro.grant} blocked={pro.blocked} emergency={pro.emergency}"
        )
        click.echo(
            f"  patient settings: object_all={pro.object_all} "
            f"object_emergency={pro.object_emergency} mask_all={pro.mask_all}"
        )
    document = explanation.facts.document
    if document is not None:
        click.echo(
            f"  document: class={document.class_code} type={document.type_code} "
            f"masked={document.masked} confidentiality={document.confidentiality}"
        )


# --- messages --------------------------------------------------------------------------------


@main.group()
def messages() -> None:
    """Secure messaging: professionals write, patients read and reply (demo logins)."""


def _attachments(paths: tuple[str, ...], media_types: tuple[str, ...]) -> list[NewAttachment]:
    if len(media_types) > len(paths):
        raise click.UsageError("more --media-type than --attach")
    files = []
    for index, path in enumerate(paths):
        file = Path(path)
        media = (
            media_types[index]
            if index < len(media_types)
            else mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        files.append(NewAttachment(file.name, media, file.read_bytes()))
    return files


@messages.command("send")
@_db_option(must_exist=True)
@click.option(
    "--from-rpps", "rpps", required=True, metavar="RPPS", help="The professional who writes."
)
@click.option("--to-nir", "nir", required=True, help="The NIR of the patient written to.")
@click.option("--subject", help="Required for a new thread; default 'Re: ...' in --thread.")
@click.option(
    "--body-file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="The text of the message ('-' for standard input).",
)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file to attach (repeatable).",
)
@click.option(
    "--media-type",
    "media_types",
    multiple=True,
    help="The media type of each --attach, in order (default: from the file name).",
)
@click.option("--close", is_flag=True, help="Close the thread to replies (X-MSS-MES: FIN).")
@click.option("--thread", "thread_id", help="Write in this thread instead of starting one.")
def messages_send(
    db: str,
    rpps: str,
    nir: str,
    subject: str | None,
    body_file: Any,
    attach: tuple[str, ...],
    media_types: tuple[str, ...],
    close: bool,
    thread_id: str | None,
) -> None:
    """Write to a patient as a professional (who must be in the directory).

    The patient is told by e-mail that a message is waiting (queued: run 'monespace
    dispatch'); the notice never says what the message is about.

    \b
    Examples:
      monespace messages send --db monespace.db --from-rpps 10003456786 \\
          --to-nir 279035121518989 --subject "Vos résultats" --body-file note.txt \\
          --attach resultats.pdf
      echo "Merci de reprendre rendez-vous." | monespace messages send --db monespace.db \\
          --from-rpps 10003456786 --to-nir 279035121518989 --thread <id> --body-file -
    """
    body = body_file.read()
    files = _attachments(attach, media_types)
    actor = Actor(ActorKind.PROFESSIONAL, RPPS.parse(rpps).value)
    with _space(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        if thread_id is None:
            if not subject:
                raise click.UsageError("--subject is required to start a thread")
            message = space.messaging.start_thread(
                actor, patient.id, subject=subject, body=body, attachments=files, close=close
            )
        else:
            message = space.messaging.reply(
                actor, thread_id, body=body, subject=subject, attachments=files, close=close
            )
    state = " (closed to replies)" if close else ""
    click.echo(f"sent {message.id} in thread {message.thread_id}{state}")


@messages.command("list")
@_db_option(must_exist=True)
@_login_options
@click.option("--archived", is_flag=True, help="List the archived threads instead of the inbox.")
@click.option("--correspondent", help="An RPPS number, an MSSanté address or part of a name.")
@click.option("--text", help="Words that must appear in the subject.")
def messages_list(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    archived: bool,
    correspondent: str | None,
    text: str | None,
) -> None:
    """List your threads, most recent first, with their unread messages.

    \b
    Example:
      monespace messages list --db monespace.db --nir 279035121518989 \\
          --vitale 1234567890 --birth-date 1979-03-15
    """
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        page = space.messaging.inbox(
            me, archived=archived, correspondent=correspondent, text=text, limit=500
        )
    for thread in page.threads:
        who = thread.professional.name or thread.professional.id
        flags = " [closed]" if thread.closed else ""
        unread = f"{thread.unread} new" if thread.unread else "read"
        click.echo(
            f"{thread.id}  {thread.last_message_at:%Y-%m-%d %H:%M}  {unread:<7} "
            f"{who}: {thread.subject}{flags}"
        )
    click.echo(f"{page.total} thread(s), {page.unread} unread message(s)")


@messages.command("show")
@_db_option(must_exist=True)
@_login_options
@click.argument("thread_id")
def messages_show(db: str, nir: str, vitale: str, birth_date: datetime, thread_id: str) -> None:
    """Read a thread (its messages are marked read)."""
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        view = space.messaging.thread(me, thread_id)
    thread = view.thread
    click.echo(f"{thread.subject}  ({thread.professional.name or thread.professional.id})")
    if thread.closed:
        click.echo("This thread is closed to replies.")
    for message in view.messages:
        who = "you" if not message.from_professional else message.sender_id
        click.echo(f"\n--- {message.sent_at:%Y-%m-%d %H:%M} {who}")
        click.echo(message.body.rstrip("\n"))
        for attachment in message.attachments:
            click.echo(
                f"[attachment {attachment.id}: {attachment.filename}, {attachment.media_type}, "
                f"{attachment.size} bytes]"
            )


@messages.command("reply")
@_db_option(must_exist=True)
@_login_options
@click.argument("thread_id")
@click.option(
    "--body-file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="The text of the reply ('-' for standard input).",
)
def messages_reply(
    db: str, nir: str, vitale: str, birth_date: datetime, thread_id: str, body_file: Any
) -> None:
    """Reply in a thread (not in one the professional closed)."""
    body = body_file.read()
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        message = space.messaging.reply(me, thread_id, body=body)
    click.echo(f"sent {message.id} in thread {message.thread_id}")


@messages.command("file")
@_db_option(must_exist=True)
@_login_options
@click.argument("attachment_id")
@click.option("--title", help="The document's title (default: the CDA's, or the file name).")
def messages_file(
    db: str, nir: str, vitale: str, birth_date: datetime, attachment_id: str, title: str | None
) -> None:
    """Save an attachment you received into your medical record."""
    with _space(db) as space:
        me = _login(space, nir, vitale, birth_date)
        document = space.messaging.file_attachment(me, attachment_id, title=title)
    click.echo(f"filed as document {document.id} ({document.type_code.code}, {document.category})")
