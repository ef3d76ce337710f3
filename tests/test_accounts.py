"""The accounts service end to end: lifecycle, provisional codes, brute force (T5),
invitations, proofs of opposition, representatives, deaths, closure and purge (T12).

Storage-dependent tests run on the memory and the SQLite backend. The stateful test drives
the service with random sequences against a reference model written from
docs/domain-rules.md §1, independently of monespace.accounts._lifecycle.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import monespace
from monespace import Actor, ActorKind
from monespace._unit import Core
from monespace.accounts import (
    AccountState,
    Channel,
    Contact,
    PatientIdentity,
    PostalAddress,
    RepresentationKind,
    code_entropy_bits,
    generate_code,
)
from monespace.accounts._codes import ALPHABET, CODE_LENGTH
from monespace.accounts._mapping import account_from_row, code_from_row
from monespace.accounts._proofs import verify_opposition_proof
from monespace.audit import Outcome
from monespace.clock import ManualClock
from monespace.crypto import NOTIFICATION_KEY, MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    ActivationError,
    DataShreddedError,
    InvalidNIRError,
    InvalidTransitionError,
    MonespaceError,
    ValidationError,
)
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import Document
from monespace.testing import storage_of
from monespace.transport import MemoryTransport

from .helpers import MARKER, add_note

OPERATOR = Actor.system("test")
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
#: Midnight, Paris time, after the 42nd day from T0: the end of the opposition window and of
#: a code's validity, so that the day printed in the letter is whole.
OPENS = datetime(2026, 2, 12, 23, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
CODE_RE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
#: The one message of every denial, whichever rule decided (the rule is kept for the trail).
DENIED = str(AccessDeniedError("deny_by_default"))


# --- builders ------------------------------------------------------------------------------


def person(
    n: int = 1,
    *,
    email: bool | str = True,
    address: bool = True,
    born: date = date(1985, 3, 14),
    birth_name: str = "DUPONT",
    serial: str | None = None,
) -> PatientIdentity:
    """A synthetic person; *n* (1-999) varies the NIR, e-mail, address and card serial."""
    sex = "F" if n % 2 else "M"
    nir = NIR.build(sex, born.year % 100, born.month, "75", "056", n)
    traits = INSTraits(
        birth_name=birth_name,
        first_given_name="CAMILLE",
        birth_date=born,
        sex=sex,
        birth_place_code="75056",
    )
    mail = email if isinstance(email, str) else (f"person{n}@example.org" if email else None)
    postal = (
        PostalAddress(lines=(f"{n} RUE DES LILAS",), postal_code="75011", city="PARIS")
        if address
        else None
    )
    return PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email=mail, postal_address=postal),
        vitale_serial=serial or f"VIT{n:09d}",
    )


def proof(identity: PatientIdentity, **changes: object) -> dict[str, object]:
    """What a person types at activation: NIR, card serial, birth date (and a code)."""
    traits = identity.ins.traits
    assert traits is not None
    fields: dict[str, object] = {
        "nir": identity.ins.matricule.value,
        "vitale_serial": identity.vitale_serial,
        "birth_date": traits.birth_date,
    }
    fields.update(changes)
    return fields


def a_wrong_code(right: str) -> str:
    while (code := generate_code()) == right:  # pragma: no cover - 1 in 5e17
        pass
    return code


def representative(of: str, by: str) -> Actor:
    return Actor(ActorKind.REPRESENTATIVE, by, on_behalf_of=of)


@attrs.define
class Env:
    """A space and what the tests reach around it."""

    space: monespace.Space
    clock: ManualClock
    mail: MemoryTransport
    post: MemoryTransport
    path: Path | None

    @property
    def accounts(self) -> monespace.AccountService:
        return self.space.accounts

    def register(self, identity: PatientIdentity) -> str:
        return self.accounts.register_patient(OPERATOR, identity).id

    def delivered(self) -> list:
        """Deliver the outbox; return what was just delivered, e-mails and letters."""
        mails, letters = len(self.mail.sent), len(self.post.sent)
        self.space.dispatch(limit=10_000)
        return [*self.mail.sent[mails:], *self.post.sent[letters:]]

    def codes_sent(self) -> list[str]:
        return [c for envelope in self.delivered() for c in CODE_RE.findall(envelope.body)]

    def state(self, patient_id: str) -> AccountState:
        with storage_of(self.space).read() as tx:
            account = tx.accounts.get(patient_id)
        assert account is not None
        return account_from_row(account).state

    def code_record(self, patient_id: str):
        with storage_of(self.space).read() as tx:
            record = tx.codes.get(patient_id)
        return None if record is None else code_from_row(record)

    def failures(self, patient_id: str) -> int:
        with storage_of(self.space).read() as tx:
            record = tx.proofs.get(patient_id)
        assert record is not None
        return record.failures

    def files(self) -> dict[str, bytes]:
        assert self.path is not None
        return {
            p.name: p.read_bytes()
            for p in self.path.parent.iterdir()
            if p.name.startswith(self.path.name)
        }


def open_env(url: str, keys: StaticKeyProvider, clock: ManualClock) -> monespace.Space:
    mail, post = MemoryTransport(), MemoryTransport()
    space = monespace.open(
        url,
        key_provider=keys,
        clock=clock,
        transports={"email": mail, "letter": post},
        load_entrypoints=False,
    )
    path = None if url.startswith("memory") else Path(url.removeprefix("sqlite:///"))
    return Env(space, clock, mail, post, path)


@pytest.fixture
def env(url, keys, monespace_clock) -> Iterator[Env]:
    opened = open_env(url, keys, monespace_clock)
    yield opened
    opened.space.close()


@pytest.fixture
def sqlite_env(tmp_path, keys, monespace_clock) -> Iterator[Env]:
    opened = open_env(f"sqlite:///{tmp_path}/space.db", keys, monespace_clock)
    yield opened
    opened.space.close()


# --- 3. provisional codes ------------------------------------------------------------------


def test_codes_have_at_least_50_bits_from_an_unambiguous_alphabet():
    assert code_entropy_bits() >= 50
    assert code_entropy_bits() == pytest.approx(CODE_LENGTH * 4.906890595608519)
    assert len(set(ALPHABET)) == len(ALPHABET) == 30
    assert not set(ALPHABET) & set("01ILOU")  # no 0/O, 1/I/L, U/V confusion
    assert set(ALPHABET) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    codes = [generate_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
        assert set(code.replace("-", "")) <= set(ALPHABET)
    # Every symbol is used (a coarse check that the generator spans the alphabet).
    assert set("".join(codes).replace("-", "")) == set(ALPHABET)


def test_a_code_works_once(env):
    identity = person()
    pid = env.register(identity)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    proof_of = proof(identity, code=code)
    env.accounts.oppose(**proof_of)  # the code is used to object...
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof_of)  # ...and cannot be used again, to activate
    assert env.state(pid) is AccountState.OPPOSED
    assert env.code_record(pid).used_at == T0


def test_typing_is_forgiving_case_spaces_and_dashes(env):
    identity = person()
    code = env.accounts.issue_code(OPERATOR, env.register(identity), send=False)
    typed = " " + code.replace("-", " ").lower() + " "
    assert env.accounts.activate(**proof(identity, code=typed)).state is AccountState.ACTIVE


def test_a_code_expires_at_the_end_of_the_42nd_day_after_it_was_issued(env):
    early, late = person(1), person(2)
    pids = [env.register(early), env.register(late)]
    codes = [env.accounts.issue_code(OPERATOR, pid, send=False) for pid in pids]
    env.clock.set(OPENS - TICK)
    assert env.accounts.activate(**proof(early, code=codes[0])).state is AccountState.ACTIVE
    env.clock.set(OPENS)
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(late, code=codes[1]))
    assert env.code_record(pids[1]).expires_at == OPENS


def test_a_new_code_invalidates_the_previous_one(env):
    identity = person()
    pid = env.register(identity)
    old = env.accounts.issue_code(OPERATOR, pid, send=False)
    new = env.accounts.issue_code(OPERATOR, pid)  # sent by e-mail this time
    assert env.codes_sent() == [new]
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(identity, code=old))
    assert env.accounts.activate(**proof(identity, code=new)).state is AccountState.ACTIVE


def test_a_code_issued_for_one_person_does_not_work_for_another(env):
    alice, bob = person(1), person(2)
    alice_id, bob_id = env.register(alice), env.register(bob)
    alice_code = env.accounts.issue_code(OPERATOR, alice_id, send=False)
    bob_code = env.accounts.issue_code(OPERATOR, bob_id, send=False)
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(bob, code=alice_code))
    # Alice's details with Bob's code fail too; each person's own code still works.
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(alice, code=bob_code))
    assert env.failures(bob_id) == env.failures(alice_id) == 1
    assert env.accounts.activate(**proof(alice, code=alice_code)).state is AccountState.ACTIVE
    assert env.accounts.activate(**proof(bob, code=bob_code)).state is AccountState.ACTIVE


def test_codes_are_never_stored_in_clear(sqlite_env):
    env = sqlite_env
    identities = [person(n, email=n % 2 == 0) for n in range(1, 7)]  # e-mails and letters
    pids = [env.register(i) for i in identities]
    for pid in pids:
        env.accounts.invite(OPERATOR, pid)
    # The codes exist only inside the sealed outbox rows: open them as the dispatcher would.
    keyring = env.space._core.keyring
    with storage_of(env.space).read() as tx:
        rows = tx.outbox.due(env.clock.now(), limit=100)
        bodies = [
            json.loads(keyring.open(tx, NOTIFICATION_KEY, "notification", r.id, r.sealed))
            for r in rows
        ]
        stored = [tx.codes.get(pid) for pid in pids]
    codes = [c for b in bodies for c in CODE_RE.findall(b["body"])]
    assert len(codes) == len(pids) == len(rows)
    files = env.files()
    assert {"space.db", "space.db-wal"} <= set(files)
    forms = [f for c in codes for f in (c, c.replace("-", ""), c.lower(), c.replace("-", " "))]
    for name, data in files.items():
        for form in forms:
            assert form.encode() not in data, f"a provisional code is in clear in {name}"
            assert form.encode("utf-16-le") not in data
    for row in rows:
        assert row.sealed is not None
        assert all(form.encode() not in row.sealed for form in forms)
    # What is stored is a keyed hash, bound to the person; not a plain hash of the code.
    for record in stored:
        assert len(record.code_hash) == 32
    events = env.space.audit.events(OPERATOR)
    assert not any(code in repr(e) for e in events for code in codes)


# --- 4. brute force (T5) ---------------------------------------------------------------------


def test_five_wrong_codes_revoke_the_code_and_the_right_one_then_fails(env, capsys):
    identity = person()
    pid = env.register(identity)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    policy = env.accounts.attempts
    allowed = 0
    for attempt in range(1, policy.per_code + 1):
        assert env.code_record(pid).revoked_at is None
        allowed += 1
        with pytest.raises(ActivationError):
            env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
        assert env.code_record(pid).attempts == attempt
    record = env.code_record(pid)
    assert record.revoked_at == T0
    assert allowed == policy.per_code == 5
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(identity, code=code))
    assert env.state(pid) is AccountState.REGISTERED
    # A revoked code stays revoked: further tries do not move its counter.
    assert env.code_record(pid).attempts == 5
    bound = policy.success_probability_bound()
    assert bound == policy.per_code / len(ALPHABET) ** CODE_LENGTH
    assert bound <= 4.5e-12
    with capsys.disabled():
        print(
            f"\n[T5] wrong codes before revocation K = {allowed}; per person "
            f"{policy.free_failures} free failures, then delays from "
            f"{policy.first_delay.total_seconds():.0f} s doubling to "
            f"{policy.max_delay.total_seconds() / 60:.0f} min for the sources that failed; "
            f"P(success) per code <= {policy.per_code}/30^{CODE_LENGTH} = {bound:.2e} "
            f"(target 4.5e-12); entropy {code_entropy_bits():.1f} bits"
        )


def test_an_attacker_from_ten_sources_does_not_lock_the_holder_out(env):
    """Ten wrong logins with the holder's NIR from ten addresses: the holder, from their
    own address, still logs in at once (OWASP: no lockout an attacker can trigger)."""
    identity = person()
    pid = env.register(identity)
    env.accounts.create_space(OPERATOR, pid)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    env.accounts.activate(**proof(identity, code=code), source="192.0.2.1")
    for n in range(10):
        with pytest.raises(ActivationError):
            env.accounts.authenticate(
                **proof(identity, vitale_serial=f"GUESS{n:07d}"), source=f"203.0.113.{n}"
            )
    assert env.failures(pid) == 10
    holder = env.accounts.authenticate(**proof(identity), source="192.0.2.1")
    assert holder == Actor.patient(pid)
    # A source that failed waits, even with the right details...
    with pytest.raises(ActivationError):
        env.accounts.authenticate(**proof(identity), source="203.0.113.9")
    # ...and so does an unknown one, which cannot show it has not failed.
    with pytest.raises(ActivationError):
        env.accounts.authenticate(**proof(identity))


def test_wrong_codes_from_many_sources_still_revoke_the_code_after_k(env):
    """The brute-force bound holds whatever the sources: K wrong codes revoke a code; the
    holder's way through is a fresh code, sent to their own contact."""
    identity = person()
    pid = env.register(identity)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    policy = env.accounts.attempts
    for n in range(10):
        with pytest.raises(ActivationError):
            env.accounts.activate(
                **proof(identity, code=a_wrong_code(code)), source=f"203.0.113.{n}"
            )
    record = env.code_record(pid)
    assert record.attempts == policy.per_code == 5
    assert record.revoked_at == T0
    with pytest.raises(ActivationError):  # the revoked code, from a clean source
        env.accounts.activate(**proof(identity, code=code), source="192.0.2.1")
    env.accounts.request_code(**proof(identity), source="192.0.2.1")
    [fresh] = env.codes_sent()
    activated = env.accounts.activate(**proof(identity, code=fresh), source="192.0.2.1")
    assert activated.state is AccountState.ACTIVE
    assert env.failures(pid) == 0  # a verified code clears the failures


