"""``monespace fhir``: inspect FHIR files, export a record as a Bundle, import bundles."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from ..interop.fhir import FhirError, export_bundle, import_fhir, inspect_file
from ._common import db_option, force_option, login, login_options, open_db, output_target, written

__all__ = ["fhir"]


@click.group()
def fhir() -> None:
    """FHIR R4: inspect files, export a record, import bundles (needs the 'fhir' extra)."""


@fhir.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, one a line.")
def fhir_inspect(files: tuple[str, ...], as_json: bool) -> None:
    """What each FHIR JSON file is: resource type, id, profiles, bundle type and entries.

    A file that cannot be read is reported (``error``) and the next one is read; the exit
    status is then 1.
    """
    failed = False
    for file in files:
        summary = inspect_file(file)
        failed |= summary["error"] is not None
        if as_json:
            click.echo(json.dumps(summary, ensure_ascii=False))
        elif summary["error"] is not None:
            click.echo(f"{file}: error: {summary['error']}")
        else:
            entries = "" if summary["entries"] is None else f" ({summary['entries']} entries)"
            kind = summary["bundle_type"] or ", ".join(summary["profile"]) or "-"
            click.echo(f"{file}: {summary['resourceType']}/{summary['id']} {kind}{entries}")
    if failed:
        raise SystemExit(1)


@fhir.command("export")
@db_option(must_exist=True)
@login_options
@click.option("--patient", help="The space to export (default: the logged-in holder's).")
@click.option("--searchset", is_flag=True, help="A Bundle of type searchset (else collection).")
@click.option("--inline", is_flag=True, help="Contents inline in the DocumentReferences.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the Bundle to this file."
)
@force_option
def fhir_export(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    patient: str | None,
    searchset: bool,
    inline: bool,
    output: str | None,
    force: bool,
) -> None:
    """Export what the logged-in person may see of a space as a FHIR R4 Bundle (JSON), to
    stdout or --output (an existing file only with --force)."""
    target = None if output is None else output_target(output, force=force)
    with open_db(db) as space:
        actor = login(space, nir, vitale, birth_date)
        bundle = export_bundle(
            space,
            actor,
            patient or actor.id,
            bundle_type="searchset" if searchset else "collection",
            inline=inline,
        )
    text = json.dumps(bundle, ensure_ascii=False, indent=2)
    if target is not None:
        target.write_text(text + "\n", encoding="utf-8")
        entries = len(bundle.get("entry", []))
        click.echo(written(target, f"a FHIR Bundle of {entries} entries"), err=True)
    else:
        click.echo(text)


@fhir.command("import")
@db_option(must_exist=True)
@login_options
@click.option("--patient", help="The space to import into (default: the logged-in holder's).")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
def fhir_import(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    patient: str | None,
    files: tuple[str, ...],
) -> None:
    """Import FHIR transaction bundles or resources, each file all or nothing.

    A refused file prints its OperationOutcome (JSON) and the next file is read; the exit
    status is then 1.
    """
    failed = False
    with open_db(db) as space:
        actor = login(space, nir, vitale, birth_date)
        for file in files:
            try:
                report = import_fhir(space, actor, patient or actor.id, Path(file).read_bytes())
            except FhirError as exc:
                failed = True
                click.echo(f"{file}: refused ({exc.status})", err=True)
                click.echo(json.dumps(exc.outcome, ensure_ascii=False))
                continue
            click.echo(
                f"{file}: {len(report.documents)} document(s), {len(report.measures)} "
                f"measure(s), {len(report.vaccinations)} vaccination(s)"
            )
    if failed:
        raise SystemExit(1)
