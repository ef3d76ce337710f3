"""Batches of invitations (``space.accounts.invite_many``): the same observable results as
one ``invite`` per person, whatever the population, and a person who cannot be invited
does not hold back the others of their batch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monespace
from monespace import Actor
from monespace.accounts import (
    AccountState,
    Contact,
    Invitation,
    InvitationFailure,
    PatientIdentity,
    PostalAddress,
)
from monespace.accounts._mapping import account_from_row
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    InvalidTransitionError,
    MonespaceError,
    NotFoundError,
    ValidationError,
)
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.testing import storage_of
from monespace.transport import MemoryTransport

OPERATOR = Actor.system("test")
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
CODE_RE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")


def identity(n: int, *, email: bool = True, address: bool = True, minor: bool = False):
    born = date(2015, 6, 1) if minor else date(1985, 3, 14)
    nir = NIR.build("F", born.year % 100, born.month, "75", "056", n)
    traits = INSTraits(
        birth_name="DUPONT",
        first_given_name="CAMILLE",
        birth_date=born,
        sex="F",
        birth_place_code="75056",
    )
    postal = PostalAddress((f"{n} RUE DES LILAS",), "75011", "PARIS") if address else None
    return PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email=f"person{n}@example.org" if email else None, postal_address=postal),
        vitale_serial=f"VIT{n:09d}",
    )


class World:
    """A space with a population registered as *people* describes."""

    def __init__(self, people: list[dict[str, object]]) -> None:
        self.mail, self.post = MemoryTransport(), MemoryTransport()
        self.clock = ManualClock(T0)
        self.space = monespace.open(
            "memory://",
            key_provider=StaticKeyProvider(MasterKey.generate()),
            clock=self.clock,
            transports={"email": self.mail, "letter": self.post},
            load_entrypoints=False,
        )
        accounts = self.space.accounts
        self.identities = [
            identity(n, email=bool(p["email"]), address=bool(p["address"]), minor=bool(p["minor"]))
            for n, p in enumerate(people, start=1)
        ]
        self.ids = [accounts.register_patient(OPERATOR, i).id for i in self.identities]
        parent = accounts.register_patient(OPERATOR, identity(900)).id
        for pid, p in zip(self.ids, people, strict=True):
            if p["minor"]:
                accounts.add_representative(OPERATOR, pid, parent)
            if p["state"] == "created":
                accounts.create_space(OPERATOR, pid)
            elif p["state"] == "invited" and (p["email"] or p["address"] or p["minor"]):
                accounts.invite(OPERATOR, pid)
        self.space.dispatch(limit=10_000)
        self.mail.sent.clear()
        self.post.sent.clear()
        self.events_before = self.events()

    def events(self) -> Counter[tuple[str, str, str]]:
        """The audit trail's events, by action, outcome and rule."""
        with storage_of(self.space).read() as tx:
            rows = [
                row
                for shard in tx.audit.shards()
                for row in tx.audit.scan(shard=shard, limit=1_000_000)
            ]
        return Counter((r.action, r.outcome, r.rule) for r in rows)

    def states(self) -> list[AccountState]:
        with storage_of(self.space).read() as tx:
            rows = [tx.accounts.get(pid) for pid in self.ids]
        return [account_from_row(row).state for row in rows if row is not None]

    def close(self) -> None:
        self.space.close()


people = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.booleans(),
            "address": st.booleans(),
            "minor": st.booleans(),
            "state": st.sampled_from(["registered", "registered", "invited", "created"]),
        }
    ),
    min_size=1,
    max_size=6,
)
#: Positions in the population, and -1 for an id nobody has: the batch's order, with
#: repeats.
orders = st.lists(st.integers(min_value=-1, max_value=5), min_size=1, max_size=9)


def _ids(world: World, order: list[int]) -> list[str]:
    return [world.ids[i] if 0 <= i < len(world.ids) else "nobody" for i in order]


