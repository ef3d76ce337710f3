"""``monespace storage copy``: move a space between stores (SQLite to PostgreSQL, or back)."""

from __future__ import annotations

import click

from .._space import copy_space
from ..errors import MonespaceError
from ._common import open_db, storage_url
from ._errors import library_error

__all__ = ["storage"]


@click.group()
def storage() -> None:
    """Move a space between storage backends."""


@storage.command("copy")
@click.argument("source")
@click.argument("target")
def storage_copy(source: str, target: str) -> None:
    """Copy the space at SOURCE into TARGET (SQLite file or URL, postgresql://...), patient
    by patient, then check that every row (ciphertexts and content hashes, wrapped keys,
    audit events) is the same on both sides and that TARGET's audit trail verifies.

    TARGET is created and migrated when missing. Interrupted, the same command goes on
    where it stopped (a patient is copied in one transaction). Needs the master key, as
    every command, to verify the trail: the rows themselves are copied sealed.

    \b
    Example:
      monespace storage copy monespace.db 'postgresql://app@db.example/monespace'
    """
    try:
        with click.progressbar(length=1, label="patients", show_pos=True) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            report, different = copy_space(
                storage_url(source), storage_url(target), progress=progress
            )
    except MonespaceError as exc:
        raise library_error(exc) from exc
    if different:
        raise click.ClickException(
            f"the copy differs from its source in: {', '.join(different)}; drop the target "
            "and copy again (the source is unchanged)"
        )
    with open_db(target) as space:
        verified = space.audit.verify()
    if not verified.ok:
        raise click.ClickException(
            f"the copied audit trail does not verify: event {verified.first_bad_seq}, "
            f"{verified.reason}; drop the target, run `monespace audit verify` on the "
            "source, and copy again"
        )
    click.echo(
        f"copied {report.patients} patients ({report.skipped} already there), {report.rows} "
        f"rows; every table identical; audit trail intact ({verified.checked} events)"
    )
