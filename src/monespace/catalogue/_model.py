"""What the catalogue is made of: referenced apps, their référencement, patients' consents.

An :class:`Application` is a publisher's request for référencement (CSP R1111-39), carrying
its :class:`Dossier`; it moves through :class:`ApplicationStatus` by the pure rules of
``_rules``. Once the minister references it and a :class:`Convention` is signed (R1111-38),
the public catalogue shows it as an :class:`App`, and patients may give it a
:class:`Consent`: the scopes it may use on their data, within its convention.

.. versionadded:: 0.2
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from monespace._text import check_text
from monespace.errors import ValidationError

__all__ = [
    "CLIENT_ID",
    "TIER_SCOPES",
    "App",
    "Application",
    "ApplicationStatus",
    "Assessment",
    "Consent",
    "Convention",
    "Criterion",
    "Dossier",
    "ExchangeTier",
    "Level",
    "Purpose",
    "Referentiel",
    "Role",
    "Scope",
    "check_redirect_uri",
]


class Scope(StrEnum):
    """What an app may do with a patient's data: the exchange APIs of Mon espace santé
    (documents, agenda, mesures), each read or write. Also the OAuth 2 scope strings."""

    DOCUMENTS_READ = "documents.read"
    DOCUMENTS_WRITE = "documents.write"
    AGENDA_READ = "agenda.read"
    AGENDA_WRITE = "agenda.write"
    MESURES_READ = "mesures.read"
    MESURES_WRITE = "mesures.write"


class ExchangeTier(StrEnum):
    """How far an app exchanges data with the space (arrêté of 23 June 2022: conformity to
    the référentiel alone does not allow any exchange, which is a higher tier).

    The tiers are cumulative, an assumption of this library (docs/explanation/catalogue.md):
    ``documents`` allows the documents API, ``agenda`` adds the agenda's, ``mesures`` adds
    the measures'. ``none`` is a listing in the catalogue without any exchange.
    """

    NONE = "none"
    DOCUMENTS = "documents"
    AGENDA = "agenda"
    MESURES = "mesures"


_DOCUMENTS = frozenset({Scope.DOCUMENTS_READ, Scope.DOCUMENTS_WRITE})
_AGENDA = frozenset({Scope.AGENDA_READ, Scope.AGENDA_WRITE})
_MESURES = frozenset({Scope.MESURES_READ, Scope.MESURES_WRITE})

#: The scopes each exchange tier allows an app to ask for.
TIER_SCOPES: Final[Mapping[ExchangeTier, frozenset[Scope]]] = MappingProxyType(
    {
        ExchangeTier.NONE: frozenset(),
        ExchangeTier.DOCUMENTS: _DOCUMENTS,
        ExchangeTier.AGENDA: _DOCUMENTS | _AGENDA,
        ExchangeTier.MESURES: _DOCUMENTS | _AGENDA | _MESURES,
    }
)


class Purpose(StrEnum):
    """The four fields a referenced service may serve (R1111-37, docs/domain-rules.md §7.1)."""

    PREVENTION = "prevention"
    DIAGNOSIS = "diagnosis"
    CARE = "care"
    """Soins et suivi médical."""
    MEDICO_SOCIAL = "medico_social"
    """Suivi social ou médico-social."""


class ApplicationStatus(StrEnum):
    """Where an application for référencement stands (R1111-38, R1111-39)."""

    APPLIED = "applied"
    """Submitted by the publisher, waiting for a reviewer."""
    UNDER_REVIEW = "under_review"
    """A reviewer assesses the dossier against the référentiel."""
    FAVOURABLE = "favourable"
    """The commission de référencement gave a favourable opinion to the minister."""
    UNFAVOURABLE = "unfavourable"
    """The commission's opinion is unfavourable: the application ends there."""
    REFERENCED = "referenced"
    """The minister referenced the service and the convention is signed: it is listed."""
    SUSPENDED = "suspended"
    """The minister's office suspended it (an audit finding): no exchange until reinstated."""
    WITHDRAWN = "withdrawn"
    """Withdrawn from the catalogue, under the convention's terms: final."""
    EXPIRED = "expired"
    """The convention ended without renewal: final (a new application is needed)."""


