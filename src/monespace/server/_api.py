"""The JSON API under ``/api/v1``: its operations and their handlers.

Every URL about a person's space names it by its opaque id (``/patients/{patient_id}/...``),
never by NIR; the NIR travels only in request bodies. The session decides *who* acts (the
holder, a legal representative, a professional, in which mode); the library's policy decides
*whether* they may. A denial and a missing object give the same 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs
from starlette.responses import Response

from .._space import Space
from ..access import EmergencySession, Grant, HistoryEntry
from ..actors import AccessMode, Actor, ActorKind
from ..agenda import PARIS, Event, Family, Reminder, SentReminder, Why
from ..errors import AccessDeniedError, ActivationError, NotFoundError, ValidationError
from ..identities import Professional
from ..messaging import (
    Attachment,
    InboxPage,
    Message,
    NewAttachment,
    RecordAttachment,
    Thread,
    ThreadView,
)
from ..record import Code, Document, Measure, ProfileEntry
from . import _models as m
from ._apps import app_operations, open_to_apps
from ._problems import ProblemError, bad_request, not_found, unknown_professional
from ._routing import Auth, Call, Handler, Operation, Reply
from ._sessions import SessionKind

__all__ = ["api_operations"]

_PREFIX = "/api/v1"
_PATIENT = _PREFIX + "/patients/{patient_id}"


# --- conversions ----------------------------------------------------------------------------


def _code_out(code: Code) -> m.CodeOut:
    return m.CodeOut(code.code, code.system, code.display)


def document_out(document: Document) -> m.DocumentOut:
    """The API view of a document's metadata."""
    return m.DocumentOut(
        id=document.id,
        version=document.version,
        title=document.title,
        category=document.category,
        class_code=document.class_code,
        type_code=_code_out(document.type_code),
        media_type=document.media_type,
        size=document.size,
        sha256=document.sha256,
        created_at=document.created_at,
        submitted_at=document.submitted_at,
        author=m.AuthorOut(str(document.author.kind), document.author.id, document.author.name),
        confidentiality=document.confidentiality,
        masked=document.masked,
        hidden_from_patient=document.hidden_from_patient,
        hidden_from_representatives=document.hidden_from_representatives,
        status=str(document.status),
        comments=document.comments,
        replaces=document.replaces,
        release_at=document.release_at,
    )


def _entry_out(entry: ProfileEntry) -> m.ProfileEntryOut:
    return m.ProfileEntryOut(
        entry.id,
        entry.section,
        entry.label,
        entry.details,
        _code_out(entry.code) if entry.code else None,
        entry.started,
        entry.ended,
        entry.recorded_at,
    )


def _measure_out(measure: Measure) -> m.MeasureOut:
    return m.MeasureOut(
        measure.id,
        measure.kind,
        measure.value,
        measure.unit,
        measure.measured_at,
        _code_out(measure.code),
        measure.source,
        measure.second,
    )


def _grant_out(grant: Grant) -> m.GrantOut:
    return m.GrantOut(
        grant.professional_id, str(grant.kind), grant.since, grant.until, grant.ended_at
    )


def history_out(entry: HistoryEntry) -> m.HistoryEntryOut:
    """The API view of one line of the access history."""
    return m.HistoryEntryOut(
        entry.at,
        entry.who,
        entry.what,
        entry.actor_kind,
        entry.mode,
        entry.outcome,
        entry.sentence,
        entry.holder_view,
    )


def professional_out(pro: Professional) -> m.ProfessionalOut:
    """The API view of a professional of the directory."""
    return m.ProfessionalOut(
        pro.rpps,
        pro.profession,
        pro.profession_name,
        pro.name,
        pro.specialty,
        pro.mssante,
        pro.finess,
        pro.establishment,
    )


def _emergency_out(session: EmergencySession) -> m.EmergencyOut:
    return m.EmergencyOut(
        session.id, session.patient_id, str(session.mode), session.started_at, session.expires_at
    )


def _code_in(code: m.CodeIn | None) -> Code | None:
    return None if code is None else Code(code.code, code.system)


def _nir_key(nir: str) -> str:
    return "".join(nir.split()).upper()


def _person_key(person: str, source: str) -> str:
    """The key of the per-person limit: a person *and* the address trying, so that failures
    from other addresses never refuse the holder's own attempts (the library delays the
    sources that failed against a person, with growing delays)."""
    return f"{person}\x00{source}"


# --- sessions -------------------------------------------------------------------------------


async def session_info(call: Call) -> m.SessionInfo:
    """The current session's description."""
    session = call.session
    assert session is not None
    state = call.state
    professional = None
    spaces: list[str] = []
    if session.kind is SessionKind.PATIENT:
        spaces = await call.run(state.space.accounts.spaces_of, Actor.patient(session.person_id))
    else:
        try:
            pro = await call.run(state.space.access.professional, session.person_id)
            professional = professional_out(pro)
        except NotFoundError:
            professional = None
    return m.SessionInfo(
        kind="patient" if session.kind is SessionKind.PATIENT else "professional",
        person_id=session.person_id,
        spaces=spaces,
        csrf_token=session.csrf_token,
        expires_at=state.sessions.expires_at(session),
        idle_timeout_seconds=int(state.sessions.idle.total_seconds()),
        professional=professional,
    )


def login_refused() -> ProblemError:
    """The one answer to a refused login, whatever was wrong."""
    return ProblemError(
        401,
        "login-refused",
        "Login refused",
        ActivationError.MESSAGE,
        headers={"www-authenticate": 'Bearer realm="monespace"'},
    )


async def patient_login(
    call: Call, nir: str, vitale_serial: str, birth_date: date
) -> tuple[str, m.SessionOut]:
    """Check the carte Vitale details and open a patient session (shared with the page)."""
    source = call.client_ip()
    await call.limit("login-ip", source)
    await call.limit("login-person", _person_key(_nir_key(nir), source))
    try:
        actor = await call.run(
            call.state.space.accounts.authenticate,
            nir=nir,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            source=source,
        )
    except ActivationError:
        raise login_refused() from None
    return await _open_session(call, SessionKind.PATIENT, actor.id)


