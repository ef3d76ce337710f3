"""What every command shares: the ``--db`` option, opening a space, the operator, the demo login.

A library error raised while a space is open becomes a :class:`click.ClickException`, which
click prints as one line (``Error: ...``) with exit status 1, without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .._space import Space
from .._space import open as open_space
from .._text import is_refused
from ..actors import Actor
from ..errors import MonespaceError

__all__ = [
    "CLI_OPERATOR",
    "db_option",
    "login",
    "login_options",
    "open_db",
    "storage_url",
    "terminal_text",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The operator, as seen in the audit trail when acting from the command line.
CLI_OPERATOR = Actor.system("cli")


def storage_url(db: str) -> str:
    """A ``--db`` value is a storage URL, or a path to an SQLite file."""
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def db_option(*, must_exist: bool) -> Callable[[_F], _F]:
    """The ``--db`` option. With ``must_exist`` it is required and a plain path must exist;
    without (``demo``, which creates its database) it defaults to ``monespace-demo.db``."""

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
def open_db(db: str, **kwargs: Any) -> Iterator[Space]:
    """Open the space a ``--db`` value names; library errors become one-line click errors."""
    try:
        with open_space(storage_url(db), **kwargs) as space:
            yield space
    except MonespaceError as exc:
        raise click.ClickException(str(exc)) from exc


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
