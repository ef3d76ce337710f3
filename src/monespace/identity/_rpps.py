"""The RPPS number of a health professional (répertoire partagé des professionnels de santé).

An RPPS number is 11 digits whose last digit is a Luhn check digit (python-stdnum's
``stdnum.luhn`` does the arithmetic). It is a public professional identifier, published in the
Annuaire Santé, so unlike a NIR it may appear in reprs and logs.
"""

from __future__ import annotations

from typing import Final

import attrs
from stdnum import luhn

from monespace.errors import InvalidRPPSError

__all__ = ["RPPS", "is_valid_rpps"]

_DIGITS: Final = frozenset("0123456789")


def _is_digits(text: str, length: int) -> bool:
    # str.isdigit() would let full-width and other Unicode digits through.
    return len(text) == length and all(char in _DIGITS for char in text)


def _normalise(text: str) -> str:
    # Directories print RPPS numbers ungrouped, but people copy them with spaces.
    return text.strip().replace(" ", "")


def _validate_value(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not _is_digits(value, 11):
        raise InvalidRPPSError("an RPPS number must be exactly 11 ASCII digits")
    if not luhn.is_valid(value):
        raise InvalidRPPSError("the RPPS check digit (the 11th) fails the Luhn check")


@attrs.frozen
class RPPS:
    """A validated RPPS number: 11 digits, the last one a Luhn check digit.

    Real RPPS numbers start with ``1``; any 11 digits that pass the Luhn check are accepted
    here so that test and synthetic numbers can use another first digit, and because the
    leading digit is an allocation habit rather than a documented validity rule.

    :ivar value: the 11 digits.
    :raises InvalidRPPSError: when the number is not 11 digits or fails the Luhn check.

    .. versionadded:: 0.1
    """

    value: str = attrs.field(converter=_normalise, validator=_validate_value)

    @classmethod
    def parse(cls, text: str) -> RPPS:
        """Parse and validate an RPPS number.

        :param text: 11 digits; surrounding and internal spaces are ignored.
        :returns: the validated RPPS number.
        :raises InvalidRPPSError: when a rule fails.
        """
        return cls(text)

    @classmethod
    def build(cls, prefix10: str) -> RPPS:
        """Append the Luhn check digit to 10 digits.

        :param prefix10: the first 10 digits.
        :returns: the 11-digit RPPS number.
        :raises InvalidRPPSError: when *prefix10* is not 10 ASCII digits.
        """
        if not _is_digits(prefix10, 10):
            raise InvalidRPPSError("an RPPS number is built from exactly 10 ASCII digits")
        return cls(prefix10 + luhn.calc_check_digit(prefix10))

    @property
    def idnat_ps(self) -> str:
        """The national professional identifier (IdNat_PS): ``"8"`` followed by the RPPS number.

        The leading 8 is the identifier-type prefix that CPS cards and the DMP use for
        RPPS-registered professionals.
        """
        return f"8{self.value}"

    def __str__(self) -> str:
        return self.value


def is_valid_rpps(text: str) -> bool:
    """Tell whether *text* parses as a valid :class:`RPPS` number.

    :param text: the candidate.
    :returns: ``True`` when :meth:`RPPS.parse` would accept it.

    .. versionadded:: 0.1
    """
    try:
        RPPS.parse(text)
    except InvalidRPPSError:
        return False
    return True