def _outcome(result: Invitation | InvitationFailure | MonespaceError) -> tuple[object, ...]:
    """What two spaces' invitations must agree on (their ids and deadlines aside)."""
    if isinstance(result, Invitation):
        return ("invited", result.channel, result.to_representative)
    error = result.error if isinstance(result, InvitationFailure) else result
    return ("failed", type(error))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(population=people, order=orders, batch=st.integers(min_value=1, max_value=4))
def test_a_batch_does_what_one_invitation_per_person_does(population, order, batch):
    one_by_one, batched = World(population), World(population)
    try:
        singles: list[Invitation | MonespaceError] = []
        for pid in _ids(one_by_one, order):
            try:
                singles.append(one_by_one.space.accounts.invite(OPERATOR, pid))
            except MonespaceError as exc:
                singles.append(exc)
        results = batched.space.accounts.invite_many(OPERATOR, _ids(batched, order), batch=batch)

        assert [_outcome(r) for r in results] == [_outcome(r) for r in singles]
        assert batched.states() == one_by_one.states()
        assert (
            batched.events() - batched.events_before
            == one_by_one.events() - one_by_one.events_before
        )
        for world in (one_by_one, batched):
            world.space.dispatch(limit=10_000)
        assert (len(batched.mail.sent), len(batched.post.sent)) == (
            len(one_by_one.mail.sent),
            len(one_by_one.post.sent),
        )
        # Every code sent works: the holder (or their guardian, for a minor) activates.
        envelopes = [*batched.mail.sent, *batched.post.sent]
        for result in results:
            if not isinstance(result, Invitation):
                continue
            if result.to_representative:
                continue  # the guardian activates with their own login, not tested here
            n = batched.ids.index(result.patient_id) + 1
            mine = batched.identities[n - 1]
            reach = mine.contact.email or f"{n} RUE DES LILAS"
            (envelope,) = [e for e in envelopes if e.recipient.startswith(reach)]
            (code,) = CODE_RE.findall(envelope.body)
            traits = mine.ins.traits
            assert traits is not None
            account = batched.space.accounts.activate(
                nir=mine.ins.matricule.value,
                code=code,
                vitale_serial=mine.vitale_serial or "",
                birth_date=traits.birth_date,
            )
            assert account.state is AccountState.ACTIVE
    finally:
        one_by_one.close()
        batched.close()


def test_a_person_who_cannot_be_invited_is_reported_and_the_others_are_invited():
    population = [
        {"email": True, "address": True, "minor": False, "state": "registered"},
        {"email": False, "address": False, "minor": False, "state": "registered"},
        {"email": False, "address": True, "minor": False, "state": "registered"},
        {"email": True, "address": True, "minor": False, "state": "created"},
        {"email": True, "address": False, "minor": True, "state": "registered"},
    ]
    world = World(population)
    try:
        ids = [*world.ids, "nobody"]
        results = world.space.accounts.invite_many(OPERATOR, ids)
        assert [type(r) for r in results] == [
            Invitation,
            InvitationFailure,
            Invitation,
            InvitationFailure,
            Invitation,
            InvitationFailure,
        ]
        failures = [r for r in results if isinstance(r, InvitationFailure)]
        assert [f.patient_id for f in failures] == [ids[1], ids[3], "nobody"]
        assert isinstance(failures[0].error, ValidationError)  # no e-mail, no address
        assert isinstance(failures[1].error, InvalidTransitionError)  # already open
        assert isinstance(failures[2].error, NotFoundError)
        assert world.states() == [
            AccountState.INVITED,
            AccountState.REGISTERED,
            AccountState.INVITED,
            AccountState.CREATED,
            AccountState.INVITED,
        ]
        assert world.events() - world.events_before == Counter(
            {
                ("account.invite", "success", "operator_administers"): 3,
                ("account.invite", "failure", "operator_administers"): 3,
            }
        )
        world.space.dispatch(limit=100)
        assert (len(world.mail.sent), len(world.post.sent)) == (2, 1)
    finally:
        world.close()


