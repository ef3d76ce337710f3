"""The INS (identifiant national de santé): a matricule, its OID and the identity traits.

Rules follow ``docs/domain-rules.md`` §1.5: the matricule is the NIR, or failing that the NIA
(which is built like a NIR, key included), and the OID says which one it is and whether it is
a real, test or demo identity. The HL7v2 assigning authorities are those of the CI-SIS
examples (``ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO``).

Matricules and traits are personal data: error messages name the rule or trait that failed and
never carry a value, and the ``repr`` of every class here is masked.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from monespace.errors import InvalidINSError, InvalidNIRError
from monespace.identity._nir import NIR, Sex

__all__ = [
    "INS",
    "INS_NIA_OID",
    "INS_NIR_DEMO_OID",
    "INS_NIR_OID",
    "INS_NIR_TEST_OID",
    "INSTraits",
]

#: OID of a real INS whose matricule is a NIR.
INS_NIR_OID: Final = "1.2.250.1.213.1.4.8"
#: OID of a real INS whose matricule is an NIA (numéro identifiant d'attente).
INS_NIA_OID: Final = "1.2.250.1.213.1.4.9"
#: OID of a test INS (the one the CI-SIS examples use).
INS_NIR_TEST_OID: Final = "1.2.250.1.213.1.4.10"
#: OID of a demonstration INS.
INS_NIR_DEMO_OID: Final = "1.2.250.1.213.1.4.11"

# HL7v2 namespace of each OID. The CI-SIS examples keep the "ASIP-SANTE-INS-NIR" namespace
# for the test OID (".4.10"); the demo OID follows the same pattern.
_NAMESPACES: Final = {
    INS_NIR_OID: "ASIP-SANTE-INS-NIR",
    INS_NIA_OID: "ASIP-SANTE-INS-NIA",
    INS_NIR_TEST_OID: "ASIP-SANTE-INS-NIR",
    INS_NIR_DEMO_OID: "ASIP-SANTE-INS-NIR",
}

# INS-A and INS-C were the "calculated" INS of the first DMP, derived from the Vitale card
# data; they were replaced by the NIR-based INS and must not be accepted as identities today.
_LEGACY_OIDS: Final = {"1.2.250.1.213.1.4.1": "INS-A", "1.2.250.1.213.1.4.2": "INS-C"}

# INSEE COG place code: 2 digits (or 2A/2B) + 3 digits; overseas (97x) and abroad (99xxx)
# codes have the same 5-character shape.
_PLACE_CODE: Final = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{3}")


def _normalise_oid(oid: str) -> str:
    # FHIR writes OIDs as "urn:oid:1.2.250..."; accept that spelling so callers need not strip it.
    oid = oid.strip()
    return oid.removeprefix("urn:oid:")


def _validate_oid(_instance: object, _attribute: attrs.Attribute[str], oid: str) -> None:
    if oid in _LEGACY_OIDS:
        # A legacy OID is one of two public constants, so naming it leaks nothing.
        raise InvalidINSError(
            f"the OID {oid} ({_LEGACY_OIDS[oid]}) is an obsolete, pre-NIR INS; "
            f"use the NIR-based INS (OID {INS_NIR_OID})"
        )
    if oid not in _NAMESPACES:
        # The unknown value is not echoed: with the arguments swapped it would be a matricule.
        raise InvalidINSError(
            f"the OID is not an INS OID; expected one of {', '.join(_NAMESPACES)}"
        )


def _to_matricule(matricule: NIR | str) -> NIR:
    if isinstance(matricule, NIR):
        return matricule
    try:
        return NIR.parse(matricule)
    except InvalidNIRError as exc:
        # The NIR message names the rule and never the value, so it can be passed on.
        raise InvalidINSError(f"invalid INS matricule: {exc}") from exc


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"the INS trait {name!r} must be a str")
    if not value.strip():
        raise InvalidINSError(f"the INS trait {name!r} must not be empty")
    # Categories C* are control, format (zero-width joiners, right-to-left overrides),
    # surrogate, private-use and unassigned characters: none belongs in a civil-status name,
    # and CR/LF would let a name break out of an HL7 segment or a mail header.
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise InvalidINSError(
            f"the INS trait {name!r} must not contain control or invisible characters"
        )


def _text_trait(name: str) -> Callable[[object, attrs.Attribute[str], object], None]:
    def check(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
        _check_text(name, value)

    return check


def _to_names(names: Iterable[str]) -> tuple[str, ...]:
    # tuple("JEAN") would silently become ("J", "E", "A", "N"): a lone string is a mistake.
    if isinstance(names, str):
        raise TypeError("the INS trait 'given_names' must be a sequence of names, not a str")
    return tuple(names)


def _check_given_names(
    _instance: object, _attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for name in value:
        _check_text("given_names", name)


def _check_birth_date(
    _instance: object, _attribute: attrs.Attribute[dt.date], value: object
) -> None:
    # A datetime is a date subclass but carries a time (and maybe a zone) that the INS does not
    # have; refusing it avoids off-by-one-day surprises when it is converted.
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise TypeError("the INS trait 'birth_date' must be a datetime.date")


def _check_sex(_instance: object, _attribute: attrs.Attribute[Sex], value: object) -> None:
    if value not in ("M", "F"):
        raise InvalidINSError("the INS trait 'sex' must be 'M' or 'F'")


def _normalise_place_code(code: str | None) -> str | None:
    return None if code is None else code.strip().upper()


def _check_place_code(
    _instance: object, _attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and not (value.isascii() and _PLACE_CODE.fullmatch(value)):
        raise InvalidINSError(
            "the INS trait 'birth_place_code' must be a 5-character INSEE COG code "
            "(99xxx for a foreign country)"
        )


@attrs.frozen(kw_only=True, repr=False)
class INSTraits:
    """The identity traits that qualify an INS (the "traits stricts").

    ``docs/domain-rules.md`` §1.5: birth name, first given name, birth date and sex are what
    an MSSanté message carries with the matricule; the full list of given names and the birth
    place code complete them in the Référentiel INS.

    The ``repr`` is fully redacted: traits are personal data.

    :ivar birth_name: the birth name (nom de naissance).
    :ivar first_given_name: the first given name at birth (premier prénom de naissance).
    :ivar given_names: every given name at birth, in order; when given, the names joined with
        spaces must start with :attr:`first_given_name` (so that ``"MARIE CLAIRE"`` matches
        ``("MARIE", "CLAIRE", "ANNE")`` as well as ``("MARIE CLAIRE", "ANNE")``).
    :ivar birth_date: the date of birth (a :class:`datetime.date`, not a datetime).
    :ivar sex: ``"M"`` or ``"F"``, the HL7 administrative gender as used by the INS.
    :ivar birth_place_code: the INSEE COG code of the place of birth (``99xxx`` abroad), or
        ``None`` when unknown. It is not compared with the NIR, whose place code is the one in
        force at registration and may have changed since.
    :raises InvalidINSError: when a trait is empty, holds control characters, or is inconsistent.

    .. versionadded:: 0.1
    """

    birth_name: str = attrs.field(validator=_text_trait("birth_name"))
    first_given_name: str = attrs.field(validator=_text_trait("first_given_name"))
    given_names: tuple[str, ...] = attrs.field(
        default=(), converter=_to_names, validator=_check_given_names
    )
    birth_date: dt.date = attrs.field(validator=_check_birth_date)
    sex: Sex = attrs.field(validator=_check_sex)
    birth_place_code: str | None = attrs.field(
        default=None, converter=_normalise_place_code, validator=_check_place_code
    )

    def __attrs_post_init__(self) -> None:
        if self.given_names:
            joined = " ".join(self.given_names).casefold()
            first = self.first_given_name.casefold()
            if joined != first and not joined.startswith(first + " "):
                raise InvalidINSError(
                    "the INS trait 'given_names' must start with 'first_given_name'"
                )

    def __repr__(self) -> str:
        return "INSTraits(<redacted>)"


@attrs.frozen(repr=False)
class INS:
    """An INS (identifiant national de santé): matricule, OID and optional traits.

    :ivar matricule: the NIR or NIA (both are :class:`~monespace.identity.NIR` objects; a
        ``str`` is parsed).
    :ivar oid: one of :data:`INS_NIR_OID`, :data:`INS_NIA_OID`, :data:`INS_NIR_TEST_OID`,
        :data:`INS_NIR_DEMO_OID` (a ``urn:oid:`` prefix is removed). The legacy INS-A/INS-C
        OIDs are refused as obsolete.
    :ivar traits: the identity traits, when known. When present, the sex digit of the matricule
        must match ``traits.sex`` (1 = M, 2 = F), its 2-digit year must match the birth year,
        and its month, when it is a real month, must match the birth month.
    :raises InvalidINSError: when the matricule, the OID or the traits are invalid or
        inconsistent; the message names the part, never the value.

    .. versionadded:: 0.1
    """

    matricule: NIR = attrs.field(converter=_to_matricule)
    oid: str = attrs.field(converter=_normalise_oid, validator=_validate_oid)
    traits: INSTraits | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        traits = self.traits
        if traits is None:
            return
        if not isinstance(traits, INSTraits):
            # No value in the message: the caller may have passed a dict of personal data.
            raise TypeError("INS traits must be an INSTraits or None")
        # A mismatch almost always means the matricule of one person was paired with the
        # traits of another: exactly the identity mix-up the INS exists to prevent.
        if traits.sex != self.matricule.sex:
            raise InvalidINSError(
                "the INS trait 'sex' does not match the sex digit of the matricule"
            )
        if traits.birth_date.year % 100 != self.matricule.birth_year_2digits:
            raise InvalidINSError(
                "the year of the INS trait 'birth_date' does not match the matricule"
            )
        month = self.matricule.birth_month
        if month is not None and traits.birth_date.month != month:
            raise InvalidINSError(
                "the month of the INS trait 'birth_date' does not match the matricule"
            )

    @classmethod
    def parse(cls, matricule: str, oid: str, traits: INSTraits | None = None) -> INS:
        """Parse an INS from its matricule and OID, as found in a CDA ``id`` or an HL7v2 CX.

        :param matricule: the 15-character NIR or NIA (separators allowed).
        :param oid: the assigning-authority OID (``urn:oid:`` prefix allowed).
        :param traits: the identity traits, when known.
        :returns: the validated INS.
        :raises InvalidINSError: when the matricule, OID or traits are invalid.
        """
        return cls(matricule, oid, traits)

    @property
    def is_test(self) -> bool:
        """``True`` for the test and demo OIDs: not a real person's identity."""
        return self.oid in (INS_NIR_TEST_OID, INS_NIR_DEMO_OID)

    @property
    def is_nia(self) -> bool:
        """``True`` when the matricule is an NIA (a waiting number, not yet a NIR)."""
        return self.oid == INS_NIA_OID

    @property
    def hl7v2_assigning_authority(self) -> str:
        """The HL7v2 CX-4 assigning authority, e.g. ``ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO``.

        The identifier type code (CX-5) to pair it with is ``INS``.
        """
        return f"{_NAMESPACES[self.oid]}&{self.oid}&ISO"

    @property
    def fhir_system(self) -> str:
        """The FHIR ``Identifier.system``: ``urn:oid:`` followed by the OID."""
        return f"urn:oid:{self.oid}"

    def __repr__(self) -> str:
        traits = "None" if self.traits is None else repr(self.traits)
        return f"INS({self.matricule.masked}, oid={self.oid!r}, traits={traits})"

    def __str__(self) -> str:
        return f"{self.matricule.masked} ({self.oid})"
