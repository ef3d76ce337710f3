"""The secure-messaging rules of the access policy, decided on facts alone (no storage)."""

from __future__ import annotations

import pytest

from monespace import Actor, ActorKind
from monespace.access import (
    APP_SCOPES,
    Action,
    Facts,
    ProfessionalFacts,
    Resource,
    ThreadFacts,
    decide,
    default_rules,
)
from monespace.policy._rules import (
    closed_threads_take_no_replies,
    gateway_delivers_inbound,
    holder_files_attachment,
    holder_reads_mailbox,
    messaging_needs_open_space,
    only_professionals_start_threads,
    participants_use_thread,
    professional_closes_thread,
    thread_participants_only,
)

PATIENT = Actor.patient("p1")
OTHER_PATIENT = Actor.patient("p2")
REPRESENTATIVE = Actor(ActorKind.REPRESENTATIVE, "r1", on_behalf_of="p1")
DOCTOR = Actor(ActorKind.PROFESSIONAL, "10000000017")
OTHER_DOCTOR = Actor(ActorKind.PROFESSIONAL, "10000000025")
OPERATOR = Actor.system("test")
#: An app acting for the patient with every scope: messaging is in none of them.
APP = Actor.app("app-1", "p1", APP_SCOPES.values())

THREAD = Resource("p1", "thread", "t1")
OPEN = ThreadFacts(DOCTOR.id)
CLOSED = ThreadFacts(DOCTOR.id, closed=True)
KNOWN = ProfessionalFacts(registered=True, profession="10")


def facts(actor: Actor, thread: ThreadFacts | None = OPEN, **changes) -> Facts:
    """What the services would look up: an open space, a registered professional."""
    values = {
        "space_open": True,
        "represents": actor is REPRESENTATIVE,
        "professional": KNOWN if actor.kind is ActorKind.PROFESSIONAL else None,
        "thread": thread,
    }
    values.update(changes)
    return Facts(**values)


def ruling(actor, action, resource=THREAD, thread=OPEN, **changes):
    decision = decide(actor, action, resource, facts(actor, thread, **changes), default_rules())
    return decision.allowed, decision.rule


# --- who starts a thread -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        (DOCTOR, (True, "only_professionals_start_threads")),
        (PATIENT, (False, "only_professionals_start_threads")),
        (REPRESENTATIVE, (False, "only_professionals_start_threads")),
        (OPERATOR, (False, "only_professionals_start_threads")),
        (APP, (False, "outside_app_scopes")),
    ],
)
def test_only_professionals_start_a_thread(actor, expected):
    assert ruling(actor, Action.THREAD_START, Resource("p1", "thread"), thread=None) == expected


def test_an_unknown_or_blocked_professional_starts_nothing():
    resource = Resource("p1", "thread")
    unknown = ProfessionalFacts(registered=False)
    blocked = ProfessionalFacts(registered=True, blocked=True)
    assert ruling(DOCTOR, Action.THREAD_START, resource, None, professional=unknown) == (
        False,
        "professional_must_be_known",
    )
    assert ruling(DOCTOR, Action.THREAD_START, resource, None, professional=blocked) == (
        False,
        "blocked_by_patient",
    )


# --- who takes part ------------------------------------------------------------------------------


PARTICIPANT_ACTIONS = [
    Action.THREAD_READ,
    Action.THREAD_REPLY,
    Action.THREAD_ARCHIVE,
    Action.ATTACHMENT_READ,
]


@pytest.mark.parametrize("action", PARTICIPANT_ACTIONS)
@pytest.mark.parametrize("actor", [PATIENT, REPRESENTATIVE, DOCTOR])
def test_participants_use_their_thread(actor, action):
    assert ruling(actor, action) == (True, "thread_participant")


@pytest.mark.parametrize("action", [*PARTICIPANT_ACTIONS, Action.THREAD_CLOSE])
@pytest.mark.parametrize("actor", [OTHER_PATIENT, OTHER_DOCTOR, OPERATOR, APP])
def test_outsiders_never_touch_a_thread(actor, action):
    # Apps are refused before the thread's rules: messaging is in none of their scopes.
    expected = "outside_app_scopes" if actor is APP else "thread_participants_only"
    assert ruling(actor, action) == (False, expected)


@pytest.mark.parametrize("action", [*PARTICIPANT_ACTIONS, Action.THREAD_CLOSE])
def test_a_thread_that_does_not_exist_is_denied(action):
    assert ruling(PATIENT, action, Resource(None, "thread", "t9"), thread=None) == (
        False,
        "thread_participants_only",
    )


def test_a_representative_whose_link_ended_is_an_outsider():
    assert ruling(REPRESENTATIVE, Action.THREAD_READ, represents=False) == (
        False,
        "thread_participants_only",
    )


