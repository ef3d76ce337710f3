"""``space.catalogue`` and ``space.consents``: the référencement of third-party services, the
public catalogue, and patients' consents to referenced apps.

Orchestration only: open a unit of work, ask the policy (who may take each step, who may
grant a consent), apply the pure rules of ``_rules``, map through ``_mapping``, store,
audit. What an app may then do with a patient's data is decided by the policy on every
call (``app_acts_for_patient``), from the facts :mod:`monespace.access` gathers.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from monespace._ids import new_id
from monespace.actors import Actor
from monespace.errors import ConflictError, NotFoundError, ReferencementError, ValidationError
from monespace.policy import Action, Resource

from ._mapping import (
    app_from_row,
    app_row,
    application_from_row,
    application_row,
    consent_from_row,
    consent_row,
)
from ._model import (
    App,
    Application,
    ApplicationStatus,
    Assessment,
    Consent,
    Dossier,
    ExchangeTier,
    Referentiel,
    Scope,
)
from ._rules import (
    Step,
    app_of,
    apply_step,
    check_assessments,
    check_grant,
    check_renewal,
    default_convention,
    expiry_due,
    load_referentiel,
    narrowed,
    review_gaps,
)

if TYPE_CHECKING:
    from monespace._unit import Core, Unit

__all__ = ["CatalogueService", "ConsentService"]

#: The audit action of each step of the référencement.
_STEP_ACTION = {
    Step.START_REVIEW: Action.CATALOGUE_REVIEW,
    Step.FAVOURABLE: Action.CATALOGUE_OPINION,
    Step.UNFAVOURABLE: Action.CATALOGUE_OPINION,
    Step.REFERENCE: Action.CATALOGUE_DECIDE,
    Step.SUSPEND: Action.CATALOGUE_DECIDE,
    Step.REINSTATE: Action.CATALOGUE_DECIDE,
    Step.RENEW: Action.CATALOGUE_DECIDE,
    Step.WITHDRAW: Action.CATALOGUE_WITHDRAW,
    Step.EXPIRE: Action.CATALOGUE_EXPIRE,
}


def _slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-") or "app"


class CatalogueService:
    """``space.catalogue``: the référencement workflow and the public catalogue.

    .. versionadded:: 0.2
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def referentiel(self) -> Referentiel:
        """The edition of the référentiel new applications are assessed against
        (``Settings.catalogue.edition``)."""
        return load_referentiel(self._core.settings.catalogue.edition)

    # --- the vendor's side -------------------------------------------------------------------

    def apply(self, actor: Actor, dossier: Dossier, *, client_id: str | None = None) -> Application:
        """Apply for référencement with *dossier* (R1111-39): the application is ``applied``.

        :param client_id: the OAuth client id wished for; by default one is made from the
            service's name.
        :raises ValidationError: an invalid client id; evidence for an unknown criterion.
        :raises ConflictError: when the client id is taken.
        :raises AccessDeniedError: for anyone but a vendor.
        """
        referentiel = self.referentiel
        unknown = [c for c in dossier.evidence if referentiel.criterion(c) is None]
        if unknown:
            raise ValidationError(f"evidence for unknown criteria: {', '.join(unknown)}")
        application_id = new_id()
        chosen = client_id or f"{_slug(dossier.service)}-{secrets.token_hex(4)}"
        with self._core.unit() as unit:
            resource = Resource(None, "application", application_id)
            decision = unit.authorize(actor, Action.CATALOGUE_APPLY, resource)
            application = Application(
                id=application_id,
                client_id=chosen,
                vendor_id=actor.id,
                dossier=dossier,
                status=ApplicationStatus.APPLIED,
                applied_at=unit.now,
                changed_at=unit.now,
                edition=referentiel.edition,
            )
            if unit.tx.catalogue.app(chosen) is not None:
                raise ConflictError("this client id is taken")
            unit.tx.catalogue.add_application(application_row(application))
            unit.record(actor, Action.CATALOGUE_APPLY, resource, decision)
            return application

    def withdraw(self, actor: Actor, application_id: str) -> Application:
        """Withdraw a referenced or suspended service from the catalogue (the minister's
        office, or the vendor who applied): final; every consent stops working."""
        return self._step(actor, application_id, Step.WITHDRAW)

    # --- the review ----------------------------------------------------------------------------

    def start_review(self, actor: Actor, application_id: str) -> Application:
        """A reviewer takes the application up: ``applied`` → ``under_review``."""
        return self._step(actor, application_id, Step.START_REVIEW)

    def assess(
        self, actor: Actor, application_id: str, findings: Mapping[str, Assessment | str]
    ) -> Application:
        """A reviewer records findings on criteria of the référentiel (``met`` or
        ``failed``), while the application is under review. Later findings replace earlier
        ones on the same criterion.

        :raises ValidationError: for an unknown criterion or finding.
        :raises ReferencementError: when the application is not under review.
        """
        with self._core.unit() as unit:
            resource = Resource(None, "application", application_id)
            decision = unit.authorize(actor, Action.CATALOGUE_REVIEW, resource)
            application = self._load(unit, application_id)
            if application.status is not ApplicationStatus.UNDER_REVIEW:
                raise ReferencementError("findings are recorded while under review only")
            checked = check_assessments(findings, load_referentiel(application.edition))
            updated = attrs.evolve(
                application,
                changed_at=unit.now,
                assessments={**application.assessments, **checked},
            )
            unit.tx.catalogue.update_application(application_row(updated))
            unit.record(actor, Action.CATALOGUE_REVIEW, resource, decision)
            return updated

    def gaps(self, application_id: str) -> list[str]:
        """What stands in the way of a favourable opinion (empty when nothing does)."""
        application = self.application(application_id)
        return review_gaps(application, load_referentiel(application.edition))

    def opinion(self, actor: Actor, application_id: str, *, favourable: bool) -> Application:
        """The commission's opinion: ``under_review`` → ``favourable`` (only when every
        mandatory criterion has evidence and was found met) or ``unfavourable``."""
        step = Step.FAVOURABLE if favourable else Step.UNFAVOURABLE
        return self._step(actor, application_id, step)

    # --- the minister's office -----------------------------------------------------------------

    def reference(
        self,
        actor: Actor,
        application_id: str,
        *,
        duration: timedelta | None = None,
        data_categories: Iterable[Scope | str] | None = None,
        withdrawal_terms: str | None = None,
    ) -> Application:
        """The minister's decision and the convention (R1111-38): ``favourable`` →
        ``referenced``; the service appears in the catalogue.

        :param duration: how long the convention lasts (``Settings.catalogue
            .convention_duration`` by default).
        :param data_categories: the scopes it may use with consent (the dossier's by
            default; never more).
        """
        categories = None if data_categories is None else [Scope(c) for c in data_categories]
        return self._step(
            actor,
            application_id,
            Step.REFERENCE,
            duration=duration,
            data_categories=categories,
            withdrawal_terms=withdrawal_terms,
        )

    def suspend(self, actor: Actor, application_id: str) -> Application:
        """Suspend a referenced service (an audit finding): its consents stop working."""
        return self._step(actor, application_id, Step.SUSPEND)

    def reinstate(self, actor: Actor, application_id: str) -> Application:
        """Lift a suspension, while the convention lasts."""
        return self._step(actor, application_id, Step.REINSTATE)

    def renew(
        self, actor: Actor, application_id: str, *, duration: timedelta | None = None
    ) -> Application:
        """Renew the convention before it ends (within ``Settings.catalogue.renewal_window``):
        a new convention from now, with the same data categories and terms."""
        return self._step(actor, application_id, Step.RENEW, duration=duration)

    def tick(self, now: datetime) -> dict[str, int]:
        """Mark expired every service whose convention ended at *now*."""
        with self._core.storage.read() as tx:
            due = [
                application_from_row(row)
                for status in (ApplicationStatus.REFERENCED, ApplicationStatus.SUSPENDED)
                for row in tx.catalogue.applications(status=str(status))
            ]
        expired = 0
        for application in due:
            if expiry_due(application, now):
                self._step(Actor.system("tick"), application.id, Step.EXPIRE, now=now)
                expired += 1
        return {"apps_expired": expired}

    # --- reading -------------------------------------------------------------------------------

    def application(self, application_id: str) -> Application:
        """An application and its dossier (for the parties of the référencement, through
        trusted code: the command line, an administration page).

        :raises NotFoundError: when there is none.
        """
        with self._core.storage.read() as tx:
            row = tx.catalogue.application(application_id)
        if row is None:
            raise NotFoundError("no such application")
        return application_from_row(row)

    def applications(self, *, status: ApplicationStatus | str | None = None) -> list[Application]:
        """Applications, optionally of one status, by id."""
        wanted = None if status is None else str(ApplicationStatus(status))
        with self._core.storage.read() as tx:
            rows = tx.catalogue.applications(status=wanted)
        return [application_from_row(r) for r in rows]

    def app(self, client_id: str) -> App:
        """The catalogue's entry of *client_id*, whatever its status (the OAuth server
        checks :meth:`App.may_act`).

        :raises NotFoundError: when no app has this client id.
        """
        with self._core.storage.read() as tx:
            row = tx.catalogue.app(client_id)
        if row is None:
            raise NotFoundError("no app with this client id")
        return app_from_row(row)

    def search(
        self,
        text: str | None = None,
        *,
        category: str | None = None,
        tier: ExchangeTier | str | None = None,
    ) -> list[App]:
        """The public catalogue: referenced services whose name, publisher or category
        contains *text* (ignoring case and accents), of *category*, of exchange *tier*. No
        actor: it is public, and says nothing about anyone."""
        wanted_tier = None if tier is None else ExchangeTier(tier)
        now = self._core.now()
        with self._core.storage.read() as tx:
            rows = tx.catalogue.apps(status=str(ApplicationStatus.REFERENCED))
        found = []
        needle = None if text is None else _folded(text)
        for app in (app_from_row(r) for r in rows):
            if not app.may_act(now):
                continue
            if category is not None and _folded(app.category) != _folded(category):
                continue
            if wanted_tier is not None and app.exchange_tier is not wanted_tier:
                continue
            haystack = _folded(f"{app.name} {app.publisher} {app.category}")
            if needle is not None and needle not in haystack:
                continue
            found.append(app)
        return found

    # --- the steps -----------------------------------------------------------------------------

    def _load(self, unit: Unit, application_id: str) -> Application:
        row = unit.tx.catalogue.application(application_id)
        if row is None:
            raise NotFoundError("no such application")
        return application_from_row(row)

    def _step(
        self,
        actor: Actor,
        application_id: str,
        step: Step,
        *,
        now: datetime | None = None,
        duration: timedelta | None = None,
        data_categories: list[Scope] | None = None,
        withdrawal_terms: str | None = None,
    ) -> Application:
        action = _STEP_ACTION[step]
        with self._core.unit() as unit:
            moment = now or unit.now
            resource = Resource(None, "application", application_id)
            decision = unit.authorize(actor, action, resource)
            application = self._load(unit, application_id)
            settings = self._core.settings.catalogue
            convention = None
            if step is Step.REFERENCE:
                convention = default_convention(
                    application,
                    moment,
                    settings,
                    duration=duration,
                    data_categories=data_categories,
                    withdrawal_terms=withdrawal_terms,
                )
            elif step is Step.RENEW and application.convention is not None:
                check_renewal(application, moment, settings.renewal_window)
                previous = application.convention
                convention = default_convention(
                    application,
                    moment,
                    settings,
                    duration=duration,
                    data_categories=previous.data_categories,
                    withdrawal_terms=previous.withdrawal_terms,
                )
            updated = apply_step(
                application,
                step,
                moment,
                referentiel=load_referentiel(application.edition),
                convention=convention,
            )
            unit.tx.catalogue.update_application(application_row(updated))
            if updated.convention is not None:
                unit.tx.catalogue.put_app(app_row(app_of(updated), updated.id))
            unit.record(actor, action, resource, f"{decision.rule}:{step.value}")
            return updated


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class ConsentService:
    """``space.consents``: the apps a patient connected and what each may do.

    .. versionadded:: 0.2
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def grant(
        self, actor: Actor, patient_id: str, client_id: str, scopes: Iterable[Scope | str]
    ) -> Consent:
        """Connect the app *client_id* to *patient_id*'s space with *scopes*: the holder's
        prior express consent (L1111-13-1 III). Granting again replaces the scopes.

        :raises ValidationError: no scope, an unknown scope, or one beyond the convention.
        :raises ReferencementError: when the app is not referenced now.
        :raises NotFoundError: when no app has this client id.
        :raises AccessDeniedError: for anyone but the holder or their representative.
        """
        asked = frozenset(Scope(s) for s in _scope_names(scopes))
        with self._core.unit() as unit:
            resource = Resource(patient_id, "consent", client_id)
            decision = unit.authorize(actor, Action.CONSENT_GRANT, resource)
            row = unit.tx.catalogue.app(client_id)
            if row is None:
                raise NotFoundError("no app with this client id")
            granted = check_grant(app_from_row(row), asked, unit.now)
            consent = Consent(
                patient_id=patient_id,
                client_id=client_id,
                scopes=granted,
                granted_at=unit.now,
                by=f"{actor.kind}:{actor.id}",
            )
            unit.tx.catalogue.put_consent(consent_row(consent))
            unit.record(actor, Action.CONSENT_GRANT, resource, decision)
            return consent

    def of(self, actor: Actor, patient_id: str) -> list[Consent]:
        """Every consent *patient_id* gave, in force or revoked, by client id."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "consents")
            decision = unit.authorize(actor, Action.CONSENT_READ, resource)
            consents = [consent_from_row(r) for r in unit.tx.catalogue.consents(patient_id)]
            unit.record(actor, Action.CONSENT_READ, resource, decision)
            return consents

    def narrow(
        self, actor: Actor, patient_id: str, client_id: str, scopes: Iterable[Scope | str]
    ) -> Consent:
        """Keep only *scopes* of a consent in force (a subset of its scopes).

        :raises NotFoundError: when there is no consent in force to this app.
        """
        asked = frozenset(Scope(s) for s in _scope_names(scopes))
        with self._core.unit() as unit:
            resource = Resource(patient_id, "consent", client_id)
            decision = unit.authorize(actor, Action.CONSENT_NARROW, resource)
            consent = self._in_force(unit, patient_id, client_id)
            updated = Consent(
                patient_id=patient_id,
                client_id=client_id,
                scopes=narrowed(consent, asked),
                granted_at=consent.granted_at,
                by=consent.by,
            )
            unit.tx.catalogue.put_consent(consent_row(updated))
            unit.record(actor, Action.CONSENT_NARROW, resource, decision)
            return updated

    def revoke(self, actor: Actor, patient_id: str, client_id: str) -> Consent:
        """Revoke a consent, with immediate effect: the app's next call is refused.

        :raises NotFoundError: when there is no consent in force to this app.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "consent", client_id)
            decision = unit.authorize(actor, Action.CONSENT_REVOKE, resource)
            consent = self._in_force(unit, patient_id, client_id)
            revoked = Consent(
                patient_id=patient_id,
                client_id=client_id,
                scopes=consent.scopes,
                granted_at=consent.granted_at,
                by=consent.by,
                revoked_at=unit.now,
            )
            unit.tx.catalogue.put_consent(consent_row(revoked))
            unit.record(actor, Action.CONSENT_REVOKE, resource, decision)
            return revoked

    def active(self, patient_id: str, client_id: str) -> Consent | None:
        """The consent in force of *patient_id* to *client_id*, if the app may act now
        (referenced, convention not ended); ``None`` otherwise. A lookup for the token
        service, which decides nothing by itself: every use of the data is still decided
        by the policy."""
        now = self._core.now()
        with self._core.storage.read() as tx:
            app = tx.catalogue.app(client_id)
            row = tx.catalogue.consent(patient_id, client_id)
        if app is None or row is None or not app_from_row(app).may_act(now):
            return None
        consent = consent_from_row(row)
        return consent if consent.active else None

    @staticmethod
    def _in_force(unit: Unit, patient_id: str, client_id: str) -> Consent:
        row = unit.tx.catalogue.consent(patient_id, client_id)
        consent = None if row is None else consent_from_row(row)
        if consent is None or not consent.active:
            raise NotFoundError("no consent in force to this app")
        return consent


def _scope_names(scopes: Iterable[Scope | str]) -> list[str]:
    if isinstance(scopes, str):
        raise TypeError("scopes must be a collection of scope names, not one string")
    names = [str(s) for s in scopes]
    unknown = [n for n in names if n not in {str(s) for s in Scope}]
    if unknown:
        raise ValidationError(f"unknown scope; known scopes: {' '.join(Scope)}")
    return names
