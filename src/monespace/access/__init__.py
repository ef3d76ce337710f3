"""The professionals' access under the patient's control: care team, authorisations,
médecin traitant, blocking, emergency access, the access history, and the facts the policy
(:mod:`monespace.policy`, re-exported here) decides on.

The service is ``space.access`` (:class:`monespace.AccessService`).

.. versionadded:: 0.1
"""

from ..identities import PROFESSIONS, Professional
from ..policy import (
    APP_SCOPES,
    DEFAULT_MATRIX,
    AccessMatrix,
    AccessPolicy,
    Action,
    AppFacts,
    Decision,
    DocumentFacts,
    Facts,
    ProfessionalFacts,
    Resource,
    Rule,
    ThreadFacts,
    decide,
    default_rules,
)
from ._facts import AccessFacts
from ._model import AccessSettings, EmergencySession, Grant, GrantKind
from ._service import AccessService, FirstAccessNotifier, HistoryEntry

__all__ = [
    "APP_SCOPES",
    "DEFAULT_MATRIX",
    "PROFESSIONS",
    "AccessFacts",
    "AccessMatrix",
    "AccessPolicy",
    "AccessService",
    "AccessSettings",
    "Action",
    "AppFacts",
    "Decision",
    "DocumentFacts",
    "EmergencySession",
    "Facts",
    "FirstAccessNotifier",
    "Grant",
    "GrantKind",
    "HistoryEntry",
    "Professional",
    "ProfessionalFacts",
    "Resource",
    "Rule",
    "ThreadFacts",
    "decide",
    "default_rules",
]
