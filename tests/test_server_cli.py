"""``monespace demo`` (its logins, ``--no-serve``) and ``monespace serve`` in a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from monespace.cli import main

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_demo_prints_ready_to_use_logins_and_keeps_them(runner, tmp_path):
    first = runner.invoke(main, ["demo", "--patients", "40", "--seed", "2", "--no-serve"])
    assert first.exit_code == 0, first.output
    for expected in ("a patient:", "a parent (reaches a child's space too):", "RPPS", "NIR"):
        assert expected in first.output
    assert "Not serving" not in first.output  # --no-serve was explicit
    assert "Next: monespace serve --db monespace-demo.db" in first.output
    saved = tmp_path / "monespace-demo.db-logins.txt"
    assert saved.stat().st_mode & 0o077 == 0
    again = runner.invoke(main, ["demo", "--no-serve"])
    assert saved.read_text() in again.output
    # not a terminal and no flag: seeds, prints, and says why it does not serve
    quiet = runner.invoke(main, ["demo"])
    assert "Not serving: standard input is not a terminal" in quiet.output


def test_serve_help_has_examples(runner):
    result = runner.invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "Not an HDS deployment" in " ".join(result.output.split())


def test_monespace_serve_in_a_real_process(runner, tmp_path):
    runner.invoke(main, ["demo", "--patients", "30", "--no-serve"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monespace",
            "serve",
            "--db",
            "monespace-demo.db",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "carte Vitale" in page.text
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert "not an HDS deployment" in output
    assert "GET /health -> 200" in output  # the route template, status and duration
