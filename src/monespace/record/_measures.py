"""``space.measures``: recording and reading health measures."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._ids import new_id
from ..actors import Actor
from ..clock import ensure_utc
from ..policy import Action, Resource
from ._mapping import (
    DEVICE_KIND,
    MEASURE_KIND,
    device_from_row,
    device_payload,
    device_row,
    measure_from_row,
    measure_payload,
    measure_row,
)
from ._measure_model import MEASURE_SPECS, Device, Measure, MeasureKind, normalise
from ._rules import check_measured_at, measure_source

if TYPE_CHECKING:
    from .._unit import Core, Unit

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

    def add_device(
        self,
        actor: Actor,
        patient_id: str,
        identifier: str,
        *,
        manufacturer: str | None = None,
        model: str | None = None,
        name: str | None = None,
    ) -> tuple[Device, bool]:
        """Keep the device *identifier* (``system|value``) of a person, unless it is kept
        already: the "Mesures de santé" guide sends the device with each bundle of
        measures, and asks that it be created only if absent. Who may record measures may
        record their devices.

        :return: the device kept, and whether it was created now (an existing one is
            returned as it is, its other details unchanged).

        .. versionadded:: 0.1
        """
        with self._core.unit() as unit_:
            resource = Resource(patient_id, "measure")
            decision = unit_.authorize(actor, Action.MEASURE_WRITE, resource)
            index = _device_index(self._core, unit_, identifier)
            found = unit_.tx.devices.for_patient(patient_id, kind=index)
            if found:
                row = found[0]
                payload = self._core.keyring.open(
                    unit_.tx, patient_id, DEVICE_KIND, row.id, row.sealed
                )
                return device_from_row(row, payload), False
            device = Device(new_id(), patient_id, identifier, unit_.now, manufacturer, model, name)
            sealed = self._core.keyring.seal(
                unit_.tx, patient_id, DEVICE_KIND, device.id, device_payload(device)
            )
            unit_.tx.devices.add(device_row(device, index, sealed))
            unit_.record(
                actor, Action.MEASURE_WRITE, Resource(patient_id, "measure", device.id), decision
            )
            return device, True

    def devices(self, actor: Actor, patient_id: str) -> list[Device]:
        """The devices kept for a person, oldest first (read as their measures are).

        .. versionadded:: 0.1
        """
        with self._core.unit() as unit_:
            resource = Resource(patient_id, "measure")
            decision = unit_.authorize(actor, Action.MEASURE_READ, resource)
            devices = [
                device_from_row(
                    row,
                    self._core.keyring.open(unit_.tx, patient_id, DEVICE_KIND, row.id, row.sealed),
                )
                for row in unit_.tx.devices.for_patient(patient_id)
            ]
            unit_.record(actor, Action.MEASURE_READ, resource, decision)
            return devices

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


def _device_index(core: Core, unit: Unit, identifier: str) -> str:
    """The keyed index of a device identifier, as stored in the row's ``kind``."""
    digest = core.keyring.blind_index(unit.tx, "device", identifier, unit.now)
    return "device:" + digest.hex()
