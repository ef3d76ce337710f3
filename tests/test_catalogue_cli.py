"""``monespace catalogue`` and ``monespace consents``: the référencement from the command line,
end to end on one SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor
from monespace.catalogue import load_referentiel
from monespace.cli import main

from .helpers import identity, open_patient

NIR = identity(1).ins.matricule.value
CRITERIA = [c.id for c in load_referentiel().criteria]
DOSSIER = {
    "publisher": "Balance SAS",
    "service": "Suivi Poids",
    "category": "Suivi du poids",
    "purposes": ["prevention"],
    "exchange_tier": "mesures",
    "scopes": ["mesures.read", "mesures.write"],
    "retention": "3 ans",
    "consent_text": "J'autorise Suivi Poids à lire et écrire mes mesures.",
    "dpia_reference": "AIPD-1",
    "redirect_uris": ["https://poids.example/cb"],
    "evidence": dict.fromkeys(CRITERIA, "pièce"),
}


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "catalogue.db"
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        open_patient(space, identity(1))
    return str(path)


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return result.output


def test_a_dossier_is_referenced_and_a_consent_revoked_from_the_command_line(db, tmp_path):
    dossier = tmp_path / "dossier.json"
    dossier.write_text(json.dumps(DOSSIER), encoding="utf-8")
    out = run("catalogue", "apply", "--db", db, "--vendor", "balance", "--dossier", str(dossier),
              "--client-id", "suivi-poids")  # fmt: skip
    application_id = out.split()[1]
    assert "client id: suivi-poids" in out
    out = run("catalogue", "review", "--db", db, application_id, "--reviewer", "r1", "--start")
    assert "SEC-01: no evidence" not in out
    assert "SEC-01: not assessed" in out
    met = [arg for c in CRITERIA for arg in ("--met", c)]
    out = run("catalogue", "review", "--db", db, application_id, "--reviewer", "r1", *met)
    assert "no mandatory criterion stands in the way" in out
    assert "denied" in fails("catalogue", "decide", "--db", db, application_id, "favourable",
                             "--by", "x", "--as", "minister")  # fmt: skip
    run("catalogue", "decide", "--db", db, application_id, "favourable", "--by", "commission")
    out = run("catalogue", "decide", "--db", db, application_id, "reference", "--by", "cabinet",
              "--days", "365", "--scope", "mesures.read")  # fmt: skip
    assert "(referenced)" in out
    assert "data categories: mesures.read" in out
    assert "suivi-poids  Suivi Poids (Balance SAS)" in run("catalogue", "list", "--db", db,
                                                            "--search", "poids")  # fmt: skip
    assert run("catalogue", "list", "--db", db, "--search", "agenda") == ""
    assert "under_review" not in run("catalogue", "list", "--db", db, "--applications")
    shown = run("catalogue", "show", "--db", db, "suivi-poids")
    assert "scopes: mesures.read" in shown
    assert "redirect URI: https://poids.example/cb" in shown
    assert application_id in run("catalogue", "show", "--db", db, application_id)

    assert "no app was ever connected" in run("consents", "list", "--db", db, "--nir", NIR)
    with monespace.open(f"sqlite:///{db}", load_entrypoints=False) as space:
        patient = space.accounts.find_by_nir(Actor.system("test"), NIR)
        me = Actor.patient(patient.id)
        space.consents.grant(me, patient.id, "suivi-poids", ["mesures.read"])
    assert "suivi-poids  mesures.read" in run("consents", "list", "--db", db, "--nir", NIR)
    run("consents", "revoke", "--db", db, "--nir", NIR, "suivi-poids")
    assert "revoked on" in run("consents", "list", "--db", db, "--nir", NIR)
    assert "no consent in force" in fails("consents", "revoke", "--db", db, "--nir", NIR,
                                          "suivi-poids")  # fmt: skip


def test_bad_dossiers_are_one_line_errors(db, tmp_path):
    dossier = tmp_path / "dossier.json"
    for content, message in (
        ("[1]", "JSON object"),
        ("{", "invalid dossier"),
        (json.dumps({**DOSSIER, "colour": "blue"}), "unknown dossier fields: colour"),
        (json.dumps({k: v for k, v in DOSSIER.items() if k != "service"}), "missing"),
        (json.dumps({**DOSSIER, "scopes": ["documents.delete"]}), "unknown scope"),
    ):
        dossier.write_text(content, encoding="utf-8")
        out = fails("catalogue", "apply", "--db", db, "--vendor", "v", "--dossier", str(dossier))
        assert message in out
    assert "no app with this client id" in fails("catalogue", "show", "--db", db, "nobody")


def test_check_tells_a_vendor_which_mandatory_criteria_lack_evidence(tmp_path):
    dossier = tmp_path / "dossier.json"
    dossier.write_text(json.dumps(DOSSIER), encoding="utf-8")
    assert "every mandatory criterion has evidence" in run(
        "catalogue", "check", "--dossier", str(dossier)
    )
    evidence = {c: "pièce" for c in CRITERIA if c not in ("SEC-02", "ETH-05")}
    dossier.write_text(json.dumps({**DOSSIER, "evidence": evidence}), encoding="utf-8")
    out = fails("catalogue", "check", "--dossier", str(dossier))
    assert "SEC-02 (obligatoire): no evidence" in out
    assert "ETH-05 (optionnel): no evidence" in out
    assert "mandatory criteria without evidence: 1" in out
    listing = {**DOSSIER, "exchange_tier": "none", "scopes": [], "evidence": {}}
    dossier.write_text(json.dumps(listing), encoding="utf-8")
    out = fails("catalogue", "check", "--dossier", str(dossier))
    assert "INT-01" not in out  # applies to exchanges only