def test_a_failing_source_waits_growing_delays_up_to_the_cap(env):
    """After the free failures, each failure doubles the delay of the sources that failed
    (30 s, 1 min, 2 min, ... capped at 15 min); a correct proof passes once it has run."""
    identity = person()
    pid = env.register(identity)
    policy = env.accounts.attempts
    assert (policy.free_failures, policy.first_delay, policy.max_delay) == (
        5,
        timedelta(seconds=30),
        timedelta(minutes=15),
    )
    here = "198.51.100.7"
    delays = []
    for n in range(12):
        code = env.accounts.issue_code(OPERATOR, pid, send=False)  # keeps K out of the way
        with pytest.raises(ActivationError):
            env.accounts.activate(**proof(identity, code=a_wrong_code(code)), source=here)
        assert env.failures(pid) == n + 1
        delays.append(policy.delay(n + 1))
        if delays[-1]:
            # Refused unchecked until the delay has run: not even counted.
            env.clock.advance(seconds=delays[-1].total_seconds() - 1)
            with pytest.raises(ActivationError):
                env.accounts.activate(**proof(identity, code=code), source=here)
            assert env.failures(pid) == n + 1
            assert env.code_record(pid).attempts == 1
            env.clock.advance(seconds=1)
    assert [d.total_seconds() for d in delays] == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    assert env.accounts.activate(**proof(identity, code=code), source=here).state is (
        AccountState.ACTIVE
    )
    assert env.failures(pid) == 0


def test_failures_are_forgotten_a_window_after_the_last_one(env):
    identity = person()
    pid = env.register(identity)
    for _ in range(7):
        code = env.accounts.issue_code(OPERATOR, pid, send=False)
        with pytest.raises(ActivationError):
            env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
        env.clock.advance(minutes=15)
    assert env.failures(pid) == 7
    env.clock.advance(hours=24, minutes=-15, microseconds=-1)
    with pytest.raises(ActivationError):  # one more failure inside the window: 8
        env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
    assert env.failures(pid) == 8
    env.clock.advance(hours=24)
    with pytest.raises(ActivationError):  # a quiet day: counted afresh
        env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
    assert env.failures(pid) == 1


def test_a_code_request_does_not_clear_the_failures(env):
    """request_code proves only the NIR, card serial and birth date: it neither clears the
    failures nor escapes the delays of a source that failed."""
    identity = person()
    pid = env.register(identity)
    for wrong in (4, 1):
        code = env.accounts.issue_code(OPERATOR, pid, send=False)
        for _ in range(wrong):
            with pytest.raises(ActivationError):
                env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
    assert env.failures(pid) == 5
    with pytest.raises(ActivationError):
        env.accounts.request_code(**proof(identity))  # an unknown source waits
    assert env.codes_sent() == []
    env.accounts.request_code(**proof(identity), source="192.0.2.1")
    [fresh] = env.codes_sent()
    assert env.failures(pid) == 5
    with pytest.raises(ActivationError):
        env.accounts.activate(**proof(identity, code=fresh))  # still delayed
    env.clock.advance(minutes=1)
    assert env.accounts.activate(**proof(identity, code=fresh)).state is AccountState.ACTIVE


def test_every_refusal_gives_exactly_the_same_message(env):
    identity, other = person(1), person(2)
    pid, other_id = env.register(identity), env.register(other)
    stranger_nir = person(3).ins.matricule.value  # valid, never registered
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    other_code = env.accounts.issue_code(OPERATOR, other_id, send=False)
    traits = identity.ins.traits
    assert traits is not None
    cases = {
        "unknown NIR": proof(identity, code=code, nir=stranger_nir),
        "wrong code": proof(identity, code=a_wrong_code(code)),
        "empty code": proof(identity, code=""),
        "another person's code": proof(identity, code=other_code),
        "wrong card serial": proof(identity, code=code, vitale_serial="VIT999999999"),
        "wrong birth date": proof(identity, code=code, birth_date=traits.birth_date + DAY),
    }
    messages = {}
    for name, given in cases.items():
        with pytest.raises(ActivationError) as info:
            env.accounts.activate(**given)
        assert type(info.value) is ActivationError
        messages[name] = (str(info.value), info.value.args)
    # A representative who does not represent the person, with every detail right.
    with pytest.raises(ActivationError) as info:
        env.accounts.activate(
            **proof(other, code=other_code), representative=representative(other_id, pid)
        )
    messages["not their representative"] = (str(info.value), info.value.args)
    # Delayed: push the person past the free failures, then give everything right from a
    # source that failed.
    while env.failures(pid) < env.accounts.attempts.free_failures:
        with pytest.raises(ActivationError):
            env.accounts.activate(**proof(identity, code=a_wrong_code(code)))
    fresh = env.accounts.issue_code(OPERATOR, pid, send=False)
    with pytest.raises(ActivationError) as info:
        env.accounts.activate(**proof(identity, code=fresh))
    messages["delayed"] = (str(info.value), info.value.args)
    # The same for a code request and an opposition.
    with pytest.raises(ActivationError) as info:
        env.accounts.request_code(**proof(identity, nir=stranger_nir))
    messages["code request, unknown NIR"] = (str(info.value), info.value.args)
    with pytest.raises(ActivationError) as info:
        env.accounts.oppose(**proof(identity, code=fresh))
    messages["opposition, delayed"] = (str(info.value), info.value.args)
    assert set(messages.values()) == {(ActivationError.MESSAGE, (ActivationError.MESSAGE,))}
    assert len(messages) == 10
    # The trail records the failures without naming whose proof failed.
    failures = [e for e in env.space.audit.events(OPERATOR) if e.outcome is Outcome.FAILURE]
    assert len(failures) >= len(messages)
    assert {e.patient_id for e in failures} == {None}
    assert {e.actor_id for e in failures} == {"activation-portal"}


