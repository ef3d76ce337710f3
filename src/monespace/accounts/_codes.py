"""Provisional codes: generation, normalisation and keyed hashing.

A code is 12 symbols from a 30-symbol alphabet without look-alikes (no 0/O, 1/I/L, U/V mix-ups
are possible: I, L, O, U, 0 and 1 are left out), printed in three groups of four. That is
12 * log2(30) = 58.9 bits of entropy from the operating system's CSPRNG (the real code's
format is not published; the security plan asks for at least 40 bits, the project for 50).

Codes are stored as HMAC-SHA256 under a space key that is itself wrapped by the master key.
A fast keyed hash is enough here, where a password needs a slow one: the code is random
(nothing to guess from a dictionary), the key never sits in the database (so a stolen
database gives nothing to brute-force offline), and online guessing is capped by the attempt
limits below. Argon2 would cost ~100 ms per invitation: 65 million invitations would take
75 days of CPU instead of minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta

import attrs

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "AttemptPolicy",
    "CodeRecord",
    "code_entropy_bits",
    "generate_code",
    "hash_code",
    "normalise_code",
]

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_LENGTH = 12
_GROUP = 4


def code_entropy_bits(length: int = CODE_LENGTH, alphabet: str = ALPHABET) -> float:
    """The entropy of a random code, in bits."""
    return length * math.log2(len(alphabet))


#: Random bytes below this bound map uniformly onto the alphabet (240 = 8 * 30).
_UNBIASED = 256 - 256 % len(ALPHABET)


def generate_code() -> str:
    """A fresh code, formatted ``XXXX-XXXX-XXXX``.

    Symbols come from the OS CSPRNG by rejection sampling: a byte is kept only below the
    largest multiple of 30, so every symbol is equally likely (a plain modulo would favour
    the first 16). One call for all the bytes is several times faster than a call per symbol.
    """
    symbols: list[str] = []
    while len(symbols) < CODE_LENGTH:
        symbols.extend(
            ALPHABET[b % len(ALPHABET)]
            for b in secrets.token_bytes(2 * CODE_LENGTH)
            if b < _UNBIASED
        )
    raw = "".join(symbols[:CODE_LENGTH])
    return "-".join(raw[i : i + _GROUP] for i in range(0, CODE_LENGTH, _GROUP))


def normalise_code(text: str) -> str:
    """What the person typed, as compared: case, spaces and dashes do not matter."""
    return "".join(c for c in text.upper() if c not in " -\t")


def hash_code(key: bytes, patient_id: str, code: str) -> bytes:
    """Keyed hash of a code, bound to the person it was issued to (a code issued for one
    person cannot be replayed for another: ASVS 6.6.2)."""
    message = patient_id.encode() + b"\x00" + normalise_code(code).encode()
    return hmac.new(key, message, hashlib.sha256).digest()


@attrs.frozen
class AttemptPolicy:
    """Limits on guessing, per code and per person.

    :param per_code: wrong tries before a code is revoked (a new one must be requested).
    :param per_person: wrong tries per person within ``window`` before every attempt is
        refused until the window has passed, even with the right code.
    :param window: the period of ``per_person``. It is a fixed window that opens at the
        first failure and is counted afresh once it has passed (not a sliding one, as
        this said before: across the end of one window and the start of the next, up
        to ``2 * per_person`` guesses can be evaluated within one ``window``).
    """

    per_code: int = 5
    per_person: int = 10
    window: timedelta = timedelta(hours=24)

    def success_probability_bound(self) -> float:
        """Chance that guessing one code succeeds before it is revoked: per_code / 30**12."""
        return float(self.per_code) / float(len(ALPHABET)) ** CODE_LENGTH


@attrs.frozen
class CodeRecord:
    """A stored provisional code (its keyed hash, never the code)."""

    patient_id: str
    code_hash: bytes
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        """Not used, not revoked, not expired."""
        return self.used_at is None and self.revoked_at is None and now < self.expires_at
