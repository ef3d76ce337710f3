"""The performance gate: round trips and pages written per operation, counted.

Timings depend on the machine and are never tested (``benchmarks/`` measures them beside raw
baselines); the number of SQL statements an operation runs and the number of write-ahead-log
pages its commit writes do not, so a regression in either fails here. The bounds are today's
counts: lowering one is progress (lower the bound with it), raising one needs a reason.

The audit trail's own statements (the event, the head seal, and the chain's head or the
checkpoint when they must be read) are counted apart, so that each side's budget is visible.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from monespace import Actor, ActorKind, Settings
from monespace.accounts import Invitation
from monespace.audit import AuditSettings
from monespace.clock import ManualClock
from monespace.crypto import Keyring
from monespace.errors import AccessDeniedError, DataShreddedError, ValidationError
from monespace.record import LOINC, Code, NewDocument
from monespace.storage._sql import SqlDocuments, _Repo
from monespace.testing import statements_of, storage_of, wal_frames_of

from .helpers import feeder, identity, open_patient, open_space, register_physicians

CONSULTATION = Code("11488-4", LOINC)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 16  # about 4 KiB

#: Statements the audit trail runs to append the events of one unit: insert the event and
#: rewrite the head seal. The shard's head is read only when the writer does not know it
#: (its first append to the shard, or after another writer appended: see
#: ``test_a_stale_remembered_head_is_read_again``), and the newest checkpoint only when one
#: may be due (the writer knows the newest committed one: see the checkpoint tests).
AUDIT_STATEMENTS = 2


def _audit(statement: str) -> bool:
    words = statement.split(None, 3)
    return any("audit_" in w for w in words[:4]) or "FROM audit_" in statement


def _with_record(space):
    """One physician and one open patient in *space*, the physician given access by the
    feeder: (the physician, the patient's id)."""
    (rpps,) = register_physicians(space, 1)
    patient = open_patient(space)
    doctor = Actor(ActorKind.PROFESSIONAL, rpps)
    feeder(space, doctor, patient.id)
    return doctor, patient.id


@pytest.fixture(params=["memory", "sqlite"])
def world(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'gate.db'}"
    space = open_space(url)
    doctor, patient_id = _with_record(space)
    yield space, doctor, patient_id
    space.close()


def _add(space, doctor, patient_id, **options):
    return space.record.add_document(
        doctor, patient_id, PDF, media_type="application/pdf", type_code=CONSULTATION, **options
    )


def test_adding_a_document_runs_eight_statements(world):
    """A professional's 4 KiB document with the holder's notice: BEGIN, one read of every
    fact the decision needs (with the patient's row and data key), three inserts (content,
    document, notice), COMMIT, and the audit trail's two."""
    space, doctor, patient_id = world
    _add(space, doctor, patient_id)  # the space-wide notification key now exists
    _add(space, doctor, patient_id)
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)
    audit = [s for s in statements if _audit(s)]
    ours = [" ".join(s.split()[:2]) for s in statements if not _audit(s)]
    assert len(audit) == AUDIT_STATEMENTS, audit
    assert ours == [
        "BEGIN IMMEDIATE",
        "SELECT a.patient_id,",
        "INSERT INTO",
        "INSERT INTO",
        "INSERT INTO",
        "COMMIT",
    ], statements


def test_reading_a_document_reads_its_key_with_the_facts(world):
    """Reading content: the document, the facts with the data key (and whether the
    professional already read this record: no first-access mark to write) in one statement,
    the content, and the audit trail's."""
    space, doctor, patient_id = world
    document = _add(space, doctor, patient_id)
    space.record.read_content(doctor, document.id)
    with statements_of(space) as statements:
        space.record.read_content(doctor, document.id)
    ours = [" ".join(s.split()[:2]) for s in statements if not _audit(s)]
    assert len([s for s in statements if _audit(s)]) == AUDIT_STATEMENTS
    assert ours == [
        "BEGIN IMMEDIATE",
        "SELECT id,",  # the document
        "SELECT a.patient_id,",  # the facts, the patient's row and data key, first access
        "SELECT id,",  # the content
        "COMMIT",
    ], statements


