"""Pure evaluation of the prevention rules: which reminders a person has at a date.

No I/O and no clock: the evaluation date, the person's birth date and sex, the acts done so
far and the conditions with their dates are all passed in, so the same inputs always give
the same reminders. Services add storage and notification around it; tools and notebooks
call :func:`preview` directly.

For one rule, at the date *at* (the *anchor* is the birth date, or the date of the condition
the rule is about):

- a rule that does not apply (sex, birth date, missing condition, past ``until``) gives no
  reminder;
- a one-off rule is ``done`` once proved, else ``upcoming`` within the look-ahead before its
  window, ``due`` inside it, and ``overdue`` after it until ``until``;
- a repeated rule restarts: the next window opens one interval after the latest proof (or at
  ``due_from`` when there is none), and the following ones one interval apart, the interval
  being that of the phase the previous start falls in. Until the next window comes within the
  look-ahead, a proved rule is ``done``;
- a seasonal rule is ``due`` during each campaign the person is eligible for, ``upcoming``
  within the look-ahead before it, and ``done`` when proved from the day it was announced
  (the look-ahead before the campaign opens) on.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from monespace.errors import ValidationError
from monespace.identity import Sex

from ._edition import load_edition
from ._model import (
    Act,
    EventKind,
    EventStatus,
    Family,
    Reminder,
    ReminderRule,
    ReminderStatus,
    RepeatKind,
    RulePack,
    Why,
)

__all__ = [
    "DEFAULT_LOOK_AHEAD",
    "MAX_AGE",
    "TRANSITIONS",
    "Person",
    "acts_from_events",
    "check_transition",
    "check_within_life",
    "code_system",
    "evaluate",
    "evaluate_rule",
    "notice_due",
    "preview",
]

#: How far ahead a window that has not opened yet is shown as ``upcoming``.
DEFAULT_LOOK_AHEAD: Final = dt.timedelta(days=30)

# A repeated rule never needs more windows than this within a lifetime; the bound only
# guards against a malformed interval.
_MAX_WINDOWS: Final = 1000


@attrs.frozen
class Person:
    """The facts the rules read about a person.

    ``done`` maps reminder ids to the date each act was last done; ``acts`` are typed facts
    (vaccines by ATC or CIS code, documents by format or type code); ``conditions`` maps a
    condition a rule may be anchored on (``"pregnancy"``, ``"advance_directives"``) to the
    date it started.
    """

    birth_date: dt.date
    sex: Sex
    done: Mapping[str, dt.date] = attrs.field(factory=dict)
    acts: tuple[Act, ...] = ()
    conditions: Mapping[str, dt.date] = attrs.field(factory=dict)


def preview(
    birth_date: dt.date,
    sex: Sex,
    at: dt.date,
    done: Mapping[str, dt.date] | None = None,
    *,
    acts: Iterable[Act] = (),
    conditions: Mapping[str, dt.date] | None = None,
    edition: str | RulePack | None = None,
    look_ahead: dt.timedelta = DEFAULT_LOOK_AHEAD,
) -> list[Reminder]:
    """The reminders of a person at a date, without a space: for notebooks and tools.

    :param birth_date: the person's birth date.
    :param sex: ``"F"`` or ``"M"``.
    :param at: the evaluation date (the clock is always passed in).
    :param done: reminder id -> date the act was (last) done.
    :param acts: typed facts that may prove acts (vaccines, certificates).
    :param conditions: condition name -> start date, for the rules anchored on one.
    :param edition: an edition name, a rule pack, or None for the default edition.
    :param look_ahead: how long before a window opens it is shown as ``upcoming``.
    :returns: the reminders in calendar order, without the rules that do not apply.

    .. versionadded:: 0.1
    """
    pack = edition if isinstance(edition, RulePack) else load_edition(edition)
    person = Person(
        birth_date=birth_date,
        sex=sex,
        done=dict(done or {}),
        acts=tuple(acts),
        conditions=dict(conditions or {}),
    )
    return evaluate(pack, person, at, look_ahead=look_ahead)


def evaluate(
    pack: RulePack, person: Person, at: dt.date, *, look_ahead: dt.timedelta = DEFAULT_LOOK_AHEAD
) -> list[Reminder]:
    """Evaluate every rule of *pack* for *person* at *at*; rules that do not apply are left out.

    .. versionadded:: 0.1
    """
    reminders = (
        evaluate_rule(rule, pack, person, at, look_ahead=look_ahead) for rule in pack.rules
    )
    return [reminder for reminder in reminders if reminder is not None]


def evaluate_rule(
    rule: ReminderRule,
    pack: RulePack,
    person: Person,
    at: dt.date,
    *,
    look_ahead: dt.timedelta = DEFAULT_LOOK_AHEAD,
) -> Reminder | None:
    """The reminder one rule gives *person* at *at*, or None if the rule does not apply.

    .. versionadded:: 0.1
    """
    if look_ahead < dt.timedelta(0):
        raise ValueError("'look_ahead' must not be negative")
    if at < person.birth_date or not _concerns(rule, person):
        return None
    anchor = person.birth_date if rule.anchor == "birth" else person.conditions.get(rule.anchor)
    if anchor is None or (rule.until is not None and at >= rule.until.after(anchor)):
        return None
    proofs = _proofs(rule, person, anchor, at) if person.done or person.acts else []
    evaluation = _Evaluation(rule, pack, person, anchor, at, look_ahead, proofs)
    if rule.repeat is RepeatKind.SEASONAL:
        return evaluation.seasonal()
    if rule.repeat is RepeatKind.INTERVAL:
        return evaluation.repeated()
    return evaluation.once()


def _concerns(rule: ReminderRule, person: Person) -> bool:
    if rule.sex not in ("any", person.sex):
        return False
    if rule.born_from is not None and person.birth_date < rule.born_from:
        return False
    return rule.born_before is None or person.birth_date < rule.born_before


def _proofs(
    rule: ReminderRule, person: Person, anchor: dt.date, at: dt.date
) -> list[tuple[dt.date, str]]:
    """Every (date, how) proving the rule, up to *at*, oldest first."""
    found: list[tuple[dt.date, str]] = []
    own = person.done.get(rule.id)
    if own is not None:
        found.append((own, f"reminder:{rule.id}"))
    for other in rule.proof.reminders:
        if other in person.done:
            found.append((person.done[other], f"reminder:{other}"))
    matching = sorted(
        ((act.on, f"{act.system}:{act.code}") for act in person.acts if _matches(rule, act)),
    )
    if rule.proof.dose is not None:
        # Dose n of a series is the n-th matching act of the person's life, whenever given.
        matching = matching[rule.proof.dose - 1 : rule.proof.dose]
    start = (rule.proof.start or rule.due_from).after(anchor)
    found.extend((on, how) for on, how in matching if on >= start)
    return sorted(proof for proof in found if proof[0] <= at)


def _matches(rule: ReminderRule, act: Act) -> bool:
    proof = rule.proof
    if act.system == "reminder":
        return act.code == rule.id or act.code in proof.reminders
    if act.system == "atc":
        return any(act.code.upper().startswith(code) for code in proof.atc)
    codes = {"cis": proof.cis, "format_code": proof.format_codes, "type_code": proof.type_codes}
    return act.code in codes[act.system]


@attrs.frozen
class _Evaluation:
    rule: ReminderRule
    pack: RulePack
    person: Person
    anchor: dt.date
    at: dt.date
    look_ahead: dt.timedelta
    proofs: list[tuple[dt.date, str]]

    def once(self) -> Reminder | None:
        rule, at = self.rule, self.at
        start = rule.due_from.after(self.anchor)
        end = None if rule.due_until is None else rule.due_until.after(self.anchor)
        if self.proofs:
            return self._reminder(ReminderStatus.DONE, start, end)
        if at < start:
            if at >= start - self.look_ahead:
                return self._reminder(ReminderStatus.UPCOMING, start, end)
            return None
        if end is None or at < end:
            return self._reminder(ReminderStatus.DUE, start, end)
        return self._reminder(ReminderStatus.OVERDUE, start, end)

    def repeated(self) -> Reminder | None:
        rule, at = self.rule, self.at
        assert rule.due_until is not None  # the loader requires it for repeated rules
        length = rule.due_until.minus(rule.due_from)
        limit = None if rule.until is None else rule.until.after(self.anchor)
        # Without a proof the first window opens at ``due_from``; after one, an interval later,
        # but never before the programme starts (a test done at 45 does not open it at 47).
        first = rule.due_from.after(self.anchor)
        restart = self._next(self.proofs[-1][0]) if self.proofs else first
        start = max(restart, first)
        if at < start:
            if (limit is None or start < limit) and at >= start - self.look_ahead:
                return self._reminder(ReminderStatus.UPCOMING, start, length.after(start))
            if self.proofs and at < restart:
                return self._reminder(ReminderStatus.DONE, start, length.after(start))
            return None
        # The latest window that has opened by *at* (and before the programme ends).
        for _ in range(_MAX_WINDOWS):
            following = self._next(start)
            if following > at or (limit is not None and following >= limit):
                break
            start = following
        end = length.after(start)
        status = ReminderStatus.DUE if at < end else ReminderStatus.OVERDUE
        return self._reminder(status, start, end)

    def _next(self, after: dt.date) -> dt.date:
        """One interval after *after*, the interval of the phase *after* falls in."""
        phases = self.rule.every
        every = phases[0].every
        for phase in phases:
            if phase.start.after(self.anchor) <= after:
                every = phase.every
        return every.after(after)

    def seasonal(self) -> Reminder | None:
        rule, at = self.rule, self.at
        assert rule.season is not None  # the loader requires it for seasonal rules
        eligible = rule.due_from.after(self.anchor)
        for year in (at.year - 1, at.year, at.year + 1):
            first, last = rule.season.window(year)
            start = max(first, eligible)
            if last < at or start > last:
                continue
            end = last + dt.timedelta(days=1)
            # An act counts for a campaign from the day it is announced (the look-ahead before
            # it opens): whoever acts on an upcoming reminder has done it.
            announced = first - self.look_ahead
            proved = [proof for proof in self.proofs if proof[0] >= announced]
            if proved:
                return self._reminder(ReminderStatus.DONE, start, end, proved)
            if start <= at:
                return self._reminder(ReminderStatus.DUE, start, end, [])
            if at >= start - self.look_ahead:
                return self._reminder(ReminderStatus.UPCOMING, start, end, [])
            return None
        return None

    def _reminder(
        self,
        status: ReminderStatus,
        start: dt.date,
        end: dt.date | None,
        proofs: list[tuple[dt.date, str]] | None = None,
    ) -> Reminder:
        rule = self.rule
        used = self.proofs if proofs is None else proofs
        last_act, proved_by = used[-1] if used else (None, None)
        why = Why(
            rule=rule.id,
            edition=self.pack.edition,
            source=rule.source,
            evidence=rule.status,
            sex=self.person.sex,
            age_days=(self.at - self.anchor).days,
            last_act=last_act,
            proved_by=proved_by,
        )
        return Reminder(
            id=rule.id,
            family=rule.family,
            title=rule.title,
            status=status,
            due_from=start,
            # Windows end before their upper age; the reminder shows the last day included.
            due_until=None if end is None else end - dt.timedelta(days=1),
            why=why,
            source=rule.source,
        )


# --- the agenda's events ---------------------------------------------------------------------

#: Which status an event may move to from each status. Rescheduling keeps (or restores)
#: ``planned``; ``done`` is final: a done act is a fact reminders rely on.
TRANSITIONS: Final[Mapping[EventStatus, frozenset[EventStatus]]] = {
    EventStatus.PLANNED: frozenset(
        {EventStatus.PLANNED, EventStatus.DONE, EventStatus.CANCELLED, EventStatus.MISSED}
    ),
    EventStatus.MISSED: frozenset({EventStatus.PLANNED, EventStatus.DONE, EventStatus.CANCELLED}),
    EventStatus.CANCELLED: frozenset({EventStatus.PLANNED}),
    EventStatus.DONE: frozenset(),
}

#: No agenda event is later than this age: past it, a date is a typing mistake.
MAX_AGE: Final = 130


def check_transition(
    current: EventStatus, wanted: EventStatus, starts_at: dt.datetime, now: dt.datetime
) -> None:
    """Refuse a status change the agenda does not allow.

    An event is marked ``done`` or ``missed`` only once it has started.

    :raises ValidationError: naming both statuses.
    """
    if wanted not in TRANSITIONS[current]:
        raise ValidationError(f"an event {current.value} cannot become {wanted.value}")
    if wanted in (EventStatus.DONE, EventStatus.MISSED) and starts_at > now:
        raise ValidationError(f"an event that has not started cannot be {wanted.value}")


def check_within_life(
    starts_at: dt.datetime, ends_at: dt.datetime | None, birth_date: dt.date | None
) -> None:
    """Refuse an event before the person's birth or past any lifetime (a typing mistake,
    or a file about someone else).

    :raises ValidationError: without the dates (they say something about the person).
    """
    if birth_date is None:
        return
    first = dt.datetime.combine(birth_date, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=1)
    last = first + dt.timedelta(days=366 * MAX_AGE)
    for moment in (starts_at, ends_at):
        if moment is not None and not first <= moment <= last:
            raise ValidationError("an event's date falls outside the person's life")


#: Code systems of vaccines, by the names and OIDs a profil médical entry may carry.
_SYSTEMS: Final[Mapping[str, str]] = {
    "atc": "atc",
    "2.16.840.1.113883.6.73": "atc",
    "cis": "cis",
    "1.2.250.1.213.2.3.1": "cis",
}


def code_system(system: str | None) -> str | None:
    """``"atc"`` or ``"cis"`` when *system* names one (by name or OID), else ``None``."""
    return None if system is None else _SYSTEMS.get(system.strip().lower())


def acts_from_events(
    pack: RulePack, birth_date: dt.date, events: Iterable[tuple[EventKind, dt.date, str | None]]
) -> list[Act]:
    """The acts that *done* agenda events prove: ``(kind, date, reminder_id)`` triples.

    An event naming the reminder it fulfils proves that reminder. A ``bilan_prevention``
    without one proves the bilan of the age window its date falls in (one bilan per window).
    Other kinds without a reminder id prove nothing: "a vaccination" does not say which.
    """
    acts: list[Act] = []
    bilans = [rule for rule in pack.rules if rule.family is Family.BILAN_PREVENTION]
    for kind, on, reminder_id in events:
        if reminder_id is not None:
            acts.append(Act(on=on, system="reminder", code=reminder_id))
            continue
        if kind is not EventKind.BILAN_PREVENTION:
            continue
        for rule in bilans:
            end = None if rule.due_until is None else rule.due_until.after(birth_date)
            if rule.due_from.after(birth_date) <= on and (end is None or on < end):
                acts.append(Act(on=on, system="reminder", code=rule.id))
    return acts


def notice_due(reminder: Reminder, opted_out: frozenset[str]) -> bool:
    """Whether a reminder calls for a notice: due now, in a family not opted out of."""
    return reminder.status is ReminderStatus.DUE and str(reminder.family) not in opted_out
