"""SMART on FHIR scopes: the grammar (v1 and v2) and the mapping onto the app scopes."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monespace.interop.fhir import (
    APP_SCOPE_FAMILIES,
    app_scopes,
    parse_smart_scope,
    parse_smart_scopes,
    required_app_scope,
    translate_scope_parameter,
)

TYPES = [*APP_SCOPE_FAMILIES, "Patient", "Immunization", "*"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("patient/DocumentReference.read", {"documents.read"}),
        ("patient/DocumentReference.write", {"documents.write"}),
        ("patient/Binary.rs", {"documents.read"}),
        ("patient/Observation.write", {"mesures.write"}),
        ("patient/Observation.cruds", {"mesures.read", "mesures.write"}),
        ("patient/Observation.c", {"mesures.write"}),
        ("patient/Observation.s", {"mesures.read"}),
        ("patient/Appointment.*", {"agenda.read", "agenda.write"}),
        (
            "patient/*.read",
            {"documents.read", "mesures.read", "agenda.read"},
        ),
        (
            "patient/*.*",
            {f"{f}.{a}" for f in ("documents", "mesures", "agenda") for a in ("read", "write")},
        ),
        ("patient/Immunization.read", set()),  # no app scope covers the profil médical
        ("patient/Patient.read", set()),
        ("user/DocumentReference.read", set()),  # an app acts for one patient only
        ("system/*.read", set()),
        ("patient/Observation.rs?category=laboratory", set()),  # narrower than any app scope
        ("launch/patient", set()),
        ("openid", set()),
        ("offline_access", set()),
    ],
)
def test_each_scope_maps_to_the_app_scopes_it_amounts_to(scope, expected):
    assert app_scopes([parse_smart_scope(scope)]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "patient",
        "patient/",
        "patient/Observation",
        "patient/Observation.",
        "patient/Observation.delete",
        "patient/Observation.sr",  # v2 letters come in the order c r u d s
        "patient/Observation.rr",
        "patient/observation.read",  # resource types start with a capital
        "practitioner/Observation.read",
        "patient/Observation.read extra",
        "patient/Obs-ervation.read",
        "launch/",
        "documents.read",  # an app scope is not a SMART scope
    ],
)
def test_what_is_not_a_smart_scope_is_refused(text):
    with pytest.raises(ValueError, match="not a SMART scope"):
        parse_smart_scope(text)


def test_a_scope_parameter_reads_each_scope_once():
    scopes = parse_smart_scopes("openid  launch/patient patient/Observation.rs openid")
    assert [s.text for s in scopes] == ["openid", "launch/patient", "patient/Observation.rs"]
    assert [s.is_launch for s in scopes] == [True, True, False]
    with pytest.raises(ValueError):
        parse_smart_scopes("openid patient/Observation.nope")


def test_the_message_of_a_refusal_is_bounded():
    with pytest.raises(ValueError) as error:
        parse_smart_scope("x" * 5000)
    assert len(str(error.value)) < 80


_v2 = st.lists(st.sampled_from("cruds"), min_size=1, unique=True).map(
    lambda letters: "".join(sorted(letters, key="cruds".index))
)


@given(
    context=st.sampled_from(["patient", "user", "system"]),
    resource_type=st.sampled_from(TYPES),
    permissions=st.one_of(st.sampled_from(["read", "write", "*"]), _v2),
)
@example(context="patient", resource_type="*", permissions="cruds")
def test_the_mapping_agrees_with_what_each_interaction_needs(context, resource_type, permissions):
    """A scope grants an app scope exactly when it covers an interaction that needs it."""
    scope = parse_smart_scope(f"{context}/{resource_type}.{permissions}")
    granted = app_scopes([scope])
    for kind in APP_SCOPE_FAMILIES:
        for write in (False, True):
            needed = required_app_scope(kind, write=write)
            if scope.covers(kind, write=write):
                assert needed in granted
    for app_scope in granted:
        family, action = app_scope.split(".")
        assert any(
            scope.covers(kind, write=action == "write")
            for kind, fam in APP_SCOPE_FAMILIES.items()
            if fam == family
        )
    assert granted == set() or context == "patient"


def test_interactions_without_an_app_scope():
    assert required_app_scope("Immunization", write=False) is None
    assert required_app_scope("DocumentReference", write=True) == "documents.write"
    assert required_app_scope("Binary", write=False) == "documents.read"


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        (
            "launch/patient openid patient/Observation.rs patient/Observation.write",
            "mesures.read mesures.write",
        ),
        ("documents.read patient/Appointment.read", "documents.read agenda.read"),
        ("documents.read mesures.read", "documents.read mesures.read"),  # no SMART: as is
        ("patient/Observation.nope", "patient/Observation.nope"),  # left for a refusal
        ("openid launch/patient", ""),  # no data asked: refused as no scope
        ("patient/Immunization.read", ""),  # nothing an app scope covers
    ],
)
def test_a_scope_parameter_is_translated_into_app_scopes(asked, granted):
    assert translate_scope_parameter(asked) == granted