async def _open_session(call: Call, kind: SessionKind, person_id: str) -> tuple[str, m.SessionOut]:
    token = await call.state.sessions.acreate(kind, person_id, replaces=call.token)
    call.token = token
    call.session = await call.state.sessions.aget(token)
    return token, m.SessionOut(token, await session_info(call))


async def _patient_login(call: Call) -> Reply:
    body: m.PatientLogin = call.body
    token, out = await patient_login(call, body.nir, body.vitale_serial, body.birth_date)
    return Reply(out, status=201, set_session=token)


async def _professional_login(call: Call) -> Reply:
    body: m.ProfessionalLogin = call.body
    await call.limit("login-ip", call.client_ip())
    await call.limit("login-person", _person_key(body.rpps, call.client_ip()))
    try:
        await call.run(call.state.space.access.professional, body.rpps)
    except NotFoundError:
        # The directory is public: an unknown number is said as such, as on the pages.
        raise unknown_professional() from None
    except ValidationError as exc:
        raise bad_request(str(exc)) from None
    token, out = await _open_session(call, SessionKind.PROFESSIONAL, body.rpps)
    return Reply(out, status=201, set_session=token)


async def _get_session(call: Call) -> Reply:
    return Reply(await session_info(call))


async def _logout(call: Call) -> Reply:
    await call.state.sessions.arevoke(call.token)
    return Reply(None, status=204, clear_session=True)


# --- accounts -------------------------------------------------------------------------------


async def _activate(call: Call) -> Reply:
    body: m.ProofOfIdentity = call.body
    source = call.client_ip()
    await call.limit("activation-ip", source)
    await call.limit("activation-person", _person_key(_nir_key(body.nir), source))
    account = await call.run(
        call.state.space.accounts.activate,
        nir=body.nir,
        code=body.code,
        vitale_serial=body.vitale_serial,
        birth_date=body.birth_date,
        source=source,
    )
    return Reply(m.AccountOut(account.patient_id, str(account.state)))


async def _oppose(call: Call) -> Reply:
    body: m.ProofOfIdentity = call.body
    source = call.client_ip()
    await call.limit("activation-ip", source)
    await call.limit("activation-person", _person_key(_nir_key(body.nir), source))
    proof = await call.run(
        call.state.space.accounts.oppose,
        nir=body.nir,
        code=body.code,
        vitale_serial=body.vitale_serial,
        birth_date=body.birth_date,
        source=source,
    )
    return Reply(m.OppositionOut(proof.proof_id, proof.opposed_at, proof.document))


async def _lookup(call: Call) -> Reply:
    """A professional finds a space from the carte Vitale (NIR and birth date)."""
    body: m.PatientLookup = call.body
    session = call.session
    assert session is not None
    await call.limit("lookup-person", session.person_id)
    try:
        patient_id = await call.run(
            call.state.space.access.find_patient,
            Actor(ActorKind.PROFESSIONAL, session.person_id),
            nir=body.nir,
            birth_date=body.birth_date,
        )
    except NotFoundError:
        raise not_found() from None
    return Reply(m.PatientRef(patient_id))


# --- record ---------------------------------------------------------------------------------


async def _list_documents(call: Call) -> Reply:
    query: m.DocumentList = call.query
    pid = call.path["patient_id"]
    page = await call.run_as(
        pid,
        call.state.space.record.search,
        pid,
        category=query.category,
        offset=query.offset,
        limit=query.limit,
        after=query.after,
    )
    return Reply(_page_out(page))


def _page_out(page: Any) -> m.DocumentPageOut:
    return m.DocumentPageOut(
        [document_out(d) for d in page.documents], page.total, page.offset, page.limit, page.next
    )


async def _search_documents(call: Call) -> Reply:
    body: m.DocumentSearch = call.body
    pid = call.path["patient_id"]
    page = await call.run_as(
        pid,
        call.state.space.record.search,
        pid,
        category=body.category,
        type_code=body.type_code,
        author_id=body.author_id,
        since=body.since,
        until=body.until,
        text=body.text,
        include_replaced=body.include_replaced,
        offset=body.offset,
        limit=body.limit,
        after=body.after,
    )
    return Reply(_page_out(page))


async def _add_document(call: Call) -> Reply:
    body: m.DocumentIn = call.body
    pid = call.path["patient_id"]
    document = await call.run_as(
        pid,
        call.state.space.record.add_document,
        pid,
        body.content,
        media_type=body.media_type,
        type_code=_code_in(body.type_code),
        class_code=body.class_code,
        title=body.title,
        comments=body.comments,
        created_at=body.created_at,
        masked=body.masked,
        hidden_from_patient=body.hidden_from_patient,
        hidden_from_representatives=body.hidden_from_representatives,
    )
    return Reply(document_out(document), status=201)


async def fetch_document(call: Call, patient_id: str, document_id: str) -> Document:
    """A document of *patient_id*'s record, if the session may see it (else 404)."""
    document = await call.run_as(patient_id, call.state.space.record.get_document, document_id)
    if document.patient_id != patient_id:
        raise not_found()
    return document


async def _get_document(call: Call) -> Reply:
    document = await fetch_document(call, call.path["patient_id"], call.path["document_id"])
    return Reply(document_out(document))


_EXTENSIONS = {
    "application/pdf": "pdf",
    "text/xml": "xml",
    "application/xml": "xml",
    "text/plain": "txt",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tiff",
}


async def document_content(call: Call, patient_id: str, document_id: str) -> Response:
    """A document's bytes, as a download that no browser renders in the site's origin."""
    document = await fetch_document(call, patient_id, document_id)
    content = await call.run_as(patient_id, call.state.space.record.read_content, document_id)
    extension = _EXTENSIONS.get(document.media_type, "bin")
    return Response(
        content,
        media_type=document.media_type,
        headers={
            "content-disposition": f'attachment; filename="document-{document.id}.{extension}"',
            "content-security-policy": "sandbox; default-src 'none'",
        },
    )


