"""The kill -9 harness: acknowledged writes survive a process crash.

A child process opens a space, adds documents in a loop and prints each document's id on
its standard output, flushed, only after :meth:`~monespace.record.RecordService.add_document`
returned: a printed line is an **acknowledged** write. The parent kills the child with
``SIGKILL`` at a random moment (while it opens the space, or between and inside commits),
then reopens the space and checks that

- every acknowledged document is there and reads back byte for byte;
- every document in the record, acknowledged or not (a commit that landed just before the
  kill), reads back as one of the contents the child wrote: nothing torn;
- the audit chain verifies, and on SQLite ``PRAGMA integrity_check`` answers ``ok``.

Contents are derived from the seed, the cycle and the write's number, so that the parent
knows every byte the child wrote without a second channel; the seed printed by the caller
replays the same contents and the same kill delays (the moments the kills land on still
depend on the machine's speed).

``tests/test_durability.py`` runs a few cycles on every run and ``benchmarks/
soak_durability.py`` runs thousands; the same :func:`run_kill_cycles` serves a plugin's
backend too, given its URL.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import attrs

import monespace

from ..accounts import Contact, PatientIdentity
from ..actors import Actor
from ..crypto import ENV_KEY, MasterKey, StaticKeyProvider
from ..identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from ..record import TRE_A05_TYPE, Code
from ._inspect import storage_of

__all__ = [
    "KillCycle",
    "KillReport",
    "ReadKill",
    "document_content",
    "prepare_space",
    "run_kill_cycles",
    "run_read_kill_cycles",
]

#: The first line of every content: the parent recognises a document the harness wrote.
_MAGIC = b"monespace-durability"
#: The type of every document the child adds: a patient's own document.
_TYPE = Code("EXPPAT_2", TRE_A05_TYPE)
#: What the child prints once the space is open, before its first write.
_READY = "ready"


def document_content(seed: int, cycle: int, number: int) -> bytes:
    """The bytes the child writes as document *number* of *cycle*: printable text (the
    document is ``text/plain``) of 1 to about 48 KiB, so that some contents span many
    database pages."""
    rng = random.Random(f"{seed}:{cycle}:{number}")
    size = rng.choice((1, 64, 1024, 4096, 36_000)) + rng.randrange(64)
    body = base64.b64encode(rng.randbytes(size))
    return b"%s %d %d %d\n%s\n" % (_MAGIC, seed, cycle, number, body)


def _parse_header(content: bytes) -> tuple[int, int, int] | None:
    """The (seed, cycle, number) a content names in its first line, ``None`` if it names none."""
    head, _, _ = content.partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 4 or parts[0] != _MAGIC:
        return None
    try:
        return int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def prepare_space(url: str, key: MasterKey) -> str:
    """Create the space at *url* with one open patient record; return the patient's id."""
    nir = NIR.build("F", 85, 3, "75", "056", 1)
    traits = INSTraits(
        birth_name="DURABLE",
        first_given_name="ALICE",
        birth_date=date(1985, 3, 14),
        sex="F",
        birth_place_code="75056",
    )
    person = PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=None))
    operator = Actor.system("durability")
    with _open(url, key) as space:
        patient = space.accounts.register_patient(operator, person)
        space.accounts.create_space(operator, patient.id)
        return patient.id


def _open(url: str, key: MasterKey) -> monespace.Space:
    return monespace.open(
        url,
        key_provider=StaticKeyProvider(key),
        load_entrypoints=False,
    )


# --- the child ------------------------------------------------------------------------------


def _child(url: str, patient_id: str, seed: int, cycle: int) -> None:
    """Add documents until killed, printing each acknowledged id (``<number> <id>``)."""
    key = MasterKey.from_base64(os.environ[ENV_KEY], source=ENV_KEY)
    with _open(url, key) as space:
        print(_READY, flush=True)
        me = Actor.patient(patient_id)
        number = 0
        while True:
            content = document_content(seed, cycle, number)
            document = space.record.add_document(
                me, patient_id, content, media_type="text/plain", type_code=_TYPE
            )
            print(number, document.id, flush=True)
            number += 1


