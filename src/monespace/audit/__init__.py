"""The tamper-evident audit trail.

.. versionadded:: 0.1
"""

from ._chain import GENESIS_HASH, VerifyReport, canonical_bytes, chain, event_hash, verify
from ._mapping import event_from_row, event_row, events_from_rows
from ._model import AuditEvent, Checkpoint, Outcome, PendingEvent

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "Checkpoint",
    "Outcome",
    "PendingEvent",
    "VerifyReport",
    "canonical_bytes",
    "chain",
    "event_from_row",
    "event_hash",
    "event_row",
    "events_from_rows",
    "verify",
]