def test_adding_a_document_writes_few_pages(tmp_path):
    """Each commit of an addition writes its rows' pages once: the content (with an overflow
    page), the document, the notice, the event and the head seal, and their indexes."""
    space = open_space(f"sqlite:///{tmp_path / 'wal.db'}")
    doctor, patient_id = _with_record(space)
    _add(space, doctor, patient_id)
    storage_of(space).scrub()  # type: ignore[attr-defined]
    _add(space, doctor, patient_id)
    frames = wal_frames_of(space)
    space.close()
    assert 0 < frames <= 18, frames


def test_a_stale_remembered_head_is_read_again(tmp_path):
    """Two writers on one file (two processes, in production) each remember the head they
    last appended; when the other appended since, the storage refuses the stale link, and
    the writer reads the head, chains on it, and remembers it: the trail stays one chain."""
    url = f"sqlite:///{tmp_path / 'heads.db'}"
    space = open_space(url)
    keys = space._core.keyring.provider
    doctor, patient_id = _with_record(space)
    other = open_space(url, keys=keys)
    _add(space, doctor, patient_id)
    _add(other, doctor, patient_id)
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)  # remembered head stale: refused, read, chained
    heads = [s for s in statements if s.startswith("SELECT") and "FROM audit_events" in s]
    appends = [s for s in statements if s.startswith("INSERT INTO audit_events")]
    assert (len(heads), len(appends)) == (1, 2), statements
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)  # the head read last time is the newest: not read
    assert next(s for s in statements if _audit(s)).startswith("INSERT INTO audit_events")
    _add(other, doctor, patient_id)
    other.close()
    report = space.audit.verify()
    assert report.ok, report
    assert report.checked == space.audit.count()
    space.close()


def test_a_destroyed_key_is_never_served_from_the_cache(tmp_path):
    """Crypto-shredding works at once even where the key was cached: another space on the
    same file (another process, in production) destroys the key, and the next read here
    fails, within the cache's lifetime."""
    url = f"sqlite:///{tmp_path / 'shred.db'}"
    space = open_space(url, settings=Settings(data_key_cache_lifetime=timedelta(hours=1)))
    keys = space._core.keyring.provider
    doctor, patient_id = _with_record(space)
    me = Actor.patient(patient_id)
    document = _add(space, doctor, patient_id)
    assert space.record.read_content(me, document.id) == PDF  # the key is now cached
    other = open_space(url, keys=keys)
    keyring = Keyring(storage_of(other), lambda: keys)
    with storage_of(other).write() as tx:
        assert keyring.destroy(tx, patient_id, datetime.now(UTC))
    other.close()
    with pytest.raises((DataShreddedError, AccessDeniedError)):
        space.record.read_content(me, document.id)
    space.close()


def test_a_key_destroyed_here_leaves_the_cache_at_once():
    """The same within one space: the keyring that destroys a key drops it from its cache."""
    space = open_space()
    doctor, patient_id = _with_record(space)
    document = _add(space, doctor, patient_id)
    keyring = space._core.keyring
    assert space.record.read_content(doctor, document.id) == PDF
    with storage_of(space).write() as tx:
        assert keyring.destroy(tx, patient_id, datetime.now(UTC))
        with pytest.raises(DataShreddedError):
            keyring.get(tx, patient_id)
    with storage_of(space).read() as tx, pytest.raises(DataShreddedError):
        keyring.get(tx, patient_id)


def test_the_cache_is_bounded_and_can_be_turned_off():
    space = open_space(settings=Settings(data_key_cache_size=0))
    (rpps,) = register_physicians(space, 1)
    doctor = Actor(ActorKind.PROFESSIONAL, rpps)
    for n in range(3):
        patient = open_patient(space, _person(n))
        feeder(space, doctor, patient.id)
        document = _add(space, doctor, patient.id)
        assert space.record.read_content(doctor, document.id) == PDF
    assert len(space._core.keyring._cache) == 0
    small = open_space(settings=Settings(data_key_cache_size=2))
    (rpps,) = register_physicians(small, 1)
    for n in range(4):
        patient = open_patient(small, _person(n))
        feeder(small, doctor, patient.id)
        _add(small, doctor, patient.id)
    assert len(small._core.keyring._cache) <= 2
    small.close()
    assert len(small._core.keyring._cache) == 0
    with pytest.raises(ValueError):
        Settings(data_key_cache_size=-1)
    with pytest.raises(ValueError):
        Settings(data_key_cache_lifetime=timedelta(seconds=-1))


