"""memory:// against a SQLite file on one small service workload.

Registers and opens N spaces, reads each person back, lists the history of some of them and
verifies the audit trail, through the public API only (so the same script measures any
version of monespace). Written for ADR 0011 (memory:// is SQLite in memory)::

    python benchmarks/bench_storage_backends.py --people 300 --repeat 3

Prints one line per backend: the best wall-clock time of *repeat* runs for each phase.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import monespace
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits

OPERATOR = Actor.system("bench")


def _identity(n: int) -> PatientIdentity:
    traits = INSTraits(
        birth_name="DUPONT",
        first_given_name="MARIE",
        birth_date=date(1985, 3, 14),
        sex="F",
        birth_place_code="75056",
    )
    nir = NIR.build("F", 85, 3, "75", "056", n)
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=f"p{n}@example.org"))


def _run(url: str, people: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    provider = StaticKeyProvider(MasterKey.generate())
    with monespace.open(url, key_provider=provider, load_entrypoints=False) as space:

        def phase(name: str, work: Callable[[], object]) -> object:
            start = time.perf_counter()
            result = work()
            timings[name] = time.perf_counter() - start
            return result

        def register() -> list[str]:
            ids = []
            for n in range(1, people + 1):
                patient = space.accounts.register_patient(OPERATOR, _identity(n))
                space.accounts.create_space(OPERATOR, patient.id)
                ids.append(patient.id)
            return ids

        ids = phase("register+open", register)
        assert isinstance(ids, list)
        phase("read", lambda: [space.accounts.get_patient(OPERATOR, pid) for pid in ids])
        phase(
            "history",
            lambda: [space.access.history(Actor.patient(pid), pid) for pid in ids[:50]],
        )
        report = phase("verify", space.audit.verify)
        assert getattr(report, "ok", False)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"monespace from {Path(monespace.__file__).parent}, {args.people} people")
    with tempfile.TemporaryDirectory() as work:
        backends = {"memory://": lambda i: "memory://"}
        backends["sqlite file"] = lambda i: f"sqlite:///{os.path.join(work, f'b{i}.db')}"
        for label, url in backends.items():
            best: dict[str, float] = {}
            for i in range(args.repeat):
                for name, seconds in _run(url(i), args.people).items():
                    best[name] = min(best.get(name, seconds), seconds)
            cells = "  ".join(f"{name} {seconds * 1000:8.1f} ms" for name, seconds in best.items())
            print(f"{label:12s} {cells}")


if __name__ == "__main__":
    main()
