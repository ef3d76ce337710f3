"""``monespace demo`` and ``monespace serve``: seed a demo space, serve the demo web page."""

from __future__ import annotations

import errno
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .. import __version__
from .._space import Space
from ..catalogue import App
from ..clock import ManualClock
from ..crypto import ENV_KEY, default_key_file
from ..errors import ValidationError
from ..synth import (
    PHASES,
    DemoCheckpoint,
    DemoSummary,
    checkpoint_from_json,
    checkpoint_to_json,
    demo_work,
    reference_demo_app,
    seed_demo,
)
from ._common import db_option, local_path, open_db, storage_url, write_private
from ._progress import Progress

__all__ = ["demo", "serve_command"]


@click.command()
@db_option(must_exist=False)
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
    the profil médical, measures) and a médecin traitant declared. A sample app is
    referenced, with loopback redirect URIs, and its client id printed: try the OAuth flow
    against the demo with it.

    This is a demonstration with synthetic data, not an HDS deployment.

    \b
    Examples:
      monespace demo
      monespace demo --db /tmp/demo.db --patients 200 --seed 7 --port 8080
      monespace demo --no-serve
    """
    outbox = Path(f"{Path(db).expanduser()}-outbox") if "://" not in db else Path("outbox")
    local = local_path(db)
    logins_file = None if local is None else Path(f"{local}-logins.txt")
    checkpoint_file = None if local is None else Path(f"{local}-demo-checkpoint.json")
    transport = f"file://{outbox.resolve()}"
    transports = {"email": transport, "letter": transport, "mssante": transport}
    clock = ManualClock(datetime.now(UTC))
    if serve is None:
        serve = sys.stdin.isatty()
        if not serve:
            click.echo("Not serving: standard input is not a terminal (pass --serve to serve).")
    # Bound before the seeding: a port in use is refused before any waiting.
    sock = _listen(host, port) if serve else None
    try:
        with open_db(db, clock=clock, transports=transports) as space:
            summary, resumed = _seed_or_resume(space, patients, seed, checkpoint_file)
            # A referenced app, which the demo patient connects when the demo is seeded.
            patient = summary.login("patient") if summary else None
            demo_app = reference_demo_app(space, patient_id=patient.patient_id if patient else None)
            report = space.dispatch(limit=10 * (summary.patients if summary else 0) + 100)
            _print_summary(space, db, summary, outbox, report.sent, resumed=resumed)
    except BaseException as exc:
        if sock is not None:
            sock.close()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        if checkpoint_file is None:
            raise click.ClickException(
                "interrupted; a demo stored at a URL cannot be resumed: start from a new one"
            ) from None
        click.echo(
            f"\nInterrupted. Run the same command again to continue from {checkpoint_file}.",
            err=True,
        )
        raise click.exceptions.Exit(130) from None
    logins = _demo_logins_text(summary, db) if summary else None
    if logins is not None and logins_file is not None:
        write_private(logins_file, logins)
    elif logins is None and logins_file is not None and logins_file.exists():
        logins = logins_file.read_text(encoding="utf-8")
    if logins:
        click.echo(logins, nl=False)
    served_port = sock.getsockname()[1] if sock is not None else port
    click.echo(_demo_app_text(demo_app, f"http://{_shown(host)}:{served_port}"), nl=False)
    if sock is None:
        click.echo("Next: monespace serve --db " + shlex.quote(db))
        return
    _serve(db, host, sock)


def _seed_or_resume(
    space: Space, patients: int, seed: int, checkpoint_file: Path | None
) -> tuple[DemoSummary | None, bool]:
    """Seed a new space, or finish the seeding an interrupted run left: the summary
    (``None`` when the space was seeded already) and whether a run was resumed."""
    checkpoint = None
    if checkpoint_file is not None and checkpoint_file.exists():
        try:
            checkpoint = checkpoint_from_json(checkpoint_file.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise click.ClickException(
                f"{checkpoint_file}: {exc}; delete it and the database to seed a new demo"
            ) from exc
    existing = space.accounts.count()
    if checkpoint is None and existing:
        return None, False
    if checkpoint is not None and not existing and checkpoint.done:
        checkpoint = None  # left by a database since deleted: start over
    if checkpoint is not None:
        steps = f"{len(checkpoint.done)} of {len(PHASES)} steps done"
        click.echo(
            f"Resuming the interrupted demo ({checkpoint.count} patients, seed "
            f"{checkpoint.seed}, {steps}).",
            err=True,
        )
        patients = checkpoint.count

    def keep(state: DemoCheckpoint) -> None:
        if checkpoint_file is not None:
            write_private(checkpoint_file, checkpoint_to_json(state))

    with Progress("Seeding the demo", demo_work(patients)) as progress:
        summary = seed_demo(
            space, patients, seed=seed, progress=progress, checkpoint=checkpoint, save=keep
        )
    if checkpoint_file is not None:
        checkpoint_file.unlink(missing_ok=True)
    return summary, checkpoint is not None


def _print_summary(
    space: Space, db: str, summary: DemoSummary | None, outbox: Path, sent: int, *, resumed: bool
) -> None:
    verified = space.audit.verify()
    click.echo(f"monespace {__version__} demo space: {storage_url(db)}")
    key_source = ENV_KEY if os.environ.get(ENV_KEY) else str(default_key_file())
    click.echo(f"  master key:          {key_source}")
    created = summary.patients if summary else 0
    how = "created by this demo, resumed" if resumed else "created now"
    click.echo(f"  patients:            {space.accounts.count()} ({created} {how})")
    states = ", ".join(f"{k} {v}" for k, v in sorted(space.accounts.count_by_state().items()))
    click.echo(f"  spaces:              {states}")
    if summary:
        click.echo(f"  minors with a parent: {summary.representations}")
        click.echo(f"  message threads:     {summary.threads}")
        click.echo(f"  documents:           {summary.documents}")
    click.echo(f"  notifications:       written to {outbox} ({sent} just now)")
    status = "intact" if verified.ok else f"BROKEN at event {verified.first_bad_seq}"
    click.echo(f"  audit trail:         {verified.checked} events, {status}")


def _demo_logins_text(summary: DemoSummary, db: str) -> str:
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
            f"  monespace activate --db {shlex.quote(db)} --nir {activation.nir} "
            f"--code {activation.code} "
            f"--vitale {activation.vitale_serial} --birth-date {activation.birth_date.isoformat()}"
        )
    return "\n".join(lines) + "\n"


def _demo_app_text(app: App, base: str) -> str:
    """What a vendor needs to try the OAuth flow against the demo, as printed."""
    return "\n".join(
        [
            "A referenced demo app, to try the OAuth flow (public client, PKCE S256):",
            f"  client id:       {app.client_id}  ({app.name})",
            f"  redirect URIs:   {', '.join(app.redirect_uris)}",
            f"  scopes:          {' '.join(sorted(app.scopes))}",
            f"  server metadata: {base}/.well-known/oauth-authorization-server",
            f"  catalogue page:  {base}/catalogue",
            "  connected by:    the patient above (measures): see their page"
            " « Applications connectées »",
            "",
        ]
    )


def _listen(host: str, port: int) -> Any:
    """The bound socket the demo will serve on; a port in use is refused here, before
    anything is announced (or seeded)."""
    try:
        from ..server import listen  # noqa: PLC0415 - an optional extra
    except ImportError as exc:  # the server extra is not installed
        raise click.ClickException(
            "the demo server needs the 'server' extra: pip install 'monespace[server]'"
        ) from exc
    try:
        return listen(host, port)
    except OSError as exc:
        reason = exc.strerror or "the address cannot be used"
        hint = (
            "another server listens there: stop it, or choose another --port"
            if exc.errno == errno.EADDRINUSE
            else "check --host"
        )
        raise click.ClickException(
            f"cannot listen on {_shown(host)}:{port}: {reason} ({hint})"
        ) from None


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve(db: str, host: str, sock: Any, workers: int = 1) -> None:
    from ..server import is_loopback, serve  # noqa: PLC0415 - an optional extra

    port = sock.getsockname()[1]
    with sock, open_db(db) as space:
        if workers > 1 and not space.shared_by_processes:
            raise click.ClickException(
                f"--workers {workers} needs a database server that every worker writes to "
                "(--db postgresql://...); an SQLite file or a memory space serves one "
                "process: leave --workers at 1"
            )
        processes = f" with {workers} worker processes" if workers > 1 else ""
        click.echo(
            f"Serving the demo on http://{_shown(host)}:{port}/{processes} (Ctrl-C to stop)."
        )
        click.echo("This is a demonstration with synthetic data, not an HDS deployment.")
        if not is_loopback(host):
            click.echo(
                "Warning: listening beyond this machine over plain HTTP; session cookies are "
                "marked Secure and browsers will only send them over HTTPS (put a TLS proxy in "
                "front)."
            )
        serve(space, host=host, port=port, sock=sock, workers=workers)


@click.command("serve")
@db_option(must_exist=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port; more than 1 needs --db postgresql://...",
)
def serve_command(db: str, host: str, port: int, workers: int) -> None:
    """Serve the demo web page and JSON API (OpenAPI at /openapi.json) over a space.

    The logins are the demo's: carte Vitale details for patients, a bare RPPS number for
    professionals (simulated Pro Santé Connect). Not an HDS deployment. Sessions and
    attempt counters live in the database, so several worker processes (--workers, on
    PostgreSQL) share them, and a restart logs nobody out.

    \b
    Examples:
      monespace serve --db monespace-demo.db
      monespace serve --db monespace-demo.db --host 127.0.0.1 --port 8080
      monespace serve --db postgresql://127.0.0.1/monespace --workers 4
    """
    _serve(db, host, _listen(host, port), workers)
