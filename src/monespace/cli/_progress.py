"""The one progress bar of the command line, for every long command.

A bar is only worth showing if it tracks the real work: the commands create it with the
true total (people to seed, documents to import, people to invite, data keys to re-wrap)
and the library calls :meth:`Progress.advance` as each item is done, never all at once at
the start or the end. Long work made of steps (the demo's seeding) names each step with
:meth:`Progress.phase`.

The bar is written to standard error, so that what a command prints on standard output
stays clean for a pipe. On a terminal it is redrawn in place; elsewhere (a log, a CI job)
click writes the label once, and each step is written on a line of its own, so a log
still says what the command was doing when it stopped.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Self

import click

__all__ = ["Progress"]


class Progress:
    """A progress bar on standard error over *total* units of work.

    Use it as a context manager; pass :meth:`advance` (and the object itself, which has
    ``phase`` and ``advance``) to the library as the progress callback::

        with Progress("Inviting", total) as progress:
            space.accounts.invite_registered(actor, progress=progress.advance)

    :param label: what the work is, shown before the bar.
    :param total: the units of work in all, known before the work starts.
    :param show: ``False`` counts without drawing anything (one item is no long work).
    """

    def __init__(self, label: str, total: int, *, show: bool = True) -> None:
        self._label = label
        self._total = max(0, total)
        self._done = 0
        self._interactive = sys.stderr.isatty()
        self._bar: Any = (
            click.progressbar(
                length=self._total,
                label=label,
                show_pos=True,
                show_eta=True,
                file=sys.stderr,
            )
            if show
            else None
        )

    @property
    def done(self) -> int:
        """The units of work reported so far."""
        return self._done

    def advance(self, count: int = 1) -> None:
        """*count* more units of work are done (the bar never goes past its total)."""
        step = min(count, self._total - self._done)
        if step > 0:
            self._done += step
            if self._bar is not None:
                self._bar.update(step)

    def phase(self, label: str) -> None:
        """A step of the work starts: shown beside the bar, or as a line of its own."""
        text = f"{self._label}: {label}"
        if self._bar is None:
            return
        if self._interactive:
            self._bar.label = text
            self._bar.render_progress()
        else:
            click.echo(text, err=True)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