def test_a_denied_batch_traces_one_denial_per_person_and_writes_nothing():
    world = World([{"email": True, "address": True, "minor": False, "state": "registered"}] * 3)
    try:
        intruder = Actor.patient(world.ids[0])
        results = world.space.accounts.invite_many(intruder, world.ids)
        assert all(
            isinstance(r, InvitationFailure) and isinstance(r.error, AccessDeniedError)
            for r in results
        )
        assert world.states() == [AccountState.REGISTERED] * 3
        new = world.events() - world.events_before
        assert sum(new.values()) == 3
        assert {(action, outcome) for action, outcome, _ in new} == {("account.invite", "denied")}
        with pytest.raises(AccessDeniedError):
            world.space.accounts.invite_registered(intruder)
    finally:
        world.close()


def test_an_account_that_changes_while_its_batch_is_prepared_is_invited_from_what_is_stored(
    monkeypatch,
):
    world = World([{"email": True, "address": True, "minor": False, "state": "registered"}] * 3)
    accounts = world.space.accounts
    real = type(accounts)._prepare_invitations

    def meanwhile(self, ids):
        prepared = real(self, ids)
        # Another operator opens the second space between the preparation and the write.
        monkeypatch.undo()
        accounts.create_space(OPERATOR, world.ids[1])
        return prepared

    monkeypatch.setattr(type(accounts), "_prepare_invitations", meanwhile)
    try:
        results = accounts.invite_many(OPERATOR, world.ids)
        assert [type(r) for r in results] == [Invitation, InvitationFailure, Invitation]
        failure = results[1]
        assert isinstance(failure, InvitationFailure)
        assert isinstance(failure.error, InvalidTransitionError)
        assert world.states() == [AccountState.INVITED, AccountState.CREATED, AccountState.INVITED]
        world.space.dispatch(limit=100)
        assert len(world.mail.sent) == 2
    finally:
        world.close()


def test_the_first_invitations_of_a_space_create_its_keys():
    world = World([{"email": True, "address": True, "minor": False, "state": "registered"}] * 2)
    try:
        # Two people and the parent World registers: three batches of one.
        assert world.space.accounts.invite_registered(OPERATOR, batch=1) == {
            "invited": 3,
            "by_email": 3,
            "by_letter": 0,
            "skipped": 0,
            "failed": 0,
        }
        assert world.space.accounts.count_by_state() == {"invited": 3}
    finally:
        world.close()


_INVITE_A_SLICE = """
import sys
import monespace
from monespace import Actor
from monespace.storage import Slice

index, count, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with monespace.open(url, load_entrypoints=False) as space:
    counts = space.accounts.invite_registered(
        Actor.system("test"), batch=7, part=Slice(index, count)
    )
print(counts["invited"])
"""


def test_slices_invited_by_processes_at_once_invite_everyone_once(tmp_path):
    """Three processes, each inviting its slice of one SQLite file at the same time: every
    registered person is invited once, with one event each, and the trail still verifies."""
    key = MasterKey.generate()
    url = f"sqlite:///{tmp_path / 'slices.db'}"
    people = 60
    with monespace.open(url, key_provider=StaticKeyProvider(key), load_entrypoints=False) as space:
        ids = {space.accounts.register_patient(OPERATOR, identity(n)).id for n in range(people)}
    env = {**os.environ, "MONESPACE_MASTER_KEY": key.to_base64()}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _INVITE_A_SLICE, str(index), "3", url],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(3)
    ]
    invited = [int(run.communicate(timeout=120)[0]) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert sum(invited) == people
    assert all(0 < share < people for share in invited)  # each slice had its share
    with monespace.open(url, key_provider=StaticKeyProvider(key), load_entrypoints=False) as space:
        assert space.accounts.count_by_state() == {"invited": people}
        events = space.audit.events(OPERATOR, limit=10_000)
        traced = Counter(
            e.patient_id for e in events if e.action == "account.invite" and e.outcome == "success"
        )
        assert traced == dict.fromkeys(ids, 1)
        with storage_of(space).read() as tx:
            notices = tx.outbox.due(datetime(2100, 1, 1, tzinfo=UTC), limit=1000)
        assert Counter(row.patient_id for row in notices) == dict.fromkeys(ids, 1)
        assert space.audit.verify().ok
