"""space.agenda: events, their history, the policy, reminders and their delivery."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from monespace import Actor, ActorKind, Settings
from monespace.accounts import Contact, PatientIdentity, RepresentationKind
from monespace.agenda import AgendaSettings, EventKind, EventStatus, Family, ReminderStatus
from monespace.clock import ManualClock
from monespace.errors import (
    AccessDeniedError,
    NotFoundError,
    UnknownProfessionalError,
    ValidationError,
)
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.policy import Action, AppFacts, Facts, ProfessionalFacts, Resource, decide
from monespace.record import Code
from monespace.synth import seed_demo
from monespace.testing import storage_of

from .helpers import MARKER, feeder, identity, open_patient, open_space, register_physicians

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PARIS = dt.timezone(dt.timedelta(hours=1))

#: Words a reminder notice must never carry: antigens, exams, programmes.
HEALTH_WORDS = (
    "vaccin",
    "rougeole",
    "ror",
    "mmr",
    "hexavalent",
    "pneumo",
    "méningo",
    "meningo",
    "hpv",
    "dépistage",
    "depistage",
    "examen",
    "bilan",
    "dentaire",
    "directive",
    "grippe",
    "zona",
    "cancer",
)


def child_identity(n: int, born: dt.date, email: str | None = None) -> PatientIdentity:
    """A synthetic child born on *born* (the NIR says the same year and month)."""
    nir = NIR.build("M", born.year % 100, born.month, "75", "056", n)
    traits = INSTraits(birth_name="MARTIN", first_given_name="LEO", birth_date=born, sex="M")
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=email))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def space(url, clock):
    settings = Settings(agenda=AgendaSettings(send_reminders=True))
    with open_space(url, clock, transports=("email",), settings=settings) as opened:
        yield opened


@pytest.fixture
def holder(space):
    return open_patient(space, identity(1, email="holder@example.org"))


def _add(space, actor, patient_id, **changes):
    values = {
        "kind": EventKind.APPOINTMENT,
        "starts_at": dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC),
        "ends_at": dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC),
        "title": "Cardiologue",
        "notes": f"{MARKER} apporter l'ECG",
    }
    values.update(changes)
    return space.agenda.add(actor, patient_id, **values)


# --- events ------------------------------------------------------------------------------------


def test_events_are_added_listed_rescheduled_done_and_keep_their_history(space, holder, me, clock):
    event = _add(space, me, holder.id)
    assert event.status is EventStatus.PLANNED
    assert event.local_start.hour == 9  # 08:30 UTC is 09:30 in Paris in March
    assert [e.id for e in space.agenda.events(me, holder.id)] == [event.id]
    assert space.agenda.get(me, holder.id, event.id).notes == event.notes

    later = dt.datetime(2026, 3, 12, 14, 0, tzinfo=dt.UTC)
    moved = space.agenda.reschedule(me, holder.id, event.id, later)
    assert (moved.starts_at, moved.version, moved.sequence) == (later, 2, 1)
    clock.advance(dt.timedelta(days=11))
    done = space.agenda.mark_done(me, holder.id, event.id)
    assert done.status is EventStatus.DONE

    history = space.agenda.history(me, holder.id, event.id)
    assert [(h.version, h.change, h.status) for h in history] == [
        (1, "created", EventStatus.PLANNED),
        (2, "rescheduled", EventStatus.PLANNED),
        (3, "done", EventStatus.DONE),
    ]
    assert history[0].starts_at == event.starts_at
    assert space.agenda.events(me, holder.id, status="done")[0].id == event.id


def test_status_transitions_follow_the_rules(space, holder, me, clock):
    event = _add(space, me, holder.id)
    with pytest.raises(ValidationError, match="not started"):
        space.agenda.mark_done(me, holder.id, event.id)
    cancelled = space.agenda.cancel(me, holder.id, event.id)
    assert cancelled.status is EventStatus.CANCELLED
    with pytest.raises(ValidationError, match="cancelled cannot become done"):
        space.agenda.mark_done(me, holder.id, event.id)
    replanned = space.agenda.reschedule(me, holder.id, event.id, event.starts_at)
    assert replanned.status is EventStatus.PLANNED
    clock.advance(dt.timedelta(days=30))
    space.agenda.mark_done(me, holder.id, event.id)
    with pytest.raises(ValidationError, match="done cannot become"):
        space.agenda.cancel(me, holder.id, event.id)
    with pytest.raises(ValidationError):
        space.agenda.reschedule(me, holder.id, event.id, NOW)
    with pytest.raises(NotFoundError):
        space.agenda.cancel(me, holder.id, "no-such-event")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"starts_at": dt.datetime(2026, 3, 10, 8, 30)}, "aware"),
        ({"ends_at": dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)}, "end after"),
        ({"starts_at": dt.datetime(1980, 1, 1, tzinfo=dt.UTC), "ends_at": None}, "life"),
        ({"starts_at": dt.datetime(2200, 1, 1, tzinfo=dt.UTC), "ends_at": None}, "life"),
        ({"title": "Rendez-vous\r\nX-INJECTED:1"}, "control"),
        ({"reminder_id": "vaccination.unknown thing"}, "reminder id"),
        ({"kind": "surgery"}, "kind"),
        ({"professional": "12345678901"}, "RPPS|rpps|check"),
        ({"documents": ["no-such-document"]}, "record"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_stored(space, holder, me, changes, message):
    with pytest.raises(ValidationError, match=message):
        _add(space, me, holder.id, **changes)
    assert space.agenda.events(me, holder.id) == []


def test_notes_are_sealed_in_storage(tmp_path, clock):
    with open_space(f"sqlite:///{tmp_path}/s.db", clock) as space:
        holder = open_patient(space, identity(1))
        me = Actor.patient(holder.id)
        _add(space, me, holder.id, place=f"Cabinet {MARKER}")
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert MARKER.encode() not in raw


# --- the policy ----------------------------------------------------------------------------------


def test_the_policy_lets_the_person_their_representative_and_authorised_professionals_in(
    space, holder, me, representative
):
    pro1, pro2, pro3 = register_physicians(space, 3)
    space.access.authorise(me, holder.id, pro1)
    space.access.authorise(me, holder.id, pro3)
    space.access.block(me, holder.id, pro3)
    event = _add(space, me, holder.id)
    _add(space, representative, holder.id)
    doctor = Actor(ActorKind.PROFESSIONAL, pro1)
    assert len(space.agenda.events(doctor, holder.id)) == 2
    space.agenda.cancel(doctor, holder.id, event.id)
    other = open_patient(space, identity(2))
    refused = [
        (Actor.patient(other.id), "agenda"),
        (Actor(ActorKind.PROFESSIONAL, pro2), "agenda"),  # no authorisation
        (Actor(ActorKind.PROFESSIONAL, pro3), "agenda"),  # blocked
        (Actor(ActorKind.PROFESSIONAL, "10000000008"), "agenda"),  # unknown
        (Actor(ActorKind.APP, "booking-app"), "agenda"),  # apps: not yet
        (Actor.system("ops"), "agenda"),
    ]
    for actor, _ in refused:
        # A professional the directory does not know is told so (the policy still denies).
        expected = UnknownProfessionalError if actor.id == "10000000008" else AccessDeniedError
        with pytest.raises(expected):
            space.agenda.events(actor, holder.id)
        with pytest.raises(expected):
            _add(space, actor, holder.id)
    with pytest.raises(AccessDeniedError):
        space.agenda.opt_out(doctor, holder.id, Family.VACCINATION)
    history = space.access.history(me, holder.id)
    whats = {entry.what for entry in history}
    assert "a modifié votre agenda" in whats
    assert "a consulté votre agenda" in whats


def test_agenda_rules_decide_deny_by_default():
    patient = Actor.patient("p1")
    resource = Resource("p1", "agenda")
    assert decide(patient, Action.AGENDA_WRITE, resource, Facts(space_open=True)).allowed
    closed = decide(patient, Action.AGENDA_READ, resource, Facts(space_open=False))
    assert closed.rule == "space_must_be_open"
    pro = Actor(ActorKind.PROFESSIONAL, "10000000108")
    facts = Facts(space_open=True, professional=ProfessionalFacts(registered=True, grant="care"))
    assert decide(pro, Action.AGENDA_READ, resource, facts).allowed
    assert not decide(pro, Action.REMINDERS_SETTINGS, resource, facts).allowed
    emergency = Actor(ActorKind.PROFESSIONAL, "10000000108", mode="emergency")
    assert not decide(emergency, Action.AGENDA_READ, resource, facts).allowed
    objected = Facts(
        space_open=True,
        professional=ProfessionalFacts(registered=True, grant="care", object_all=True),
    )
    assert not decide(pro, Action.AGENDA_WRITE, resource, objected).allowed
    app = Actor.app("booking-app", "p1", {"agenda.write"})
    refused = decide(app, Action.AGENDA_WRITE, resource, Facts(space_open=True))
    assert refused.rule == "app_not_referenced"
    consented = Facts(space_open=True, app=AppFacts(referenced=True, consent=frozenset()))
    assert decide(app, Action.AGENDA_WRITE, resource, consented).rule == "outside_app_scopes"
    allowed = attrs.evolve(consented, app=AppFacts(True, frozenset({"agenda.write"})))
    assert decide(app, Action.AGENDA_WRITE, resource, allowed).allowed
    assert decide(app, Action.AGENDA_READ, resource, allowed).rule == "outside_app_scopes"
    closed_for_app = attrs.evolve(allowed, space_open=False)
    assert decide(app, Action.AGENDA_WRITE, resource, closed_for_app).rule == (
        "beyond_patient_rights"
    )
    nobody = decide(patient, Action.AGENDA_READ, Resource(None, "agenda"), Facts())
    assert nobody.rule == "deny_by_default"
    stranger = Actor(ActorKind.REPRESENTATIVE, "r1", on_behalf_of="p1")
    assert not decide(stranger, Action.AGENDA_READ, resource, Facts(space_open=True)).allowed


# --- reminders -----------------------------------------------------------------------------------


def test_reminders_read_facts_from_the_profile_documents_and_done_events(space, clock):
    child = open_patient(space, child_identity(3, dt.date(2025, 1, 10)))
    me = Actor.patient(child.id)
    by_id = {r.id: r for r in space.agenda.reminders(me, child.id, dt.date(2025, 4, 1))}
    assert by_id["vaccination.hexavalent.1"].status is ReminderStatus.DUE
    space.profile.add(
        me,
        child.id,
        "vaccination",
        "Hexavalent",
        code=Code("J07CA09", "ATC"),
        started=dt.date(2025, 3, 12),
    )
    (doctor,) = register_physicians(space, 1)
    feeder(space, Actor(ActorKind.PROFESSIONAL, doctor), child.id)
    space.record.add_document(
        Actor(ActorKind.PROFESSIONAL, doctor),
        child.id,
        b"certificat",
        media_type="text/plain",
        type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
        format_code="urn:asip:ci-sis:cse-cs8:2017",
        created_at=dt.datetime(2025, 1, 15, tzinfo=dt.UTC),
    )
    exam = space.agenda.add(
        me,
        child.id,
        kind=EventKind.EXAMINATION,
        starts_at=dt.datetime(2025, 1, 22, 9, tzinfo=dt.UTC),
        reminder_id="child_exam.2",
        status="done",
    )
    assert exam.status is EventStatus.DONE
    by_id = {r.id: r for r in space.agenda.reminders(me, child.id, dt.date(2025, 4, 1))}
    assert by_id["vaccination.hexavalent.1"].status is ReminderStatus.DONE
    assert by_id["vaccination.hexavalent.1"].why.proved_by == "atc:J07CA09"
    early = {r.id: r for r in space.agenda.reminders(me, child.id, dt.date(2025, 1, 24))}
    assert early["child_exam.2"].why.proved_by == "reminder:child_exam.2"
    assert early["child_exam.1"].why.proved_by == "format_code:urn:asip:ci-sis:cse-cs8:2017"


def _mails(space):
    space.dispatch()
    return space.transports["email"].sent


def test_tick_queues_each_due_reminder_once_without_health_content(space, clock):
    parent = open_patient(space, identity(4, email="parent@example.org"))
    child = open_patient(space, child_identity(5, dt.date(2025, 12, 20), "child@example.org"))
    space.accounts.add_representative(
        Actor.system("test"), child.id, parent.id, RepresentationKind.LEGAL_GUARDIAN
    )
    counts = space.tick(NOW)
    assert counts["reminders_sent"] > 0
    mails = _mails(space)
    assert {m.recipient for m in mails} >= {"parent@example.org", "child@example.org"}
    for mail in mails:
        text = f"{mail.subject}\n{mail.body}".lower()
        assert not [word for word in HEALTH_WORDS if word in text], text
    assert space.tick(NOW).get("reminders_sent", 0) == 0
    assert space.tick(NOW + dt.timedelta(hours=3)).get("reminders_sent", 0) == 0
    assert len(_mails(space)) == len(mails)

    me = Actor.patient(child.id)
    sent = space.agenda.sent(me, child.id)
    assert {s.recipient for s in sent} == {"holder", "representative"}
    first = sent[0]
    assert first.why.rule == first.reminder_id
    assert first.why.source.ref


def test_opting_out_stops_a_family_and_is_audited(space, clock):
    child = open_patient(space, child_identity(6, dt.date(2025, 12, 20), "c@example.org"))
    me = Actor.patient(child.id)
    for family in Family:
        assert space.agenda.opt_out(me, child.id, family)
    assert not space.agenda.opt_out(me, child.id, Family.VACCINATION)
    assert space.agenda.opted_out(me, child.id) == set(Family)
    assert space.tick(NOW).get("reminders_sent", 0) == 0
    assert space.agenda.opt_in(me, child.id, Family.VACCINATION)
    assert space.tick(NOW)["reminders_sent"] > 0
    assert {s.reminder_id.split(".")[0] for s in space.agenda.sent(me, child.id)} == {"vaccination"}
    whats = {e.what for e in space.access.history(me, child.id)}
    assert "a modifié vos préférences de rappels" in whats


def test_directives_anticipees_are_reviewed_yearly_by_their_author_only(space, clock, holder):
    me = Actor.patient(holder.id)
    rep = open_patient(space, identity(8, email="rep@example.org"))
    space.accounts.add_representative(
        Actor.system("test"), holder.id, rep.id, RepresentationKind.PROTECTED_ADULT
    )
    for family in Family:
        space.agenda.opt_out(Actor.patient(rep.id), rep.id, family)
        if family is not Family.ADVANCE_DIRECTIVES:
            space.agenda.opt_out(me, holder.id, family)
    space.profile.add(me, holder.id, "advance_directives", "Chez mon notaire")
    assert space.tick(NOW).get("reminders_sent", 0) == 0
    a_year_on = NOW + dt.timedelta(days=366)
    clock.advance(dt.timedelta(days=366))
    assert space.tick(a_year_on)["reminders_sent"] == 1
    assert [m.recipient for m in _mails(space)] == ["holder@example.org"]
    assert [s.reminder_id for s in space.agenda.sent(me, holder.id)] == [
        "advance_directives.review"
    ]


def test_tick_pages_through_people(space, clock):
    children = [
        open_patient(space, child_identity(10 + n, dt.date(2025, 12, 20), f"c{n}@example.org"))
        for n in range(5)
    ]
    counts = space.agenda.tick(NOW, batch=2)
    sent = {child.id: space.agenda.sent(Actor.patient(child.id), child.id) for child in children}
    assert all(sent.values())
    assert counts["reminders_sent"] == sum(len(v) for v in sent.values())
    assert space.agenda.tick(NOW, batch=2)["reminders_sent"] == 0


def test_closed_spaces_get_no_reminders(space, clock):
    child = space.accounts.register_patient(
        Actor.system("test"), child_identity(20, dt.date(2025, 12, 20), "x@example.org")
    )
    assert space.agenda.tick(NOW) == {"reminders_sent": 0}
    space.accounts.create_space(Actor.system("test"), child.id)
    assert space.agenda.tick(NOW)["reminders_sent"] > 0


def test_space_tick_sends_reminders_only_when_the_settings_say_so(clock):
    with open_space("memory://", clock) as space:
        open_patient(space, child_identity(30, dt.date(2025, 12, 20), "k@example.org"))
        assert "reminders_sent" not in space.tick(NOW)
        assert space.agenda.tick(NOW)["reminders_sent"] > 0


def test_shredding_a_person_deletes_their_agenda_and_reminder_lines(space, holder, me):
    _add(space, me, holder.id)
    space.agenda.opt_out(me, holder.id, Family.SCREENING)
    space.agenda.tick(NOW)
    space.accounts.shred(Actor.system("test"), holder.id)
    with storage_of(space).read() as tx:
        assert tx.agenda.for_patient(holder.id) == []
        assert tx.agenda.opt_outs(holder.id) == []
        assert tx.agenda.sent(holder.id) == []


def test_the_demo_population_has_agendas():
    with open_space("memory://", ManualClock(NOW)) as space:
        summary = seed_demo(space, 30, seed=3)
        holder = next(login for login in summary.logins if login.role == "patient")
        me = Actor.patient(holder.patient_id)
        events = space.agenda.events(me, holder.patient_id)
        assert {(e.kind, e.status) for e in events} >= {
            (EventKind.APPOINTMENT, EventStatus.PLANNED),
            (EventKind.VACCINATION, EventStatus.DONE),
        }
