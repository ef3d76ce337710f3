"""Benchmark of referenced apps' access: reads through an OAuth access token, and issuance.

Run ``python benchmarks/bench_app_access.py`` (about 20 seconds) or ``--quick``. On a real
SQLite file, in process (no HTTP: ``bench_server.py`` measures the web stack):

- **app read through a bearer token**: ``space.oauth.actor(token)`` (the keyed hash of the
  token, its row) then ``space.measures.series(app, patient, "weight")``, in which the policy
  looks up the app's référencement and the patient's consent and decides; beside it, in the
  same run and alternated with it, **the same read by the patient** (``Actor.patient``),
  the read of their own session. Both append an audit event (a durable commit). The ratio
  is the cost of the token and of the app's facts.
- **token issuance**: ``space.oauth.refresh()`` (a refresh token rotated: two new tokens,
  hashed and stored, the old one marked, an audit event, one durable commit) against a raw
  baseline: two ``secrets.token_urlsafe(32)``, their HMAC-SHA256, and two ``INSERT`` plus
  an ``UPDATE`` in one ``sqlite3`` transaction on a file with the same pragmas (WAL,
  ``synchronous=FULL``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import monespace
from _common import Figure, Report, compare, describe_machine, parser, print_machine
from _common import print_table as show
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity
from monespace.catalogue import (
    Assessment,
    Dossier,
    ExchangeTier,
    Purpose,
    Scope,
    load_referentiel,
    pkce_challenge,
)
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OPERATOR = Actor.system("bench")
REDIRECT = "https://poids.example/callback"


def _identity(n: int) -> PatientIdentity:
    birth = dt.date(1980, 5, 4)
    nir = NIR.build("F", 80, 5, "75", "056", n)
    traits = INSTraits(
        birth_name="BENCH",
        first_given_name="CAMILLE",
        birth_date=birth,
        sex="F",
        birth_place_code="75056",
    )
    return PatientIdentity(INS(nir, INS_NIR_TEST_OID, traits), Contact(email=f"p{n}@example.org"))


def _referenced(space: monespace.Space) -> str:
    """A weight tracker taken through the référencement; its client id."""
    criteria = load_referentiel().criteria
    dossier = Dossier(
        publisher="Balance SAS",
        service="Suivi Poids",
        category="Suivi du poids",
        purposes={Purpose.PREVENTION},
        exchange_tier=ExchangeTier.MESURES,
        scopes=frozenset(Scope),
        retention="3 ans",
        consent_text="J'autorise Suivi Poids à lire et écrire mes mesures.",
        dpia_reference="AIPD-1",
        redirect_uris=(REDIRECT,),
        evidence={c.id: "pièce" for c in criteria},
    )
    application = space.catalogue.apply(Actor.vendor("balance"), dossier, client_id="suivi-poids")
    reviewer = Actor.authority("r", "reviewer")
    space.catalogue.start_review(reviewer, application.id)
    space.catalogue.assess(reviewer, application.id, {c.id: Assessment.MET for c in criteria})
    space.catalogue.opinion(Actor.authority("c", "commission"), application.id, favourable=True)
    space.catalogue.reference(Actor.authority("m", "minister"), application.id)
    return application.client_id


def _tokens(space: monespace.Space, patient_id: str, client_id: str) -> tuple[str, str]:
    """Consent and the code flow, through the library: (access token, refresh token)."""
    holder = Actor.patient(patient_id)
    space.consents.grant(holder, patient_id, client_id, set(Scope))
    verifier = secrets.token_urlsafe(48)
    code = space.oauth.authorize(
        holder,
        patient_id,
        client_id=client_id,
        redirect_uri=REDIRECT,
        scopes=set(Scope),
        code_challenge=pkce_challenge(verifier),
    )
    tokens = space.oauth.exchange(
        client_id=client_id, code=code.code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    return tokens.access_token, tokens.refresh_token


def bench(work: Path, seconds: float, repeat: int) -> list[Figure]:
    with monespace.open(
        f"sqlite:///{work}/apps.db",
        clock=ManualClock(NOW),
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    ) as space:
        patient = space.accounts.register_patient(OPERATOR, _identity(1))
        space.accounts.create_space(OPERATOR, patient.id)
        pid = patient.id
        holder = Actor.patient(pid)
        for n in range(20):
            space.measures.add(holder, pid, "weight", 70 + n / 10, measured_at=NOW)
        client_id = _referenced(space)
        access, refresh = _tokens(space, pid, client_id)

        def as_app(n: int) -> None:
            for _ in range(n):
                app = space.oauth.actor(access)
                space.measures.series(app, pid, "weight")

        def as_patient(n: int) -> None:
            for _ in range(n):
                space.measures.series(holder, pid, "weight")

        app_reads, patient_reads = compare(as_app, as_patient, seconds=seconds, repeat=repeat)

        current = [refresh]

        def issue(n: int) -> None:
            for _ in range(n):
                current[0] = space.oauth.refresh(
                    client_id=client_id, refresh_token=current[0]
                ).refresh_token

        db = sqlite3.connect(work / "raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE tokens (patient_id TEXT, token_hash BLOB, kind TEXT, scopes TEXT,"
            " expires_at TEXT, rotated_at TEXT, PRIMARY KEY (patient_id, token_hash))"
        )
        key = secrets.token_bytes(32)
        last = [b""]

        def raw(n: int) -> None:
            for _ in range(n):
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "UPDATE tokens SET rotated_at = 'x' WHERE patient_id = ? AND token_hash = ?",
                    (pid, last[0]),
                )
                for kind in ("access", "refresh"):
                    digest = hmac.new(
                        key, secrets.token_urlsafe(32).encode(), hashlib.sha256
                    ).digest()
                    db.execute(
                        "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                        (pid, digest, kind, "mesures.read", "2026-03-02T09:10:00Z"),
                    )
                    last[0] = digest
                db.execute("COMMIT")

        try:
            issued, baseline = compare(issue, raw, seconds=seconds, repeat=repeat)
        finally:
            db.close()
    return [
        Figure(
            "app read (token + consent + policy)",
            "reads/s",
            app_reads,
            patient_reads,
            "the same read by the patient (own session)",
            note="20 weight measures; each read audited (a durable commit)",
        ),
        Figure(
            "token issuance (refresh rotation)",
            "pairs/s",
            issued,
            baseline,
            "2 random tokens, HMAC, 2 INSERT + 1 UPDATE, one commit",
        ),
    ]


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    seconds, repeat = (0.2, 3) if args.quick else (1.0, 5)
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(work.parent, packages=("monespace",))
    report = Report(
        script="benchmarks/bench_app_access.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={"seconds_per_repeat": seconds, "repeats": repeat},
    )
    print(f"monespace app access benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        report.figures = bench(work, seconds, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    show(report.figures, title="monespace against raw baselines", markdown=args.markdown)
    print(f"\nmeasured in {time.perf_counter() - started:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
