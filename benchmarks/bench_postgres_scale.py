"""PostgreSQL at scale: concurrent writer processes, and the sharded audit chain.

Run ``python benchmarks/bench_postgres_scale.py`` (about a minute; ``--quick`` for a noisier
run of about 20 seconds; ``--server URL`` for another server than
``postgresql://postgres@127.0.0.1/test``). Each figure is measured in the same run as its
baseline, on a fresh schema of its own (dropped at the end):

- documents added per second (4 KiB, a patient's own PDF, one transaction each) through
  ``space.record.add_document`` by 1, 2 and 4 writer processes, each for its own patient,
  beside raw psycopg inserts of the same bytes (one autocommit ``INSERT`` each) by as many
  processes;
- audit events appended per second (one per transaction, through the unit of work) by 4
  processes for 4 different patients, on a trail of 16 patient shards (decision 0015) and on
  a single chain (``?audit_shards=0``).

Every process sets up (opens the space, does one operation), waits for the others at a
barrier, then runs for the same window; the rate is the sum of their operations over it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import time
from collections.abc import Callable
from datetime import date
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import psycopg
from psycopg import sql

import monespace
from monespace import Actor
from monespace._ids import new_id
from monespace.access import Action, Resource
from monespace.accounts import PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.record import TRE_A05_TYPE, Code

SERVER = "postgresql://postgres@127.0.0.1/test"
PAYLOAD = b"%PDF-1.4\n" + bytes(4096 - 9)
OWN = Code("EXPPAT_2", TRE_A05_TYPE)
RULE = "patient_owns_space"


def _identity(n: int) -> PatientIdentity:
    nir = NIR.build("F", 80, 5, "75", 112, n)
    traits = INSTraits(
        birth_name="DURAND", first_given_name="MARIE", birth_date=date(1980, 5, 12), sex="F"
    )
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits))


def _open(url: str, key: str) -> monespace.Space:
    return monespace.open(url, key_provider=StaticKeyProvider(MasterKey.from_base64(key)))


def _register(url: str, key: str, n: int) -> str:
    with _open(url, key) as space:
        operator = Actor.system("bench")
        patient_id = space.accounts.register_patient(operator, _identity(n)).id
        space.accounts.create_space(operator, patient_id)
        return patient_id


# --- the work of one process: set up, wait for the others, run for *window* seconds --------


def _until(ready: Barrier, window: float, step: Callable[[], None]) -> int:
    step()  # warm: connections open, caches filled
    ready.wait()
    end = time.perf_counter() + window
    done = 0
    while time.perf_counter() < end:
        step()
        done += 1
    return done


def _add_documents(ready: Barrier, window: float, url: str, key: str, patient_id: str) -> int:
    with _open(url, key) as space:
        actor = Actor.patient(patient_id)

        def step() -> None:
            space.record.add_document(
                actor, patient_id, PAYLOAD, media_type="application/pdf", type_code=OWN
            )

        return _until(ready, window, step)


def _raw_inserts(ready: Barrier, window: float, url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        query = sql.SQL("INSERT INTO {} (patient_id, data) VALUES (%s, %s)").format(
            sql.Identifier(table)
        )
        patient_id = new_id()

        def step() -> None:
            conn.execute(query, (patient_id, PAYLOAD))

        return _until(ready, window, step)


def _audit_appends(ready: Barrier, window: float, url: str, key: str, patient_id: str) -> int:
    with _open(url, key) as space:
        actor = Actor.patient(patient_id)
        core = space._core  # the unit of work itself: one audit event per transaction

        def step() -> None:
            with core.unit() as unit:
                resource = Resource(patient_id, "content", new_id())
                unit.record(actor, Action.CONTENT_READ, resource, RULE)

        return _until(ready, window, step)


def _child(target: Callable[..., int], out: Queue, *args: object) -> None:  # type: ignore[type-arg]
    out.put(target(*args))


def _run(target: Callable[..., int], jobs: list[tuple[object, ...]], window: float) -> float:
    """Operations per second of *jobs* (one process each), released together once every
    one is set up."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(jobs))
    out = context.Queue()
    workers = [
        context.Process(target=_child, args=(target, out, ready, window, *job)) for job in jobs
    ]
    for w in workers:
        w.start()
    total = sum(out.get(timeout=window + 300) for _ in workers)
    for w in workers:
        w.join()
    return total / window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    window = 1.5 if args.quick else 5.0
    key = MasterKey.generate().to_base64()
    schemas: list[str] = []

    def url(**params: str) -> str:
        schema = f"bench_{secrets.token_hex(4)}"
        schemas.append(schema)
        query = "&".join([f"schema={schema}", *(f"{k}={v}" for k, v in params.items())])
        return f"{args.server}{'&' if '?' in args.server else '?'}{query}"

    rows: list[tuple[str, str, str, str]] = []
    try:
        for processes in (1, 2, 4):
            space_url = url()
            patients = [_register(space_url, key, n) for n in range(1, processes + 1)]
            ours = _run(_add_documents, [(space_url, key, p) for p in patients], window)
            table = f"raw_{secrets.token_hex(4)}"
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (id BIGSERIAL PRIMARY KEY, patient_id TEXT, data BYTEA)"
                    ).format(sql.Identifier(table))
                )
            try:
                raw = _run(_raw_inserts, [(args.server, table)] * processes, window)
            finally:
                with psycopg.connect(args.server, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
            rows.append(
                (
                    f"add_document, {processes} process(es)",
                    f"{ours:,.0f}/s",
                    f"{raw:,.0f}/s",
                    f"{ours / raw:.2f}x",
                )
            )
        rates = {}
        for label, params in (("16 shards", {}), ("single chain", {"audit_shards": "0"})):
            space_url = url(**params)
            patients = [_register(space_url, key, n) for n in range(1, 5)]
            rates[label] = _run(_audit_appends, [(space_url, key, p) for p in patients], window)
        rows.append(
            (
                "audit appends, 4 processes",
                f"{rates['16 shards']:,.0f}/s (sharded)",
                f"{rates['single chain']:,.0f}/s (single chain)",
                f"{rates['16 shards'] / rates['single chain']:.2f}x",
            )
        )
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
    print(f"| figure | monespace | baseline | ratio |  (window {window} s per figure)")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
