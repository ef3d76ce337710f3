"""``space.measures``: recording and reading health measures."""

from __future__ import annotations

import json
from datetime import datetime

from .._ids import new_id
from .._unit import Core
from ..access import Action, Resource
from ..actors import Actor
from ..clock import ensure_utc
from ..errors import ValidationError
from ..storage import EntryRow
from ._measure_model import MEASURE_SPECS, Measure, MeasureKind, normalise

__all__ = ["MeasureService"]

_KIND = "measure"


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
            if at > unit_.now:
                raise ValidationError("a measure cannot be taken in the future")
            measure = Measure(
                new_id(),
                patient_id,
                measure_kind,
                converted,
                spec.unit,
                at,
                diastolic,
                "patient" if actor.kind.value in ("patient", "representative") else actor.id,
            )
            resource = Resource(patient_id, "measure", measure.id)
            decision = unit_.authorize(actor, Action.MEASURE_WRITE, resource)
            payload = json.dumps(
                {"value": converted, "second": diastolic, "source": measure.source}
            ).encode()
            sealed = self._core.keyring.seal(unit_.tx, patient_id, _KIND, measure.id, payload)
            unit_.tx.measures.add(EntryRow(measure.id, patient_id, str(measure_kind), at, sealed))
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
            series = []
            for row in rows:
                data = json.loads(
                    self._core.keyring.open(unit_.tx, patient_id, _KIND, row.id, row.sealed)
                )
                series.append(
                    Measure(
                        row.id,
                        patient_id,
                        measure_kind,
                        data["value"],
                        spec.unit,
                        row.at,
                        data["second"],
                        data["source"],
                    )
                )
            unit_.record(actor, Action.MEASURE_READ, resource, decision)
            return series
