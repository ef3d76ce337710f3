"""pytest fixtures for code that embeds monespace (registered through the ``pytest11`` entry
point, so they are available in any test suite once monespace is installed).

``monespace_key_provider``
    A fresh in-memory master key.
``monespace_clock``
    A :class:`~monespace.ManualClock` set to 2026-01-01T09:00Z.
``monespace_space``
    A ``memory://`` space with that key and clock, and a memory transport for e-mail,
    closed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from .._space import Space, open
from ..clock import ManualClock
from ..crypto import MasterKey, StaticKeyProvider
from ..transport import MemoryTransport

__all__ = ["monespace_clock", "monespace_key_provider", "monespace_space"]


@pytest.fixture
def monespace_key_provider() -> StaticKeyProvider:
    """A key provider holding one fresh random master key."""
    return StaticKeyProvider(MasterKey.generate())


@pytest.fixture
def monespace_clock() -> ManualClock:
    """A manual clock at 2026-01-01 09:00 UTC."""
    return ManualClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def monespace_space(
    monespace_key_provider: StaticKeyProvider, monespace_clock: ManualClock
) -> Iterator[Space]:
    """An in-memory space; its e-mail transport is a :class:`MemoryTransport`."""
    with open(
        "memory://",
        clock=monespace_clock,
        key_provider=monespace_key_provider,
        transports={"email": MemoryTransport(), "letter": MemoryTransport()},
        load_entrypoints=False,
    ) as space:
        yield space
