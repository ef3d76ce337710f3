"""``monespace record``: read and feed a patient's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..actors import Actor, ActorKind
from ..errors import ValidationError
from ..identity import RPPS
from ..record import LOINC, Category, Code, detect_media_type
from ._common import (
    CLI_OPERATOR,
    db_option,
    force_option,
    login,
    login_options,
    open_db,
    output_target,
    paris_date,
    paris_time,
    terminal_text,
    written,
)

__all__ = ["record"]


@click.group()
def record() -> None:
    """Read and feed a patient's record (logins here are the demo's carte Vitale login)."""


@record.command("add")
@db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the record's holder.")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--media-type",
    help="The content's media type (default: told from the bytes: PDF, JPEG, PNG, DICOM, "
    "XML such as a CDA, or UTF-8 text).",
)
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
    media_type: str | None,
    type_code: str | None,
    title: str | None,
    professional: str | None,
) -> None:
    """Add a document to a record (a CDA's header fills its metadata). Without
    --media-type, the type is told from the bytes; an explicit --media-type wins.

    \b
    Examples:
      monespace record add --db monespace.db --nir 279035121518989 report.xml \\
          --professional 10003456786
      monespace record add --db monespace.db --nir 279035121518989 remb.pdf \\
          --type REMB@1.2.250.1.213.1.1.4.12 --title Remboursements
    """
    content = file.read()
    if media_type is None:
        try:
            media_type = detect_media_type(content)
        except ValidationError as exc:
            raise click.ClickException(
                f"{exc}; pass --media-type if the file is of an accepted type"
            ) from None
    code = None
    if type_code:
        value, _, system = type_code.partition("@")
        code = Code(value, system or LOINC)
    with open_db(db) as space:
        actor = (
            Actor(ActorKind.PROFESSIONAL, RPPS.parse(professional).value)
            if professional
            else CLI_OPERATOR
        )
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        document = space.record.add_document(
            actor, patient.id, content, media_type=media_type, type_code=code, title=title
        )
    click.echo(
        f"added {document.id} ({terminal_text(document.type_code.code)}, {document.category})"
    )


@record.command("list")
@db_option(must_exist=True)
@login_options
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
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        page = space.record.search(me, me.id, category=category, text=text, limit=500)
    for document in page.documents:
        flags = " [masked]" if document.masked else ""
        click.echo(
            f"{document.id}  {paris_date(document.created_at)}  {document.category:<18} "
            f"{terminal_text(document.title)}{flags}"
        )
    click.echo(f"{page.total} document(s)")


@record.command("show")
@db_option(must_exist=True)
@login_options
@click.argument("document_id")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the content to this file.")
@force_option
def record_show(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    document_id: str,
    output: str | None,
    force: bool,
) -> None:
    """Show a document's metadata, and save its content with --output (an existing file
    only with --force)."""
    target = None if output is None else output_target(output, force=force)
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        document = space.record.get_document(me, document_id)
        if target is not None:
            target.write_bytes(space.record.read_content(me, document_id))
            click.echo(written(target, "the content"), err=True)
    type_ = document.type_code
    click.echo(f"title:     {terminal_text(document.title)}")
    click.echo(f"type:      {terminal_text(type_.code)} ({terminal_text(type_.system)})")
    click.echo(f"class:     {terminal_text(document.class_code)} ({document.category})")
    click.echo(f"created:   {paris_time(document.created_at)}")
    author = document.author
    click.echo(f"author:    {author.kind} {terminal_text(author.id)}")
    if author.name or author.organisation:
        names = " - ".join(n for n in (author.name, author.organisation) if n)
        click.echo(f"           {terminal_text(names)}")
    if document.comments:
        click.echo(f"comments:  {terminal_text(document.comments)}")
    click.echo(f"masked:    {'yes' if document.masked else 'no'}")


@record.command("mask")
@db_option(must_exist=True)
@login_options
@click.argument("document_id")
@click.option("--undo", is_flag=True, help="Unmask instead.")
def record_mask(
    db: str, nir: str, vitale: str, birth_date: datetime, document_id: str, undo: bool
) -> None:
    """Hide one of your documents from professionals (its author still sees it)."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        change = space.record.unmask if undo else space.record.mask
        document = change(me, document_id)
    click.echo(f"{document.id} is now {'masked' if document.masked else 'visible'}")
