"""Looking past the services, for tests only."""

from __future__ import annotations

from .._space import Space
from ..storage import StorageBackend

__all__ = ["storage_of"]


def storage_of(space: Space) -> StorageBackend:
    """The storage backend under *space*, for tests that check what was stored (rows,
    ciphertexts, the outbox) beneath the services.

    Application code never needs it: a space's data is read through its services, under
    the access policy and the audit trail; ``Space`` keeps its storage private.

    .. versionadded:: 0.1
    """
    return space._storage
