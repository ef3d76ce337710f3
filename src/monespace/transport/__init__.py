"""Notification transports: the port and the built-in memory and file transports.

.. versionadded:: 0.1
"""

from ._base import Envelope, Receipt, Transport
from ._file import FileTransport
from ._memory import MemoryTransport

__all__ = ["Envelope", "FileTransport", "MemoryTransport", "Receipt", "Transport"]
