"""Plugin wiring: the built-in plugins, entry-point discovery and a typed facade over the hooks.

Nothing is loaded at import time. Each :class:`~monespace.Space` builds its own
:class:`Plugins`, which creates a fresh ``pluggy.PluginManager``, registers the built-in
plugin, then any plugins passed in code, then (unless told not to) those installed under the
``monespace`` entry-point group, and finally checks that every implementation matches a
hook specification.

Environment variables:

``MONESPACE_DISABLE_PLUGINS``
    Comma-separated names of entry-point plugins not to load.
``MONESPACE_TRACE_HOOKS``
    When set to a non-empty value, every hook call is traced to standard error.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import pluggy

from . import hookspecs
from .audit import AuditEvent
from .crypto import KeyProvider
from .errors import ConfigurationError, PluginError, UnknownSchemeError
from .record import DocumentParser
from .storage import StorageBackend
from .transport import Transport

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "Plugins"]

#: The entry-point group third-party plugins register under.
ENTRY_POINT_GROUP = "monespace"

#: Modules registered as plugins in every space, before third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = ("monespace._builtin",)


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise ConfigurationError("a URL with a scheme is expected (sqlite:///..., memory://)")
    return scheme


class Plugins:
    """The plugins of one space and typed access to their hooks.

    :param plugins: extra plugin objects (modules, classes or instances with ``hookimpl``
        functions) registered after the built-ins.
    :param load_entrypoints: also load plugins installed under the ``monespace`` group.
    :param environ: the environment to read settings from (default ``os.environ``).
    """

    def __init__(
        self,
        plugins: Iterable[object] = (),
        *,
        load_entrypoints: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager("monespace")
        self.pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            self._register(importlib.import_module(module_name), module_name)
        for plugin in plugins:
            self._register(plugin, None)
        if load_entrypoints:
            for blocked in filter(
                None, (n.strip() for n in env.get("MONESPACE_DISABLE_PLUGINS", "").split(","))
            ):
                self.pm.set_blocked(blocked)
            try:
                self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            except pluggy.PluginValidationError as exc:
                raise PluginError(str(exc), plugin=self.pm.get_name(exc.plugin)) from exc
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), plugin=self.pm.get_name(exc.plugin)) from exc
        if env.get("MONESPACE_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        self.storage_backends: dict[str, type[StorageBackend]] = {}
        self.transports: dict[str, type[Transport]] = {}
        self.document_parsers: dict[str, DocumentParser] = {}
        self.pm.hook.monespace_register_storage_backends(
            register=self._registrar(StorageBackend, self.storage_backends, "storage backend")
        )
        self.pm.hook.monespace_register_transports(
            register=self._registrar(Transport, self.transports, "transport")
        )
        self.pm.hook.monespace_register_document_parsers(register=self._register_parser)

    def _register(self, plugin: object, name: str | None) -> None:
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            label = name or getattr(plugin, "__name__", type(plugin).__name__)
            raise PluginError(
                f"plugin {label!r} cannot be registered: {exc}", plugin=label
            ) from exc

    def _registrar(self, base: type, table: dict[str, Any], kind: str) -> Any:
        def register(cls: type) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(f"a {kind} must be a subclass of {base.__name__} (got {cls!r})")
            name = getattr(cls, "name", None)
            schemes: Sequence[str] = getattr(cls, "schemes", ())
            if not name or not schemes:
                raise PluginError(
                    f"{cls.__name__} must set the class attributes 'name' and 'schemes'",
                    plugin=cls.__name__,
                )
            for scheme in schemes:
                other = table.get(scheme.lower())
                if other is None or other is cls:
                    table[scheme.lower()] = cls
                elif not _is_builtin(cls):
                    raise PluginError(
                        f"{kind} {name!r} claims the scheme {scheme!r}, already registered "
                        f"by {other.name!r}",
                        plugin=name,
                    )
                # else: a built-in meets a scheme a plugin already claimed. Built-ins register
                # last (trylast) precisely so that plugins can replace them: keep the plugin's.

        return register

    def _register_parser(self, parser: DocumentParser) -> None:
        if not isinstance(parser, DocumentParser):
            raise PluginError(f"{parser!r} does not follow the DocumentParser protocol")
        if parser.name in self.document_parsers:
            if _is_builtin(type(parser)):
                return  # a plugin's parser of the same name replaces the built-in one
            raise PluginError(
                f"a document parser named {parser.name!r} is already registered",
                plugin=parser.name,
            )
        self.document_parsers[parser.name] = parser

    # --- typed facade ------------------------------------------------------------------------

    def open_storage(self, url: str) -> StorageBackend:
        """Open the backend registered for *url*'s scheme."""
        scheme = _scheme(url)
        backend = self.storage_backends.get(scheme)
        if backend is None:
            raise UnknownSchemeError("storage backend", scheme, list(self.storage_backends))
        return backend.from_url(url)

    def make_transport(self, url: str) -> Transport:
        """Build the transport registered for *url*'s scheme."""
        scheme = _scheme(url)
        transport = self.transports.get(scheme)
        if transport is None:
            raise UnknownSchemeError("transport", scheme, list(self.transports))
        return transport.from_url(url)

    def key_provider(self, url: str) -> KeyProvider:
        """The first key provider a plugin offers for the space at *url*."""
        provider: KeyProvider | None = self.pm.hook.monespace_key_provider(url=url)
        if provider is None:  # pragma: no cover - the built-in always answers
            raise ConfigurationError("no plugin provides a master key")
        return provider

    def audit_event(self, event: AuditEvent) -> None:
        """Tell listeners about a committed audit event."""
        self.pm.hook.monespace_audit_event(event=event)

    def names(self) -> list[str]:
        """The names of the registered plugins, for diagnostics."""
        return sorted(name for name, _ in self.pm.list_name_plugin() if name)


def _is_builtin(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "monespace"
