"""Pure rules of the research extracts: keyed pseudonyms, age bands, birth départements, and
the small-cell rules (k-anonymity of the people table, suppression of small aggregate cells).

No I/O and no clock: the service passes the study key and the reference date in.

.. versionadded:: 0.2
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._model import PersonRecord, Suppression

__all__ = [
    "GENERALISED",
    "Aggregate",
    "age_band",
    "aggregate",
    "anonymise_people",
    "departement",
    "pseudonym",
    "study_key",
]

#: The value of a quasi-identifier that was generalised away.
GENERALISED = "*"

_STUDY_KEY_INFO = b"monespace/research/pseudonym/v1/"


def study_key(master_key: bytes, study_id: str) -> bytes:
    """The 32-byte key of *study_id*'s pseudonyms, derived from the master key with
    HKDF-SHA256: the same study gets the same pseudonyms across extracts (while the master
    key stays), two studies cannot link their people, and nobody without the master key can
    recompute a pseudonym from an id."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_STUDY_KEY_INFO + study_id.encode()
    ).derive(master_key)


def pseudonym(key: bytes, patient_id: str) -> str:
    """The pseudonym of *patient_id* under a study's *key*: HMAC-SHA256, 128 bits in hex."""
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def age_band(birth_date: dt.date, at: dt.date, width: int = 10) -> str:
    """The age band of someone born on *birth_date*, at *at*: ``"30-39"`` for width 10.

    Ages of 100 and more share one band (``"100+"``): few people reach them.
    """
    age = at.year - birth_date.year - ((at.month, at.day) < (birth_date.month, birth_date.day))
    age = max(age, 0)
    if age >= 100:
        return "100+"
    low = age - age % width
    return f"{low}-{low + width - 1}" if width > 1 else str(low)


def departement(birth_place_code: str | None, nir_department: str | None = None) -> str:
    """The birth département from the INSEE COG code of the birth place (``"2A004"`` ->
    ``"2A"``, ``"97411"`` -> ``"974"``, ``"99100"`` -> ``"99"``), else the one the NIR
    encodes, else :data:`GENERALISED`."""
    if birth_place_code:
        code = birth_place_code.upper()
        if code.startswith("99"):
            return "99"
        return code[:3] if code[:2] in ("97", "98") else code[:2]
    return nir_department or GENERALISED


def _groups(people: Iterable[PersonRecord]) -> Counter[tuple[str, str, str]]:
    return Counter((p.age_band, p.sex, p.departement) for p in people)


def anonymise_people(
    people: Sequence[PersonRecord], k: int
) -> tuple[tuple[PersonRecord, ...], frozenset[str], tuple[Suppression, ...]]:
    """Make every combination of age band, sex and département hold at least *k* people.

    People in a smaller group first lose their département, then, if the group of the
    generalised is still too small, their age band too; those still in a group below *k*
    are suppressed. Only the people of a small group are touched.

    :return: the people kept, the pseudonyms suppressed, and the report of each step.
    """
    current = list(people)
    report: list[Suppression] = []
    for field, action in (
        ("departement", "generalised departement"),
        ("age_band", "generalised age_band"),
    ):
        counts = _groups(current)
        small = {group for group, n in counts.items() if n < k}
        if not small:
            return tuple(current), frozenset(), tuple(report)
        changed = 0
        for index, person in enumerate(current):
            group = (person.age_band, person.sex, person.departement)
            if group in small and getattr(person, field) != GENERALISED:
                current[index] = attrs.evolve(person, **{field: GENERALISED})
                changed += 1
        if changed:
            report.append(Suppression("people", action, changed))
    counts = _groups(current)
    kept = tuple(p for p in current if counts[(p.age_band, p.sex, p.departement)] >= k)
    suppressed = frozenset(p.pseudonym for p in current) - {p.pseudonym for p in kept}
    if suppressed:
        report.append(Suppression("people", "suppressed person", len(suppressed)))
    return kept, suppressed, tuple(report)


@attrs.frozen
class Aggregate:
    """A table of counts of distinct people, with the cells below *k* suppressed.

    :param rows: one mapping per cell: the grouping columns and ``people`` (``None`` when the
        cell was suppressed).
    :param suppressions: how many cells were suppressed.

    .. versionadded:: 0.2
    """

    name: str
    by: tuple[str, ...]
    rows: tuple[dict[str, object], ...]
    suppressions: tuple[Suppression, ...] = ()


def aggregate(
    records: Iterable[Mapping[str, object]],
    by: Sequence[str],
    *,
    k: int,
    name: str = "aggregate",
    person: str = "pseudonym",
) -> Aggregate:
    """Count the distinct people (column *person*) of each combination of the columns *by*,
    suppressing every count from 1 to ``k - 1`` (its ``people`` is ``None``).

    :param records: rows as mappings, such as the records of a table joined with the people.
    """
    seen: dict[tuple[object, ...], set[object]] = {}
    for record in records:
        seen.setdefault(tuple(record[c] for c in by), set()).add(record[person])
    rows: list[dict[str, object]] = []
    suppressed = 0
    for key in sorted(seen, key=lambda values: tuple(str(v) for v in values)):
        count = len(seen[key])
        shown: int | None = count if count >= k else None
        suppressed += shown is None
        rows.append({**dict(zip(by, key, strict=True)), "people": shown})
    report = (Suppression(name, "suppressed cell", suppressed),) if suppressed else ()
    return Aggregate(name, tuple(by), tuple(rows), report)
