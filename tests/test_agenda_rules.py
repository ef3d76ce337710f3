"""The prevention rule pack and its pure evaluation, checked against a hand-written calendar.

The table below is written by hand from docs/prevention-calendar.md, not generated from the
rule pack, and read by an oracle that shares no code with monespace.agenda: the lifetime
simulation compares the two for many people, month by month from birth to 80.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import functools
import json
from importlib import resources

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monespace import agenda
from monespace.agenda import Act, Person, ReminderStatus, evaluate, load_edition, preview
from monespace.errors import ValidationError

DUE, UPCOMING, OVERDUE, DONE = (
    ReminderStatus.DUE,
    ReminderStatus.UPCOMING,
    ReminderStatus.OVERDUE,
    ReminderStatus.DONE,
)
LOOK_AHEAD = dt.timedelta(days=30)


def Y(years, months=0):
    return (years, months, 0)


def M(months):
    return (0, months, 0)


def D(days):
    return (0, 0, days)


# --- the hand-written calendar ---------------------------------------------------------------
# id: (sex, born_from, born_before, window start, window end (excluded; None: open), the age
# the reminder disappears at (None: never)). Ages are (years, months, days) from birth.
ONCE = {
    # §1 infants
    "vaccination.nirsevimab": ("any", None, None, D(0), M(1), M(6)),
    "vaccination.hexavalent.1": ("any", None, None, M(2), M(3), M(24)),
    "vaccination.pcv.1": ("any", None, None, M(2), M(3), M(24)),
    "vaccination.menb.1": ("any", 2025, None, M(3), M(4), M(24)),
    "vaccination.hexavalent.2": ("any", None, None, M(4), M(5), M(24)),
    "vaccination.pcv.2": ("any", None, None, M(4), M(5), M(24)),
    "vaccination.menb.2": ("any", 2025, None, M(5), M(6), M(24)),
    "vaccination.menacwy.1": ("any", 2025, None, M(6), M(7), M(24)),
    "vaccination.hexavalent.3": ("any", None, None, M(11), M(12), M(24)),
    "vaccination.pcv.3": ("any", None, None, M(11), M(12), M(24)),
    "vaccination.mmr.1": ("any", None, None, M(12), M(13), Y(18)),
    "vaccination.menacwy.2": ("any", 2025, None, M(12), M(13), M(24)),
    "vaccination.menb.3": ("any", 2025, None, M(12), M(13), M(24)),
    "vaccination.mmr.2": ("any", None, None, M(16), M(19), Y(18)),
    "vaccination.menacwy.catchup": ("any", 2020, 2025, M(12), Y(5), Y(5)),
    "vaccination.menb.catchup": ("any", 2020, 2025, M(12), Y(5), Y(5)),
    # §1 children, adolescents, adults
    "vaccination.dtcap.6": ("any", None, None, Y(6), Y(7), Y(11)),
    "vaccination.dtcap.11": ("any", None, None, Y(11), Y(14), Y(25)),
    "vaccination.hpv": ("any", None, None, Y(11), Y(15), Y(27)),
    "vaccination.menacwy.11": ("any", None, None, Y(11), Y(15), Y(25)),
    "vaccination.menb.15": ("any", None, None, Y(15), Y(25), Y(25)),
    "vaccination.dtcap.25": ("any", None, None, Y(25), Y(26), Y(45)),
    "vaccination.dtp.45": ("any", None, None, Y(45), Y(46), Y(65)),
    "vaccination.mmr.catchup": ("any", 1980, None, Y(18), None, None),
    "vaccination.pneumococcal.65": ("any", None, None, Y(65), None, None),
    "vaccination.zoster": ("any", None, None, Y(65), None, None),
    "vaccination.rsv": ("any", None, None, Y(75), None, None),
    # §2 the 20 child examinations (2019); a missed one stays overdue while the next is due
    "child_exam.1": ("any", None, None, D(0), D(8), D(15)),
    "child_exam.2": ("any", None, None, D(8), D(15), M(1)),
    "child_exam.3": ("any", None, None, D(15), M(1), M(3)),
    "child_exam.4": ("any", None, None, M(2), M(3), M(4)),
    "child_exam.5": ("any", None, None, M(3), M(4), M(5)),
    "child_exam.6": ("any", None, None, M(4), M(5), M(6)),
    "child_exam.7": ("any", None, None, M(5), M(6), M(7)),
    "child_exam.8": ("any", None, None, M(6), M(7), M(10)),
    "child_exam.9": ("any", None, None, M(9), M(10), M(13)),
    "child_exam.10": ("any", None, None, M(12), M(13), M(14)),
    "child_exam.11": ("any", None, None, M(13), M(14), M(19)),
    "child_exam.12": ("any", None, None, M(16), M(19), M(25)),
    "child_exam.13": ("any", None, None, M(23), M(25), Y(4)),
    "child_exam.14": ("any", None, None, Y(3), Y(4), Y(5)),
    "child_exam.15": ("any", None, None, Y(4), Y(5), Y(6)),
    "child_exam.16": ("any", None, None, Y(5), Y(6), Y(7)),
    "child_exam.17": ("any", None, None, Y(6), Y(7), Y(10)),
    "child_exam.18": ("any", None, None, Y(8), Y(10), Y(14)),
    "child_exam.19": ("any", None, None, Y(11), Y(14), Y(17)),
    "child_exam.20": ("any", None, None, Y(15), Y(17), Y(18)),
    # §3 M'T dents: the year after each of these birthdays, then gone
    **{f"mt_dents.{n}": ("any", None, None, Y(n), Y(n + 1), Y(n + 1)) for n in range(3, 25, 3)},
    # §4 Mon bilan prévention: one per window, the window ends after its last age
    "bilan_prevention.18-25": ("any", None, None, Y(18), Y(26), Y(26)),
    "bilan_prevention.45-50": ("any", None, None, Y(45), Y(51), Y(51)),
    "bilan_prevention.60-65": ("any", None, None, Y(60), Y(66), Y(66)),
    "bilan_prevention.70-75": ("any", None, None, Y(70), Y(76), Y(76)),
}

# Repeated rules without any act done: (sex, the window starts, the window length, the age
# the programme ends at). A missed window stays overdue until the next one opens.
REPEATED = {
    # §5: colorectal and breast every 2 years 50-74
    "screening.colorectal": ("any", [Y(a) for a in range(50, 75, 2)], 2, Y(75)),
    "screening.breast": ("F", [Y(a) for a in range(50, 75, 2)], 2, Y(75)),
    # §5: cytology at 25, 26, 3 years later (29); the HPV test 3 years after that, then every
    # 5 years to 65
    "screening.cervical": ("F", [Y(a) for a in (25, 26, 29, 32, 37, 42, 47, 52, 57, 62)], 1, Y(66)),
    # §1: dTP at 65, then every 10 years
    "vaccination.dtp.65": ("any", [Y(a) for a in (65, 75, 85, 95)], 1, None),
}

# Seasonal from 65: (the age eligibility starts at, campaign first (month, day), last).
SEASONAL = {
    "vaccination.influenza": (Y(65), (10, 15), (1, 31)),
    "vaccination.covid19": (Y(65), (10, 15), (1, 31)),
}

# Rules anchored on a condition rather than on the birth date: absent without it.
CONDITIONAL = {"mt_dents.pregnancy", "advance_directives.review"}


@functools.cache
def _at_age(birth, age):
    """Birth date plus an age, written independently of AgeOffset: a missing day is clamped."""
    years, months, days = age
    month_index = birth.month - 1 + months
    year = birth.year + years + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(birth.day, last_day)) + dt.timedelta(days=days)


def _applies(sex, born_from, born_before, person_sex, birth):
    return (
        sex in ("any", person_sex)
        and (born_from is None or birth.year >= born_from)
        and (born_before is None or birth.year < born_before)
    )


def expected(birth, sex, at):
    """What the hand-written calendar says for someone who has done nothing: {id: status}."""
    out = {}
    for rule_id, (rsex, born_from, born_before, start, end, gone) in ONCE.items():
        if not _applies(rsex, born_from, born_before, sex, birth):
            continue
        start_d = _at_age(birth, start)
        end_d = None if end is None else _at_age(birth, end)
        if gone is not None and at >= _at_age(birth, gone):
            continue
        if at < start_d - LOOK_AHEAD:
            continue
        if at < start_d:
            out[rule_id] = UPCOMING
        elif end_d is None or at < end_d:
            out[rule_id] = DUE
        else:
            out[rule_id] = OVERDUE
    for rule_id, (rsex, starts, length, stop) in REPEATED.items():
        if rsex not in ("any", sex) or (stop is not None and at >= _at_age(birth, stop)):
            continue
        opened = [s for s in starts if _at_age(birth, s) <= at]
        if not opened:
            if at >= _at_age(birth, starts[0]) - LOOK_AHEAD:
                out[rule_id] = UPCOMING
            continue
        last = opened[-1]
        end = _at_age(birth, (last[0] + length, last[1], last[2]))
        out[rule_id] = DUE if at < end else OVERDUE
    for rule_id, (eligible, first, last) in SEASONAL.items():
        eligible_d = _at_age(birth, eligible)
        for year in (at.year - 1, at.year):
            opens = max(dt.date(year, *first), eligible_d)
            closes = dt.date(year + 1, *last)
            if opens <= at <= closes:
                out[rule_id] = DUE
            elif opens > at and at >= opens - LOOK_AHEAD and opens <= closes:
                out[rule_id] = UPCOMING
    return out


def actual(birth, sex, at, pack):
    return {r.id: r.status for r in evaluate(pack, Person(birth_date=birth, sex=sex), at)}


# 40 birth dates from 1940 to 2025: month ends, 29 February, new year's eve and day, the
# boundaries of the born-from conditions (1980, 2018, 2020, 2025).
BIRTH_DATES = [
    dt.date(1940, 2, 29),
    dt.date(1941, 1, 1),
    dt.date(1943, 12, 31),
    dt.date(1946, 5, 17),
    dt.date(1948, 2, 29),
    dt.date(1950, 8, 31),
    dt.date(1952, 10, 15),
    dt.date(1955, 3, 30),
    dt.date(1958, 11, 30),
    dt.date(1960, 2, 29),
    dt.date(1962, 7, 4),
    dt.date(1965, 1, 31),
    dt.date(1968, 9, 9),
    dt.date(1971, 12, 1),
    dt.date(1974, 6, 30),
    dt.date(1977, 4, 22),
    dt.date(1979, 12, 31),
    dt.date(1980, 1, 1),
    dt.date(1983, 10, 31),
    dt.date(1986, 3, 3),
    dt.date(1988, 2, 29),
    dt.date(1991, 8, 15),
    dt.date(1994, 5, 31),
    dt.date(1997, 11, 11),
    dt.date(2000, 2, 29),
    dt.date(2003, 7, 14),
    dt.date(2006, 12, 25),
    dt.date(2009, 10, 1),
    dt.date(2012, 1, 31),
    dt.date(2015, 6, 1),
    dt.date(2017, 12, 31),
    dt.date(2018, 1, 1),
    dt.date(2019, 8, 31),
    dt.date(2019, 12, 31),
    dt.date(2020, 1, 1),
    dt.date(2020, 2, 29),
    dt.date(2022, 3, 31),
    dt.date(2024, 12, 31),
    dt.date(2025, 1, 1),
    dt.date(2025, 10, 31),
]

# Ages around which the simulation also steps day by day (window edges of many rules).
KEY_AGES = [D(8), M(2), M(12), Y(3), Y(11), Y(25), Y(45), Y(50), Y(65), Y(75)]


def _lifetime(birth):
    """Month by month from birth to 80, plus every day within 3 days of the key ages."""
    days = {_at_age(birth, (0, n, 0)) for n in range(80 * 12 + 1)}
    for age in KEY_AGES:
        edge = _at_age(birth, age)
        days.update(edge + dt.timedelta(days=k) for k in range(-3, 4))
    return sorted(day for day in days if day >= birth)


@pytest.fixture(scope="module")
def pack():
    return load_edition("2025")


def test_the_hand_table_covers_the_whole_pack(pack):
    """Every rule of the pack is in the hand-written calendar and vice versa."""
    hand = set(ONCE) | set(REPEATED) | set(SEASONAL) | CONDITIONAL
    assert {rule.id for rule in pack.rules} == hand


@pytest.mark.parametrize("index", range(len(BIRTH_DATES)))
def test_lifetime_simulation(pack, index):
    """From birth to 80, with nothing done, the reminders are those of the hand table."""
    birth = BIRTH_DATES[index]
    # Both sexes for every birth date, alternating the one checked on each step.
    for step, at in enumerate(_lifetime(birth)):
        sex = "FM"[(step + index) % 2]
        assert actual(birth, sex, at, pack) == expected(birth, sex, at), (birth, sex, at)


# --- done acts suppress and restart ----------------------------------------------------------


def _status(rule_id, birth, sex, at, done=None, **kwargs):
    reminders = {r.id: r for r in preview(birth, sex, at, done, **kwargs)}
    return reminders[rule_id].status if rule_id in reminders else None


BORN = dt.date(1950, 5, 20)


def test_dtp_at_65_then_ten_years_after_the_act():
    """A dTP booster done late restarts the interval from the act, not from the birthday."""
    act = dt.date(2015, 9, 1)  # 65 years and 3 months
    done = {"vaccination.dtp.65": act}
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2015, 6, 1)) == DUE
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2016, 6, 1)) == OVERDUE
    assert _status("vaccination.dtp.65", BORN, "M", act, done) == DONE
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2025, 5, 20), done) == DONE
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2025, 8, 15), done) == UPCOMING
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2025, 9, 1), done) == DUE
    assert _status("vaccination.dtp.65", BORN, "M", dt.date(2026, 9, 1), done) == OVERDUE


def test_colorectal_every_two_years_until_74():
    """A test at 51 makes the next one due at 53, and nothing is due from 75."""
    done = {"screening.colorectal": dt.date(2001, 6, 1)}
    assert _status("screening.colorectal", BORN, "M", dt.date(2002, 6, 1), done) == DONE
    assert _status("screening.colorectal", BORN, "M", dt.date(2003, 6, 1), done) == DUE
    # The window lasts the interval: the next one opens as soon as this one closes.
    (again,) = [
        r for r in preview(BORN, "M", dt.date(2005, 6, 1), done) if r.id.endswith("colorectal")
    ]
    assert (again.status, again.due_from) == (DUE, dt.date(2005, 6, 1))
    late = {"screening.colorectal": dt.date(2024, 1, 1)}
    assert _status("screening.colorectal", BORN, "F", dt.date(2025, 5, 19), late) == DONE
    assert _status("screening.colorectal", BORN, "F", dt.date(2025, 5, 20), late) is None


def test_an_act_before_the_programme_does_not_open_it_early():
    """A screening test at 45 does not bring the programme forward: it still starts at 50."""
    done = {"screening.colorectal": dt.date(1995, 6, 1)}
    assert _status("screening.colorectal", BORN, "M", dt.date(1997, 6, 1), done) is None
    assert _status("screening.colorectal", BORN, "M", dt.date(2000, 5, 1), done) == UPCOMING
    assert _status("screening.colorectal", BORN, "M", dt.date(2000, 5, 20), done) == DUE


def test_cervical_cytology_then_hpv_test():
    """Cytology at 25 and 26, three years later, then the HPV test every 5 years."""
    born = dt.date(1990, 3, 10)
    steps = [
        (dt.date(2015, 4, 1), dt.date(2016, 4, 1)),  # 25 -> one year later
        (dt.date(2016, 4, 1), dt.date(2019, 4, 1)),  # 26 -> three years later
        (dt.date(2019, 4, 1), dt.date(2022, 4, 1)),  # 29 -> three years later (first HPV test)
        (dt.date(2022, 4, 1), dt.date(2027, 4, 1)),  # 32 -> five years later
    ]
    for act, next_due in steps:
        done = {"screening.cervical": act}
        assert _status("screening.cervical", born, "F", act, done) == DONE
        before = next_due - dt.timedelta(days=31)
        assert _status("screening.cervical", born, "F", before, done) == DONE
        reminder = next(
            r for r in preview(born, "F", next_due, done) if r.id == "screening.cervical"
        )
        assert (reminder.status, reminder.due_from) == (DUE, next_due)
        assert reminder.why.last_act == act
    assert _status("screening.cervical", born, "M", dt.date(2020, 1, 1)) is None


def test_influenza_each_season():
    """Done in a campaign, due again in the next one."""
    done = {"vaccination.influenza": dt.date(2020, 10, 20)}
    assert _status("vaccination.influenza", BORN, "F", dt.date(2020, 10, 19), done) == DUE
    assert _status("vaccination.influenza", BORN, "F", dt.date(2021, 1, 31), done) == DONE
    assert _status("vaccination.influenza", BORN, "F", dt.date(2021, 2, 1), done) is None
    assert _status("vaccination.influenza", BORN, "F", dt.date(2021, 9, 20), done) == UPCOMING
    assert _status("vaccination.influenza", BORN, "F", dt.date(2021, 10, 15), done) == DUE
    # Vaccinated once the campaign is announced (within the look-ahead): done for it.
    early = {"vaccination.influenza": dt.date(2022, 9, 25)}
    assert _status("vaccination.influenza", BORN, "F", dt.date(2022, 9, 25), early) == DONE
    assert _status("vaccination.influenza", BORN, "F", dt.date(2022, 12, 1), early) == DONE
    # Turning 65 during a campaign: due from the birthday.
    reminder = next(r for r in preview(BORN, "F", dt.date(2016, 1, 10)) if "influenza" in r.id)
    assert (reminder.status, reminder.due_from, reminder.due_until) == (
        DUE,
        dt.date(2015, 10, 15),
        dt.date(2016, 1, 31),
    )


def test_one_off_acts_stay_done():
    """A one-off act done early or late is done, and says what proved it."""
    born = dt.date(2021, 4, 2)
    done = {"vaccination.dtcap.6": dt.date(2027, 3, 1)}
    reminder = next(
        r for r in preview(born, "M", dt.date(2027, 3, 1), done) if r.id.endswith("dtcap.6")
    )
    assert reminder.status is DONE
    assert reminder.why.proved_by == "reminder:vaccination.dtcap.6"
    assert _status("vaccination.dtcap.6", born, "M", dt.date(2031, 1, 1), done) == DONE
    assert _status("vaccination.dtcap.6", born, "M", dt.date(2032, 4, 2), done) is None


def test_typed_acts_count_doses():
    """Hexavalent doses are the first, second and third act with the ATC code."""
    born = dt.date(2024, 1, 15)
    acts = [
        Act(dt.date(2024, 3, 20), "atc", "J07CA09"),
        Act(dt.date(2024, 5, 20), "atc", "j07ca09"),
    ]
    at = dt.date(2025, 2, 1)  # after the booster's window (11 months), before 24 months
    statuses = {r.id: r for r in preview(born, "F", at, acts=acts)}
    assert statuses["vaccination.hexavalent.1"].status is DONE
    assert statuses["vaccination.hexavalent.1"].why.proved_by == "atc:J07CA09"
    assert statuses["vaccination.hexavalent.2"].status is DONE
    assert statuses["vaccination.hexavalent.3"].status is OVERDUE
    assert statuses["vaccination.pcv.1"].status is OVERDUE


def test_acts_name_a_known_code_system():
    with pytest.raises(ValueError, match="system"):
        Act(dt.date(2020, 1, 1), "snomed", "123")  # type: ignore[arg-type]


def test_certificates_and_other_reminders_prove_acts():
    """The CS8 certificate proves exam 1; MMR dose 2 completes the adult catch-up."""
    born = dt.date(2000, 6, 1)
    cs8 = Act(dt.date(2000, 6, 5), "format_code", "urn:asip:ci-sis:cse-cs8:2017")
    assert _status("child_exam.1", born, "M", dt.date(2000, 6, 10), acts=[cs8]) == DONE
    assert _status("child_exam.1", born, "M", dt.date(2000, 6, 10)) == OVERDUE
    assert _status("vaccination.mmr.catchup", born, "M", dt.date(2019, 1, 1)) == DUE
    done = {"vaccination.mmr.2": dt.date(2001, 11, 1)}
    assert _status("vaccination.mmr.catchup", born, "M", dt.date(2019, 1, 1), done) == DONE


def test_a_dtp_act_before_the_window_does_not_prove_a_later_booster():
    """The dTcaP at 25 does not count as the booster at 45."""
    acts = [Act(dt.date(1975, 6, 1), "atc", "J07CA02")]
    assert _status("vaccination.dtcap.25", BORN, "M", dt.date(1975, 7, 1), acts=acts) == DONE
    assert _status("vaccination.dtp.45", BORN, "M", dt.date(1995, 6, 1), acts=acts) == DUE


def test_rules_anchored_on_a_condition():
    """Pregnancy and stored advance directives start their own clocks."""
    born = dt.date(1990, 1, 1)
    pregnancy = {"pregnancy": dt.date(2024, 1, 10)}
    assert (
        _status("mt_dents.pregnancy", born, "F", dt.date(2024, 4, 10), conditions=pregnancy) == DUE
    )
    assert (
        _status("mt_dents.pregnancy", born, "M", dt.date(2024, 4, 10), conditions=pregnancy) is None
    )
    assert _status("mt_dents.pregnancy", born, "F", dt.date(2024, 4, 10)) is None
    stored = {"advance_directives": dt.date(2023, 5, 1)}
    review = "advance_directives.review"
    assert _status(review, born, "M", dt.date(2024, 1, 1), conditions=stored) is None
    assert _status(review, born, "M", dt.date(2024, 5, 1), conditions=stored) == DUE
    done = {review: dt.date(2024, 6, 1)}
    assert _status(review, born, "M", dt.date(2025, 1, 1), done, conditions=stored) == DONE
    assert _status(review, born, "M", dt.date(2025, 6, 1), done, conditions=stored) == DUE


def test_why_carries_rule_source_and_facts():
    """The user can always see why: the rule, its source and evidence, age and sex."""
    (reminder,) = [r for r in preview(BORN, "F", dt.date(2001, 1, 1)) if r.id == "screening.breast"]
    assert reminder.why.rule == "screening.breast"
    assert reminder.why.edition == "2025"
    assert reminder.why.evidence is agenda.Evidence.UNCONFIRMED
    assert reminder.why.sex == "F"
    assert reminder.why.age_days == (dt.date(2001, 1, 1) - BORN).days
    assert reminder.source.ref
    assert reminder.why.source == reminder.source


def test_look_ahead_is_configurable():
    born = dt.date(2000, 1, 1)
    at = dt.date(2024, 11, 1)  # two months before 25
    assert _status("vaccination.dtcap.25", born, "M", at) is None
    assert (
        _status("vaccination.dtcap.25", born, "M", at, look_ahead=dt.timedelta(days=90)) == UPCOMING
    )
    with pytest.raises(ValueError, match="look_ahead"):
        preview(born, "M", at, look_ahead=dt.timedelta(days=-1))


# --- properties ------------------------------------------------------------------------------

PUBLIC_ID = agenda.REMINDER_ID
births = st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2030, 12, 31))
sexes = st.sampled_from(["F", "M"])
ages = st.integers(min_value=0, max_value=100 * 366)


@given(birth=births, sex=sexes, age=ages)
@example(
    birth=dt.date(2000, 2, 29), sex="F", age=(dt.date(2025, 2, 28) - dt.date(2000, 2, 29)).days
)
@example(
    birth=dt.date(1959, 10, 20), sex="M", age=(dt.date(2025, 1, 31) - dt.date(1959, 10, 20)).days
)
@example(birth=dt.date(2024, 12, 31), sex="F", age=0)
def test_statuses_are_consistent_with_windows(birth, sex, age):
    """Due within the window, upcoming before it, overdue after it; ids follow the grammar."""
    pack = load_edition("2025")
    at = birth + dt.timedelta(days=age)
    for reminder in evaluate(pack, Person(birth_date=birth, sex=sex), at):
        assert PUBLIC_ID.fullmatch(reminder.id)
        start, end = reminder.due_from, reminder.due_until
        assert end is None or start <= end
        if reminder.status is DUE:
            assert start <= at
            assert end is None or at <= end
        elif reminder.status is UPCOMING:
            assert at < start <= at + LOOK_AHEAD
        elif reminder.status is OVERDUE:
            assert end is not None
            assert at > end
        else:
            pytest.fail(f"{reminder.id} is done although nothing was done")


@given(birth=births, sex=sexes, age=ages, chosen=st.integers(min_value=0))
@example(birth=dt.date(1950, 2, 28), sex="F", age=80 * 365, chosen=0)
def test_done_today_is_not_due_today(birth, sex, age, chosen):
    """Whatever is marked done today is not due, upcoming nor overdue today."""
    pack = load_edition("2025")
    at = birth + dt.timedelta(days=age)
    person = Person(birth_date=birth, sex=sex)
    shown = evaluate(pack, person, at)
    if not shown:
        return
    target = shown[chosen % len(shown)]
    after = evaluate(pack, Person(birth_date=birth, sex=sex, done={target.id: at}), at)
    (reminder,) = [r for r in after if r.id == target.id]
    assert reminder.status is DONE
    assert reminder.why.last_act == at


# --- the edition loader ----------------------------------------------------------------------


def _raw_edition():
    path = resources.files("monespace.agenda").joinpath("data", "prevention-2025.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_shipped_editions_load():
    assert "2025" in agenda.editions()
    assert load_edition() is load_edition(agenda.DEFAULT_EDITION)
    assert load_edition().rule("vaccination.hexavalent.1").status is agenda.Evidence.CONFIRMED
    with pytest.raises(KeyError):
        load_edition().rule("vaccination.unknown")
    with pytest.raises(ValidationError, match="1999"):
        load_edition("1999")


def _set(index, key, value):
    def change(data):
        data["items"][index][key] = value

    return change


def _drop(index, key):
    def change(data):
        del data["items"][index][key]

    return change


MALFORMED = [
    (_set(1, "due_from", "2 months"), "vaccination.hexavalent.1", "due_from"),
    (_set(1, "due_until", "1m"), "vaccination.hexavalent.1", "after 'due_from'"),
    (_set(1, "id", "vaccination.Hexavalent"), "vaccination.Hexavalent", "grammar"),
    (_set(1, "id", "child_exam.21"), "child_exam.21", "grammar"),
    (_set(1, "family", "screening"), "vaccination.hexavalent.1", "family"),
    (_set(1, "status", "X"), "vaccination.hexavalent.1", "Evidence"),
    (_set(1, "sex", "W"), "vaccination.hexavalent.1", "sex"),
    (_set(1, "born_from", "2018"), "vaccination.hexavalent.1", "born_from"),
    (_set(1, "colour", "blue"), "vaccination.hexavalent.1", "colour"),
    (_drop(1, "source"), "vaccination.hexavalent.1", "source"),
    (_set(1, "repeat", "interval"), "vaccination.hexavalent.1", "every"),
    (_set(1, "proof", {"dose": 0}), "vaccination.hexavalent.1", "dose"),
    (_set(1, "proof", {"reminders": ["vaccination.nope"]}), "vaccination.hexavalent.1", "nope"),
    (_set(1, "proof", {"atc": "J07"}), "vaccination.hexavalent.1", "list"),
    (_set(1, "until", "1m"), "vaccination.hexavalent.1", "until"),
    (_set(2, "id", "vaccination.hexavalent.1"), "vaccination.hexavalent.1", "twice"),
    (lambda data: data["items"].append("x"), "#", "JSON object"),
    (lambda data: data.pop("title"), "edition", "title"),
]


@pytest.mark.parametrize(("change", "names", "says"), MALFORMED)
def test_the_loader_refuses_malformed_editions(change, names, says):
    """A malformed edition is refused with an error naming the item and the problem."""
    data = copy.deepcopy(_raw_edition())
    assert data["items"][1]["id"] == "vaccination.hexavalent.1"
    change(data)
    with pytest.raises(ValidationError) as caught:
        agenda.parse_edition(data)
    assert names in str(caught.value)
    assert says in str(caught.value)


def test_season_and_phase_errors_name_the_item():
    data = copy.deepcopy(_raw_edition())
    flu = next(item for item in data["items"] if item["id"] == "vaccination.influenza")
    flu["season"] = {"from": "10-32", "until": "01-31"}
    with pytest.raises(ValidationError, match=r"vaccination\.influenza.*season\.from"):
        agenda.parse_edition(data)
    data = copy.deepcopy(_raw_edition())
    cervical = next(item for item in data["items"] if item["id"] == "screening.cervical")
    cervical["every"] = list(reversed(cervical["every"]))
    with pytest.raises(ValidationError, match=r"screening\.cervical.*increasing"):
        agenda.parse_edition(data)