async def _document_content(call: Call) -> Reply:
    response = await document_content(call, call.path["patient_id"], call.path["document_id"])
    return Reply(response)


async def set_masked(call: Call, patient_id: str, document_id: str, masked: bool) -> Document:
    """Mask or unmask a document of *patient_id*'s record."""
    await fetch_document(call, patient_id, document_id)
    record = call.state.space.record
    change = record.mask if masked else record.unmask
    return await call.run_as(patient_id, change, document_id)


async def _mask(call: Call) -> Reply:
    document = await set_masked(call, call.path["patient_id"], call.path["document_id"], True)
    return Reply(document_out(document))


async def _unmask(call: Call) -> Reply:
    document = await set_masked(call, call.path["patient_id"], call.path["document_id"], False)
    return Reply(document_out(document))


# --- profil médical and measures ------------------------------------------------------------


async def _profile(call: Call) -> Reply:
    query: m.ProfileQuery = call.query
    pid = call.path["patient_id"]
    entries = await call.run_as(pid, call.state.space.profile.entries, pid, query.section)
    return Reply([_entry_out(e) for e in entries])


async def _add_profile_entry(call: Call) -> Reply:
    body: m.ProfileEntryIn = call.body
    pid = call.path["patient_id"]
    entry = await call.run_as(
        pid,
        call.state.space.profile.add,
        pid,
        body.section,
        body.label,
        details=body.details,
        code=_code_in(body.code),
        started=body.started,
        ended=body.ended,
    )
    return Reply(_entry_out(entry), status=201)


async def _remove_profile_entry(call: Call) -> Reply:
    pid = call.path["patient_id"]
    await call.run_as(pid, call.state.space.profile.remove, pid, call.path["entry_id"])
    return Reply(None, status=204)


async def _measures(call: Call) -> Reply:
    query: m.MeasureQuery = call.query
    pid = call.path["patient_id"]
    series = await call.run_as(
        pid,
        call.state.space.measures.series,
        pid,
        query.kind,
        since=query.since,
        until=query.until,
    )
    return Reply([_measure_out(x) for x in series])


async def _add_measure(call: Call) -> Reply:
    body: m.MeasureIn = call.body
    pid = call.path["patient_id"]
    measure = await call.run_as(
        pid,
        call.state.space.measures.add,
        pid,
        body.kind,
        body.value,
        unit=body.unit,
        measured_at=body.measured_at,
        second=body.second,
    )
    return Reply(_measure_out(measure), status=201)


# --- access ---------------------------------------------------------------------------------


def _settings_out(settings: Any) -> m.AccessSettingsOut:
    return m.AccessSettingsOut(
        settings.object_all,
        settings.object_emergency,
        settings.mask_all,
        settings.notify_first_access,
    )


async def _access_settings(call: Call) -> Reply:
    pid = call.path["patient_id"]
    settings = await call.run_as(pid, call.state.space.access.settings, pid)
    return Reply(_settings_out(settings))


async def _update_access_settings(call: Call) -> Reply:
    body: m.AccessSettingsPatch = call.body
    pid = call.path["patient_id"]
    settings = await call.run_as(
        pid, call.state.space.access.update_settings, pid, **attrs.asdict(body)
    )
    return Reply(_settings_out(settings))


async def _authorisations(call: Call) -> Reply:
    pid = call.path["patient_id"]
    grants = await call.run_as(pid, call.state.space.access.authorisations, pid)
    return Reply([_grant_out(g) for g in grants])


async def _authorise(call: Call) -> Reply:
    body: m.AuthorisationIn = call.body
    pid = call.path["patient_id"]
    grant = await call.run_as(
        pid, call.state.space.access.authorise, pid, body.rpps, until=body.until
    )
    return Reply(_grant_out(grant), status=201)


async def _revoke(call: Call) -> Reply:
    pid = call.path["patient_id"]
    await call.run_as(pid, call.state.space.access.revoke, pid, call.path["rpps"])
    return Reply(None, status=204)


async def _blocked(call: Call) -> Reply:
    pid = call.path["patient_id"]
    blocked = await call.run_as(pid, call.state.space.access.blocked, pid)
    return Reply(m.BlockedOut(list(blocked)))


async def _block(call: Call) -> Reply:
    body: m.ProfessionalIn = call.body
    pid = call.path["patient_id"]
    await call.run_as(pid, call.state.space.access.block, pid, body.rpps)
    return Reply(None, status=204)


async def _unblock(call: Call) -> Reply:
    pid = call.path["patient_id"]
    await call.run_as(pid, call.state.space.access.unblock, pid, call.path["rpps"])
    return Reply(None, status=204)


async def _treating_doctor(call: Call) -> Reply:
    body: m.ProfessionalIn = call.body
    pid = call.path["patient_id"]
    grant = await call.run_as(pid, call.state.space.access.declare_treating_doctor, pid, body.rpps)
    return Reply(_grant_out(grant))


async def access_history(call: Call, patient_id: str) -> list[m.HistoryEntryOut]:
    """The access history of a space, newest first."""
    entries = await call.run_as(patient_id, call.state.space.access.history, patient_id, limit=1000)
    return [history_out(e) for e in reversed(entries)]


async def _history(call: Call) -> Reply:
    return Reply(await access_history(call, call.path["patient_id"]))


async def _emergency(call: Call) -> Reply:
    body: m.EmergencyIn = call.body
    pid = call.path["patient_id"]
    session = call.session
    assert session is not None
    mode = AccessMode(body.mode)
    emergency = await call.run_as(
        pid,
        call.state.space.access.break_glass,
        pid,
        justification=body.justification,
        mode=mode,
    )
    session.emergencies[pid] = (mode, emergency.expires_at)
    await call.run(call.state.sessions.add_emergency, call.token, pid, mode, emergency.expires_at)
    return Reply(_emergency_out(emergency), status=201)


async def _join_care_team(call: Call) -> Reply:
    pid = call.path["patient_id"]
    grant = await call.run_as(pid, call.state.space.access.join_care_team, pid)
    return Reply(_grant_out(grant), status=201)


