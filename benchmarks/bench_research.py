"""Benchmark of research extracts (issue 15): a population to pandas DataFrames.

Run ``python benchmarks/bench_research.py`` (100,000 people: about 12 minutes, most of it
the monespace extracts; ``--quick``: 5,000 people, about a minute; ``--people N`` for any
size; ``--profile`` adds a ``cProfile`` of one extract). The population is the synthetic
one of ``monespace.synth``, registered with ``space.accounts.register_patients``, each
space opened with ``create_space`` and given one weight measure, 500 people per
transaction, on a SQLite file; the seeding is not timed (its duration is printed).

Three sides, their repeats interleaved (one warm-up run each first), each a rate in
people per second over the whole population:

- **monespace**: ``space.research.extract(operator, study)`` then
  ``monespace.research.to_pandas(extract)``. Per person: the policy's facts (is the space
  open?) and the access settings (did they object?), the sealed identity read and
  decrypted (data key unwrapped with the master key, then AES-256-GCM) and rebuilt as a
  validated ``PatientIdentity``, the age band, sex and birth département derived, the keyed
  pseudonym (HMAC-SHA256 under the study's HKDF key), a policy decision and an audit event
  carrying the study's purpose; the person's documents, measures (each decrypted) and
  vaccinations read, and their prevention reminders evaluated (the 2025 calendar's rules);
  then small groups generalised or suppressed (k = 10), the study-wide audit event, one
  commit, and the five tables built as Arrow tables then pandas DataFrames.
- **raw + decryption** (the like-for-like baseline): one SQL query on the same file for the
  same people (open spaces, no objection: a join of ``patients``, ``accounts``,
  ``access_settings`` and ``data_keys``) and one for their measures, through ``sqlite3``;
  per person the data key unwrapped and the identity decrypted with ``cryptography``'s
  ``AESGCM`` directly (same associated data), the JSON parsed with ``json.loads``, the same
  age band, sex and département and the same pseudonym computed; each measure decrypted the
  same way; then two ``pandas.DataFrame`` (people; measures). It is checked, once, to give
  the people and measures monespace gives (before monespace's small-group generalisation).
  It does not ask the policy, write audit events or commit, evaluate reminders, read
  documents or vaccinations, apply k-anonymity, validate the identity, or go through Arrow.
- **raw SQL only** (the floor the issue names): ``pandas.read_sql_query`` of the same two
  queries: the same rows, their sealed columns left as bytes. No raw query can read the
  age, sex or département of a person: the identity is stored encrypted.

The database lives in a temporary directory (``--dir`` to choose the disk), removed at the
end. Each monespace extract adds one audit event per person to the trail, so the database
grows by about a population's worth of events per repeat.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import hashlib
import hmac
import json
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import monespace
from _common import Figure, Rates, Report, describe_machine, parser, print_machine
from _common import print_table as show
from monespace import Actor, ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.record import MEASURE_SPECS
from monespace.research import GENERALISED, Study, study_key, to_pandas
from monespace.synth import synthetic_identities

NOW = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
OPERATOR = Actor.system("bench-research")
STUDY = Study("bench-2026", "Mesures et couverture vaccinale", "MR-004 bench 2026-001")
BATCH = 500

# The people an extract reads: spaces open (created or active, as the policy's facts say)
# and no objection to research. Sorted by id, as the library pages through them.
PEOPLE_SQL = """
SELECT p.id, p.sealed_identity, k.master_key_id, k.wrapped
FROM patients AS p
JOIN accounts AS a ON a.patient_id = p.id
JOIN data_keys AS k ON k.patient_id = p.id
LEFT JOIN access_settings AS s ON s.patient_id = p.id
WHERE a.state IN ('created', 'active') AND COALESCE(s.object_research, 0) = 0
ORDER BY p.id
"""
# Their measures, in the same order.
MEASURES_SQL = """
SELECT m.patient_id, m.id, m.kind, m.at, m.sealed
FROM measures AS m
JOIN accounts AS a ON a.patient_id = m.patient_id
LEFT JOIN access_settings AS s ON s.patient_id = m.patient_id
WHERE a.state IN ('created', 'active') AND COALESCE(s.object_research, 0) = 0
ORDER BY m.patient_id, m.kind, m.at
"""


def _aad(kind: str, owner: str, object_id: str) -> bytes:
    # The associated data monespace binds each ciphertext to: length-prefixed parts.
    parts = (b"monespace/v1", kind.encode(), owner.encode(), object_id.encode())
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    # The sealed format: a version byte, a 12-byte nonce, then ciphertext and tag.
    return AESGCM(key).decrypt(sealed[1:13], sealed[13:], aad)


def _age_band(born: dt.date, at: dt.date, width: int) -> str:
    # Completed years, bands of *width*, 100 and more together (as monespace.research).
    age = max(at.year - born.year - ((at.month, at.day) < (born.month, born.day)), 0)
    if age >= 100:
        return "100+"
    low = age - age % width
    return f"{low}-{low + width - 1}" if width > 1 else str(low)


def _departement(place: str | None, nir: str) -> str:
    # Birth place's COG code first (as monespace.research.departement), else the NIR's.
    if place:
        code = place.upper()
        if code.startswith("99"):
            return "99"
        return code[:3] if code[:2] in ("97", "98") else code[:2]
    return nir[5:8] if nir[5:7] in ("97", "98") else nir[5:7]


def seed(space: monespace.Space, people: int) -> float:
    """Register *people*, open their spaces and give each one weight measure; the seconds
    it took."""
    started = time.perf_counter()
    identities = synthetic_identities(people, seed=2026, today=NOW.date())
    ids = [p.id for p in space.accounts.register_patients(OPERATOR, identities, batch=BATCH)]
    for start in range(0, len(ids), BATCH):
        with space.transaction():
            for n, patient_id in enumerate(ids[start : start + BATCH], start):
                space.accounts.create_space(OPERATOR, patient_id)
                kilos = 50.0 + n % 400 / 10
                space.measures.add(Actor.patient(patient_id), patient_id, "weight", kilos)
        print(f"  seeded {min(start + BATCH, len(ids)):,} people", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - started


def raw_decrypting(path: Path, master: MasterKey) -> Callable[[], dict[str, pd.DataFrame]]:
    """The like-for-like baseline: SQL, then the library's derivations done by hand."""
    key = study_key(master.material, STUDY.id)
    specs = {str(kind): (spec.code.code, spec.unit) for kind, spec in MEASURE_SPECS.items()}
    masters = {master.id: AESGCM(master.material)}
    day = NOW.date()

    def run() -> dict[str, pd.DataFrame]:
        with sqlite3.connect(path) as db:
            keys: dict[str, tuple[bytes, str]] = {}
            people: dict[str, list[str]] = {c: [] for c in ("pseudonym", "age_band", "sex")}
            people["departement"] = []
            for patient_id, sealed, master_id, wrapped in db.execute(PEOPLE_SQL):
                wrap_aad = _aad("data-key", patient_id, master_id)
                data_key = masters[master_id].decrypt(wrapped[1:13], wrapped[13:], wrap_aad)
                ins = json.loads(_open(data_key, sealed, _aad("identity", patient_id, patient_id)))[
                    "ins"
                ]
                traits = ins["traits"]
                alias = hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:32]
                keys[patient_id] = (data_key, alias)
                people["pseudonym"].append(alias)
                people["age_band"].append(
                    _age_band(
                        dt.date.fromisoformat(traits["birth_date"]), day, STUDY.age_band_years
                    )
                )
                people["sex"].append(traits["sex"])
                people["departement"].append(
                    _departement(traits.get("birth_place_code"), ins["matricule"])
                )
            measures: dict[str, list[Any]] = {
                c: [] for c in ("pseudonym", "loinc", "unit", "value", "second", "measured_on")
            }
            for patient_id, measure_id, kind, at, sealed in db.execute(MEASURES_SQL):
                data_key, alias = keys[patient_id]
                payload = json.loads(
                    _open(data_key, sealed, _aad("measure", patient_id, measure_id))
                )
                loinc, unit = specs[kind]
                measures["pseudonym"].append(alias)
                measures["loinc"].append(loinc)
                measures["unit"].append(unit)
                measures["value"].append(float(payload["value"]))
                measures["second"].append(payload.get("second"))
                measures["measured_on"].append(dt.date.fromisoformat(at[:10]))
        frames = {"people": pd.DataFrame(people), "measures": pd.DataFrame(measures)}
        frames["measures"]["measured_on"] = frames["measures"]["measured_on"].astype(
            "datetime64[s]"
        )
        return frames

    return run


