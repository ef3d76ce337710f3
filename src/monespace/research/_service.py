"""``space.research``: pseudonymised extracts for approved studies.

The operator makes them, for a named study, through the policy (``research.extract``); each
person whose data go into an extract gets an audit event with the study's purpose, so their
access history shows it. People who objected to research, and spaces that are not open, are
left out before anything of theirs is read.

.. versionadded:: 0.2
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

import attrs

from ..actors import Actor
from ..identities import read_identity
from ..policy import Action, Resource
from ..record import (
    ENTRY_KIND,
    INVISIBLE_PATIENT,
    MASQUE_PS,
    MEASURE_KIND,
    MEASURE_SPECS,
    DocumentStatus,
    MeasureKind,
    ProfileSection,
    entry_from_row,
    has_flag,
    measure_from_row,
)
from ._model import (
    DocumentRecord,
    Extract,
    MeasureRecord,
    PersonRecord,
    ReminderRecord,
    Study,
    VaccinationRecord,
)
from ._rules import age_band, anonymise_people, departement, pseudonym, study_key

if TYPE_CHECKING:
    from .._unit import Core, Unit
    from ..agenda import AgendaService
    from ..identities import PatientIdentity

__all__ = ["ResearchService"]

_PAGE = 500


@attrs.define
class _Tables:
    """The row-level tables of an extract, filled person by person."""

    documents: list[DocumentRecord] = attrs.Factory(list)
    measures: list[MeasureRecord] = attrs.Factory(list)
    vaccinations: list[VaccinationRecord] = attrs.Factory(list)
    reminders: list[ReminderRecord] = attrs.Factory(list)


class ResearchService:
    """Pseudonymised extracts for studies (``space.research``).

    .. versionadded:: 0.2
    """

    def __init__(self, core: Core, agenda: AgendaService) -> None:
        self._core = core
        self._agenda = agenda

    def extract(self, actor: Actor, study: Study) -> Extract:
        """Extract every person of the space for *study*: people (age band, sex, birth
        département), documents' metadata, measures, vaccinations and reminder statuses,
        under the study's keyed pseudonyms, with every group of people at least
        ``study.k`` (see :func:`monespace.research.anonymise_people`).

        Left out: people who objected to research
        (:attr:`monespace.access.AccessSettings.object_research`), spaces that are not open,
        and, among documents, the masked, the hidden and the confidential ones.

        :raises AccessDeniedError: unless *actor* is the operator (a system actor).
        """
        purpose = study.audit_purpose
        with self._core.unit() as unit:
            decision = unit.authorize(
                actor, Action.RESEARCH_EXTRACT, Resource(None, "study", study.id), purpose=purpose
            )
            day = study.at or unit.now.date()
            key = study_key(self._core.keyring.provider.current().material, study.id)
            left_out: Counter[str] = Counter()
            people: list[PersonRecord] = []
            data = _Tables()
            after: str | None = None
            while ids := unit.tx.patients.ids(after=after, limit=_PAGE):
                after = ids[-1]
                for patient_id in ids:
                    reason = self._reason_to_leave_out(unit, actor, study, patient_id)
                    if reason is not None:
                        left_out[reason] += 1
                        continue
                    identity = read_identity(self._core, unit.tx, patient_id)
                    person = self._person(identity, key, patient_id, study, day)
                    if identity is None or person is None:
                        left_out["identity_unknown"] += 1
                        continue
                    resource = Resource(patient_id, "study", study.id)
                    allowed = unit.authorize(
                        actor, Action.RESEARCH_EXTRACT, resource, purpose=purpose
                    )
                    people.append(person)
                    self._collect(
                        unit, person.pseudonym, patient_id, identity=identity, day=day, data=data
                    )
                    unit.record(actor, Action.RESEARCH_EXTRACT, resource, allowed, purpose=purpose)
            kept, suppressed, report = anonymise_people(people, study.k)
            unit.record(
                actor,
                Action.RESEARCH_EXTRACT,
                Resource(None, "study", study.id),
                decision,
                purpose=purpose,
            )

        # The rows of suppressed people go with them.
        return Extract(
            study_id=study.id,
            made_on=day,
            k=study.k,
            people=kept,
            documents=tuple(r for r in data.documents if r.pseudonym not in suppressed),
            measures=tuple(r for r in data.measures if r.pseudonym not in suppressed),
            vaccinations=tuple(r for r in data.vaccinations if r.pseudonym not in suppressed),
            reminders=tuple(r for r in data.reminders if r.pseudonym not in suppressed),
            left_out=dict(left_out),
            suppressions=report,
        )

    def _reason_to_leave_out(
        self, unit: Unit, actor: Actor, study: Study, patient_id: str
    ) -> str | None:
        """Why *patient_id* is left out of the extract, or ``None`` to include them. The
        same facts the policy decides on say whether the space is open."""
        facts = unit.facts(actor, Resource(patient_id, "study", study.id))
        if not facts.space_open:
            return "space_not_open"
        settings = unit.tx.access.settings(patient_id)
        if settings is not None and settings.object_research:
            return "objection"
        return None

    def _person(
        self,
        identity: PatientIdentity | None,
        key: bytes,
        patient_id: str,
        study: Study,
        day: dt.date,
    ) -> PersonRecord | None:
        if identity is None or identity.ins.traits is None:
            return None
        traits = identity.ins.traits
        return PersonRecord(
            pseudonym=pseudonym(key, patient_id),
            age_band=age_band(traits.birth_date, day, study.age_band_years),
            sex=traits.sex,
            departement=departement(traits.birth_place_code, identity.ins.matricule.department),
        )

    def _collect(
        self,
        unit: Unit,
        alias: str,
        patient_id: str,
        *,
        identity: PatientIdentity,
        day: dt.date,
        data: _Tables,
    ) -> None:
        tx = unit.tx
        keyring = self._core.keyring
        for row in tx.documents.for_patient(patient_id):
            # What the holder hid from professionals, what is still hidden from them, and the
            # very confidential stay out: their type alone can say too much.
            if (
                row.status != DocumentStatus.APPROVED
                or has_flag(row.flags, MASQUE_PS)
                or has_flag(row.flags, INVISIBLE_PATIENT)
                or row.confidentiality == "V"
            ):
                continue
            data.documents.append(
                DocumentRecord(
                    pseudonym=alias,
                    class_code=row.class_code,
                    type_code=row.type_code,
                    type_system=row.type_system,
                    format_code=row.format_code,
                    created_on=row.created_at.date(),
                    submitted_on=row.submitted_at.date(),
                )
            )
        for entry_row in tx.measures.for_patient(patient_id):
            spec = MEASURE_SPECS[MeasureKind(entry_row.kind)]
            payload = keyring.open(tx, patient_id, MEASURE_KIND, entry_row.id, entry_row.sealed)
            measure = measure_from_row(entry_row, payload, spec.unit)
            data.measures.append(
                MeasureRecord(
                    pseudonym=alias,
                    loinc=spec.code.code,
                    unit=measure.unit,
                    value=measure.value,
                    second=measure.second,
                    measured_on=measure.measured_at.date(),
                )
            )
        section = str(ProfileSection.VACCINATION)
        for entry_row in tx.profile.for_patient(patient_id, kind=section):
            payload = keyring.open(tx, patient_id, ENTRY_KIND, entry_row.id, entry_row.sealed)
            entry = entry_from_row(entry_row, payload)
            data.vaccinations.append(
                VaccinationRecord(
                    pseudonym=alias,
                    code_system=entry.code.system if entry.code else None,
                    code=entry.code.code if entry.code else None,
                    vaccinated_on=entry.started or entry_row.at.date(),
                )
            )
        for reminder in self._agenda.evaluate_in(unit, patient_id, day, identity=identity) or ():
            data.reminders.append(
                ReminderRecord(
                    pseudonym=alias,
                    reminder_id=reminder.id,
                    family=str(reminder.family),
                    status=str(reminder.status),
                    due_from=reminder.due_from,
                )
            )
