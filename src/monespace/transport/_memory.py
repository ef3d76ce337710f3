"""An in-memory transport: the reference behaviour, and what tests read back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar, Self

from ._base import Envelope, Receipt, Transport

__all__ = ["MemoryTransport"]


class MemoryTransport(Transport):
    """Keeps delivered notifications in ``sent``, once per id.

    :param handler: called before each delivery; raise
        :class:`~monespace.errors.TransportError` from it to simulate a failing channel.
    """

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)

    def __init__(self, handler: Callable[[Envelope], None] | None = None) -> None:
        self.sent: list[Envelope] = []
        self.attempts = 0
        self._ids: set[str] = set()
        self._handler = handler
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    def send(self, envelope: Envelope) -> Receipt:
        with self._lock:
            self.attempts += 1
            if self._handler is not None:
                self._handler(envelope)
            if envelope.id in self._ids:
                return Receipt(envelope.id, self.name, duplicate=True)
            self._ids.add(envelope.id)
            self.sent.append(envelope)
            return Receipt(envelope.id, self.name)

    def __repr__(self) -> str:
        return f"MemoryTransport(sent={len(self.sent)})"
