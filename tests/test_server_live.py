"""The demo server over a real socket (uvicorn on 127.0.0.1), and the patient page in a real
browser: headless Chromium driven through the DevTools protocol over a pipe (no extra
Python dependency). The browser test is skipped, saying so, where no Chromium is installed
(Debian: ``apt-get install chromium``)."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from .test_server_world import CANARY, build_world, create_app

uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


@contextmanager
def running(app):
    """Serve *app* with uvicorn on 127.0.0.1 and a free port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def live(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'live.db'}")
    app = create_app(world.space)  # automatic cookies: not Secure on loopback
    with running(app) as url:
        yield world, url
    world.space.close()


def test_over_a_real_socket(live):
    world, url = live
    with httpx.Client(base_url=url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        login = http.post("/api/v1/session/patient", json=world.alice.login())
        assert login.status_code == 201
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" not in cookie
        token = login.json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        listing = http.get(f"/api/v1/patients/{world.alice.id}/documents", headers=headers)
        assert listing.status_code == 200
        assert listing.json()["total"] == 2
        assert listing.headers["cache-control"] == "no-store"
        garbage = http.post(
            "/api/v1/session/patient",
            content=b"\xff\xfe{{{",
            headers={"content-type": "application/json"},
        )
        assert garbage.status_code == 400
        assert http.delete("/api/v1/session", headers=headers).status_code == 204
        assert http.get("/api/v1/session", headers=headers).status_code == 401
    # a raw, malformed HTTP request is refused without bringing the server down
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GARBAGE / HTTP/9.9\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 4")
    with httpx.Client(base_url=url) as http:
        assert http.get("/health").status_code == 200


# --- the browser --------------------------------------------------------------------------------

CHROMIUM = next(
    (
        p
        for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        # Chrome reads commands on fd 3 and writes answers on fd 4: bash puts the pipes
        # there (no preexec_fn, which is unsafe while the server's thread runs).
        plumbing = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.process = subprocess.Popen(
            [
                shutil.which("bash") or "/bin/bash",
                "-c",
                plumbing,
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._answers: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    self._answers.setdefault(message["id"], queue.Queue()).put(message)
                else:
                    self.events.put(message)

    def send(self, method, params=None, *, browser=False, timeout=20.0):
        self._next += 1
        number = self._next
        self._answers.setdefault(number, queue.Queue())
        message = {"id": number, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        answer = self._answers[number].get(timeout=timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_for(self, name, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event.get("method") == name:
                return event

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
        )
        self.session = attached["sessionId"]
        self.send("Page.enable")

    def drain(self):
        while not self.events.empty():
            self.events.get_nowait()

    def navigate(self, url):
        self.drain()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def click_and_wait(self, selector):
        self.drain()
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self.wait_for("Page.loadEventFired")

    def html(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        with suppress(Exception):
            self.send("Browser.close", browser=True, timeout=5)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium browser installed: the patient page's browser test needs one "
            "(Debian: apt-get install chromium; or set CHROMIUM=/path/to/chrome)"
        )
    tools = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        tools.open_page()
        yield tools
    finally:
        tools.close()


def test_the_patient_page_in_a_real_browser(live, browser, tmp_path):
    world, url = live
    browser.navigate(url + "/")
    assert "Connexion" in browser.html()
    login = world.alice.login()
    for field in ("nir", "vitale_serial", "birth_date"):
        browser.evaluate(
            f"document.getElementById({json.dumps(field)}).value = {json.dumps(login[field])}"
        )
    browser.click_and_wait("#login")
    page = browser.html()
    assert "Mes documents" in page, page[:2000]
    assert "Mes documents (1)" in page  # the patient's own document, by category
    assert "Autres documents" in page or "Comptes rendus" in page or "(1)" in page
    cookies = browser.send("Network.getCookies", {"urls": [url]})["cookies"]
    session = next(c for c in cookies if c["name"] == "monespace_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    # open a document
    browser.click_and_wait("a.doc")
    page = browser.html()
    assert CANARY in page
    assert 'id="content"' in page
    # mask it, then the page says so
    browser.click_and_wait("#mask")
    assert "masqué aux professionnels" in browser.html()
    assert 'id="unmask"' in browser.html()
    browser.screenshot(tmp_path / "document.png")
    # the access history lists the masking, in plain words
    browser.navigate(f"{url}/espace/{world.alice.id}/historique")
    history = browser.html()
    assert "Vous avez masqué un document." in history
    assert "vous | s'est connecté" not in history
    assert "Vous avez consulté un document." not in history  # own views: left out by default
    browser.click_and_wait("#history-filter")
    assert "Vous avez consulté un document." in browser.html()
    # the secure messaging: the inbox with its unread badges, a thread, a reply
    browser.click_and_wait("#nav-messages")
    inbox = browser.html()
    assert "Messagerie" in inbox
    assert "2 messages non lus" in inbox
    thread = world.threads[world.alice.id]
    browser.click_and_wait(f'a.thread[href$="/messages/{thread}"]')
    page = browser.html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the body is inert text
    assert browser.evaluate("document.scripts.length") == 0
    assert "<script>alert(1)</script>" in browser.evaluate(
        "document.querySelector('pre.message-body').textContent"
    )
    browser.evaluate("document.getElementById('reply-body').value = 'Merci docteur <b>!</b>'")
    browser.click_and_wait("#reply")
    page = browser.html()
    assert "Merci docteur &lt;b&gt;!&lt;/b&gt;" in page
    assert page.count('class="message"') == 2
    browser.screenshot(tmp_path / "thread.png")
    # save the attachment into the record: the document page opens
    browser.click_and_wait("button.file-attachment")
    assert 'id="download"' in browser.html()
    browser.navigate(f"{url}/espace/{world.alice.id}/messages")
    assert "1 message non lu" in browser.html()  # the closed thread, still unread
    browser.navigate(f"{url}/espace/{world.alice.id}/messages/{world.closed_thread}")
    assert 'id="closed"' in browser.html()
    assert 'id="reply"' not in browser.html()
    # the agenda: upcoming events in Paris time, reminders with their why, notices per family
    browser.click_and_wait("#nav-agenda")
    agenda = browser.html()
    assert "16/03/2026 10:30 (heure de Paris)" in agenda
    assert "Pourquoi ce rappel ?" in agenda
    assert 'id="agenda-ics"' in agenda
    assert browser.evaluate("document.scripts.length") == 0
    browser.click_and_wait('#notices button[type="submit"]')
    assert "Recevoir à nouveau" in browser.html()
    browser.screenshot(tmp_path / "agenda.png")
    # a child's space from the same login, by the link the page offers
    browser.navigate(f"{url}/espace/{world.alice.id}")
    assert "Espace ouvert" in browser.html()
    browser.navigate(f"{url}/espace/{world.bob.id}")
    assert "Introuvable" in browser.html()  # another person's space: as if it did not exist
    browser.click_and_wait("#logout")
    assert "Connexion" in browser.html()
    browser.navigate(f"{url}/espace/{world.alice.id}")
    assert "session a expiré" in browser.html()
    assert (tmp_path / "document.png").stat().st_size > 1000
