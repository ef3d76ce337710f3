"""monespace's own plugin: the built-in backends, transports and key provider.

It is registered like any third-party plugin, through the same hooks, and its
implementations run last (``trylast``) so that a plugin can override them.
"""

from __future__ import annotations

from collections.abc import Callable

from .crypto import KeyProvider, default_key_provider
from .hookspecs import hookimpl
from .interop.cda import CdaParser
from .record import DocumentParser
from .storage import MemoryStorage, SQLiteStorage, StorageBackend
from .transport import FileTransport, MemoryTransport, Transport

__all__: list[str] = []


@hookimpl(trylast=True)
def monespace_register_storage_backends(
    register: Callable[[type[StorageBackend]], None],
) -> None:
    register(MemoryStorage)
    register(SQLiteStorage)


@hookimpl(trylast=True)
def monespace_register_transports(register: Callable[[type[Transport]], None]) -> None:
    register(MemoryTransport)
    register(FileTransport)


@hookimpl(trylast=True)
def monespace_register_document_parsers(register: Callable[[DocumentParser], None]) -> None:
    register(CdaParser())


@hookimpl(trylast=True)
def monespace_key_provider(url: str) -> KeyProvider | None:
    return default_key_provider()
