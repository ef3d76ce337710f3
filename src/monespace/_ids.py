"""Identifiers for stored objects."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]


def new_id() -> str:
    """A random, URL- and file-name-safe identifier with 128 bits of entropy.

    Never starting with ``-``: command lines would read such an id as an option (one run of
    the test suite in 64 failed that way).
    """
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):
            return candidate
