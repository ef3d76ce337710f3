"""The command line, run in process with click's runner and once as a real process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from monespace.cli import main
from monespace.storage import LATEST_SCHEMA_VERSION
from monespace.synth import synthetic_identities


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_demo_creates_a_space_once_and_prints_a_summary(runner, tmp_path):
    first = runner.invoke(main, ["demo", "--patients", "6", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert "patients:            6 (6 created now)" in first.output
    assert "audit trail:" in first.output
    assert "intact" in first.output
    sent = [p.read_text() for p in (tmp_path / "monespace-demo.db-outbox").iterdir()]
    invitations = [m for m in sent if "X-Monespace-Kind: invitation" in m]
    assert len(invitations) == 6  # every person (or their parent) was told, once
    assert all("3422" in m and "Code provisoire" in m for m in invitations)
    again = runner.invoke(main, ["demo", "--patients", "6"])
    assert "patients:            6 (0 created now)" in again.output
    key_file = os.path.join(os.environ["XDG_CONFIG_HOME"], "monespace", "master-key.json")
    assert f"master key:          {key_file}" in first.output
    assert os.stat(key_file).st_mode & 0o077 == 0


def test_the_same_seed_gives_the_same_population(runner, tmp_path):
    first = [i.ins.matricule.value for i in synthetic_identities(20, seed=5)]
    assert first == [i.ins.matricule.value for i in synthetic_identities(20, seed=5)]
    assert first != [i.ins.matricule.value for i in synthetic_identities(20, seed=6)]
    assert len(set(first)) == 20


def test_info_and_key_rotation(runner):
    runner.invoke(main, ["demo", "--db", "x.db", "--patients", "3"])
    info = runner.invoke(main, ["info", "--db", "x.db"])
    assert info.exit_code == 0
    assert f"schema version:  {LATEST_SCHEMA_VERSION}" in info.output
    assert "patients:        3" in info.output
    rotated = runner.invoke(main, ["keys", "rotate", "--db", "x.db"])
    assert rotated.exit_code == 0, rotated.output
    with sqlite3.connect("x.db") as conn:
        (live,) = conn.execute(
            "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL"
        ).fetchone()
        (masters,) = conn.execute("SELECT count(DISTINCT master_key_id) FROM data_keys").fetchone()
    assert live >= 3 + 3  # 3 patients' keys, and the space keys (indexes, codes, notifications)
    assert f"{live} data keys re-wrapped" in rotated.output
    assert masters == 1
    verify = runner.invoke(main, ["audit", "verify", "--db", "x.db"])
    assert verify.exit_code == 0


def test_dispatch_delivers_to_the_named_transport(runner, tmp_path):
    runner.invoke(main, ["demo", "--db", "x.db", "--patients", "3"])
    result = runner.invoke(
        main, ["dispatch", "--db", "x.db", "--transport", f"email=file://{tmp_path}/o"]
    )
    assert result.exit_code == 0
    assert result.output.startswith("sent 0")  # the demo already delivered everything
    bad = runner.invoke(main, ["dispatch", "--db", "x.db", "--transport", "email"])
    assert bad.exit_code == 2
    assert "CHANNEL=URL" in bad.output


def test_a_missing_database_is_a_usage_error_not_a_new_file(runner, tmp_path):
    for command in (["audit", "verify"], ["info"], ["keys", "rotate"]):
        result = runner.invoke(main, [*command, "--db", "absent.db"])
        assert result.exit_code == 2
        assert "does not exist" in result.output
    assert not (tmp_path / "absent.db").exists()


def test_library_errors_are_one_line_without_traceback(runner):
    result = runner.invoke(main, ["info", "--db", "nosuch://x"])
    assert result.exit_code == 1
    assert "Error: no storage backend is registered for the URL scheme 'nosuch'" in result.output
    assert "Traceback" not in result.output


def test_every_command_has_help_with_examples(runner):
    for command in (["demo"], ["audit", "verify"], ["keys", "rotate"], ["dispatch"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


def test_the_installed_console_script_runs(tmp_path):
    """The entry point declared in pyproject works as a real process."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    result = subprocess.run(
        [sys.executable, "-m", "monespace", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "monespace" in result.stdout
