"""The lifecycle of a person's space, as pure rules.

Every function here takes an :class:`Account` and the current time and returns the next
:class:`Account`, or raises :class:`~monespace.errors.InvalidTransitionError`. Nothing here
reads a clock, touches storage or sends anything: the accounts service does that around these
rules, and the property tests drive them against a reference model.

The states and what moves between them (docs/domain-rules.md §1, CSP R1111-28 and R1111-36)::

    registered ──invite──▶ invited ──activate──▶ active ◀──reopen── closed
        │                    │  │                   │                 │ ▲
        │ create_now         │  └─oppose (≤ 42 d)─▶ opposed ─activate─┘ │
        ▼                    └─(42 d after sending, tick)─▶ created     │
     created ──activate──▶ active        active|created ──close─────────┘
                                          closed ──(10 years, tick)──▶ purged
     closed|active|created ──request_deletion──▶ purge_pending ──(tick)──▶ purged
     active|created ──suspend──▶ suspended ──object (≤ 42 d)──▶ (previous state)
                                     └──(42 d, tick)──▶ closed
     any state but purged ──record_death──▶ closed (assumption: docs/domain-rules.md §1.11;
         purge_pending stays pending; a deceased holder's space is never reopened)
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import attrs

from ..clock import add_months
from ..errors import InvalidTransitionError

__all__ = [
    "Account",
    "AccountState",
    "Channel",
    "LifecycleRules",
    "activate",
    "add_months",
    "add_years",
    "auto_create",
    "close",
    "close_suspended",
    "create_now",
    "due_transition",
    "end_of_paris_day",
    "invite",
    "object_to_suspension",
    "oppose",
    "purge",
    "record_death",
    "reopen",
    "request_deletion",
    "suspend",
]


_PARIS = ZoneInfo("Europe/Paris")


@functools.lru_cache(maxsize=1024)
def end_of_paris_day(moment: datetime) -> datetime:
    """Midnight, Paris time, at the end of the day *moment* falls on there (in UTC): the
    deadlines people are told as a date ("jusqu'au 02/05/2026") last that whole day."""
    day = moment.astimezone(_PARIS).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=_PARIS).astimezone(UTC)


class AccountState(StrEnum):
    """Where a person's space is in its lifecycle."""

    REGISTERED = "registered"
    """Known to the operator, not yet told about the space."""
    INVITED = "invited"
    """The information letter or e-mail was sent; the opposition window runs."""
    CREATED = "created"
    """Opened by the operator (no opposition in time); the person has not activated it."""
    ACTIVE = "active"
    """Activated by the person (or their representative)."""
    OPPOSED = "opposed"
    """The person objected: no space. They may still activate one later."""
    SUSPENDED = "suspended"
    """Suspended by the operator (fraud, malfunction); closes unless the person objects."""
    CLOSED = "closed"
    """Closed; the data are archived for ten years, then purged."""
    PURGE_PENDING = "purge_pending"
    """Deletion requested; the data are purged at the next deadline run (at most 3 months)."""
    PURGED = "purged"
    """The data are gone (crypto-shredded)."""


class Channel(StrEnum):
    """How the information letter was sent (R1111-28: e-mail, else a postal letter)."""

    EMAIL = "email"
    LETTER = "letter"


#: States in which the space exists and can be read and fed.
OPEN_STATES = frozenset({AccountState.ACTIVE, AccountState.CREATED})


@attrs.frozen
class LifecycleRules:
    """The durations of the lifecycle. Each is a documented, configurable default.

    :param opposition_window: from the *sending* of the information until the space opens by
        itself, unless the person objects: six weeks (CSP R1111-28, confirmed; some 2021 press
        said "one month", the draft wording).
    :param code_validity: how long a provisional code works: six weeks (press, partially
        confirmed; the format of the real code is not published).
    :param archive_years: how long a closed space is archived before deletion: ten years
        (CSP R1111-36, confirmed).
    :param deletion_months: the longest delay to honour an express deletion request: three
        months (CSP R1111-36, confirmed). monespace purges at the next deadline run.
    :param suspension_window: how long the person has to object to a suspension before the
        space closes: six weeks (CSP R1111-36, confirmed).
    :param majority_age: when a legal representative's access ends and the young adult is
        invited to take over: 18 (assumption: what happens at 16 or 18 is not published).
    :param close_on_death: close and archive the space when a death is recorded
        (assumption: MES rules for deceased holders are not published, §1.11).
    :param legacy_dmp_transition_end: until when the legacy DMP of a person who opposed stays
        readable by professionals (CNIL délibération 2021-050 on the draft decree: three years
        from 1 January 2022; partially confirmed, the final text was not re-checked, §2).
    """

    opposition_window: timedelta = timedelta(days=42)
    code_validity: timedelta = timedelta(days=42)
    archive_years: int = 10
    deletion_months: int = 3
    suspension_window: timedelta = timedelta(days=42)
    majority_age: int = 18
    close_on_death: bool = True
    legacy_dmp_transition_end: datetime = datetime(2025, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))


