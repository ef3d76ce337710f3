"""Synthetic French population for demos, tests and benchmarks.

.. versionadded:: 0.1
"""

from ._population import synthetic_identities

__all__ = ["synthetic_identities"]
