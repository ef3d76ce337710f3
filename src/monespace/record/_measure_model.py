"""Health measures ("mesures"): weight, blood pressure, glycaemia, steps...

Codes and units follow the ANS FHIR guide "Mesures de santé" (docs/domain-rules.md §3.7):
each kind has its LOINC code and its UCUM unit. A value outside a plausible range is refused:
a weight of 7,500 kg is a typing error, and storing it would draw every chart wrong.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from .._text import LIMITS, check_text
from ..errors import ValidationError
from ._model import LOINC, Code

__all__ = ["MEASURE_SPECS", "Device", "Measure", "MeasureKind", "MeasureSpec", "normalise"]


class MeasureKind(StrEnum):
    """The measures a space keeps."""

    WEIGHT = "weight"
    HEIGHT = "height"
    BMI = "bmi"
    HEART_RATE = "heart_rate"
    BLOOD_PRESSURE = "blood_pressure"
    TEMPERATURE = "temperature"
    GLUCOSE = "glucose"
    WAIST = "waist"
    STEPS = "steps"
    PAIN = "pain"
    HEAD_CIRCUMFERENCE = "head_circumference"
    OXYGEN_SATURATION = "oxygen_saturation"
    RESPIRATORY_RATE = "respiratory_rate"


@attrs.frozen
class MeasureSpec:
    """How a kind of measure is coded and what values are plausible.

    :param alternates: other accepted units, with the factor that converts them to ``unit``.
    :param second: for blood pressure, the code and range of the diastolic component.
    """

    code: Code
    unit: str
    low: float
    high: float
    alternates: tuple[tuple[str, float], ...] = ()
    second: tuple[Code, float, float] | None = None


MEASURE_SPECS: dict[MeasureKind, MeasureSpec] = {
    MeasureKind.WEIGHT: MeasureSpec(
        Code("29463-7", LOINC, "Poids corporel"), "kg", 0.2, 500, (("g", 0.001),)
    ),
    MeasureKind.HEIGHT: MeasureSpec(
        Code("8302-2", LOINC, "Taille"), "cm", 20, 260, (("m", 100.0),)
    ),
    MeasureKind.BMI: MeasureSpec(Code("39156-5", LOINC, "IMC"), "kg/m2", 8, 100),
    MeasureKind.HEART_RATE: MeasureSpec(
        Code("8867-4", LOINC, "Fréquence cardiaque"), "/min", 20, 300
    ),
    MeasureKind.BLOOD_PRESSURE: MeasureSpec(
        Code("85354-9", LOINC, "Pression artérielle"),
        "mm[Hg]",
        40,
        300,
        second=(Code("8462-4", LOINC, "Pression artérielle diastolique"), 20, 200),
    ),
    MeasureKind.TEMPERATURE: MeasureSpec(
        Code("8310-5", LOINC, "Température corporelle"), "Cel", 25, 45
    ),
    MeasureKind.GLUCOSE: MeasureSpec(
        Code("2339-0", LOINC, "Glycémie"), "g/L", 0.1, 10, (("mmol/L", 1 / 5.551),)
    ),
    MeasureKind.WAIST: MeasureSpec(Code("8280-0", LOINC, "Tour de taille"), "cm", 30, 250),
    MeasureKind.STEPS: MeasureSpec(
        Code("41950-7", LOINC, "Nombre de pas quotidien"), "/d", 0, 150_000
    ),
    MeasureKind.PAIN: MeasureSpec(Code("72514-3", LOINC, "Niveau de douleur"), "{score}", 0, 10),
    MeasureKind.HEAD_CIRCUMFERENCE: MeasureSpec(
        Code("8287-5", LOINC, "Périmètre crânien"), "cm", 20, 70
    ),
    MeasureKind.OXYGEN_SATURATION: MeasureSpec(
        Code("59408-5", LOINC, "Saturation en oxygène"), "%", 50, 100
    ),
    MeasureKind.RESPIRATORY_RATE: MeasureSpec(
        Code("9279-1", LOINC, "Fréquence respiratoire"), "/min", 4, 80
    ),
}


@attrs.frozen
class Measure:
    """One measure, in the kind's canonical UCUM unit.

    :param second: the diastolic pressure, for blood pressure.
    :param source: who produced it: ``"patient"``, or an app's client id.
    """

    id: str
    patient_id: str
    kind: MeasureKind
    value: float
    unit: str
    measured_at: datetime
    second: float | None = None
    source: str = "patient"

    @property
    def code(self) -> Code:
        """The LOINC code of the measure."""
        return MEASURE_SPECS[self.kind].code


def normalise(
    kind: MeasureKind, value: float, unit: str, second: float | None
) -> tuple[float, float | None]:
    """Convert to the canonical unit and check plausibility.

    :raises ValidationError: for an unknown unit, a missing or superfluous diastolic value, or
        an implausible value (the message names the range, not the patient).
    """
    spec = MEASURE_SPECS[kind]
    factors = {spec.unit: 1.0, **dict(spec.alternates)}
    if unit not in factors:
        units = ", ".join(factors)
        raise ValidationError(f"a {kind.value} measure is in {units} (got {unit!r})")
    converted = value * factors[unit]
    if not (spec.low <= converted <= spec.high):
        raise ValidationError(
            f"a {kind.value} of {converted:g} {spec.unit} is not plausible "
            f"(expected {spec.low:g} to {spec.high:g})"
        )
    if spec.second is None:
        if second is not None:
            raise ValidationError(f"a {kind.value} measure has a single value")
        return converted, None
    _, low, high = spec.second
    if second is None or not (low <= second <= high) or second >= converted:
        raise ValidationError(
            f"a {kind.value} needs a diastolic value from {low:g} to {high:g}, "
            "below the systolic value"
        )
    return converted, second


def _device_text(field: str, size: str) -> Any:
    def check(_instance: object, _attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None:
            check_text(field, value, max_length=LIMITS[size])

    return check


def _identifier(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    check_text("identifier", value, max_length=LIMITS["label"])
    if not value.strip():
        raise ValidationError("a device's 'identifier' must not be empty")


@attrs.frozen
class Device:
    """A device that takes a person's measures (a scale, a blood pressure monitor), as the
    "Mesures de santé" guide sends it with them: kept once per identifier.

    :param identifier: what identifies the device, ``system|value`` (its serial number or
        its IEEE system id, with the identifier's system).
    :param name: the name the person gave it (``patient-reported-name``), if any.

    .. versionadded:: 0.1
    """

    id: str
    patient_id: str
    identifier: str = attrs.field(validator=_identifier)
    created_at: datetime
    manufacturer: str | None = attrs.field(
        default=None, validator=_device_text("manufacturer", "name")
    )
    model: str | None = attrs.field(default=None, validator=_device_text("model", "label"))
    name: str | None = attrs.field(default=None, validator=_device_text("name", "name"))
