"""SMART on FHIR scopes, read and mapped onto the scopes of a referenced app.

The grammar is that of SMART App Launch (v1 ``patient/Observation.read`` and v2
``patient/Observation.rs``, https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):

.. code-block:: text

    scope          = clinical-scope / launch-scope
    clinical-scope = context "/" ( resource-type / "*" ) "." permissions [ "?" query ]
    context        = "patient" / "user" / "system"
    permissions    = "read" / "write" / "*"                       ; v1
                   / 1*5( "c" / "r" / "u" / "d" / "s" ), in this order ; v2
    launch-scope   = "openid" / "fhirUser" / "profile" / "launch" / "launch/" name
                   / "offline_access" / "online_access"

A referenced app acts for one person, so only ``patient/`` scopes give it anything; a
``user/`` or ``system/`` scope is read (it is valid SMART) and maps to nothing. v2 scopes
with a query (``patient/Observation.rs?category=laboratory``) are narrower than any app
scope, so they map to nothing either: granting the whole resource type would give more
than was asked.

Pure functions, no I/O.

.. versionadded:: 0.1
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import attrs

__all__ = [
    "APP_SCOPE_FAMILIES",
    "LAUNCH_SCOPES",
    "SmartScope",
    "app_scopes",
    "parse_smart_scope",
    "parse_smart_scopes",
    "required_app_scope",
    "translate_scope_parameter",
]

#: The scopes that ask for launch context or identity, not for data.
LAUNCH_SCOPES: Final = frozenset(
    {"openid", "fhirUser", "profile", "launch", "offline_access", "online_access"}
)

#: The family of app scopes (``documents.read``...) that covers each FHIR resource type an
#: app may reach. Immunization (the profil médical) and Patient have none: no app scope of
#: the catalogue covers them.
APP_SCOPE_FAMILIES: Final[Mapping[str, str]] = {
    "DocumentReference": "documents",
    "Binary": "documents",
    "Observation": "mesures",
    "Device": "mesures",
    "Appointment": "agenda",
}

_CLINICAL: Final = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})"
    r"\.(?P<permissions>read|write|\*|c?r?u?d?s?)(?:\?(?P<query>[^\s]*))?$"
)
_LAUNCH_CONTEXT: Final = re.compile(r"^launch/[A-Za-z][A-Za-z0-9_-]{0,63}$")
_READS: Final = frozenset("rs")
_WRITES: Final = frozenset("cud")


@attrs.frozen
class SmartScope:
    """One SMART scope, read.

    :param context: ``patient``, ``user`` or ``system``; ``None`` for a launch scope.
    :param resource_type: the FHIR resource type, ``*`` for all; ``None`` for a launch scope.
    :param permissions: the v2 letters the scope grants (``read`` is ``rs``, ``write`` is
        ``cud``, ``*`` is ``cruds``).
    :param query: the v2 restriction after ``?``, if any.
    """

    text: str
    context: Literal["patient", "user", "system"] | None = None
    resource_type: str | None = None
    permissions: frozenset[str] = frozenset()
    query: str | None = None

    @property
    def is_launch(self) -> bool:
        """Whether it asks for launch context or identity rather than data."""
        return self.context is None

    def covers(self, resource_type: str, *, write: bool) -> bool:
        """Whether it grants reading (or, with *write*, writing) *resource_type* for the
        patient of the launch, whole (a scope with a query does not)."""
        wanted = _WRITES if write else _READS
        return (
            self.context == "patient"
            and self.query is None
            and self.resource_type in ("*", resource_type)
            and bool(self.permissions & wanted)
        )


def parse_smart_scope(text: str) -> SmartScope:
    """Read one SMART scope.

    :raises ValueError: when *text* is not a SMART scope (the message quotes no more than
        its first 40 characters).
    """
    if text in LAUNCH_SCOPES or _LAUNCH_CONTEXT.match(text):
        return SmartScope(text)
    match = _CLINICAL.match(text)
    if match is None or not match["permissions"]:
        raise ValueError(f"not a SMART scope: {text[:40]!r}")
    permissions = match["permissions"]
    letters = {"read": "rs", "write": "cud", "*": "cruds"}.get(permissions, permissions)
    context: Literal["patient", "user", "system"] = match["context"]  # type: ignore[assignment]
    return SmartScope(
        text,
        context,
        match["type"],
        frozenset(letters),
        match["query"] or None,
    )


def parse_smart_scopes(scope: str) -> tuple[SmartScope, ...]:
    """Read the space-separated scopes of an OAuth ``scope`` parameter (duplicates once).

    :raises ValueError: when one of them is not a SMART scope.
    """
    seen: dict[str, SmartScope] = {}
    for text in scope.split(" "):
        if text and text not in seen:
            seen[text] = parse_smart_scope(text)
    return tuple(seen.values())


def app_scopes(scopes: Iterable[SmartScope]) -> frozenset[str]:
    """The app scopes (``documents.read``, ``mesures.write``, ``agenda.read``...) that
    SMART *scopes* amount to: a family's ``read`` when a scope grants reading one of its
    resource types, its ``write`` when one grants creating, updating or deleting."""
    granted: set[str] = set()
    for scope in scopes:
        for resource_type, family in APP_SCOPE_FAMILIES.items():
            if scope.covers(resource_type, write=False):
                granted.add(f"{family}.read")
            if scope.covers(resource_type, write=True):
                granted.add(f"{family}.write")
    return frozenset(granted)


def required_app_scope(resource_type: str, *, write: bool) -> str | None:
    """The app scope an interaction with *resource_type* needs, or ``None`` when no app
    scope covers that type (the interaction is then not an app's to make)."""
    family = APP_SCOPE_FAMILIES.get(resource_type)
    if family is None:
        return None
    return f"{family}.{'write' if write else 'read'}"


def translate_scope_parameter(scope: str) -> str:
    """An OAuth ``scope`` parameter with its SMART scopes replaced by the app scopes they
    amount to (RFC 6749 §3.3 lets the server grant other scopes than those asked, and say
    so in the token response).

    Words that are not SMART scopes (the app scopes themselves, ``documents.read``) are kept
    as they are, for the authorization server to judge; launch and identity scopes, which
    ask for no data, are dropped. A parameter holding something that looks like a SMART
    scope but is not one is returned unchanged, so that the server refuses it
    (``invalid_scope``) rather than grant a guess.
    """
    kept: list[str] = []
    smart: list[SmartScope] = []
    for word in scope.split():
        if "/" not in word and word not in LAUNCH_SCOPES:
            kept.append(word)
            continue
        try:
            smart.append(parse_smart_scope(word))
        except ValueError:
            return scope
    if not smart:
        return scope
    return " ".join(dict.fromkeys([*kept, *sorted(app_scopes(smart))]))
