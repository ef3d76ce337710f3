"""What every command shares: the ``--db`` option, opening a space, the operator, the demo login.

A library error raised while a space is open becomes a :class:`click.ClickException`, which
click prints as one line (``Error: ...``) with exit status 1, without a traceback: the
library's message, then the next step (``_errors``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from .._space import Space
from .._space import open as open_space
from .._text import is_refused
from ..actors import Actor
from ..errors import MonespaceError
from ._errors import library_error

__all__ = [
    "CLI_OPERATOR",
    "PARIS",
    "db_option",
    "force_option",
    "local_path",
    "login",
    "login_options",
    "open_db",
    "output_target",
    "paris_date",
    "paris_time",
    "storage_url",
    "terminal_text",
    "write_private",
    "written",
]

_F = TypeVar("_F", bound=Callable[..., Any])

_SQLITE = "sqlite:///"
#: The zone every time is shown in, and named.
PARIS = ZoneInfo("Europe/Paris")

#: The operator, as seen in the audit trail when acting from the command line.
CLI_OPERATOR = Actor.system("cli")


def local_path(db: str) -> Path | None:
    """The file a ``--db`` value names: a plain path or an ``sqlite:///`` URL; ``None`` for
    any other URL (``memory://``, ``postgresql://``)."""
    if db.startswith(_SQLITE):
        return Path(db.removeprefix(_SQLITE)).expanduser()
    if "://" in db:
        return None
    return Path(db).expanduser()


def storage_url(db: str) -> str:
    """A ``--db`` value is a storage URL, or a path to an SQLite file."""
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def db_option(*, must_exist: bool) -> Callable[[_F], _F]:
    """The ``--db`` option. With ``must_exist`` it is required and a plain path must exist;
    without (``demo``, which creates its database) it defaults to ``monespace-demo.db``."""

    def check(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
        # Opening an absent SQLite file would create an empty space: a typo in the path
        # must be an error, not a new database.
        path = local_path(value)
        if must_exist and path is not None and not path.exists():
            raise click.BadParameter(
                f"{path} does not exist: check the path, or create a space there with "
                f"`monespace demo --db {path} --no-serve` (or `storage copy` from another)"
            )
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
def open_db(db: str, **kwargs: Any) -> Iterator[Space]:
    """Open the space a ``--db`` value names; library errors become one-line click errors."""
    try:
        with open_space(storage_url(db), **kwargs) as space:
            yield space
    except MonespaceError as exc:
        raise library_error(exc) from exc


def login_options(function: _F) -> _F:
    """The demo's carte Vitale login: ``--nir``, ``--vitale`` and ``--birth-date``."""
    for option in reversed(
        [
            click.option("--nir", required=True, help="The holder's NIR."),
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


def login(space: Space, nir: str, vitale: str, birth_date: datetime) -> Actor:
    """Demo login with the carte Vitale details (see AccountService.authenticate)."""
    return space.accounts.authenticate(nir=nir, vitale_serial=vitale, birth_date=birth_date.date())


def terminal_text(value: object, *, multiline: bool = False) -> str:
    """*value* as text safe to write to a terminal: every character the library's text check
    refuses (ESC, CR, NUL, the C1 controls, bidirectional overrides, non-characters) is
    shown as a visible escape (``\\x1b``, ``\\u202e``) instead of being acted on, so stored
    text can neither drive the terminal (colours, cursor moves, OSC titles and links) nor
    hide or reorder what is printed around it. Line feeds are kept with *multiline*.

    Every command that prints stored or imported text goes through this.
    """
    text = str(value)
    return "".join(
        (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        if is_refused(char, multiline=multiline)
        else char
        for char in text
    )


def paris_time(moment: datetime, *, seconds: bool = False) -> str:
    """*moment* as the clock on the wall in France shows it, the zone named:
    ``2026-03-29 10:30 Europe/Paris (CEST)``. A naive *moment* is taken as UTC, which is how
    the library stores every time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(PARIS)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} Europe/Paris ({local.tzname()})"


def paris_date(moment: datetime) -> str:
    """The day *moment* falls on in France (a naive *moment* is UTC), as YYYY-MM-DD."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS).date().isoformat()


def force_option(function: _F) -> _F:
    """The ``--force`` flag: overwrite an existing output file."""
    return click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")(
        function
    )


def output_target(path: str | Path, *, force: bool, option: str = "--output") -> Path:
    """The file an output option names, refused when it exists and *force* is not given
    (nothing is written, nothing is lost)."""
    target = Path(path)
    if target.is_dir():
        raise click.BadParameter(f"{target} is a directory", param_hint=option)
    if target.exists() and not force:
        # Exit status 1, not a usage error: the command is right, the file is in the way.
        raise click.ClickException(f"{target} exists: add --force to overwrite it ({option})")
    return target


def written(path: Path, what: str) -> str:
    """The line that says what was written where: ``wrote 3 checkpoints (1,204 bytes)
    to x.json``."""
    size = path.stat().st_size
    return f"wrote {what} ({size:,} bytes) to {path}"


def write_private(path: Path, text: str) -> None:
    """Write *text* to *path* readable by its owner only, replacing it whole (a reader
    never sees half a file, an interruption never leaves one)."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)
