"""``monespace catalogue`` (the référencement and the public catalogue) and ``monespace
consents`` (the apps a patient connected), from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click

from ..actors import Actor
from ..catalogue import (
    App,
    Application,
    ApplicationStatus,
    Dossier,
    ExchangeTier,
    Level,
    Role,
    dossier_from_json,
    load_referentiel,
    scopes_text,
)
from ..errors import MonespaceError
from ._common import CLI_OPERATOR, db_option, open_db, terminal_text

__all__ = ["catalogue", "consents"]

#: The decisions ``catalogue decide`` takes, and the role that takes each.
_DECISIONS = {
    "favourable": Role.COMMISSION,
    "unfavourable": Role.COMMISSION,
    "reference": Role.MINISTER,
    "suspend": Role.MINISTER,
    "reinstate": Role.MINISTER,
    "renew": Role.MINISTER,
    "withdraw": Role.MINISTER,
}


@click.group()
def catalogue() -> None:
    """The référencement of third-party apps and the public catalogue."""


@catalogue.command("apply")
@db_option(must_exist=True)
@click.option("--vendor", required=True, help="The publisher's account id.")
@click.option(
    "--dossier",
    "dossier_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The dossier, as JSON (see docs/reference/cli.md).",
)
@click.option("--client-id", help="The OAuth client id wished for (default: from the name).")
def catalogue_apply(db: str, vendor: str, dossier_path: Path, client_id: str | None) -> None:
    """Apply for référencement with a dossier (R1111-39).

    \b
    Example:
      monespace catalogue apply --db monespace.db --vendor balance-sas --dossier dossier.json
    """
    dossier = _read_dossier(dossier_path)
    with open_db(db) as space:
        application = space.catalogue.apply(Actor.vendor(vendor), dossier, client_id=client_id)
    click.echo(f"application {application.id} ({application.status})")
    click.echo(f"client id: {application.client_id}")


@catalogue.command("check")
@click.option(
    "--dossier",
    "dossier_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The dossier, as JSON.",
)
def catalogue_check(dossier_path: Path) -> None:
    """Check a dossier before applying, without a space: is it valid, and which criteria of
    the référentiel that apply to it have evidence. Exit status 1 when a mandatory one has
    none.

    \b
    Example:
      monespace catalogue check --dossier dossier.json
    """
    dossier = _read_dossier(dossier_path)
    referentiel = load_referentiel()
    missing = 0
    click.echo(f"référentiel {referentiel.edition}, exchange tier {dossier.exchange_tier}")
    for criterion in referentiel.criteria:
        if not criterion.applies_to(dossier.exchange_tier):
            continue
        given = criterion.id in dossier.evidence
        if not given and criterion.level is Level.OBLIGATOIRE:
            missing += 1
        state = "evidence given" if given else "no evidence"
        click.echo(f"  {criterion.id} ({criterion.level}): {state}")
    if missing:
        raise click.ClickException(
            f"mandatory criteria without evidence: {missing}; add the evidence of each to "
            "the dossier's 'evidence' and check it again"
        )
    click.echo("every mandatory criterion has evidence")


@catalogue.command("review")
@db_option(must_exist=True)
@click.argument("application_id")
@click.option("--reviewer", required=True, help="The reviewer's id (audited).")
@click.option("--start", is_flag=True, help="Take the application up (applied → under_review).")
@click.option("--met", multiple=True, metavar="CRITERION", help="A criterion found met.")
@click.option("--failed", multiple=True, metavar="CRITERION", help="A criterion found failed.")
def catalogue_review(
    db: str,
    application_id: str,
    reviewer: str,
    start: bool,
    met: tuple[str, ...],
    failed: tuple[str, ...],
) -> None:
    """Instruct an application: take it up, record findings, and print what still stands in
    the way of a favourable opinion.

    \b
    Example:
      monespace catalogue review --db monespace.db <id> --reviewer r1 --start \\
          --met SEC-01 --met SEC-02 --failed ETH-02
    """
    actor = Actor.authority(reviewer, Role.REVIEWER)
    findings = {**dict.fromkeys(met, "met"), **dict.fromkeys(failed, "failed")}
    with open_db(db) as space:
        if start:
            space.catalogue.start_review(actor, application_id)
        if findings:
            space.catalogue.assess(actor, application_id, findings)
        application = space.catalogue.application(application_id)
        gaps = space.catalogue.gaps(application_id)
    click.echo(f"application {application.id} ({application.status})")
    for criterion_id, finding in application.assessments.items():
        click.echo(f"  {criterion_id}: {finding}")
    if gaps:
        click.echo("standing in the way of a favourable opinion:")
        for gap in gaps:
            click.echo(f"  {terminal_text(gap)}")
    else:
        click.echo("no mandatory criterion stands in the way of a favourable opinion")


@catalogue.command("decide")
@db_option(must_exist=True)
@click.argument("application_id")
@click.argument("decision", type=click.Choice(sorted(_DECISIONS)))
@click.option("--by", "person", required=True, help="Who decides (audited).")
@click.option(
    "--as",
    "role",
    type=click.Choice(["commission", "minister", "vendor"]),
    help="The role they decide in (default: the decision's; vendor: withdraw their own).",
)
@click.option("--days", type=click.IntRange(min=1), help="The convention's duration, in days.")
@click.option("--scope", "scopes", multiple=True, help="Narrow the convention's data categories.")
def catalogue_decide(
    db: str,
    application_id: str,
    decision: str,
    person: str,
    role: str | None,
    days: int | None,
    scopes: tuple[str, ...],
) -> None:
    """The commission's opinion (favourable, unfavourable) or the minister's office's
    decision (reference with a convention, suspend, reinstate, renew, withdraw).

    \b
    Examples:
      monespace catalogue decide --db monespace.db <id> favourable --by commission
      monespace catalogue decide --db monespace.db <id> reference --by cabinet --days 1095
    """
    chosen = role or str(_DECISIONS[decision])
    actor = Actor.vendor(person) if chosen == "vendor" else Actor.authority(person, chosen)
    duration = None if days is None else timedelta(days=days)
    with open_db(db) as space:
        service = space.catalogue
        if decision in ("favourable", "unfavourable"):
            done = service.opinion(actor, application_id, favourable=decision == "favourable")
        elif decision == "reference":
            done = service.reference(
                actor, application_id, duration=duration, data_categories=scopes or None
            )
        elif decision == "renew":
            done = service.renew(actor, application_id, duration=duration)
        else:
            done = getattr(service, decision)(actor, application_id)
    _print_application(done)


@catalogue.command("list")
@db_option(must_exist=True)
@click.option("--search", "text", help="Words in the name, publisher or category.")
@click.option("--category", help="One category.")
@click.option("--tier", type=click.Choice([t.value for t in ExchangeTier]))
@click.option(
    "--applications",
    is_flag=True,
    help="List the applications for référencement instead of the public catalogue.",
)
@click.option("--status", type=click.Choice([s.value for s in ApplicationStatus]))
def catalogue_list(
    db: str,
    text: str | None,
    category: str | None,
    tier: str | None,
    applications: bool,
    status: str | None,
) -> None:
    """The public catalogue (referenced services), or the applications with --applications.

    \b
    Examples:
      monespace catalogue list --db monespace.db --search poids
      monespace catalogue list --db monespace.db --applications --status under_review
    """
    with open_db(db) as space:
        if applications:
            for application in space.catalogue.applications(status=status):
                click.echo(
                    f"{application.id}  {application.status:<13} "
                    f"{terminal_text(application.client_id)}  "
                    f"{terminal_text(application.dossier.service)}"
                )
            return
        if status is not None:
            raise click.UsageError("--status goes with --applications")
        for app in space.catalogue.search(text, category=category, tier=tier):
            click.echo(
                f"{terminal_text(app.client_id)}  {terminal_text(app.name)} "
                f"({terminal_text(app.publisher)}): {terminal_text(app.category)}, "
                f"exchange {app.exchange_tier}"
            )


@catalogue.command("show")
@db_option(must_exist=True)
@click.argument("key")
def catalogue_show(db: str, key: str) -> None:
    """An application (by id) or an app of the catalogue (by client id)."""
    with open_db(db) as space:
        try:
            _print_application(space.catalogue.application(key))
        except MonespaceError:
            _print_app(space.catalogue.app(key))


def _read_dossier(path: Path) -> Dossier:
    """The dossier in the JSON file *path*; anything wrong is one error line."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise click.ClickException(
                "the dossier must be a JSON object: see `monespace catalogue check --help` "
                "for its members"
            )
        return dossier_from_json(raw)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(
            f"invalid dossier: {exc}; correct it and check it with `monespace catalogue check`"
        ) from None


