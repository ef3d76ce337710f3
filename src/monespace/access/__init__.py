"""Access decisions: the single policy layer above storage.

.. versionadded:: 0.1
"""

from ._policy import (
    Action,
    Decision,
    DocumentFacts,
    Facts,
    Resource,
    Rule,
    decide,
    default_rules,
)

__all__ = [
    "Action",
    "Decision",
    "DocumentFacts",
    "Facts",
    "Resource",
    "Rule",
    "decide",
    "default_rules",
]
