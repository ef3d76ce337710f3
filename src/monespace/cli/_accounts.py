"""The life of a space: ``invite``, ``activate``, ``oppose``, ``close``, ``tick``, and the
migration of legacy DMPs (``dmp import``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ..errors import ValidationError
from ..interop.dmp import count_legacy_documents, formula_safe
from ..storage import Slice
from ._common import (
    CLI_OPERATOR,
    db_option,
    force_option,
    open_db,
    output_target,
    paris_date,
    written,
)
from ._progress import Progress

__all__ = ["activate", "close", "dmp", "invite", "oppose", "tick"]

_F = TypeVar("_F", bound=Callable[..., Any])


# --- accounts --------------------------------------------------------------------------------


def _slice_option(function: _F) -> _F:
    """``--slice I/N``: a command's share of the patients when N processes run it at once."""
    option = click.option(
        "--slice",
        "part",
        metavar="I/N",
        help="Only the patients of slice I of N (0 <= I < N); run the N slices in parallel.",
    )
    return option(function)


def _chosen_slice(part: str | None) -> Slice | None:
    try:
        return None if part is None else Slice.parse(part)
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="--slice") from None


@click.command()
@db_option(must_exist=True)
@click.option("--limit", type=click.IntRange(1), help="Invite at most this many people.")
@click.option(
    "--batch",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="People invited per transaction (the bar moves after each).",
)
@_slice_option
def invite(db: str, limit: int | None, batch: int, part: str | None) -> None:
    """Invite every registered person: information and provisional code (CSP R1111-28).

    By e-mail when an address is known, else by postal letter; for a minor, to the parent.
    Run 'monespace dispatch' (or a scheduler) to deliver them.

    With --slice i/n, only the registered people of slice i of n (by a hash of their id):
    run the n slices at once, in as many processes, to share the work.

    \b
    Examples:
      monespace invite --db monespace.db
      monespace invite --db monespace.db --slice 0/2 &
      monespace invite --db monespace.db --slice 1/2
    """
    chosen = _chosen_slice(part)
    with open_db(db) as space:
        registered = space.accounts.count_by_state().get("registered", 0)
        # A slice holds about its share of the registered people (the bar's estimate).
        total = registered if chosen is None else -(-registered // chosen.count)
        total = min(total, limit) if limit else total
        with Progress("Inviting", total) as progress:
            counts = space.accounts.invite_registered(
                CLI_OPERATOR, batch=batch, limit=limit, progress=progress.advance, part=chosen
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


@click.command()
@db_option(must_exist=True)
@_proof_options
def activate(db: str, nir: str, code: str, vitale: str, birth_date: datetime) -> None:
    """Activate a space with the provisional code and the carte Vitale.

    \b
    Example:
      monespace activate --db monespace.db --nir 255081416802538 \\
          --code ABCD-EFGH-JKMN --vitale 1234567890 --birth-date 1955-08-01
    """
    with open_db(db) as space:
        account = space.accounts.activate(
            nir=nir, code=code, vitale_serial=vitale, birth_date=birth_date.date()
        )
    click.echo(f"space {account.patient_id} is now {account.state}")


@click.command()
@db_option(must_exist=True)
@_proof_options
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(dir_okay=False),
    help="Write the proof here (an existing file only with --force).",
)
@force_option
def oppose(
    db: str,
    nir: str,
    code: str,
    vitale: str,
    birth_date: datetime,
    proof_file: str | None,
    force: bool,
) -> None:
    """Object to the creation of a space, within six weeks of the information.

    Prints (or writes) a signed proof of opposition for the person to keep.

    \b
    Example:
      monespace oppose --db monespace.db --nir 255081416802538 \\
          --code ABCD-EFGH-JKMN --vitale 1234567890 --birth-date 1955-08-01 --proof proof.json
    """
    target = (
        None if proof_file is None else output_target(proof_file, force=force, option="--proof")
    )
    with open_db(db) as space:
        proof = space.accounts.oppose(
            nir=nir, code=code, vitale_serial=vitale, birth_date=birth_date.date()
        )
    if target is not None:
        target.write_text(proof.document + "\n", encoding="utf-8")
        click.echo(f"opposition recorded; {written(target, f'proof {proof.proof_id}')}")
    else:
        click.echo(proof.document)


@click.command()
@db_option(must_exist=True)
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
    with open_db(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        account = space.accounts.close(CLI_OPERATOR, patient.id, delete=delete)
    if account.purge_deadline is not None:
        detail = (
            " (the data are purged at the next deadline run, at the latest "
            f"{paris_date(account.purge_deadline)})"
        )
    elif account.archive_until is not None:
        detail = f" (archived until {paris_date(account.archive_until)})"
    else:
        detail = ""
    click.echo(f"space {account.patient_id} is now {account.state}{detail}")


@click.command()
@db_option(must_exist=True)
@click.option(
    "--now",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Apply the deadlines as of this moment (default: now). Naive times are UTC.",
)
@_slice_option
def tick(db: str, now: datetime | None, part: str | None) -> None:
    """Apply every passed deadline: open spaces after six weeks, close unanswered
    suspensions, purge ended archives and requested deletions, end guardianship at majority.

    With --slice i/n, only the patients of slice i of n (by a hash of their id): run the n
    slices at once, in as many processes, to share the work.

    \b
    Examples:
      monespace tick --db monespace.db
      monespace tick --db monespace.db --now 2026-03-31
      monespace tick --db postgresql://127.0.0.1/monespace --slice 0/4
    """
    moment = None if now is None else (now if now.tzinfo else now.replace(tzinfo=UTC))
    chosen = _chosen_slice(part)
    with open_db(db) as space:
        counts = space.tick(moment, slice=chosen)
    if not counts:
        click.echo("nothing was due")
    for name, count in sorted(counts.items()):
        click.echo(f"{name}: {count}")


# --- legacy DMP ------------------------------------------------------------------------------


@click.group()
def dmp() -> None:
    """Migrate legacy DMPs into the spaces."""


@dmp.command("import")
@db_option(must_exist=True)
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--ledger",
    "ledger_file",
    type=click.Path(dir_okay=False),
    help="Write the ledger as CSV (an existing file only with --force).",
)
@force_option
def dmp_import(db: str, sources: tuple[str, ...], ledger_file: str | None, force: bool) -> None:
    """Import legacy DMP documents from folders of CDA files and IHE XDM archives.

    Each document is attached to the space of the person its INS and identity traits name,
    or quarantined with a reason; running the same import again imports nothing twice.

    \b
    Examples:
      monespace dmp import --db monespace.db exports/dmp-2021/
      monespace dmp import --db monespace.db archive1.zip archive2.zip --ledger ledger.csv
    """
    # The documents are counted first (a folder's listing, an archive's directory: nothing
    # is decompressed), so that the bar has its true length.
    target = (
        None if ledger_file is None else output_target(ledger_file, force=force, option="--ledger")
    )
    total = sum(count_legacy_documents(source) for source in sources)
    with open_db(db) as space:
        with Progress("Importing", total) as progress:
            report = space.dmp.import_sources(CLI_OPERATOR, sources, progress=progress.advance)
        if target is not None:
            lines = space.dmp.ledger(CLI_OPERATOR, report.run_id)
            with target.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["source", "outcome", "reason", "patient_id", "document_id"])
                for line in lines:
                    cells = [
                        line.source,
                        line.outcome,
                        line.reason,
                        line.patient_id,
                        line.document_id,
                    ]
                    writer.writerow([formula_safe(cell) for cell in cells])
            click.echo(written(target, f"the ledger of {len(lines)} lines"), err=True)
    click.echo(
        f"run {report.run_id}: imported {report.imported}, duplicates {report.duplicates}, "
        f"quarantined {report.quarantined}"
    )
    for reason, count in sorted(report.reasons.items()):
        click.echo(f"  quarantined ({reason}): {count}")
