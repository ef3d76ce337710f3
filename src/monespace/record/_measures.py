"""``space.measures``: recording and reading health measures."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._ids import new_id
from ..actors import Actor
from ..clock import ensure_utc
from ..policy import Action, Resource
from ._mapping import MEASURE_KIND, measure_from_row, measure_payload, measure_row
from ._measure_model import MEASURE_SPECS, Measure, MeasureKind, normalise
from ._rules import check_measured_at, measure_source

if TYPE_CHECKING:
    from .._unit import Core

__all__ = ["MeasureService"]


class MeasureService:
    """``space.measures``: time series of health measures.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def add(
        self,
        actor: Actor,
        patient_id: str,
        kind: MeasureKind | str,
        value: float,
        *,
        unit: str | None = None,
        measured_at: datetime | None = None,
        second: float | None = None,
    ) -> Measure:
        """Record a measure (the holder, their representative, or a referenced app).

        :param unit: the UCUM unit of *value* (default: the kind's canonical unit).
        :param measured_at: when it was measured (default: now); not in the future.
        """
        measure_kind = MeasureKind(kind)
        spec = MEASURE_SPECS[measure_kind]
        converted, diastolic = normalise(measure_kind, float(value), unit or spec.unit, second)
        with self._core.unit() as unit_:
            at = ensure_utc(measured_at) if measured_at else unit_.now
            check_measured_at(at, unit_.now)
            measure = Measure(
                new_id(),
                patient_id,
                measure_kind,
                converted,
                spec.unit,
                at,
                diastolic,
                measure_source(actor.kind, actor.id),
            )
            resource = Resource(patient_id, "measure", measure.id)
            decision = unit_.authorize(actor, Action.MEASURE_WRITE, resource)
            sealed = self._core.keyring.seal(
                unit_.tx, patient_id, MEASURE_KIND, measure.id, measure_payload(measure)
            )
            unit_.tx.measures.add(measure_row(measure, sealed))
            unit_.record(actor, Action.MEASURE_WRITE, resource, decision)
            return measure

    def series(
        self,
        actor: Actor,
        patient_id: str,
        kind: MeasureKind | str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Measure]:
        """The measures of one kind, oldest first, with ``since <= measured_at < until``."""
        measure_kind = MeasureKind(kind)
        spec = MEASURE_SPECS[measure_kind]
        with self._core.unit() as unit_:
            resource = Resource(patient_id, "measure")
            decision = unit_.authorize(actor, Action.MEASURE_READ, resource)
            rows = unit_.tx.measures.for_patient(
                patient_id, kind=str(measure_kind), since=since, until=until
            )
            series = [
                measure_from_row(
                    row,
                    self._core.keyring.open(unit_.tx, patient_id, MEASURE_KIND, row.id, row.sealed),
                    spec.unit,
                )
                for row in rows
            ]
            unit_.record(actor, Action.MEASURE_READ, resource, decision)
            return series
