"""The lifecycle rules of a space, as pure functions (monespace.accounts._lifecycle).

Every (state, operation) pair is tried: the allowed ones give the expected state, the others
raise InvalidTransitionError. Deadlines are checked exactly at their boundary, and the
calendar arithmetic on its edge cases (31 January + 1 month, 29 February + 10 years).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monespace.accounts import Account, AccountState, Channel, LifecycleRules
from monespace.accounts import _lifecycle as lc
from monespace.errors import InvalidTransitionError, ValidationError

S = AccountState
RULES = LifecycleRules()
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
#: The opposition window of an invitation sent at T0 closes at midnight, Paris time, after
#: the 42nd day (12 February 2026, 24:00 in Paris): the day the letter prints is whole.
OPENS = lc.end_of_paris_day(T0 + 42 * DAY)
DIED = date(2026, 1, 2)


def in_state(state: AccountState, at: datetime = T0) -> Account:
    """An account that reached *state* at *at* through the ordinary path."""
    registered = Account("p1")
    if state is S.REGISTERED:
        return registered
    if state is S.INVITED:
        return lc.invite(registered, at, Channel.EMAIL, RULES)
    if state is S.CREATED:
        return lc.create_now(registered, at, RULES)
    if state is S.OPPOSED:
        return lc.oppose(in_state(S.INVITED, at), at, RULES)
    active = lc.activate(registered, at, RULES)
    if state is S.ACTIVE:
        return active
    if state is S.SUSPENDED:
        return lc.suspend(active, at, RULES)
    if state is S.CLOSED:
        return lc.close(active, at, RULES)
    pending = lc.request_deletion(active, at, RULES)
    if state is S.PURGE_PENDING:
        return pending
    return lc.purge(pending, at, RULES)


def _record_death(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    return lc.record_death(account, now, DIED, rules)


def _invite(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    return lc.invite(account, now, Channel.LETTER, rules)


# For each operation: the moment it is tried (one at which any time condition of the rule
# holds for an account that reached its state at T0), the states it is allowed from, and
# the state it leads to (None: depends on the state, checked in its own test).
OPERATIONS = {
    "invite": (_invite, T0 + DAY, {S.REGISTERED}, S.INVITED),
    "create_now": (lc.create_now, T0 + DAY, {S.REGISTERED}, S.CREATED),
    "activate": (
        lc.activate,
        T0 + DAY,
        {S.REGISTERED, S.INVITED, S.CREATED, S.OPPOSED},
        S.ACTIVE,
    ),
    "oppose": (lc.oppose, T0 + DAY, {S.REGISTERED, S.INVITED}, S.OPPOSED),
    "auto_create": (lc.auto_create, OPENS, {S.INVITED}, S.CREATED),
    "close": (lc.close, T0 + DAY, {S.ACTIVE, S.CREATED}, S.CLOSED),
    "request_deletion": (
        lc.request_deletion,
        T0 + DAY,
        {S.ACTIVE, S.CREATED, S.CLOSED},
        S.PURGE_PENDING,
    ),
    "purge": (lc.purge, datetime(2036, 1, 1, 9, tzinfo=UTC), {S.CLOSED, S.PURGE_PENDING}, S.PURGED),
    "reopen": (lc.reopen, T0 + DAY, {S.CLOSED}, S.ACTIVE),
    "suspend": (lc.suspend, T0 + DAY, {S.ACTIVE, S.CREATED}, S.SUSPENDED),
    "object_to_suspension": (lc.object_to_suspension, T0 + DAY, {S.SUSPENDED}, S.ACTIVE),
    "close_suspended": (lc.close_suspended, T0 + 42 * DAY, {S.SUSPENDED}, S.CLOSED),
    "record_death": (_record_death, T0 + DAY, set(S) - {S.PURGED}, None),
}

CASES = [(op, state) for op in OPERATIONS for state in S]


def test_the_table_covers_every_state_and_operation():
    assert len(CASES) == len(OPERATIONS) * len(S) == 13 * 9
    allowed = sum(1 for op, state in CASES if state in OPERATIONS[op][2])
    assert allowed == 1 + 1 + 4 + 2 + 1 + 2 + 3 + 2 + 1 + 2 + 1 + 1 + 8


@pytest.mark.parametrize(("operation", "state"), CASES, ids=[f"{o}-{s}" for o, s in CASES])
def test_every_transition_is_allowed_or_refused(operation, state):
    step, when, allowed, target = OPERATIONS[operation]
    account = in_state(state)
    if state in allowed:
        after = step(account, when, RULES)
        if target is not None:
            assert after.state is target
        assert after.patient_id == account.patient_id
    else:
        with pytest.raises(InvalidTransitionError) as info:
            step(account, when, RULES)
        assert info.value.state == str(state)
        assert f"a space that is {state}" in str(info.value)
    # Rules are pure: the account given is never changed.
    assert account == in_state(state)


def test_invalid_transition_errors_are_validation_errors_and_name_the_operation():
    with pytest.raises(ValidationError, match="cannot reopen a space that is active"):
        lc.reopen(in_state(S.ACTIVE), T0, RULES)
    with pytest.raises(InvalidTransitionError) as info:
        lc.close(in_state(S.OPPOSED), T0, RULES)
    assert info.value.operation == "close"


def test_the_timestamps_each_transition_sets():
    invited = lc.invite(Account("p"), T0, Channel.EMAIL, RULES)
    assert (invited.channel, invited.invited_at) == (Channel.EMAIL, T0)
    assert invited.opposition_deadline(RULES) == OPENS == datetime(2026, 2, 12, 23, tzinfo=UTC)
    active = lc.activate(invited, T0 + DAY, RULES)
    assert active.activated_at == active.opened_at == T0 + DAY
    # Activation keeps the date the space was opened by the operator.
    created = lc.auto_create(invited, T0 + 50 * DAY, RULES)
    assert created.opened_at == OPENS  # opened at the deadline, not at the late run
    assert lc.activate(created, T0 + 60 * DAY, RULES).opened_at == OPENS
    closed = lc.close(active, T0 + 2 * DAY, RULES)
    assert closed.closed_at == T0 + 2 * DAY
    assert closed.archive_until == datetime(2036, 1, 3, 9, tzinfo=UTC)
    pending = lc.request_deletion(closed, T0 + 3 * DAY, RULES)
    assert pending.deletion_requested_at == T0 + 3 * DAY
    assert pending.purge_deadline == datetime(2026, 4, 4, 9, tzinfo=UTC)  # 3 months at most
    reopened = lc.reopen(closed, T0 + 4 * DAY, RULES)
    assert (reopened.closed_at, reopened.archive_until) == (None, None)
    suspended = lc.suspend(active, T0 + 5 * DAY, RULES)
    assert suspended.resume_state is S.ACTIVE
    assert suspended.suspension_deadline == T0 + 47 * DAY
    restored = lc.object_to_suspension(suspended, T0 + 6 * DAY, RULES)
    assert restored.state is S.ACTIVE
    assert (restored.suspended_at, restored.suspension_deadline, restored.resume_state) == (
        None,
        None,
        None,
    )


def test_an_objection_restores_the_state_before_the_suspension():
    created = in_state(S.CREATED)
    suspended = lc.suspend(created, T0 + DAY, RULES)
    assert lc.object_to_suspension(suspended, T0 + 2 * DAY, RULES).state is S.CREATED


def test_a_closure_after_a_suspension_dates_from_the_deadline():
    suspended = lc.suspend(in_state(S.ACTIVE), T0, RULES)
    closed = lc.close_suspended(suspended, T0 + 100 * DAY, RULES)
    assert closed.closed_at == T0 + 42 * DAY
    assert closed.archive_until == lc.add_years(T0 + 42 * DAY, 10)
    assert closed.resume_state is None


# --- deadlines at their boundary ---------------------------------------------------------


def test_opposition_on_the_42nd_day_is_allowed_until_midnight_paris_and_refused_then():
    invited = in_state(S.INVITED)
    assert lc.oppose(invited, T0 + 42 * DAY, RULES).state is S.OPPOSED  # 10:00 in Paris
    assert lc.oppose(invited, OPENS - TICK, RULES).opposed_at == OPENS - TICK
    with pytest.raises(InvalidTransitionError, match="opposition window closed; close it instead"):
        lc.oppose(invited, OPENS, RULES)
    with pytest.raises(InvalidTransitionError):
        lc.oppose(invited, T0 + 43 * DAY, RULES)


def test_automatic_creation_happens_at_the_end_of_the_42nd_day_after_sending():
    invited = in_state(S.INVITED)
    with pytest.raises(InvalidTransitionError, match="still running"):
        lc.auto_create(invited, OPENS - TICK, RULES)
    assert lc.due_transition(invited, OPENS - TICK, RULES) is None
    opened = lc.auto_create(invited, OPENS, RULES)
    assert (opened.state, opened.opened_at) == (S.CREATED, OPENS)
    assert lc.due_transition(invited, OPENS, RULES) == opened
    assert invited.deadline_at(RULES) == OPENS


def test_an_objection_to_a_suspension_has_the_same_six_week_boundary():
    suspended = in_state(S.SUSPENDED)
    assert lc.object_to_suspension(suspended, T0 + 42 * DAY - TICK, RULES).state is S.ACTIVE
    with pytest.raises(InvalidTransitionError, match="objection window closed"):
        lc.object_to_suspension(suspended, T0 + 42 * DAY, RULES)
    with pytest.raises(InvalidTransitionError):
        lc.close_suspended(suspended, T0 + 42 * DAY - TICK, RULES)
    assert lc.close_suspended(suspended, T0 + 42 * DAY, RULES).state is S.CLOSED


def test_the_archive_ends_exactly_ten_calendar_years_after_closure():
    closed = in_state(S.CLOSED)
    end = datetime(2036, 1, 1, 9, tzinfo=UTC)
    assert closed.archive_until == end
    assert lc.reopen(closed, end - TICK, RULES).state is S.ACTIVE
    with pytest.raises(InvalidTransitionError, match="archive period has ended"):
        lc.reopen(closed, end, RULES)
    with pytest.raises(InvalidTransitionError, match="archive period has not ended"):
        lc.purge(closed, end - TICK, RULES)
    assert lc.purge(closed, end, RULES).purged_at == end
    assert lc.due_transition(closed, end - TICK, RULES) is None
    assert lc.due_transition(closed, end, RULES).state is S.PURGED


def test_a_deletion_request_is_due_at_once():
    pending = in_state(S.PURGE_PENDING)
    assert pending.deadline_at(RULES) == T0
    assert lc.due_transition(pending, T0, RULES).state is S.PURGED


def test_states_without_deadline():
    for state in (S.REGISTERED, S.CREATED, S.ACTIVE, S.OPPOSED, S.PURGED):
        account = in_state(state)
        assert account.deadline_at(RULES) is None
        assert lc.due_transition(account, datetime(2100, 1, 1, tzinfo=UTC), RULES) is None


def test_durations_are_configurable():
    month = LifecycleRules(opposition_window=timedelta(days=30), archive_years=5)
    invited = lc.invite(Account("p"), T0, Channel.EMAIL, month)
    with pytest.raises(InvalidTransitionError):
        lc.oppose(invited, lc.end_of_paris_day(T0 + 30 * DAY), month)
    assert lc.oppose(invited, T0 + 30 * DAY, month).state is S.OPPOSED
    assert lc.auto_create(invited, lc.end_of_paris_day(T0 + 30 * DAY), month).state is S.CREATED
    closed = lc.close(lc.activate(Account("p"), T0, month), T0, month)
    assert closed.archive_until == datetime(2031, 1, 1, 9, tzinfo=UTC)


# --- deaths ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(S), ids=str)
def test_recording_a_death_from_every_state(state):
    account = in_state(state)
    when = T0 + DAY
    if state is S.PURGED:
        with pytest.raises(InvalidTransitionError):
            lc.record_death(account, when, DIED, RULES)
        return
    after = lc.record_death(account, when, DIED, RULES)
    assert after.died_on == DIED
    if state is S.PURGE_PENDING:
        assert after.state is S.PURGE_PENDING  # the deletion asked for goes ahead
        return
    assert after.state is S.CLOSED
    if state is S.CLOSED:
        assert after.closed_at == T0  # already archived: the archive clock keeps running
    else:
        assert after.closed_at == when
        assert after.archive_until == lc.add_years(when, 10)
    assert (after.suspension_deadline, after.resume_state) == (None, None)
    # Closed and archived for ten years, then purged; never reopened.
    with pytest.raises(InvalidTransitionError, match="its holder died"):
        lc.reopen(after, when + DAY, RULES)
    assert lc.due_transition(after, after.archive_until, RULES).state is S.PURGED


@pytest.mark.parametrize("state", [s for s in S if s is not S.PURGED], ids=str)
def test_a_death_can_be_recorded_without_closing_when_configured(state):
    keep = LifecycleRules(close_on_death=False)
    after = lc.record_death(in_state(state), T0 + DAY, DIED, keep)
    assert after.state is state
    assert after.died_on == DIED


# --- calendar arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, 12, tzinfo=UTC), 1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12, tzinfo=UTC), 1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 4, 30, tzinfo=UTC)),
        (datetime(2026, 10, 31, tzinfo=UTC), 4, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 11, 30, tzinfo=UTC), 3, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 1, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), -1, datetime(2025, 12, 15, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), -1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 5, 31, tzinfo=UTC), 0, datetime(2026, 5, 31, tzinfo=UTC)),
        (datetime(2026, 5, 31, tzinfo=UTC), 24, datetime(2028, 5, 31, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(start, months, expected):
    assert lc.add_months(start, months) == expected


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        (datetime(2024, 2, 29, 8, tzinfo=UTC), 10, datetime(2034, 2, 28, 8, tzinfo=UTC)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), 4, datetime(2028, 2, 29, 8, tzinfo=UTC)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), 1, datetime(2025, 2, 28, 8, tzinfo=UTC)),
        (datetime(2026, 1, 1, 9, tzinfo=UTC), 10, datetime(2036, 1, 1, 9, tzinfo=UTC)),
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            10,
            datetime(2036, 12, 31, 23, 59, tzinfo=UTC),
        ),
    ],
)
def test_add_years_turns_29_february_into_28_february_in_a_common_year(start, years, expected):
    assert lc.add_years(start, years) == expected


def test_add_years_keeps_local_midnight_across_a_time_zone_change():
    paris = ZoneInfo("Europe/Paris")
    born = datetime(2008, 7, 14, tzinfo=paris)  # summer time
    adult = lc.add_years(born, 18)
    assert adult == datetime(2026, 7, 14, tzinfo=paris)
    assert adult.astimezone(UTC) == datetime(2026, 7, 13, 22, tzinfo=UTC)
    winter = lc.add_months(datetime(2026, 7, 14, tzinfo=paris), 6)
    assert winter.astimezone(UTC) == datetime(2027, 1, 13, 23, tzinfo=UTC)


moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)


@given(moments, st.integers(min_value=-1200, max_value=1200))
def test_add_months_moves_by_whole_months_and_never_overflows(start, months):
    result = lc.add_months(start, months)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    last = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, last)
    assert (result.hour, result.minute, result.second, result.microsecond) == (
        start.hour,
        start.minute,
        start.second,
        start.microsecond,
    )
    assert result.tzinfo is start.tzinfo


@given(moments, st.integers(min_value=0, max_value=100))
def test_add_years_is_add_months_times_twelve_and_is_monotonic(start, years):
    result = lc.add_years(start, years)
    assert result == lc.add_months(start, 12 * years)
    assert result >= start
    assert result.month == start.month


@given(
    st.sampled_from([S.INVITED, S.SUSPENDED, S.CLOSED, S.PURGE_PENDING]),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=8000)),
)
def test_the_deadline_run_reaches_a_state_with_nothing_more_due(state, elapsed):
    account = in_state(state)
    now = T0 + elapsed
    steps = 0
    while (following := lc.due_transition(account, now, RULES)) is not None:
        account = following
        steps += 1
        assert steps <= 3
    deadline = account.deadline_at(RULES)
    assert deadline is None or deadline > now
