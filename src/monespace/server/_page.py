"""The minimal server-rendered patient page: plain HTML and CSS, no JavaScript.

A person logs in with their carte Vitale details (the demo login), sees their record by
category, opens a document, masks or unmasks it, reads the access history, and their agenda
with the prevention reminders (why each is proposed, which families send notices). Forms post
back with the session's CSRF token in a hidden field; every page is sent with
``Cache-Control: no-store`` and a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from importlib.resources import files
from typing import Final
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..actors import Actor
from ..agenda import Event, EventKind, EventStatus, Family, Reminder, ReminderStatus, Why
from ..errors import MonespaceError
from ..messaging import Message, Thread
from ..record import Category, Document
from ._api import (
    access_history,
    agenda_calendar,
    agenda_events,
    agenda_reminders,
    archive_thread,
    attachment_content,
    document_content,
    fetch_document,
    file_attachment,
    inbox_page,
    patient_login,
    reply_in_thread,
    set_masked,
    set_notices,
    thread_view,
)
from ._problems import SECURITY_HEADERS, ProblemError, from_library_error
from ._routing import Call, Reply, ServerState, check_origin, read_body, render, session_token
from ._sessions import SessionKind

__all__ = ["page_routes"]

_PARIS = ZoneInfo("Europe/Paris")
_FORM_LIMIT = 256 * 1024  # a reply of a few pages, URL-encoded
_TEXT_PREVIEW = 200 * 1024
_CSS: Final = files("monespace.server").joinpath("static/style.css").read_bytes()

CATEGORY_NAMES: Final = {
    Category.PRESCRIPTIONS: "Ordonnances",
    Category.TREATMENTS: "Soins et traitements",
    Category.RESULTS: "Résultats d'examens",
    Category.IMAGING: "Imagerie médicale",
    Category.HOSPITAL_REPORTS: "Comptes rendus d'hospitalisation",
    Category.VACCINATION: "Vaccinations",
    Category.REIMBURSEMENTS: "Remboursements",
    Category.CERTIFICATES: "Certificats",
    Category.PATIENT_DOCUMENTS: "Mes documents",
    Category.OTHERS: "Autres documents",
}

_e = html.escape


def _when(moment: datetime | date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M")
    return moment.strftime("%d/%m/%Y")


def _layout(title: str, body: str, *, call: Call | None = None, status: int = 200) -> Response:
    nav = ""
    if call is not None and call.session is not None:
        pid = call.session.person_id
        nav = (
            f'<nav><a href="/espace/{_e(pid)}">Mes documents</a> '
            f'<a href="/espace/{_e(pid)}/messages" id="nav-messages">Messagerie</a> '
            f'<a href="/espace/{_e(pid)}/agenda" id="nav-agenda">Agenda</a> '
            f'<a href="/espace/{_e(pid)}/historique">Historique des accès</a> '
            '<form method="post" action="/logout" class="inline">'
            f'<input type="hidden" name="csrf_token" value="{_e(call.session.csrf_token)}">'
            '<button type="submit" id="logout">Se déconnecter</button></form></nav>'
        )
    page = f"""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · monespace (démo)</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header>
<p class="brand">monespace <span>démonstration</span></p>
{nav}
</header>
<p class="banner" role="note">Démonstration avec des données synthétiques. Ce n'est pas un
hébergement de données de santé (HDS) : n'y mettez aucune donnée réelle.</p>
<main>
<h1>{_e(title)}</h1>
{body}
</main>
</body>
</html>
"""
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def _login_form(message: str = "", status: int = 200) -> Response:
    alert = f'<p class="error" role="alert">{_e(message)}</p>' if message else ""
    body = f"""{alert}
<p>Connectez-vous avec les informations de votre carte Vitale (connexion de démonstration).</p>
<form method="post" action="/login" class="card">
<label>Numéro de sécurité sociale <input name="nir" id="nir" required autocomplete="off"
 inputmode="numeric" maxlength="32"></label>
<label>Numéro de série de la carte Vitale <input name="vitale_serial" id="vitale_serial"
 required autocomplete="off" maxlength="64"></label>
