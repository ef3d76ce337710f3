"""Synthetic French population for demos, tests and benchmarks.

.. versionadded:: 0.1
"""

from ._demo import (
    PHASES,
    DemoCheckpoint,
    DemoLogin,
    DemoSummary,
    SeedProgress,
    checkpoint_from_json,
    checkpoint_to_json,
    demo_work,
    seed_demo,
)
from ._population import synthetic_identities

__all__ = [
    "PHASES",
    "DemoCheckpoint",
    "DemoLogin",
    "DemoSummary",
    "SeedProgress",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "demo_work",
    "seed_demo",
    "synthetic_identities",
]
