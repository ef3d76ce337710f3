"""The référencement and consents as pure rules: no I/O, the clock passed in.

Who may take a step is the policy's business (:mod:`monespace.policy`, one action per
role); which steps exist, from which state, and on which conditions (the référentiel's
mandatory criteria, a convention) is decided here, so that the workflow can be checked
exhaustively (tests/test_catalogue_workflow.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from typing import Final

import attrs

from monespace.errors import ConfigurationError, ReferencementError, ValidationError

from ._model import (
    App,
    Application,
    ApplicationStatus,
    Assessment,
    Consent,
    Convention,
    Criterion,
    Level,
    Referentiel,
    Scope,
)

__all__ = [
    "DEFAULT_EDITION",
    "STEPS",
    "CatalogueSettings",
    "Step",
    "app_of",
    "apply_step",
    "check_assessments",
    "check_grant",
    "check_renewal",
    "default_convention",
    "expiry_due",
    "load_referentiel",
    "may_exchange",
    "narrowed",
    "review_gaps",
]

#: The edition of the référentiel applications are assessed against by default.
DEFAULT_EDITION: Final = "2022-06-23"


@attrs.frozen
class CatalogueSettings:
    """Settings of the catalogue.

    :param convention_duration: how long a convention lasts when the minister's decision
        names no duration. [U] The sources give no standard duration; three years is this
        library's default.
    :param renewal_window: how long before its end a convention may be renewed.
    :param edition: the edition of the référentiel new applications are assessed against.
    """

    convention_duration: timedelta = timedelta(days=3 * 365)
    renewal_window: timedelta = timedelta(days=180)
    edition: str = DEFAULT_EDITION


class Step(StrEnum):
    """The steps of the référencement; the value is the audit action's suffix."""

    START_REVIEW = "start_review"
    FAVOURABLE = "favourable"
    UNFAVOURABLE = "unfavourable"
    REFERENCE = "reference"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    RENEW = "renew"


S = ApplicationStatus
#: Each step: the states it leaves from, and the state it leads to.
STEPS: Final[Mapping[Step, tuple[frozenset[ApplicationStatus], ApplicationStatus]]] = {
    Step.START_REVIEW: (frozenset({S.APPLIED}), S.UNDER_REVIEW),
    Step.FAVOURABLE: (frozenset({S.UNDER_REVIEW}), S.FAVOURABLE),
    Step.UNFAVOURABLE: (frozenset({S.UNDER_REVIEW}), S.UNFAVOURABLE),
    Step.REFERENCE: (frozenset({S.FAVOURABLE}), S.REFERENCED),
    Step.SUSPEND: (frozenset({S.REFERENCED}), S.SUSPENDED),
    Step.REINSTATE: (frozenset({S.SUSPENDED}), S.REFERENCED),
    Step.WITHDRAW: (frozenset({S.REFERENCED, S.SUSPENDED}), S.WITHDRAWN),
    Step.EXPIRE: (frozenset({S.REFERENCED, S.SUSPENDED}), S.EXPIRED),
    Step.RENEW: (frozenset({S.REFERENCED, S.SUSPENDED}), S.REFERENCED),
}


@functools.cache
def load_referentiel(edition: str = DEFAULT_EDITION) -> Referentiel:
    """The edition *edition* of the référentiel, from ``monespace/catalogue/data/``.

    :raises ConfigurationError: when the edition is not shipped.
    """
    name = f"referentiel-{edition}.json"
    path = resources.files("monespace.catalogue").joinpath("data", name)
    if not path.is_file():
        raise ConfigurationError(f"no référentiel edition {edition!r} is shipped")
    raw = json.loads(path.read_text(encoding="utf-8"))
    criteria = tuple(
        Criterion(
            id=c["id"],
            rubrique=c["rubrique"],
            title=c["title"],
            level=c["level"],
            evidence=c["evidence"],
            exchange_only=bool(c.get("exchange_only", False)),
        )
        for c in raw["criteria"]
    )
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"référentiel {edition!r} repeats a criterion id")
    return Referentiel(edition=raw["edition"], source=raw["source"], criteria=criteria)


def review_gaps(application: Application, referentiel: Referentiel) -> list[str]:
    """The mandatory criteria that stand in the way of a favourable opinion: each one that
    applies to the application's exchange tier and lacks evidence, has not been assessed, or
    failed. Empty when the application may pass review."""
    gaps: list[str] = []
    tier = application.dossier.exchange_tier
    for criterion in referentiel.criteria:
        if criterion.level is not Level.OBLIGATOIRE or not criterion.applies_to(tier):
            continue
        if criterion.id not in application.dossier.evidence:
            gaps.append(f"{criterion.id}: no evidence")
        elif application.assessments.get(criterion.id) is None:
            gaps.append(f"{criterion.id}: not assessed")
        elif application.assessments[criterion.id] is Assessment.FAILED:
            gaps.append(f"{criterion.id}: failed")
    return gaps


def check_assessments(
    assessments: Mapping[str, Assessment | str], referentiel: Referentiel
) -> dict[str, Assessment]:
    """*assessments* checked against the référentiel: every id must name one of its criteria.

    :raises ValidationError: for an unknown criterion id or finding.
    """
    checked: dict[str, Assessment] = {}
    for criterion_id, finding in assessments.items():
        if referentiel.criterion(criterion_id) is None:
            raise ValidationError(f"no criterion {criterion_id!r} in the référentiel")
        try:
            checked[criterion_id] = Assessment(finding)
        except ValueError:
            raise ValidationError("a finding is 'met' or 'failed'") from None
    return checked


