"""``monespace cda``: look inside CDA R2 documents from the command line.

The group is attached to the main command in ``monespace.cli`` (``main.add_command(cda)``).

``monespace cda inspect FILE...`` reads each file with :func:`monespace.interop.read_cda` and
prints its header: a short table, or with ``--json`` one JSON object per file and per line.
A file that cannot be read gets an ``error`` and the next file is read; the exit status is
1 when any file failed. Error reasons are the library's messages, which never quote the
document; the patient's INS appears only in the JSON ``patient`` field.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..errors import MonespaceError
from ..interop import DEFAULT_MAX_BYTES, CdaDocument, DocumentTooLargeError, read_cda
from ..interop.cda import NonXmlBody
from ._common import paris_time, terminal_text

__all__ = ["cda"]


@click.group()
def cda() -> None:
    """Read CDA R2 documents (DMP, CI-SIS): plain or auto-présentable, N1 or N3."""


class _UnreadableFileError(Exception):
    """The file itself could not be read (missing, a directory, no permission)."""


def _read(path: Path, max_bytes: int) -> CdaDocument:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            # Refused before reading: the file may be a multi-gigabyte mistake.
            raise DocumentTooLargeError(size, max_bytes)
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        # strerror ("No such file or directory") says why without echoing anything else.
        reason = exc.strerror or "I/O error"
        raise _UnreadableFileError(f"cannot read the file: {reason}") from None
    return read_cda(data, max_bytes=max_bytes)


def _summary(file: str, document: CdaDocument) -> dict[str, Any]:
    ins = document.patient.ins if document.patient is not None else None
    body = document.body
    return {
        "file": file,
        "type_code": document.type.code,
        "type_code_system": document.type.code_system,
        "class_code": document.class_code,
        "confidentiality": list(document.confidentiality_codes),
        "effective_time": (
            document.effective_time.isoformat() if document.effective_time is not None else None
        ),
        "title": document.title,
        "patient": {"ins": ins.extension, "oid": ins.root} if ins is not None else None,
        "authors": len(document.authors),
        "body": (
            {"kind": "non_xml", "media_type": body.media_type}
            if isinstance(body, NonXmlBody)
            else {"kind": "structured", "sections": body.sections}
        ),
        "error": None,
    }


def _failure(file: str, reason: str) -> dict[str, Any]:
    return {
        "file": file,
        "type_code": None,
        "type_code_system": None,
        "class_code": None,
        "confidentiality": None,
        "effective_time": None,
        "title": None,
        "patient": None,
        "authors": None,
        "body": None,
        "error": reason,
    }


def _row(summary: dict[str, Any]) -> list[str]:
    if summary["error"] is not None:
        return [summary["file"], "", "", "", "", "", f"error: {summary['error']}"]
    body = summary["body"]
    if body["kind"] == "structured":
        count = body["sections"]
        shape = f"structured, {count} section{'' if count == 1 else 's'}"
    else:
        shape = f"non-XML, {body['media_type']}"
    title = summary["title"] or ""
    if len(title) > 40:
        title = title[:39] + "…"
    return [
        summary["file"],
        summary["type_code"],
        summary["class_code"] or "-",
        _shown_time(summary["effective_time"]),
        shape,
        str(summary["authors"]),
        title,
    ]


def _shown_time(value: str | None) -> str:
    # The document's own offset is kept in the JSON; the table shows the time in France.
    if value is None:
        return "-"
    return paris_time(datetime.fromisoformat(value))


def _table(found: list[list[str]]) -> str:
    # What a file holds is anybody's text: escaped before it reaches the terminal.
    rows = [[terminal_text(cell) for cell in row] for row in found]
    header = ["FILE", "TYPE", "CLASS", "DATE", "BODY", "AUTHORS", "TITLE"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


@cda.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, per line.")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BYTES,
    show_default=True,
    help="The largest file read.",
)
def inspect(files: tuple[Path, ...], as_json: bool, max_bytes: int) -> None:
    """Print the header of each CDA R2 FILE: type, class, date, patient INS, authors, body.

    A file that cannot be read is reported (with the reason) and the others are still read;
    the exit status is then 1.
    """
    failures = 0
    rows: list[list[str]] = []
    for path in files:
        name = str(path)
        try:
            summary = _summary(name, _read(path, max_bytes))
        except (MonespaceError, _UnreadableFileError) as exc:
            failures += 1
            summary = _failure(name, str(exc))
        if as_json:
            click.echo(json.dumps(summary, ensure_ascii=False))
        else:
            rows.append(_row(summary))
    if not as_json:
        click.echo(_table(rows))
    if failures:
        click.echo(f"{failures} of {len(files)} file(s) could not be read", err=True)
        raise click.exceptions.Exit(1)
