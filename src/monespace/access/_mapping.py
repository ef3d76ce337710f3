"""Access rows <-> model (grants, settings, emergency sessions), through
the row converter of :mod:`monespace.codec`."""

from __future__ import annotations

from collections.abc import Iterable

from ..codec import restructure
from ..storage import AccessSettingsRow, EmergencyRow, GrantRow
from ._model import AccessSettings, EmergencySession, Grant

__all__ = [
    "emergencies_from_rows",
    "emergency_row",
    "grant_row",
    "grants_from_rows",
    "settings_from_row",
    "settings_row",
]


def grant_row(grant: Grant) -> GrantRow:
    """The row that stores a grant."""
    row: GrantRow = restructure(grant, GrantRow)
    return row


def grants_from_rows(rows: Iterable[GrantRow]) -> list[Grant]:
    """The grants some rows store, in their order."""
    return [restructure(row, Grant) for row in rows]


def settings_row(settings: AccessSettings) -> AccessSettingsRow:
    """The row that stores a patient's settings."""
    row: AccessSettingsRow = restructure(settings, AccessSettingsRow)
    return row


def settings_from_row(row: AccessSettingsRow | None, patient_id: str) -> AccessSettings:
    """The settings a row stores, or the defaults when the patient never changed them."""
    if row is None:
        return AccessSettings(patient_id)
    settings: AccessSettings = restructure(row, AccessSettings)
    return settings


def emergency_row(session: EmergencySession) -> EmergencyRow:
    """The row that stores an emergency session (its justification is stored beside it)."""
    row: EmergencyRow = restructure(session, EmergencyRow)
    return row


def emergencies_from_rows(rows: Iterable[EmergencyRow]) -> list[EmergencySession]:
    """The emergency sessions some rows store, in their order."""
    return [restructure(row, EmergencySession) for row in rows]
