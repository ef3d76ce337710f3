"""Every hook monespace calls, with its contract in the docstring.

Plugins implement these with :data:`hookimpl` (re-exported as ``monespace.hookimpl``) and are
found through the ``monespace`` entry-point group, or passed to :func:`monespace.open` with
``plugins=[...]``. Hooks are always called with keyword arguments, so an implementation may
accept any subset of a hook's arguments.

The order in which a space calls them::

    open(url)
      ├─ monespace_register_storage_backends(register)   once, when the space is built
      ├─ monespace_register_transports(register)         once
      ├─ monespace_register_document_parsers(register)   once
      └─ monespace_key_provider(url)                     once; first non-None wins
    every committed change
      └─ monespace_audit_event(event)                    after the commit, once per event

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .audit import AuditEvent
    from .crypto import KeyProvider
    from .record import DocumentParser
    from .storage import StorageBackend
    from .transport import Transport

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("monespace")
hookimpl = pluggy.HookimplMarker("monespace")


# --- registration hooks ----------------------------------------------------------------------


@hookspec
def monespace_register_storage_backends(
    register: Callable[[type[StorageBackend]], None],
) -> None:
    """Register storage backend classes.

    Called once when a space is built, before its URL is resolved. Call ``register(cls)`` for
    each :class:`~monespace.storage.StorageBackend` subclass the plugin provides; the class's
    ``schemes`` attribute lists the URL schemes it serves (``("postgresql", "postgres")``).

    :param register: checks the class (a subclass of ``StorageBackend`` with a ``name`` and
        at least one scheme) and raises :class:`~monespace.errors.PluginError` when a scheme is
        already taken by another backend.
    :return: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


@hookspec
def monespace_register_transports(register: Callable[[type[Transport]], None]) -> None:
    """Register notification transport classes.

    Called once when a space is built. Call ``register(cls)`` for each
    :class:`~monespace.transport.Transport` subclass; its ``schemes`` attribute lists the
    URL schemes it is built from (``"smtp"``, ``"file"``), through ``cls.from_url(url)``.

    :param register: checks the class and raises :class:`~monespace.errors.PluginError`
        when a scheme is already taken.
    :return: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


@hookspec
def monespace_register_document_parsers(
    register: Callable[[DocumentParser], None],
) -> None:
    """Register document parsers (CDA R2 readers and the like).

    Called once when a space is built. Call ``register(parser)`` with an object following the
    :class:`~monespace.record.DocumentParser` protocol. When a document is added, the space
    asks parsers in registration order whether they ``accepts()`` the content; the first that
    does fills the document's metadata.

    :param register: raises :class:`~monespace.errors.PluginError` when a parser with the same
        ``name`` is already registered.
    :return: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """


# --- security hooks --------------------------------------------------------------------------


@hookspec(firstresult=True)
def monespace_key_provider(url: str) -> KeyProvider | None:
    """Return the provider of the master key that wraps every patient's data key.

    Called once, when a space opened at *url* first needs a key, unless ``open()`` was given a
    ``key_provider``. Stops at the first non-``None`` result. monespace's own implementation
    runs last: it reads ``MONESPACE_MASTER_KEY``, or a key file (``MONESPACE_KEY_FILE``, by
    default ``~/.config/monespace/master-key.json``) created with mode 0600 on first use.
    A plugin for a KMS or an HSM returns its own :class:`~monespace.crypto.KeyProvider`.
    The provider also supplies the audit trail's keys
    (:meth:`~monespace.crypto.KeyProvider.audit_key`), derived from the master keys unless
    it overrides that method.

    :param url: the storage URL of the space, so one provider may serve several spaces.
    :return: a key provider, or ``None`` to let the next implementation decide.

    .. versionadded:: 0.1
    """


# --- event hooks -----------------------------------------------------------------------------


@hookspec
def monespace_audit_event(event: AuditEvent) -> None:
    """Observe an audit event after the transaction that recorded it committed.

    Called once per event, in sequence order, after the commit, never for a rolled-back
    change. Events carry identifiers and codes only, never health content, so they may be
    forwarded to a SIEM. An exception raised here propagates to the caller of the operation,
    whose change is already committed: listeners should not fail.

    :param event: the committed, hash-chained :class:`~monespace.audit.AuditEvent`.
    :return: nothing; the return value is ignored.

    .. versionadded:: 0.1
    """
