"""The professional's pages: the simulated CPS login, finding a patient from the carte
Vitale, the record as the policy allows with every refusal said in French, the care team,
emergency access, deposits and messages; CSRF and session kinds on every form."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from monespace import Actor
from monespace.actors import ActorKind
from monespace.identity import RPPS
from monespace.record import LOINC, Code
from monespace.server._pro_pages import REFUSALS, refusal_text

from .test_server_world import CANARY, PDF, build_world, client, create_app

pytestmark = pytest.mark.anyio

RULES = Path(__file__).resolve().parent.parent / "src" / "monespace" / "policy" / "_rules.py"


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def _pro_login(http, rpps: str) -> str:
    response = await http.post("/pro/login", data={"rpps": rpps})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/pro/patients"
    return _csrf((await http.get("/pro/patients")).text)


async def _lookup(http, csrf: str, person) -> str:
    response = await http.post(
        "/pro/patients",
        data={"csrf_token": csrf, "nir": person.nir, "birth_date": person.birth_date.isoformat()},
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _said(rule: str) -> str:
    return html.escape(refusal_text(rule))


async def test_the_login_is_marked_as_simulated_and_says_what_is_wrong(world, app):
    async with client(app) as http:
        assert 'href="/pro"' in (await http.get("/")).text
        page = await http.get("/pro")
        assert page.status_code == 200
        assert "Pro Santé Connect" in page.text
        assert "Carte CPS simulée" in page.text
        assert "<script" not in page.text
        bad = await http.post("/pro/login", data={"rpps": "123"})
        assert bad.status_code == 422
        assert "pas valide" in bad.text
        unknown = RPPS.build("1000111111").value
        missing = await http.post("/pro/login", data={"rpps": unknown})
        assert missing.status_code == 404
        assert "pas dans l&#x27;annuaire" in missing.text
        assert "monespace_session" not in missing.headers.get("set-cookie", "")
        csrf = await _pro_login(http, world.doctor)
        search = await http.get("/pro/patients")
        assert "Dr Claire Martin" in search.text
        assert 'aria-current="page"' in search.text
        # logged in, /pro leads to the search; logout ends the session
        assert (await http.get("/pro")).headers["location"] == "/pro/patients"
        out = await http.post("/pro/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert (await http.get("/pro/patients")).status_code == 401


async def test_the_doctor_finds_the_patient_and_reads_the_record(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        location = await _lookup(http, csrf, world.alice)
        assert location == f"/pro/patients/{world.alice.id}"
        assert world.alice.nir not in location
        record = await http.get(location)
        assert record.status_code == 200
        assert f"Compte rendu de consultation {CANARY}" in record.text
        assert "Comptes rendus" in record.text
        assert "11488-4" not in record.text
        assert "Patient : Camille" in record.text
        document = world.documents[world.alice.id][1]
        page = await http.get(f"{location}/documents/{document}")
        assert page.status_code == 200
        assert f'id="content">Compte rendu de consultation {CANARY}' in page.text
        download = await http.get(f"{location}/documents/{document}/contenu")
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment")
        # a wrong birth date finds nobody, and says so on the form
        wrong = await http.post(
            "/pro/patients",
            data={"csrf_token": csrf, "nir": world.alice.nir, "birth_date": "1999-01-01"},
        )
        assert wrong.status_code == 404
        assert 'id="lookup-error"' in wrong.text
        assert world.alice.nir not in wrong.text


async def test_a_refusal_is_explained_then_the_care_team_opens_the_record(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.stranger)
        location = await _lookup(http, csrf, world.alice)
        refused = await http.get(location)
        assert refused.status_code == 403
        assert "Accès refusé" in refused.text
        assert _said("no_authorisation") in refused.text
        assert CANARY not in refused.text
        document = world.documents[world.alice.id][1]
        closed = await http.get(f"{location}/documents/{document}")
        assert closed.status_code == 403
        assert CANARY not in closed.text
        joined = await http.post(f"{location}/equipe-de-soins", data={"csrf_token": csrf})
        assert joined.status_code == 303
        opened = await http.get(joined.headers["location"])
        assert opened.status_code == 200
        assert "équipe de soins de ce patient" in opened.text
        assert f"Compte rendu de consultation {CANARY}" in opened.text
    history = world.space.access.history(Actor.patient(world.alice.id), world.alice.id)
    assert any("équipe de soins" in x.sentence for x in history)


async def test_a_blocked_professional_is_told_and_cannot_break_the_glass(world, app):
    alice = Actor.patient(world.alice.id)
    world.space.access.block(alice, world.alice.id, world.stranger)
    async with client(app) as http:
        csrf = await _pro_login(http, world.stranger)
        location = await _lookup(http, csrf, world.alice)
        refused = await http.get(location)
        assert refused.status_code == 403
        assert _said("blocked_by_patient") in refused.text
        glass = await http.post(
            f"{location}/urgence",
            data={"csrf_token": csrf, "mode": "emergency", "justification": "Patient inconscient"},
        )
        assert glass.status_code == 403
        assert _said("blocked_by_patient") in glass.text


async def test_emergency_access_needs_a_justification_and_respects_the_objection(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.stranger)
        bob = await _lookup(http, csrf, world.bob)
        assert (await http.get(bob)).status_code == 403
        short = await http.post(
            f"{bob}/urgence", data={"csrf_token": csrf, "mode": "emergency", "justification": "x"}
        )
        assert short.status_code == 422
        assert 'id="emergency-error"' in short.text
        glass = await http.post(
            f"{bob}/urgence",
            data={"csrf_token": csrf, "mode": "emergency", "justification": "Patient inconscient"},
        )
        assert glass.status_code == 303
        opened = await http.get(glass.headers["location"])
        assert opened.status_code == 200
        assert 'id="emergency-mode"' in opened.text
        assert f"Note personnelle {CANARY}" in opened.text
        alice = await _lookup(http, csrf, world.alice)
        # a patient who objected to emergency access
        world.space.access.update_settings(
            Actor.patient(world.alice.id), world.alice.id, object_emergency=True
        )
        objected = await http.post(
            f"{alice}/urgence",
            data={"csrf_token": csrf, "mode": "emergency", "justification": "Patient inconscient"},
        )
        assert objected.status_code == 403
        assert _said("patient_objects_to_emergency_access") in objected.text
    sentences = [
        x.sentence for x in world.space.access.history(Actor.patient(world.bob.id), world.bob.id)
    ]
    assert any("urgence" in s for s in sentences), sentences


async def test_deposit_a_document_the_patient_then_sees(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        alice = await _lookup(http, csrf, world.alice)
        form = await http.get(f"{alice}/deposer")
        assert form.status_code == 200
        assert "Compte rendu ou fiche de consultation ou de visite" in form.text
        missing = await http.post(
            f"{alice}/deposer",
            data={"csrf_token": csrf, "title": "", "type": "11488-4"},
            files={"file": ("cr.pdf", PDF, "application/pdf")},
        )
        assert missing.status_code == 400
        assert 'id="deposit-error"' in missing.text
        done = await http.post(
            f"{alice}/deposer",
            data={"csrf_token": csrf, "title": "Consultation du 2 mars", "type": "11488-4"},
            files={"file": ("cr.pdf", PDF, "application/pdf")},
        )
        assert done.status_code == 303, done.text
        page = await http.get(done.headers["location"])
        assert "Consultation du 2 mars" in page.text
        assert 'id="preview" sandbox' in page.text
        preview = await http.get(done.headers["location"] + "/apercu")
        assert preview.content == PDF
        assert preview.headers["content-security-policy"].startswith("sandbox;")
        # the doctor has no right to feed Bob's record since Bob withdrew it
        bob = await _lookup(http, csrf, world.bob)
        refused = await http.post(
            f"{bob}/deposer",
            data={"csrf_token": csrf, "title": "Consultation", "type": "11488-4"},
            files={"file": ("cr.pdf", PDF, "application/pdf")},
        )
        assert refused.status_code == 403
        assert "Dépôt refusé" in refused.text
        assert _said("no_authorisation") in refused.text
    titles = [
        d.title
        for d in world.space.record.search(Actor.patient(world.alice.id), world.alice.id).documents
    ]
    assert "Consultation du 2 mars" in titles


async def test_start_a_message_thread_and_follow_the_conversation(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        alice = await _lookup(http, csrf, world.alice)
        assert (await http.get(f"{alice}/message")).status_code == 200
        empty = await http.post(
            f"{alice}/message", data={"csrf_token": csrf, "subject": "", "body": ""}
        )
        assert empty.status_code == 400
        assert 'id="message-error"' in empty.text
        sent = await http.post(
            f"{alice}/message",
            data={"csrf_token": csrf, "subject": "Vos analyses", "body": "<b>Tout</b> est normal."},
        )
        assert sent.status_code == 303
        location = sent.headers["location"]
        assert location.startswith(f"{alice}/messages/")
        thread = await http.get(location)
        assert "&lt;b&gt;Tout&lt;/b&gt; est normal." in thread.text
        assert "pas encore lu" in thread.text
        # the patient answers; the doctor reads it in the conversation and replies
        tid = location.rsplit("/", 1)[1]
        patient = Actor.patient(world.alice.id)
        world.space.messaging.thread(patient, tid)
        world.space.messaging.reply(patient, tid, body="Merci docteur.")
        listing = await http.get(f"{alice}/messages")
        assert "Vos analyses" in listing.text
        assert "1 non lu" in listing.text
        thread = await http.get(location)
        assert "Merci docteur." in thread.text
        assert "<strong>Le patient</strong>" in thread.text
        assert "lu le " in thread.text
        answer = await http.post(
            f"{location}/repondre", data={"csrf_token": csrf, "body": "Bonne journée."}
        )
        assert answer.status_code == 303
        assert "Bonne journée." in (await http.get(location)).text
        # a thread closed to replies has no form; another patient's thread is not found
        closed = await http.get(f"{alice}/messages/{world.closed_thread}")
        assert 'id="closed"' in closed.text
        assert 'id="reply-body"' not in closed.text
        other = await http.get(f"{alice}/messages/{world.threads[world.child]}")
        assert other.status_code == 404
    inbox = world.space.messaging.inbox(Actor.patient(world.alice.id))
    assert any(t.subject == "Vos analyses" for t in inbox.threads)


async def test_every_form_needs_its_csrf_token_and_a_professional_session(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        alice = f"/pro/patients/{world.alice.id}"
        for path, data in (
            ("/pro/patients", {"nir": world.alice.nir, "birth_date": "1980-05-04"}),
            (f"{alice}/equipe-de-soins", {}),
            (f"{alice}/urgence", {"mode": "emergency", "justification": "Patient inconscient"}),
            (f"{alice}/message", {"subject": "Objet", "body": "Texte"}),
            (f"{alice}/messages/{world.threads[world.alice.id]}/repondre", {"body": "Texte"}),
            ("/pro/logout", {}),
        ):
            for token in (None, csrf[:-2] + "xx"):
                sent = dict(data) | ({"csrf_token": token} if token else {})
                response = await http.post(path, data=sent)
                assert response.status_code == 403, path
        # another site's form is refused even with the token
        cross = await http.post(
            f"{alice}/message",
            data={"csrf_token": csrf, "subject": "Objet", "body": "Texte"},
            headers={"origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        # a professional's session opens no patient page, and a person's no professional one
        assert (await http.get(f"/espace/{world.alice.id}")).status_code == 401
    async with client(app) as http:
        await http.post("/login", data=world.alice.login())
        assert (await http.get("/pro/patients")).status_code == 401
        assert (await http.get(f"/pro/patients/{world.alice.id}")).status_code == 401
    # without demo mode, the simulated login and its pages do not exist
    plain = create_app(world.space, secure_cookies=False, demo=False)
    async with client(plain) as http:
        assert (await http.get("/pro")).status_code == 404
        assert 'href="/pro"' not in (await http.get("/")).text
        assert (await http.post("/pro/login", data={"rpps": world.doctor})).status_code == 404


def test_every_refusing_rule_has_a_french_reason():
    source = RULES.read_text(encoding="utf-8")
    refusing = set(re.findall(r'Decision\(False, "([a-z_]+)"\)', source))
    refusing |= set(re.findall(r'return "([a-z_]+)"', source))
    refusing |= set(re.findall(r'denied or "([a-z_]+)"', source))
    assert len(refusing) >= 15
    assert refusing <= set(REFUSALS), sorted(refusing - set(REFUSALS))
    assert (
        refusal_text("a_rule_nobody_wrote")
        == "L'accès est refusé par les règles d'accès du dossier."
    )


async def test_a_professional_without_rights_reads_nothing_on_any_page(world, app):
    """Every professional page over Alice's space, for a professional she never authorised:
    no page shows her data, none fails, and the refusals say why."""
    documents = world.documents[world.alice.id]
    paths = [
        route.path.replace("{patient_id}", world.alice.id)
        .replace("{document_id}", document)
        .replace("{thread_id}", world.threads[world.alice.id])
        for route in app.routes
        if getattr(route, "path", "").startswith("/pro/patients/{")
        and "GET" in (getattr(route, "methods", None) or ())
        for document in documents
    ]
    assert len(paths) >= 10
    async with client(app) as http:
        await _pro_login(http, world.stranger)
        for path in sorted(set(paths)):
            response = await http.get(path)
            assert response.status_code in (200, 403, 404), path
            assert CANARY not in response.text, path
            assert world.alice.nir not in response.text, path
            if response.status_code == 403:
                assert 'id="refusal-reason"' in response.text, path
        # a document of another record, through Alice's path, is not found
        other = world.documents[world.bob.id][0]
        response = await http.get(f"/pro/patients/{world.alice.id}/documents/{other}")
        assert response.status_code == 404
        assert CANARY not in response.text


async def test_what_a_professional_writes_is_escaped(world, app):
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        alice = await _lookup(http, csrf, world.alice)
        done = await http.post(
            f"{alice}/deposer",
            data={"csrf_token": csrf, "title": "<script>alert(1)</script> CR", "type": "11488-4"},
            files={"file": ("cr.txt", b"<img src=x onerror=alert(1)>", "text/plain")},
        )
        assert done.status_code == 303, done.text
        page = await http.get(done.headers["location"])
        assert "<script>alert(1)" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; CR" in page.text
        record = await http.get(alice)
        assert "<script>alert(1)" not in record.text


async def test_a_result_to_announce_stays_hidden_until_its_author_releases_it(world, app):
    patient = Actor.patient(world.alice.id)
    async with client(app) as http:
        csrf = await _pro_login(http, world.doctor)
        alice = await _lookup(http, csrf, world.alice)
        done = await http.post(
            f"{alice}/deposer",
            data={"csrf_token": csrf, "title": "Biopsie", "type": "11502-2", "announce": "1"},
            files={"file": ("cr.pdf", PDF, "application/pdf")},
        )
        assert done.status_code == 303, done.text
        location = done.headers["location"]
        page = await http.get(location)
        assert 'id="announcement"' in page.text
        titles = [d.title for d in world.space.record.search(patient, world.alice.id).documents]
        assert "Biopsie" not in titles
        # without the token nothing happens; with it the patient sees the result
        assert (await http.post(f"{location}/annoncer")).status_code == 403
        released = await http.post(f"{location}/annoncer", data={"csrf_token": csrf})
        assert released.status_code == 303
        assert 'id="announcement"' not in (await http.get(location)).text
    titles = [d.title for d in world.space.record.search(patient, world.alice.id).documents]
    assert "Biopsie" in titles
    # another professional, who did not write it, may not release it
    hidden = world.space.record.add_document(
        Actor(ActorKind.PROFESSIONAL, world.doctor),
        world.alice.id,
        PDF,
        media_type="application/pdf",
        type_code=Code("11502-2", LOINC),
        title="Anatomopathologie",
        hidden_from_patient=True,
    )
    world.space.access.authorise(patient, world.alice.id, world.stranger)
    async with client(app) as http:
        csrf = await _pro_login(http, world.stranger)
        path = f"/pro/patients/{world.alice.id}/documents/{hidden.id}"
        refused = await http.post(f"{path}/annoncer", data={"csrf_token": csrf})
        assert refused.status_code == 403
        assert 'id="refusal-reason"' in refused.text
    assert world.space.record.get_document(
        Actor(ActorKind.PROFESSIONAL, world.doctor), hidden.id
    ).hidden_from_patient_at(world.clock.now())
