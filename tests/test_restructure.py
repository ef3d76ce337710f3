"""``monespace.codec.restructure``: the generated row mappings give what the row converter gives."""

from __future__ import annotations

import enum
import types
import typing
from datetime import UTC, date, datetime

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monespace.access import AccessSettings, EmergencySession, Grant, Professional
from monespace.accounts import Account, CodeRecord, Representation
from monespace.audit import AuditEvent
from monespace.codec import make_row_converter, restructure
from monespace.storage import (
    AccessSettingsRow,
    AccountRow,
    AuditRow,
    CodeRow,
    EmergencyRow,
    GrantRow,
    ProfessionalRow,
    RepresentationRow,
)

#: Each stored row and the model it maps to through ``restructure``, as the capabilities'
#: ``_mapping`` modules pair them (proofs are mapped by hand: a column kept its older name).
PAIRS = [
    (AccountRow, Account),
    (AuditRow, AuditEvent),
    (CodeRow, CodeRecord),
    (RepresentationRow, Representation),
    (ProfessionalRow, Professional),
    (GrantRow, Grant),
    (AccessSettingsRow, AccessSettings),
    (EmergencyRow, EmergencySession),
]

ROWS = make_row_converter()


def _values(hint: typing.Any) -> st.SearchStrategy[typing.Any]:
    """Values a model field of type *hint* may hold (so that the row is a valid one)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return st.one_of(*(_values(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return st.none()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if hint is datetime:
        return st.datetimes(timezones=st.just(UTC))
    if hint is date:
        return st.dates()
    if hint is bytes:
        return st.binary(max_size=40)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(0, 2**40)
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDÉé0123456789 -'", max_size=20)


def _models(model: type[typing.Any]) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(model)
    fields = {f.alias or f.name: _values(hints[f.name]) for f in attrs.fields(model) if f.init}
    return st.builds(model, **fields)


def _outcome(function: typing.Callable[[], typing.Any]) -> tuple[str, typing.Any]:
    try:
        return "value", function()
    except (ValueError, TypeError) as error:  # a model's own validators refuse
        return "error", type(error)


@pytest.mark.parametrize(("row_type", "model"), PAIRS, ids=[m.__name__ for _, m in PAIRS])
@given(data=st.data())
def test_the_generated_mapping_agrees_with_the_row_converter(row_type, model, data):
    try:
        instance = data.draw(_models(model))
    except (ValueError, TypeError):
        assume(False)  # the model's validators refused the drawn values: nothing to map
    row = restructure(instance, row_type)
    assert row == ROWS.structure(ROWS.unstructure(instance), row_type)
    back = _outcome(lambda: restructure(row, model))
    assert back == _outcome(lambda: ROWS.structure(ROWS.unstructure(row), model))
    assert back == ("value", instance)


def test_a_field_missing_on_one_side_is_an_error_not_a_default():
    @attrs.frozen
    class Stored:
        id: str

    @attrs.frozen
    class Model:
        id: str
        note: str = "default"

    with pytest.raises(TypeError, match="note"):
        restructure(Stored("x"), Model)