# --- agenda and prevention reminders -------------------------------------------------------


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def event_out(event: Event) -> m.EventOut:
    """The API view of an event of the agenda (times in UTC, whatever zone they came in)."""
    return m.EventOut(
        id=event.id,
        kind=str(event.kind),
        starts_at=event.starts_at.astimezone(UTC),
        status=str(event.status),
        uid=event.uid,
        sequence=event.sequence,
        version=event.version,
        ends_at=_utc(event.ends_at),
        title=event.title,
        place=event.place,
        professional=event.professional,
        establishment=event.establishment,
        notes=event.notes,
        documents=list(event.documents),
        reminder_id=event.reminder_id,
        changed_at=_utc(event.changed_at),
    )


def _why_out(why: Why) -> m.WhyOut:
    return m.WhyOut(
        rule=why.rule,
        edition=why.edition,
        source=m.SourceOut(why.source.text, why.source.ref),
        evidence=str(why.evidence),
        sex=why.sex,
        age_days=why.age_days,
        last_act=why.last_act,
        proved_by=why.proved_by,
    )


def reminder_out(reminder: Reminder, opted_out: set[Family]) -> m.ReminderOut:
    """The API view of a prevention reminder, with why it is proposed."""
    return m.ReminderOut(
        id=reminder.id,
        family=str(reminder.family),
        title=reminder.title,
        status=str(reminder.status),
        due_from=reminder.due_from,
        why=_why_out(reminder.why),
        notices=reminder.family not in opted_out,
        due_until=reminder.due_until,
    )


def _sent_out(sent: SentReminder) -> m.SentReminderOut:
    return m.SentReminderOut(
        sent.reminder_id, sent.cycle, sent.recipient, sent.sent_at, _why_out(sent.why)
    )


def _paris_midnight(day: date, *, after: bool = False) -> datetime | None:
    """The start of *day* (of the day after it, with *after*) in Paris, or ``None`` past the
    range of dates (the bound then limits nothing)."""
    try:
        if after:
            day += timedelta(days=1)
        return datetime.combine(day, time(), PARIS).astimezone(UTC)
    except OverflowError:
        return None


async def agenda_events(
    call: Call, patient_id: str, first: date | None = None, last: date | None = None
) -> list[Event]:
    """The events of *patient_id*'s agenda starting from the day *first* to the day *last*,
    both included (Paris days), as the session sees them (shared with the page)."""
    return await call.run_as(
        patient_id,
        call.state.space.agenda.events,
        patient_id,
        since=None if first is None else _paris_midnight(first),
        until=None if last is None else _paris_midnight(last, after=True),
    )


async def agenda_reminders(call: Call, patient_id: str) -> tuple[list[Reminder], set[Family]]:
    """*patient_id*'s reminders today and the families they opted out of (shared with the
    page)."""
    agenda = call.state.space.agenda
    reminders = await call.run_as(patient_id, agenda.reminders, patient_id)
    opted_out = await call.run_as(patient_id, agenda.opted_out, patient_id)
    return reminders, opted_out


async def set_notices(call: Call, patient_id: str, family: Family, wanted: bool) -> bool:
    """Receive (*wanted*) or stop the notices of one family of reminders; whether that
    changed anything (shared with the page)."""
    agenda = call.state.space.agenda
    change = agenda.opt_in if wanted else agenda.opt_out
    return await call.run_as(patient_id, change, patient_id, family)


async def agenda_calendar(call: Call, patient_id: str, *, include_details: bool) -> Response:
    """The agenda as an iCalendar download (shared with the page)."""
    data = await call.run_as(
        patient_id,
        call.state.space.agenda.export_ics,
        patient_id,
        include_details=include_details,
    )
    return Response(
        data,
        media_type="text/calendar",
        headers={
            "content-disposition": 'attachment; filename="agenda.ics"',
            "content-security-policy": "sandbox; default-src 'none'",
        },
    )


async def _list_events(call: Call) -> Reply:
    query: m.AgendaQuery = call.query
    events = await agenda_events(call, call.path["patient_id"], query.from_, query.until)
    return Reply([event_out(e) for e in events])


async def _add_event(call: Call) -> Reply:
    body: m.EventIn = call.body
    pid = call.path["patient_id"]
    event = await call.run_as(
        pid,
        call.state.space.agenda.add,
        pid,
        kind=body.kind,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        title=body.title,
        place=body.place,
        professional=body.professional,
        establishment=body.establishment,
        notes=body.notes,
        reminder_id=body.reminder_id,
        status=body.status,
    )
    return Reply(event_out(event), status=201)


async def _get_event(call: Call) -> Reply:
    pid = call.path["patient_id"]
    event = await call.run_as(pid, call.state.space.agenda.get, pid, call.path["event_id"])
    return Reply(event_out(event))


async def _reschedule(call: Call) -> Reply:
    body: m.RescheduleIn = call.body
    pid = call.path["patient_id"]
    event = await call.run_as(
        pid,
        call.state.space.agenda.reschedule,
        pid,
        call.path["event_id"],
        body.starts_at,
        body.ends_at,
    )
    return Reply(event_out(event))


def _event_change(name: str) -> Handler:
    """The handler of a change of status without a body (``cancel``, ``mark_done``)."""

    async def change(call: Call) -> Reply:
        pid = call.path["patient_id"]
        method = getattr(call.state.space.agenda, name)
        event = await call.run_as(pid, method, pid, call.path["event_id"])
        return Reply(event_out(event))

    change.__name__ = f"_{name}"
    return change


async def _reminders(call: Call) -> Reply:
    reminders, opted_out = await agenda_reminders(call, call.path["patient_id"])
    return Reply(
        m.RemindersOut([reminder_out(r, opted_out) for r in reminders], sorted(map(str, opted_out)))
    )


def _notices(wanted: bool) -> Handler:
    async def change(call: Call) -> Reply:
        body: m.FamilyIn = call.body
        pid = call.path["patient_id"]
        changed = await set_notices(call, pid, Family(body.family), wanted)
        opted_out = await call.run_as(pid, call.state.space.agenda.opted_out, pid)
        return Reply(m.OptOutOut(changed, sorted(map(str, opted_out))))

    change.__name__ = "_opt_in" if wanted else "_opt_out"
    return change