def _person(n):
    return identity(n + 10)


def test_keyset_pages_list_the_record_once_each_at_a_constant_cost():
    """Paging with ``after=page.next`` lists every visible document once, newest first, as
    ``documents_of`` does; each page after the first reads only about a page of rows."""
    space = open_space()
    doctor, patient_id = _with_record(space)
    me = Actor.patient(patient_id)
    for n in range(23):
        if n % 3 == 0:  # hidden from the holder until an announcement: not listed for them
            _add(space, doctor, patient_id, hidden_from_patient=True)
        _add(space, doctor, patient_id)
        if n % 5 == 0:  # one of the holder's own
            space.record.add_document(
                me,
                patient_id,
                b"mine",
                media_type="text/plain",
                type_code=Code("EXPPAT_2", "1.2.250.1.213.1.1.4.12"),
            )
    expected = [d.id for d in space.record.documents_of(me, patient_id)]
    page = space.record.search(me, patient_id, limit=4)
    seen = [d.id for d in page.documents]
    costs = []
    while page.next is not None:
        with statements_of(space) as statements:
            page = space.record.search(me, patient_id, limit=4, after=page.next)
        costs.append(len(statements))
        seen.extend(d.id for d in page.documents)
        assert page.total == len(expected)
    assert seen == expected
    assert len(expected) == 23 + 5
    # However deep the page: BEGIN, the facts, the cursor's row, one or two chunks of rows
    # (hidden documents make a chunk come up short), the audit trail's, COMMIT.
    assert max(costs) <= 6 + AUDIT_STATEMENTS, costs


@contextlib.contextmanager
def rows_built(monkeypatch):
    """The ids of the document rows built from what the database returns inside the block."""
    built: list[str] = []
    plain = SqlDocuments._row.__func__

    def counted(cls, r):
        row = plain(cls, r)
        built.append(row.id)
        return row

    with monkeypatch.context() as patch:
        patch.setattr(SqlDocuments, "_row", classmethod(counted))
        yield built


def test_the_first_page_costs_the_same_whatever_the_size_of_the_record(monkeypatch):
    """The first page counts its total over groups of versions, not row by row: the same
    statements, and the same rows built, for a record of 10 documents as for one of 60."""
    space = open_space()
    doctor, patient_id = _with_record(space)
    costs = []
    for size in (10, 60):
        while len(list(space.record.documents_of(doctor, patient_id))) < size:
            _add(space, doctor, patient_id)
        with rows_built(monkeypatch) as built, statements_of(space) as statements:
            page = space.record.search(doctor, patient_id, limit=5)
        assert page.total == size
        costs.append((len(statements), len(built)))
    # BEGIN, the facts, the grouping, the groups' rows, one chunk of the page, the audit
    # trail's, COMMIT; one row for the only group, and the page's five and one more.
    assert costs[0] == costs[1], costs
    assert costs[0][0] <= 6 + AUDIT_STATEMENTS, costs
    assert costs[0][1] <= 1 + 5 + 1, costs
    space.close()


def test_a_record_that_fits_in_its_first_page_is_read_once(monkeypatch):
    """When the first page reads the whole record, its total is what it kept: no grouping
    query, each row built once, and the total still leaves out what the reader may not see."""
    space = open_space()
    doctor, patient_id = _with_record(space)
    me = Actor.patient(patient_id)
    for n in range(6):
        _add(space, doctor, patient_id, hidden_from_patient=n % 3 == 0)
    with rows_built(monkeypatch) as built, statements_of(space) as statements:
        page = space.record.search(me, patient_id, limit=10)
    assert page.total == len(page.documents) == 4
    assert page.next is None
    # BEGIN, the facts, one chunk of rows (the whole record), the audit trail's, COMMIT.
    assert len(statements) <= 4 + AUDIT_STATEMENTS, statements
    assert not any("GROUP BY" in s for s in statements)
    assert len(built) == 6
    space.close()


