"""The access policy: small named rules that decide, in order, and deny by default.

Pure functions of an actor, an action, a resource and the facts gathered about them
(:mod:`monespace.access` gathers the facts). Every service asks :func:`decide` through its unit
of work; nothing below this package knows who may do what.

.. versionadded:: 0.1
"""

from ._matrix import DEFAULT_MATRIX, AccessMatrix
from ._rules import (
    APP_SCOPES,
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

__all__ = [
    "APP_SCOPES",
    "DEFAULT_MATRIX",
    "AccessMatrix",
    "AccessPolicy",
    "Action",
    "AppFacts",
    "Decision",
    "DocumentFacts",
    "Facts",
    "ProfessionalFacts",
    "Resource",
    "Rule",
    "ThreadFacts",
    "decide",
    "default_rules",
]