async def _sent_reminders(call: Call) -> Reply:
    pid = call.path["patient_id"]
    sent = await call.run_as(pid, call.state.space.agenda.sent, pid)
    return Reply([_sent_out(s) for s in sent])


async def _calendar(call: Call) -> Reply:
    query: m.CalendarQuery = call.query
    response = await agenda_calendar(
        call, call.path["patient_id"], include_details=query.include_details
    )
    return Reply(response)


# --- secure messaging -----------------------------------------------------------------------


def thread_out(thread: Thread) -> m.ThreadOut:
    """The API view of a thread."""
    pro = thread.professional
    return m.ThreadOut(
        id=thread.id,
        patient_id=thread.patient_id,
        subject=thread.subject,
        professional=m.CorrespondentOut(pro.kind, pro.id, pro.name, pro.address),
        status="closed" if thread.closed else "open",
        created_at=thread.created_at,
        last_message_at=thread.last_message_at,
        message_count=thread.message_count,
        unread=thread.unread,
        archived=thread.archived,
        closed_at=thread.closed_at,
    )


def _attachment_out(attachment: Attachment) -> m.AttachmentOut:
    return m.AttachmentOut(
        attachment.id,
        attachment.message_id,
        attachment.filename,
        attachment.media_type,
        attachment.size,
        attachment.sha256,
        list(attachment.cda_codes),
    )


def message_out(message: Message) -> m.MessageOut:
    """The API view of a message (its body is plain text)."""
    return m.MessageOut(
        id=message.id,
        thread_id=message.thread_id,
        sender_kind=message.sender_kind,
        sender_id=message.sender_id,
        sent_at=message.sent_at,
        subject=message.subject,
        body=message.body,
        attachments=[_attachment_out(a) for a in message.attachments],
        closes_thread=message.closes_thread,
        origin=message.origin,
        in_reply_to=message.in_reply_to,
        ins_qualified=message.ins_qualified,
        read_at=message.read_at,
    )


def _inbox_out(page: InboxPage) -> m.InboxOut:
    return m.InboxOut(
        [thread_out(t) for t in page.threads], page.total, page.unread, page.offset, page.limit
    )


def _owner_of(actor: Actor, space: Space, kind: str, object_id: str) -> str | None:
    """The patient a thread or an attachment belongs to, if *actor* takes part in it (the
    library's policy decides), else ``None``."""
    if kind == "thread":
        return space.messaging.patient_of(actor, thread_id=object_id)
    return space.messaging.patient_of(actor, attachment_id=object_id)


async def _bind(call: Call, patient_id: str, kind: str, object_id: str) -> None:
    """404 when the thread or attachment belongs to another space than the URL names.

    The policy already keeps the patient's side to its own threads; this also keeps a
    professional taking part in a thread from reaching it under another patient's URL,
    before anything is marked read or written. A missing object, or one the actor does not
    take part in, is left to the library, which denies it (and audits the attempt) with the
    same 404.
    """
    owner = await call.run_as(patient_id, _owner_of, call.state.space, kind, object_id)
    if owner is not None and owner != patient_id:
        raise not_found()


def _closed_to_replies(exc: AccessDeniedError) -> ProblemError:
    """A participant's reply to a thread closed to replies: a 409, which only those who
    may read the thread ever get (the participant rule is asked first); any other denial is
    the usual 404."""
    if exc.rule == "thread_closed_to_replies":
        return ProblemError(
            409,
            "thread-closed",
            "Thread closed to replies",
            "The professional closed this conversation: it takes no more replies.",
        )
    return not_found()


def _files(attachment: m.AttachmentIn | None) -> list[NewAttachment]:
    if attachment is None:
        return []
    return [NewAttachment(attachment.filename, attachment.media_type, attachment.content)]


async def inbox_page(
    call: Call, patient_id: str, *, archived: bool | None = False, **filters: Any
) -> InboxPage:
    """A patient's mailbox, as the session sees it (shared with the page)."""
    return await call.run_as(
        patient_id,
        call.state.space.messaging.inbox,
        patient_id,
        archived=archived,
        **filters,
    )


async def thread_view(call: Call, patient_id: str, thread_id: str) -> ThreadView:
    """A thread of *patient_id*'s mailbox, read (the other side's messages are marked read)."""
    await _bind(call, patient_id, "thread", thread_id)
    return await call.run_as(patient_id, call.state.space.messaging.thread, thread_id)


async def reply_in_thread(
    call: Call,
    patient_id: str,
    thread_id: str,
    *,
    body: str,
    subject: str | None = None,
    attachments: list[NewAttachment] | None = None,
    close: bool = False,
) -> Message:
    """Write in a thread of *patient_id*'s mailbox (shared with the page)."""
    assert call.session is not None
    if close and call.session.kind is not SessionKind.PROFESSIONAL:
        raise bad_request("only the professional who started a thread closes it")
    await _bind(call, patient_id, "thread", thread_id)
    try:
        return await call.run_as(
            patient_id,
            call.state.space.messaging.reply,
            thread_id,
            body=body,
            subject=subject,
            attachments=attachments or [],
            close=close,
        )
    except AccessDeniedError as exc:
        raise _closed_to_replies(exc) from None


async def archive_thread(call: Call, patient_id: str, thread_id: str, archived: bool) -> Thread:
    """Archive a thread in the caller's mailbox, or bring it back (shared with the page)."""
    await _bind(call, patient_id, "thread", thread_id)
    return await call.run_as(
        patient_id,
        call.state.space.messaging.archive,
        thread_id,
        archived=archived,
    )