class Role(StrEnum):
    """Who takes each step of the référencement."""

    VENDOR = "vendor"
    """The publisher: applies, completes its dossier, may withdraw its service."""
    REVIEWER = "reviewer"
    """Instructs the dossier against the référentiel (the CNAM service, ANS audits)."""
    COMMISSION = "commission"
    """The commission de référencement (chaired by the DNS and the CNAM): gives its opinion."""
    MINISTER = "minister"
    """The minister's office: references, signs the convention, suspends, withdraws, renews."""


class Level(StrEnum):
    """How a criterion of the référentiel counts (arrêté of 23 June 2022)."""

    OBLIGATOIRE = "obligatoire"
    """A mandatory threshold: no favourable review while it lacks evidence or failed."""
    OPTIONNEL = "optionnel"
    """An informative item: assessed and shown, never blocking."""


class Assessment(StrEnum):
    """A reviewer's finding on one criterion."""

    MET = "met"
    FAILED = "failed"


#: Client ids: what OAuth clients and audit events name an app by.
CLIENT_ID: Final = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")

_NAME = 200
_LONG = 20_000
_URI = 2_000
_EVIDENCE = 2_000
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})


def check_redirect_uri(uri: str) -> str:
    """*uri* if it is a redirect URI an app may register: an absolute ``https`` URL without
    fragment, or ``http`` on the loopback interface (development, RFC 8252 §7.3). URIs are
    compared by exact match, so nothing is normalised.

    :raises ValidationError: naming the rule, never the URI.
    """
    check_text("redirect_uri", uri, max_length=_URI)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise ValidationError("a redirect URI is not a valid URL") from None
    del port
    if parts.fragment or "#" in uri:
        raise ValidationError("a redirect URI must not have a fragment (RFC 6749 §3.1.2)")
    if not parts.netloc or " " in uri or parts.username or parts.password:
        raise ValidationError("a redirect URI must be an absolute URL with a host")
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return uri
    if parts.scheme == "http" and (host in _LOOPBACK or f"[{host}]" in _LOOPBACK):
        return uri
    raise ValidationError("a redirect URI must use https (http only on 127.0.0.1 or localhost)")


def _redirect_uris(value: Any) -> tuple[str, ...]:
    uris = tuple(value)
    if len(set(uris)) != len(uris):
        raise ValidationError("a redirect URI is listed twice")
    return tuple(check_redirect_uri(u) for u in uris)


def _scopes(value: Any) -> frozenset[Scope]:
    if isinstance(value, str):
        raise TypeError("scopes must be a collection of scope names, not one string")
    try:
        return frozenset(Scope(v) for v in value)
    except ValueError:
        raise ValidationError(f"unknown scope; known scopes: {' '.join(Scope)}") from None


def _purposes(value: Any) -> frozenset[Purpose]:
    if isinstance(value, str):
        raise TypeError("purposes must be a collection of purpose names, not one string")
    try:
        return frozenset(Purpose(v) for v in value)
    except ValueError:
        raise ValidationError(f"unknown purpose; known purposes: {', '.join(Purpose)}") from None