@pytest.mark.parametrize(
    "malformed",
    [
        "2 85 03 75 056 001 00",  # a wrong check key
        "hello",  # not digits, and too short
        "1234",  # too short
        "2850375056001001",  # too long
        "28503X5056001",  # a letter where a digit goes
    ],
)
def test_a_malformed_nir_is_said_as_such_without_echoing_it(env, malformed):
    """Whether a string is a well-formed NIR is a property of the string alone: saying so
    tells a guesser nothing, so activation says it instead of the uniform refusal, and
    counts nothing against anyone."""
    identity = person(1)
    pid = env.register(identity)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    before = env.failures(pid)
    operations = [
        lambda given: env.accounts.activate(**given),
        lambda given: env.accounts.oppose(**given),
        lambda given: env.accounts.authenticate(
            nir=given["nir"], vitale_serial=given["vitale_serial"], birth_date=given["birth_date"]
        ),
    ]
    for operation in operations:
        with pytest.raises(InvalidNIRError) as info:
            operation(proof(identity, code=code, nir=malformed))
        message = str(info.value)
        assert message.startswith("the NIR is malformed")
        assert "carte Vitale" in message  # what to do next
        assert malformed not in message
        assert malformed.replace(" ", "") not in message
        assert not isinstance(info.value, ActivationError)
    assert env.failures(pid) == before
    # The code still works: the malformed attempts neither used nor revoked it.
    assert env.accounts.activate(**proof(identity, code=code)).state is AccountState.ACTIVE


def test_a_well_formed_nir_that_matches_nobody_keeps_the_uniform_answer(env):
    identity = person(1)
    pid = env.register(identity)
    code = env.accounts.issue_code(OPERATOR, pid, send=False)
    stranger = person(3).ins.matricule.value  # well-formed, never registered
    with pytest.raises(ActivationError) as info:
        env.accounts.activate(**proof(identity, code=code, nir=stranger))
    assert type(info.value) is ActivationError
    assert str(info.value) == ActivationError.MESSAGE


def test_wrong_codes_submitted_in_parallel_are_counted_atomically(tmp_path, keys, monespace_clock):
    """50 threads from 50 addresses over 5 connections to one SQLite file: the per-code
    counter evaluates exactly K wrong codes before revoking it (no lost update, no extra
    evaluation)."""
    url = f"sqlite:///{tmp_path}/race.db"
    spaces = [open_env(url, keys, monespace_clock) for _ in range(5)]
    try:
        identity = person()
        pid = spaces[0].register(identity)
        code = spaces[0].accounts.issue_code(OPERATOR, pid, send=False)
        barrier = threading.Barrier(50)

        def attack(i: int) -> str:
            guess = a_wrong_code(code)
            barrier.wait()
            try:
                # Fifty addresses: none is delayed, so every guess reaches the counters.
                spaces[i % 5].accounts.activate(
                    **proof(identity, code=guess), source=f"203.0.113.{i}"
                )
            except ActivationError as exc:
                return str(exc)
            return "accepted"  # pragma: no cover - would be a failure of the test

        with ThreadPoolExecutor(max_workers=50) as pool:
            outcomes = list(pool.map(attack, range(50)))
        assert outcomes == [ActivationError.MESSAGE] * 50
        record = spaces[0].code_record(pid)
        per_code = spaces[0].accounts.attempts.per_code
        assert record.attempts == per_code  # exactly K evaluated, then revoked
        assert record.revoked_at is not None
        # Only the K guesses that could have succeeded count against the person: the
        # others met a revoked code, which fails whatever it is given.
        assert spaces[0].failures(pid) == per_code
        with pytest.raises(ActivationError):  # revoked, even from a clean source
            spaces[1].accounts.activate(**proof(identity, code=code), source="192.0.2.1")
        failed = [e for e in spaces[0].space.audit.events(OPERATOR) if e.outcome is Outcome.FAILURE]
        assert len(failed) == 51
        assert spaces[0].space.audit.verify().ok
    finally:
        for opened in spaces:
            opened.space.close()


# --- 5. invitations --------------------------------------------------------------------------


def test_an_invitation_goes_by_e_mail_when_an_address_is_known(env):
    pid = env.register(person(1))
    invitation = env.accounts.invite(OPERATOR, pid)
    assert invitation.channel is Channel.EMAIL
    assert not invitation.to_representative
    assert invitation.opposition_deadline == OPENS
    [message] = env.delivered()
    assert (message.channel, message.recipient, message.kind) == (
        "email",
        "person1@example.org",
        "invitation",
    )
    assert message.subject == "Votre service Mon espace santé"
    assert env.state(pid) is AccountState.INVITED


def test_an_invitation_goes_by_post_without_an_e_mail_address(env):
    pid = env.register(person(2, email=False))
    invitation = env.accounts.invite(OPERATOR, pid)
    assert invitation.channel is Channel.LETTER
    [letter] = env.delivered()
    assert letter.channel == "letter"
    assert letter.recipient == "2 RUE DES LILAS, 75011 PARIS"
    assert letter.body.startswith("2 RUE DES LILAS\n75011 PARIS\nFRANCE\n\nBonjour,")
    assert env.accounts.account(OPERATOR, pid).channel is Channel.LETTER


def test_a_minor_is_invited_through_their_legal_representative(env):
    parent = env.register(person(1, email="parent@example.org"))
    child = env.register(person(2, born=date(2015, 6, 1), email="child@example.org"))
    env.accounts.add_representative(OPERATOR, child, parent)
    invitation = env.accounts.invite(OPERATOR, child)
    assert invitation.to_representative
    [message] = env.delivered()
    assert message.recipient == "parent@example.org"
    assert "la personne que vous représentez" in message.body
    assert "Activer son espace" in message.body


def test_the_invitation_carries_what_r1111_28_requires_and_no_health_data(env):
    identity = person(7, birth_name=MARKER)
    pid = env.register(identity)
    env.clock.set(datetime(2026, 3, 20, 23, 30, tzinfo=UTC))  # 21 March in Paris
    env.accounts.invite(OPERATOR, pid)
    [message] = env.delivered()
    body = message.body
    # 1° what the space is and how it relates to the DMP; 2° how to object, with the
    # online route, the 3422 and the deadline; 3° how to close it.
    for needle in (
        "Mon espace santé",
        "Dossier Médical Partagé",
        "DMP",
        "Activer votre espace",
        "Code provisoire :",
        "Vous opposer à sa création",
        "3422",
        "jusqu'au 02/05/2026",  # 21 March + 42 days, Paris date
        "en ligne",
        "Le fermer",
        "archivées dix ans",
        "Ce message ne contient aucune donnée de santé.",
    ):
        assert needle in body, needle
    assert len(CODE_RE.findall(body)) == 1
    traits = identity.ins.traits
    assert traits is not None
    for secret in (
        MARKER,
        identity.ins.matricule.value,
        traits.birth_date.isoformat(),
        traits.birth_date.strftime("%d/%m/%Y"),
        "CAMILLE",
        identity.vitale_serial,
    ):
        assert secret not in body
        assert secret not in message.subject


def test_a_person_without_any_contact_is_not_invited(env):
    pid = env.register(person(1, email=False, address=False))
    with pytest.raises(ValidationError, match="no e-mail or postal address"):
        env.accounts.invite(OPERATOR, pid)
    assert env.state(pid) is AccountState.REGISTERED
    assert env.delivered() == []


def test_a_person_is_invited_once(env):
    pid = env.register(person(1))
    env.accounts.invite(OPERATOR, pid)
    with pytest.raises(InvalidTransitionError, match="cannot invite a space that is invited"):
        env.accounts.invite(OPERATOR, pid)
    with pytest.raises(AccessDeniedError):
        env.accounts.invite(Actor.patient(pid), pid)


def test_invite_registered_works_in_batches_and_skips_people_without_contact(env, monkeypatch):
    identities = [
        person(n, email=n % 3 != 0, address=n % 10 != 0) for n in range(1, 51)
    ]  # n % 30 == 0 and n % 10 == 0 with n % 3 == 0: no contact at all
    no_contact = sum(1 for n in range(1, 51) if n % 30 == 0 or (n % 10 == 0 and n % 3 == 0))
    pids = [p.id for p in env.accounts.register_patients(OPERATOR, identities, batch=9)]
    assert len(pids) == 50
    units = []
    real_unit = Core.unit

    def counting_unit(self):
        units.append(1)
        return real_unit(self)

    monkeypatch.setattr(Core, "unit", counting_unit)
    progress: list[int] = []
    counts = env.accounts.invite_registered(OPERATOR, batch=7, progress=progress.append)
    monkeypatch.undo()
    assert progress == [7, 7, 7, 7, 7, 7, 7, 1]
    # One write transaction per batch, and one for the space's first invitation, which
    # creates the codes' and the notices' keys.
    assert len(units) == 1 + 8
    assert counts == {
        "invited": 50 - no_contact,
        "by_email": sum(1 for n in range(1, 51) if n % 3 != 0),
        "by_letter": sum(1 for n in range(1, 51) if n % 3 == 0 and n % 10 != 0),
        "skipped": no_contact,
        "failed": 0,
    }
    assert len(env.delivered()) == 50 - no_contact
    states = env.accounts.count_by_state()
    assert states == {"invited": 50 - no_contact, "registered": no_contact}
    again = env.accounts.invite_registered(OPERATOR, batch=7)
    assert again == {
        "invited": 0,
        "by_email": 0,
        "by_letter": 0,
        "skipped": no_contact,
        "failed": 0,
    }


