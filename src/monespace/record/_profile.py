"""``space.profile``: the holder's profil médical, and its copy as a DOCPAT08 document."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import attrs

from .._ids import new_id
from ..actors import Actor
from ..errors import NotFoundError
from ..policy import Action, Resource
from ..storage import EntryRow
from ._mapping import ENTRY_KIND, entry_from_row, entry_payload, entry_row
from ._model import TRE_A05_TYPE, Code, Document
from ._profile_model import SECTION_TITLES, ProfileEntry, ProfileSection
from ._rules import check_period
from ._service import RecordService

if TYPE_CHECKING:
    from .._unit import Core, Unit

__all__ = ["ProfileService"]


class ProfileService:
    """``space.profile``: the holder's profil médical.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core, record: RecordService) -> None:
        self._core = core
        self._record = record

    def add(
        self,
        actor: Actor,
        patient_id: str,
        section: ProfileSection | str,
        label: str,
        *,
        details: str | None = None,
        code: Code | None = None,
        started: date | None = None,
        ended: date | None = None,
    ) -> ProfileEntry:
        """Add an entry (the holder or their representative)."""
        entry = ProfileEntry(new_id(), patient_id, section, label, details, code, started, ended)
        check_period(started, ended)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "profile", entry.id)
            decision = unit.authorize(actor, Action.PROFILE_WRITE, resource)
            unit.tx.profile.add(self._row(unit, entry))
            unit.record(actor, Action.PROFILE_WRITE, resource, decision)
            return attrs.evolve(entry, recorded_at=unit.now)

    def remove(self, actor: Actor, patient_id: str, entry_id: str) -> None:
        """Remove an entry."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "profile", entry_id)
            decision = unit.authorize(actor, Action.PROFILE_WRITE, resource)
            row = unit.tx.profile.get(entry_id)
            if row is None or row.patient_id != patient_id:
                raise NotFoundError("no such profile entry")
            unit.tx.profile.delete(entry_id)
            unit.record(actor, Action.PROFILE_WRITE, resource, decision)

    def entries(
        self, actor: Actor, patient_id: str, section: ProfileSection | str | None = None
    ) -> list[ProfileEntry]:
        """The entries of a profile, oldest first, optionally of one section."""
        kind = None if section is None else str(ProfileSection(section))
        with self._core.unit() as unit:
            resource = Resource(patient_id, "profile")
            decision = unit.authorize(actor, Action.PROFILE_READ, resource)
            rows = unit.tx.profile.for_patient(patient_id, kind=kind)
            entries = [
                entry_from_row(
                    r, self._core.keyring.open(unit.tx, patient_id, ENTRY_KIND, r.id, r.sealed)
                )
                for r in rows
            ]
            unit.record(actor, Action.PROFILE_READ, resource, decision)
            return entries

    def export(self, actor: Actor, patient_id: str) -> Document:
        """Save a copy of the profile as a document of the record (DOCPAT08, class 11).

        The copy is plain text, dated, by the holder; professionals the holder authorised can
        then read it like any document.
        """
        entries = self.entries(actor, patient_id)
        lines = [f"Profil médical Mon espace santé - copie du {self._core.now():%d/%m/%Y}", ""]
        for section in ProfileSection:
            chosen = [e for e in entries if e.section is section]
            if not chosen:
                continue
            lines.append(SECTION_TITLES[section])
            for entry in chosen:
                when = f" (depuis {entry.started:%d/%m/%Y})" if entry.started else ""
                extra = f" - {entry.details}" if entry.details else ""
                lines.append(f"  - {entry.label}{when}{extra}")
            lines.append("")
        return self._record.add_document(
            actor,
            patient_id,
            "\n".join(lines).encode(),
            media_type="text/plain",
            type_code=Code("DOCPAT08", TRE_A05_TYPE, "Profil médical Mon espace santé"),
            title="Profil médical Mon espace santé",
        )

    def _row(self, unit: Unit, entry: ProfileEntry) -> EntryRow:
        sealed = self._core.keyring.seal(
            unit.tx, entry.patient_id, ENTRY_KIND, entry.id, entry_payload(entry)
        )
        return entry_row(entry, sealed, unit.now)
