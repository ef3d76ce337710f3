"""The plugin system: one test per hook, registration rules, validation."""

from __future__ import annotations

from typing import ClassVar

import pluggy
import pytest

import monespace
from monespace import Actor, hookimpl
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import PluginError
from monespace.plugins import Plugins
from monespace.record import ParsedDocument
from monespace.storage import MemoryStorage
from monespace.testing import storage_of
from monespace.transport import MemoryTransport

from .helpers import identity, open_patient


class VaultStorage(MemoryStorage):
    """A third-party backend, served under its own scheme."""

    name: ClassVar[str] = "vault"
    schemes: ClassVar[tuple[str, ...]] = ("vault",)


class ReplacementMemory(MemoryStorage):
    """A plugin that takes over the built-in memory:// scheme."""

    name: ClassVar[str] = "replacement"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)


def test_hook_monespace_register_storage_backends():
    class Plugin:
        @hookimpl
        def monespace_register_storage_backends(self, register):
            register(VaultStorage)

    with monespace.open("vault://x", plugins=[Plugin()], load_entrypoints=False) as space:
        assert isinstance(storage_of(space), VaultStorage)


def test_a_plugin_can_replace_a_built_in_scheme():
    class Plugin:
        @hookimpl
        def monespace_register_storage_backends(self, register):
            register(ReplacementMemory)

    with monespace.open("memory://", plugins=[Plugin()], load_entrypoints=False) as space:
        assert type(storage_of(space)) is ReplacementMemory


def test_two_plugins_claiming_one_scheme_is_an_error():
    class Other(MemoryStorage):
        name: ClassVar[str] = "other"
        schemes: ClassVar[tuple[str, ...]] = ("vault",)

    class First:
        @hookimpl
        def monespace_register_storage_backends(self, register):
            register(VaultStorage)

    class Second:
        @hookimpl
        def monespace_register_storage_backends(self, register):
            register(Other)

    with pytest.raises(PluginError, match="already registered") as info:
        Plugins([First(), Second()], load_entrypoints=False)
    assert info.value.plugin in {"vault", "other"}


@pytest.mark.parametrize("bad", [object, int, type("NoScheme", (MemoryStorage,), {"schemes": ()})])
def test_registering_something_that_is_not_a_backend_is_an_error(bad):
    class Plugin:
        @hookimpl
        def monespace_register_storage_backends(self, register):
            register(bad)

    with pytest.raises(PluginError):
        Plugins([Plugin()], load_entrypoints=False)


def test_hook_monespace_register_transports():
    class Pigeon(MemoryTransport):
        name: ClassVar[str] = "pigeon"
        schemes: ClassVar[tuple[str, ...]] = ("pigeon",)

    class Plugin:
        @hookimpl
        def monespace_register_transports(self, register):
            register(Pigeon)

    with monespace.open(
        "memory://",
        transports={"sms": "pigeon://loft"},
        plugins=[Plugin()],
        load_entrypoints=False,
    ) as space:
        assert isinstance(space.transports["sms"], Pigeon)


def test_hook_monespace_register_document_parsers():
    class TextParser:
        name = "plain-text"

        def accepts(self, media_type, data):
            return media_type == "text/plain"

        def parse(self, data):
            return ParsedDocument(parser=self.name, title=data.decode().splitlines()[0])

    class Plugin:
        @hookimpl
        def monespace_register_document_parsers(self, register):
            register(TextParser())

    plugins = Plugins([Plugin()], load_entrypoints=False)
    parser = plugins.document_parsers["plain-text"]
    assert parser.parse(b"Titre\nsuite").title == "Titre"

    class Twice:
        @hookimpl
        def monespace_register_document_parsers(self, register):
            register(TextParser())

    with pytest.raises(PluginError, match="already registered"):
        Plugins([Plugin(), Twice()], load_entrypoints=False)

    class NotAParser:
        @hookimpl
        def monespace_register_document_parsers(self, register):
            register(object())

    with pytest.raises(PluginError, match="protocol"):
        Plugins([NotAParser()], load_entrypoints=False)


def test_hook_monespace_key_provider():
    provider = StaticKeyProvider(MasterKey.generate())
    seen = []

    class Plugin:
        @hookimpl
        def monespace_key_provider(self, url):
            seen.append(url)
            return provider

    with monespace.open("memory://", plugins=[Plugin()], load_entrypoints=False) as space:
        open_patient(space, identity())
    assert seen == ["memory://"]
    assert space._core.keyring.provider is provider


def test_hook_monespace_audit_event_sees_committed_events_only():
    events = []

    class Listener:
        @hookimpl
        def monespace_audit_event(self, event):
            events.append((event.seq, event.action, event.outcome.value))

    with monespace.open(
        "memory://",
        key_provider=StaticKeyProvider(MasterKey.generate()),
        plugins=[Listener()],
        load_entrypoints=False,
    ) as space:
        patient = open_patient(space, identity())
        with pytest.raises(monespace.errors.AccessDeniedError):
            space.record.read_content(Actor.patient("intruder"), "x")
        with pytest.raises(monespace.errors.ConflictError):
            open_patient(space, identity())
        assert patient.id
    assert events == [
        (1, "patient.register", "success"),
        (2, "account.create", "success"),
        (3, "document.read", "denied"),
        (4, "patient.register", "failure"),
    ]


def test_a_misspelt_hook_implementation_is_refused():
    class Typo:
        @hookimpl
        def monespace_register_storage_backend(self, register):  # missing the final "s"
            pass

    with pytest.raises(PluginError, match="monespace_register_storage_backend"):
        Plugins([Typo()], load_entrypoints=False)


def test_an_implementation_asking_for_unknown_arguments_is_refused():
    class Greedy:
        @hookimpl
        def monespace_key_provider(self, url, region):
            return None

    with pytest.raises(PluginError):
        Plugins([Greedy()], load_entrypoints=False)


def test_plugins_are_per_space_and_nothing_loads_at_import():
    first = Plugins(load_entrypoints=False)
    second = Plugins(load_entrypoints=False)
    assert first.pm is not second.pm
    assert isinstance(first.pm, pluggy.PluginManager)
    assert first.names() == ["monespace._builtin"]


def test_entry_point_plugins_can_be_blocked(monkeypatch):
    loaded = Plugins(environ={"MONESPACE_DISABLE_PLUGINS": "monespace, other"})
    assert loaded.pm.is_blocked("monespace")
    assert loaded.pm.is_blocked("other")


def test_hook_calls_can_be_traced(capsys):
    Plugins(load_entrypoints=False, environ={"MONESPACE_TRACE_HOOKS": "1"})
    monespace.open("memory://", load_entrypoints=False).close()  # untraced: its own manager
    traced = Plugins(load_entrypoints=False, environ={"MONESPACE_TRACE_HOOKS": "1"})
    traced.key_provider("memory://")
    assert "monespace_key_provider" in capsys.readouterr().err