def test_invite_registered_stops_at_the_limit(env):
    for n in range(1, 21):
        env.register(person(n))
    counts = env.accounts.invite_registered(OPERATOR, batch=7, limit=10)
    assert counts["invited"] == 10
    assert env.accounts.count_by_state() == {"invited": 10, "registered": 10}


# --- 6. opposition and its proof --------------------------------------------------------------


def invited(env: Env, n: int = 1, **kwargs: object) -> tuple[PatientIdentity, str, str]:
    identity = person(n, **kwargs)
    pid = env.register(identity)
    env.accounts.invite(OPERATOR, pid)
    [code] = env.codes_sent()
    return identity, pid, code


def test_an_opposition_returns_a_proof_signed_with_the_space_key(env):
    identity, pid, code = invited(env)
    env.clock.advance(days=10)
    signed = env.accounts.oppose(**proof(identity, code=code))
    assert env.state(pid) is AccountState.OPPOSED
    fields = verify_opposition_proof(signed.document, env.accounts.signing_public_key())
    assert fields["ins"] == {"matricule": identity.ins.matricule.value, "oid": INS_NIR_TEST_OID}
    assert fields["by"] == "holder"
    assert fields["proof_id"] == signed.proof_id
    assert datetime.fromisoformat(fields["opposed_at"]) == T0 + 10 * DAY == signed.opposed_at
    assert code not in signed.document
    assert repr(signed) == f"OppositionProof(proof_id={signed.proof_id!r})"
    # Nothing is created by the deadline run after an opposition.
    env.clock.advance(days=40)
    assert env.space.tick() == {}
    assert env.state(pid) is AccountState.OPPOSED


def test_a_modified_proof_does_not_verify(env):
    identity, _, code = invited(env)
    signed = env.accounts.oppose(**proof(identity, code=code))
    key = env.accounts.signing_public_key()
    data = json.loads(signed.document)
    tampered = [
        {**data, "opposed_at": "2025-01-01T00:00:00+00:00"},
        {**data, "ins": {"matricule": person(2).ins.matricule.value, "oid": INS_NIR_TEST_OID}},
        {**data, "by": "representative"},
        {**data, "signature": data["signature"][:-4] + "AAA="},
        {**data, "type": "something-else"},
        {k: v for k, v in data.items() if k != "signature"},
    ]
    for fields in tampered:
        with pytest.raises(ValidationError):
            verify_opposition_proof(json.dumps(fields), key)
    for garbage in ("", "not json", "[]", "{}"):
        with pytest.raises(ValidationError):
            verify_opposition_proof(garbage, key)
    other = StaticKeyProvider(MasterKey.generate())
    with monespace.open("memory://", key_provider=other, load_entrypoints=False) as elsewhere:
        elsewhere_key = elsewhere.accounts.signing_public_key()
    with pytest.raises(ValidationError, match="does not match"):
        verify_opposition_proof(signed.document, elsewhere_key)
    assert verify_opposition_proof(signed.document, key)["type"] == data["type"]


def test_opposition_after_the_window_is_refused_with_a_clear_error(env):
    identity, pid, code = invited(env)
    env.clock.set(OPENS - timedelta(minutes=1))
    # The last printed day, 23:59 in Paris: still in time (shown on another person, invited
    # now; this one objects later).
    other, other_id, other_code = invited(env, 2)
    env.clock.set(OPENS)
    # The letter's code lives exactly as long as the window: it no longer proves anything.
    with pytest.raises(ActivationError):
        env.accounts.oppose(**proof(identity, code=code))
    fresh = env.accounts.issue_code(OPERATOR, pid, send=False)
    with pytest.raises(InvalidTransitionError) as info:
        env.accounts.oppose(**proof(identity, code=fresh))
    assert str(info.value) == (
        "cannot oppose a space that is invited: the opposition window closed; close it instead"
    )
    assert env.code_record(pid).used_at is None  # a refused step consumes nothing
    env.space.tick()
    with pytest.raises(InvalidTransitionError, match="created: close it instead"):
        env.accounts.oppose(**proof(identity, code=fresh))
    assert env.state(pid) is AccountState.CREATED
    assert env.state(other_id) is AccountState.INVITED  # invited a minute before the deadline
    env.accounts.oppose(**proof(other, code=other_code))
    assert env.state(other_id) is AccountState.OPPOSED


def test_opposition_on_day_41_at_23_59_is_in_time(env):
    identity, pid, code = invited(env)
    env.clock.set(T0 + timedelta(days=41, hours=23, minutes=59))
    env.accounts.oppose(**proof(identity, code=code))
    env.clock.set(T0 + 43 * DAY)
    assert env.space.tick() == {}
    assert env.state(pid) is AccountState.OPPOSED


def test_after_an_opposition_the_person_can_still_activate(env):
    identity, _pid, code = invited(env)
    env.accounts.oppose(**proof(identity, code=code))
    env.clock.advance(days=200)
    env.accounts.request_code(**proof(identity))
    [fresh] = env.codes_sent()
    account = env.accounts.activate(**proof(identity, code=fresh))
    assert account.state is AccountState.ACTIVE
    assert account.opposed_at == T0
    assert account.activated_at == T0 + 200 * DAY


def test_a_representative_objects_for_a_minor(env):
    parent = env.register(person(1))
    child = person(2, born=date(2016, 2, 29))
    child_id = env.register(child)
    env.accounts.add_representative(OPERATOR, child_id, parent)
    env.accounts.invite(OPERATOR, child_id)
    [code] = env.codes_sent()
    signed = env.accounts.oppose(
        **proof(child, code=code), representative=representative(child_id, parent)
    )
    fields = verify_opposition_proof(signed.document, env.accounts.signing_public_key())
    assert fields["by"] == "representative"
    assert fields["ins"]["matricule"] == child.ins.matricule.value


# --- 7. representatives ---------------------------------------------------------------------


def test_a_parent_activates_and_reads_a_childs_space_until_majority(env):
    # Born 14 July 2008: of age on 14 July 2026 at midnight in Paris, 22:00 UTC the day before.
    majority = datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    parent_identity = person(1, email="parent@example.org")
    child_identity = person(2, born=date(2008, 7, 14), email="child@example.org")
    stranger = env.register(person(3))
    parent = env.register(parent_identity)
    child = env.register(child_identity)
    link = env.accounts.add_representative(OPERATOR, child, parent)
    assert link.ends_at == majority
    assert link.kind is RepresentationKind.LEGAL_GUARDIAN
    env.accounts.create_space(OPERATOR, parent)
    env.accounts.invite(OPERATOR, child)
    [code] = env.codes_sent()
    as_parent = representative(child, parent)
    account = env.accounts.activate(**proof(child_identity, code=code), representative=as_parent)
    assert account.state is AccountState.ACTIVE
    # One login, both spaces.
    assert env.accounts.spaces_of(Actor.patient(parent)) == [parent, child]
    assert env.accounts.spaces_of(as_parent) == [parent, child]
    assert env.accounts.spaces_of(OPERATOR) == []
    ref = add_note(env.space, OPERATOR, child, b"carnet de vaccination")
    assert env.space.record.read_content(as_parent, ref.id) == b"carnet de vaccination"
    assert env.accounts.get_patient(as_parent, child).identity == child_identity
    # Acting for someone else, or reading as a stranger: the one denial message.
    with pytest.raises(AccessDeniedError) as wrong_link:
        env.accounts.get_patient(representative(stranger, parent), stranger)
    with pytest.raises(AccessDeniedError) as as_stranger:
        env.accounts.get_patient(Actor.patient(stranger), child)
    with pytest.raises(AccessDeniedError) as wrong_target:
        env.space.record.read_content(representative(stranger, parent), ref.id)
    assert str(wrong_link.value) == str(as_stranger.value) == str(wrong_target.value) == DENIED
    env.delivered()
    # The day before majority nothing changes; at midnight Paris time access ends.
    env.clock.set(majority - TICK)
    assert env.space.tick() == {}
    assert env.space.record.read_content(as_parent, ref.id) == b"carnet de vaccination"
    env.clock.set(majority)
    assert env.space.tick() == {"majority": 1}
    assert env.space.tick() == {}
    with pytest.raises(AccessDeniedError) as after:
        env.space.record.read_content(as_parent, ref.id)
    assert str(after.value) == DENIED
    assert env.accounts.spaces_of(Actor.patient(parent)) == [parent]
    [ended] = env.accounts.representatives_of(OPERATOR, child)
    assert (ended.ended_at, ended.end_reason) == (majority, "majority")
    # The young adult is told, at their own address. The parent activated the space, so no
    # code comes with the letter: an active space cannot be activated again.
    [letter] = env.delivered()
    assert (letter.recipient, letter.kind) == ("child@example.org", "majority")
    assert "Vous êtes majeur" in letter.body
    assert CODE_RE.findall(letter.body) == []
    assert env.space.record.read_content(Actor.patient(child), ref.id) == b"carnet de vaccination"


