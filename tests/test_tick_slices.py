"""``space.tick`` in slices of the patients: the slices together do what one run does, each
patient in exactly one slice; ``monespace tick --slice i/n`` and ``invite --slice i/n``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace import Actor, ManualClock
from monespace.cli import main
from monespace.errors import ValidationError
from monespace.storage import Slice, slice_of
from monespace.synth import synthetic_identities

from .helpers import open_space

OPERATOR = Actor.system("test")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _invited(space: monespace.Space, count: int) -> list[str]:
    ids = []
    for person in synthetic_identities(count, seed=4, today=T0.date()):
        patient = space.accounts.register_patient(OPERATOR, person)
        space.accounts.invite(OPERATOR, patient.id)
        ids.append(patient.id)
    return ids


def test_the_slices_together_open_every_space_once():
    clock = ManualClock(T0)
    with open_space("memory://", clock) as space:
        ids = _invited(space, 30)
        clock.advance(days=43)
        counts = [space.tick(slice=(i, 4)) for i in range(4)]
        created = [c.get("created", 0) for c in counts]
        assert sum(created) == len(ids)
        assert created == [sum(slice_of(pid, 4) == i for pid in ids) for i in range(4)]
        assert space.accounts.count_by_state() == {"created": len(ids)}
        assert space.tick() == {}  # nothing left for a whole run
        assert space.audit.verify().ok


def test_a_slice_leaves_the_other_patients_alone():
    clock = ManualClock(T0)
    with open_space("memory://", clock) as space:
        ids = _invited(space, 12)
        clock.advance(days=43)
        space.tick(slice=Slice(1, 3))
        states = {pid: space.accounts.account(OPERATOR, pid).state for pid in ids}
        for pid, state in states.items():
            assert (str(state) == "created") == (slice_of(pid, 3) == 1)


@given(st.text(min_size=1, max_size=30), st.integers(1, 64))
def test_every_patient_is_in_exactly_one_slice(patient_id, count):
    holders = [i for i in range(count) if Slice(i, count).holds(patient_id)]
    assert holders == [slice_of(patient_id, count)]


@pytest.mark.parametrize("bad", [(2, 2), (-1, 3), (0, 0)])
def test_a_slice_out_of_range_is_refused(bad):
    with pytest.raises(ValidationError, match="0 <= i < n"):
        Slice(*bad)


@pytest.mark.parametrize("text", ["1", "a/4", "1/", "/4", "1/4/2", ""])
def test_a_slice_is_written_i_over_n(text):
    with pytest.raises(ValidationError):
        Slice.parse(text)


def test_tick_slice_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "slices.db"
    with monespace.open(f"sqlite:///{path}") as space:
        ids = _invited(space, 8)
    runner = CliRunner()
    later = (datetime.now(UTC) + timedelta(days=43)).strftime("%Y-%m-%dT%H:%M:%S")
    created = 0
    for i in range(2):
        run = runner.invoke(main, ["tick", "--db", str(path), "--now", later, "--slice", f"{i}/2"])
        assert run.exit_code == 0, run.output
        if run.output != "nothing was due\n":
            created += int(run.output.removeprefix("created: "))
    assert created == len(ids)
    bad = runner.invoke(main, ["tick", "--db", str(path), "--slice", "2/2"])
    assert bad.exit_code == 2
    assert "--slice" in bad.output
    assert "0 <= i < n" in bad.output


def test_invite_slice_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "invite-slices.db"
    with monespace.open(f"sqlite:///{path}") as space:
        ids = [
            space.accounts.register_patient(OPERATOR, person).id
            for person in synthetic_identities(9, seed=5, today=T0.date())
        ]
    runner = CliRunner()
    invited = []
    for i in range(3):
        run = runner.invoke(main, ["invite", "--db", str(path), "--slice", f"{i}/3"])
        assert run.exit_code == 0, run.output
        invited.append(int(run.output.split("invited ")[1].split(" ")[0]))
    assert invited == [sum(slice_of(pid, 3) == i for pid in ids) for i in range(3)]
    with monespace.open(f"sqlite:///{path}") as space:
        assert space.accounts.count_by_state() == {"invited": len(ids)}
    bad = runner.invoke(main, ["invite", "--db", str(path), "--slice", "1/x"])
    assert bad.exit_code == 2
    assert "--slice" in bad.output