def _line(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_text(attribute.name, value, max_length=_NAME)
    if not value.strip():
        raise ValidationError(f"{attribute.name!r} must not be blank")


def _long(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_text(attribute.name, value, max_length=_LONG, multiline=True)
    if not value.strip():
        raise ValidationError(f"{attribute.name!r} must not be blank")


def _evidence(value: Any) -> Mapping[str, str]:
    evidence = dict(value)
    for criterion, reference in evidence.items():
        check_text("criterion", criterion, max_length=_NAME)
        check_text("evidence", reference, max_length=_EVIDENCE, multiline=True)
        if not reference.strip():
            raise ValidationError("an evidence reference must not be blank")
    return MappingProxyType(dict(sorted(evidence.items())))


def _findings(value: Mapping[str, Assessment | str]) -> Mapping[str, Assessment]:
    try:
        findings = {k: Assessment(a) for k, a in sorted(dict(value).items())}
    except ValueError:
        raise ValidationError("a finding is 'met' or 'failed'") from None
    return MappingProxyType(findings)


def _uri_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _aware(_inst: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{attribute.name!r} must be timezone-aware")


@attrs.frozen
class Dossier:
    """What a publisher submits to apply for référencement (R1111-39).

    :param publisher: the publisher (a company or a public body).
    :param service: the service's name, as the catalogue shows it.
    :param category: the catalogue's category (free text such as ``"Suivi du poids"``).
    :param purposes: among the four of R1111-37, at least one.
    :param exchange_tier: the data exchange asked for (``none``: a listing only).
    :param scopes: the scopes asked, within the tier (:data:`TIER_SCOPES`).
    :param retention: how long the service keeps exchanged data, in words.
    :param consent_text: the information text for the holder's prior express consent.
    :param dpia_reference: the reference of the data protection impact assessment (GDPR
        art. 35); required for any exchange.
    :param redirect_uris: where the OAuth server may send the patient back (exact match).
    :param evidence: criterion id → the evidence supplied for it (a certificate number, a
        document reference).
    """

    publisher: str = attrs.field(validator=_line)
    service: str = attrs.field(validator=_line)
    category: str = attrs.field(validator=_line)
    purposes: frozenset[Purpose] = attrs.field(converter=_purposes)
    exchange_tier: ExchangeTier = attrs.field(converter=ExchangeTier)
    scopes: frozenset[Scope] = attrs.field(converter=_scopes, factory=frozenset)
    retention: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    consent_text: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    dpia_reference: str | None = None
    redirect_uris: tuple[str, ...] = attrs.field(converter=_redirect_uris, default=())
    evidence: Mapping[str, str] = attrs.field(converter=_evidence, factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.purposes:
            raise ValidationError("a dossier names at least one purpose of R1111-37")
        extra = self.scopes - TIER_SCOPES[self.exchange_tier]
        if extra:
            raise ValidationError(
                f"scopes beyond the exchange tier {self.exchange_tier!s}: {' '.join(sorted(extra))}"
            )
        check_text("retention", self.retention, max_length=_NAME)
        check_text("consent_text", self.consent_text, max_length=_LONG, multiline=True)
        if self.dpia_reference is not None:
            check_text("dpia_reference", self.dpia_reference, max_length=_NAME)
        if self.exchange_tier is not ExchangeTier.NONE:
            missing = [
                name
                for name, value in (
                    ("scopes", self.scopes),
                    ("retention", self.retention.strip()),
                    ("consent_text", self.consent_text.strip()),
                    ("dpia_reference", (self.dpia_reference or "").strip()),
                    ("redirect_uris", self.redirect_uris),
                )
                if not value
            ]
            if missing:
                raise ValidationError(
                    "a data exchange needs (R1111-39) " + ", ".join(missing) + " in the dossier"
                )


@attrs.frozen
class Convention:
    """The convention signed between the publisher, the minister and the CNAM before going
    live (R1111-38).

    :param signed_at: when it was signed (and took effect).
    :param until: when the référencement ends unless renewed.
    :param data_categories: the scopes the service may use with the holder's consent.
    :param withdrawal_terms: the withdrawal procedure, in words.
    """

    signed_at: datetime = attrs.field(validator=_aware)
    until: datetime = attrs.field(validator=_aware)
    data_categories: frozenset[Scope] = attrs.field(converter=_scopes)
    withdrawal_terms: str = attrs.field(validator=_long)

    def __attrs_post_init__(self) -> None:
        if self.until <= self.signed_at:
            raise ValidationError("a convention must end after it is signed")


@attrs.frozen
class Application:
    """An application for référencement and where it stands.

    :param id: the application's id.
    :param client_id: the id the service will have as an OAuth client (:data:`CLIENT_ID`).
    :param vendor_id: the publisher's account that applied.
    :param edition: the edition of the référentiel it is assessed against.
    :param assessments: criterion id → the reviewer's finding.
    :param convention: the convention, once referenced.
    :param changed_at: the time of the last transition.
    """

    id: str
    client_id: str
    vendor_id: str
    dossier: Dossier
    status: ApplicationStatus = attrs.field(converter=ApplicationStatus)
    applied_at: datetime = attrs.field(validator=_aware)
    changed_at: datetime = attrs.field(validator=_aware)
    edition: str
    assessments: Mapping[str, Assessment] = attrs.field(converter=_findings, factory=dict)
    convention: Convention | None = None

    def __attrs_post_init__(self) -> None:
        if not CLIENT_ID.fullmatch(self.client_id):
            raise ValidationError(
                "a client id is 3 to 64 lowercase letters, digits and hyphens, "
                "starting with a letter or digit"
            )


@attrs.frozen
class App:
    """A service of the catalogue, as OAuth clients and the policy see it.

    :param client_id: its OAuth client id.
    :param name: the service's name.
    :param scopes: what its convention allows (a patient grants a subset).
    :param status: :attr:`ApplicationStatus.REFERENCED` while listed; suspended, withdrawn
        or expired apps keep their entry (their consents stop working).
    :param convention_until: when its référencement ends unless renewed.
    """

    client_id: str
    name: str
    publisher: str
    category: str
    exchange_tier: ExchangeTier = attrs.field(converter=ExchangeTier)
    redirect_uris: tuple[str, ...] = attrs.field(converter=_uri_tuple)
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    status: ApplicationStatus = attrs.field(converter=ApplicationStatus)
    convention_until: datetime | None = attrs.field(validator=_aware)
    purposes: frozenset[Purpose] = attrs.field(converter=_purposes, factory=frozenset)

    def may_act(self, now: datetime) -> bool:
        """Whether the app may exchange data at *now*: referenced, and its convention not
        ended (a tick marks it expired; until then it is already refused)."""
        return self.status is ApplicationStatus.REFERENCED and (
            self.convention_until is None or now < self.convention_until
        )


@attrs.frozen
class Consent:
    """A patient's consent to one app: the scopes it may use on their data.

    :param by: who gave it: ``"patient:<id>"`` or ``"representative:<id>"``.
    :param revoked_at: when it was revoked; ``None`` while in force.
    """

    patient_id: str
    client_id: str
    scopes: frozenset[Scope] = attrs.field(converter=_scopes)
    granted_at: datetime
    by: str
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the consent is in force (not revoked)."""
        return self.revoked_at is None


@attrs.frozen
class Criterion:
    """One criterion of the référentiel.

    :param id: a stable id (``SEC-01``), which assessments and evidence refer to.
    :param rubrique: ``security``, ``interoperability``, ``ethics``, ``accessibility``,
        ``ecoscore``.
    :param level: obligatoire or optionnel.
    :param evidence: what the publisher must supply for it.
    :param exchange_only: whether it applies only to services that exchange data.
    """

    id: str
    rubrique: str
    title: str
    level: Level = attrs.field(converter=Level)
    evidence: str
    exchange_only: bool = False

    def applies_to(self, tier: ExchangeTier) -> bool:
        """Whether the criterion applies to a service of this exchange tier."""
        return not self.exchange_only or tier is not ExchangeTier.NONE


@attrs.frozen
class Referentiel:
    """One edition of the référentiel, read from package data."""

    edition: str
    source: str
    criteria: tuple[Criterion, ...]

    def criterion(self, criterion_id: str) -> Criterion | None:
        """The criterion with this id, or ``None``."""
        return next((c for c in self.criteria if c.id == criterion_id), None)