<label>Date de naissance <input name="birth_date" id="birth_date" type="date" required></label>
<button type="submit" id="login">Se connecter</button>
</form>"""
    return _layout("Connexion", body, status=status)


def _error_page(error: ProblemError, call: Call | None) -> Response:
    status = error.problem.status
    if status == 401:
        return _login_form("Votre session a expiré : reconnectez-vous.", status=401)
    texts = {
        404: ("Introuvable", "Cette page n'existe pas, ou vous n'y avez pas accès."),
        403: ("Requête refusée", "La requête n'a pas pu être vérifiée. Rechargez la page."),
        429: ("Trop de tentatives", "Patientez quelques minutes avant de réessayer."),
    }
    title, text = texts.get(status, ("Erreur", error.problem.detail or error.problem.title))
    response = _layout(title, f"<p>{_e(text)}</p>", call=call, status=status)
    response.headers.update(error.headers)
    return response


Handler = Callable[[Call], Awaitable[Response]]


def _page(
    state: ServerState, handler: Handler, *, auth: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        token, from_cookie = session_token(request, state)
        session = state.sessions.get(token) if from_cookie else None
        call = Call(request, state, session, token if from_cookie else None, None, None, {})
        try:
            for value in request.path_params.values():
                if (
                    not str(value).replace("-", "").replace("_", "").isalnum()
                    or len(str(value)) > 64
                ):
                    raise ProblemError(404, "not-found", "Not found")
            if request.method == "POST":
                check_origin(request)
                form = parse_qs(
                    (await read_body(request, _FORM_LIMIT)).decode("utf-8", "replace"),
                    max_num_fields=20,
                )
                call.body = {k: v[0] for k, v in form.items() if v}
            if auth:
                if session is None or session.kind is not SessionKind.PATIENT:
                    raise ProblemError(401, "unauthenticated", "Authentication required")
                if request.method == "POST" and not session.csrf_matches(
                    call.body.get("csrf_token")
                ):
                    raise ProblemError(403, "csrf", "CSRF token missing or wrong")
            call.path = {k: str(v) for k, v in request.path_params.items()}
            return await handler(call)
        except ProblemError as error:
            return _error_page(error, call)
        except MonespaceError as exc:
            return _error_page(from_library_error(exc), call)

    endpoint.__name__ = getattr(handler, "__name__", "page")
    return endpoint


def _redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


async def _home(call: Call) -> Response:
    if call.session is not None and call.session.kind is SessionKind.PATIENT:
        return _redirect(f"/espace/{call.session.person_id}")
    return _login_form()


async def _login(call: Call) -> Response:
    form: dict[str, str] = call.body
    try:
        born = date.fromisoformat(form.get("birth_date", ""))
    except ValueError:
        return _login_form("Les informations ne correspondent pas.", status=401)
    try:
        token, out = await patient_login(
            call, form.get("nir", "")[:32], form.get("vitale_serial", "")[:64], born
        )
    except ProblemError as error:
        if error.problem.status == 429:
            raise
        return _login_form(
            "Les informations saisies ne correspondent pas, ou trop d'essais ont été faits.",
            status=401,
        )
    # Back to the consent page of an app, if the login was asked for by one (only that
    # path of this site: never an open redirect).
    after = form.get("next", "")
    if not after.startswith("/oauth/authorize?") or any(c in after for c in "\\\r\n"):
        after = f"/espace/{out.session.person_id}"
    return render(
        Reply(_redirect(after), set_session=token),
        call.request,
        call.state,
    )


async def _logout(call: Call) -> Response:
    call.state.sessions.revoke(call.token)
    return render(Reply(_redirect("/"), clear_session=True), call.request, call.state)


async def _spaces_nav(call: Call, current: str, section: str = "") -> str:
    assert call.session is not None
    spaces = await call.run(
        call.state.space.accounts.spaces_of, Actor.patient(call.session.person_id)
    )
    if len(spaces) < 2:
        return ""
    links = []
    for number, pid in enumerate(spaces):
        label = "Mon espace" if number == 0 else f"Espace représenté n° {number}"
        attr = ' aria-current="page"' if pid == current else ""
        links.append(f'<a href="/espace/{_e(pid)}{section}"{attr}>{_e(label)}</a>')
    return f'<p class="spaces">Espaces : {" ".join(links)}</p>'


def _document_row(pid: str, document: Document) -> str:
    flags = ' <span class="tag">masqué aux professionnels</span>' if document.masked else ""
    return (
        f'<li><a class="doc" href="/espace/{_e(pid)}/documents/{_e(document.id)}">'
        f"{_e(document.title)}</a> <small>{_e(_when(document.created_at))}</small>{flags}</li>"
    )


async def _record(call: Call) -> Response:
    pid = call.path["patient_id"]
    page = await call.run(call.state.space.record.search, call.actor(pid), pid, limit=500)
    groups: dict[Category, list[Document]] = {}
    for document in page.documents:
        groups.setdefault(document.category, []).append(document)
    sections = []
    for category in Category:
        documents = groups.get(category)
        if not documents:
            continue
        items = "\n".join(_document_row(pid, d) for d in documents)
        sections.append(
            f'<section class="category" id="cat-{category.value}">'
            f"<h2>{_e(CATEGORY_NAMES[category])} ({len(documents)})</h2><ul>{items}</ul></section>"
        )
    body = (await _spaces_nav(call, pid)) + (
        "\n".join(sections) if sections else "<p>Aucun document pour l'instant.</p>"
    )
    if page.total > len(page.documents):
        body += f"<p>{len(page.documents)} documents affichés sur {page.total}.</p>"
    return _layout("Mes documents", body, call=call)


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


async def _document(call: Call) -> Response:
    pid, did = call.path["patient_id"], call.path["document_id"]
    document = await fetch_document(call, pid, did)
    preview = ""
    if document.media_type in ("text/plain", "text/xml", "application/xml"):
        content = await call.run(call.state.space.record.read_content, call.actor(pid), did)
        text = content[:_TEXT_PREVIEW].decode("utf-8", "replace")
        preview = f'<pre class="content" id="content">{_e(text)}</pre>'
    table = _rows(
        [
            ("Catégorie", CATEGORY_NAMES[document.category]),
            ("Type", document.type_code.display or document.type_code.code),
            ("Date", _when(document.created_at)),
            ("Ajouté le", _when(document.submitted_at)),
            ("Format", document.media_type),
            (
                "Visibilité",
                "masqué aux professionnels"
                if document.masked
                else "visible par les professionnels autorisés",
            ),
        ]
    )
    action = "unmask" if document.masked else "mask"
    label = "Rendre visible aux professionnels" if document.masked else "Masquer aux professionnels"
    assert call.session is not None
    body = f"""<table class="meta">{table}</table>