async def attachment_content(call: Call, patient_id: str, attachment_id: str) -> Response:
    """An attachment's bytes, as a download that no browser renders in the site's origin."""
    await _bind(call, patient_id, "attachment", attachment_id)
    attachment, content = await call.run_as(
        patient_id, call.state.space.messaging.read_attachment, attachment_id
    )
    extension = _EXTENSIONS.get(attachment.media_type, "bin")
    # The name the sender chose is health data and untrusted: it stays out of the headers.
    filename = f"piece-jointe-{attachment.id}.{extension}"
    return Response(
        content,
        media_type=attachment.media_type,
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "content-security-policy": "sandbox; default-src 'none'",
        },
    )


async def file_attachment(call: Call, patient_id: str, attachment_id: str) -> Document:
    """Save an attachment into *patient_id*'s record (shared with the page)."""
    await _bind(call, patient_id, "attachment", attachment_id)
    return await call.run_as(patient_id, call.state.space.messaging.file_attachment, attachment_id)


async def _inbox(call: Call) -> Reply:
    query: m.MessageQuery = call.query
    page = await inbox_page(
        call,
        call.path["patient_id"],
        archived=query.archived,
        correspondent=query.correspondent,
        offset=query.offset,
        limit=query.limit,
    )
    return Reply(_inbox_out(page))


async def _search_messages(call: Call) -> Reply:
    body: m.MessageSearch = call.body
    page = await inbox_page(
        call,
        call.path["patient_id"],
        archived=body.archived,
        correspondent=body.correspondent,
        since=body.since,
        until=body.until,
        text=body.text,
        offset=body.offset,
        limit=body.limit,
    )
    return Reply(_inbox_out(page))


async def _professional_inbox(call: Call) -> Reply:
    query: m.MessageQuery = call.query
    session = call.session
    assert session is not None
    actor = Actor(ActorKind.PROFESSIONAL, session.person_id)
    page = await call.run(
        call.state.space.messaging.inbox,
        actor,
        archived=query.archived,
        correspondent=query.correspondent,
        offset=query.offset,
        limit=query.limit,
    )
    return Reply(_inbox_out(page))


async def _start_thread(call: Call) -> Reply:
    body: m.ThreadStartIn = call.body
    pid = call.path["patient_id"]
    attachments: list[NewAttachment | RecordAttachment] = [*_files(body.attachment)]
    if body.document_id is not None:
        attachments.append(RecordAttachment(body.document_id))
    message = await call.run_as(
        pid,
        call.state.space.messaging.start_thread,
        pid,
        subject=body.subject,
        body=body.body,
        attachments=attachments,
        close=body.close,
        ins_qualified=body.ins_qualified,
    )
    return Reply(message_out(message), status=201)


async def _get_thread(call: Call) -> Reply:
    view = await thread_view(call, call.path["patient_id"], call.path["thread_id"])
    return Reply(m.ThreadViewOut(thread_out(view.thread), [message_out(x) for x in view.messages]))


async def _reply(call: Call) -> Reply:
    body: m.ReplyIn = call.body
    message = await reply_in_thread(
        call,
        call.path["patient_id"],
        call.path["thread_id"],
        body=body.body,
        subject=body.subject,
        attachments=_files(body.attachment),
        close=body.close,
    )
    return Reply(message_out(message), status=201)


def _archiving(archived: bool) -> Handler:
    async def change(call: Call) -> Reply:
        thread = await archive_thread(
            call, call.path["patient_id"], call.path["thread_id"], archived
        )
        return Reply(thread_out(thread))

    return change


def _closing(closed: bool) -> Handler:
    async def change(call: Call) -> Reply:
        pid, tid = call.path["patient_id"], call.path["thread_id"]
        await _bind(call, pid, "thread", tid)
        messaging = call.state.space.messaging
        thread = await call.run_as(pid, messaging.close if closed else messaging.reopen, tid)
        return Reply(thread_out(thread))

    return change


async def _attachment_content(call: Call) -> Reply:
    response = await attachment_content(call, call.path["patient_id"], call.path["attachment_id"])
    return Reply(response)


async def _file_attachment(call: Call) -> Reply:
    document = await file_attachment(call, call.path["patient_id"], call.path["attachment_id"])
    return Reply(document_out(document), status=201)


# --- the table ------------------------------------------------------------------------------

_AUTH_ERRORS = (401, 403, 404)


