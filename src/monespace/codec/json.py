"""JSON (un)structuring of the domain model with a private cattrs converter.

Library code never touches ``cattrs.global_converter``: every user of this module gets its own
converter from :func:`make_converter`, configured by :func:`configure_converter`.
"""

from __future__ import annotations

import base64
from datetime import date, datetime

from cattrs.preconf.json import JsonConverter
from cattrs.preconf.json import make_converter as _make_json_converter

from ..identity import NIR

__all__ = ["configure_converter", "make_converter"]


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