<form method="post" action="/espace/{_e(pid)}/documents/{_e(did)}/{action}">
<input type="hidden" name="csrf_token" value="{_e(call.session.csrf_token)}">
<button type="submit" id="{action}">{_e(label)}</button>
</form>
<p><a href="/espace/{_e(pid)}/documents/{_e(did)}/contenu" id="download">Télécharger le
document</a> · <a href="/espace/{_e(pid)}">Retour à mes documents</a></p>
{preview}"""
    return _layout(document.title, body, call=call)


async def _content(call: Call) -> Response:
    response = await document_content(call, call.path["patient_id"], call.path["document_id"])
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k != "content-security-policy"}
    )
    return response


def _masking(masked: bool) -> Handler:
    async def change(call: Call) -> Response:
        pid, did = call.path["patient_id"], call.path["document_id"]
        await set_masked(call, pid, did, masked)
        return _redirect(f"/espace/{pid}/documents/{did}")

    change.__name__ = "mask" if masked else "unmask"
    return change


async def _history(call: Call) -> Response:
    pid = call.path["patient_id"]
    entries = await access_history(call, pid)
    rows = "".join(
        f"<tr><td>{_e(_when(e.at))}</td><td>{_e(e.who)}</td><td>{_e(e.what)}"
        + (' <span class="tag">urgence</span>' if e.mode != "normal" else "")
        + "</td></tr>"
        for e in entries
    )
    body = (await _spaces_nav(call, pid)) + (
        '<table class="history" id="history"><thead><tr><th>Quand</th><th>Qui</th>'
        f"<th>Quoi</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _layout("Historique des accès", body, call=call)


# --- secure messaging -------------------------------------------------------------------------

_SENDERS = {"patient": "vous", "representative": "vous (représentant légal)"}


def _thread_row(pid: str, thread: Thread) -> str:
    badge = (
        f' <span class="unread" id="unread-{_e(thread.id)}">{thread.unread} non lu'
        f"{'s' if thread.unread > 1 else ''}</span>"
        if thread.unread
        else ""
    )
    closed = ' <span class="tag">close</span>' if thread.closed else ""
    who = thread.professional.name or thread.professional.id
    return (
        f'<li><a class="thread" href="/espace/{_e(pid)}/messages/{_e(thread.id)}">'
        f"{_e(thread.subject)}</a>{badge}{closed}<br><small>{_e(who)} · "
        f"{_e(_when(thread.last_message_at))} · {thread.message_count} message"
        f"{'s' if thread.message_count > 1 else ''}</small></li>"
    )


async def _inbox(call: Call) -> Response:
    pid = call.path["patient_id"]
    archived = call.request.query_params.get("archives") == "1"
    page = await inbox_page(call, pid, archived=archived, limit=200)
    items = "\n".join(_thread_row(pid, t) for t in page.threads)
    if archived:
        switch = f'<p><a href="/espace/{_e(pid)}/messages">Retour aux messages reçus</a></p>'
        empty = "<p>Aucune conversation archivée.</p>"
    else:
        switch = (
            f'<p><a href="/espace/{_e(pid)}/messages?archives=1">Conversations archivées</a></p>'
        )
        empty = "<p>Aucun message pour l'instant.</p>"
    summary = (
        f'<p id="unread-total">{page.unread} message{"s" if page.unread > 1 else ""} non lu'
        f"{'s' if page.unread > 1 else ''}.</p>"
    )
    body = (
        (await _spaces_nav(call, pid, "/messages"))
        + summary
        + (f'<ul class="threads" id="threads">{items}</ul>' if items else empty)
        + switch
    )
    return _layout("Messagerie" + (" (archives)" if archived else ""), body, call=call)


def _message_block(pid: str, message: Message, csrf: str, professional: str) -> str:
    if message.from_professional:
        who = professional
    else:
        who = _SENDERS.get(message.sender_kind, message.sender_kind)
    attachments = ""
    for attachment in message.attachments:
        base = f"/espace/{_e(pid)}/pieces-jointes/{_e(attachment.id)}"
        save = ""
        if message.from_professional:
            save = (
                f'<form method="post" action="{base}/enregistrer" class="inline">'
                f'<input type="hidden" name="csrf_token" value="{_e(csrf)}">'
                '<button type="submit" class="file-attachment">Enregistrer dans mes documents'
                "</button></form>"
            )
        attachments += (
            f'<li><a class="attachment" href="{base}">{_e(attachment.filename)}</a> '
            f"<small>({_e(attachment.media_type)}, {attachment.size} octets)</small> {save}</li>"
        )
    if attachments:
        attachments = f'<ul class="attachments">{attachments}</ul>'
    read = f" · lu le {_e(_when(message.read_at))}" if message.read_at else ""
    closing = ' <span class="tag">conversation close</span>' if message.closes_thread else ""
    return (
        f'<article class="message" id="message-{_e(message.id)}">'
        f"<p><strong>{_e(who)}</strong> · {_e(_when(message.sent_at))}{read}{closing}</p>"
        f'<pre class="message-body">{_e(message.body)}</pre>{attachments}</article>'
    )


async def _thread(call: Call) -> Response:
    pid, tid = call.path["patient_id"], call.path["thread_id"]
    view = await thread_view(call, pid, tid)
    assert call.session is not None
    csrf = call.session.csrf_token
    thread = view.thread
    who = thread.professional.name or thread.professional.id
    address = f" ({thread.professional.address})" if thread.professional.address else ""
    base = f"/espace/{_e(pid)}/messages/{_e(tid)}"
    messages = "\n".join(_message_block(pid, x, csrf, who) for x in view.messages)
    if thread.closed:
        reply = (
            '<p class="closed" id="closed">Le professionnel a clos cette conversation : '
            "elle ne reçoit plus de réponse.</p>"
        )
    else:
        reply = f"""<form method="post" action="{base}/repondre" class="card reply">
