"""The outbox and the built-in transports: retries, dead letters, exactly-once delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest

import monespace
import monespace._dispatch
from monespace import Actor, ManualClock, Settings
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import ConfigurationError, TransportError
from monespace.storage import OutboxStatus
from monespace.testing import storage_of
from monespace.transport import Envelope, FileTransport, MemoryTransport

from .helpers import add_note, identity, open_patient

OPERATOR = Actor.system("test")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def envelope(message_id="m1", subject="Nouveau contenu", recipient="a@example.org"):
    return Envelope(message_id, "email", recipient, subject, "Bonjour.", "new-content", T0)


class Flaky:
    """A handler that fails the first *failures* attempts, then lets deliveries through."""

    def __init__(self, failures, permanent=False):
        self.failures = failures
        self.permanent = permanent

    def __call__(self, _envelope):
        if self.failures > 0:
            self.failures -= 1
            raise TransportError("relay unavailable", permanent=self.permanent)


def open_space(transport, clock, **settings):
    space = monespace.open(
        "memory://",
        clock=clock,
        key_provider=StaticKeyProvider(MasterKey.generate()),
        transports={"email": transport},
        settings=Settings(**settings),
        load_entrypoints=False,
    )
    patient = open_patient(space, identity())
    add_note(space, OPERATOR, patient.id, b"remboursements")
    return space


def outbox_row(space):
    """The one pending notification of the space."""
    with storage_of(space).read() as tx:
        (row,) = tx.outbox.due(datetime.max.replace(tzinfo=UTC), limit=10)
    return row


def test_failures_are_retried_with_exponential_backoff_until_delivered():
    clock = ManualClock(T0)
    transport = MemoryTransport(Flaky(failures=3))
    with open_space(transport, clock) as space:
        delays = []
        for _ in range(3):
            report = space.dispatch()
            assert report.retrying == 1
            row = outbox_row(space)
            delays.append(row.next_attempt_at - clock.now())
            assert space.dispatch().retrying == 0  # not due yet: not retried early
            clock.set(row.next_attempt_at)
        assert delays == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
        assert space.dispatch().sent == 1
        assert len(transport.sent) == 1
        with storage_of(space).read() as tx:
            assert tx.outbox.count(OutboxStatus.SENT) == 1


def test_a_notification_is_dead_after_the_last_attempt_or_a_permanent_error():
    clock = ManualClock(T0)
    with open_space(MemoryTransport(Flaky(failures=99)), clock, outbox_max_attempts=3) as space:
        for _ in range(3):
            space.dispatch()
            clock.advance(hours=1)
        with storage_of(space).read() as tx:
            assert tx.outbox.count(OutboxStatus.DEAD) == 1
    permanent = MemoryTransport(Flaky(failures=1, permanent=True))
    with open_space(permanent, ManualClock(T0)) as space:
        assert space.dispatch().dead == 1
        assert permanent.sent == []


def test_a_redelivery_after_a_crash_is_recognised_and_not_sent_twice(monkeypatch):
    """The transport delivered, then the process died before the outbox recorded it."""
    transport = MemoryTransport()
    real_finish = monespace._dispatch._finish

    def crash(*args, **kwargs):
        raise SystemExit("killed between delivery and bookkeeping")

    clock = ManualClock(T0)
    with open_space(transport, clock) as space:
        monkeypatch.setattr(monespace._dispatch, "_finish", crash)
        with pytest.raises(SystemExit):
            space.dispatch()
        monkeypatch.setattr(monespace._dispatch, "_finish", real_finish)
        assert outbox_row(space).status is OutboxStatus.PENDING
        # The dead dispatcher's claim holds until its lease ends; then another takes over.
        assert space.dispatch().sent == 0
        clock.advance(minutes=5)
        assert space.dispatch().sent == 1
        assert len(transport.sent) == 1
        assert transport.attempts == 2
        with storage_of(space).read() as tx:
            (row,) = [
                tx.outbox.get(e.target_id)
                for e in tx.audit.scan()
                if e.action == "notification.send"
            ]
        assert row.sealed is None  # delivered: recipient and text erased


def test_deliveries_are_audited_without_content():
    with open_space(MemoryTransport(), ManualClock(T0)) as space:
        space.dispatch()
        last = space.audit.events(OPERATOR)[-1]
        assert (last.action, last.target_kind, last.actor_id) == (
            "notification.send",
            "notification",
            "outbox",
        )
        assert space.audit.verify().ok


def test_channels_without_a_transport_stay_pending():
    clock = ManualClock(T0)
    with open_space(MemoryTransport(), clock) as space:
        space.transports.clear()
        assert space.dispatch().no_transport == 1
        assert outbox_row(space).status is OutboxStatus.PENDING


def test_the_file_transport_writes_one_private_message_per_notification(tmp_path):
    transport = FileTransport(tmp_path / "out")
    receipt = transport.send(envelope())
    assert not receipt.duplicate
    path = transport.path_for("m1")
    message = message_from_bytes(path.read_bytes(), policy=default)
    assert message["To"] == "a@example.org"
    assert message["Subject"] == "Nouveau contenu"
    assert message.get_content().strip() == "Bonjour."
    assert (tmp_path / "out").stat().st_mode & 0o077 == 0
    assert transport.send(envelope()).duplicate
    assert len(list((tmp_path / "out").iterdir())) == 1


@pytest.mark.parametrize(
    "bad",
    [
        envelope(subject="Objet\r\nBcc: victim@example.org"),
        envelope(recipient="a@example.org\nBcc: victim@example.org"),
        envelope(message_id="../../etc/passwd"),
    ],
)
def test_the_file_transport_refuses_header_injection_and_path_tricks(tmp_path, bad):
    transport = FileTransport(tmp_path)
    with pytest.raises(TransportError) as info:
        transport.send(bad)
    assert info.value.permanent
    assert list(tmp_path.iterdir()) == []


def test_transports_are_built_from_urls(tmp_path):
    with monespace.open(
        "memory://",
        transports={"letter": f"file://{tmp_path}/letters", "email": "memory://"},
        load_entrypoints=False,
    ) as space:
        assert isinstance(space.transports["letter"], FileTransport)
        assert space.transports["letter"].directory == tmp_path / "letters"
        assert isinstance(space.transports["email"], MemoryTransport)
    with pytest.raises(ConfigurationError):
        FileTransport.from_url("file://remote-host/x")
