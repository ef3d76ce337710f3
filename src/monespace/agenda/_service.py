"""``space.agenda``: a person's appointments and health events, and prevention reminders.

Orchestration only: open a unit of work, ask the policy, apply the pure rules of
``_rules``, map through ``_mapping``, store, audit. Reminders are the pure evaluation of the
prevention calendar fed with facts read from the record (vaccinations of the profil médical,
certificates and reports among the documents, done agenda events); :meth:`AgendaService.tick`
queues a notice for each newly due reminder, once per window, without any health content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from monespace._ids import new_id
from monespace.accounts import account_from_row, representation_from_row
from monespace.actors import Actor
from monespace.errors import NotFoundError, ValidationError
from monespace.identities import read_contact, read_identity
from monespace.policy import Action, Resource
from monespace.record import ENTRY_KIND, DocumentStatus, ProfileSection, entry_from_row
from monespace.storage import AgendaEventRow, ReminderOptOutRow, ReminderSentRow, Slice

from ._edition import load_edition
from ._ical import DEFAULT_HORIZON, ImportReport, ParsedEvent, read_calendar, write_calendar
from ._mapping import (
    EVENT_KIND,
    SENT_KIND,
    change_from_row,
    event_from_row,
    event_payload,
    event_row,
    sent_from_row,
    why_payload,
)
from ._model import (
    PARIS,
    Act,
    Event,
    EventChange,
    EventKind,
    EventStatus,
    Family,
    Reminder,
    RulePack,
    SentReminder,
)
from ._rules import (
    DEFAULT_LOOK_AHEAD,
    Person,
    acts_from_events,
    check_transition,
    check_within_life,
    code_system,
    evaluate,
    notice_due,
)

if TYPE_CHECKING:
    from monespace._unit import Core, Unit
    from monespace.identities import PatientIdentity
    from monespace.storage import Transaction

__all__ = ["REMINDER_NOTICE", "AgendaService"]

#: The notice a reminder sends: it says that there is a reminder, never what it is about
#: (no antigen, no exam, no age): the details are behind the person's login.
REMINDER_NOTICE: Final = (
    "Nouveau rappel de prévention",
    "Vous avez un nouveau rappel de prévention dans Mon espace santé.\n"
    "Connectez-vous pour le consulter, voir pourquoi il vous est proposé, ou choisir les "
    "rappels que vous recevez.\n",
)
#: The notice a representative receives for a person they represent.
REPRESENTATIVE_NOTICE: Final = (
    "Nouveau rappel de prévention",
    "Vous avez un nouveau rappel de prévention dans Mon espace santé pour une personne que "
    "vous représentez.\nConnectez-vous pour le consulter.\n",
)


class AgendaService:
    """``space.agenda``: a person's agenda and their prevention reminders.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def pack(self) -> RulePack:
        """The edition of the prevention calendar this space evaluates
        (``Settings.agenda.edition``)."""
        return load_edition(self._core.settings.agenda.edition)

    # --- events ------------------------------------------------------------------------------

    def add(
        self,
        actor: Actor,
        patient_id: str,
        *,
        kind: EventKind | str,
        starts_at: dt.datetime,
        ends_at: dt.datetime | None = None,
        title: str | None = None,
        place: str | None = None,
        professional: str | None = None,
        establishment: str | None = None,
        notes: str | None = None,
        documents: Sequence[str] = (),
        reminder_id: str | None = None,
        status: EventStatus | str = EventStatus.PLANNED,
    ) -> Event:
        """Add an event to *patient_id*'s agenda (``planned``, or ``done`` for a past act).

        :raises ValidationError: a naive time, an end before the start, a date outside the
            person's life, an unknown reminder id or kind, a control character in a text.
        :raises AccessDeniedError: for anyone but the holder, their representative or a
            professional with access to the record (apps are refused for now).
        """
        event_id = new_id()
        event = Event(
            id=event_id,
            patient_id=patient_id,
            kind=kind,
            starts_at=starts_at,
            ends_at=ends_at,
            status=EventStatus.PLANNED,
            title=title,
            place=place,
            professional=professional,
            establishment=establishment,
            notes=notes,
            documents=tuple(documents),
            reminder_id=reminder_id,
            uid=f"{event_id}@monespace",
        )
        wanted = EventStatus(status)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda", event_id)
            decision = unit.authorize(actor, Action.AGENDA_WRITE, resource)
            self._check_life(unit, event)
            self._check_documents(unit, event)
            if wanted is not EventStatus.PLANNED:
                check_transition(EventStatus.PLANNED, wanted, event.starts_at, unit.now)
                event = attrs.evolve(event, status=wanted)
            event = attrs.evolve(event, changed_at=unit.now)
            unit.tx.agenda.add(self._row(unit, actor, event, "created"))
            unit.record(actor, Action.AGENDA_WRITE, resource, decision)
            return event

    def get(self, actor: Actor, patient_id: str, event_id: str) -> Event:
        """One event of *patient_id*'s agenda.

        :raises NotFoundError: when the agenda has no such event.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda", event_id)
            decision = unit.authorize(actor, Action.AGENDA_READ, resource)
            row = unit.tx.agenda.get(patient_id, event_id)
            if row is None:
                raise NotFoundError("no such event in this agenda")
            event = self._open(unit, row)
            unit.record(actor, Action.AGENDA_READ, resource, decision)
            return event

    def events(
        self,
        actor: Actor,
        patient_id: str,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: EventStatus | str | None = None,
    ) -> list[Event]:
        """The events of *patient_id*'s agenda starting in ``[since, until)``, by start time."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda")
            decision = unit.authorize(actor, Action.AGENDA_READ, resource)
            rows = unit.tx.agenda.for_patient(
                patient_id,
                since=since,
                until=until,
                status=None if status is None else str(EventStatus(status)),
            )
            events = [self._open(unit, row) for row in rows]
            unit.record(actor, Action.AGENDA_READ, resource, decision)
            return events

    def reschedule(
        self,
        actor: Actor,
        patient_id: str,
        event_id: str,
        starts_at: dt.datetime,
        ends_at: dt.datetime | None = None,
    ) -> Event:
        """Move an event (it becomes ``planned`` again if it was missed or cancelled)."""
        return self._change(
            actor,
            patient_id,
            event_id,
            "rescheduled",
            lambda event, now: attrs.evolve(
                event,
                starts_at=starts_at,
                ends_at=ends_at,
                status=self._moved(event, EventStatus.PLANNED, now),
                sequence=event.sequence + 1,
            ),
        )

    def cancel(self, actor: Actor, patient_id: str, event_id: str) -> Event:
        """Cancel an event; it stays in the agenda and its history."""
        return self._status(actor, patient_id, event_id, EventStatus.CANCELLED, "cancelled")

    def mark_done(self, actor: Actor, patient_id: str, event_id: str) -> Event:
        """Mark an event done (once it has started): a done event may prove a reminder."""
        return self._status(actor, patient_id, event_id, EventStatus.DONE, "done")

    def mark_missed(self, actor: Actor, patient_id: str, event_id: str) -> Event:
        """Mark an event missed (once it has started)."""
        return self._status(actor, patient_id, event_id, EventStatus.MISSED, "missed")

    def history(self, actor: Actor, patient_id: str, event_id: str) -> list[EventChange]:
        """Every version of an event, oldest first: what changed, when, and by whom.

        :raises NotFoundError: when the agenda has no such event.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda", event_id)
            decision = unit.authorize(actor, Action.AGENDA_READ, resource)
            rows = unit.tx.agenda.history(patient_id, event_id)
            if not rows:
                raise NotFoundError("no such event in this agenda")
            unit.record(actor, Action.AGENDA_READ, resource, decision)
            return [change_from_row(row) for row in rows]

    # --- iCalendar ---------------------------------------------------------------------------

    def export_ics(self, actor: Actor, patient_id: str, *, include_details: bool = False) -> bytes:
        """The whole agenda as one iCalendar (RFC 5545) file.

        UIDs are stable across exports; times are given in Europe/Paris with its VTIMEZONE.
        Only the kind of each event (and its place) is written unless *include_details*:
        then titles, professionals, establishments and notes too.
        """
        events = self.events(actor, patient_id)
        return write_calendar(events, include_details=include_details, now=self._core.now())

    def import_ics(
        self,
        actor: Actor,
        patient_id: str,
        data: bytes,
        *,
        horizon: dt.timedelta = DEFAULT_HORIZON,
    ) -> ImportReport:
        """Import an iCalendar file from a booking platform, in one transaction.

        New UIDs are added; a UID already known is updated when its SEQUENCE (then its
        LAST-MODIFIED) is newer, and cancelled by ``STATUS:CANCELLED`` or ``METHOD:CANCEL``;
        a recurring event is expanded into its occurrences up to *horizon* from now.

        :raises ValidationError: an oversized file, too many events or occurrences, a bad
            time zone or date, a value carrying line breaks, a date outside the person's
            life; nothing is stored then.
        """
        now = self._core.now()
        parsed = read_calendar(data, now=now, horizon=horizon)
        report = ImportReport()
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda")
            decision = unit.authorize(actor, Action.AGENDA_WRITE, resource)
            birth = self._birth_date(unit, patient_id)
            for item in parsed:
                check_within_life(item.starts_at, item.ends_at, birth)
                report = self._apply(unit, actor, patient_id, item, report)
            unit.record(actor, Action.AGENDA_WRITE, resource, decision)
        return report

    # --- reminders ---------------------------------------------------------------------------

    def reminders(
        self,
        actor: Actor,
        patient_id: str,
        at: dt.date | None = None,
        *,
        look_ahead: dt.timedelta = DEFAULT_LOOK_AHEAD,
    ) -> list[Reminder]:
        """The prevention reminders of *patient_id* at *at* (default: today, Paris time),
        each with ``why`` (the rule, its source, the facts used).

        :raises NotFoundError: when the person is unknown.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "reminders")
            decision = unit.authorize(actor, Action.REMINDERS_READ, resource)
            person = self._person(unit.tx, patient_id)
            if person is None:
                raise NotFoundError("no such person")
            day = at or _today(unit.now)
            reminders = evaluate(self.pack, person, day, look_ahead=look_ahead)
            unit.record(actor, Action.REMINDERS_READ, resource, decision)
            return reminders

    def opt_out(self, actor: Actor, patient_id: str, family: Family | str) -> bool:
        """Stop reminder notices of one family (décret 2024-468: at any time, without a
        reason); ``False`` if they were already stopped. Reminders stay visible."""
        chosen = Family(family)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "reminders", str(chosen))
            decision = unit.authorize(actor, Action.REMINDERS_SETTINGS, resource)
            changed = unit.tx.agenda.set_opt_out(
                ReminderOptOutRow(patient_id, str(chosen), unit.now)
            )
            unit.record(actor, Action.REMINDERS_SETTINGS, resource, decision)
            return changed

    def opt_in(self, actor: Actor, patient_id: str, family: Family | str) -> bool:
        """Receive reminder notices of one family again; ``False`` if they were not stopped."""
        chosen = Family(family)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "reminders", str(chosen))
            decision = unit.authorize(actor, Action.REMINDERS_SETTINGS, resource)
            changed = unit.tx.agenda.clear_opt_out(patient_id, str(chosen))
            unit.record(actor, Action.REMINDERS_SETTINGS, resource, decision)
            return changed

    def opted_out(self, actor: Actor, patient_id: str) -> set[Family]:
        """The families of reminders *patient_id* receives no notice of."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "reminders")
            decision = unit.authorize(actor, Action.REMINDERS_READ, resource)
            families = {Family(row.family) for row in unit.tx.agenda.opt_outs(patient_id)}
            unit.record(actor, Action.REMINDERS_READ, resource, decision)
            return families

    def sent(
        self, actor: Actor, patient_id: str, reminder_id: str | None = None
    ) -> list[SentReminder]:
        """The reminder notices sent about *patient_id*, and why each was sent."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "reminders", reminder_id)
            decision = unit.authorize(actor, Action.REMINDERS_READ, resource)
            found = [
                sent_from_row(
                    row,
                    self._core.keyring.open(
                        unit.tx, patient_id, SENT_KIND, _sent_object(row), row.sealed
                    ),
                    "holder" if row.recipient_id == patient_id else "representative",
                )
                for row in unit.tx.agenda.sent(patient_id, reminder_id)
            ]
            unit.record(actor, Action.REMINDERS_READ, resource, decision)
            return found

    def tick(
        self, now: dt.datetime | None = None, *, batch: int = 500, part: Slice | None = None
    ) -> dict[str, int]:
        """Queue a notice for every reminder newly due at *now*, once per window.

        Pages through every person (ids after the last, *batch* at a time, one transaction
        a page), so that memory stays flat however many there are. Notices go to the holder
        and to each of their representatives, except the yearly review of directives
        anticipées, which goes to its author only (R1111-19). Families the person opted out
        of are skipped. A second run finds nothing new.

        :return: ``reminders_sent``: how many (reminder, recipient) pairs were recorded as
            sent; each recipient gets one e-mail per tick, however many reminders it covers.
        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        moment = now if now is not None else self._core.now()
        day = _today(moment)
        counts = {"reminders_sent": 0}
        after: str | None = None
        system = Actor.system("reminders")
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                ids = unit.tx.patients.ids(after=after, limit=batch)
                for patient_id in ids:
                    # Paged by id, so a slice can be picked here without missing anyone.
                    if part is None or part.holds(patient_id):
                        counts["reminders_sent"] += self._remind(unit, system, patient_id, day)
            if len(ids) < batch:
                return counts
            after = ids[-1]

    # --- internals ---------------------------------------------------------------------------

    def _remind(self, unit: Unit, system: Actor, patient_id: str, day: dt.date) -> int:
        tx = unit.tx
        account = tx.accounts.get(patient_id)
        if account is None or not account_from_row(account).is_open:
            return 0
        person = self._person(tx, patient_id)
        if person is None:
            return 0
        opted_out = frozenset(row.family for row in tx.agenda.opt_outs(patient_id))
        due = [r for r in evaluate(self.pack, person, day) if notice_due(r, opted_out)]
        if not due:
            return 0
        representatives = [
            link.representative_id
            for link in map(representation_from_row, tx.representations.of_patient(patient_id))
            if link.active(unit.now)
        ]
        sent = 0
        told: set[str] = set()
        for reminder in due:
            recipients = [patient_id]
            if reminder.family is not Family.ADVANCE_DIRECTIVES:
                recipients += representatives
            for recipient in recipients:
                row = ReminderSentRow(
                    patient_id=patient_id,
                    reminder_id=reminder.id,
                    cycle=reminder.due_from.isoformat(),
                    recipient_id=recipient,
                    sent_at=unit.now,
                    sealed=b"",
                )
                sealed = self._core.keyring.seal(
                    tx, patient_id, SENT_KIND, _sent_object(row), why_payload(reminder.why)
                )
                if not tx.agenda.mark_sent(attrs.evolve(row, sealed=sealed)):
                    continue
                unit.record(
                    system,
                    "reminder.send",
                    Resource(patient_id, "reminder", reminder.id),
                    "reminder_due",
                )
                sent += 1
                # One notice per recipient and tick, however many reminders fell due.
                if recipient not in told:
                    told.add(recipient)
                    self._tell(unit, patient_id, recipient)
        return sent

    def _tell(self, unit: Unit, patient_id: str, recipient: str) -> None:
        contact = read_contact(self._core, unit.tx, recipient)
        if contact is None or not contact.email:
            return
        subject, body = REMINDER_NOTICE if recipient == patient_id else REPRESENTATIVE_NOTICE
        unit.notify(
            channel="email",
            recipient=contact.email,
            subject=subject,
            body=body,
            kind="prevention-reminder",
            patient_id=patient_id,
        )

    def _person(
        self, tx: Transaction, patient_id: str, identity: PatientIdentity | None = None
    ) -> Person | None:
        """The facts the prevention rules read about a person, from their record (and their
        *identity*, read here unless given)."""
        if identity is None:
            identity = read_identity(self._core, tx, patient_id)
        if identity is None or identity.ins.traits is None:
            return None
        traits = identity.ins.traits
        acts: list[Act] = []
        conditions: dict[str, dt.date] = {}
        for entry_row in tx.profile.for_patient(patient_id, kind=str(ProfileSection.VACCINATION)):
            entry = entry_from_row(
                entry_row,
                self._core.keyring.open(tx, patient_id, ENTRY_KIND, entry_row.id, entry_row.sealed),
            )
            system = code_system(entry.code.system if entry.code else None)
            if entry.code is not None and system in ("atc", "cis"):
                on = entry.started or entry_row.at.date()
                acts.append(
                    Act(on=on, system="atc" if system == "atc" else "cis", code=entry.code.code)
                )
        directives = tx.profile.for_patient(patient_id, kind=str(ProfileSection.ADVANCE_DIRECTIVES))
        if directives:
            # Counted from when they were first stored (in clear: no decryption needed).
            conditions["advance_directives"] = _today(directives[0].at)
        for document in tx.documents.for_patient(patient_id):
            if document.status != DocumentStatus.APPROVED:
                continue
            on = document.created_at.date()
            if document.format_code:
                acts.append(Act(on=on, system="format_code", code=document.format_code))
            acts.append(Act(on=on, system="type_code", code=document.type_code))
        done = tx.agenda.for_patient(patient_id, status=str(EventStatus.DONE))
        acts += acts_from_events(
            self.pack,
            traits.birth_date,
            ((EventKind(r.kind), _today(r.starts_at), r.reminder_id) for r in done),
        )
        return Person(
            birth_date=traits.birth_date, sex=traits.sex, acts=tuple(acts), conditions=conditions
        )

    def _birth_date(self, unit: Unit, patient_id: str) -> dt.date | None:
        identity = read_identity(self._core, unit.tx, patient_id)
        if identity is None or identity.ins.traits is None:
            return None
        return identity.ins.traits.birth_date

    def _check_life(self, unit: Unit, event: Event) -> None:
        check_within_life(event.starts_at, event.ends_at, self._birth_date(unit, event.patient_id))

    @staticmethod
    def _check_documents(unit: Unit, event: Event) -> None:
        for document_id in event.documents:
            row = unit.tx.documents.get(document_id)
            if row is None or row.patient_id != event.patient_id:
                raise ValidationError("a linked document is not in this person's record")

    @staticmethod
    def _moved(event: Event, wanted: EventStatus, now: dt.datetime) -> EventStatus:
        if event.status is not wanted:
            check_transition(event.status, wanted, event.starts_at, now)
        elif event.status is EventStatus.DONE:
            raise ValidationError("a done event cannot be changed")
        return wanted

    def _status(
        self, actor: Actor, patient_id: str, event_id: str, wanted: EventStatus, change: str
    ) -> Event:
        def apply(event: Event, now: dt.datetime) -> Event:
            check_transition(event.status, wanted, event.starts_at, now)
            sequence = event.sequence + (wanted is EventStatus.CANCELLED)
            return attrs.evolve(event, status=wanted, sequence=sequence)

        return self._change(actor, patient_id, event_id, change, apply)

    def _change(
        self,
        actor: Actor,
        patient_id: str,
        event_id: str,
        change: str,
        apply: Callable[[Event, dt.datetime], Event],
    ) -> Event:
        with self._core.unit() as unit:
            resource = Resource(patient_id, "agenda", event_id)
            decision = unit.authorize(actor, Action.AGENDA_WRITE, resource)
            row = unit.tx.agenda.get(patient_id, event_id)
            if row is None:
                raise NotFoundError("no such event in this agenda")
            event = apply(self._open(unit, row), unit.now)
            event = attrs.evolve(event, version=row.version + 1, changed_at=unit.now)
            self._check_life(unit, event)
            unit.tx.agenda.update(self._row(unit, actor, event, change))
            unit.record(actor, Action.AGENDA_WRITE, resource, decision)
            return event

    def _apply(
        self, unit: Unit, actor: Actor, patient_id: str, item: ParsedEvent, report: ImportReport
    ) -> ImportReport:
        """Add, update or cancel the event of one imported UID."""
        row = unit.tx.agenda.by_uid(patient_id, item.uid)
        if row is None:
            if item.cancelled:
                return attrs.evolve(report, unchanged=report.unchanged + 1)
            event_id = new_id()
            event = Event(
                id=event_id,
                patient_id=patient_id,
                kind=item.kind,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                title=item.title,
                place=item.place,
                notes=item.notes,
                uid=item.uid,
                sequence=item.sequence,
                changed_at=unit.now,
            )
            unit.tx.agenda.add(self._row(unit, actor, event, "imported"))
            return attrs.evolve(report, created=report.created + 1)
        current = self._open(unit, row)
        newer = (item.sequence, item.modified or dt.datetime.min.replace(tzinfo=dt.UTC)) > (
            current.sequence,
            current.changed_at or dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        if not newer or current.status is EventStatus.DONE:
            return attrs.evolve(report, unchanged=report.unchanged + 1)
        if item.cancelled:
            if current.status is EventStatus.CANCELLED:
                return attrs.evolve(report, unchanged=report.unchanged + 1)
            status, change = EventStatus.CANCELLED, "cancelled"
        else:
            status, change = EventStatus.PLANNED, "updated"
        event = attrs.evolve(
            current,
            kind=item.kind,
            starts_at=item.starts_at,
            ends_at=item.ends_at,
            status=status,
            title=item.title,
            place=item.place,
            notes=item.notes,
            sequence=max(item.sequence, current.sequence),
            version=current.version + 1,
            changed_at=unit.now,
        )
        unit.tx.agenda.update(self._row(unit, actor, event, change))
        if item.cancelled:
            return attrs.evolve(report, cancelled=report.cancelled + 1)
        return attrs.evolve(report, updated=report.updated + 1)

    def _row(self, unit: Unit, actor: Actor, event: Event, change: str) -> AgendaEventRow:
        sealed = self._core.keyring.seal(
            unit.tx,
            event.patient_id,
            EVENT_KIND,
            _event_object(event.id, event.version),
            event_payload(event),
        )
        return event_row(
            event,
            sealed,
            at=unit.now,
            actor_kind=str(actor.kind),
            actor_id=actor.id,
            change=change,
        )

    def _open(self, unit: Unit, row: AgendaEventRow) -> Event:
        payload = self._core.keyring.open(
            unit.tx, row.patient_id, EVENT_KIND, _event_object(row.id, row.version), row.sealed
        )
        return event_from_row(row, payload)

    def evaluate_in(
        self,
        unit: Unit,
        patient_id: str,
        day: dt.date,
        *,
        identity: PatientIdentity | None = None,
    ) -> list[Reminder] | None:
        """The reminders of *patient_id* at *day*, evaluated from their record in *unit*, or
        ``None`` when their identity traits are unknown.

        No policy check: for services that already hold a unit authorised for this person
        (the research extracts, :mod:`monespace.research`). A caller that has already read
        the person's *identity* in *unit* passes it, so that it is not decrypted again.

        .. versionadded:: 0.2
        """
        person = self._person(unit.tx, patient_id, identity)
        return None if person is None else evaluate(self.pack, person, day)


def _event_object(event_id: str, version: int) -> str:
    """What a version's sealed payload is bound to: one version cannot pass for another."""
    return f"{event_id}/{version}"


def _sent_object(row: ReminderSentRow) -> str:
    return f"{row.reminder_id}/{row.cycle}/{row.recipient_id}"


def _today(moment: dt.datetime) -> dt.date:
    """The date in Paris at *moment*: reminders fall due on French calendar days."""
    return moment.astimezone(PARIS).date()
