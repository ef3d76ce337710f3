"""Every audited action reads as French in the access history.

The actions are enumerated from the code, not from a list kept beside the wordings: the
:class:`~monespace.policy.Action` values, and every action name a service hands to
``unit.record(...)`` (or to the access service's ``event=``) as a literal, found by walking
the source's syntax trees. A new action without a wording fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monespace.access._wording import (
    HOLDER_VIEWS,
    WORDINGS,
    Conjugation,
    sentence,
    third_person,
)
from monespace.accounts import AccountState
from monespace.policy import Action

SOURCE = Path(__file__).resolve().parent.parent / "src" / "monespace"


def _literal_actions() -> set[str]:
    """Action names passed as literals to ``.record(actor, ACTION, ...)`` or ``event=``."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        # Module-level string constants (``_ISSUE: Final = "oauth.code"``) handed over by name.
        constants: dict[str, str] = {}
        for statement in tree.body:
            target = value = None
            if isinstance(statement, ast.AnnAssign):
                target, value = statement.target, statement.value
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                constants[target.id] = value.value
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            candidates: list[ast.expr] = []
            if isinstance(node.func, ast.Attribute) and node.func.attr == "record":
                if len(node.args) >= 2:
                    candidates.append(node.args[1])
                candidates += [k.value for k in node.keywords if k.arg == "action"]
            candidates += [k.value for k in node.keywords if k.arg == "event"]
            for value in candidates:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
                elif isinstance(value, ast.Name) and value.id in constants:
                    found.add(constants[value.id])
                elif isinstance(value, ast.JoinedStr):
                    # f"account.{state}": the deadlines record one action per lifecycle state
                    prefix = value.values[0]
                    assert isinstance(prefix, ast.Constant), ast.unparse(value)
                    assert prefix.value == "account.", ast.unparse(value)
                    found |= {f"account.{s}" for s in AccountState}
    return found


def audited_actions() -> set[str]:
    return {str(a) for a in Action} | _literal_actions()


def test_the_scan_finds_the_actions_recorded_outside_the_enum():
    literal = _literal_actions()
    # a sample the scan must find, or it is not looking where services record
    assert {"notification.send", "reminder.send", "access.block", "account.closed"} <= literal


def test_every_audited_action_has_a_french_wording():
    missing = sorted(audited_actions() - set(WORDINGS))
    assert not missing, f"audited actions without a French wording: {missing}"


@pytest.mark.parametrize("action", sorted(WORDINGS))
def test_wordings_are_french_sentences_not_codes(action):
    line = sentence("Dr Martin (Médecin)", action)
    assert action not in line
    assert line.startswith("Dr Martin (Médecin) ")
    assert line.endswith(".")
    mine = sentence("vous", action, holder=True)
    assert mine.startswith("Vous ")
    assert " | " not in mine
    assert "s'est" not in mine
    refused = sentence("Dr Martin (Médecin)", action, "denied")
    assert refused.endswith(": accès refusé.")
    assert " de a" not in refused


def test_conjugation():
    assert sentence("vous", "account.login", holder=True) == "Vous vous êtes connecté."
    assert sentence("Dr A (Médecin)", "account.login") == "Dr A (Médecin) s'est connecté."
    assert sentence("vous", "document.read", holder=True) == "Vous avez consulté un document."
    assert (
        sentence("l'Assurance Maladie", "notification.send")
        == "L'Assurance Maladie vous a envoyé une notification."
    )
    assert (
        sentence("Dr A (Médecin)", "access.emergency", "denied")
        == "Dr A (Médecin) a tenté d'accéder à votre dossier en urgence : accès refusé."
    )
    assert (
        sentence("vous", "account.login", "failure", holder=True)
        == "Vous avez tenté de vous connecter : l'opération a échoué."
    )
    assert third_person("thread.start") == "a commencé une conversation avec vous"
    assert WORDINGS["account.login"].conjugation is Conjugation.PRONOMINAL


def test_holder_views_are_reads_with_a_wording():
    assert set(WORDINGS) >= HOLDER_VIEWS
    assert all(
        WORDINGS[a].participle.startswith(("consulté", "lu", "ouvert")) for a in HOLDER_VIEWS
    )
