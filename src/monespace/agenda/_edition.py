"""Reading an edition of the prevention calendar, strictly.

Editions ship as package data, ``monespace/agenda/data/prevention-<edition>.json``, read
through :mod:`importlib.resources`. The loader refuses anything it does not understand (an
unknown key, a missing one, a malformed age, an id outside the public grammar, a duplicate)
with a :class:`~monespace.errors.ValidationError` that names the edition and the item, so a
mistake in a new edition fails its tests rather than producing wrong reminders.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final, cast

from monespace.errors import ValidationError

from ._model import (
    REMINDER_ID,
    AgeOffset,
    Evidence,
    Family,
    Phase,
    Proof,
    ReminderRule,
    RepeatKind,
    RulePack,
    Season,
    Source,
)

__all__ = ["DEFAULT_EDITION", "editions", "load_edition", "parse_edition"]

#: The edition used when none is named: the calendar in force.
DEFAULT_EDITION: Final = "2025"

_FILE: Final = re.compile(r"prevention-(?P<edition>[0-9A-Za-z_.-]+)\.json")
_TOP_KEYS: Final = frozenset({"edition", "title", "items"})
_REQUIRED: Final = frozenset({"id", "family", "title", "due_from", "due_until", "source", "status"})
_OPTIONAL: Final = frozenset(
    {"sex", "born_from", "born_before", "anchor", "until", "repeat", "every", "season", "proof"}
)
_PROOF_KEYS: Final = frozenset(
    {"reminders", "atc", "cis", "format_codes", "type_codes", "dose", "from"}
)
_MONTH_DAY: Final = re.compile(r"(\d\d)-(\d\d)")


def editions() -> list[str]:
    """The names of the editions shipped with this version of monespace, oldest first."""
    folder = resources.files("monespace.agenda").joinpath("data")
    names = (_FILE.fullmatch(entry.name) for entry in folder.iterdir())
    return sorted(match["edition"] for match in names if match)


def load_edition(edition: str | None = None) -> RulePack:
    """Read a shipped edition of the prevention calendar (the default one if *edition* is None).

    Each edition is read and checked once, then shared: rule packs are immutable.

    :raises ValidationError: if no such edition ships, or if its file is malformed.
    """
    return _load(DEFAULT_EDITION if edition is None else edition)


@functools.cache
def _load(edition: str) -> RulePack:
    if edition not in editions():
        raise ValidationError(f"no prevention calendar edition {edition!r} ships with monespace")
    path = resources.files("monespace.agenda").joinpath("data", f"prevention-{edition}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"edition {edition!r} is not valid JSON: {exc.msg}") from exc
    pack = parse_edition(data)
    if pack.edition != edition:
        raise ValidationError(f"edition {edition!r}: the file names itself {pack.edition!r}")
    return pack


def parse_edition(data: object) -> RulePack:
    """Check and build a rule pack from the decoded JSON of an edition.

    :raises ValidationError: naming the edition and the item at fault.
    """
    top = _mapping(data, "the edition")
    _keys(top, required=_TOP_KEYS, optional=frozenset(), where="the edition")
    edition = _text(top["edition"], "'edition'")
    where_edition = f"edition {edition!r}"
    title = _text(top["title"], f"{where_edition}: 'title'")
    items = top["items"]
    if not isinstance(items, list) or not items:
        raise ValidationError(f"{where_edition}: 'items' must be a non-empty list")
    rules: list[ReminderRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(items):
        item = _mapping(raw, f"{where_edition}: item #{index}")
        name = item.get("id")
        label = f"item {name!r}" if isinstance(name, str) else f"item #{index}"
        where = f"{where_edition}, {label}"
        try:
            rule = _rule(item)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(f"{where}: {exc}") from exc
        if rule.id in seen:
            raise ValidationError(f"{where}: the id is used twice")
        seen.add(rule.id)
        rules.append(rule)
    for rule in rules:
        for other in rule.proof.reminders:
            if other not in seen:
                raise ValidationError(
                    f"{where_edition}, item {rule.id!r}: 'proof.reminders' names {other!r}, "
                    "which the edition does not define"
                )
    return RulePack(edition=edition, title=title, rules=tuple(rules))


def _rule(item: Mapping[str, Any]) -> ReminderRule:
    _keys(item, required=_REQUIRED, optional=_OPTIONAL, where="the item")
    rule_id = _text(item["id"], "'id'")
    if not REMINDER_ID.fullmatch(rule_id):
        raise ValueError(f"'id' must follow the public grammar of reminder ids (got {rule_id!r})")
    family = Family(_text(item["family"], "'family'"))
    if not rule_id.startswith(f"{family}."):
        raise ValueError(f"'id' must start with its family {str(family)!r}")
    due_from = _offset(item["due_from"], "due_from")
    due_until = None if item["due_until"] is None else _offset(item["due_until"], "due_until")
    if due_until is not None and due_until.after(_EPOCH) <= due_from.after(_EPOCH):
        raise ValueError("'due_until' must come after 'due_from'")
    until = _offset(item["until"], "until") if item.get("until") is not None else None
    if until is not None and until.after(_EPOCH) < (due_until or due_from).after(_EPOCH):
        raise ValueError("'until' must not come before the end of the window")
    repeat = RepeatKind(item.get("repeat", "none"))
    every = tuple(_phase(raw) for raw in _list(item.get("every", []), "every"))
    season = _season(item["season"]) if item.get("season") is not None else None
    if (repeat is RepeatKind.INTERVAL) != bool(every):
        raise ValueError("'every' is required with repeat 'interval', and only with it")
    if repeat is RepeatKind.INTERVAL and due_until is None:
        raise ValueError("a repeated rule needs 'due_until' (the length of each window)")
    if (repeat is RepeatKind.SEASONAL) != (season is not None):
        raise ValueError("'season' is required with repeat 'seasonal', and only with it")
    starts = [phase.start.after(_EPOCH) for phase in every]
    if starts != sorted(set(starts)):
        raise ValueError("the phases of 'every' must start at increasing ages")
    sex = item.get("sex", "any")
    if sex not in ("F", "M", "any"):
        raise ValueError(f"'sex' must be 'F', 'M' or 'any' (got {sex!r})")
    source = _mapping(item["source"], "'source'")
    _keys(source, required=frozenset({"text", "ref"}), optional=frozenset(), where="'source'")
    return ReminderRule(
        id=rule_id,
        family=family,
        title=_text(item["title"], "'title'"),
        due_from=due_from,
        due_until=due_until,
        source=Source(
            text=_text(source["text"], "'source.text'"), ref=_text(source["ref"], "'source.ref'")
        ),
        status=Evidence(item["status"]),
        sex=sex,
        born_from=_date(item.get("born_from"), "born_from"),
        born_before=_date(item.get("born_before"), "born_before"),
        anchor=_text(item.get("anchor", "birth"), "'anchor'"),
        until=until,
        repeat=repeat,
        every=every,
        season=season,
        proof=_proof(item.get("proof", {})),
    )


# Offsets are compared through the date they give from a fixed start; a leap day would clamp.
_EPOCH: Final = dt.date(2001, 1, 1)


def _proof(raw: object) -> Proof:
    proof = _mapping(raw, "'proof'")
    _keys(proof, required=frozenset(), optional=_PROOF_KEYS, where="'proof'")
    dose = proof.get("dose")
    if dose is not None and (not isinstance(dose, int) or isinstance(dose, bool) or dose < 1):
        raise ValueError(f"'proof.dose' must be a positive integer (got {dose!r})")
    start = proof.get("from")
    return Proof(
        reminders=_codes(proof, "reminders"),
        atc=_codes(proof, "atc"),
        cis=_codes(proof, "cis"),
        format_codes=_codes(proof, "format_codes"),
        type_codes=_codes(proof, "type_codes"),
        dose=dose,
        start=None if start is None else _offset(start, "proof.from"),
    )


def _phase(raw: object) -> Phase:
    phase = _mapping(raw, "a phase of 'every'")
    keys = frozenset({"from", "every"})
    _keys(phase, required=keys, optional=frozenset(), where="a phase of 'every'")
    every = _offset(phase["every"], "every.every")
    if every.after(_EPOCH) <= _EPOCH:
        raise ValueError("an interval of 'every' must be positive")
    return Phase(start=_offset(phase["from"], "every.from"), every=every)


def _season(raw: object) -> Season:
    season = _mapping(raw, "'season'")
    keys = frozenset({"from", "until"})
    _keys(season, required=keys, optional=frozenset(), where="'season'")
    start, end = (_month_day(season[key], f"season.{key}") for key in ("from", "until"))
    return Season(start=start, end=end)


def _month_day(raw: object, name: str) -> tuple[int, int]:
    match = _MONTH_DAY.fullmatch(raw) if isinstance(raw, str) else None
    try:
        if match is None:
            raise ValueError
        month, day = int(match[1]), int(match[2])
        dt.date(2001, month, day)
    except ValueError:
        raise ValueError(f"{name!r} must be a month and day like '10-15' (got {raw!r})") from None
    return month, day


def _offset(raw: object, name: str) -> AgeOffset:
    if not isinstance(raw, str):
        raise TypeError(f"{name!r} must be an age offset like '2m' or '65y' (got {raw!r})")
    try:
        return AgeOffset.parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name!r}: {exc}") from None


def _date(raw: object, name: str) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(cast(str, raw))
    except (TypeError, ValueError):
        raise ValueError(f"{name!r} must be an ISO date like '2018-01-01' (got {raw!r})") from None


def _codes(proof: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = _list(proof.get(key, []), f"proof.{key}")
    if not all(isinstance(value, str) and value for value in values):
        raise TypeError(f"'proof.{key}' must be a list of non-empty strings")
    return tuple(values)


def _list(raw: object, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise TypeError(f"{name!r} must be a list (got {type(raw).__name__})")
    return raw


def _text(raw: object, name: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(f"{name} must be a non-empty string (got {raw!r})")
    return raw


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError(f"{where} must be a JSON object (got {type(raw).__name__})")
    return cast(Mapping[str, Any], raw)


def _keys(
    data: Mapping[str, Any], *, required: frozenset[str], optional: frozenset[str], where: str
) -> None:
    missing = sorted(required - data.keys())
    if missing:
        raise ValidationError(f"{where} lacks {', '.join(map(repr, missing))}")
    unknown = sorted(data.keys() - required - optional)
    if unknown:
        raise ValidationError(f"{where} has unknown keys {', '.join(map(repr, unknown))}")
