"""Synthetic French population for demos, tests and benchmarks.

.. versionadded:: 0.1
"""

from ._apps import DEMO_APP_CLIENT_ID, DEMO_APP_REDIRECT_URIS, reference_demo_app
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
    "DEMO_APP_CLIENT_ID",
    "DEMO_APP_REDIRECT_URIS",
    "PHASES",
    "DemoCheckpoint",
    "DemoLogin",
    "DemoSummary",
    "SeedProgress",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "demo_work",
    "reference_demo_app",
    "seed_demo",
    "synthetic_identities",
]
