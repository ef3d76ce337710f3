"""JSON (un)structuring of the domain model with a private cattrs converter.

Library code never touches ``cattrs.global_converter``: every user of this module gets its own
converter from :func:`make_converter`, configured by :func:`configure_converter`, and the
storage mappings their own from :func:`make_row_converter`.
"""

from __future__ import annotations

import base64
import enum
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import attrs
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

#: The generated converting function of each (source, target) pair, ``None`` when none fits.
_COMPILED: dict[tuple[type[Any], type[Any]], Callable[[Any], Any] | None] = {}


def restructure(value: Any, target: type[T]) -> T:
    """*value* (a model instance or a row) as an instance of *target*, field by field: how every
    capability maps its model to its storage rows and back.

    Rows and models share their field names; an enum field of one is a text field of the
    other, a date one its ISO text. For pairs of such flat classes a converting function is
    generated once per pair (this is on every read path); any other pair goes through the row
    converter (:func:`make_row_converter`), which gives the same result more slowly.
    """
    pair = (type(value), target)
    try:
        convert = _COMPILED[pair]
    except KeyError:
        convert = _COMPILED[pair] = _compiled(*pair)
    if convert is None:
        converted: T = _ROWS.structure(_ROWS.unstructure(value), target)
        return converted
    result: T = convert(value)
    return result


def _compiled(source: type[Any], target: type[Any]) -> Callable[[Any], Any] | None:
    """A function building *target* from a *source* instance, or ``None`` when a field is not
    a flat value (text, number, bytes, instant, date, enum, or one of those or ``None``)."""
    if not (attrs.has(source) and attrs.has(target)):
        return None
    source_hints = typing.get_type_hints(source)
    target_hints = typing.get_type_hints(target)
    namespace: dict[str, Any] = {"_target": target, "_date": date}
    arguments = []
    for field in attrs.fields(target):
        if not field.init:
            continue
        if field.name not in source_hints:
            # A field of the model the row does not store (or the other way round) would be
            # silently lost or defaulted: a mapping bug, not a value to guess.
            raise TypeError(f"{source.__name__} has no field {field.name!r} for {target.__name__}")
        expression = _expression(
            f"v.{field.name}", source_hints[field.name], target_hints[field.name], namespace
        )
        if expression is None:
            return None
        arguments.append(f"{field.alias or field.name}={expression}")
    code = f"def convert(v):\n    return _target({', '.join(arguments)})\n"
    exec(compile(code, f"<restructure {source.__name__} -> {target.__name__}>", "exec"), namespace)  # noqa: S102 - built from field names only
    function: Callable[[Any], Any] = namespace["convert"]
    return function


def _flat(hint: Any) -> tuple[Any, bool] | None:
    """The type a field holds and whether it may be ``None``; ``None`` if it is not flat."""
    args = typing.get_args(hint)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return None
        hint, optional = inner[0], True
    flat = (str, int, bool, bytes, float, datetime, date)
    if hint in flat or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return hint, optional
    return None


def _expression(read: str, source: Any, target: Any, namespace: dict[str, Any]) -> str | None:
    """The Python expression converting the value *read* of type *source* into *target*."""
    flat_source, flat_target = _flat(source), _flat(target)
    if flat_source is None or flat_target is None:
        return None
    (have, _), (want, optional) = flat_source, flat_target
    if isinstance(want, type) and issubclass(want, enum.Enum):
        # The enum's own lookup table first: calling the class is several times slower.
        name = f"_{want.__name__}_{id(want)}"
        namespace[name] = want
        namespace[f"{name}_members"] = want._value2member_map_
        template = f"(m if (m := {name}_members.get({{0}})) is not None else {name}({{0}}))"
    elif want is str and isinstance(have, type) and issubclass(have, enum.Enum):
        template = "{0}.value"
    elif want is str and have is date:
        template = "{0}.isoformat()"
    elif want is date and have is str:
        template = "_date.fromisoformat({0})"
    else:
        return read
    if optional:
        return f"(None if (x := {read}) is None else {template.format('x')})"
    return template.format(read)
