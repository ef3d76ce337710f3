"""Who a person is and how to reach them: identity (INS and traits) and contacts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from .._text import LIMITS, check_optional_text, check_text
from ..identity import INS

__all__ = ["Contact", "Patient", "PatientIdentity", "PostalAddress"]


# Contact data ends up in e-mail headers and printed letters, where a CR/LF would be a
# header injection: every field goes through the one text check at the model boundary,
# each under its own name (mypy's attrs plugin wants a named function per converter).


def _email(value: str | None) -> str | None:
    return check_optional_text("email", value, max_length=LIMITS["label"])


def _phone(value: str | None) -> str | None:
    return check_optional_text("phone", value, max_length=LIMITS["line"])


def _used_name(value: str | None) -> str | None:
    return check_optional_text("used_name", value, max_length=LIMITS["name"])


def _postal_code(value: str) -> str:
    return check_text("postal_code", value, max_length=LIMITS["line"])


def _city(value: str) -> str:
    return check_text("city", value, max_length=LIMITS["line"])


def _country(value: str) -> str:
    return check_text("country", value, max_length=LIMITS["line"])


def _as_lines(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("'lines' must be a sequence of lines, not one string")
    return tuple(check_text("lines", line, max_length=LIMITS["line"]) for line in value)


@attrs.frozen(repr=False)
class PostalAddress:
    """A French postal address, as printed on a letter (norme AFNOR NF Z10-011: up to six
    lines of 38 characters, the last one "code postal + ville")."""

    lines: tuple[str, ...] = attrs.field(converter=_as_lines)
    postal_code: str = attrs.field(converter=_postal_code)
    city: str = attrs.field(converter=_city)
    country: str = attrs.field(default="FRANCE", converter=_country)

    def __repr__(self) -> str:
        return "PostalAddress(<redacted>)"


@attrs.frozen(repr=False)
class Contact:
    """How to reach a person outside the space (for invitations and notifications)."""

    email: str | None = attrs.field(default=None, converter=_email)
    phone: str | None = attrs.field(default=None, converter=_phone)
    postal_address: PostalAddress | None = None

    def __repr__(self) -> str:
        return "Contact(<redacted>)"


@attrs.frozen(repr=False)
class PatientIdentity:
    """The administrative data of a person (CSP R1111-27 1°): INS with its traits, contacts.

    :param ins: the INS; its traits are required, since they qualify the identity.
    :param used_name: the name in use, when it differs from the birth name.
    :param vitale_serial: the serial number of the person's carte Vitale, asked at activation
        (8 to 20 letters or digits: the real format is not published, an assumption).
    """

    ins: INS = attrs.field()
    contact: Contact = attrs.field(factory=Contact)
    used_name: str | None = attrs.field(default=None, converter=_used_name)
    vitale_serial: str | None = attrs.field(default=None)

    @vitale_serial.validator
    def _check_serial(self, _attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and not (
            8 <= len(value) <= 20 and value.isascii() and value.isalnum()
        ):
            raise ValueError("'vitale_serial' must be 8 to 20 letters or digits")

    @ins.validator
    def _needs_traits(self, _attribute: attrs.Attribute[INS], value: INS) -> None:
        if value.traits is None:
            raise ValueError("a person's INS must carry its identity traits")

    def __repr__(self) -> str:
        return f"PatientIdentity({self.ins!r})"


@attrs.frozen(repr=False)
class Patient:
    """A registered person: a stable opaque id (never the NIR), identity, registration time."""

    id: str
    identity: PatientIdentity
    created_at: datetime

    def __repr__(self) -> str:
        return f"Patient(id={self.id!r})"
