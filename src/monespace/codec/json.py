"""JSON (un)structuring of the domain model with a private cattrs converter.

Library code never touches ``cattrs.global_converter``: every user of this module gets its own
converter from :func:`make_converter`, configured by :func:`configure_converter`, and the
storage mappings their own from :func:`make_row_converter`.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any, TypeVar

from cattrs import Converter
from cattrs.preconf.json import JsonConverter
from cattrs.preconf.json import make_converter as _make_json_converter

from ..identity import NIR

__all__ = ["configure_converter", "make_converter", "make_row_converter", "restructure"]


def configure_converter(converter: JsonConverter) -> JsonConverter:
    """Teach *converter* the monespace types (identifiers, dates, bytes)."""
    converter.register_unstructure_hook(NIR, lambda nir: nir.value)
    converter.register_structure_hook(NIR, lambda value, _t: NIR.parse(value))
    converter.register_unstructure_hook(date, lambda d: d.isoformat())
    converter.register_structure_hook(date, lambda value, _t: date.fromisoformat(value))
    converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
    converter.register_structure_hook(datetime, lambda value, _t: datetime.fromisoformat(value))
    converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode())
    converter.register_structure_hook(bytes, lambda value, _t: base64.b64decode(value))
    return converter


def make_converter() -> JsonConverter:
    """A new JSON converter that knows the monespace types."""
    return configure_converter(_make_json_converter())


def make_row_converter() -> Converter:
    """A new converter between the domain model and storage rows (:mod:`monespace.storage`).

    Rows hold plain values: enum members become their values, dates their ISO text; instants
    and bytes are kept as they are (the backend writes them in its own form). Unstructuring a
    model class gives a dict whose keys are its field names, which is what a row with the same
    field names is structured from, and the other way round.
    """
    converter = Converter()
    converter.register_unstructure_hook(datetime, _identity)
    converter.register_unstructure_hook(bytes, _identity)
    converter.register_unstructure_hook(date, lambda d: d.isoformat())
    converter.register_structure_hook(date, lambda value, _t: date.fromisoformat(value))
    converter.register_structure_hook(datetime, _same_type)
    converter.register_structure_hook(bytes, _same_type)
    return converter


def _identity(value: Any) -> Any:
    return value


def _same_type(value: Any, target: type[Any]) -> Any:
    # Refuse rather than coerce: a row holding the wrong type is a bug or a foreign edit.
    if not isinstance(value, target):
        raise TypeError(f"expected {target.__name__}, got {type(value).__name__}")
    return value


_ROWS = make_row_converter()

T = TypeVar("T")


def restructure(value: Any, target: type[T]) -> T:
    """*value* (a model instance or a row) as an instance of *target*, field by field, through
    the row converter: how every capability maps its model to its storage rows and back."""
    converted: T = _ROWS.structure(_ROWS.unstructure(value), target)
    return converted
