"""``monespace access``: explain an access decision."""

from __future__ import annotations

import click

from ..actors import AccessMode, Actor, ActorKind
from ..identity import RPPS
from ._common import CLI_OPERATOR, db_option, open_db, terminal_text

__all__ = ["access"]


@click.group()
def access() -> None:
    """Professionals' access to records: explain a decision."""


@access.command("explain")
@db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the record's holder.")
@click.option("--professional", "rpps", metavar="RPPS", help="Explain for this professional.")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in AccessMode]),
    default="normal",
    show_default=True,
)
@click.option("--as-patient", is_flag=True, help="Explain for the holder instead.")
@click.option("--document", "document_id", help="A document id (default: the record).")
@click.option(
    "--action",
    type=click.Choice(["document.read", "document.search", "patient.read"]),
    default=None,
    help="Default: document.read with --document, document.search without.",
)
def access_explain(
    db: str,
    nir: str,
    rpps: str | None,
    mode: str,
    as_patient: bool,
    document_id: str | None,
    action: str | None,
) -> None:
    """Say whether an actor may read a record or a document, and which rule decides.

    \b
    Examples:
      monespace access explain --db monespace.db --nir 279035121518989 \\
          --professional 10003456786 --document <id>
      monespace access explain --db monespace.db --nir 279035121518989 --as-patient
    """
    if bool(rpps) == as_patient:
        raise click.UsageError("give either --professional RPPS or --as-patient")
    with open_db(db) as space:
        patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
        actor = (
            Actor.patient(patient.id)
            if as_patient
            else Actor(ActorKind.PROFESSIONAL, RPPS.parse(rpps or "").value, mode=AccessMode(mode))
        )
        chosen = action or ("document.read" if document_id else "document.search")
        explanation = space.access.explain(
            actor, chosen, patient_id=patient.id, document_id=document_id
        )
    verdict = "ALLOWED" if explanation.allowed else "DENIED"
    click.echo(f"{verdict} by rule {explanation.rule}")
    pro = explanation.facts.professional
    if pro is not None:
        click.echo(
            f"  professional: registered={pro.registered} "
            f"profession={terminal_text(pro.profession)} "
            f"grant={pro.grant} blocked={pro.blocked} emergency={pro.emergency}"
        )
        click.echo(
            f"  patient settings: object_all={pro.object_all} "
            f"object_emergency={pro.object_emergency} mask_all={pro.mask_all}"
        )
    document = explanation.facts.document
    if document is not None:
        click.echo(
            f"  document: class={terminal_text(document.class_code)} "
            f"type={terminal_text(document.type_code)} "
            f"masked={document.masked} confidentiality={document.confidentiality}"
        )