def api_operations(*, demo: bool) -> list[Operation]:
    """The operations of the JSON API. The simulated logins exist only in demo mode."""
    ops = [
        Operation(
            "POST",
            _PREFIX + "/activation",
            _activate,
            "activateSpace",
            "Activate a space with the provisional code and the carte Vitale",
            "accounts",
            auth=Auth.NONE,
            body=m.ProofOfIdentity,
            response=m.AccountOut,
            errors=(400, 403, 409, 415, 422, 429),
        ),
        Operation(
            "POST",
            _PREFIX + "/opposition",
            _oppose,
            "opposeSpace",
            "Object to the creation of a space (within six weeks of the information)",
            "accounts",
            auth=Auth.NONE,
            body=m.ProofOfIdentity,
            response=m.OppositionOut,
            errors=(400, 403, 409, 415, 422, 429),
        ),
        Operation(
            "GET",
            _PREFIX + "/session",
            _get_session,
            "getSession",
            "The current session",
            "sessions",
            response=m.SessionInfo,
            errors=(401,),
        ),
        Operation(
            "DELETE",
            _PREFIX + "/session",
            _logout,
            "logout",
            "Log out: the session token stops working at once",
            "sessions",
            status=204,
            errors=(401, 403),
        ),
        Operation(
            "POST",
            _PREFIX + "/patients/lookup",
            _lookup,
            "lookupPatient",
            "Find a patient's space from their carte Vitale (professionals)",
            "record",
            auth=Auth.PROFESSIONAL,
            body=m.PatientLookup,
            response=m.PatientRef,
            errors=(*_AUTH_ERRORS, 415, 422, 429),
        ),
        Operation(
            "GET",
            _PATIENT + "/documents",
            _list_documents,
            "listDocuments",
            "The documents of a record, newest first",
            "record",
            query=m.DocumentList,
            response=m.DocumentPageOut,
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/documents",
            _add_document,
            "addDocument",
            "Add a document to a record",
            "record",
            body=m.DocumentIn,
            response=m.DocumentOut,
            status=201,
            errors=(*_AUTH_ERRORS, 413, 415, 422),
        ),
        Operation(
            "POST",
            _PATIENT + "/documents/search",
            _search_documents,
            "searchDocuments",
            "Search a record (words, category, type, author, dates)",
            "record",
            body=m.DocumentSearch,
            response=m.DocumentPageOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/documents/{document_id}",
            _get_document,
            "getDocument",
            "A document's metadata",
            "record",
            response=m.DocumentOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "GET",
            _PATIENT + "/documents/{document_id}/content",
            _document_content,
            "getDocumentContent",
            "A document's content (a download)",
            "record",
            response_media_type="application/octet-stream",
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/documents/{document_id}/mask",
            _mask,
            "maskDocument",
            "Mask a document from professionals",
            "record",
            response=m.DocumentOut,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "POST",
            _PATIENT + "/documents/{document_id}/unmask",
            _unmask,
            "unmaskDocument",
            "Show a masked document to professionals again",
            "record",
            response=m.DocumentOut,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/profile",
            _profile,
            "getProfile",
            "The profil médical",
            "profile",
            query=m.ProfileQuery,
            response=list[m.ProfileEntryOut],
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/profile",
            _add_profile_entry,
            "addProfileEntry",
            "Add an entry to the profil médical",
            "profile",
            body=m.ProfileEntryIn,
            response=m.ProfileEntryOut,
            status=201,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "DELETE",
            _PATIENT + "/profile/{entry_id}",
            _remove_profile_entry,
            "removeProfileEntry",
            "Remove an entry of the profil médical",
            "profile",
            status=204,
            errors=_AUTH_ERRORS,
        ),
        Operation(
            "GET",
            _PATIENT + "/measures",
            _measures,
            "getMeasures",
            "A series of health measures of one kind",
            "profile",
            query=m.MeasureQuery,
            response=list[m.MeasureOut],
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/measures",
            _add_measure,
            "addMeasure",
            "Record a health measure",
            "profile",
            body=m.MeasureIn,
            response=m.MeasureOut,
            status=201,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/access/settings",
            _access_settings,
            "getAccessSettings",
            "The patient's controls over professional access",
            "access",
            response=m.AccessSettingsOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "PATCH",
            _PATIENT + "/access/settings",
            _update_access_settings,
            "updateAccessSettings",
            "Change the access controls",
            "access",
            body=m.AccessSettingsPatch,
            response=m.AccessSettingsOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/access/authorisations",
            _authorisations,
            "listAuthorisations",
            "The professionals with access, current and past",
            "access",
            response=list[m.GrantOut],
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/access/authorisations",
            _authorise,
            "authorise",
            "Authorise a professional to read the record",
            "access",
            body=m.AuthorisationIn,
            response=m.GrantOut,
            status=201,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "DELETE",
            _PATIENT + "/access/authorisations/{rpps}",
            _revoke,
            "revoke",
            "Withdraw every authorisation of a professional",
            "access",
            status=204,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/access/blocked",
            _blocked,
            "listBlocked",
            "The professionals the patient blocked",
            "access",
            response=m.BlockedOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/access/blocked",
            _block,
            "block",
            "Block a professional (no access at all, at once)",
            "access",
            body=m.ProfessionalIn,
            status=204,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "DELETE",
            _PATIENT + "/access/blocked/{rpps}",
            _unblock,
            "unblock",
            "Lift a block",
            "access",
            status=204,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "PUT",
            _PATIENT + "/access/treating-doctor",
            _treating_doctor,
            "declareTreatingDoctor",
            "Declare the médecin traitant",
            "access",
            body=m.ProfessionalIn,
            response=m.GrantOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _PATIENT + "/access/history",
            _history,
            "getAccessHistory",
            "The access history, in plain words, newest first",
            "access",
            response=list[m.HistoryEntryOut],
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _PATIENT + "/emergency-access",
            _emergency,
            "breakGlass",
            "Declare an emergency access (bris de glace or SAMU regulation)",
            "access",
            auth=Auth.PROFESSIONAL,
            body=m.EmergencyIn,
            response=m.EmergencyOut,
            status=201,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "POST",
            _PATIENT + "/care-team",
            _join_care_team,
            "joinCareTeam",
            "Declare taking part in the patient's care (professionals)",
            "access",
            auth=Auth.PROFESSIONAL,
            response=m.GrantOut,
            status=201,
            errors=(*_AUTH_ERRORS, 422),
        ),
        *_messaging_operations(),
        *_agenda_operations(),
        *app_operations(),
    ]
    ops = open_to_apps(ops)
    if demo:
        ops[2:2] = [
            Operation(
                "POST",
                _PREFIX + "/session/patient",
                _patient_login,
                "loginPatient",
                "Demo login with the carte Vitale details",
                "sessions",
                auth=Auth.NONE,
                body=m.PatientLogin,
                response=m.SessionOut,
                status=201,
                errors=(401, 403, 415, 422, 429),
            ),
            Operation(
                "POST",
                _PREFIX + "/session/professional",
                _professional_login,
                "loginProfessional",
                "Simulated Pro Santé Connect: an RPPS number, no password (demo only)",
                "sessions",
                auth=Auth.NONE,
                body=m.ProfessionalLogin,
                response=m.SessionOut,
                status=201,
                errors=(403, 404, 415, 422, 429),
            ),
        ]
    return ops


_MESSAGES = _PATIENT + "/messages"
_THREAD = _MESSAGES + "/{thread_id}"
_ATTACHMENT = _PATIENT + "/attachments/{attachment_id}"


