"""The ``monespace`` command line.

Every command is a thin edge over the services: it opens a space, calls the Python API and
prints the outcome. Errors from the library are shown as one line, without a traceback.

The root group lives here; each group of commands in a module of its own (``_server``: demo
and serve, ``_ops``: audit, keys, info and dispatch, ``_accounts``: the life of a space and
the DMP migration, ``_record``, ``_access``, ``_messaging``, ``_cda``, ``_fhir``, ``_agenda``:
the agenda and the reminders' preview, ``_catalogue``: the référencement, the public
catalogue and consents), and what they share (``--db``, opening a space, the
demo login) in ``_common``.
"""

from __future__ import annotations

import click

from .. import __version__
from ._access import access
from ._accounts import activate, close, dmp, invite, oppose, tick
from ._agenda import agenda, reminders
from ._catalogue import catalogue, consents
from ._cda import cda
from ._fhir import fhir
from ._messaging import messages
from ._ops import audit, dispatch, info, keys
from ._record import record
from ._server import demo, serve_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monespace")
def main() -> None:
    """monespace: a reference personal health space, in the style of Mon espace santé."""


main.add_command(cda)
main.add_command(fhir)
main.add_command(demo)
main.add_command(serve_command)
main.add_command(audit)
main.add_command(keys)
main.add_command(info)
main.add_command(dispatch)
main.add_command(invite)
main.add_command(activate)
main.add_command(oppose)
main.add_command(close)
main.add_command(tick)
main.add_command(dmp)
main.add_command(record)
main.add_command(access)
main.add_command(messages)
main.add_command(agenda)
main.add_command(reminders)
main.add_command(catalogue)
main.add_command(consents)
