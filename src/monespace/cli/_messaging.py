"""``monespace messages``: secure messaging from the command line."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..actors import Actor, ActorKind
from ..identity import RPPS
from ..messaging import NewAttachment
from ._common import (
    CLI_OPERATOR,
    db_option,
    login,
    login_options,
    open_db,
    paris_time,
    terminal_text,
)

__all__ = ["messages"]


@click.group()
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
@db_option(must_exist=True)
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
    with open_db(db) as space:
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
@db_option(must_exist=True)
@login_options
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
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        page = space.messaging.inbox(
            me, archived=archived, correspondent=correspondent, text=text, limit=500
        )
    for thread in page.threads:
        who = thread.professional.name or thread.professional.id
        flags = " [closed]" if thread.closed else ""
        unread = f"{thread.unread} new" if thread.unread else "read"
        click.echo(
            f"{thread.id}  {paris_time(thread.last_message_at)}  {unread:<7} "
            f"{terminal_text(who)}: {terminal_text(thread.subject)}{flags}"
        )
    click.echo(f"{page.total} thread(s), {page.unread} unread message(s)")


@messages.command("show")
@db_option(must_exist=True)
@login_options
@click.argument("thread_id")
def messages_show(db: str, nir: str, vitale: str, birth_date: datetime, thread_id: str) -> None:
    """Read a thread (its messages are marked read)."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        view = space.messaging.thread(me, thread_id)
    thread = view.thread
    who = thread.professional.name or thread.professional.id
    click.echo(f"{terminal_text(thread.subject)}  ({terminal_text(who)})")
    if thread.closed:
        click.echo("This thread is closed to replies.")
    for message in view.messages:
        sender = "you" if not message.from_professional else message.sender_id
        click.echo(f"\n--- {paris_time(message.sent_at)} {terminal_text(sender)}")
        click.echo(terminal_text(message.body.rstrip("\n"), multiline=True))
        for attachment in message.attachments:
            click.echo(
                f"[attachment {attachment.id}: {terminal_text(attachment.filename)}, "
                f"{terminal_text(attachment.media_type)}, {attachment.size} bytes]"
            )


@messages.command("reply")
@db_option(must_exist=True)
@login_options
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
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        message = space.messaging.reply(me, thread_id, body=body)
    click.echo(f"sent {message.id} in thread {message.thread_id}")


@messages.command("file")
@db_option(must_exist=True)
@login_options
@click.argument("attachment_id")
@click.option("--title", help="The document's title (default: the CDA's, or the file name).")
def messages_file(
    db: str, nir: str, vitale: str, birth_date: datetime, attachment_id: str, title: str | None
) -> None:
    """Save an attachment you received into your medical record."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        document = space.messaging.file_attachment(me, attachment_id, title=title)
    click.echo(
        f"filed as document {document.id} "
        f"({terminal_text(document.type_code.code)}, {document.category})"
    )