def _messaging_operations() -> list[Operation]:
    return [
        Operation(
            "GET",
            _MESSAGES,
            _inbox,
            "listMessages",
            "A patient's mailbox, with unread counts (the patient or their representative)",
            "messaging",
            query=m.MessageQuery,
            response=m.InboxOut,
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "POST",
            _MESSAGES,
            _start_thread,
            "startThread",
            "Start a conversation with a patient (professionals only)",
            "messaging",
            auth=Auth.PROFESSIONAL,
            body=m.ThreadStartIn,
            response=m.MessageOut,
            status=201,
            errors=(*_AUTH_ERRORS, 413, 415, 422),
            description="The patient is told by e-mail or SMS that a message is waiting, "
            "never what it says.",
        ),
        Operation(
            "POST",
            _MESSAGES + "/search",
            _search_messages,
            "searchMessages",
            "Search a patient's mailbox (subject words, correspondent, dates)",
            "messaging",
            body=m.MessageSearch,
            response=m.InboxOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _THREAD,
            _get_thread,
            "getThread",
            "A thread and its messages; the other side's messages are marked read",
            "messaging",
            response=m.ThreadViewOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _THREAD + "/replies",
            _reply,
            "replyToThread",
            "Write in a thread (the patient's side replies; the professional writes again)",
            "messaging",
            body=m.ReplyIn,
            response=m.MessageOut,
            status=201,
            errors=(*_AUTH_ERRORS, 409, 413, 415, 422),
            description="409 when the professional closed the thread to replies.",
        ),
        Operation(
            "POST",
            _THREAD + "/archive",
            _archiving(True),
            "archiveThread",
            "Archive a thread in the caller's mailbox",
            "messaging",
            response=m.ThreadOut,
            errors=_AUTH_ERRORS,
        ),
        Operation(
            "POST",
            _THREAD + "/unarchive",
            _archiving(False),
            "unarchiveThread",
            "Bring an archived thread back to the caller's inbox",
            "messaging",
            response=m.ThreadOut,
            errors=_AUTH_ERRORS,
        ),
        Operation(
            "POST",
            _THREAD + "/close",
            _closing(True),
            "closeThread",
            "Close a thread to the patient's replies (the professional who started it)",
            "messaging",
            auth=Auth.PROFESSIONAL,
            response=m.ThreadOut,
            errors=_AUTH_ERRORS,
        ),
        Operation(
            "POST",
            _THREAD + "/reopen",
            _closing(False),
            "reopenThread",
            "Open a closed thread to replies again (the professional who started it)",
            "messaging",
            auth=Auth.PROFESSIONAL,
            response=m.ThreadOut,
            errors=_AUTH_ERRORS,
        ),
        Operation(
            "GET",
            _ATTACHMENT + "/content",
            _attachment_content,
            "getAttachmentContent",
            "An attachment's content (a download)",
            "messaging",
            response_media_type="application/octet-stream",
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _ATTACHMENT + "/file",
            _file_attachment,
            "fileAttachment",
            "Save an attachment into the record (the patient or their representative)",
            "messaging",
            response=m.DocumentOut,
            status=201,
            errors=(*_AUTH_ERRORS, 409, 422),
        ),
        Operation(
            "GET",
            _PREFIX + "/professional/messages",
            _professional_inbox,
            "listProfessionalMessages",
            "The professional's own mailbox: their threads with every patient",
            "messaging",
            auth=Auth.PROFESSIONAL,
            query=m.MessageQuery,
            response=m.InboxOut,
            errors=(401, 404, 422),
        ),
    ]


_AGENDA = _PATIENT + "/agenda"
_EVENT = _AGENDA + "/events/{event_id}"
_REMINDERS = _AGENDA + "/reminders"


def _agenda_operations() -> list[Operation]:
    return [
        Operation(
            "GET",
            _AGENDA + "/events",
            _list_events,
            "listAgendaEvents",
            "The events of an agenda, by start time (from and until: days, Paris time)",
            "agenda",
            query=m.AgendaQuery,
            response=list[m.EventOut],
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "POST",
            _AGENDA + "/events",
            _add_event,
            "addAgendaEvent",
            "Add an event to an agenda (planned, or done for an act already made)",
            "agenda",
            body=m.EventIn,
            response=m.EventOut,
            status=201,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _EVENT,
            _get_event,
            "getAgendaEvent",
            "One event of an agenda",
            "agenda",
            response=m.EventOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _EVENT + "/reschedule",
            _reschedule,
            "rescheduleAgendaEvent",
            "Move an event (a missed or cancelled event becomes planned again)",
            "agenda",
            body=m.RescheduleIn,
            response=m.EventOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "POST",
            _EVENT + "/cancel",
            _event_change("cancel"),
            "cancelAgendaEvent",
            "Cancel an event (it stays in the agenda and its history)",
            "agenda",
            response=m.EventOut,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "POST",
            _EVENT + "/done",
            _event_change("mark_done"),
            "markAgendaEventDone",
            "Mark an event done, once it has started (it may prove a reminder)",
            "agenda",
            response=m.EventOut,
            errors=(*_AUTH_ERRORS, 422),
        ),
        Operation(
            "GET",
            _AGENDA + "/calendar.ics",
            _calendar,
            "getAgendaCalendar",
            "The agenda as an iCalendar file (kinds and places only, unless include_details)",
            "agenda",
            query=m.CalendarQuery,
            response_media_type="text/calendar",
            errors=(*_AUTH_ERRORS, 422),
            deferred_session=True,
        ),
        Operation(
            "GET",
            _REMINDERS,
            _reminders,
            "listReminders",
            "The prevention reminders today, each with why it is proposed",
            "agenda",
            response=m.RemindersOut,
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
        Operation(
            "POST",
            _REMINDERS + "/opt-out",
            _notices(False),
            "optOutOfReminders",
            "Stop the notices of one family of reminders (they stay visible)",
            "agenda",
            body=m.FamilyIn,
            response=m.OptOutOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "POST",
            _REMINDERS + "/opt-in",
            _notices(True),
            "optInToReminders",
            "Receive the notices of one family of reminders again",
            "agenda",
            body=m.FamilyIn,
            response=m.OptOutOut,
            errors=(*_AUTH_ERRORS, 415, 422),
        ),
        Operation(
            "GET",
            _REMINDERS + "/sent",
            _sent_reminders,
            "listSentReminders",
            "The reminder notices sent, to whom, and why each was sent",
            "agenda",
            response=list[m.SentReminderOut],
            errors=_AUTH_ERRORS,
            deferred_session=True,
        ),
    ]
