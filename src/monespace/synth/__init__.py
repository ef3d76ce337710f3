"""Synthetic French population for demos, tests and benchmarks.

.. versionadded:: 0.1
"""

from ._demo import DemoLogin, DemoSummary, seed_demo
from ._population import synthetic_identities

__all__ = ["DemoLogin", "DemoSummary", "seed_demo", "synthetic_identities"]
