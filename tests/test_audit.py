"""The hash-chained audit trail: every edit, deletion or reordering is detected."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace import Actor
from monespace.audit import Checkpoint, Outcome, event_hash, verify
from monespace.cli import main
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.testing import make_event

from .helpers import add_note, identity, open_patient


def build_chain(length: int):
    events, last = [], None
    for n in range(length):
        last = make_event(last, patient_id=f"p{n % 3}")
        events.append(last)
    return events


def test_an_untouched_chain_verifies():
    events = build_chain(50)
    report = verify(events)
    assert report.ok
    assert report.checked == 50
    assert report.head == Checkpoint(50, events[-1].hash, events[-1].at)
    assert verify([]).ok


# Every way of altering one stored event. Each takes the list and an index, returns a new list.
def _edit_field(events, i, data):
    event = events[i]
    field = data.draw(
        st.sampled_from(["at", "actor_id", "action", "outcome", "patient_id", "target_id", "rule"])
    )
    replacement = {
        "at": event.at + timedelta(milliseconds=1),
        "actor_id": event.actor_id + "x",
        "action": "content.write",
        "outcome": Outcome.DENIED,
        "patient_id": "someone-else",
        "target_id": "other",
        "rule": "forged",
    }[field]
    return [*events[:i], attrs.evolve(event, **{field: replacement}), *events[i + 1 :]]


def _delete(events, i, data):
    return events[:i] + events[i + 1 :]


def _swap(events, i, data):
    j = (i + 1) % len(events)
    swapped = list(events)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


def _swap_keeping_seq(events, i, data):
    """Swap two events' contents but keep the seq numbers in order (a subtler reordering)."""
    j = (i + 1) % len(events)
    swapped = list(events)
    swapped[i] = attrs.evolve(events[j], seq=events[i].seq)
    swapped[j] = attrs.evolve(events[i], seq=events[j].seq)
    return swapped


def _insert_forged(events, i, data):
    forged = attrs.evolve(events[i], target_id="forged")
    return [*events[: i + 1], forged, *events[i + 1 :]]


def _recompute_one(events, i, data):
    """Edit an event and recompute its own hash: the next link breaks (unless it is last)."""
    edited = attrs.evolve(events[i], actor_id="attacker")
    edited = attrs.evolve(edited, hash=event_hash(edited.prev_hash, edited.seq, edited))
    return [*events[:i], edited, *events[i + 1 :]]


MUTATIONS = [_edit_field, _delete, _swap, _swap_keeping_seq, _insert_forged]


@given(st.integers(2, 40), st.data())
def test_every_mutation_is_detected(length, data):
    events = build_chain(length)
    i = data.draw(st.integers(0, length - 2))  # the tail is covered by checkpoints below
    mutation = data.draw(st.sampled_from(MUTATIONS))
    report = verify(mutation(events, i, data))
    assert not report.ok
    assert report.first_bad_seq is not None
    assert report.first_bad_seq <= i + 2


def test_recomputing_a_hash_moves_the_break_to_the_next_event():
    events = build_chain(10)
    report = verify(_recompute_one(events, 4, None))
    assert (report.ok, report.first_bad_seq) == (False, 6)


def test_tail_truncation_and_rollback_are_detected_only_against_a_checkpoint():
    events = build_chain(20)
    checkpoint = verify(events).head
    truncated = events[:15]
    assert verify(truncated).ok  # a shorter chain is still a chain: the documented limit
    report = verify(truncated, checkpoint)
    assert not report.ok
    assert "rolled back" in report.reason
    assert verify(events, checkpoint).ok
    # A different history of the same length does not match the checkpoint either.
    other = [*build_chain(19), make_event(build_chain(19)[-1], patient_id="x")]
    assert not verify(other, checkpoint).ok


# --- through a real SQLite file and the CLI -----------------------------------------------


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "audit.db"
    keys = StaticKeyProvider(MasterKey.generate())
    with monespace.open(f"sqlite:///{path}", key_provider=keys) as space:
        for n in range(1, 6):
            patient = open_patient(space, identity(n))
            add_note(space, Actor.patient(patient.id), patient.id, b"x")
    return path


def _tamper(path, *statements):
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("DROP TRIGGER audit_events_no_delete")
        for statement in statements:
            conn.execute(statement)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_verify_passes_on_an_intact_trail(db):
    result = run("audit", "verify", "--db", db)
    assert result.exit_code == 0, result.output
    assert "intact: 15 events" in result.output  # register, open, write: x 5


def test_the_database_refuses_edits_of_the_trail(db):
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE audit_events SET actor_id = 'x' WHERE seq = 3")
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM audit_events WHERE seq = 3")


@pytest.mark.parametrize(
    ("statements", "bad"),
    [
        (["UPDATE audit_events SET actor_id = 'x' WHERE seq = 3"], 3),
        (["UPDATE audit_events SET at = replace(at, '.', ',') WHERE seq = 7"], 7),
        (["DELETE FROM audit_events WHERE seq = 4"], 4),
        (
            [
                "UPDATE audit_events SET seq = -2 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = 6",
                "UPDATE audit_events SET seq = 6 WHERE seq = -2",
            ],
            2,
        ),
        (["UPDATE audit_events SET hash = zeroblob(32) WHERE seq = 9"], 9),
    ],
    ids=["edit", "edit-timestamp", "delete", "reorder", "hash"],
)
def test_cli_verify_names_the_first_bad_event(db, statements, bad):
    _tamper(db, *statements)
    result = run("audit", "verify", "--db", db)
    assert result.exit_code == 1
    assert f"BROKEN at event {bad}" in result.output


def test_cli_checkpoint_detects_removal_of_the_newest_events(db, tmp_path):
    checkpoint = run("audit", "checkpoint", "--db", db)
    assert checkpoint.exit_code == 0
    head = tmp_path / "head.json"
    head.write_text(checkpoint.output)
    assert json.loads(checkpoint.output)["seq"] == 15
    _tamper(db, "DELETE FROM audit_events WHERE seq >= 14")
    assert run("audit", "verify", "--db", db).exit_code == 0
    result = run("audit", "verify", "--db", db, "--checkpoint", head)
    assert result.exit_code == 1
    assert "BROKEN at event 14" in result.output


def test_cli_rejects_a_malformed_checkpoint(db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = run("audit", "verify", "--db", db, "--checkpoint", bad)
    assert result.exit_code == 1
    assert "malformed" in result.output


def test_the_raw_trail_of_a_space_is_for_the_operator(tmp_path):
    """Holders read their history through access.history, which hides what is hidden from
    them; the raw events are the operator's."""
    with monespace.open("memory://", key_provider=StaticKeyProvider(MasterKey.generate())) as space:
        alice = open_patient(space, identity(1))
        bob = open_patient(space, identity(2))
        events = space.audit.for_patient(Actor.system("t"), alice.id)
        assert events
        assert {e.patient_id for e in events} == {alice.id}
        for target in (alice.id, bob.id):
            with pytest.raises(monespace.errors.AccessDeniedError):
                space.audit.for_patient(Actor.patient(alice.id), target)
        assert space.access.history(Actor.patient(alice.id), alice.id)
