"""The keyed audit chain: every edit, deletion or reordering is detected.

The attacks by someone with write access to the database are catalogued in
tests/test_audit_tampering.py; this file checks the chain's functions and the CLI.
"""

from __future__ import annotations

import hashlib
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
from monespace.audit import (
    Outcome,
    ShardHead,
    checkpoint_problem,
    head_leaf,
    keyed_hash,
    merkle_root,
    seal,
    sign_checkpoint,
    verify,
)
from monespace.cli import main
from monespace.crypto import AuditKey, MasterKey, StaticKeyProvider
from monespace.testing import TEST_AUDIT_KEY, make_event

from .helpers import add_note, identity, open_patient


def build_chain(length: int):
    events, last = [], None
    for n in range(length):
        last = make_event(last, patient_id=f"p{n % 3}")
        events.append(last)
    return events


KEYS = {TEST_AUDIT_KEY.id: TEST_AUDIT_KEY}.get


def check(events, head=None, **options):
    """Verify *events* as stored beside the head seal of *head* (default: their last)."""
    head = head if head is not None else (events[-1] if events else None)
    head_seal = None if head is None else seal(TEST_AUDIT_KEY, head)
    return verify(events, KEYS, head_seal=head_seal, **options)


def test_an_untouched_chain_verifies():
    events = build_chain(50)
    report = check(events)
    assert report.ok
    assert report.checked == 50
    assert report.head == ShardHead("0", 50, events[-1].hash, 50)
    assert report.unkeyed == 0
    assert check([]).ok


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
    """Edit an event and recompute its own hash with the key: the next link breaks."""
    edited = attrs.evolve(events[i], actor_id="attacker")
    rehashed = keyed_hash(TEST_AUDIT_KEY, "0", edited.prev_hash, edited.seq, edited)
    edited = attrs.evolve(edited, hash=rehashed)
    return [*events[:i], edited, *events[i + 1 :]]


MUTATIONS = [_edit_field, _delete, _swap, _swap_keeping_seq, _insert_forged]


@given(st.integers(2, 40), st.data())
def test_every_mutation_is_detected(length, data):
    events = build_chain(length)
    i = data.draw(st.integers(0, length - 2))  # the tail is covered by the head seal below
    mutation = data.draw(st.sampled_from(MUTATIONS))
    report = check(mutation(events, i, data), head=events[-1])
    assert not report.ok
    assert report.first_bad_seq is not None
    assert report.first_bad_seq <= i + 2


def test_recomputing_a_hash_with_the_key_moves_the_break_to_the_next_event():
    events = build_chain(10)
    report = check(_recompute_one(events, 4, None))
    assert (report.ok, report.first_bad_seq) == (False, 6)


def test_tail_truncation_is_detected_against_the_head_seal():
    events = build_chain(20)
    report = check(events[:15], head=events[-1])
    assert (report.ok, report.first_bad_seq) == (False, 16)
    assert "removed from the end" in report.reason
    # A different history of the same length does not match the seal either.
    other = [*build_chain(19), make_event(build_chain(19)[-1], patient_id="x")]
    assert not check(other, head=events[-1]).ok


# --- through a real SQLite file and the CLI -----------------------------------------------


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "audit.db"
    with monespace.open(f"sqlite:///{path}", key_provider=StaticKeyProvider(KEY)) as space:
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


@pytest.fixture(autouse=True)
def _master_key(tmp_path, monkeypatch):
    """The CLI reads the key from the environment: the same key as the fixture's space."""
    monkeypatch.setenv("MONESPACE_MASTER_KEY", KEY.to_base64())


KEY = MasterKey.generate()


def test_cli_verify_passes_on_an_intact_trail(db):
    result = run("audit", "verify", "--db", db)
    assert result.exit_code == 0, result.output
    assert "intact: 15 events" in result.output  # register, open, write: x 5
    assert "anchored to signed checkpoint 1 (database" in result.output


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


