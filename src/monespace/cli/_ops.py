"""Operations on a space: ``audit``, ``keys``, ``info`` and ``dispatch``."""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any

import click

from ..audit import Checkpoint
from ._common import CLI_OPERATOR, db_option, open_db

__all__ = ["audit", "dispatch", "info", "keys"]


# --- audit -----------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """Check the tamper-evident audit trail."""


def _checkpoint_to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "seq": checkpoint.seq,
        "hash": base64.b16encode(checkpoint.hash).decode().lower(),
        "at": checkpoint.at.isoformat(),
    }


@audit.command("verify")
@db_option(must_exist=True)
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
    with open_db(db) as space:
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
@db_option(must_exist=True)
def audit_checkpoint(db: str) -> None:
    """Print the head of the chain as JSON, to keep outside the database."""
    with open_db(db) as space:
        checkpoint = space.audit.checkpoint()
    if checkpoint is None:
        raise click.ClickException("the audit trail is empty")
    click.echo(json.dumps(_checkpoint_to_json(checkpoint)))


# --- keys ------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Manage the master key."""


@keys.command("rotate")
@db_option(must_exist=True)
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
    with open_db(db) as space:
        report = space.rotate_master_key(CLI_OPERATOR, new_key=not no_new_key)
    click.echo(f"master key {report.master_key_id}: {report.rewrapped} data keys re-wrapped")


# --- operations ------------------------------------------------------------------------------


@click.command()
@db_option(must_exist=True)
def info(db: str) -> None:
    """Show the schema version, counts and plugins of a space (no personal data)."""
    with open_db(db) as space:
        click.echo(f"storage:         {space.storage_summary()}")
        click.echo(f"schema version:  {space.schema_version()}")
        click.echo(f"patients:        {space.accounts.count()}")
        click.echo(f"audit events:    {space.audit.count()}")
        click.echo(f"plugins:         {', '.join(space.plugins.names())}")


@click.command()
@db_option(must_exist=True)
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
    with open_db(db, transports=mapping) as space:
        report = space.dispatch(limit=limit)
    click.echo(
        f"sent {report.sent}, retrying {report.retrying}, dead {report.dead}, "
        f"no transport {report.no_transport}"
    )