def test_a_young_adult_whose_space_opened_by_itself_activates_it_with_the_majority_code(env):
    majority = datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    parent = env.register(person(1, email="parent@example.org"))
    child_identity = person(2, born=date(2008, 7, 14), email="child@example.org")
    child = env.register(child_identity)
    env.accounts.add_representative(OPERATOR, child, parent)
    env.accounts.invite(OPERATOR, child)
    env.clock.set(OPENS)
    assert env.space.tick() == {"created": 1}
    env.delivered()
    env.clock.set(majority)
    assert env.space.tick() == {"majority": 1}
    [letter] = env.delivered()
    [code] = CODE_RE.findall(letter.body)
    assert env.accounts.activate(**proof(child_identity, code=code)).state is AccountState.ACTIVE


def test_a_protected_adults_representative_has_no_end(env):
    adult = env.register(person(1, born=date(1950, 1, 5)))
    guardian = env.register(person(2))
    with pytest.raises(ValidationError, match="this person is of age"):
        env.accounts.add_representative(OPERATOR, adult, guardian)
    with pytest.raises(ValidationError, match="own representative"):
        env.accounts.add_representative(OPERATOR, adult, adult, RepresentationKind.PROTECTED_ADULT)
    link = env.accounts.add_representative(
        OPERATOR, adult, guardian, RepresentationKind.PROTECTED_ADULT
    )
    assert link.ends_at is None
    env.accounts.create_space(OPERATOR, adult)
    env.clock.set(T0 + timedelta(days=365 * 60))
    assert env.space.tick() == {}
    as_guardian = representative(adult, guardian)
    assert env.accounts.spaces_of(as_guardian) == [guardian, adult]
    assert env.accounts.get_patient(as_guardian, adult).id == adult
    ended = env.accounts.end_representation(OPERATOR, adult, guardian)
    assert ended.end_reason == "removed"
    with pytest.raises(AccessDeniedError) as info:
        env.accounts.get_patient(as_guardian, adult)
    assert (str(info.value), info.value.rule) == (DENIED, "deny_by_default")


def test_a_representative_of_someone_else_cannot_use_that_persons_code(env):
    """Regression: a refused representative used to consume the code of the person (the
    real parent's activation then failed) without the failure being counted."""
    parent = env.register(person(1))
    intruder = env.register(person(3))
    child_identity = person(2, born=date(2015, 6, 1))
    child = env.register(child_identity)
    env.accounts.add_representative(OPERATOR, child, parent)
    code = env.accounts.issue_code(OPERATOR, child, send=False)
    with pytest.raises(ActivationError) as info:
        env.accounts.activate(
            **proof(child_identity, code=code), representative=representative(child, intruder)
        )
    assert str(info.value) == ActivationError.MESSAGE
    # A patient actor is no representative either, even the child's own id.
    with pytest.raises(ActivationError):
        env.accounts.activate(
            **proof(child_identity, code=code), representative=Actor.patient(parent)
        )
    record = env.code_record(child)
    assert record.used_at is None
    assert record.attempts == 2
    assert env.failures(child) == 2
    account = env.accounts.activate(
        **proof(child_identity, code=code), representative=representative(child, parent)
    )
    assert account.state is AccountState.ACTIVE


def test_a_deceased_persons_links_end(env):
    parent = env.register(person(1))
    child = env.register(person(2, born=date(2015, 6, 1)))
    sibling = env.register(person(4, born=date(2017, 6, 1)))
    for minor in (child, sibling):
        env.accounts.add_representative(OPERATOR, minor, parent)
        env.accounts.create_space(OPERATOR, minor)
    env.clock.advance(days=3)
    env.accounts.record_death(OPERATOR, child, date(2026, 1, 3))
    assert env.accounts.spaces_of(Actor.patient(parent)) == [parent, sibling]
    [link] = env.accounts.representatives_of(OPERATOR, child)
    assert (link.end_reason, link.ended_at) == ("death", T0 + 3 * DAY)
    env.accounts.record_death(OPERATOR, parent, date(2026, 1, 3))
    assert env.accounts.spaces_of(Actor.patient(parent)) == [parent]
    with pytest.raises(AccessDeniedError):
        env.accounts.get_patient(representative(sibling, parent), sibling)
    [link] = env.accounts.representatives_of(OPERATOR, sibling)
    assert link.end_reason == "death"


# --- 8. deaths ------------------------------------------------------------------------------


def reach(env: Env, state: AccountState, identity: PatientIdentity) -> str:
    """Take a new person to *state* through the service, at the clock's time."""
    pid = env.register(identity)
    a = env.accounts
    if state is AccountState.REGISTERED:
        return pid
    if state in (AccountState.INVITED, AccountState.OPPOSED):
        a.invite(OPERATOR, pid)
        if state is AccountState.OPPOSED:
            code = a.issue_code(OPERATOR, pid, send=False)
            a.oppose(**proof(identity, code=code))
        return pid
    a.create_space(OPERATOR, pid)
    if state is AccountState.CREATED:
        return pid
    code = a.issue_code(OPERATOR, pid, send=False)
    a.activate(**proof(identity, code=code))
    if state is AccountState.SUSPENDED:
        a.suspend(OPERATOR, pid)
    elif state is AccountState.CLOSED:
        a.close(Actor.patient(pid), pid)
    elif state is AccountState.PURGE_PENDING:
        a.close(Actor.patient(pid), pid, delete=True)
    elif state is AccountState.PURGED:
        a.close(Actor.patient(pid), pid, delete=True)
        env.space.tick()
    assert env.state(pid) is state
    return pid


@pytest.mark.parametrize("state", list(AccountState), ids=str)
def test_a_recorded_death_closes_and_archives_the_space_from_every_state(env, state):
    pid = reach(env, state, person(1))
    env.clock.advance(days=2)
    died = (T0 + DAY).date()
    if state is AccountState.PURGED:
        with pytest.raises(InvalidTransitionError):
            env.accounts.record_death(OPERATOR, pid, died)
        return
    with pytest.raises(AccessDeniedError):
        env.accounts.record_death(Actor.patient(pid), pid, died)
    account = env.accounts.record_death(OPERATOR, pid, died)
    assert account.died_on == died
    if state is AccountState.PURGE_PENDING:
        assert account.state is AccountState.PURGE_PENDING
        assert env.space.tick() == {"purged": 1}
        return
    assert account.state is AccountState.CLOSED
    closed_at = T0 if state is AccountState.CLOSED else T0 + 2 * DAY
    assert account.closed_at == closed_at
    assert account.archive_until == closed_at.replace(year=closed_at.year + 10)
    with pytest.raises(AccessDeniedError):
        env.accounts.get_patient(Actor.patient(pid), pid)  # archived: out of reach
    for actor in (OPERATOR, Actor.patient(pid)):
        with pytest.raises(InvalidTransitionError, match="its holder died"):
            env.accounts.reopen(actor, pid)
    env.clock.set(account.archive_until - TICK)
    assert env.space.tick() == {}
    env.clock.set(account.archive_until)
    assert env.space.tick() == {"purged": 1}
    assert env.state(pid) is AccountState.PURGED
    assert env.space.audit.verify().ok


# --- 9. closure, archive, purge (T12) ------------------------------------------------------


def open_with_marker(env: Env) -> tuple[str, Document, bytes]:
    """A person whose birth name, address and content carry the marker; space active."""
    identity = attrs.evolve(
        person(1, birth_name=MARKER),
        contact=Contact(
            email="canari@example.org",
            postal_address=PostalAddress(lines=(f"M {MARKER}",), postal_code="75011", city="PARIS"),
        ),
    )
    pid = env.register(identity)
    env.accounts.create_space(OPERATOR, pid)
    data = b"Compte rendu " + MARKER.encode()
    document = add_note(env.space, OPERATOR, pid, data)
    env.delivered()  # the "new document" e-mail
    return pid, document, data


def test_a_closed_space_is_archived_ten_years_then_purged(env):
    pid, ref, _data = open_with_marker(env)
    me = Actor.patient(pid)
    env.clock.set(datetime(2026, 2, 1, 10, tzinfo=UTC))
    closed = env.accounts.close(me, pid)
    assert closed.state is AccountState.CLOSED
    assert closed.archive_until == datetime(2036, 2, 1, 10, tzinfo=UTC)
    for read in (
        lambda: env.space.record.read_content(me, ref.id),
        lambda: env.accounts.get_patient(me, pid),
    ):
        with pytest.raises(AccessDeniedError):
            read()
    assert env.accounts.get_patient(OPERATOR, pid).identity.ins.traits.birth_name == MARKER
    env.clock.set(closed.archive_until - TICK)
    assert env.space.tick() == {}
    env.clock.set(closed.archive_until)
    assert env.space.tick() == {"purged": 1}
    assert env.space.tick() == {}  # idempotent
    assert env.space.tick(closed.archive_until + DAY) == {}
    assert_purged(env, pid, ref)


def assert_purged(env: Env, pid: str, ref: Document) -> None:
    assert env.state(pid) is AccountState.PURGED
    with storage_of(env.space).read() as tx:
        key = tx.keys.get(pid)
        assert key is not None
        assert (key.wrapped, key.master_key_id) == (None, None)
        assert key.destroyed_at is not None
        assert tx.blobs.get(ref.content_id) is None
        assert tx.blobs.list_for_patient(pid) == []
        assert tx.documents.get(ref.id) is None
    with pytest.raises(DataShreddedError):
        env.accounts.get_patient(OPERATOR, pid)
    for actor in (OPERATOR, Actor.patient(pid)):
        with pytest.raises(AccessDeniedError):
            env.space.record.read_content(actor, ref.id)
        with pytest.raises((InvalidTransitionError, AccessDeniedError)):
            env.accounts.reopen(actor, pid)
    assert env.space.audit.verify().ok


