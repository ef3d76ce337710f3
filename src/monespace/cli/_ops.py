"""Operations on a space: ``audit``, ``keys``, ``info`` and ``dispatch``."""

from __future__ import annotations

import sys

import click

from ..audit import checkpoints_to_json
from ._common import (
    CLI_OPERATOR,
    db_option,
    force_option,
    local_path,
    open_db,
    output_target,
    paris_time,
    written,
)
from ._progress import Progress

__all__ = ["audit", "dispatch", "info", "keys"]


# --- audit -----------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """Check the tamper-evident audit trail and its signed checkpoints."""


@audit.command("verify")
@db_option(must_exist=True)
@click.option(
    "--checkpoints",
    "checkpoints_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Signed checkpoints exported earlier by 'monespace audit checkpoint --export', "
    "kept outside the database: also detects a trail rolled back or deleted together "
    "with the checkpoints stored beside it.",
)
def audit_verify(db: str, checkpoints_file: str | None) -> None:
    """Verify the keyed chain, its head seal and the signed checkpoints. Exits 0 when
    intact, 1 naming the first bad event and why.

    Needs the master key (and the previous ones, after a rotation): the chain is keyed.

    \b
    Examples:
      monespace audit verify --db monespace.db
      monespace audit checkpoint --db monespace.db --export checkpoints.json
      monespace audit verify --db monespace.db --checkpoints checkpoints.json
    """
    with open_db(db) as space:
        external = (
            [] if checkpoints_file is None else space.audit.load_checkpoints(checkpoints_file)
        )
        report = space.audit.verify(external)
    anchor = report.anchor
    anchored = (
        "no signed checkpoint"
        if anchor is None
        else f"anchored to signed checkpoint {anchor.number} ({report.anchor_source}, "
        f"{paris_time(anchor.at, seconds=True)})"
    )
    if report.ok:
        head = report.head
        suffix = "" if head is None else f", head {head.seq} {head.hash.hex()[:16]}"
        click.echo(f"audit trail intact: {report.checked} events{suffix}; {anchored}")
        return
    where = "" if report.first_bad_seq is None else f" at event {report.first_bad_seq}"
    click.echo(f"audit trail BROKEN{where}: {report.reason}", err=True)
    click.echo(f"{report.checked} events checked; {anchored}", err=True)
    sys.exit(1)


@audit.command("checkpoint")
@db_option(must_exist=True)
@click.option(
    "--export",
    "export_file",
    type=click.Path(dir_okay=False),
    help="Write every signed checkpoint (and the public keys that sign them) to this file, "
    "to keep where whoever can write the database cannot (an existing file only with "
    "--force).",
)
@force_option
def audit_checkpoint(db: str, export_file: str | None, force: bool) -> None:
    """Sign and store a checkpoint of the head of the trail now; print it as JSON, or
    export every checkpoint to a file.

    \b
    Examples:
      monespace audit checkpoint --db monespace.db
      monespace audit checkpoint --db monespace.db --export /mnt/worm/checkpoints.json
    """
    target = (
        None if export_file is None else output_target(export_file, force=force, option="--export")
    )
    with open_db(db) as space:
        checkpoint = space.audit.checkpoint()
        if checkpoint is None:
            raise click.ClickException(
                "the audit trail is empty: there is nothing to sign yet; act on the space first"
            )
        if target is not None:
            count = space.audit.export_checkpoints(target)
            click.echo(written(target, f"{count} signed checkpoints"))
            return
        public_keys = space.audit.public_keys()
    click.echo(checkpoints_to_json([checkpoint], public_keys), nl=False)


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
        total = space.data_keys_to_rewrap(new_key=not no_new_key)
        with Progress("Re-wrapping data keys", total) as progress:
            report = space.rotate_master_key(
                CLI_OPERATOR, new_key=not no_new_key, batch=100, progress=progress.advance
            )
    click.echo(f"master key {report.master_key_id}: {report.rewrapped} data keys re-wrapped")


# --- operations ------------------------------------------------------------------------------


@click.command()
@db_option(must_exist=True)
def info(db: str) -> None:
    """Show the schema version, counts and plugins of a space (no personal data).

    It never creates a database: a path (or an sqlite:/// URL) that does not exist, or an
    empty file, is an error rather than a new space.

    \b
    Example:
      monespace info --db monespace.db
    """
    path = local_path(db)
    if path is not None and path.is_file() and path.stat().st_size == 0:
        # SQLite would take an empty file for a new database and write the schema in it.
        raise click.BadParameter(f"{path} is empty, not a monespace database", param_hint="--db")
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
