"""The health professions (TRE_G15), read from the shipped CI-SIS value set J01.

JDV_J01_XdsAuthorSpecialty_CISIS lists each profession as ``G15_<code>`` with its name, and
each specialty below it as ``G15_<code>/<specialty>``. The vocabulary is read from that file,
so the codes and their names cannot drift apart (31 is the assistant dentaire, 98 the
manipulateur d'électroradiologie médicale, as the ANS publishes them).

The file is package data of :mod:`monespace.record` (``record/data/``, origin in its
``SOURCES.md``); it is read as a resource of the ``monespace`` package, without importing the
record service.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from importlib import resources
from typing import Final

from .._xml import parse_xml

__all__ = ["PROFESSION_CODE_SYSTEM", "profession_code", "professions"]

#: TRE_G15_ProfessionSante, the code system of the professions in J01.
PROFESSION_CODE_SYSTEM: Final = "1.2.250.1.213.1.1.4.5"
_J01: Final = "JDV_J01_XdsAuthorSpecialty_CISIS.xml"
_SVS: Final = "{urn:ihe:iti:svs:2008}"
_PREFIX: Final = "G15_"


@functools.cache
def professions() -> Mapping[str, str]:
    """TRE_G15 profession code → its name, for every profession of J01 (specialties left
    out), in the order of the value set."""
    data = resources.files("monespace").joinpath("record", "data", _J01).read_bytes()
    root = parse_xml(data)
    found: dict[str, str] = {}
    for concept in root.iter(f"{_SVS}Concept"):
        code = concept.get("code", "")
        if concept.get("codeSystem") != PROFESSION_CODE_SYSTEM or not code.startswith(_PREFIX):
            continue
        profession = code.removeprefix(_PREFIX)
        if "/" not in profession:
            found[profession] = concept.get("displayName", profession)
    return types.MappingProxyType(found)


def profession_code(name: str) -> str:
    """The TRE_G15 code of the profession J01 names *name* (compared without case).

    :raises KeyError: no profession of J01 has that name.
    """
    wanted = name.casefold()
    for code, label in professions().items():
        if label.casefold() == wanted:
            return code
    raise KeyError(name)