def test_cli_exported_checkpoints_detect_a_rollback_that_deleted_the_stored_ones(db, tmp_path):
    exported = tmp_path / "checkpoints.json"
    result = run("audit", "checkpoint", "--db", db, "--export", exported)
    assert result.exit_code == 0, result.output
    assert json.loads(exported.read_text())["checkpoints"][-1]["heads"][0]["seq"] == 15
    # Roll back to event 13: the events, the seal and every stored checkpoint.
    _tamper(
        db,
        "DELETE FROM audit_events WHERE seq >= 14",
        "UPDATE audit_shards SET head_seq = NULL, head_hash = NULL, key_id = NULL, head_mac = NULL",
        "DROP TRIGGER audit_checkpoints_no_delete",
        "DELETE FROM audit_checkpoints",
    )
    result = run("audit", "verify", "--db", db)
    assert result.exit_code == 1  # the last keyed event has no seal any more
    result = run("audit", "verify", "--db", db, "--checkpoints", exported)
    assert result.exit_code == 1
    assert "BROKEN at event" in result.output


def test_cli_checkpoint_prints_a_signed_checkpoint(db):
    result = run("audit", "checkpoint", "--db", db)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["checkpoints"][0]["heads"][0]["seq"] == 15
    assert list(document["public_keys"]) == [document["checkpoints"][0]["key_id"]]


def test_cli_rejects_a_malformed_checkpoint_file(db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = run("audit", "verify", "--db", db, "--checkpoints", bad)
    assert result.exit_code == 1
    assert "not an exported checkpoint document" in result.output


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


# --- Merkle root and audit keys ---------------------------------------------------------


def _shard_heads(count):
    return [ShardHead(str(n), n + 1, bytes([n]) * 32, n + 1) for n in range(count)]


def test_the_root_of_one_shard_is_its_leaf_hash():
    (head,) = _shard_heads(1)
    assert merkle_root([head]) == hashlib.sha256(b"\x00" + head_leaf(head)).digest()


def test_the_root_of_three_shards_follows_rfc_6962():
    """MTH(d0, d1, d2) = H(0x01 || H(0x01 || l0 || l1) || l2), leaves in shard order."""
    heads = _shard_heads(3)
    leaves = [hashlib.sha256(b"\x00" + head_leaf(h)).digest() for h in heads]
    left = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    assert merkle_root(heads) == hashlib.sha256(b"\x01" + left + leaves[2]).digest()
    assert merkle_root(list(reversed(heads))) == merkle_root(heads)


@given(st.integers(1, 20), st.data())
def test_any_change_to_any_shard_head_changes_the_root(count, data):
    heads = _shard_heads(count)
    i = data.draw(st.integers(0, count - 1))
    field = data.draw(st.sampled_from(["seq", "hash", "count"]))
    value = {"seq": heads[i].seq + 1, "hash": b"\xff" * 32, "count": heads[i].count + 1}[field]
    changed = [*heads[:i], attrs.evolve(heads[i], **{field: value}), *heads[i + 1 :]]
    assert merkle_root(changed) != merkle_root(heads)
    assert merkle_root(heads[:-1]) != merkle_root(heads)


def test_a_signed_checkpoint_verifies_with_its_key_only():
    checkpoint = sign_checkpoint(TEST_AUDIT_KEY, 1, build_chain(1)[0].at, _shard_heads(2))
    public = {TEST_AUDIT_KEY.id: TEST_AUDIT_KEY.public_key()}.get
    assert checkpoint_problem(checkpoint, public) is None
    other = AuditKey.derive(MasterKey.generate())
    assert "does not hold" in checkpoint_problem(checkpoint, {}.get)
    impostor = {TEST_AUDIT_KEY.id: other.public_key()}.get
    assert "invalid signature" in checkpoint_problem(checkpoint, impostor)
    renumbered = attrs.evolve(checkpoint, number=2)
    assert "invalid signature" in checkpoint_problem(renumbered, public)


def test_audit_keys_are_derived_per_master_key_and_never_shown():
    master = MasterKey.generate()
    key = AuditKey.derive(master)
    again = AuditKey.derive(master)
    assert key.id == master.id
    assert key.mac(b"x") == again.mac(b"x") != AuditKey.derive(MasterKey.generate()).mac(b"x")
    assert key.public_key() == again.public_key()
    assert repr(key) == f"AuditKey(id={master.id!r})"
    assert master.material.hex() not in repr(key)
    provider = StaticKeyProvider(master)
    assert provider.audit_key().id == master.id
    assert provider.audit_key("k-unknown") is None