@pytest.mark.parametrize(
    "token", ["", "x", "1.2", "1.2.3.4", "a.2.abc", "1.b.abc", "1.2.", "1.2.a/b", "-1.2.abc"]
)
def test_a_page_token_that_is_not_one_is_refused(token):
    space = open_space()
    patient = open_patient(space)
    me = Actor.patient(patient.id)
    with pytest.raises(ValidationError):
        space.record.search(me, patient.id, after=token)


def test_a_page_token_of_another_record_is_refused():
    space = open_space()
    (rpps,) = register_physicians(space, 1)
    doctor = Actor(ActorKind.PROFESSIONAL, rpps)
    first, second = open_patient(space, _person(1)), open_patient(space, _person(2))
    for patient in (first, second):
        feeder(space, doctor, patient.id)
        for _ in range(3):
            _add(space, doctor, patient.id)
    page = space.record.search(Actor.patient(first.id), first.id, limit=1)
    assert page.next is not None
    with pytest.raises(ValidationError):
        space.record.search(Actor.patient(second.id), second.id, after=page.next)
    with pytest.raises(ValidationError):
        space.record.search(Actor.patient(first.id), first.id, after=page.next, offset=1)


def test_a_batch_runs_four_statements_per_document(world):
    """In a batch, each document costs its unique-id check, its two inserts and its audit
    event; the transaction, the facts, the notice and the audit trail's seal are paid once
    (the trail's head is the one the writer remembers)."""
    space, doctor, patient_id = world
    _add(space, doctor, patient_id)  # the notification key is created, then read once
    _add(space, doctor, patient_id)
    batch = [NewDocument(patient_id, PDF, "application/pdf", type_code=CONSULTATION)] * 10
    with statements_of(space) as statements:
        result = space.record.add_documents(doctor, batch)
    assert len(result.added) == 10
    assert len(statements) == 4 * 10 + 5, statements


def test_a_batch_writes_two_pages_per_document(tmp_path):
    space = open_space(f"sqlite:///{tmp_path / 'wal.db'}")
    doctor, patient_id = _with_record(space)
    _add(space, doctor, patient_id)
    storage_of(space).scrub()  # type: ignore[attr-defined]
    batch = [NewDocument(patient_id, PDF, "application/pdf", type_code=CONSULTATION)] * 50
    space.record.add_documents(doctor, batch)
    frames = wal_frames_of(space)
    space.close()
    # About two pages per document (18 for a lone addition): the pages of the indexes and
    # of the trail's head are written once per commit, not once per document.
    assert frames <= 50 * 2, frames


def test_keyset_pages_with_filters_and_words_list_what_one_search_lists():
    space = open_space()
    doctor, patient_id = _with_record(space)
    me = Actor.patient(patient_id)
    for n in range(17):
        space.record.add_document(
            doctor, patient_id, PDF, media_type="application/pdf", type_code=CONSULTATION,
            title=f"Bilan {'lipidique' if n % 2 else 'sanguin'} {n}",
        )  # fmt: skip
    for text in ("lipidique", None):
        whole = space.record.search(me, patient_id, text=text, limit=500)
        page = space.record.search(me, patient_id, text=text, limit=3)
        seen = [d.id for d in page.documents]
        while page.next is not None:
            page = space.record.search(me, patient_id, text=text, limit=3, after=page.next)
            seen.extend(d.id for d in page.documents)
            assert page.total == whole.total
        assert seen == [d.id for d in whole.documents]


def test_a_space_wide_key_is_shared_only_once_a_transaction_that_read_it_committed():
    """Transactions that share a commit see each other's rows: a space-wide key read in one
    is offered to others only after that one committed, so a creation that rolls back (its
    whole group failing to commit) is never served from the cache."""
    space = open_space()
    keyring = Keyring(storage_of(space), lambda: space._core.keyring.provider)
    now = datetime.now(UTC)
    with storage_of(space).write() as tx:
        created = keyring.get_or_create(tx, "space:test", now)
    with storage_of(space).write() as tx:
        assert keyring.get(tx, "space:test") == created  # read from its row
        reader = tx
    assert not keyring._space_keys  # not offered yet: the reader has not said it committed
    keyring.committed(reader)
    assert keyring._space_keys["space:test"][0] == created
    with pytest.raises(RuntimeError), storage_of(space).write() as tx:
        keyring.get_or_create(tx, "space:rolled-back", now)
        raise RuntimeError
    with storage_of(space).write() as tx:
        fresh = keyring.get_or_create(tx, "space:rolled-back", now)  # created again
        assert tx.keys.get("space:rolled-back") is not None
    assert "space:rolled-back" not in keyring._space_keys
    assert fresh