def add_years(moment: datetime, years: int) -> datetime:
    """*moment* plus calendar years (29 February becomes 28 February in a common year)."""
    return add_months(moment, 12 * years)


@attrs.frozen
class Account:
    """The lifecycle record of one person's space.

    ``deadline_at`` is derived: the next moment at which :func:`due_transition` has something
    to do, so that the deadline run only looks at accounts that need it.
    """

    patient_id: str
    state: AccountState = AccountState.REGISTERED
    channel: Channel | None = None
    invited_at: datetime | None = None
    opened_at: datetime | None = None
    activated_at: datetime | None = None
    opposed_at: datetime | None = None
    closed_at: datetime | None = None
    archive_until: datetime | None = None
    deletion_requested_at: datetime | None = None
    purge_deadline: datetime | None = None
    purged_at: datetime | None = None
    suspended_at: datetime | None = None
    suspension_deadline: datetime | None = None
    resume_state: AccountState | None = None
    died_on: date | None = None

    @property
    def is_open(self) -> bool:
        """Whether the space exists and may be read and fed."""
        return self.state in OPEN_STATES

    def opposition_deadline(self, rules: LifecycleRules) -> datetime | None:
        """When the opposition window closes (for an invited space): at midnight, Paris
        time, after the day the window ends, so that the day printed in the letter
        ("jusqu'au JJ/MM/AAAA") is a whole day in which an opposition is accepted."""
        if self.invited_at is None:
            return None
        return end_of_paris_day(self.invited_at + rules.opposition_window)

    def deadline_at(self, rules: LifecycleRules) -> datetime | None:
        """The next moment a deadline applies to this account, if any."""
        if self.state is AccountState.INVITED:
            return self.opposition_deadline(rules)
        if self.state is AccountState.CLOSED:
            return self.archive_until
        if self.state is AccountState.PURGE_PENDING:
            return self.deletion_requested_at
        if self.state is AccountState.SUSPENDED:
            return self.suspension_deadline
        return None


def _refuse(operation: str, account: Account, reason: str | None = None) -> InvalidTransitionError:
    return InvalidTransitionError(operation, str(account.state), reason)


def invite(account: Account, now: datetime, channel: Channel, rules: LifecycleRules) -> Account:
    """Record that the information was sent. Only a registered person is invited."""
    if account.state is not AccountState.REGISTERED:
        raise _refuse("invite", account)
    return attrs.evolve(account, state=AccountState.INVITED, channel=channel, invited_at=now)