<input type="hidden" name="csrf_token" value="{_e(csrf)}">
<label>Votre réponse <textarea name="body" id="reply-body" rows="6" required
 maxlength="100000"></textarea></label>
<button type="submit" id="reply">Envoyer</button>
</form>"""
    action, label = ("unarchive", "Désarchiver") if thread.archived else ("archive", "Archiver")
    archive = (
        f'<form method="post" action="{base}/{action}" class="inline">'
        f'<input type="hidden" name="csrf_token" value="{_e(csrf)}">'
        f'<button type="submit" id="{action}">{label}</button></form>'
    )
    body = f"""<p class="with">Avec {_e(who)}{_e(address)}</p>
{archive}
<div class="messages" id="messages">{messages}</div>
{reply}
<p><a href="/espace/{_e(pid)}/messages">Retour à la messagerie</a></p>"""
    return _layout(thread.subject, body, call=call)


async def _reply(call: Call) -> Response:
    pid, tid = call.path["patient_id"], call.path["thread_id"]
    form: dict[str, str] = call.body
    await reply_in_thread(call, pid, tid, body=form.get("body", ""))
    return _redirect(f"/espace/{pid}/messages/{tid}")


def _archiving(archived: bool) -> Handler:
    async def change(call: Call) -> Response:
        pid, tid = call.path["patient_id"], call.path["thread_id"]
        await archive_thread(call, pid, tid, archived)
        return _redirect(f"/espace/{pid}/messages" if archived else f"/espace/{pid}/messages/{tid}")

    change.__name__ = "archive" if archived else "unarchive"
    return change


async def _attachment(call: Call) -> Response:
    response = await attachment_content(call, call.path["patient_id"], call.path["attachment_id"])
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k != "content-security-policy"}
    )
    return response


async def _file(call: Call) -> Response:
    pid = call.path["patient_id"]
    document = await file_attachment(call, pid, call.path["attachment_id"])
    return _redirect(f"/espace/{pid}/documents/{document.id}")


# --- agenda and prevention reminders ---------------------------------------------------------

KIND_NAMES: Final = {
    EventKind.APPOINTMENT: "Rendez-vous",
    EventKind.VACCINATION: "Vaccination",
    EventKind.EXAMINATION: "Examen",
    EventKind.SCREENING: "Dépistage",
    EventKind.BILAN_PREVENTION: "Bilan de prévention",
    EventKind.OTHER: "Autre",
}
EVENT_STATUS_NAMES: Final = {
    EventStatus.PLANNED: "prévu",
    EventStatus.DONE: "fait",
    EventStatus.CANCELLED: "annulé",
    EventStatus.MISSED: "manqué",
}
FAMILY_NAMES: Final = {
    Family.VACCINATION: "Vaccinations",
    Family.CHILD_EXAM: "Examens de l'enfant",
    Family.MT_DENTS: "M'T dents (examens bucco-dentaires)",
    Family.BILAN_PREVENTION: "Bilans de prévention",
    Family.SCREENING: "Dépistages",
    Family.ADVANCE_DIRECTIVES: "Directives anticipées",
}
REMINDER_STATUS_NAMES: Final = {
    ReminderStatus.OVERDUE: "en retard",
    ReminderStatus.DUE: "à faire maintenant",
    ReminderStatus.UPCOMING: "bientôt",
    ReminderStatus.DONE: "fait",
}
_EVIDENCE_NAMES: Final = {
    "C": "règle confirmée par une source officielle",
    "P": "règle partiellement confirmée",
    "U": "règle par défaut, non confirmée",
}
_SEX_NAMES: Final = {"F": "femme", "M": "homme"}
#: The order reminders are listed in: what is late first, what is done last.
_URGENCY: Final = (
    ReminderStatus.OVERDUE,
    ReminderStatus.DUE,
    ReminderStatus.UPCOMING,
    ReminderStatus.DONE,
)


def _paris(moment: datetime) -> str:
    """A time in Paris, with the zone named (the agenda is read in French time)."""
    return f"{_when(moment)} (heure de Paris)"


def _age(days: int) -> str:
    years = days // 365
    if years >= 2:
        return f"{years} ans"
    months = days * 12 // 365
    return f"{months} mois" if months else f"{days} jours"


def _event_row(event: Event) -> str:
    end = f" (fin : {_e(_when(event.ends_at))})" if event.ends_at is not None else ""
    details = " · ".join(_e(x) for x in (event.title, event.place, event.establishment) if x)
    status = (
        ""
        if event.status is EventStatus.PLANNED
        else f' <span class="tag">{_e(EVENT_STATUS_NAMES[event.status])}</span>'
    )
    return (
        f'<li class="event"><strong>{_e(_paris(event.starts_at))}</strong>{end} — '
        f"{_e(KIND_NAMES[event.kind])}{' : ' + details if details else ''}{status}</li>"
    )


def _why_block(why: Why) -> str:
    facts = [f"âge à cette date : {_age(why.age_days)}"]
    if why.sex in _SEX_NAMES:
        facts.append(f"sexe : {_SEX_NAMES[why.sex]}")
    if why.last_act is not None:
        proof = f" ({why.proved_by})" if why.proved_by else ""
        facts.append(f"dernier acte retrouvé : le {_when(why.last_act)}{proof}")
    else:
        facts.append("aucun acte correspondant retrouvé dans le dossier")
    items = "".join(f"<li>{_e(f)}</li>" for f in facts)
    return (
        '<details class="why"><summary>Pourquoi ce rappel ?</summary>'
        f"<p>Règle : {_e(why.rule)} (calendrier des vaccinations et de la prévention, "
        f"édition {_e(why.edition)} ; {_e(_EVIDENCE_NAMES.get(str(why.evidence), ''))}).</p>"
        f"<p>Source : {_e(why.source.text)} <small>({_e(why.source.ref)})</small></p>"
        f"<p>Les informations utilisées :</p><ul>{items}</ul></details>"
    )


def _reminder_row(reminder: Reminder, opted_out: set[Family]) -> str:
    window = (
        f"à partir du {_when(reminder.due_from)}"
        if reminder.due_until is None
        else f"du {_when(reminder.due_from)} au {_when(reminder.due_until)}"
    )
    silent = ' <span class="tag">sans notification</span>' if reminder.family in opted_out else ""
    return (
        f'<li class="reminder reminder-{_e(str(reminder.status))}">'
        f"<strong>{_e(reminder.title)}</strong> "
        f'<span class="status">{_e(REMINDER_STATUS_NAMES[reminder.status])}</span> '
        f"<small>{_e(window)}</small>{silent}"
        f"{_why_block(reminder.why)}</li>"
    )


def _notices_form(pid: str, family: Family, stopped: bool, csrf: str) -> str:
    action, label, state = (
        ("reprendre", "Recevoir à nouveau", "vous ne recevez plus de notification")
        if stopped
        else ("arreter", "Ne plus être notifié", "vous recevez les notifications")
    )
    return (
        f"<li>{_e(FAMILY_NAMES[family])} : {_e(state)}. "
        f'<form method="post" action="/espace/{_e(pid)}/agenda/rappels/{_e(str(family))}/{action}"'
        ' class="inline">'
        f'<input type="hidden" name="csrf_token" value="{_e(csrf)}">'
        f'<button type="submit">{_e(label)}</button></form></li>'
    )


async def _agenda(call: Call) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    today = call.state.now().astimezone(_PARIS).date()
    events = [
        e
        for e in await agenda_events(call, pid, first=today)
        if e.status is not EventStatus.CANCELLED
    ]
    reminders, opted_out = await agenda_reminders(call, pid)
    reminders.sort(key=lambda r: (_URGENCY.index(r.status), r.due_from))
    upcoming = "".join(_event_row(e) for e in events) or "<li>Aucun rendez-vous à venir.</li>"
    current = "".join(
        _reminder_row(r, opted_out) for r in reminders if r.status is not ReminderStatus.DONE
    )
    done = "".join(
        _reminder_row(r, opted_out) for r in reminders if r.status is ReminderStatus.DONE
    )
    forms = "".join(
        _notices_form(pid, family, family in opted_out, call.session.csrf_token)
        for family in Family
    )
    body = (
        (await _spaces_nav(call, pid, "/agenda"))
        + '<section id="agenda"><h2>Rendez-vous à venir</h2>'
        + f'<ul class="events">{upcoming}</ul>'
        + f'<p><a href="/espace/{_e(pid)}/agenda/agenda.ics" id="agenda-ics" download>'
        "Télécharger l'agenda (fichier .ics, sans les titres ni les notes)</a></p></section>"
        + '<section id="reminders"><h2>Rappels de prévention</h2>'
        + (
            f'<ul class="reminders">{current}</ul>'
            if current
            else "<p>Aucun rappel de prévention pour l'instant.</p>"
        )
        + (f'<h3>Déjà faits</h3><ul class="reminders">{done}</ul>' if done else "")
        + "</section>"
        + '<section id="notices"><h2>Notifications des rappels</h2>'
        "<p>Les rappels restent visibles ici ; vous choisissez seulement ceux dont vous êtes "
        f"prévenu par e-mail, à tout moment et sans justification.</p><ul>{forms}</ul></section>"
    )
    return _layout("Agenda", body, call=call)


async def _calendar(call: Call) -> Response:
    response = await agenda_calendar(call, call.path["patient_id"], include_details=False)
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k != "content-security-policy"}
    )
    return response


def _notices(wanted: bool) -> Handler:
    async def change(call: Call) -> Response:
        pid = call.path["patient_id"]
        try:
            family = Family(call.path["family"])
        except ValueError:
            raise ProblemError(404, "not-found", "Not found") from None
        await set_notices(call, pid, family, wanted)
        return _redirect(f"/espace/{pid}/agenda#notices")

    change.__name__ = "opt_in" if wanted else "opt_out"
    return change


async def _style(_request: Request) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    return Response(_CSS, media_type="text/css", headers=headers)


def page_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of the patient page (not part of the JSON API nor of its OpenAPI)."""
    doc = "/espace/{patient_id}/documents/{document_id}"
    box = "/espace/{patient_id}/messages"
    thread = box + "/{thread_id}"
    agenda = "/espace/{patient_id}/agenda"
    attachment = "/espace/{patient_id}/pieces-jointes/{attachment_id}"
    return [
        Route("/", _page(state, _home, auth=False), methods=["GET"]),
        Route("/login", _page(state, _login, auth=False), methods=["POST"]),
        Route("/logout", _page(state, _logout), methods=["POST"]),
        Route("/espace/{patient_id}", _page(state, _record), methods=["GET"]),
        Route("/espace/{patient_id}/historique", _page(state, _history), methods=["GET"]),
        Route(doc, _page(state, _document), methods=["GET"]),
        Route(doc + "/contenu", _page(state, _content), methods=["GET"]),
        Route(doc + "/mask", _page(state, _masking(True)), methods=["POST"]),
        Route(doc + "/unmask", _page(state, _masking(False)), methods=["POST"]),
        Route(box, _page(state, _inbox), methods=["GET"]),
        Route(thread, _page(state, _thread), methods=["GET"]),
        Route(thread + "/repondre", _page(state, _reply), methods=["POST"]),
        Route(thread + "/archive", _page(state, _archiving(True)), methods=["POST"]),
        Route(thread + "/unarchive", _page(state, _archiving(False)), methods=["POST"]),
        Route(attachment, _page(state, _attachment), methods=["GET"]),
        Route(attachment + "/enregistrer", _page(state, _file), methods=["POST"]),
        Route(agenda, _page(state, _agenda), methods=["GET"]),
        Route(agenda + "/agenda.ics", _page(state, _calendar), methods=["GET"]),
        Route(
            agenda + "/rappels/{family}/arreter", _page(state, _notices(False)), methods=["POST"]
        ),
        Route(
            agenda + "/rappels/{family}/reprendre", _page(state, _notices(True)), methods=["POST"]
        ),
        Route("/static/style.css", _style, methods=["GET"]),
    ]