def _reads_checkpoint(statements) -> bool:
    return any("FROM audit_checkpoints" in s for s in statements)


def test_the_newest_checkpoint_is_read_only_when_one_may_be_due(tmp_path):
    """The writer knows the newest committed checkpoint's time: until the interval since it
    has run out, no append reads it; then one does, and writes the checkpoint. A second
    space on the same file (another process) that did not see the first's checkpoint reads
    the newest one and writes none that is not due."""
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    settings = Settings(
        audit=AuditSettings(checkpoint_every=10**6, checkpoint_interval=timedelta(hours=1))
    )
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    space = open_space(url, clock, settings=settings)
    doctor, patient_id = _with_record(space)
    _add(space, doctor, patient_id)
    first = len(space.audit.checkpoints())
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)
    assert not _reads_checkpoint(statements)

    clock.advance(timedelta(minutes=59))
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)
    assert not _reads_checkpoint(statements)
    assert len(space.audit.checkpoints()) == first

    clock.advance(timedelta(minutes=2))
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)
    assert _reads_checkpoint(statements)
    assert len(space.audit.checkpoints()) == first + 1
    with statements_of(space) as statements:
        _add(space, doctor, patient_id)
    assert not _reads_checkpoint(statements)

    # Another writer whose knowledge is older: it reads the newest checkpoint, which is
    # recent, and writes none; the trail verifies.
    other = open_space(url, clock, keys=space._core.keyring.provider, settings=settings)
    other._core.checkpoints.newest_at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with statements_of(other) as statements:
        _add(other, doctor, patient_id)
    assert _reads_checkpoint(statements)
    assert len(space.audit.checkpoints()) == first + 1
    assert space.audit.verify().ok
    other.close()
    space.close()


def test_a_batch_of_invitations_makes_the_same_round_trips_whatever_its_size(world, monkeypatch):
    """A batch of invitations reads its accounts, representatives, identities and keys once
    each, then writes each table once (``executemany``): its calls to the database do not
    grow with its size. The statements SQLite runs still do, by four per person (the
    account, the code, the notice, the audit event: ``executemany`` runs its statement
    once per row), against 7 per person when a batch invited each in turn (the facts,
    the account, the representatives and the same four writes)."""
    space, _, _ = world
    operator = Actor.system("gate")
    people = space.accounts.register_patients(operator, [identity(n) for n in range(2, 62)])
    ids = [p.id for p in people]
    space.accounts.invite_many(operator, ids[:1])  # the space's code and notice keys now exist
    calls: list[str] = []
    real_exec, real_many = _Repo._exec, _Repo._exec_many

    def exec_one(repo, query, params=()):
        calls.append(query)
        return real_exec(repo, query, params)

    def exec_many(repo, query, params):
        calls.append(query)
        return real_many(repo, query, params)

    monkeypatch.setattr(_Repo, "_exec", exec_one)
    monkeypatch.setattr(_Repo, "_exec_many", exec_many)
    counted = {}
    for size, batch in ((10, ids[1:11]), (49, ids[11:])):
        calls.clear()
        with statements_of(space) as statements:
            results = space.accounts.invite_many(operator, batch)
        assert len(results) == size
        assert all(isinstance(r, Invitation) for r in results)
        counted[size] = (len([c for c in calls if not _audit(c)]), len(statements))
    ours, _ = counted[10]
    # 2 reads of the space's keys to see that they exist; then, preparing: the accounts,
    # the representatives, the identities, their keys, the space's two keys; writing: the
    # accounts again, then one update, one upsert, one insert.
    assert ours == 2 + 6 + 4, calls
    assert counted[49][0] == ours
    assert counted[49][1] - counted[10][1] == 4 * (49 - 10)
