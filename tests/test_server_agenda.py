"""The agenda on the demo server: its JSON routes (events, reminders and their why, notices
per family, the sent reminders, the iCalendar download), their OpenAPI, CSRF, who is denied,
and the patient page's Agenda section."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest

import monespace
from monespace import Actor, ManualClock
from monespace.synth import seed_demo

from .test_server_world import CANARY, build_world, client, create_app, login_patient
from .test_server_world import login_professional as login_pro

icalendar = pytest.importorskip("icalendar")

pytestmark = pytest.mark.anyio


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


def _agenda(pid: str) -> str:
    return f"/api/v1/patients/{pid}/agenda"


async def test_the_openapi_documents_every_agenda_route(app):
    async with client(app) as http:
        spec = (await http.get("/openapi.json")).json()
    agenda = {
        (path, method, op["operationId"])
        for path, ops in spec["paths"].items()
        if "/agenda" in path
        for method, op in ops.items()
    }
    assert {op for _, _, op in agenda} == {
        "listAgendaEvents",
        "addAgendaEvent",
        "getAgendaEvent",
        "rescheduleAgendaEvent",
        "cancelAgendaEvent",
        "markAgendaEventDone",
        "getAgendaCalendar",
        "listReminders",
        "optOutOfReminders",
        "optInToReminders",
        "listSentReminders",
    }
    listing = spec["paths"]["/api/v1/patients/{patient_id}/agenda/events"]["get"]
    query = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
    assert set(query) == {"from", "until"}  # the keyword's field is named without its "_"
    assert all(p["required"] is False for p in query.values())
    schemas = spec["components"]["schemas"]
    assert "why" in schemas["ReminderOut"]["properties"]
    assert schemas["FamilyIn"]["properties"]["family"]["enum"]


async def test_events_add_list_reschedule_cancel_and_mark_done(world, app):
    base = _agenda(world.alice.id)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        listed = await http.get(f"{base}/events", headers=alice)
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()] == [world.events[world.alice.id]]
        added = await http.post(
            f"{base}/events",
            json={
                "kind": "vaccination",
                "starts_at": "2026-04-10T10:00:00+02:00",
                "title": "Rappel dTP",
                "place": "Cabinet",
            },
            headers=alice,
        )
        assert added.status_code == 201, added.text
        event = added.json()
        assert (event["status"], event["kind"], event["version"]) == ("planned", "vaccination", 1)
        assert event["uid"].endswith("@monespace")
        # from and until are days, Paris time, both included
        april = await http.get(f"{base}/events?from=2026-04-10&until=2026-04-10", headers=alice)
        assert [e["id"] for e in april.json()] == [event["id"]]
        march = await http.get(f"{base}/events?until=2026-03-31", headers=alice)
        assert [e["id"] for e in march.json()] == [world.events[world.alice.id]]
        later = await http.get(f"{base}/events?from=2026-04-11", headers=alice)
        assert later.json() == []
        one = await http.get(f"{base}/events/{event['id']}", headers=alice)
        assert one.json() == event
        assert event["starts_at"] == "2026-04-10T08:00:00Z"  # times come back in UTC
        moved = await http.post(
            f"{base}/events/{event['id']}/reschedule",
            json={"starts_at": "2026-04-12T09:00:00+02:00"},
            headers=alice,
        )
        assert moved.status_code == 200
        assert moved.json()["starts_at"] == "2026-04-12T07:00:00Z"
        assert moved.json()["sequence"] == 1
        cancelled = await http.post(f"{base}/events/{event['id']}/cancel", headers=alice)
        assert cancelled.json()["status"] == "cancelled"
        # done only once started: a 422 problem before, a done event after
        early = await http.post(f"{base}/events/{event['id']}/done", headers=alice)
        assert early.status_code == 422
        assert early.headers["content-type"] == "application/problem+json"
        world.clock.set(datetime(2026, 3, 16, 10, 0, tzinfo=UTC))
        alice = await login_patient(http, world.alice)  # two weeks later: a new session
        done = await http.post(f"{base}/events/{world.events[world.alice.id]}/done", headers=alice)
        assert done.status_code == 200
        assert done.json()["status"] == "done"


async def test_bad_agenda_input_is_a_4xx_problem(world, app):
    base = _agenda(world.alice.id)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        for query in (
            "from=769907",  # a number is not a date
            "from=2026-13-01",
            "until=2026-04-01T10:00:00",  # days only
            "since=2026-04-01",
            "from_=2026-04-01",
        ):
            response = await http.get(f"{base}/events?{query}", headers=alice)
            assert response.status_code in (400, 422), query
        extremes = await http.get(f"{base}/events?from=0001-01-01&until=9999-12-31", headers=alice)
        assert extremes.status_code == 200
        assert len(extremes.json()) == 1
        for body in (
            {"kind": "party", "starts_at": "2026-04-10T10:00:00+02:00"},
            {"kind": "other", "starts_at": "2026-04-10T10:00:00"},  # naive
            {"kind": "other", "starts_at": "1970-01-01T10:00:00+01:00"},  # before birth
            {"kind": "other", "starts_at": "2026-04-10T10:00:00+02:00", "title": "a\u0007b"},
            {"kind": "other", "starts_at": "2026-04-10T10:00:00+02:00", "status": "missed"},
        ):
            response = await http.post(f"{base}/events", json=body, headers=alice)
            assert response.status_code == 422, (body, response.text)
        bad_family = await http.post(
            f"{base}/reminders/opt-out", json={"family": "horoscope"}, headers=alice
        )
        assert bad_family.status_code == 422
        missing = await http.get(f"{base}/events/GhostEvent000000000000", headers=alice)
        assert missing.status_code == 404


async def test_reminders_with_why_opt_out_and_back_and_sent(world, app):
    base = _agenda(world.alice.id)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        listed = await http.get(f"{base}/reminders", headers=alice)
        assert listed.status_code == 200
        body = listed.json()
        assert body["opted_out"] == []
        assert body["reminders"]
        for reminder in body["reminders"]:
            assert reminder["status"] in ("upcoming", "due", "overdue", "done")
            why = reminder["why"]
            assert why["rule"] == reminder["id"]
            assert why["source"]["text"]
            assert why["age_days"] > 0
            assert reminder["notices"] is True
        family = body["reminders"][0]["family"]
        out = await http.post(f"{base}/reminders/opt-out", json={"family": family}, headers=alice)
        assert out.json() == {"changed": True, "opted_out": [family]}
        again = await http.post(f"{base}/reminders/opt-out", json={"family": family}, headers=alice)
        assert again.json()["changed"] is False
        after = (await http.get(f"{base}/reminders", headers=alice)).json()
        assert after["opted_out"] == [family]
        assert all(not r["notices"] for r in after["reminders"] if r["family"] == family)
        back = await http.post(f"{base}/reminders/opt-in", json={"family": family}, headers=alice)
        assert back.json() == {"changed": True, "opted_out": []}
        # "why was this sent": a tick sends the due reminders, each with its why
        assert (await http.get(f"{base}/reminders/sent", headers=alice)).json() == []
        counts = world.space.agenda.tick()
        sent = (await http.get(f"{base}/reminders/sent", headers=alice)).json()
        holder = [s for s in sent if s["recipient"] == "holder"]
        assert len(sent) >= 1
        assert counts["reminders_sent"] >= len(holder) >= 1
        assert all(s["why"]["rule"] == s["reminder_id"] for s in sent)


async def test_the_calendar_download_parses_and_keeps_details_unless_asked(world, app):
    base = _agenda(world.alice.id)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        plain = await http.get(f"{base}/calendar.ics", headers=alice)
        assert plain.status_code == 200
        assert plain.headers["content-type"].startswith("text/calendar")
        assert plain.headers["content-disposition"] == 'attachment; filename="agenda.ics"'
        assert plain.headers["cache-control"] == "no-store"
        assert CANARY not in plain.text  # the title stays out by default
        calendar = icalendar.Calendar.from_ical(plain.content)
        events = calendar.walk("VEVENT")
        assert len(events) == 1
        assert str(events[0]["UID"]).startswith(world.events[world.alice.id])
        detailed = await http.get(f"{base}/calendar.ics?include_details=true", headers=alice)
        assert CANARY in icalendar.Calendar.from_ical(detailed.content).walk("VEVENT")[0].get(
            "SUMMARY"
        )


async def test_writes_need_the_csrf_token_with_a_cookie(world, app):
    base = _agenda(world.alice.id)
    body = {"kind": "other", "starts_at": "2026-04-10T10:00:00+02:00"}
    async with client(app) as http:
        login = await http.post("/api/v1/session/patient", json=world.alice.login())
        csrf = login.json()["session"]["csrf_token"]
        assert (await http.get(f"{base}/events")).status_code == 200
        for path, payload in (
            ("/events", body),
            ("/reminders/opt-out", {"family": "screening"}),
            (f"/events/{world.events[world.alice.id]}/cancel", None),
        ):
            refused = await http.post(base + path, json=payload)
            assert refused.status_code == 403
            assert refused.json()["type"] == "urn:monespace:problem:csrf"
        cross = await http.post(
            f"{base}/events",
            json=body,
            headers={"x-csrf-token": csrf, "origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        good = await http.post(f"{base}/events", json=body, headers={"x-csrf-token": csrf})
        assert good.status_code == 201
        # nothing was written by the refused requests
        events = (await http.get(f"{base}/events")).json()
        assert len(events) == 2
        assert all(e["status"] == "planned" for e in events)
        assert (await http.get(f"{base}/reminders")).json()["opted_out"] == []


async def test_strangers_and_blocked_professionals_are_denied(world, app):
    base = _agenda(world.alice.id)
    async with client(app) as http:
        stranger = await login_pro(http, world.stranger)
        http.cookies.clear()  # a login replaces the session of the cookie it comes with
        bob = await login_patient(http, world.bob)
        http.cookies.clear()
        doctor = await login_pro(http, world.doctor)
        http.cookies.clear()
        paths = ("/events", "/reminders", "/reminders/sent", "/calendar.ics")
        for headers in (stranger, bob):
            for path in paths:
                denied = await http.get(base + path, headers=headers)
                assert denied.status_code == 404, path
                assert CANARY not in denied.text
        # the médecin traitant reads and feeds the agenda, but not the person's settings
        assert (await http.get(f"{base}/events", headers=doctor)).status_code == 200
        settings = await http.post(
            f"{base}/reminders/opt-out", json={"family": "screening"}, headers=doctor
        )
        assert settings.status_code == 404
        world.space.access.block(Actor.patient(world.alice.id), world.alice.id, world.doctor)
        for path in paths:
            assert (await http.get(base + path, headers=doctor)).status_code == 404, path


async def test_a_parent_manages_their_childs_agenda(world, app):
    base = _agenda(world.child)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        events = await http.get(f"{base}/events", headers=alice)
        assert [e["id"] for e in events.json()] == [world.events[world.child]]
        reminders = (await http.get(f"{base}/reminders", headers=alice)).json()["reminders"]
        assert reminders
        assert {r["family"] for r in reminders} & {"vaccination", "child_exam", "mt_dents"}
        out = await http.post(
            f"{base}/reminders/opt-out", json={"family": "mt_dents"}, headers=alice
        )
        assert out.json()["opted_out"] == ["mt_dents"]
        history = world.space.agenda.history(
            Actor.patient(world.child), world.child, world.events[world.child]
        )
        assert history[0].actor_kind == "representative"
        # Alice's own opt-outs are untouched
        own = (await http.get(f"{_agenda(world.alice.id)}/reminders", headers=alice)).json()
        assert own["opted_out"] == []


async def test_logs_and_urls_hold_no_health_data(world, app, caplog):
    caplog.set_level(logging.DEBUG)
    base = _agenda(world.alice.id)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        await http.post(
            f"{base}/events",
            json={"kind": "screening", "starts_at": "2026-04-10T10:00:00+02:00", "title": CANARY},
            headers=alice,
        )
        await http.get(f"{base}/events?from=2026-01-01", headers=alice)
        await http.get(f"{base}/reminders", headers=alice)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("monespace"))
    assert CANARY not in caplog.text
    assert "/api/v1/patients/{patient_id}/agenda/events" in ours
    assert "2026-01-01" not in ours  # route templates only, no query
    assert world.alice.id not in ours


# --- the patient page ---------------------------------------------------------------------------


async def _page_login(http, person) -> str:
    response = await http.post("/login", data=person.login())
    assert response.status_code == 303
    page = await http.get(f"/espace/{person.id}")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def test_the_agenda_page_shows_events_reminders_and_why(world, app):
    world.space.agenda.add(
        Actor.patient(world.alice.id),
        world.alice.id,
        kind="other",
        starts_at=datetime(2026, 3, 20, 8, 0, tzinfo=UTC),
        title="<script>alert(1)</script>",
    )
    async with client(app) as http:
        await _page_login(http, world.alice)
        page = await http.get(f"/espace/{world.alice.id}/agenda")
        assert page.status_code == 200
        text = page.text
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "16/03/2026 10:30 (heure de Paris)" in text  # 09:30 UTC, winter time
        assert "Pourquoi ce rappel ?" in text
        assert "Source :" in text
        assert f'href="/espace/{world.alice.id}/agenda/agenda.ics"' in text
        assert 'id="agenda"' in text
        assert f'href="/espace/{world.alice.id}/agenda"' in text  # in the navigation
        download = await http.get(f"/espace/{world.alice.id}/agenda/agenda.ics")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/calendar")
        assert CANARY not in download.text
        icalendar.Calendar.from_ical(download.content)


async def test_the_agenda_page_stops_and_restarts_notices_with_csrf(world, app):
    pid = world.alice.id
    async with client(app) as http:
        csrf = await _page_login(http, world.alice)
        page = await http.get(f"/espace/{pid}/agenda")
        families = re.findall(
            rf'action="/espace/{pid}/agenda/rappels/([a-z_]+)/arreter"', page.text
        )
        assert families
        family = families[0]
        forged = await http.post(f"/espace/{pid}/agenda/rappels/{family}/arreter", data={})
        assert forged.status_code == 403
        stop = await http.post(
            f"/espace/{pid}/agenda/rappels/{family}/arreter", data={"csrf_token": csrf}
        )
        assert stop.status_code == 303
        assert world.space.agenda.opted_out(Actor.patient(pid), pid) == {family}
        page = await http.get(f"/espace/{pid}/agenda")
        assert f'action="/espace/{pid}/agenda/rappels/{family}/reprendre"' in page.text
        await http.post(
            f"/espace/{pid}/agenda/rappels/{family}/reprendre", data={"csrf_token": csrf}
        )
        assert world.space.agenda.opted_out(Actor.patient(pid), pid) == set()
        unknown = await http.post(
            f"/espace/{pid}/agenda/rappels/horoscope/arreter", data={"csrf_token": csrf}
        )
        assert unknown.status_code == 404


async def test_the_agenda_page_of_a_represented_child_and_of_a_stranger(world, app):
    async with client(app) as http:
        await _page_login(http, world.alice)
        child = await http.get(f"/espace/{world.child}/agenda")
        assert child.status_code == 200
        assert "Espace ouvert : <strong>Camille, 9 ans</strong>" in child.text
        assert "Mon espace (Camille, 45 ans)" in child.text
        assert "Pourquoi ce rappel ?" in child.text
        bob = await http.get(f"/espace/{world.bob.id}/agenda")
        assert bob.status_code == 404
        assert CANARY not in bob.text
        ics = await http.get(f"/espace/{world.bob.id}/agenda/agenda.ics")
        assert ics.status_code == 404


async def test_the_demo_population_shows_every_state_of_a_reminder():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with monespace.open("memory://", clock=clock) as space:
        summary = seed_demo(space, 30, seed=3)
        patient, parent = summary.login("patient"), summary.login("representative")
        assert patient is not None
        assert parent is not None
        app = create_app(space, secure_cookies=False)
        statuses: set[str] = set()
        async with client(app) as http:
            for login, pid in (
                (patient, patient.patient_id),
                (parent, parent.patient_id),
                (parent, parent.represents[0]),
            ):
                http.cookies.clear()
                session = await http.post(
                    "/api/v1/session/patient",
                    json={
                        "nir": login.nir,
                        "vitale_serial": login.vitale_serial,
                        "birth_date": login.birth_date.isoformat(),
                    },
                )
                headers = {"authorization": f"Bearer {session.json()['token']}"}
                base = _agenda(pid)
                events = (await http.get(f"{base}/events", headers=headers)).json()
                reminders = (await http.get(f"{base}/reminders", headers=headers)).json()
                statuses |= {r["status"] for r in reminders["reminders"]}
                # the done events that answer a reminder make it done
                answered = {e["reminder_id"] for e in events if e["status"] == "done"} - {None}
                assert answered
                done = {r["id"] for r in reminders["reminders"] if r["status"] == "done"}
                assert answered <= done
        assert statuses >= {"done", "due", "overdue"}
        # the holder's booked appointments include one that answers a due reminder
        holder = Actor.patient(patient.patient_id)
        booked = space.agenda.events(holder, patient.patient_id, status="planned")
        assert any(e.reminder_id for e in booked)
