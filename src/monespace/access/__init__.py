"""Access decisions: the single policy layer above storage, and the professionals' access
under the patient's control.

The service is ``space.access`` (:class:`monespace.AccessService`).

.. versionadded:: 0.1
"""

from ._model import (
    DEFAULT_MATRIX,
    PROFESSIONS,
    AccessMatrix,
    AccessSettings,
    EmergencySession,
    Grant,
    GrantKind,
    Professional,
)
from ._policy import (
    AccessPolicy,
    Action,
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

__all__ = [
    "DEFAULT_MATRIX",
    "PROFESSIONS",
    "AccessMatrix",
    "AccessPolicy",
    "AccessSettings",
    "Action",
    "Decision",
    "DocumentFacts",
    "EmergencySession",
    "Facts",
    "Grant",
    "GrantKind",
    "Professional",
    "ProfessionalFacts",
    "Resource",
    "Rule",
    "ThreadFacts",
    "decide",
    "default_rules",
]