def test_a_deletion_request_is_honoured_at_the_next_run(env):
    pid, ref, _ = open_with_marker(env)
    pending = env.accounts.close(Actor.patient(pid), pid, delete=True)
    assert pending.state is AccountState.PURGE_PENDING
    assert pending.purge_deadline == datetime(2026, 4, 1, 9, tzinfo=UTC)  # at most 3 months
    with pytest.raises(InvalidTransitionError):
        env.accounts.reopen(Actor.patient(pid), pid)
    assert env.space.tick() == {"purged": 1}  # at once, well within 3 months
    assert env.space.tick() == {}
    assert_purged(env, pid, ref)


def test_a_closed_archive_can_be_deleted_on_request(env):
    pid, ref, _ = open_with_marker(env)
    env.accounts.close(Actor.patient(pid), pid)
    env.clock.advance(days=400)
    assert env.accounts.request_deletion(OPERATOR, pid).state is AccountState.PURGE_PENDING
    assert env.space.tick() == {"purged": 1}
    assert_purged(env, pid, ref)


def test_reopening_before_ten_years_restores_the_archive(env):
    pid, ref, data = open_with_marker(env)
    me = Actor.patient(pid)
    closed = env.accounts.close(me, pid)
    env.clock.set(closed.archive_until - TICK)
    assert env.space.tick() == {}
    reopened = env.accounts.reopen(me, pid)
    assert reopened.state is AccountState.ACTIVE
    assert (reopened.closed_at, reopened.archive_until) == (None, None)
    assert env.space.record.read_content(me, ref.id) == data
    assert env.accounts.get_patient(me, pid).identity.ins.traits.birth_name == MARKER
    env.clock.advance(days=365 * 20)
    assert env.space.tick() == {}  # an open space has no deadline
    assert env.space.record.read_content(me, ref.id) == data


def test_a_reopening_at_the_end_of_the_archive_is_too_late(env):
    pid, ref, _ = open_with_marker(env)
    closed = env.accounts.close(OPERATOR, pid)
    env.clock.set(closed.archive_until)
    with pytest.raises(InvalidTransitionError, match="archive period has ended"):
        env.accounts.reopen(Actor.patient(pid), pid)
    assert env.space.tick() == {"purged": 1}
    assert_purged(env, pid, ref)


def test_a_suspension_closes_the_space_unless_the_holder_objects(env):
    kept, _, _ = open_with_marker(env)
    closed_id = env.register(person(2))
    env.accounts.create_space(OPERATOR, closed_id)
    unreachable = env.register(person(3, email=False, address=False))
    env.accounts.create_space(OPERATOR, unreachable)
    env.accounts.suspend(OPERATOR, unreachable)  # nobody to write to: suspended all the same
    assert env.delivered() == []
    for pid in (kept, closed_id):
        assert env.accounts.suspend(OPERATOR, pid).suspension_deadline == T0 + 42 * DAY
    with pytest.raises(AccessDeniedError):
        env.accounts.suspend(Actor.patient(kept), kept)
    # Regression: the notice the six weeks run from was never sent.
    notices = env.delivered()
    assert sorted((n.recipient, n.kind) for n in notices) == [
        ("canari@example.org", "suspension"),
        ("person2@example.org", "suspension"),
    ]
    for notice in notices:
        assert "jusqu'au 12/02/2026" in notice.body  # 1 January + 42 days
        assert "3422" in notice.body
        assert MARKER not in notice.body
    env.clock.set(T0 + 42 * DAY - TICK)
    restored = env.accounts.object_to_suspension(Actor.patient(kept), kept)
    assert restored.state is AccountState.CREATED  # as it was before the suspension
    env.clock.set(T0 + 42 * DAY)
    with pytest.raises(InvalidTransitionError, match="objection window closed"):
        env.accounts.object_to_suspension(Actor.patient(closed_id), closed_id)
    assert env.space.tick() == {"closed": 2}
    account = env.accounts.account(OPERATOR, closed_id)
    assert (account.state, account.closed_at) == (AccountState.CLOSED, T0 + 42 * DAY)
    assert env.state(kept) is AccountState.CREATED


def test_a_late_deadline_run_applies_every_step_due(env):
    """A run that comes years late opens, closes and purges in one pass, each on time."""
    invited_id = env.register(person(1))
    env.accounts.invite(OPERATOR, invited_id)
    suspended_id = env.register(person(2))
    env.accounts.create_space(OPERATOR, suspended_id)
    env.accounts.suspend(OPERATOR, suspended_id)
    env.clock.set(datetime(2040, 1, 1, tzinfo=UTC))
    assert env.space.tick() == {"created": 1, "closed": 1, "purged": 1}
    assert env.state(invited_id) is AccountState.CREATED
    assert env.state(suspended_id) is AccountState.PURGED
    assert env.accounts.account(OPERATOR, invited_id).opened_at == OPENS


def test_the_deadline_run_goes_through_many_accounts_in_batches(env):
    for n in range(1, 26):
        env.accounts.invite(OPERATOR, env.register(person(n)))
    env.clock.set(OPENS)
    assert env.accounts.tick(batch=4) == {"created": 25}
    assert env.accounts.tick(batch=4) == {}
    assert env.accounts.count_by_state() == {"created": 25}


def test_no_plaintext_is_left_in_the_sqlite_files_after_a_purge(sqlite_env):
    env = sqlite_env
    pid, ref, _ = open_with_marker(env)
    with storage_of(env.space).read() as tx:
        wrapped = tx.keys.get(pid).wrapped
        sealed = tx.blobs.get(ref.content_id).sealed
    assert wrapped is not None
    files = env.files()
    assert any(sealed in data for data in files.values())  # the scan sees stored bytes
    env.accounts.close(Actor.patient(pid), pid, delete=True)
    assert env.space.tick() == {"purged": 1}
    assert_purged(env, pid, ref)
    for form in (MARKER.encode(), MARKER.encode("utf-16-le"), MARKER.lower().encode()):
        for name, data in env.files().items():
            assert form not in data, f"plaintext marker in {name} after purge"
    env.space.close()  # the last connection checkpoints and removes the WAL
    after = env.files()
    # What stays beside the database is the writers' lock file, which never holds data.
    assert set(after) == {"space.db", "space.db-writer"}
    assert after["space.db-writer"] == b""
    assert MARKER.encode() not in after["space.db"]
    assert wrapped not in after["space.db"]  # the data key is gone for good
    assert sealed not in after["space.db"]  # secure_delete overwrote the content


def test_a_purge_leaves_no_copy_of_the_wrapped_key_in_the_wal(sqlite_env):
    env = sqlite_env
    pid, _, _ = open_with_marker(env)
    with storage_of(env.space).read() as tx:
        wrapped = tx.keys.get(pid).wrapped
    env.accounts.close(Actor.patient(pid), pid, delete=True)
    env.space.tick()
    assert all(wrapped not in data for data in env.files().values())


# --- 2. the stateful test --------------------------------------------------------------------

# A reference model written from docs/domain-rules.md §1 and the security plan (T5), not from
# monespace.accounts._lifecycle: it keeps, per person, the state of the space, the moments its
# deadlines run from, the live provisional code and the failure counters.

OPPOSITION_WINDOW = timedelta(weeks=6)  # R1111-28: six weeks from the sending
CODE_VALIDITY = timedelta(weeks=6)


def until_paris_midnight(moment: datetime) -> datetime:
    """The end of the day *moment* falls on in Paris: a deadline printed as a date lasts
    that whole day."""
    day = moment.astimezone(PARIS).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


SUSPENSION_WINDOW = timedelta(weeks=6)  # R1111-36
ARCHIVE_YEARS = 10  # R1111-36
PER_CODE, WINDOW = 5, timedelta(hours=24)  # T5
FREE_FAILURES, FIRST_DELAY, MAX_DELAY = 5, timedelta(seconds=30), timedelta(minutes=15)