def _print_application(application: Application) -> None:
    dossier = application.dossier
    click.echo(f"application {application.id} ({application.status})")
    click.echo(f"  service: {terminal_text(dossier.service)} by {terminal_text(dossier.publisher)}")
    click.echo(f"  client id: {terminal_text(application.client_id)}")
    click.echo(f"  category: {terminal_text(dossier.category)}")
    click.echo(f"  purposes: {', '.join(sorted(dossier.purposes))}")
    click.echo(
        f"  exchange tier: {dossier.exchange_tier}; scopes asked: {scopes_text(dossier.scopes)}"
    )
    click.echo(f"  référentiel: {application.edition}")
    convention = application.convention
    if convention is not None:
        click.echo(
            f"  convention: {convention.signed_at:%Y-%m-%d} to {convention.until:%Y-%m-%d}, "
            f"data categories: {scopes_text(convention.data_categories) or '(none)'}"
        )


def _print_app(app: App) -> None:
    click.echo(f"{terminal_text(app.client_id)}: {terminal_text(app.name)} ({app.status})")
    click.echo(f"  publisher: {terminal_text(app.publisher)}")
    click.echo(f"  category: {terminal_text(app.category)}; exchange tier: {app.exchange_tier}")
    click.echo(f"  scopes: {scopes_text(app.scopes) or '(none)'}")
    until = "-" if app.convention_until is None else f"{app.convention_until:%Y-%m-%d}"
    click.echo(f"  convention until: {until}")
    for uri in app.redirect_uris:
        click.echo(f"  redirect URI: {terminal_text(uri)}")


@click.group()
def consents() -> None:
    """The apps a patient connected to their space (the operator, at the holder's request)."""


@consents.command("list")
@db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the space's holder.")
def consents_list(db: str, nir: str) -> None:
    """Every consent the holder gave, in force or revoked."""
    with open_db(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        found = space.consents.of(CLI_OPERATOR, patient.id)
    if not found:
        click.echo("no app was ever connected to this space")
    for consent in found:
        state = (
            "in force"
            if consent.revoked_at is None
            else f"revoked on {consent.revoked_at:%Y-%m-%d %H:%M}"
        )
        click.echo(
            f"{terminal_text(consent.client_id)}  {scopes_text(consent.scopes)}  "
            f"(granted {consent.granted_at:%Y-%m-%d %H:%M}, {state})"
        )


@consents.command("revoke")
@db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the space's holder.")
@click.argument("client_id")
def consents_revoke(db: str, nir: str, client_id: str) -> None:
    """Revoke a consent at the holder's request (by phone, at a counter): the app's next
    call is refused."""
    with open_db(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        space.consents.revoke(CLI_OPERATOR, patient.id, client_id)
    click.echo(f"consent to {terminal_text(client_id)} revoked")