def _read_child(url: str, patient_id: str, document_id: str, threads: int) -> None:
    """Read *document_id* from *threads* threads until killed, printing ``<number> read``
    once each read returned: an acknowledged read, whose audit event must have survived."""
    key = MasterKey.from_base64(os.environ[ENV_KEY], source=ENV_KEY)
    with _open(url, key) as space:
        print(_READY, flush=True)
        me = Actor.patient(patient_id)
        lock = threading.Lock()
        counter = [0]

        def reader() -> None:
            while True:
                space.record.read_content(me, document_id)
                with lock:
                    number = counter[0]
                    counter[0] += 1
                    print(number, "read", flush=True)

        workers = [threading.Thread(target=reader, daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


def _read_child_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("patient_id")
    parser.add_argument("document_id")
    parser.add_argument("threads", type=int)
    args = parser.parse_args(argv)
    _read_child(args.url, args.patient_id, args.document_id, args.threads)


def _child_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("patient_id")
    parser.add_argument("seed", type=int)
    parser.add_argument("cycle", type=int)
    args = parser.parse_args(argv)
    _child(args.url, args.patient_id, args.seed, args.cycle)


# --- the parent -----------------------------------------------------------------------------


@attrs.frozen
class KillCycle:
    """One kill and what the reopened space showed.

    :ivar cycle: the cycle's number.
    :ivar delay: seconds between the child's "ready" line (or its start, for an early kill)
        and the kill.
    :ivar early: the child was killed before it said it was ready (while opening the space).
    :ivar acknowledged: writes the child acknowledged in this cycle.
    :ivar lost: acknowledged documents missing or not byte-exact after the kill.
    :ivar torn: documents in the record whose content is not one the child wrote.
    :ivar audit_ok: the audit chain verified after the kill.
    :ivar integrity_ok: ``PRAGMA integrity_check`` said ``ok`` (``True`` for other backends).
    :ivar recovery_seconds: how long reopening the space took.
    """

    cycle: int
    delay: float
    early: bool
    acknowledged: int
    lost: tuple[str, ...]
    torn: tuple[str, ...]
    audit_ok: bool
    integrity_ok: bool
    recovery_seconds: float

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing torn, the audit chain and the database intact."""
        return not self.lost and not self.torn and self.audit_ok and self.integrity_ok


@attrs.frozen
class KillReport:
    """The cycles of one run and their totals."""

    seed: int
    cycles: tuple[KillCycle, ...]
    documents: int

    @property
    def acknowledged(self) -> int:
        """Acknowledged writes over all cycles."""
        return sum(c.acknowledged for c in self.cycles)

    @property
    def lost(self) -> int:
        """Acknowledged documents missing or changed after a kill (must be 0)."""
        return sum(len(c.lost) for c in self.cycles)

    @property
    def torn(self) -> int:
        """Documents whose content the child never wrote (must be 0)."""
        return sum(len(c.torn) for c in self.cycles)

    @property
    def ok(self) -> bool:
        """Every cycle passed."""
        return all(c.ok for c in self.cycles)

    def failures(self) -> list[KillCycle]:
        """The cycles that did not pass."""
        return [c for c in self.cycles if not c.ok]


def _child_env(key: MasterKey) -> dict[str, str]:
    """The child's environment: the master key, and this very monespace first on its path."""
    env = dict(os.environ)
    env[ENV_KEY] = base64.b64encode(key.material).decode()
    here = str(Path(monespace.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def _run_child(
    url: str,
    patient_id: str,
    seed: int,
    cycle: int,
    *,
    env: dict[str, str],
    delay: float,
    early: bool,
    reads: tuple[str, int] | None = None,
) -> tuple[float | None, dict[int, str]]:
    """Start a child, kill it *delay* seconds after it is ready (after it starts, when
    *early*), and return (seconds it took to be ready, number → acknowledged id). With
    *reads* (a document id, a number of threads), the child reads instead of writing."""
    if reads is None:
        command = [
            sys.executable, "-c",
            "from monespace.testing.durability import _child_main; _child_main()",
            url, patient_id, str(seed), str(cycle),
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-c",
            "from monespace.testing.durability import _read_child_main; _read_child_main()",
            url, patient_id, reads[0], str(reads[1]),
        ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: list[str] = []
    ready = threading.Event()
    ready_after: list[float] = []

    def read() -> None:
        # Only whole lines count: a line cut by the kill was never acknowledged.
        assert child.stdout is not None
        for raw in child.stdout:
            if not raw.endswith(b"\n"):
                break
            line = raw.decode().strip()
            if line == _READY:
                ready_after.append(time.perf_counter() - started)
                ready.set()
            else:
                lines.append(line)
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not early:
        ready.wait(timeout=120)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    reader.join()
    assert child.stderr is not None
    stderr = child.stderr.read()
    child.stderr.close()
    assert child.stdout is not None
    child.stdout.close()
    if child.returncode != -signal.SIGKILL:
        # The child stopped by itself: an error, not a kill. Its message says why.
        message = stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the child exited with {child.returncode}: {message}")
    acknowledged: dict[int, str] = {}
    for line in lines:
        number, document_id = line.split()
        acknowledged[int(number)] = document_id
    return (ready_after[0] if ready_after else None), acknowledged


def _integrity(url: str) -> bool:
    """``PRAGMA integrity_check`` on a SQLite file; other backends have their own checks."""
    if not url.startswith("sqlite:///"):
        return True
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError:
        return False  # "file is not a database", "database disk image is malformed"
    finally:
        connection.close()
    return rows == [("ok",)]


def _check(
    url: str,
    key: MasterKey,
    patient_id: str,
    *,
    seed: int,
    cycle: int,
    acknowledged: dict[int, str],
    known: dict[str, bytes],
    reread: bool,
) -> tuple[tuple[str, ...], tuple[str, ...], bool, bool, float]:
    """Reopen the space after a kill: (lost, torn, audit ok, integrity ok, recovery time).

    The documents of this cycle are read back; those of earlier cycles, read back after
    their own cycle, must still be listed, and are read again when *reread*.
    """
    integrity_ok = _integrity(url)
    started = time.perf_counter()
    space = _open(url, key)
    recovery = time.perf_counter() - started
    with space:
        me = Actor.patient(patient_id)
        mine = set(acknowledged.values())
        earlier = set(known)
        for number, document_id in acknowledged.items():
            known[document_id] = document_content(seed, cycle, number)
        present = {d.id for d in space.record.documents_of(me, patient_id)}
        lost = [i for i in (*mine, *earlier) if i not in present]
        torn: list[str] = []
        for document_id in sorted(present if reread else present - earlier):
            content = space.record.read_content(me, document_id)
            expected = known.get(document_id)
            if expected is None:
                # Committed but not acknowledged (killed before the print): it must still
                # be whole, one of the contents this cycle's child wrote.
                header = _parse_header(content)
                if header is None or header[:2] != (seed, cycle):
                    torn.append(document_id)
                    continue
                expected = document_content(*header)
                known[document_id] = expected
            if content != expected:
                (torn if document_id not in mine | earlier else lost).append(document_id)
        audit_ok = space.audit.verify().ok
    return tuple(lost), tuple(torn), audit_ok, integrity_ok, recovery


def _remove_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        name.unlink(missing_ok=True)


def run_kill_cycles(
    directory: Path,
    cycles: int,
    *,
    seed: int | None = None,
    url: str | None = None,
    window: float = 0.5,
    early_share: float = 0.1,
    cycles_per_space: int = 50,
    progress: Callable[[KillCycle], None] | None = None,
) -> KillReport:
    """Kill a writing child *cycles* times and check the space after each kill.

    :param directory: where the SQLite files go (when *url* is not given).
    :param seed: replays a run (a random one by default; the report carries it).
    :param url: another backend's URL, used for one space whatever *cycles_per_space*
        (its store must be empty at the start).
    :param window: the kill lands uniformly within this many seconds of the child's
        "ready" line, that is among its writes.
    :param early_share: the share of kills aimed at the child's start instead (importing,
        opening the space, checking the schema), uniformly within the time the last child
        took to be ready.
    :param cycles_per_space: a new SQLite file after this many cycles, so that the checks
        after each kill (the audit chain, every document listed) stay short in long runs;
        the last cycle of each space reads every document back again, and the files of a
        space that passed are removed when the next one starts.
    :param progress: called after each cycle.
    """
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    key = MasterKey(random.Random(f"key:{seed}").randbytes(32))
    env = _child_env(key)
    known: dict[str, bytes] = {}
    documents = 0
    startup = 0.5
    done: list[KillCycle] = []
    space_url = url or ""
    patient_id = ""
    for cycle in range(cycles):
        first, last = cycle % cycles_per_space == 0, (cycle + 1) % cycles_per_space == 0
        if cycle == 0 or (first and url is None):
            if cycle and url is None and all(c.ok for c in done):
                _remove_sqlite(space_url)  # a space that passed; a failed one is kept
            space_url = url or f"sqlite:///{directory / f'durability-{cycle}.db'}"
            patient_id = prepare_space(space_url, key)
            documents += len(known)
            known = {}
        early = rng.random() < early_share
        delay = rng.uniform(0.0, startup if early else window)
        ready_after, acknowledged = _run_child(
            space_url, patient_id, seed, cycle, env=env, delay=delay, early=early
        )
        startup = ready_after or startup
        lost, torn, audit_ok, integrity_ok, recovery = _check(
            space_url, key, patient_id, seed=seed, cycle=cycle, acknowledged=acknowledged,
            known=known, reread=last or cycle == cycles - 1,
        )  # fmt: skip
        result = KillCycle(
            cycle, delay, early, len(acknowledged), lost, torn, audit_ok, integrity_ok, recovery
        )
        done.append(result)
        if progress is not None:
            progress(result)
    return KillReport(seed, tuple(done), documents + len(known))


@attrs.frozen
class ReadKill:
    """One kill of a reading child: how many reads it acknowledged (returned), and how many
    read events the trail gained meanwhile; ``ok`` when none was returned unaudited."""

    cycle: int
    delay: float
    acknowledged: int
    audited: int
    audit_ok: bool

    @property
    def ok(self) -> bool:
        """Every returned read has its event, and the chain verifies."""
        return self.audited >= self.acknowledged and self.audit_ok


def run_read_kill_cycles(
    directory: Path, cycles: int, *, seed: int | None = None, threads: int = 4, window: float = 0.5
) -> tuple[int, tuple[ReadKill, ...]]:
    """Kill a child reading one document from *threads* threads, *cycles* times: after each
    kill, the audit trail must hold at least as many read events as the reads the child
    returned (a read is returned only once its audit event is durable). Returns the seed
    and one :class:`ReadKill` per cycle.

    .. versionadded:: 0.2
    """
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    key = MasterKey(random.Random(f"key:{seed}").randbytes(32))
    env = _child_env(key)
    url = f"sqlite:///{directory / 'reads.db'}"
    patient_id = prepare_space(url, key)
    me = Actor.patient(patient_id)
    with _open(url, key) as space:
        document_id = space.record.add_document(
            me, patient_id, document_content(seed, 0, 0), media_type="text/plain", type_code=_TYPE
        ).id
    done: list[ReadKill] = []
    for cycle in range(cycles):
        before = _read_events(url, key, patient_id, document_id)
        delay = rng.uniform(0.05, window)
        _, acknowledged = _run_child(
            url, patient_id, seed, cycle, env=env, delay=delay, early=False,
            reads=(document_id, threads),
        )  # fmt: skip
        after = _read_events(url, key, patient_id, document_id)
        with _open(url, key) as space:
            audit_ok = space.audit.verify().ok
        done.append(ReadKill(cycle, delay, len(acknowledged), after - before, audit_ok))
    return seed, tuple(done)


def _read_events(url: str, key: MasterKey, patient_id: str, document_id: str) -> int:
    """How many ``document.read`` events about *document_id* the trail holds."""
    count, after = 0, 0
    with _open(url, key) as space, storage_of(space).read() as tx:
        while rows := tx.audit.scan(after_seq=after, limit=5000):
            count += sum(
                1
                for r in rows
                if r.action == "document.read"
                and r.target_id == document_id
                and r.patient_id == patient_id
                and r.outcome == "success"
            )
            after = rows[-1].seq
    return count


if __name__ == "__main__":  # pragma: no cover - the child's entry point
    _child_main()
