"""What a research extract is made of: the study it serves, its pseudonymised tables and the
report of what was generalised or suppressed to keep every group of people at least *k*.

Nothing here carries an identifier of the space: people are known by a keyed pseudonym of
the study (:func:`monespace.research.pseudonym`), never by their NIR, INS, names, e-mail
addresses or ids, and no free text (titles, labels, comments) is ever copied.

.. versionadded:: 0.2
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

import attrs

__all__ = [
    "DEFAULT_K",
    "TABLES",
    "DocumentRecord",
    "Extract",
    "MeasureRecord",
    "PersonRecord",
    "ReminderRecord",
    "Study",
    "Suppression",
    "VaccinationRecord",
]

#: The smallest group of people a table may show (the usual threshold of French statistical
#: disclosure rules for health data, and the CNIL's reference methodologies).
DEFAULT_K: Final = 10

#: A study id: short, printable, no spaces (it names files and goes into the audit trail).
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_PURPOSE = 300


def _check_id(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not _STUDY_ID.match(value):
        raise ValueError(
            "'id' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def _check_text(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip() or len(value) > _MAX_PURPOSE or any(ord(c) < 32 for c in value):
        raise ValueError(
            f"'{attribute.name}' must be non-empty printable text of at most {_MAX_PURPOSE} "
            "characters"
        )


def _check_k(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if value < 2:
        raise ValueError(f"'k' must be at least 2 (got {value})")


def _check_band(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 50:
        raise ValueError(f"'age_band_years' must be between 1 and 50 (got {value})")


@attrs.frozen
class Study:
    """An approved study that extracts are made for.

    :param id: the study's identifier; pseudonyms are keyed per study, so two studies cannot
        link their extracts.
    :param purpose: why the data are used, recorded in the audit trail with each extract
        (no health data: a sentence such as "Couverture vaccinale des 0-2 ans").
    :param approval: the reference of the study's authorisation (a CNIL decision, a
        reference-methodology declaration, an ethics committee's opinion), recorded too.
    :param k: the smallest number of people a group may show (see :data:`DEFAULT_K`).
    :param age_band_years: the width of the age bands (10: ``"30-39"``).
    :param at: the reference date of ages and reminder statuses (default: the extract's day).

    .. versionadded:: 0.2
    """

    id: str = attrs.field(validator=_check_id)
    purpose: str = attrs.field(validator=_check_text)
    approval: str = attrs.field(validator=_check_text)
    k: int = attrs.field(default=DEFAULT_K, validator=_check_k)
    age_band_years: int = attrs.field(default=10, validator=_check_band)
    at: dt.date | None = None

    @property
    def audit_purpose(self) -> str:
        """What the audit trail records as the purpose of each extract."""
        return f"{self.purpose} [{self.approval}]"


@attrs.frozen
class PersonRecord:
    """One person of an extract: only generalised quasi-identifiers.

    :param age_band: ``"30-39"``, or ``"*"`` when generalised.
    :param sex: ``"F"`` or ``"M"``.
    :param departement: the birth département (``"14"``, ``"2A"``, ``"971"``, ``"99"`` when
        born abroad), or ``"*"`` when generalised.
    """

    pseudonym: str
    age_band: str
    sex: str
    departement: str


@attrs.frozen
class DocumentRecord:
    """The metadata of one document: codes and dates, never its title or content."""

    pseudonym: str
    class_code: str
    type_code: str
    type_system: str
    format_code: str | None
    created_on: dt.date
    submitted_on: dt.date


@attrs.frozen
class MeasureRecord:
    """One measure: its LOINC code, UCUM unit, value (and diastolic value) and day."""

    pseudonym: str
    loinc: str
    unit: str
    value: float
    second: float | None
    measured_on: dt.date


@attrs.frozen
class VaccinationRecord:
    """One vaccination of the profil médical: its code (ATC or CIS) and day, no label."""

    pseudonym: str
    code_system: str | None
    code: str | None
    vaccinated_on: dt.date


@attrs.frozen
class ReminderRecord:
    """Where one prevention reminder stood for a person at the study's reference date."""

    pseudonym: str
    reminder_id: str
    family: str
    status: str
    due_from: dt.date


@attrs.frozen
class Suppression:
    """One step taken to keep every group at least *k*, for the extract's report.

    :param table: the table concerned (``"people"``, or an aggregate's name).
    :param action: ``"generalised departement"``, ``"generalised age_band"``,
        ``"suppressed person"`` or ``"suppressed cell"``.
    :param count: how many people (or cells) it concerned.
    """

    table: str
    action: str
    count: int


#: The tables of an extract, in the order they are written.
TABLES: Final = ("people", "documents", "measures", "vaccinations", "reminders")


@attrs.frozen
class Extract:
    """A pseudonymised extract for one study.

    Convert it with :func:`monespace.research.to_pandas`, :func:`~monespace.research.to_polars`
    or :func:`~monespace.research.write_parquet`.

    :param left_out: how many people were left out before reading, by reason
        (``"objection"``, ``"space_not_open"``, ``"identity_unknown"``).
    :param suppressions: what was generalised or suppressed to reach *k*.

    .. versionadded:: 0.2
    """

    study_id: str
    made_on: dt.date
    k: int
    people: tuple[PersonRecord, ...] = ()
    documents: tuple[DocumentRecord, ...] = ()
    measures: tuple[MeasureRecord, ...] = ()
    vaccinations: tuple[VaccinationRecord, ...] = ()
    reminders: tuple[ReminderRecord, ...] = ()
    left_out: dict[str, int] = attrs.field(factory=dict)
    suppressions: tuple[Suppression, ...] = ()

    def table(self, name: str) -> tuple[object, ...]:
        """The records of the table *name* (one of :data:`TABLES`)."""
        if name not in TABLES:
            raise ValueError(f"'name' must be one of {', '.join(TABLES)} (got {name!r})")
        records: tuple[object, ...] = getattr(self, name)
        return records