def apply_step(
    application: Application,
    step: Step,
    now: datetime,
    *,
    referentiel: Referentiel | None = None,
    convention: Convention | None = None,
) -> Application:
    """*application* after *step* at *now*.

    :param referentiel: needed for a favourable opinion (its mandatory criteria).
    :param convention: needed to reference or renew (the new convention).
    :raises ReferencementError: when the step does not leave from the current state, a
        mandatory criterion stands in the way of a favourable opinion, there is no
        convention, or an expiry is not due.
    """
    sources, target = STEPS[step]
    if application.status not in sources:
        raise ReferencementError(
            f"cannot {step.value.replace('_', ' ')} an application that is "
            f"{application.status.value.replace('_', ' ')}"
        )
    status, new_convention = target, application.convention
    if step is Step.FAVOURABLE:
        if referentiel is None:
            raise ReferencementError("a favourable opinion is given against a référentiel")
        gaps = review_gaps(application, referentiel)
        if gaps:
            raise ReferencementError(
                "mandatory criteria stand in the way of a favourable opinion: " + "; ".join(gaps)
            )
    elif step in (Step.REFERENCE, Step.RENEW):
        if convention is None:
            raise ReferencementError("a référencement needs a signed convention (R1111-38)")
        _check_convention(application, convention, now)
        if step is Step.RENEW:
            assert application.convention is not None
            if now >= application.convention.until:
                raise ReferencementError("an expired convention cannot be renewed")
            # A renewal keeps a suspended service suspended.
            status = application.status
        new_convention = convention
    elif step is Step.REINSTATE:
        assert application.convention is not None
        if now >= application.convention.until:
            raise ReferencementError("the convention has ended: it cannot be reinstated")
    elif step is Step.EXPIRE and not expiry_due(application, now):
        raise ReferencementError("the convention has not ended")
    return attrs.evolve(application, status=status, changed_at=now, convention=new_convention)


def _check_convention(application: Application, convention: Convention, now: datetime) -> None:
    extra = convention.data_categories - application.dossier.scopes
    if extra:
        raise ReferencementError(
            "a convention allows only data categories the dossier asked for; not: "
            + " ".join(sorted(extra))
        )
    if convention.until <= now:
        raise ReferencementError("a convention must end in the future")


def check_renewal(application: Application, now: datetime, window: timedelta) -> None:
    """Refuse a renewal outside the window before the convention's end.

    :raises ReferencementError: when the convention ends later than *window* from *now*.
    """
    convention = application.convention
    if convention is not None and convention.until - now > window:
        raise ReferencementError("a convention is renewed in the window before its end")


def expiry_due(application: Application, now: datetime) -> bool:
    """Whether a tick at *now* should mark the application expired."""
    return (
        application.status in STEPS[Step.EXPIRE][0]
        and application.convention is not None
        and now >= application.convention.until
    )


def app_of(application: Application) -> App:
    """The catalogue's entry of a referenced (or formerly referenced) application."""
    dossier = application.dossier
    convention = application.convention
    return App(
        client_id=application.client_id,
        name=dossier.service,
        publisher=dossier.publisher,
        category=dossier.category,
        exchange_tier=dossier.exchange_tier,
        redirect_uris=dossier.redirect_uris,
        scopes=frozenset() if convention is None else convention.data_categories,
        status=application.status,
        convention_until=None if convention is None else convention.until,
        purposes=dossier.purposes,
    )


def check_grant(app: App, scopes: Iterable[Scope], now: datetime) -> frozenset[Scope]:
    """The scopes a patient may grant *app* at *now*: a non-empty subset of what its
    convention allows, while it may act.

    :raises ValidationError: for no scope, or a scope beyond the convention.
    :raises ReferencementError: when the app is not referenced (or its convention ended).
    """
    asked = frozenset(scopes)
    if not app.may_act(now):
        raise ReferencementError("this app is not referenced: no consent can be given to it")
    if not asked:
        raise ValidationError("a consent names at least one scope")
    beyond = asked - app.scopes
    if beyond:
        raise ValidationError(
            "scopes beyond the app's convention: " + " ".join(sorted(str(s) for s in beyond))
        )
    return asked


def narrowed(consent: Consent, scopes: Iterable[Scope]) -> frozenset[Scope]:
    """The scopes of *consent* narrowed to *scopes*, which must be a non-empty subset.

    :raises ValidationError: when *scopes* is empty or adds a scope (a new grant is needed).
    """
    asked = frozenset(scopes)
    if not asked:
        raise ValidationError("narrowing to no scope is a revocation: revoke the consent")
    if not asked <= consent.scopes:
        raise ValidationError("narrowing cannot add scopes: grant them instead")
    return asked


def may_exchange(app: App | None, consent: Consent | None, now: datetime) -> frozenset[Scope]:
    """The scopes an app may use for a patient at *now*: those of an active consent, while
    the app may act; empty otherwise."""
    if app is None or consent is None or not consent.active or not app.may_act(now):
        return frozenset()
    return consent.scopes & app.scopes


def default_convention(
    application: Application,
    now: datetime,
    settings: CatalogueSettings,
    *,
    duration: timedelta | None = None,
    data_categories: Iterable[Scope] | None = None,
    withdrawal_terms: str | None = None,
) -> Convention:
    """The convention of a minister's decision: the dossier's scopes unless narrowed, for
    *duration* (``settings.convention_duration`` by default), from *now*."""
    return Convention(
        signed_at=now,
        until=now + (duration if duration is not None else settings.convention_duration),
        data_categories=(
            application.dossier.scopes if data_categories is None else frozenset(data_categories)
        ),
        withdrawal_terms=withdrawal_terms
        or "Retrait par décision du ministre, après notification à l'éditeur ; "
        "l'éditeur peut demander le retrait de son service à tout moment.",
    )