def create_now(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """Open the space at once, before any letter (a person who asked at a counter)."""
    if account.state is not AccountState.REGISTERED:
        raise _refuse("create", account)
    return attrs.evolve(account, state=AccountState.CREATED, opened_at=now)


def activate(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """The person (or their representative) activates their space.

    Allowed before the letter (early creation, §1.6), during or after the opposition window,
    and after an opposition (the person changed their mind, §1.7).
    """
    if account.state not in (
        AccountState.REGISTERED,
        AccountState.INVITED,
        AccountState.CREATED,
        AccountState.OPPOSED,
    ):
        raise _refuse("activate", account)
    return attrs.evolve(
        account,
        state=AccountState.ACTIVE,
        activated_at=now,
        opened_at=account.opened_at or now,
    )


def oppose(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """The person (or their representative) objects to the creation of the space.

    Only before the space exists: once it is open (or the window has passed), the way out is
    to close it (R1111-36).
    """
    if account.state is AccountState.INVITED:
        deadline = account.opposition_deadline(rules)
        if deadline is not None and now >= deadline:
            raise _refuse("oppose", account, "the opposition window closed; close it instead")
    elif account.state is not AccountState.REGISTERED:
        reason = "close it instead" if account.is_open else None
        raise _refuse("oppose", account, reason)
    return attrs.evolve(account, state=AccountState.OPPOSED, opposed_at=now)


def auto_create(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """Open the space when the opposition window ended without opposition (R1111-28)."""
    deadline = account.opposition_deadline(rules)
    if account.state is not AccountState.INVITED or deadline is None or now < deadline:
        raise _refuse("open", account, "the opposition window is still running")
    return attrs.evolve(account, state=AccountState.CREATED, opened_at=deadline)


def close(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """Close an open space; its data are archived for ten years (R1111-36)."""
    if not account.is_open:
        raise _refuse("close", account)
    return _archived(account, now, rules)


def _archived(account: Account, at: datetime, rules: LifecycleRules) -> Account:
    """The account closed at *at*: archived for ``rules.archive_years``, no suspension left."""
    return attrs.evolve(
        account,
        state=AccountState.CLOSED,
        closed_at=at,
        archive_until=add_years(at, rules.archive_years),
        suspended_at=None,
        suspension_deadline=None,
        resume_state=None,
    )


def request_deletion(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """Express request to delete the data now rather than after ten years (R1111-36).

    From an open space it closes and deletes in one step (the "delete definitively" box).
    """
    if account.state is not AccountState.CLOSED and not account.is_open:
        raise _refuse("delete", account)
    closed = account if account.state is AccountState.CLOSED else close(account, now, rules)
    return attrs.evolve(
        closed,
        state=AccountState.PURGE_PENDING,
        deletion_requested_at=now,
        purge_deadline=add_months(now, rules.deletion_months),
    )


def purge(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """Delete the data: after the archive period, or on an express request."""
    pending = account.state is AccountState.PURGE_PENDING
    archived_out = (
        account.state is AccountState.CLOSED
        and account.archive_until is not None
        and now >= account.archive_until
    )
    if not (pending or archived_out):
        raise _refuse("purge", account, "its archive period has not ended")
    return attrs.evolve(account, state=AccountState.PURGED, purged_at=now)


def reopen(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """A person who closed their space asks for a new one: the archive comes back (R1111-36)."""
    if account.state is not AccountState.CLOSED:
        raise _refuse("reopen", account)
    # Fixed: a space closed because its holder died was reopened like any other, making the
    # archive of a deceased person readable and feedable again. Only the holder may ask for
    # a new space (R1111-36); no heir access is modelled (docs/domain-rules.md §1.11).
    if account.died_on is not None:
        raise _refuse("reopen", account, "its holder died")
    if account.archive_until is not None and now >= account.archive_until:
        raise _refuse("reopen", account, "its archive period has ended")
    return attrs.evolve(
        account,
        state=AccountState.ACTIVE,
        activated_at=now,
        closed_at=None,
        archive_until=None,
    )


def suspend(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """The operator suspends a space (serious malfunction, fraudulent use: R1111-36)."""
    if not account.is_open:
        raise _refuse("suspend", account)
    return attrs.evolve(
        account,
        state=AccountState.SUSPENDED,
        suspended_at=now,
        suspension_deadline=now + rules.suspension_window,
        resume_state=account.state,
    )


def object_to_suspension(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """The person objects within the window: the space is restored as it was."""
    if account.state is not AccountState.SUSPENDED or account.resume_state is None:
        raise _refuse("object to the suspension of", account)
    if account.suspension_deadline is not None and now >= account.suspension_deadline:
        raise _refuse("object to the suspension of", account, "the objection window closed")
    return attrs.evolve(
        account,
        state=account.resume_state,
        suspended_at=None,
        suspension_deadline=None,
        resume_state=None,
    )


def close_suspended(account: Account, now: datetime, rules: LifecycleRules) -> Account:
    """No objection within six weeks of the notice: the operator closes the space."""
    deadline = account.suspension_deadline
    if account.state is not AccountState.SUSPENDED or deadline is None or now < deadline:
        raise _refuse("close", account, "the objection window is still running")
    return _archived(account, deadline, rules)


def record_death(account: Account, now: datetime, died_on: date, rules: LifecycleRules) -> Account:
    """A death is recorded: by default the space is closed and archived (an assumption)."""
    if account.state is AccountState.PURGED:
        raise _refuse("record a death for", account)
    marked = attrs.evolve(account, died_on=died_on)
    if not rules.close_on_death or account.state in (
        AccountState.CLOSED,
        AccountState.PURGE_PENDING,
    ):
        return marked
    if account.is_open:
        return close(marked, now, rules)
    # Never opened (registered, invited, opposed) or suspended: nothing to keep open. The
    # archive clock starts now, as for any closure.
    return _archived(marked, now, rules)


def due_transition(account: Account, now: datetime, rules: LifecycleRules) -> Account | None:
    """The automatic transition due at *now*, if any: what the deadline run applies."""
    deadline = account.deadline_at(rules)
    if deadline is None or now < deadline:
        return None
    if account.state is AccountState.INVITED:
        return auto_create(account, now, rules)
    if account.state is AccountState.SUSPENDED:
        return close_suspended(account, now, rules)
    return purge(account, now, rules)