def delay_after(failures: int) -> timedelta:
    """The wait of a source that failed, written from the documented policy."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** (failures - FREE_FAILURES), MAX_DELAY)


OPEN = {"active", "created"}


def plus_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a common year
        return moment.replace(year=moment.year + years, day=28)


@attrs.define
class Model:
    identity: PatientIdentity
    pid: str
    reachable: bool  # has an e-mail or a postal address
    state: str = "registered"
    invited_at: datetime | None = None
    archive_until: datetime | None = None
    suspension_deadline: datetime | None = None
    resume: str | None = None
    died: bool = False
    code: str | None = None
    code_expires: datetime | None = None
    code_attempts: int = 0
    code_spent: bool = False  # used or revoked
    failures: int = 0
    last_failure: datetime | None = None
    contents: dict[str, bytes] = attrs.Factory(dict)

    def code_live(self, now: datetime) -> bool:
        return (
            self.code is not None
            and not self.code_spent
            and self.code_expires is not None
            and now < self.code_expires
        )

    def new_code(self, code: str, now: datetime) -> None:
        self.code, self.code_expires, self.code_attempts, self.code_spent = (
            code,
            until_paris_midnight(now + CODE_VALIDITY),
            0,
            False,
        )

    def close(self, at: datetime) -> None:
        self.state, self.archive_until = "closed", plus_years(at, ARCHIVE_YEARS)
        self.suspension_deadline = self.resume = None


VARIANTS = ["right", "right", "wrong code", "wrong serial", "wrong birth", "unknown", "malformed"]
STEPS = {"count": 0, "examples": 0}
#: What the runs went through, to check the interesting paths are reached.
SEEN: Counter[str] = Counter()


class AccountsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        STEPS["examples"] += 1
        self.clock = ManualClock(T0)
        self.env = open_env("memory://", StaticKeyProvider(MasterKey.generate()), self.clock)
        self.people: list[Model] = []

    def teardown(self) -> None:
        self.env.space.close()

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def pick(self, index: int) -> Model:
        return self.people[index % len(self.people)]

    def step(self) -> None:
        STEPS["count"] += 1

    # -- people and the operator -----------------------------------------------------------

    @precondition(lambda self: len(self.people) < 6)
    @rule(contact=st.sampled_from(["email", "letter", "email", "none"]))
    def register(self, contact: str) -> None:
        self.step()
        n = len(self.people) + 1
        identity = person(n, email=contact == "email", address=contact != "none")
        pid = self.env.register(identity)
        self.people.append(Model(identity, pid, reachable=contact != "none"))

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5))
    def invite(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        if m.state == "registered" and m.reachable:
            invitation = self.env.accounts.invite(OPERATOR, m.pid)
            assert invitation.opposition_deadline == until_paris_midnight(
                self.now + OPPOSITION_WINDOW
            )
            m.state, m.invited_at = "invited", self.now
            [code] = self.env.codes_sent()
            m.new_code(code, self.now)
        elif m.state == "purged":
            with pytest.raises(DataShreddedError):  # the address died with the data key
                self.env.accounts.invite(OPERATOR, m.pid)
        else:
            with pytest.raises(ValidationError):
                self.env.accounts.invite(OPERATOR, m.pid)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5))
    def create_space(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        if m.state == "registered":
            self.env.accounts.create_space(OPERATOR, m.pid)
            m.state = "created"
        else:
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.create_space(OPERATOR, m.pid)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5))
    def issue_code(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        m.new_code(self.env.accounts.issue_code(OPERATOR, m.pid, send=False), self.now)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5))
    def suspend(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        if m.state in OPEN:
            self.env.accounts.suspend(OPERATOR, m.pid)
            m.resume, m.state = m.state, "suspended"
            m.suspension_deadline = self.now + SUSPENSION_WINDOW
        else:
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.suspend(OPERATOR, m.pid)

    @precondition(lambda self: self.people and sum(m.died for m in self.people) < 2)
    @rule(index=st.integers(0, 5))
    def record_death(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        if m.state == "purged":
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.record_death(OPERATOR, m.pid, self.now.date())
            return
        self.env.accounts.record_death(OPERATOR, m.pid, self.now.date())
        SEEN[f"death recorded while {m.state}"] += 1
        m.died = True
        if m.state not in ("closed", "purge_pending"):
            m.close(self.now)

    # -- the holder, or the operator on their request -------------------------------------

    def holder_or_operator(self, m: Model, by: str) -> Actor:
        return OPERATOR if by == "operator" else Actor.patient(m.pid)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), by=st.sampled_from(["holder", "operator"]), delete=st.booleans())
    def close(self, index: int, by: str, delete: bool) -> None:
        self.step()
        m = self.pick(index)
        actor = self.holder_or_operator(m, by)
        allowed = m.state in OPEN or (delete and m.state == "closed")
        if not allowed:
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.close(actor, m.pid, delete=delete)
            return
        self.env.accounts.close(actor, m.pid, delete=delete)
        if m.state in OPEN:
            m.close(self.now)
        if delete:
            m.state = "purge_pending"

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), by=st.sampled_from(["holder", "operator"]))
    def reopen(self, index: int, by: str) -> None:
        self.step()
        m = self.pick(index)
        actor = self.holder_or_operator(m, by)
        if (
            m.state == "closed"
            and not m.died
            and m.archive_until is not None
            and self.now < m.archive_until
        ):
            self.env.accounts.reopen(actor, m.pid)
            SEEN["reopened"] += 1
            m.state, m.archive_until = "active", None
        else:
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.reopen(actor, m.pid)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), by=st.sampled_from(["holder", "operator"]))
    def object_to_suspension(self, index: int, by: str) -> None:
        self.step()
        m = self.pick(index)
        actor = self.holder_or_operator(m, by)
        deadline = m.suspension_deadline
        if m.state == "suspended" and deadline is not None and self.now < deadline:
            self.env.accounts.object_to_suspension(actor, m.pid)
            SEEN["objected to a suspension"] += 1
            m.state, m.resume, m.suspension_deadline = m.resume or "active", None, None
        else:
            with pytest.raises(InvalidTransitionError):
                self.env.accounts.object_to_suspension(actor, m.pid)

    @precondition(lambda self: len(self.people) >= 2)
    @rule(index=st.integers(0, 5), other=st.integers(1, 5))
    def a_stranger_is_denied(self, index: int, other: int) -> None:
        self.step()
        m = self.pick(index)
        stranger = self.people[(self.people.index(m) + other) % len(self.people)]
        if stranger is m:
            return
        actor = Actor.patient(stranger.pid)
        for attempt in (
            lambda: self.env.accounts.close(actor, m.pid),
            lambda: self.env.accounts.reopen(actor, m.pid),
            lambda: self.env.accounts.get_patient(actor, m.pid),
        ):
            with pytest.raises(AccessDeniedError) as info:
                attempt()
            assert str(info.value) == DENIED  # whatever the state of the space

    # -- proofs of identity ------------------------------------------------------------------

    def proof_for(self, m: Model, variant: str, with_code: bool = True) -> dict[str, object]:
        code = m.code if m.code is not None else generate_code()
        given = proof(m.identity, code=code) if with_code else proof(m.identity)
        traits = m.identity.ins.traits
        assert traits is not None
        if variant == "wrong code" and with_code:
            given["code"] = a_wrong_code(code)
        elif variant == "wrong serial":
            given["vitale_serial"] = "WRONG0000000"
        elif variant == "wrong birth":
            given["birth_date"] = traits.birth_date + DAY
        elif variant == "unknown":
            given["nir"] = person(999).ins.matricule.value
        elif variant == "malformed":
            given["nir"] = "1234"
        return given

    def judge(self, m: Model, variant: str, with_code: bool = True) -> tuple[bool, int, bool]:
        """Whether the proof passes, the failures still counted, and whether the attempt is
        refused unchecked (every attempt here comes from an unknown source, which counts as
        one that failed)."""
        failures, last = m.failures, m.last_failure
        if last is None or self.now >= last + WINDOW:
            failures = 0
        delayed = last is not None and self.now < last + delay_after(failures)
        right = variant == "right" or (variant == "wrong code" and not with_code)
        # A purge forgets the NIR, the card and the birth date: nothing proves a purged
        # person any more, as for someone never registered.
        right = right and m.state != "purged"
        passes = right and (not with_code or m.code_live(self.now)) and not delayed
        return passes, failures, delayed

    def count_failure(
        self, m: Model, variant: str, failures: int, delayed: bool, with_code: bool
    ) -> None:
        if variant in ("unknown", "malformed") or m.state == "purged":
            return  # nobody's counters: no such person (any more)
        if delayed:
            return  # refused unchecked: nothing counted
        if with_code and not m.code_live(self.now):
            return  # no usable code: the attempt could not succeed, and tells nothing
        m.failures, m.last_failure = failures + 1, self.now
        if with_code and m.code_live(self.now):
            m.code_attempts += 1
            if m.code_attempts >= PER_CODE:
                m.code_spent = True

    def prove(self, m: Model, variant: str, operation, allowed: bool, with_code: bool = True):
        passes, failures, delayed = self.judge(m, variant, with_code)
        given = self.proof_for(m, variant, with_code)
        if variant == "malformed":
            # Said as such before anything is looked up or counted.
            with pytest.raises(InvalidNIRError):
                operation(**given)
            SEEN["malformed NIR said as such"] += 1
            return None
        if not passes:
            with pytest.raises(ActivationError) as info:
                operation(**given)
            assert str(info.value) == ActivationError.MESSAGE
            if variant == "right" and delayed:
                SEEN["refused: source delayed"] += 1
            was_live = m.code_live(self.now)
            self.count_failure(m, variant, failures, delayed, with_code)
            if was_live and not m.code_live(self.now):
                SEEN["code revoked after K wrong tries"] += 1
            SEEN["proof refused"] += 1
            return None
        if not allowed:
            # Proof accepted but the step is refused: the whole unit is rolled back.
            with pytest.raises(MonespaceError) as refused:
                operation(**given)
            assert not isinstance(refused.value, ActivationError)
            SEEN["proof accepted, step refused"] += 1
            return None
        result = operation(**given)
        SEEN[f"{operation.__name__} succeeded"] += 1
        if with_code:
            m.failures, m.last_failure, m.code_spent = 0, None, True
        return result

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), variant=st.sampled_from(VARIANTS))
    def activate(self, index: int, variant: str) -> None:
        self.step()
        m = self.pick(index)
        allowed = m.state in ("registered", "invited", "created", "opposed")
        if self.prove(m, variant, self.env.accounts.activate, allowed) is not None:
            m.state = "active"

    @precondition(lambda self: self.people)
    @rule(
        index=st.integers(0, 5),
        times=st.integers(1, 6),
        use=st.sampled_from(["activate", "oppose"]),
    )
    def guess(self, index: int, times: int, use: str) -> None:
        """A burst of wrong codes against one person (towards revocation and lockout)."""
        self.step()
        m = self.pick(index)
        operation = getattr(self.env.accounts, use)
        for _ in range(times):
            self.prove(m, "wrong code", operation, allowed=False)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), variant=st.sampled_from(VARIANTS))
    def oppose(self, index: int, variant: str) -> None:
        self.step()
        m = self.pick(index)
        in_time = m.invited_at is not None and self.now < until_paris_midnight(
            m.invited_at + OPPOSITION_WINDOW
        )
        allowed = m.state == "registered" or (m.state == "invited" and in_time)
        signed = self.prove(m, variant, self.env.accounts.oppose, allowed)
        if signed is not None:
            m.state = "opposed"
            verify_opposition_proof(signed.document, self.env.accounts.signing_public_key())

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5), variant=st.sampled_from(VARIANTS))
    def request_code(self, index: int, variant: str) -> None:
        self.step()
        m = self.pick(index)
        # The new code goes to the person's contact; without one, or once the data are
        # purged, nothing can be sent and nothing changes.
        allowed = m.reachable and m.state != "purged"

        def request_code(**given: object) -> str:
            self.env.accounts.request_code(**given)
            return "sent"

        done = self.prove(m, variant, request_code, allowed, with_code=False)
        if done is not None:
            [code] = self.env.codes_sent()
            m.new_code(code, self.now)

    # -- contents ----------------------------------------------------------------------------

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 5))
    def feed(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        data = f"{MARKER} {len(m.contents)}".encode()
        if m.state in OPEN:
            document = add_note(self.env.space, OPERATOR, m.pid, data)
            m.contents[document.id] = data
            self.env.delivered()
        else:
            with pytest.raises(AccessDeniedError):
                add_note(self.env.space, OPERATOR, m.pid, data)

    @precondition(lambda self: any(m.contents for m in self.people))
    @rule(index=st.integers(0, 5))
    def read(self, index: int) -> None:
        self.step()
        m = self.pick(index)
        for ref, data in m.contents.items():
            if m.state in OPEN:
                assert self.env.space.record.read_content(Actor.patient(m.pid), ref) == data
            else:
                with pytest.raises(AccessDeniedError):
                    self.env.space.record.read_content(Actor.patient(m.pid), ref)

    # -- time --------------------------------------------------------------------------------

    @rule(
        delta=st.sampled_from(
            [
                TICK,
                timedelta(hours=1),
                timedelta(hours=24),
                timedelta(days=41),
                timedelta(days=41, hours=23, minutes=59),
                timedelta(days=42),
                timedelta(days=43),
                timedelta(days=92),  # three months
                timedelta(days=3653),  # ten years
            ]
        )
    )
    def advance(self, delta: timedelta) -> None:
        self.step()
        self.clock.advance(delta)

    @precondition(lambda self: self.people)
    @rule(index=st.integers(0, 30), before=st.booleans())
    def to_a_deadline(self, index: int, before: bool) -> None:
        """Jump exactly onto (or just before) a deadline of the model."""
        self.step()
        deadlines = sorted(
            d
            for m in self.people
            for d in (
                until_paris_midnight(m.invited_at + OPPOSITION_WINDOW) if m.invited_at else None,
                m.code_expires,
                m.suspension_deadline,
                m.archive_until,
                m.last_failure + WINDOW if m.last_failure else None,
                m.last_failure + delay_after(m.failures) if m.last_failure else None,
            )
            if d is not None and d - (TICK if before else timedelta(0)) > self.now
        )
        if deadlines:
            self.clock.set(deadlines[index % len(deadlines)] - (TICK if before else timedelta(0)))

    @rule()
    def tick(self) -> None:
        self.step()
        expected: dict[str, int] = {}
        for m in self.people:
            while True:
                if m.state == "invited" and self.now >= until_paris_midnight(
                    m.invited_at + OPPOSITION_WINDOW
                ):
                    m.state = "created"
                elif m.state == "suspended" and self.now >= m.suspension_deadline:
                    m.close(m.suspension_deadline)
                elif (m.state == "closed" and self.now >= m.archive_until) or (
                    m.state == "purge_pending"
                ):
                    # Purged: the data and what proved the person's identity are forgotten.
                    m.state, m.failures, m.last_failure = "purged", 0, None
                else:
                    break
                expected[m.state] = expected.get(m.state, 0) + 1
                SEEN[f"tick: {m.state}"] += 1
        assert self.env.space.tick() == expected
        assert self.env.space.tick() == {}
        for m in self.people:
            if m.state == "purged" and m.contents:
                for ref in m.contents:
                    with pytest.raises(AccessDeniedError):
                        self.env.space.record.read_content(Actor.patient(m.pid), ref)
                with pytest.raises(DataShreddedError):
                    self.env.accounts.get_patient(OPERATOR, m.pid)
                m.contents.clear()

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def states_match_the_model(self) -> None:
        with storage_of(self.env.space).read() as tx:
            for m in self.people:
                account = tx.accounts.get(m.pid)
                assert account is not None
                assert str(account.state) == m.state, (m.pid, account, m)
                if m.state == "purged":
                    key = tx.keys.get(m.pid)
                    assert key is not None
                    assert key.wrapped is None
                    assert tx.blobs.list_for_patient(m.pid) == []
                record = tx.codes.get(m.pid)
                if m.code is not None:
                    assert record is not None
                    assert code_from_row(record).usable(self.now) == m.code_live(self.now)
                proof_record = tx.proofs.get(m.pid)
                assert proof_record is not None
                assert proof_record.failures == m.failures

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        assert self.env.space.audit.verify().ok


def test_the_service_follows_the_reference_model(capsys):
    STEPS.update(count=0, examples=0)
    SEEN.clear()
    run_state_machine_as_test(AccountsMachine, settings=settings.get_profile("stateful"))
    with capsys.disabled():
        print(
            f"\n[stateful] {STEPS['count']} steps over {STEPS['examples']} runs "
            "of the accounts state machine"
        )
        for name, count in sorted(SEEN.items()):
            print(f"    {count:6d}  {name}")
    assert STEPS["count"] > 0


# --- the printed deadlines are the enforced ones (issue 12) ------------------------------------


def _printed_day(body: str, after: str) -> date:
    found = re.search(after + r".*?jusqu'au (\d\d)/(\d\d)/(\d{4})", body, re.S)
    assert found is not None
    day, month, year = (int(part) for part in found.groups())
    return date(year, month, day)


@pytest.mark.parametrize("hour", [9, 23])  # 10:00 and 00:00 (the next day) in Paris
def test_an_opposition_on_the_printed_day_is_accepted_until_midnight_paris(env, hour):
    """The letter says "jusqu'au JJ/MM/AAAA": an opposition that day, Paris time, is in
    time until midnight; at midnight the window is closed and the space opens."""
    env.clock.set(datetime(2026, 1, 1, hour, 0, tzinfo=UTC))
    identity, pid, _ = invited(env)
    [message] = [m for m in env.mail.sent if "Vous opposer" in m.body][-1:]
    [code] = CODE_RE.findall(message.body)
    last = _printed_day(message.body, "Vous opposer")
    assert _printed_day(message.body, "Code provisoire") >= last  # the code lasts as long
    other, other_id, other_code = invited(env, 2)
    env.clock.set(datetime.combine(last, time(23, 59, 59), tzinfo=PARIS))
    env.accounts.oppose(**proof(identity, code=code))
    assert env.state(pid) is AccountState.OPPOSED
    env.clock.set(datetime.combine(last + timedelta(days=1), time(0), tzinfo=PARIS))
    with pytest.raises((InvalidTransitionError, ActivationError)):
        env.accounts.oppose(**proof(other, code=other_code))
    env.space.tick()
    assert env.state(other_id) is AccountState.CREATED


def test_the_invitation_gives_the_dmp_rules_and_the_medecin_traitants_rights(env):
    """R1111-40: the information says how the DMP is created, closed and destroyed, its
    access rules, and the médecin traitant's rights of their own."""
    pid = env.register(person(1))
    env.accounts.invite(OPERATOR, pid)
    [message] = env.delivered()
    for needle in (
        "Les règles du DMP",
        "équipe de soins",
        "bloquer un professionnel",
        "urgence",
        "traces",
        "Les droits du médecin traitant",
        "y compris ceux que vous avez masqués",
    ):
        assert needle in message.body, needle