def raw_sql(path: Path) -> Callable[[], dict[str, pd.DataFrame]]:
    """The floor: the same two queries into pandas, sealed columns left as bytes."""

    def run() -> dict[str, pd.DataFrame]:
        with sqlite3.connect(path) as db:
            return {
                "people": pd.read_sql_query(PEOPLE_SQL, db),
                "measures": pd.read_sql_query(MEASURES_SQL, db),
            }

    return run


def check(ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame]) -> None:
    """The decrypting baseline computes what monespace extracts (before its small-group
    generalisation, which only replaces values by ``*``)."""
    mine = ours["people"].set_index("pseudonym").sort_index()
    raw = theirs["people"].set_index("pseudonym").sort_index()
    # People alone in too small a group are suppressed by monespace, not by the baseline.
    assert set(mine.index) <= set(raw.index), "not the same people"
    raw = raw.loc[mine.index]
    for column in ("age_band", "departement"):
        kept = mine[column] != GENERALISED
        assert (mine[column][kept] == raw[column][kept]).all(), f"{column} differs"
    assert (mine["sex"] == raw["sex"]).all(), "sex differs"
    columns = ["pseudonym", "loinc", "unit", "value", "measured_on"]
    left = ours["measures"][columns].sort_values(columns).reset_index(drop=True)
    right = theirs["measures"][columns]
    right = right[right["pseudonym"].isin(mine.index)]
    right = right.sort_values(columns).reset_index(drop=True)
    assert left.equals(right), "measures differ"


