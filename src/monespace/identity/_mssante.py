"""MSSanté addresses: the secure health messaging of the French trust space.

Every address of the trust space is in ``mssante.fr`` or one of its subdomains (operators get
``<something>.mssante.fr``). A patient's address in Mon espace santé is
``<INS matricule>@patient.mssante.fr``, where the matricule is the 15-character NIR or NIA,
key included (``docs/domain-rules.md`` §5).

Addresses reach SMTP headers, so parsing is strict: dot-atom local parts only (no quoted
strings, no comments, no commas, no RFC 2047 encoded word), ASCII only, and no whitespace or
control character anywhere, which is what stops header injection
(``"a@b.mssante.fr\\r\\nBcc: x@y"``). The same parser checks every address that enters the
space: a professional's in the directory (``Professional.mssante``), senders and recipients
of messages, and the SMTP plugin's headers. A patient address holds a NIR,
so error messages never echo the input and the ``repr`` of a patient address is masked.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from monespace.errors import InvalidMSSanteAddressError, InvalidNIRError
from monespace.identity._nir import NIR

__all__ = [
    "MSSANTE_DOMAIN",
    "PATIENT_MSSANTE_DOMAIN",
    "MSSanteAddress",
    "parse_professional_address",
    "patient_address",
]

#: The domain of the MSSanté trust space; every address is in it or in a subdomain.
MSSANTE_DOMAIN: Final = "mssante.fr"
#: The domain of patients' mailboxes in Mon espace santé.
PATIENT_MSSANTE_DOMAIN: Final = "patient.mssante.fr"

# RFC 5321 §4.5.3.1: 64 octets for the local part, 254 for a usable forward-path address.
_MAX_ADDRESS: Final = 254
_MAX_LOCAL: Final = 64
_MAX_DOMAIN: Final = 253

# RFC 5322 §3.4.1 dot-atom: atext runs separated by single dots, none at either end.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM: Final = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
# RFC 1035 / 5890 LDH label: letters, digits and inner hyphens, at most 63 characters.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_local_part(local: str) -> None:
    if not local:
        raise InvalidMSSanteAddressError("an MSSanté address needs a local part before the '@'")
    if len(local) > _MAX_LOCAL:
        raise InvalidMSSanteAddressError(
            f"the local part of an MSSanté address may have at most {_MAX_LOCAL} characters"
        )
    if not local.isascii() or not _DOT_ATOM.fullmatch(local):
        raise InvalidMSSanteAddressError(
            "the local part of an MSSanté address must be a dot-atom (RFC 5322 §3.4.1): "
            "letters, digits and !#$%&'*+/=?^_`{|}~- with single inner dots"
        )
    # "=?" opens an RFC 2047 encoded word, which the email package decodes even in an
    # address: the header would then name another mailbox than the one checked here.
    if "=?" in local:
        raise InvalidMSSanteAddressError(
            "the local part of an MSSanté address must not hold an RFC 2047 encoded word ('=?')"
        )


def _check_domain(domain: str) -> None:
    if not domain:
        raise InvalidMSSanteAddressError("an MSSanté address needs a domain after the '@'")
    if (
        len(domain) > _MAX_DOMAIN
        or not domain.isascii()
        or not all(_LABEL.fullmatch(label) for label in domain.split("."))
    ):
        raise InvalidMSSanteAddressError(
            "the domain of an MSSanté address must be a lower-case host name "
            "(letters, digits, inner hyphens; labels of 1-63 characters)"
        )
    if domain != MSSANTE_DOMAIN and not domain.endswith("." + MSSANTE_DOMAIN):
        raise InvalidMSSanteAddressError(
            f"an MSSanté address must be in the {MSSANTE_DOMAIN} domain or one of its subdomains"
        )
    # Only Mon espace santé hands out patient mailboxes, all directly under patient.mssante.fr.
    # A deeper name would be neither a patient address nor a professional one, and accepting it
    # as "professional" would invite look-alikes of patient addresses.
    if domain.endswith("." + PATIENT_MSSANTE_DOMAIN):
        raise InvalidMSSanteAddressError(
            f"subdomains of {PATIENT_MSSANTE_DOMAIN} are not MSSanté addresses"
        )


def _check_patient_local_part(local: str) -> None:
    # Length first: NIR.parse tolerates separators ("2.55.08..."), a mailbox name does not.
    try:
        if len(local) != 15 or NIR.parse(local).value != local:
            raise InvalidNIRError("a NIR in an address must be 15 compact upper-case characters")
    except InvalidNIRError as exc:
        raise InvalidMSSanteAddressError(
            f"the local part of a {PATIENT_MSSANTE_DOMAIN} address must be the 15-character "
            f"INS matricule: {exc}"
        ) from exc


def _validate_local_part(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    _check_local_part(value)


def _validate_domain(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    _check_domain(value)


def _lower(domain: str) -> str:
    # Only ASCII is lower-cased: "\u212a" (KELVIN SIGN) lower-cases to an ASCII "k", and a
    # non-ASCII domain must stay non-ASCII so that validation refuses it.
    return domain.lower() if domain.isascii() else domain


@attrs.frozen(repr=False)
class MSSanteAddress:
    """A syntactically valid address of the MSSanté trust space.

    The domain is lower-cased. The local part keeps its case (RFC 5321 makes it the
    receiving server's business), except that :meth:`parse` upper-cases the NIR of a patient
    address (``2a``/``2b`` → ``2A``/``2B``), since a NIR has one canonical form.

    ``repr`` and ``str`` of a patient address mask the NIR; professional addresses are
    published in the Annuaire Santé and are shown in full. Use :attr:`value` to address mail.

    :ivar local_part: the part before the ``@`` (at most 64 characters, a dot-atom).
    :ivar domain: ``mssante.fr`` or a subdomain of it, lower-case.
    :raises InvalidMSSanteAddressError: when a rule fails; the message never echoes the address.

    .. versionadded:: 0.1
    """

    local_part: str = attrs.field(validator=_validate_local_part)
    domain: str = attrs.field(converter=_lower, validator=_validate_domain)

    def __attrs_post_init__(self) -> None:
        if len(self.value) > _MAX_ADDRESS:
            raise InvalidMSSanteAddressError(
                f"an MSSanté address may have at most {_MAX_ADDRESS} characters"
            )
        if self.is_patient:
            _check_patient_local_part(self.local_part)

    @classmethod
    def parse(cls, text: str) -> MSSanteAddress:
        """Parse and validate an MSSanté address.

        :param text: ``local@domain``. Surrounding spaces are *not* trimmed: an address that
            arrives padded comes from sloppy input and is refused like any other whitespace.
        :returns: the validated address.
        :raises InvalidMSSanteAddressError: when a rule fails.
        """
        if len(text) > _MAX_ADDRESS:
            raise InvalidMSSanteAddressError(
                f"an MSSanté address may have at most {_MAX_ADDRESS} characters"
            )
        # Printable ASCII without space: this is the check that stops CR/LF header injection,
        # so it runs on the whole text before anything is split.
        if any(not "!" <= char <= "~" for char in text):
            raise InvalidMSSanteAddressError(
                "an MSSanté address must not contain spaces, control characters (such as "
                "CR/LF) or non-ASCII characters"
            )
        if text.count("@") != 1:
            raise InvalidMSSanteAddressError("an MSSanté address must contain exactly one '@'")
        local, domain = text.split("@")
        domain = domain.lower()
        if domain == PATIENT_MSSANTE_DOMAIN:
            local = local.upper()
        return cls(local, domain)

    @property
    def value(self) -> str:
        """The full address, ``local_part@domain``."""
        return f"{self.local_part}@{self.domain}"

    @property
    def is_patient(self) -> bool:
        """``True`` for a patient mailbox of Mon espace santé (``…@patient.mssante.fr``)."""
        return self.domain == PATIENT_MSSANTE_DOMAIN

    @property
    def patient_nir(self) -> NIR | None:
        """The INS matricule of a patient address, or ``None`` for a professional address."""
        return NIR(self.local_part) if self.is_patient else None

    @property
    def masked(self) -> str:
        """The address with the NIR of a patient address hidden; other addresses unchanged."""
        if not self.is_patient:
            return self.value
        local = self.local_part
        return f"{local[:5]}{'*' * 8}{local[13:]}@{self.domain}"

    def __repr__(self) -> str:
        return f"MSSanteAddress({self.masked!r})"

    def __str__(self) -> str:
        return self.masked


def patient_address(nir: NIR) -> MSSanteAddress:
    """Return the Mon espace santé mailbox of a patient: ``<NIR>@patient.mssante.fr``.

    :param nir: the patient's INS matricule (NIR or NIA).
    :returns: the patient's MSSanté address.

    .. versionadded:: 0.1
    """
    return MSSanteAddress(nir.value, PATIENT_MSSANTE_DOMAIN)


def parse_professional_address(text: str) -> MSSanteAddress:
    """Parse an MSSanté address that must belong to a professional or an organisation.

    Use it where only professionals may appear (a sender of a document, a care-team member):
    a patient mailbox in such a place is a mix-up, and would route health data to a patient.

    :param text: the address.
    :returns: the validated, non-patient address.
    :raises InvalidMSSanteAddressError: when the address is invalid or in
        ``patient.mssante.fr``.

    .. versionadded:: 0.1
    """
    address = MSSanteAddress.parse(text)
    if address.is_patient:
        raise InvalidMSSanteAddressError(
            f"a professional MSSanté address must not be in the {PATIENT_MSSANTE_DOMAIN} domain"
        )
    return address