# --- provisional codes by SMS, closure with a code (issue 12) ----------------------------------


def test_a_new_code_goes_by_sms_or_e_mail_at_the_holders_choice(env):
    """§1.3: "le code est envoyé par SMS ou par e-mail (au choix)"; the SMS goes through the
    outbox on the channel ``sms``, to the phone number the person declared."""
    sms = MemoryTransport()
    env.space.transports["sms"] = sms
    base = person(1)
    identity = attrs.evolve(base, contact=attrs.evolve(base.contact, phone="+33612345678"))
    pid = env.register(identity)
    env.accounts.create_space(OPERATOR, pid)
    env.accounts.request_code(**proof(identity), channel="sms")
    env.space.dispatch()
    [message] = sms.sent
    assert message.recipient == "+33612345678"
    [code] = CODE_RE.findall(message.body)
    env.accounts.request_code(**proof(identity), channel="email")
    assert len(env.codes_sent()) == 1
    with pytest.raises(ValidationError, match="channel"):
        env.accounts.request_code(**proof(identity), channel="pigeon")
    assert code


def test_a_code_by_sms_needs_a_phone_number(env):
    identity = person(2)
    pid = env.register(identity)
    env.accounts.create_space(OPERATOR, pid)
    with pytest.raises(ValidationError, match="phone"):
        env.accounts.request_code(**proof(identity), channel="sms")


@pytest.mark.parametrize("delete", [False, True])
def test_a_space_is_closed_with_a_code_and_the_carte_vitale_without_a_login(env, delete):
    """§1.1, §1.3: closure is always possible with a provisional code and the carte Vitale."""
    identity = person(3)
    pid = env.register(identity)
    env.accounts.create_space(OPERATOR, pid)
    env.accounts.request_code(**proof(identity))
    [code] = env.codes_sent()
    with pytest.raises(ActivationError):
        env.accounts.close_with_code(**proof(identity, code="AAAA-BBBB-CCCC"), delete=delete)
    closed = env.accounts.close_with_code(**proof(identity, code=code), delete=delete)
    expected = AccountState.PURGE_PENDING if delete else AccountState.CLOSED
    assert closed.state is env.state(pid) is expected
    with pytest.raises(ActivationError):  # the code worked once
        env.accounts.close_with_code(**proof(identity, code=code))
