"""Thread permissions against a reference model (Hypothesis stateful testing).

The model below is written from the rules of docs/domain-rules.md §5 and the security plan
(only professionals start a conversation, the patient or their representative replies, the
professional may close a thread to replies, only participants read a thread, a professional
the patient blocked has no access), not from the policy's code. Every step is run against a
real space and compared with the model; any read the model does not allow that succeeds is
an unauthorised read, and there must be none.

The run's figures (steps, operations per kind, unauthorised reads) are printed with ``-s``.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

import monespace
from monespace import Actor, ActorKind, ManualClock
from monespace.access import Professional
from monespace.accounts import RepresentationKind
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import AccessDeniedError, UnknownProfessionalError
from monespace.messaging import NewAttachment

from .helpers import identity
from .test_messaging import PDF, rpps

OPERATOR = Actor.system("test")
#: Figures of the whole run, printed at the end (pytest -s) and checked.
STATS: collections.Counter[str] = collections.Counter()


@attrs.define
class ModelThread:
    """What the model knows of a thread."""

    patient: int
    professional: int
    closed: bool = False
    bodies: list[str] = attrs.field(factory=list)
    attachment_ids: list[str] = attrs.field(factory=list)


# Actors, by index: 0-1 patients, 2 the representative of patient 0, 3-4 registered
# professionals, 5 an unregistered professional, 6 the operator, 7 an app.
ACTORS = range(8)
PATIENTS = (0, 1)
PROFESSIONALS = (3, 4)


class ThreadPermissions(RuleBasedStateMachine):
    threads = Bundle("threads")

    def __init__(self) -> None:
        super().__init__()
        self.space = monespace.open(
            "memory://",
            key_provider=StaticKeyProvider(MasterKey.generate()),
            clock=ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC)),
            load_entrypoints=False,
        )
        ids = []
        for n in (1, 2, 3):
            patient = self.space.accounts.register_patient(OPERATOR, identity(n))
            self.space.accounts.create_space(OPERATOR, patient.id)
            ids.append(patient.id)
        self.space.accounts.add_representative(
            OPERATOR, ids[0], ids[2], RepresentationKind.PROTECTED_ADULT
        )
        for n in (1, 2):
            self.space.access.register_professional(
                OPERATOR, Professional(rpps(n), "10", f"Dr {n}")
            )
        self.patient_ids = ids[:2]
        self.actors = [
            Actor.patient(ids[0]),
            Actor.patient(ids[1]),
            Actor(ActorKind.REPRESENTATIVE, ids[2], on_behalf_of=ids[0]),
            Actor(ActorKind.PROFESSIONAL, rpps(1)),
            Actor(ActorKind.PROFESSIONAL, rpps(2)),
            Actor(ActorKind.PROFESSIONAL, rpps(9)),
            OPERATOR,
            Actor(ActorKind.APP, "app-1"),
        ]
        self.model: dict[str, ModelThread] = {}
        self.unauthorised = 0
        self.blocked: set[tuple[int, int]] = set()
        self.counter = 0

    def teardown(self) -> None:
        assert self.space.audit.verify().ok
        self.space.close()

    # --- the model ---------------------------------------------------------------------------

    def _patient_side(self, actor: int, thread: ModelThread) -> bool:
        return actor == thread.patient or (actor == 2 and thread.patient == 0)

    def _participant(self, actor: int, thread: ModelThread) -> bool:
        if actor in PROFESSIONALS:
            return actor == thread.professional and (thread.patient, actor) not in self.blocked
        return self._patient_side(actor, thread)

    def _may_reply(self, actor: int, thread: ModelThread, close: bool) -> bool:
        if not self._participant(actor, thread):
            return False
        if actor in PROFESSIONALS:
            return True
        return not close and not thread.closed

    def _body(self) -> str:
        self.counter += 1
        return f"message {self.counter}"

    def _unauthorised(self, count: int) -> None:
        self.unauthorised += count
        STATS["unauthorised_reads"] += count

    def _step(self, name: str) -> None:
        STATS["steps"] += 1
        STATS[name] += 1

    # --- rules ------------------------------------------------------------------------------

    @initialize(target=threads)
    def seed(self) -> object:
        """Two threads to start with (one per professional and patient), with attachments,
        so that reads are exercised from the first step."""
        ids = []
        for patient, professional in ((0, 3), (1, 4)):
            body = self._body()
            message = self.space.messaging.start_thread(
                self.actors[professional],
                self.patient_ids[patient],
                subject="Objet",
                body=body,
                attachments=[NewAttachment("cr.pdf", "application/pdf", PDF)],
            )
            self.model[message.thread_id] = ModelThread(
                patient, professional, False, [body], [a.id for a in message.attachments]
            )
            ids.append(message.thread_id)
        return multiple(*ids)

    @rule(
        target=threads,
        actor=st.sampled_from(ACTORS),
        patient=st.sampled_from(PATIENTS),
        close=st.booleans(),
        attach=st.booleans(),
    )
    def start(self, actor: int, patient: int, close: bool, attach: bool) -> object:
        self._step("start")
        allowed = actor in PROFESSIONALS and (patient, actor) not in self.blocked
        body = self._body()
        files = [NewAttachment("cr.pdf", "application/pdf", PDF)] if attach else []
        try:
            message = self.space.messaging.start_thread(
                self.actors[actor],
                self.patient_ids[patient],
                subject="Objet",
                body=body,
                attachments=files,
                close=close,
            )
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted start was refused"
            STATS["denied"] += 1
            return multiple()
        assert allowed, "a start the model forbids succeeded"
        self.model[message.thread_id] = ModelThread(
            patient, actor, close, [body], [a.id for a in message.attachments]
        )
        return message.thread_id

    @rule(thread_id=threads, actor=st.sampled_from(ACTORS), close=st.booleans())
    def reply(self, thread_id: str, actor: int, close: bool) -> None:
        self._step("reply")
        thread = self.model[thread_id]
        allowed = self._may_reply(actor, thread, close)
        body = self._body()
        try:
            self.space.messaging.reply(self.actors[actor], thread_id, body=body, close=close)
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted reply was refused"
            STATS["denied"] += 1
            return
        assert allowed, "a reply the model forbids succeeded"
        thread.bodies.append(body)
        if actor in PROFESSIONALS:
            thread.closed = close

    @rule(thread_id=threads, actor=st.sampled_from(ACTORS))
    def read(self, thread_id: str, actor: int) -> None:
        self._step("read")
        thread = self.model[thread_id]
        allowed = self._participant(actor, thread)
        try:
            view = self.space.messaging.thread(self.actors[actor], thread_id)
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted read was refused"
            STATS["denied"] += 1
            return
        if not allowed:
            self._unauthorised(1)
        assert allowed, "a read the model forbids succeeded"
        assert [m.body for m in view.messages] == thread.bodies
        assert view.thread.closed is thread.closed

    @rule(thread_id=threads, actor=st.sampled_from(ACTORS), index=st.integers(0, 3))
    def read_attachment(self, thread_id: str, actor: int, index: int) -> None:
        self._step("read_attachment")
        thread = self.model[thread_id]
        if not thread.attachment_ids:
            return
        attachment_id = thread.attachment_ids[index % len(thread.attachment_ids)]
        allowed = self._participant(actor, thread)
        try:
            _, data = self.space.messaging.read_attachment(self.actors[actor], attachment_id)
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted attachment read was refused"
            STATS["denied"] += 1
            return
        if not allowed:
            self._unauthorised(1)
        assert allowed, "an attachment read the model forbids succeeded"
        assert data == PDF

    @rule(actor=st.sampled_from(ACTORS), patient=st.sampled_from((*PATIENTS, None)))
    def inbox(self, actor: int, patient: int | None) -> None:
        self._step("inbox")
        target = None if patient is None else self.patient_ids[patient]
        if actor in (*PROFESSIONALS, 5) and patient is None:
            # Any professional lists their own mailbox; an unknown one's is empty, since
            # they can start nothing.
            allowed = True
            expected = {
                t
                for t, m in self.model.items()
                if m.professional == actor and (m.patient, actor) not in self.blocked
            }
        else:
            owner = patient if patient is not None else {0: 0, 1: 1, 2: 0}.get(actor)
            allowed = owner is not None and (actor == owner or (actor == 2 and owner == 0))
            expected = {t for t, m in self.model.items() if m.patient == owner}
        try:
            page = self.space.messaging.inbox(self.actors[actor], target, archived=None, limit=500)
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted mailbox listing was refused"
            STATS["denied"] += 1
            return
        if not allowed:
            self._unauthorised(1)
        assert allowed, "a mailbox listing the model forbids succeeded"
        listed = {t.id for t in page.threads}
        self._unauthorised(len(listed - expected))
        assert listed == expected

    @rule(thread_id=threads, actor=st.sampled_from(ACTORS), closed=st.booleans())
    def close(self, thread_id: str, actor: int, closed: bool) -> None:
        self._step("close")
        thread = self.model[thread_id]
        allowed = actor == thread.professional and self._participant(actor, thread)
        change = self.space.messaging.close if closed else self.space.messaging.reopen
        try:
            change(self.actors[actor], thread_id)
        except (AccessDeniedError, UnknownProfessionalError):
            assert not allowed, "a permitted close was refused"
            STATS["denied"] += 1
            return
        assert allowed, "a close the model forbids succeeded"
        thread.closed = closed

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS))
    def block(self, patient: int, professional: int) -> None:
        self._step("block")
        me = self.actors[patient]
        self.space.access.block(me, me.id, self.actors[professional].id)
        self.blocked.add((patient, professional))

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS))
    def unblock(self, patient: int, professional: int) -> None:
        self._step("unblock")
        me = self.actors[patient]
        self.space.access.unblock(me, me.id, self.actors[professional].id)
        self.blocked.discard((patient, professional))

    @rule(thread_id=consumes(threads))
    def forget(self, thread_id: str) -> None:
        """Let the bundle shrink now and then, so that new threads get picked too."""
        self._step("forget")

    @invariant()
    def no_unauthorised_read(self) -> None:
        assert self.unauthorised == 0


@pytest.mark.slow
def test_thread_permissions_match_the_model():
    run_state_machine_as_test(ThreadPermissions, settings=settings.get_profile("stateful"))
    print(
        "\nthread permissions: "
        + ", ".join(f"{name}={count}" for name, count in sorted(STATS.items()))
    )
    assert STATS["unauthorised_reads"] == 0
    assert STATS["steps"] > 0
