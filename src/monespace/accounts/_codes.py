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
#: Each kept byte to its symbol, for ``bytes.translate``; the others are deleted.
_SYMBOLS = bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(256))
_REJECTED = bytes(range(_UNBIASED, 256))


def generate_code() -> str:
    """A fresh code, formatted ``XXXX-XXXX-XXXX``.

    Symbols come from the OS CSPRNG by rejection sampling: a byte is kept only below the
    largest multiple of 30, so every symbol is equally likely (a plain modulo would favour
    the first 16). One call for all the bytes is several times faster than a call per symbol.
    """
    return generate_codes(1)[0]


def generate_codes(count: int) -> list[str]:
    """*count* fresh codes, as :func:`generate_code` draws them, from one call to the
    CSPRNG for all of them (a batch of invitations draws hundreds).

    .. versionadded:: 0.3
    """
    needed = count * CODE_LENGTH
    symbols = ""
    while len(symbols) < needed:
        # 240 bytes in 256 are kept: draw a little more than what is missing.
        draw = secrets.token_bytes((needed - len(symbols)) * 17 // 16 + 8)
        symbols += draw.translate(_SYMBOLS, _REJECTED).decode("ascii")
    return [
        "-".join(symbols[start + i : start + i + _GROUP] for i in range(0, CODE_LENGTH, _GROUP))
        for start in range(0, needed, CODE_LENGTH)
    ]


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
    """Limits on guessing: per code, and per person with growing delays.

    Two limits apply to every proof of identity (activation, opposition, code request,
    login), following the OWASP Authentication Cheat Sheet ("Protect against automated
    attacks"):

    - **Per code.** A code is revoked after ``per_code`` wrong tries (a new one must be
      requested, and it goes to the holder's own contact). This is the bound on guessing a
      code: at most ``per_code / 30**12`` per code, whoever guesses and from wherever.
    - **Per person and source.** After ``free_failures`` failures against one person, each
      further failure doubles a delay, from ``first_delay`` up to ``max_delay``. A source
      that failed against the person (an unknown source counts as one) is refused without
      being checked until that delay has run since *its own* last failure. A source that
      has not failed against the person is always checked, so an attacker cannot lock the
      holder out: the holder's correct proof from their own network address passes,
      whatever others tried, and a holder who mistyped waits at most ``max_delay``. The
      failures are forgotten once ``window`` passes without any.
    - An attempt with a code that can no longer succeed (revoked, used, expired, or none
      issued) reveals nothing, whatever else it holds, and is not counted.

    :param per_code: wrong tries before a code is revoked.
    :param free_failures: failures against a person before delays start.
    :param first_delay: the first delay; it doubles with each further failure.
    :param max_delay: the longest delay.
    :param window: failures are forgotten after this long without a new one.

    .. versionchanged:: 0.2
       ``per_person`` (a hard lockout of everyone, the holder included, for 24 hours) was
       replaced by growing delays that spare sources that have not failed.
    """

    per_code: int = 5
    free_failures: int = 5
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=24)

    def success_probability_bound(self) -> float:
        """Chance that guessing one code succeeds before it is revoked: per_code / 30**12."""
        return float(self.per_code) / float(len(ALPHABET)) ** CODE_LENGTH

    def delay(self, failures: int) -> timedelta:
        """How long sources that failed must wait after the last of *failures* failures."""
        if failures < self.free_failures:
            return timedelta(0)
        doublings = failures - self.free_failures
        # Past 40 doublings any delay of a second or more is beyond the cap: stop there
        # rather than build an enormous integer.
        if doublings >= 40:
            return self.max_delay
        return min(self.first_delay * (1 << doublings), self.max_delay)

    def streak(self, failures: int, last_failure: datetime | None, now: datetime) -> int:
        """The failures still counted at *now*: none once ``window`` has passed since the
        last one."""
        if last_failure is None or now >= last_failure + self.window:
            return 0
        return failures

    def throttled(self, failures: int, source_failed_at: datetime | None, now: datetime) -> bool:
        """Whether an attempt is refused unchecked: its source failed against this person
        at *source_failed_at* (``None``: it never did), and the delay that the person's
        *failures* call for has not yet run since then."""
        if source_failed_at is None:
            return False
        return now < source_failed_at + self.delay(failures)


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
