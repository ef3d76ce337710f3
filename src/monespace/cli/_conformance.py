"""``monespace conformance run``: the conformance kit for app vendors, from the command line.

The exit status is the kit's verdict: 0 when every mandatory criterion passed, 1 when one
did not, 2 on a usage error (no command, an unknown scope, an output file in the way, a
command that cannot be started).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..catalogue import Scope
from ..conformance import DEFAULT_SCOPES, ENVIRONMENT, REDIRECT_URI, dumps, report_html, run
from ..errors import ConfigurationError, ValidationError
from ._common import write_private, written

__all__ = ["conformance"]


@click.group()
def conformance() -> None:
    """The conformance kit for app vendors: run your app against a sandbox."""


def _target(path: str | None, *, force: bool, option: str) -> Path | None:
    """An output file, refused (as a usage error) when it exists and --force is not given."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise click.UsageError(f"{target} is a directory ({option})")
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists: add --force to overwrite it ({option})")
    return target


def _scopes(text: str) -> tuple[str, ...]:
    known = {str(s) for s in Scope}
    scopes = tuple(text.split())
    unknown = sorted(set(scopes) - known)
    if not scopes or unknown:
        raise click.UsageError(
            f"--scopes takes scopes among {' '.join(sorted(known))}"
            + (f" (unknown: {' '.join(unknown)})" if unknown else "")
        )
    return scopes


_ENV_HELP = "\n".join(f"  {name}: {meaning}" for name, meaning in ENVIRONMENT.items())


@conformance.command(
    "run",
    context_settings={"ignore_unknown_options": True},
    epilog="\b\nThe command receives:\n" + _ENV_HELP,
)
@click.option("--report", "report_path", help="Write the JSON report to this file.")
@click.option("--html", "html_path", help="Write the report as an HTML page to this file.")
@click.option(
    "--scopes",
    default=" ".join(DEFAULT_SCOPES),
    show_default=True,
    help="The scopes the test app declares, separated by spaces.",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help=(
        "A redirect URI to register for the test app (repeat for several; the first is "
        f"MONESPACE_REDIRECT_URI). Default: {REDIRECT_URI}"
    ),
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds after which the command is stopped.",
)
@click.option("--force", is_flag=True, help="Overwrite the report files if they exist.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(
    report_path: str | None,
    html_path: str | None,
    scopes: str,
    redirect_uris: tuple[str, ...],
    timeout: float,
    force: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (your app) against a sandbox server and judge what it does.

    The sandbox has synthetic patients and a referenced test app; one patient consents at
    once through a sandbox-only path. While the command runs, the sandbox answers a 429 and
    a 503 with Retry-After, declares an access token expired early, caps listing pages,
    and revokes the consent. The exit status is 0 when every mandatory criterion passed,
    1 otherwise. Put -- before the command: monespace conformance run -- python app.py
    """
    declared = _scopes(scopes)
    report_file = _target(report_path, force=force, option="--report")
    html_file = _target(html_path, force=force, option="--html")
    try:
        report = run(
            command,
            scopes=declared,
            redirect_uris=redirect_uris or (REDIRECT_URI,),
            timeout=timeout,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise click.UsageError(
            f"cannot start the command: {exc.strerror}; check the app's command and that it "
            "can be run"
        ) from None
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except ValidationError as exc:
        raise click.UsageError(f"--redirect-uri: {exc}") from None
    click.echo(report.summary())
    if report_file is not None:
        write_private(report_file, dumps(report))
        click.echo(written(report_file, "the JSON report"))
    if html_file is not None:
        write_private(html_file, report_html(report))
        click.echo(written(html_file, "the HTML report"))
    if not report.passed:
        raise SystemExit(1)