def test_the_treating_doctors_record_access_gives_no_thread_access():
    treating = ProfessionalFacts(registered=True, profession="10", grant="treating_doctor")
    assert ruling(OTHER_DOCTOR, Action.THREAD_READ, professional=treating) == (
        False,
        "thread_participants_only",
    )


# --- closing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [PATIENT, REPRESENTATIVE])
def test_a_closed_thread_takes_no_reply_from_the_patients_side(actor):
    assert ruling(actor, Action.THREAD_REPLY, thread=CLOSED) == (False, "thread_closed_to_replies")
    assert ruling(actor, Action.THREAD_READ, thread=CLOSED) == (True, "thread_participant")


def test_the_professional_still_writes_in_a_closed_thread():
    assert ruling(DOCTOR, Action.THREAD_REPLY, thread=CLOSED) == (True, "thread_participant")


@pytest.mark.parametrize(
    ("actor", "allowed"), [(DOCTOR, True), (PATIENT, False), (REPRESENTATIVE, False)]
)
def test_only_the_threads_professional_closes_it(actor, allowed):
    assert ruling(actor, Action.THREAD_CLOSE) == (allowed, "professional_closes_thread")


# --- filing, mailboxes, gateway, space state -----------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "allowed"), [(PATIENT, True), (REPRESENTATIVE, True), (DOCTOR, False)]
)
def test_only_the_patients_side_files_an_attachment(actor, allowed):
    assert ruling(actor, Action.ATTACHMENT_FILE) == (allowed, "holder_files_attachment")


@pytest.mark.parametrize(
    ("actor", "resource", "allowed"),
    [
        (PATIENT, Resource("p1", "mailbox"), True),
        (REPRESENTATIVE, Resource("p1", "mailbox"), True),
        (OTHER_PATIENT, Resource("p1", "mailbox"), False),
        (DOCTOR, Resource("p1", "mailbox"), False),
        (OPERATOR, Resource("p1", "mailbox"), False),
        (DOCTOR, Resource(None, "mailbox", DOCTOR.id), True),
        (OTHER_DOCTOR, Resource(None, "mailbox", DOCTOR.id), False),
        (PATIENT, Resource(None, "mailbox", DOCTOR.id), False),
    ],
)
def test_a_mailbox_is_listed_by_its_owner(actor, resource, allowed):
    assert ruling(actor, Action.INBOX_READ, resource, thread=None) == (allowed, "mailbox_owner")


@pytest.mark.parametrize(
    ("actor", "allowed"), [(OPERATOR, True), (DOCTOR, False), (PATIENT, False), (APP, False)]
)
def test_only_the_gateway_hands_in_messages(actor, allowed):
    resource = Resource("p1", "message")
    assert ruling(actor, Action.MESSAGE_RECEIVE, resource, thread=None)[0] is allowed


@pytest.mark.parametrize(
    "action",
    [
        Action.THREAD_START,
        Action.THREAD_READ,
        Action.THREAD_REPLY,
        Action.INBOX_READ,
        Action.ATTACHMENT_READ,
        Action.MESSAGE_RECEIVE,
    ],
)
def test_no_messaging_in_a_space_that_is_not_open(action):
    for actor in (PATIENT, DOCTOR, OPERATOR):
        assert ruling(actor, action, space_open=False) == (False, "messaging_needs_open_space")


def test_each_rule_is_silent_outside_its_actions():
    """A rule only has an opinion on its own actions: document rules stay untouched."""
    rules = [
        closed_threads_take_no_replies,
        gateway_delivers_inbound,
        holder_files_attachment,
        holder_reads_mailbox,
        messaging_needs_open_space,
        only_professionals_start_threads,
        participants_use_thread,
        professional_closes_thread,
        thread_participants_only,
    ]
    for action in (Action.DOCUMENT_READ, Action.DOCUMENT_ADD, Action.PATIENT_READ):
        for rule in rules:
            assert rule(PATIENT, action, THREAD, facts(PATIENT, space_open=False)) is None


def test_messaging_actions_are_denied_by_default_without_the_messaging_rules():
    """The document rules grant nothing on threads: deny by default still holds."""
    non_messaging = tuple(r for r in default_rules() if r.__name__ not in _MESSAGING_RULES)
    for action in (Action.THREAD_READ, Action.THREAD_START, Action.INBOX_READ):
        decision = decide(PATIENT, action, THREAD, facts(PATIENT), non_messaging)
        assert (decision.allowed, decision.rule) == (False, "deny_by_default")


_MESSAGING_RULES = {
    "closed_threads_take_no_replies",
    "gateway_delivers_inbound",
    "holder_files_attachment",
    "holder_reads_mailbox",
    "messaging_needs_open_space",
    "only_professionals_start_threads",
    "participants_use_thread",
    "professional_closes_thread",
    "thread_participants_only",
}
