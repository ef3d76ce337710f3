"""Pseudonymised extracts of the record for approved studies, as DataFrames and Parquet.

``space.research.extract(operator, study)`` (:class:`ResearchService`) reads, through the
policy (``research.extract``) and with the study's purpose in the audit trail, every person
who did not object to research (:attr:`monespace.access.AccessSettings.object_research`):
people (age band, sex, birth département), documents' metadata, measures, vaccinations and
reminder statuses, under a pseudonym keyed per study. Every combination of age band, sex and
département holds at least ``study.k`` people, and :func:`aggregate` suppresses small cells.
See ``docs/tutorial/research-in-notebooks.md``.

.. versionadded:: 0.2
"""

from ._frames import read_parquet, to_arrow, to_pandas, to_polars, write_parquet
from ._model import (
    DEFAULT_K,
    TABLES,
    DocumentRecord,
    Extract,
    MeasureRecord,
    PersonRecord,
    ReminderRecord,
    Study,
    Suppression,
    VaccinationRecord,
)
from ._rules import (
    GENERALISED,
    Aggregate,
    age_band,
    aggregate,
    anonymise_people,
    departement,
    pseudonym,
    study_key,
)
from ._service import ResearchService

__all__ = [
    "DEFAULT_K",
    "GENERALISED",
    "TABLES",
    "Aggregate",
    "DocumentRecord",
    "Extract",
    "MeasureRecord",
    "PersonRecord",
    "ReminderRecord",
    "ResearchService",
    "Study",
    "Suppression",
    "VaccinationRecord",
    "age_band",
    "aggregate",
    "anonymise_people",
    "departement",
    "pseudonym",
    "read_parquet",
    "study_key",
    "to_arrow",
    "to_pandas",
    "to_polars",
    "write_parquet",
]
