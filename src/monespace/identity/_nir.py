"""The NIR, France's social security number (numéro d'inscription au répertoire).

Rules follow ``docs/domain-rules.md`` §1.5: 13 characters plus a 2-digit key, laid out as
sex · year · month · département · commune (or country) · order · key, with
``key = 97 - (NIR13 mod 97)`` and 2A→19, 2B→18 substituted before the modulo for Corsica.

A NIR is personal data. Nothing in this module puts the value, or part of it, into an error
message, and the ``repr``/``str`` of a :class:`NIR` are masked: messages and reprs end up in
logs and tracebacks, which are not protected like the data store.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import attrs

from monespace.errors import InvalidNIRError

__all__ = ["NIR", "Sex", "is_valid_nir"]

#: Administrative sex as carried by a NIR and by the INS traits (HL7 ``M``/``F``).
Sex: TypeAlias = Literal["M", "F"]

_DIGITS: Final = frozenset("0123456789")

# Separators people type or paste between the groups ("2 55 08 14 168 025 38",
# "2.55.08...", "2-55-08..."). Non-breaking spaces are included because numbers copied out of
# word-processed letters carry them, and refusing a NIR for an invisible character is unhelpful.
_SEPARATORS: Final = str.maketrans("", "", " .-\u00a0\u202f")

# Corsica: the key is computed as if 2A were 19 and 2B were 18, so the number stays numeric.
_CORSICA_FOR_KEY: Final = {"2A": "19", "2B": "18"}

_SEX_DIGIT_TO_SEX: Final[dict[str, Sex]] = {"1": "M", "2": "F"}
_SEX_TO_DIGIT: Final[dict[str | int, str]] = {"M": "1", "F": "2", 1: "1", 2: "2"}


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts "²", Arabic-Indic and full-width digits; a NIR is ASCII only.
    return bool(text) and all(char in _DIGITS for char in text)


def _is_month_code(month: int) -> bool:
    # 01-12 is a real month. 20-42 and 50-99 are pseudo-months INSEE assigns when the civil
    # record is incomplete and the month of birth is unknown (domain-rules §1.5 lists "20-30 or
    # 50+"; 31-42 are accepted too because INSEE also issues them for incomplete records, and a
    # validator that refuses a number printed on a real carte Vitale is worse than a lenient one).
    return 1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99


def _has_valid_structure(nir13: str) -> bool:
    """Tell whether 13 characters have the character classes of a NIR body."""
    return (
        len(nir13) == 13
        and _is_digits(nir13[:5])
        and (_is_digits(nir13[5:7]) or nir13[5:7] in _CORSICA_FOR_KEY)
        and _is_digits(nir13[7:])
    )


def _key_of(nir13: str) -> str:
    numeric = nir13[:5] + _CORSICA_FOR_KEY.get(nir13[5:7], nir13[5:7]) + nir13[7:]
    return f"{97 - int(numeric) % 97:02d}"


def _normalise(text: str) -> str:
    """Strip separators and upper-case "2a"/"2b"; validation happens afterwards."""
    compact = text.strip().translate(_SEPARATORS)
    # Upper-casing is only safe on ASCII: U+0131 (dotless i) upper-cases to an ASCII "I", and a
    # non-ASCII character must stay non-ASCII so that validation refuses it.
    return compact.upper() if compact.isascii() else compact


def _check_nir(value: str) -> None:
    """Raise :class:`InvalidNIRError` naming the first rule *value* breaks.

    The checks run from the coarsest to the finest so that the message names the real problem:
    a wrong month is reported as a wrong month, not as a wrong key.
    """
    if len(value) != 15:
        raise InvalidNIRError(
            f"a NIR must have 15 characters (13 plus a 2-digit key), got {len(value)}"
        )
    if not value.isascii() or not _has_valid_structure(value[:13]) or not _is_digits(value[13:]):
        raise InvalidNIRError(
            "a NIR must be made of ASCII digits, except 2A/2B (Corsica) at characters 6-7"
        )
    if value[0] not in _SEX_DIGIT_TO_SEX:
        raise InvalidNIRError("the sex digit (character 1) of a NIR must be 1 (male) or 2 (female)")
    if not _is_month_code(int(value[3:5])):
        raise InvalidNIRError(
            "the birth month (characters 4-5) of a NIR must be 01-12, "
            "or 20-42 / 50-99 for an incomplete civil record"
        )
    # "00" is the only two-character code that is never a place of birth: 01-95 are
    # départements of mainland France, 20 is undivided Corsica (births before 1976), 91-96 were
    # used for Algeria, Morocco and Tunisia before independence (service-public.fr), 97/98 open
    # a 3-digit overseas code and 99 means born abroad. The commune and country codes are not
    # checked against the INSEE COG tables, which change every year.
    if value[5:7] == "00":
        raise InvalidNIRError(
            "the birth département (characters 6-7) of a NIR must be 01-96, 2A/2B, "
            "97x/98x (overseas) or 99 (born abroad)"
        )
    if _key_of(value[:13]) != value[13:]:
        raise InvalidNIRError(
            "the NIR check key (last 2 characters) does not equal 97 - (first 13 digits mod 97)"
        )


def _validate_value(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    _check_nir(value)


@attrs.frozen(repr=False)
class NIR:
    """A validated NIR (numéro d'inscription au répertoire), the French social security number.

    Build one with :meth:`NIR.parse` (or the constructor, which does the same): separators
    (spaces, dots, dashes) are removed and ``2a``/``2b`` are upper-cased before validation.
    Validation checks the length, the character classes, the sex digit, the month code, the
    département code and the mod-97 key (``docs/domain-rules.md`` §1.5).

    Only sex digits 1 and 2 are accepted. Digits 3/4 (an old marker of foreign-born people)
    and 7/8 (temporary numbers such as the NTT) appear in the wild but are not NIRs in the
    sense of the domain rules, and a temporary number cannot be an INS matricule. An NIA
    (numéro identifiant d'attente) is "constitué comme un NIR" and is represented by this
    class too; :class:`~monespace.identity.INS` tells them apart by OID.

    The ``repr`` and ``str`` are masked (``NIR(2 55 08 ** *** *** 38)``) because reprs end up
    in logs and tracebacks; read :attr:`value` or :attr:`formatted` for the full number.

    :ivar value: the 15 characters, compact and upper-case (``"255081416802538"``).
    :raises InvalidNIRError: when a rule fails; the message names the rule, never the value.

    .. versionadded:: 0.1
    """

    value: str = attrs.field(converter=_normalise, validator=_validate_value)

    # --- construction --------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> NIR:
        """Parse and validate a NIR typed by a person or read from a document.

        :param text: 15 characters, optionally grouped with spaces, dots or dashes;
            ``2a``/``2b`` may be lower-case.
        :returns: the validated NIR.
        :raises InvalidNIRError: when a rule fails.
        """
        return cls(text)

    @staticmethod
    def compute_key(nir13: str) -> str:
        """Compute the 2-digit check key of the first 13 characters of a NIR.

        ``key = 97 - (NIR13 mod 97)``, with 2A read as 19 and 2B as 18.

        :param nir13: the 13 characters before the key (separators allowed).
        :returns: the key as two digits, ``"01"`` to ``"97"``.
        :raises InvalidNIRError: when *nir13* is not 13 digits (2A/2B allowed at 6-7).
        """
        compact = _normalise(nir13)
        if not compact.isascii() or not _has_valid_structure(compact):
            raise InvalidNIRError(
                "the key is computed over 13 ASCII digits (2A/2B allowed at characters 6-7)"
            )
        return _key_of(compact)

    @classmethod
    # Six positional parameters, in the order they appear in the number, is the documented
    # signature the synthetic-population generator calls; keywords are recommended.
    def build(  # noqa: PLR0917
        cls,
        sex: Sex | Literal[1, 2],
        year2: int,
        month: int,
        department: str,
        commune: str | int,
        order: str | int,
    ) -> NIR:
        """Assemble a NIR from its parts and compute its key.

        Meant for generating synthetic people; every rule of :meth:`parse` still applies.

        :param sex: ``"M"``/``"F"``, or the digit ``1``/``2``.
        :param year2: the last two digits of the birth year, 0-99.
        :param month: 1-12, or a pseudo-month 20-42 / 50-99 (month unknown).
        :param department: ``"14"``, ``"2A"``, ``"971"`` (overseas, 3 characters) or ``"99"``.
        :param commune: the commune code (3 digits, or 2 after a 3-digit overseas
            département), or for ``"99"`` the 3-digit country code; ints are zero-padded.
        :param order: the order number, 3 digits; ints are zero-padded.
        :returns: the NIR, key included.
        :raises InvalidNIRError: when a part is out of range or the result breaks a rule.
        """
        sex_digit = _SEX_TO_DIGIT.get(sex)
        if sex_digit is None:
            raise InvalidNIRError("the sex of a NIR must be 'M' or 'F' (or 1 or 2)")
        if not 0 <= year2 <= 99:
            raise InvalidNIRError("the birth year of a NIR is given as two digits, 0-99")
        if not 0 <= month <= 99:
            raise InvalidNIRError("the birth month of a NIR is given as two digits, 0-99")
        department = department.upper()
        if department[:2] in ("97", "98"):
            # Overseas départements take the first digit of the commune field.
            commune_width = 2 if len(department) == 3 else -1
        else:
            commune_width = 3 if len(department) == 2 else -1
        if commune_width < 0:
            raise InvalidNIRError(
                "the département of a NIR has 2 characters, or 3 for 97x/98x (overseas)"
            )
        commune_text = _zero_padded(commune, commune_width, "commune or country code")
        order_text = _zero_padded(order, 3, "order number")
        nir13 = f"{sex_digit}{year2:02d}{month:02d}{department}{commune_text}{order_text}"
        if not nir13.isascii() or not _has_valid_structure(nir13):
            raise InvalidNIRError("the département of a NIR must be digits, or 2A/2B for Corsica")
        return cls(nir13 + _key_of(nir13))

    # --- parts ---------------------------------------------------------------------------

    @property
    def sex(self) -> Sex:
        """``"M"`` for sex digit 1, ``"F"`` for 2."""
        return _SEX_DIGIT_TO_SEX[self.value[0]]

    @property
    def birth_year_2digits(self) -> int:
        """The last two digits of the birth year (the century is not recorded)."""
        return int(self.value[1:3])

    @property
    def birth_month(self) -> int | None:
        """The birth month 1-12, or ``None`` for a pseudo-month (incomplete civil record)."""
        month = int(self.value[3:5])
        return month if 1 <= month <= 12 else None

    @property
    def department(self) -> str:
        """The birth département: ``"14"``, ``"2A"``, ``"971"`` (overseas) or ``"99"`` (abroad)."""
        if self.value[5:7] in ("97", "98"):
            return self.value[5:8]
        return self.value[5:7]

    @property
    def commune_or_country(self) -> str:
        """The commune code (2 or 3 digits), or the 3-digit country code when born abroad."""
        return self.value[5 + len(self.department) : 10]

    @property
    def place_code(self) -> str:
        """The 5-character place of birth as written in the NIR (département + commune).

        It has the shape of an INSEE COG code (``"14168"``, ``"2A004"``, ``"97411"``,
        ``"99100"``) but is the code in force at registration, which may differ from today's
        COG after communes merged.
        """
        return self.value[5:10]

    @property
    def order(self) -> str:
        """The 3-digit order number of the birth registration."""
        return self.value[10:13]

    @property
    def key(self) -> str:
        """The 2-digit check key."""
        return self.value[13:15]

    @property
    def born_abroad(self) -> bool:
        """``True`` when the département code is 99 (born outside France)."""
        return self.value[5:7] == "99"

    @property
    def is_overseas(self) -> bool:
        """``True`` for a birth in an overseas département or collectivity (97x/98x)."""
        return self.value[5:7] in ("97", "98")

    # --- presentation --------------------------------------------------------------------

    @property
    def formatted(self) -> str:
        """The full number in the usual groups, e.g. ``"2 55 08 14 168 025 38"``."""
        v = self.value
        return f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"

    @property
    def masked(self) -> str:
        """The number with place and order hidden, e.g. ``"2 55 08 ** *** *** 38"``.

        Place of birth and order number are what single a person out among those born the
        same month, so they are the part to hide in logs.
        """
        v = self.value
        return f"{v[0]} {v[1:3]} {v[3:5]} ** *** *** {v[13:]}"

    def __repr__(self) -> str:
        return f"NIR({self.masked})"

    def __str__(self) -> str:
        return self.masked


def _zero_padded(part: str | int, width: int, name: str) -> str:
    if isinstance(part, int):
        if not 0 <= part < 10**width:
            raise InvalidNIRError(f"the {name} of a NIR must fit in {width} digits")
        return f"{part:0{width}d}"
    if len(part) != width or not _is_digits(part):
        raise InvalidNIRError(f"the {name} of a NIR must be {width} ASCII digits")
    return part


def is_valid_nir(text: str) -> bool:
    """Tell whether *text* parses as a valid :class:`NIR`.

    :param text: the candidate, separators allowed.
    :returns: ``True`` when :meth:`NIR.parse` would accept it.

    .. versionadded:: 0.1
    """
    try:
        NIR.parse(text)
    except InvalidNIRError:
        return False
    return True
