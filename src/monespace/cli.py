"""The ``monespace`` command line.

Every command is a thin edge over the services: it opens a space, calls the Python API and
prints the outcome. Errors from the library are shown as one line, without a traceback.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from ._space import Space
from ._space import open as open_space
from .actors import Actor
from .audit import Checkpoint
from .crypto import default_key_file
from .errors import MonespaceError
from .synth import synthetic_identities

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


# --- demo ------------------------------------------------------------------------------------


@main.command()
@_db_option(must_exist=False)
@click.option("--patients", default=25, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=0, show_default=True, help="Same seed, same population.")
def demo(db: str, patients: int, seed: int) -> None:
    """Create a demo space with synthetic patients (if DB is new) and print a summary.

    \b
    Examples:
      monespace demo
      monespace demo --db /tmp/demo.db --patients 200 --seed 7
    """
    outbox = Path(f"{Path(db).expanduser()}-outbox") if "://" not in db else Path("outbox")
    with _space(db, transports={"email": f"file://{outbox.resolve()}"}) as space:
        created = 0
        if space.accounts.count() == 0:
            created = _seed(space, patients, seed)
        report = space.dispatch(limit=10 * patients)
        verified = space.audit.verify()
        click.echo(f"monespace {__version__} demo space: {_url(db)}")
        click.echo(f"  master key file:     {default_key_file()}")
        click.echo(f"  patients:            {space.accounts.count()} ({created} created now)")
        click.echo(f"  notifications sent:  {report.sent} (written to {outbox})")
        status = "intact" if verified.ok else f"BROKEN at event {verified.first_bad_seq}"
        click.echo(f"  audit trail:         {verified.checked} events, {status}")
        click.echo("Next: monespace audit verify --db " + db)


def _seed(space: Space, count: int, seed: int) -> int:
    operator = Actor.system("demo-seed")
    with click.progressbar(
        synthetic_identities(count, seed=seed), length=count, label="Creating patients"
    ) as identities:
        for identity in identities:
            patient = space.accounts.register_patient(operator, identity)
            # The health insurer feeds the reimbursement history (CSP R1111-42 1° d).
            space.contents.put(
                operator,
                patient.id,
                b"Historique de remboursements (synthetique)\n",
                media_type="text/plain",
            )
    return count


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