def interleave(
    sides: dict[str, Callable[[], object]], repeat: int, per_run: int
) -> dict[str, Rates]:
    """One warm-up run of each side, then *repeat* rounds running each side once in turn;
    rates in people per second."""
    for name, run in sides.items():
        started = time.perf_counter()
        run()
        print(f"  warm-up {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeat):
        for name, run in sides.items():
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
            samples[name].append(per_run / elapsed)
            print(f"  round {round_ + 1} {name}: {elapsed:.2f} s", file=sys.stderr)
    return {name: Rates(values) for name, values in samples.items()}


def profile(extract: Callable[[], object], top: int = 25) -> None:
    """Where one extract's time goes: cProfile's functions by cumulative time, then by own
    time."""
    profiler = cProfile.Profile()
    profiler.enable()
    extract()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--people", type=int, help="population size (default 100,000; quick 5,000)")
    p.add_argument("--repeat", type=int, help="measured rounds (default 3; quick 3)")
    p.add_argument("--profile", action="store_true", help="profile one more extract")
    args = p.parse_args()
    people = args.people or (5_000 if args.quick else 100_000)
    repeat = args.repeat or 3
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(work.parent, packages=("monespace", "pandas", "pyarrow"))
    report = Report(
        script="benchmarks/bench_research.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={"people": people, "repeats": repeat, "k": STUDY.k, "batch": BATCH},
    )
    print(f"monespace research benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    master = MasterKey.generate()
    path = work / "research.db"
    started = time.perf_counter()
    try:
        with monespace.open(
            f"sqlite:///{path}",
            clock=ManualClock(NOW),
            key_provider=StaticKeyProvider(master),
            load_entrypoints=False,
        ) as space:
            seeded = seed(space, people)
            print(f"seeded {people:,} people in {seeded:.0f} s (not timed)", file=sys.stderr)

            def ours() -> dict[str, pd.DataFrame]:
                return to_pandas(space.research.extract(OPERATOR, STUDY))

            decrypting = raw_decrypting(path, master)
            first = ours()
            check(first, decrypting())
            rates = interleave(
                {"monespace": ours, "raw + decryption": decrypting, "raw SQL": raw_sql(path)},
                repeat,
                people,
            )
            if args.profile:
                profile(ours)
        size = path.stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = len(first["measures"])
    generalised = int((first["people"]["departement"] == GENERALISED).sum())
    label = f"extract + to_pandas ({people:,} people)"
    report.figures = [
        Figure(
            label,
            "people/s",
            rates["monespace"],
            rates["raw + decryption"],
            "sqlite3 query + AES-GCM decryption (cryptography) + same derivations + DataFrame",
            note=f"{rows:,} measure rows; {generalised:,} départements generalised (k = 10)",
        ),
        Figure(
            label,
            "people/s",
            rates["monespace"],
            rates["raw SQL"],
            "pandas.read_sql_query of the same rows, sealed columns as bytes (no decryption)",
        ),
    ]
    report.extra = {"seed_seconds": seeded, "database_bytes_at_end": size}
    show(report.figures, title="monespace against raw baselines", markdown=args.markdown)
    print(f"\nseeding {seeded:.0f} s; database {size / 1e6:.0f} MB at the end")
    print(f"measured in {time.perf_counter() - started - seeded:.0f} s after seeding")
    report.save(args.json)


if __name__ == "__main__":
    main()
