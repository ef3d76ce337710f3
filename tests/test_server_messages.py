"""Secure messaging through the demo server: every messaging route of the JSON API (in
process, httpx over ASGI), the patient page's inbox, thread, reply and filing, and the demo
population's threads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import attrs
import pytest

import monespace
from monespace import Actor, ActorKind, ManualClock
from monespace.synth import seed_demo

from .test_server_world import (
    CANARY,
    PDF,
    b64,
    build_world,
    client,
    create_app,
)
from .test_server_world import login_patient as _login_patient
from .test_server_world import login_professional as _login_professional

pytestmark = pytest.mark.anyio


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


async def login_patient(http, person):
    """Bearer headers; the cookie is dropped, so that the next login does not revoke it."""
    headers = await _login_patient(http, person)
    http.cookies.clear()
    return headers


async def login_professional(http, rpps):
    headers = await _login_professional(http, rpps)
    http.cookies.clear()
    return headers


def _box(pid: str) -> str:
    return f"/api/v1/patients/{pid}/messages"


async def test_patient_inbox_with_unread_counts_filters_and_search(world, app):
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        inbox = await http.get(_box(world.alice.id), headers=alice)
        assert inbox.status_code == 200, inbox.text
        page = inbox.json()
        assert page["total"] == 2
        assert page["unread"] == 2
        ids = {t["id"] for t in page["threads"]}
        assert ids == {world.threads[world.alice.id], world.closed_thread}
        first = next(t for t in page["threads"] if t["id"] == world.threads[world.alice.id])
        assert first["unread"] == 1
        assert first["status"] == "open"
        assert first["professional"]["name"] == "Dr Claire Martin"
        closed = next(t for t in page["threads"] if t["id"] == world.closed_thread)
        assert closed["status"] == "closed"
        assert closed["closed_at"] is not None
        # by correspondent: the doctor's RPPS, part of a name, or nobody
        by_rpps = await http.get(
            _box(world.alice.id) + f"?correspondent={world.doctor}", headers=alice
        )
        assert by_rpps.json()["total"] == 2
        by_name = await http.get(_box(world.alice.id) + "?correspondent=durand", headers=alice)
        assert by_name.json()["total"] == 0
        archived = await http.get(_box(world.alice.id) + "?archived=true", headers=alice)
        assert archived.json()["total"] == 0
        # free-text search is a POST, so that the words stay out of URLs
        found = await http.post(
            _box(world.alice.id) + "/search", json={"text": "résultats"}, headers=alice
        )
        assert found.status_code == 200, found.text
        assert [t["id"] for t in found.json()["threads"]] == [world.threads[world.alice.id]]
        future = (world.clock.now() + timedelta(days=1)).isoformat()
        none = await http.post(
            _box(world.alice.id) + "/search", json={"since": future}, headers=alice
        )
        assert none.json()["total"] == 0
        naive = await http.post(
            _box(world.alice.id) + "/search", json={"since": "2026-01-01T00:00:00"}, headers=alice
        )
        assert naive.status_code == 422
        bad = await http.get(_box(world.alice.id) + "?limit=0", headers=alice)
        assert bad.status_code == 422
        unknown = await http.get(_box(world.alice.id) + "?text=x", headers=alice)
        assert unknown.status_code == 422
        # the representative reaches the child's mailbox from the same login
        child = await http.get(_box(world.child), headers=alice)
        assert child.status_code == 200
        assert [t["id"] for t in child.json()["threads"]] == [world.threads[world.child]]
        # a professional has no access to a patient's mailbox; their own is elsewhere
        doctor = await login_professional(http, world.doctor)
        assert (await http.get(_box(world.alice.id), headers=doctor)).status_code == 404
        bob = await login_patient(http, world.bob)
        assert (await http.get(_box(world.alice.id), headers=bob)).status_code == 404
        assert (await http.get(_box(world.alice.id))).status_code == 401


async def test_thread_view_marks_read_and_keeps_the_body_as_text(world, app):
    tid = world.threads[world.alice.id]
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        view = await http.get(f"{_box(world.alice.id)}/{tid}", headers=alice)
        assert view.status_code == 200, view.text
        data = view.json()
        assert data["thread"]["id"] == tid
        assert data["thread"]["unread"] == 0
        [message] = data["messages"]
        assert message["sender_kind"] == "professional"
        assert message["sender_id"] == world.doctor
        assert "<script>alert(1)</script>" in message["body"]  # text, as written
        assert message["read_at"] is not None
        [attachment] = message["attachments"]
        assert attachment["media_type"] == "application/pdf"
        assert attachment["size"] == len(PDF)
        inbox = (await http.get(_box(world.alice.id), headers=alice)).json()
        assert inbox["unread"] == 1  # only the closed thread is left unread
        # the read receipt: the doctor sees it read
        doctor = await login_professional(http, world.doctor)
        seen = await http.get(f"{_box(world.alice.id)}/{tid}", headers=doctor)
        assert seen.status_code == 200
        assert seen.json()["messages"][0]["read_at"] == message["read_at"]
        # the thread under another patient's URL, or a missing one: the same 404
        wrong = await http.get(f"{_box(world.bob.id)}/{tid}", headers=doctor)
        ghost = await http.get(f"{_box(world.bob.id)}/NoSuchThread000000000", headers=doctor)
        assert wrong.status_code == ghost.status_code == 404
        assert wrong.content == ghost.content
        stranger = await login_professional(http, world.stranger)
        assert (
            await http.get(f"{_box(world.alice.id)}/{tid}", headers=stranger)
        ).status_code == 404


async def test_patient_replies_with_an_attachment_and_the_doctor_closes(world, app):
    tid = world.threads[world.alice.id]
    url = f"{_box(world.alice.id)}/{tid}/replies"
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        reply = await http.post(
            url,
            json={
                "body": "Merci, voici ma prise de sang.",
                "attachment": {
                    "filename": "prise-de-sang.pdf",
                    "media_type": "application/pdf",
                    "content": b64(PDF),
                },
            },
            headers=alice,
        )
        assert reply.status_code == 201, reply.text
        message = reply.json()
        assert message["sender_kind"] == "patient"
        assert message["subject"].startswith("Re: ")
        assert message["attachments"][0]["filename"] == "prise-de-sang.pdf"
        # the patient cannot close a thread
        closing = await http.post(url, json={"body": "Fin", "close": True}, headers=alice)
        assert closing.status_code == 422
        # a lying attachment (not a PDF), an empty body: 422, nothing stored
        lying = await http.post(
            url,
            json={
                "body": "x",
                "attachment": {
                    "filename": "a.pdf",
                    "media_type": "application/pdf",
                    "content": b64(b"MZ not a pdf"),
                },
            },
            headers=alice,
        )
        assert lying.status_code == 422
        assert (await http.post(url, json={"body": ""}, headers=alice)).status_code == 422
        injected = await http.post(
            url, json={"body": "x", "subject": "Bonjour\r\nBcc: x@example.org"}, headers=alice
        )
        assert injected.status_code == 422
        # the doctor answers and closes with the same message
        doctor = await login_professional(http, world.doctor)
        answer = await http.post(url, json={"body": "Bien reçu.", "close": True}, headers=doctor)
        assert answer.status_code == 201, answer.text
        assert answer.json()["closes_thread"] is True
        # the patient's side may no longer reply: a 409, not a 404 (they can read it)
        late = await http.post(url, json={"body": "Encore une question"}, headers=alice)
        assert late.status_code == 409
        assert late.json()["type"] == "urn:monespace:problem:thread-closed"
        view = (await http.get(f"{_box(world.alice.id)}/{tid}", headers=alice)).json()
        assert len(view["messages"]) == 3
        assert view["thread"]["status"] == "closed"
        # reopened, the patient writes again
        reopened = await http.post(f"{_box(world.alice.id)}/{tid}/reopen", headers=doctor)
        assert reopened.status_code == 200
        assert reopened.json()["status"] == "open"
        again = await http.post(url, json={"body": "Une dernière question"}, headers=alice)
        assert again.status_code == 201
        closed = await http.post(f"{_box(world.alice.id)}/{tid}/close", headers=doctor)
        assert closed.json()["status"] == "closed"
        # closing is the professional's: a patient session gets the 404 of an unknown route
        assert (
            await http.post(f"{_box(world.alice.id)}/{tid}/close", headers=alice)
        ).status_code == 404
        # Bob cannot write in Alice's thread, and the stranger cannot either
        bob = await login_patient(http, world.bob)
        assert (await http.post(url, json={"body": "x"}, headers=bob)).status_code == 404
        stranger = await login_professional(http, world.stranger)
        assert (await http.post(url, json={"body": "x"}, headers=stranger)).status_code == 404
        assert (
            await http.post(f"{_box(world.alice.id)}/{tid}/close", headers=stranger)
        ).status_code == 404


async def test_oversized_attachments_are_refused(world, monkeypatch):
    app = create_app(world.space, secure_cookies=False, max_body_bytes=4096)
    url = f"{_box(world.alice.id)}/{world.threads[world.alice.id]}/replies"
    big = {"filename": "a.pdf", "media_type": "application/pdf", "content": b64(PDF + b" " * 8000)}
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        response = await http.post(url, json={"body": "x", "attachment": big}, headers=alice)
        assert response.status_code == 413
    # under the body limit but over the messaging's own attachment limit
    core = world.space._core
    messaging = attrs.evolve(core.settings.messaging, max_attachment_bytes=100)
    monkeypatch.setattr(core, "settings", attrs.evolve(core.settings, messaging=messaging))
    app = create_app(world.space, secure_cookies=False)
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        big["content"] = b64(PDF + b" " * 200)
        response = await http.post(url, json={"body": "x", "attachment": big}, headers=alice)
        assert response.status_code == 422
        view = await http.get(
            f"{_box(world.alice.id)}/{world.threads[world.alice.id]}", headers=alice
        )
        assert len(view.json()["messages"]) == 1  # nothing stored


async def test_closed_thread_takes_no_reply_from_the_representative_either(world, app):
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        late = await http.post(
            f"{_box(world.alice.id)}/{world.closed_thread}/replies",
            json={"body": "Merci"},
            headers=alice,
        )
        assert late.status_code == 409
        child_thread = world.threads[world.child]
        ok = await http.post(
            f"{_box(world.child)}/{child_thread}/replies", json={"body": "Merci"}, headers=alice
        )
        assert ok.status_code == 201
        assert ok.json()["sender_kind"] == "representative"
        # the child's thread under Alice's own space: as if it did not exist
        wrong = await http.post(
            f"{_box(world.alice.id)}/{child_thread}/replies", json={"body": "x"}, headers=alice
        )
        assert wrong.status_code == 404


async def test_archive_and_unarchive(world, app):
    tid = world.threads[world.alice.id]
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        archived = await http.post(f"{_box(world.alice.id)}/{tid}/archive", headers=alice)
        assert archived.status_code == 200, archived.text
        assert archived.json()["archived"] is True
        inbox = (await http.get(_box(world.alice.id), headers=alice)).json()
        assert tid not in {t["id"] for t in inbox["threads"]}
        archive = (await http.get(_box(world.alice.id) + "?archived=true", headers=alice)).json()
        assert [t["id"] for t in archive["threads"]] == [tid]
        # the doctor's mailbox is not touched
        doctor = await login_professional(http, world.doctor)
        mine = (await http.get("/api/v1/professional/messages", headers=doctor)).json()
        assert tid in {t["id"] for t in mine["threads"]}
        back = await http.post(f"{_box(world.alice.id)}/{tid}/unarchive", headers=alice)
        assert back.json()["archived"] is False
        bob = await login_patient(http, world.bob)
        assert (
            await http.post(f"{_box(world.alice.id)}/{tid}/archive", headers=bob)
        ).status_code == 404


async def test_attachment_download_and_filing_into_the_record(world, app):
    aid = world.attachments[world.alice.id]
    base = f"/api/v1/patients/{world.alice.id}/attachments/{aid}"
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        content = await http.get(base + "/content", headers=alice)
        assert content.status_code == 200, content.text
        assert content.content == PDF
        assert content.headers["content-type"] == "application/pdf"
        disposition = content.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert CANARY not in disposition  # the sender's file name stays out of headers
        assert "sandbox" in content.headers["content-security-policy"]
        filed = await http.post(base + "/file", headers=alice)
        assert filed.status_code == 201, filed.text
        document = filed.json()
        assert document["media_type"] == "application/pdf"
        assert document["author"]["kind"] == "patient"
        listing = await http.get(f"/api/v1/patients/{world.alice.id}/documents", headers=alice)
        assert document["id"] in {d["id"] for d in listing.json()["documents"]}
        # the doctor reads it, but filing is the patient's side's
        doctor = await login_professional(http, world.doctor)
        assert (await http.get(base + "/content", headers=doctor)).status_code == 200
        assert (await http.post(base + "/file", headers=doctor)).status_code == 404
        # Bob, the stranger, another space's URL: 404, as for a missing attachment
        bob = await login_patient(http, world.bob)
        ghost = await http.get(
            f"/api/v1/patients/{world.bob.id}/attachments/NoSuchAttachment000/content", headers=bob
        )
        for headers, url in (
            (bob, base + "/content"),
            (bob, f"/api/v1/patients/{world.bob.id}/attachments/{aid}/content"),
            (doctor, f"/api/v1/patients/{world.bob.id}/attachments/{aid}/content"),
        ):
            response = await http.get(url, headers=headers)
            assert response.status_code == 404
            assert response.content == ghost.content


async def test_professional_starts_threads_and_reads_their_mailbox(world, app):
    async with client(app) as http:
        doctor = await login_professional(http, world.doctor)
        started = await http.post(
            _box(world.bob.id),
            json={
                "subject": "Prise de contact",
                "body": "Bonjour, je suis le nouveau médecin du cabinet.",
                "ins_qualified": True,
            },
            headers=doctor,
        )
        assert started.status_code == 201, started.text
        message = started.json()
        assert message["sender_id"] == world.doctor
        assert message["ins_qualified"] is True
        # with a document of the record it may read, and closed to replies
        document = world.documents[world.alice.id][1]
        with_document = await http.post(
            _box(world.alice.id),
            json={
                "subject": "Votre compte rendu",
                "body": "Ci-joint.",
                "document_id": document,
                "close": True,
            },
            headers=doctor,
        )
        assert with_document.status_code == 201, with_document.text
        assert len(with_document.json()["attachments"]) == 1
        # a document of another patient's record cannot be attached
        foreign = await http.post(
            _box(world.bob.id),
            json={"subject": "x", "body": "y", "document_id": document},
            headers=doctor,
        )
        assert foreign.status_code in (404, 422)
        mailbox = await http.get("/api/v1/professional/messages", headers=doctor)
        assert mailbox.status_code == 200
        threads = {t["id"] for t in mailbox.json()["threads"]}
        assert message["thread_id"] in threads
        assert world.threads[world.child] in threads
        assert world.threads[world.bob.id] not in threads  # the stranger's
        with_bob = await http.get(
            f"/api/v1/professional/messages?correspondent={world.bob.id}", headers=doctor
        )
        assert [t["id"] for t in with_bob.json()["threads"]] == [message["thread_id"]]
        # Bob sees it with one unread message, and was told by e-mail without its content
        bob = await login_patient(http, world.bob)
        inbox = (await http.get(_box(world.bob.id), headers=bob)).json()
        assert message["thread_id"] in {t["id"] for t in inbox["threads"]}
        # patients do not start threads, nor have a professional mailbox
        alice = await login_patient(http, world.alice)
        refused = await http.post(
            _box(world.alice.id), json={"subject": "x", "body": "y"}, headers=alice
        )
        assert refused.status_code == 404
        assert (await http.get("/api/v1/professional/messages", headers=alice)).status_code == 404
        # an unknown space
        ghost = await http.post(
            _box("NoSuchPatient000000"), json={"subject": "x", "body": "y"}, headers=doctor
        )
        assert ghost.status_code == 404
        bad = await http.post(_box(world.bob.id), json={"subject": "", "body": "y"}, headers=doctor)
        assert bad.status_code == 422


async def test_blocked_professional_can_no_longer_write(world, app):
    async with client(app) as http:
        alice = await login_patient(http, world.alice)
        blocked = await http.post(
            f"/api/v1/patients/{world.alice.id}/access/blocked",
            json={"rpps": world.stranger},
            headers=alice,
        )
        assert blocked.status_code == 204
        stranger = await login_professional(http, world.stranger)
        refused = await http.post(
            _box(world.alice.id), json={"subject": "x", "body": "y"}, headers=stranger
        )
        assert refused.status_code == 404


async def test_cookie_sessions_need_the_csrf_token_for_messages(world, app):
    tid = world.threads[world.alice.id]
    async with client(app) as http:
        login = await http.post("/api/v1/session/patient", json=world.alice.login())
        csrf = login.json()["session"]["csrf_token"]
        url = f"{_box(world.alice.id)}/{tid}/replies"
        refused = await http.post(url, json={"body": "x"})
        assert refused.status_code == 403
        ok = await http.post(url, json={"body": "x"}, headers={"x-csrf-token": csrf})
        assert ok.status_code == 201
        cross = await http.post(
            url,
            json={"body": "x"},
            headers={"x-csrf-token": csrf, "origin": "https://evil.example"},
        )
        assert cross.status_code == 403


async def test_openapi_documents_the_messaging(app):
    async with client(app) as http:
        spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "post" in paths["/api/v1/patients/{patient_id}/messages"]
    assert "get" in paths["/api/v1/professional/messages"]
    reply = paths["/api/v1/patients/{patient_id}/messages/{thread_id}/replies"]["post"]
    assert "409" in reply["responses"]
    schemas = spec["components"]["schemas"]
    assert schemas["AttachmentIn"]["properties"]["content"]["contentEncoding"] == "base64"
    assert set(schemas["ThreadOut"]["properties"]["status"]["enum"]) == {"open", "closed"}


# --- the patient page --------------------------------------------------------------------------


async def _page_login(http, person) -> str:
    response = await http.post(
        "/login",
        data={
            "nir": person.nir,
            "vitale_serial": person.vitale_serial,
            "birth_date": person.birth_date.isoformat(),
        },
    )
    assert response.status_code == 303, response.text
    home = await http.get(response.headers["location"])
    return re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)


async def test_page_inbox_thread_reply_and_filing(world, app):
    pid, tid = world.alice.id, world.threads[world.alice.id]
    async with client(app) as http:
        csrf = await _page_login(http, world.alice)
        inbox = await http.get(f"/espace/{pid}/messages")
        assert inbox.status_code == 200
        assert "2 messages non lus" in inbox.text
        assert f"/espace/{pid}/messages/{tid}" in inbox.text
        assert 'class="unread"' in inbox.text
        assert "<script>" not in inbox.text
        page = await http.get(f"/espace/{pid}/messages/{tid}")
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # inert text
        assert "<script>" not in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'id="reply"' in page.text
        # read now
        inbox = await http.get(f"/espace/{pid}/messages")
        assert "1 message non lu" in inbox.text
        # a reply without the CSRF token is refused, with it it is sent
        refused = await http.post(f"/espace/{pid}/messages/{tid}/repondre", data={"body": "x"})
        assert refused.status_code == 403
        sent = await http.post(
            f"/espace/{pid}/messages/{tid}/repondre",
            data={"body": "Merci <b>docteur</b>", "csrf_token": csrf},
        )
        assert sent.status_code == 303
        page = await http.get(sent.headers["location"])
        assert "Merci &lt;b&gt;docteur&lt;/b&gt;" in page.text
        empty = await http.post(
            f"/espace/{pid}/messages/{tid}/repondre", data={"body": "", "csrf_token": csrf}
        )
        assert empty.status_code == 422
        # the attachment: download, then save into the record
        aid = world.attachments[pid]
        download = await http.get(f"/espace/{pid}/pieces-jointes/{aid}")
        assert download.content == PDF
        assert download.headers["content-disposition"].startswith("attachment;")
        filed = await http.post(
            f"/espace/{pid}/pieces-jointes/{aid}/enregistrer", data={"csrf_token": csrf}
        )
        assert filed.status_code == 303
        assert filed.headers["location"].startswith(f"/espace/{pid}/documents/")
        document = await http.get(filed.headers["location"])
        assert document.status_code == 200
        # a closed thread shows no reply form
        closed = await http.get(f"/espace/{pid}/messages/{world.closed_thread}")
        assert 'id="closed"' in closed.text
        assert 'id="reply"' not in closed.text
        late = await http.post(
            f"/espace/{pid}/messages/{world.closed_thread}/repondre",
            data={"body": "x", "csrf_token": csrf},
        )
        assert late.status_code == 409
        # archive, then the inbox no longer lists it; the archive does
        archived = await http.post(
            f"/espace/{pid}/messages/{tid}/archive", data={"csrf_token": csrf}
        )
        assert archived.status_code == 303
        assert tid not in (await http.get(f"/espace/{pid}/messages")).text
        assert tid in (await http.get(f"/espace/{pid}/messages?archives=1")).text
        await http.post(f"/espace/{pid}/messages/{tid}/unarchive", data={"csrf_token": csrf})
        assert tid in (await http.get(f"/espace/{pid}/messages")).text
        # the child's mailbox from the same login; Bob's is not there
        child = await http.get(f"/espace/{world.child}/messages")
        assert world.threads[world.child] in child.text
        assert (await http.get(f"/espace/{world.bob.id}/messages")).status_code == 404
        bob_thread = world.threads[world.bob.id]
        assert (await http.get(f"/espace/{pid}/messages/{bob_thread}")).status_code == 404
        bob_attachment = world.attachments[world.bob.id]
        assert (await http.get(f"/espace/{pid}/pieces-jointes/{bob_attachment}")).status_code == 404


async def test_page_messages_need_a_session(world, app):
    async with client(app) as http:
        response = await http.get(f"/espace/{world.alice.id}/messages")
        assert response.status_code == 401
        assert "Connexion" in response.text


# --- the demo population ---------------------------------------------------------------------


def test_the_demo_population_has_threads():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with monespace.open("memory://", clock=clock) as space:
        summary = seed_demo(space, 40, seed=2)
        assert summary.threads == 3
        patient = summary.login("patient")
        parent = summary.login("representative")
        assert patient is not None
        assert parent is not None
        actor = Actor.patient(patient.patient_id)
        inbox = space.messaging.inbox(actor)
        assert inbox.total == 2
        assert inbox.unread >= 2
        closed = [t for t in inbox.threads if t.closed]
        assert len(closed) == 1
        letter = next(t for t in inbox.threads if not t.closed)
        view = space.messaging.thread(actor, letter.id)
        assert [m.sender_kind for m in view.messages] == ["professional", "patient", "professional"]
        [attachment] = view.messages[0].attachments
        assert attachment.media_type == "application/pdf"
        _, content = space.messaging.read_attachment(actor, attachment.id)
        assert content.startswith(b"%PDF-")
        assert max(m.sent_at for m in view.messages) <= clock.now()
        assert clock.now() - datetime(2026, 3, 2, 9, 0, tzinfo=UTC) < timedelta(minutes=5)
        child = parent.represents[0]
        guardian = Actor(ActorKind.REPRESENTATIVE, parent.patient_id, on_behalf_of=child)
        assert space.messaging.inbox(guardian, child).total == 1
        assert space.audit.verify().ok
