"""Group commit on SQLite: concurrent write transactions share one commit (one fsync), each
caller returns only once its own changes are committed, and a failing caller loses only its
own statements."""

from __future__ import annotations

import threading

from monespace import Actor, ActorKind
from monespace.errors import ConflictError
from monespace.record import LOINC, Code
from monespace.storage import SQLiteStorage
from monespace.testing import make_patient_row, storage_of

from .helpers import feeder, open_patient, open_space, register_physicians


def _committed(path) -> set[str]:
    reader = SQLiteStorage(path)
    try:
        with reader.read() as tx:
            return set(tx.patients.ids(limit=100_000))
    finally:
        reader.close()


def test_concurrent_writers_share_commits_and_lose_nothing(tmp_path):
    path = tmp_path / "group.db"
    storage = SQLiteStorage(path)
    commits: list[str] = []
    storage._writer.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    threads, per_thread = 8, 40
    returned: list[list[str]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                row = make_patient_row(t * 1000 + i)
                with storage.write() as tx:
                    tx.patients.add(row)
                # Returned: it must be committed, whoever committed it.
                returned[t].append(row.id)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    storage._writer.set_trace_callback(None)
    storage.close()
    assert failures == []
    expected = {pid for ids in returned for pid in ids}
    assert len(expected) == threads * per_thread
    assert _committed(path) >= expected
    assert commits  # every transaction returned committed, grouped or not


def test_writers_waiting_for_a_commit_share_the_next_one(tmp_path):
    """While a commit is in progress (held here), the next writers run their statements
    and wait; one COMMIT then serves them all."""
    path = tmp_path / "group.db"
    storage = SQLiteStorage(path)
    seen: list[str] = []
    storage._writer.set_trace_callback(seen.append)
    writers = 5
    done = threading.Barrier(writers + 1)
    returned: list[int] = []

    def writer(n: int) -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(n))
        returned.append(n)
        done.wait(10)

    with storage._commit_lock:  # a commit in progress
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for _ in range(1000):
            if storage._group.members == writers:
                break
            threading.Event().wait(0.01)
        assert storage._group.members == writers
        assert _committed(path) == set()  # nothing committed yet
        assert returned == []  # so no writer has returned
    done.wait(10)
    for t in threads:
        t.join()
    storage._writer.set_trace_callback(None)
    storage.close()
    assert seen.count("COMMIT") == 1
    assert seen.count("BEGIN IMMEDIATE") == 1
    assert _committed(path) == {f"p{n:06d}" for n in range(writers)}


def test_a_failing_member_of_a_group_loses_only_its_own_statements(tmp_path):
    path = tmp_path / "group.db"
    storage = SQLiteStorage(path)
    with storage.write() as tx:
        tx.patients.add(make_patient_row(1))
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(2))
            inside.set()
            release.wait(5)

    # The first writer holds the write lock; the others queue behind it and form a group
    # with it or the next one, whatever the order.
    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(5)
    errors: list[BaseException] = []

    def failing() -> None:
        try:
            with storage.write() as tx:
                tx.patients.add(make_patient_row(3))
                tx.patients.add(make_patient_row(1))  # a conflict: this caller fails
        except ConflictError as exc:
            errors.append(exc)

    def fine() -> None:
        with storage.write() as tx:
            tx.patients.add(make_patient_row(4))

    others = [threading.Thread(target=failing), threading.Thread(target=fine)]
    for t in others:
        t.start()
    release.set()
    for t in [holder, *others]:
        t.join()
    storage.close()
    assert len(errors) == 1
    assert _committed(path) == {"p000001", "p000002", "p000004"}


def test_reads_are_audited_under_concurrency(tmp_path):
    """Concurrent reads through a space: every read returned has its audit event, and the
    chain verifies."""
    space = open_space(f"sqlite:///{tmp_path / 'reads.db'}")
    (rpps,) = register_physicians(space, 1)
    patient = open_patient(space)
    doctor = Actor(ActorKind.PROFESSIONAL, rpps)
    feeder(space, doctor, patient.id)
    document = space.record.add_document(
        doctor, patient.id, b"%PDF-1.7\n" + bytes(100), media_type="application/pdf",
        type_code=Code("11488-4", LOINC),
    )  # fmt: skip
    reads = 0
    lock = threading.Lock()

    def reader() -> None:
        nonlocal reads
        for _ in range(15):
            space.record.read_content(doctor, document.id)
            with lock:
                reads += 1

    workers = [threading.Thread(target=reader) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    history = space.audit.verify()
    assert history.ok
    with storage_of(space).read() as tx:
        read_events = [
            e for e in tx.audit.scan(limit=100_000)
            if e.action == "document.read" and e.target_id == document.id
        ]  # fmt: skip
    assert len(read_events) == reads == 90
    space.close()


def test_alone_a_write_commits_at_once(tmp_path):
    storage = SQLiteStorage(tmp_path / "alone.db")
    seen: list[str] = []
    storage._writer.set_trace_callback(seen.append)
    with storage.write() as tx:
        tx.patients.add(make_patient_row(1))
    storage._writer.set_trace_callback(None)
    assert seen[0] == "BEGIN IMMEDIATE"
    assert seen[-1] == "COMMIT"
    assert not any("SAVEPOINT" in s for s in seen)
    storage.close()
