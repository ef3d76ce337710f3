"""The minimal server-rendered patient page: plain HTML and CSS, no JavaScript.

A person logs in with their carte Vitale details (the demo login), sees their record by
category, opens a document, masks or unmasks it, reads the access history, and their agenda
with the prevention reminders (why each is proposed, which families send notices). Forms post
back with the session's CSRF token in a hidden field; every page is sent with
``Cache-Control: no-store`` and a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import email.policy
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, time, timedelta
from email.parser import BytesParser
from importlib.resources import files
from typing import Final
from urllib.parse import parse_qs

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..access import GrantKind
from ..actors import Actor
from ..agenda import Event, EventKind, EventStatus, Family, Reminder, ReminderStatus, Why
from ..errors import InvalidNIRError, MonespaceError, NotFoundError, ValidationError
from ..messaging import Message, Thread
from ..record import (
    MEASURE_SPECS,
    SECTION_TITLES,
    TRE_A05_TYPE,
    Category,
    Code,
    Document,
    Measure,
    MeasureKind,
    ProfileEntry,
    ProfileSection,
    sniff,
    type_label,
)
from ._api import (
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
from ._cda_html import INLINE_MEDIA_TYPES, ReadableCda, read_cda
from ._html import (
    PARIS,
    NavLink,
    csrf_field,
    e,
    layout,
    navigation,
    post_button,
    redirect,
    when,
)
from ._problems import SECURITY_HEADERS, ProblemError, from_library_error
from ._routing import Call, Reply, ServerState, check_origin, read_body, render, session_token
from ._sessions import SessionKind
from ._svg import line_chart

__all__ = ["page_routes"]

_FORM_LIMIT = 256 * 1024  # a reply of a few pages, URL-encoded
_TEXT_PREVIEW = 200 * 1024
_CSS: Final = files("monespace.server").joinpath("static/style.css").read_bytes()

CATEGORY_NAMES: Final = {
    Category.PRESCRIPTIONS: "Ordonnances",
    Category.TREATMENTS: "Soins et traitements",
    Category.RESULTS: "Résultats d'examens",
    Category.IMAGING: "Imagerie médicale",
    Category.HOSPITAL_REPORTS: "Comptes rendus d'hospitalisation",
    Category.REPORTS: "Comptes rendus",
    Category.VACCINATION: "Vaccinations",
    Category.REIMBURSEMENTS: "Remboursements",
    Category.CERTIFICATES: "Certificats",
    Category.PATIENT_DOCUMENTS: "Mes documents",
    Category.OTHERS: "Autres documents",
}

_e = e
_when = when
_PARIS = PARIS

#: The sections of a patient's space, in the order of the navigation bar: path, label, name.
_SECTIONS: Final = (
    ("", "Mes documents", "documents"),
    ("/ajouter", "Ajouter un document", "ajouter"),
    ("/profil", "Profil médical", "profil"),
    ("/mesures", "Mesures", "mesures"),
    ("/messages", "Messagerie", "messages"),
    ("/agenda", "Agenda", "agenda"),
    ("/acces", "Accès à mon dossier", "acces"),
    ("/applications", "Applications connectées", "applications"),
    ("/historique", "Historique des accès", "historique"),
)
_SECTION_OF_PATH: Final = {"documents": "documents", "pieces-jointes": "messages"} | {
    path.strip("/"): name for path, _, name in _SECTIONS if path
}


def _patient_nav(call: Call) -> str:
    assert call.session is not None
    pid = call.path.get("patient_id") or call.session.person_id
    base = f"/espace/{pid}"
    rest = call.request.url.path.removeprefix(base).strip("/").split("/")[0]
    current = _SECTION_OF_PATH.get(rest, "documents" if not rest else "")
    links = [NavLink(base + path, label, name) for path, label, name in _SECTIONS]
    return navigation(links, current=current, csrf=call.session.csrf_token)


def _layout(
    title: str,
    body: str,
    *,
    call: Call | None = None,
    status: int = 200,
    csp: str | None = None,
) -> Response:
    nav = ""
    if call is not None and call.session is not None:
        nav = _patient_nav(call)
    return layout(title, body, nav=nav, status=status, csp=csp)


def _login_form(message: str = "", status: int = 200, *, pro: bool = False) -> Response:
    """The carte Vitale login; *pro* adds the link to the professionals' simulated login."""
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
    if pro:
        body += (
            '<p>Vous êtes professionnel de santé ? <a href="/pro" id="pro-link">Connexion des '
            "professionnels (carte CPS simulée)</a>.</p>"
        )
    return _layout("Connexion", body, status=status)


def _error_page(error: ProblemError, call: Call | None) -> Response:
    status = error.problem.status
    if status == 401:
        return _login_form("Votre session a expiré : reconnectez-vous.", status=401)
    texts = {
        404: ("Introuvable", "Cette page n'existe pas, ou vous n'y avez pas accès."),
        403: ("Requête refusée", "La requête n'a pas pu être vérifiée. Rechargez la page."),
        429: ("Trop de tentatives", "Patientez quelques minutes avant de réessayer."),
        409: ("Déjà fait", "Cette opération a déjà été faite, ou entre en conflit avec une autre."),
        413: ("Trop volumineux", "Le fichier ou le formulaire envoyé est trop volumineux."),
    }
    if status in (400, 422):
        texts[status] = (
            "Informations non valides",
            "Les informations saisies ne sont pas valides : vérifiez-les et recommencez "
            "(revenez à la page précédente).",
        )
    title, text = texts.get(status, ("Erreur", error.problem.detail or error.problem.title))
    response = _layout(title, f"<p>{_e(text)}</p>", call=call, status=status)
    response.headers.update(error.headers)
    return response


Handler = Callable[[Call], Awaitable[Response]]


@attrs.frozen
class _Upload:
    """A file sent with a form."""

    filename: str
    content: bytes


def _multipart(content_type: str, raw: bytes) -> dict[str, str | _Upload]:
    """The fields of a ``multipart/form-data`` body: text fields as text, files as bytes.

    Parsed with the standard library's MIME parser; at most 20 fields, as for other forms.
    """
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise ProblemError(400, "bad-form", "Malformed form")
    fields: dict[str, str | _Upload] = {}
    for part in list(message.iter_parts())[:20]:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            fields[name] = _Upload(filename[:200], data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields


def _page(
    state: ServerState, handler: Handler, *, auth: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        token, from_cookie = session_token(request, state)
        session = await state.sessions.aget(token) if from_cookie else None
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
                kind = request.headers.get("content-type", "")
                if kind.lower().startswith("multipart/form-data"):
                    raw = await read_body(request, state.max_body_bytes)
                    call.body = _multipart(kind, raw)
                else:
                    form = parse_qs(
                        (await read_body(request, _FORM_LIMIT)).decode("utf-8", "replace"),
                        max_num_fields=20,
                    )
                    call.body = {k: v[0] for k, v in form.items() if v}
            if auth:
                if session is None or session.kind is not SessionKind.PATIENT:
                    raise ProblemError(401, "unauthenticated", "Authentication required")
                given = call.body.get("csrf_token") if request.method == "POST" else None
                if request.method == "POST" and not (
                    isinstance(given, str) and session.csrf_matches(given)
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


_redirect = redirect


async def _home(call: Call) -> Response:
    if call.session is not None and call.session.kind is SessionKind.PATIENT:
        return _redirect(f"/espace/{call.session.person_id}")
    return _login_form(pro=call.state.demo)


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
    except InvalidNIRError:
        # A property of what was typed, not of anyone's data: said as such, never echoed.
        return _login_form(
            "Ce numéro de sécurité sociale n'est pas valide : il compte 15 caractères "
            "(13 chiffres, 2A ou 2B pour la Corse, puis la clé de 2 chiffres). Vérifiez-le "
            "sur votre carte Vitale.",
            status=422,
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
    await call.state.sessions.arevoke(call.token)
    return render(Reply(_redirect("/"), clear_session=True), call.request, call.state)


def _years(born: date, today: date) -> str:
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years >= 2:
        return f"{years} ans"
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    return f"{max(months, 0)} mois"


async def _space_label(call: Call, pid: str) -> str:
    """The first name and age of the person whose space *pid* is ("Léa, 7 ans")."""
    assert call.session is not None
    cached = call.session.space_labels.get(pid)
    if cached is None:
        patient = await call.run_as(pid, call.state.space.accounts.get_patient, pid)
        traits = patient.identity.ins.traits
        if traits is None:
            return "Espace sans nom"
        cached = (traits.first_given_name.title(), traits.birth_date)
        call.session.space_labels[pid] = cached
    today = call.state.now().astimezone(PARIS).date()
    return f"{cached[0]}, {_years(cached[1], today)}"


async def _spaces_nav(call: Call, current: str, section: str = "") -> str:
    """Whose space is open, and the links to the others (a parent and their children)."""
    assert call.session is not None
    spaces = await call.run(
        call.state.space.accounts.spaces_of, Actor.patient(call.session.person_id)
    )
    if len(spaces) < 2:
        return ""
    links = []
    opened = ""
    for pid in spaces:
        label = await _space_label(call, pid)
        if pid == call.session.person_id:
            label = f"Mon espace ({label})"
        if pid == current:
            opened = label
        attr = ' aria-current="page"' if pid == current else ""
        links.append(f'<li><a href="/espace/{_e(pid)}{section}"{attr}>{_e(label)}</a></li>')
    return (
        '<nav class="spaces" aria-label="Espaces que vous gérez">'
        f'<p id="open-space">Espace ouvert : <strong>{_e(opened)}</strong></p>'
        f"<p>Changer d'espace :</p><ul>{''.join(links)}</ul></nav>"
    )


def _type_name(document: Document) -> str:
    """The French label of a document's type: the shipped value sets', else what the
    document says; a code only when neither has words for it."""
    code = document.type_code
    return type_label(code.code, code.system) or code.display or code.code


def _document_row(pid: str, document: Document) -> str:
    flags = ' <span class="tag">masqué aux professionnels</span>' if document.masked else ""
    return (
        f'<li><a class="doc" href="/espace/{_e(pid)}/documents/{_e(document.id)}">'
        f"{_e(document.title)}</a> <small>{_e(_type_name(document))} · "
        f"{_e(_when(document.created_at))}</small>{flags}</li>"
    )


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _search_form(pid: str, words: str, category: str, since: str, until: str) -> str:
    options = '<option value="">Toutes</option>' + "".join(
        f'<option value="{_e(c.value)}"{" selected" if c.value == category else ""}>'
        f"{_e(CATEGORY_NAMES[c])}</option>"
        for c in Category
    )
    return f"""<form method="get" action="/espace/{_e(pid)}" class="card search" role="search"
 aria-label="Rechercher dans mes documents">
<label for="q">Mots du titre ou du commentaire</label>
<input id="q" name="q" type="search" value="{_e(words)}" maxlength="200">
<label for="categorie">Catégorie</label>
<select id="categorie" name="categorie">{options}</select>
<label for="depuis">Depuis le</label>
<input id="depuis" name="depuis" type="date" value="{_e(since)}">
<label for="jusqu">Jusqu'au</label>
<input id="jusqu" name="jusqu" type="date" value="{_e(until)}">
<button type="submit" id="search">Rechercher</button>
</form>"""


async def _record(call: Call) -> Response:
    pid = call.path["patient_id"]
    query = call.request.query_params
    words = query.get("q", "").strip()[:200]
    category = query.get("categorie", "")
    if category not in {c.value for c in Category}:
        category = ""
    since, until = _day(query.get("depuis")), _day(query.get("jusqu"))
    filtered = bool(words or category or since or until)
    page = await call.run_as(
        pid,
        call.state.space.record.search,
        pid,
        category=category or None,
        text=words or None,
        since=datetime.combine(since, time(), PARIS) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), PARIS) if until else None,
        limit=500,
    )
    groups: dict[Category, list[Document]] = {}
    for document in page.documents:
        groups.setdefault(document.category, []).append(document)
    sections = []
    for name in Category:
        documents = groups.get(name)
        if not documents:
            continue
        items = "\n".join(_document_row(pid, d) for d in documents)
        sections.append(
            f'<section class="category" id="cat-{name.value}">'
            f"<h2>{_e(CATEGORY_NAMES[name])} ({len(documents)})</h2><ul>{items}</ul></section>"
        )
    if sections:
        listing = "\n".join(sections)
    elif filtered:
        listing = '<p id="no-result">Aucun document ne correspond à cette recherche.</p>'
    else:
        listing = "<p>Aucun document pour l'instant.</p>"
    summary = ""
    if filtered:
        summary = (
            f'<p role="status" id="result-count">{page.total} document'
            f"{'s' if page.total > 1 else ''} trouvé{'s' if page.total > 1 else ''}. "
            f'<a href="/espace/{_e(pid)}">Effacer la recherche</a></p>'
        )
    body = (
        (await _spaces_nav(call, pid))
        + _search_form(
            pid,
            words,
            category,
            since.isoformat() if since else "",
            until.isoformat() if until else "",
        )
        + summary
        + listing
    )
    if page.total > len(page.documents):
        body += f"<p>{len(page.documents)} documents affichés sur {page.total}.</p>"
    return _layout("Mes documents", body, call=call)


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


_XML_TYPES: Final = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})
#: The page of a document may frame its preview (same origin), nothing else.
_DOCUMENT_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The preview itself: a sandbox (no script, no form, no same-origin rights), nothing loaded.
_PREVIEW_CSP: Final = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'none'; script-src 'none'; "
    "object-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)


async def _readable(call: Call, pid: str, document: Document) -> ReadableCda | None:
    """The readable form of a CDA document (``None`` for another format)."""
    if document.media_type not in _XML_TYPES:
        return None
    content = await call.run_as(pid, call.state.space.record.read_content, document.id)
    try:
        return read_cda(content, first_heading=3)
    except ValidationError:
        return None


def _inline(pid: str, did: str, media_type: str, title: str) -> str:
    """The preview of a file: an image inline, a PDF in a sandboxed frame."""
    source = f"/espace/{_e(pid)}/documents/{_e(did)}/apercu"
    if media_type.startswith("image/"):
        return (
            f'<figure class="preview"><img src="{source}" alt="{_e(title)}" id="preview">'
            f"<figcaption>{_e(title)}</figcaption></figure>"
        )
    return (
        f'<iframe class="preview" src="{source}" title="Aperçu : {_e(title)}" id="preview" '
        "sandbox></iframe>"
        "<p class=\"hint\">Si l'aperçu ne s'affiche pas, téléchargez le document.</p>"
    )


async def _document(call: Call) -> Response:
    pid, did = call.path["patient_id"], call.path["document_id"]
    document = await fetch_document(call, pid, did)
    preview = ""
    readable = await _readable(call, pid, document)
    if readable is not None and readable.embedded is not None:
        if readable.embedded.media_type in INLINE_MEDIA_TYPES:
            preview = _inline(pid, did, readable.embedded.media_type, document.title)
        else:
            preview = "<p>Ce document ne peut pas être affiché ici : téléchargez-le.</p>"
    elif readable is not None:
        preview = (
            f'<article class="cda" id="content"><h2>Contenu du document</h2>{readable.html}'
            "</article>"
            if readable.html
            else "<p>Ce document ne contient pas de texte à afficher.</p>"
        )
    elif document.media_type in INLINE_MEDIA_TYPES:
        preview = _inline(pid, did, document.media_type, document.title)
    elif document.media_type == "text/plain":
        content = await call.run_as(pid, call.state.space.record.read_content, did)
        text = content[:_TEXT_PREVIEW].decode("utf-8", "replace")
        preview = f'<pre class="content" id="content">{_e(text)}</pre>'
    else:
        preview = "<p>Ce format ne peut pas être affiché ici : téléchargez le document.</p>"
    author = document.author.name if document.author is not None else None
    table = _rows(
        [
            ("Catégorie", CATEGORY_NAMES[document.category]),
            ("Type", _type_name(document)),
            ("Date", _when(document.created_at)),
            ("Ajouté le", _when(document.submitted_at)),
            *([("Auteur", author)] if author else []),
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
    body = f"""{await _spaces_nav(call, pid)}<table class="meta"><caption>Informations
 sur le document</caption>{table}</table>
<form method="post" action="/espace/{_e(pid)}/documents/{_e(did)}/{action}">
<input type="hidden" name="csrf_token" value="{_e(call.session.csrf_token)}">
<button type="submit" id="{action}">{_e(label)}</button>
</form>
<p><a href="/espace/{_e(pid)}/documents/{_e(did)}/contenu" id="download">Télécharger le
document</a> · <a href="/espace/{_e(pid)}">Retour à mes documents</a></p>
{preview}"""
    return _layout(document.title, body, call=call, csp=_DOCUMENT_CSP)


async def _preview(call: Call) -> Response:
    """The file of a document (or the one a CDA level 1 document carries), to be shown in
    the document's page: only images and PDFs, under a sandbox that allows nothing."""
    pid, did = call.path["patient_id"], call.path["document_id"]
    document = await fetch_document(call, pid, did)
    content = await call.run_as(pid, call.state.space.record.read_content, did)
    media_type = document.media_type
    if media_type in _XML_TYPES:
        try:
            readable = read_cda(content)
        except ValidationError:
            readable = None
        if readable is None or readable.embedded is None:
            raise ProblemError(404, "not-found", "Not found")
        media_type, content = readable.embedded.media_type, readable.embedded.content
    if media_type not in INLINE_MEDIA_TYPES or sniff(content) != media_type:
        # what the bytes are must be what is declared: a "PDF" that is HTML is not shown
        raise ProblemError(404, "not-found", "Not found")
    return Response(
        content,
        media_type=media_type,
        headers={
            **SECURITY_HEADERS,
            "content-security-policy": _PREVIEW_CSP,
            "x-frame-options": "SAMEORIGIN",
            "content-disposition": "inline",
            "cross-origin-resource-policy": "same-origin",
        },
    )


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


_MODE_NAMES: Final = {"emergency": "accès d'urgence", "regulation": "régulation (SAMU)"}


async def _history(call: Call) -> Response:
    pid = call.path["patient_id"]
    everything = call.request.query_params.get("tout") == "1"
    entries = await call.run_as(pid, call.state.space.access.history, pid, limit=1000)
    entries.reverse()
    shown = [x for x in entries if everything or not x.holder_view]
    left_out = len(entries) - len(shown)
    rows = "".join(
        f"<tr><td>{_e(_when(x.at))}</td><td>{_e(x.sentence)}"
        + (f' <span class="tag">{_e(_MODE_NAMES[x.mode])}</span>' if x.mode in _MODE_NAMES else "")
        + "</td></tr>"
        for x in shown
    )
    if everything:
        switch = (
            f'<p><a href="/espace/{_e(pid)}/historique" id="history-filter">Ne plus afficher '
            "vos propres consultations</a></p>"
        )
    else:
        switch = (
            f"<p>Vos propres consultations ne sont pas affichées ({left_out}). "
            f'<a href="/espace/{_e(pid)}/historique?tout=1" id="history-filter">Les afficher'
            "</a></p>"
        )
    table = (
        '<table class="history" id="history"><caption>Qui a fait quoi dans votre espace, '
        "du plus récent au plus ancien</caption><thead><tr>"
        '<th scope="col">Quand (heure de Paris)</th><th scope="col">Quoi</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else "<p>Rien à afficher pour l'instant.</p>"
    )
    body = (await _spaces_nav(call, pid, "/historique")) + switch + table
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


# --- adding a document ------------------------------------------------------------------------

#: The types a person gives the documents they add themselves (TRE_A05 DOCPAT and EXPPAT).
_PATIENT_TYPES: Final = (
    "DOCPAT03",
    "DOCPAT05",
    "DOCPAT04",
    "DOCPAT02",
    "DOCPAT07",
    "DOCPAT06",
    "DOCPAT01",
    "DOCPAT09",
    "EXPPAT_3",
    "EXPPAT_1",
    "EXPPAT_2",
)
_UPLOAD_FORMATS: Final = "PDF, JPEG, PNG, texte ou CDA (XML)"


def _upload_form(call: Call, pid: str, message: str = "", status: int = 200) -> Response:
    assert call.session is not None
    alert = f'<p class="error" role="alert" id="upload-error">{_e(message)}</p>' if message else ""
    options = "".join(
        f'<option value="{_e(code)}">{_e(type_label(code, TRE_A05_TYPE) or code)}</option>'
        for code in _PATIENT_TYPES
    )
    body = f"""{alert}
<p>Le document rejoint « Mes documents ». Formats acceptés : {_e(_UPLOAD_FORMATS)}.</p>
<form method="post" action="/espace/{_e(pid)}/ajouter" enctype="multipart/form-data"
 class="card">
{csrf_field(call.session.csrf_token)}
<label for="file">Fichier</label>
<input id="file" name="file" type="file" required
 accept="application/pdf,image/jpeg,image/png,text/plain,text/xml">
<label for="title">Titre</label>
<input id="title" name="title" required maxlength="200">
<label for="type">Type de document</label>
<select id="type" name="type">{options}</select>
<label for="comments">Commentaire (facultatif)</label>
<textarea id="comments" name="comments" rows="3" maxlength="2000"></textarea>
<button type="submit" id="upload">Ajouter le document</button>
</form>"""
    return _layout("Ajouter un document", body, call=call, status=status)


async def _upload_page(call: Call) -> Response:
    pid = call.path["patient_id"]
    await _spaces_nav(call, pid)
    return _upload_form(call, pid)


async def _upload(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str | _Upload] = call.body
    upload = form.get("file")
    title = form.get("title")
    code = form.get("type")
    comments = form.get("comments")
    if not isinstance(upload, _Upload) or not upload.content:
        return _upload_form(call, pid, "Choisissez un fichier à ajouter.", 400)
    if not isinstance(title, str) or not title.strip():
        return _upload_form(call, pid, "Donnez un titre au document.", 400)
    if not isinstance(code, str) or code not in _PATIENT_TYPES:
        code = "DOCPAT09"
    media_type = sniff(upload.content)
    if media_type is None or media_type == "application/dicom":
        return _upload_form(call, pid, f"Ce format n'est pas accepté : {_UPLOAD_FORMATS}.", 400)
    try:
        document = await call.run_as(
            pid,
            call.state.space.record.add_document,
            pid,
            upload.content,
            media_type=media_type,
            type_code=None if media_type in _XML_TYPES else Code(code, TRE_A05_TYPE),
            title=title.strip(),
            comments=comments.strip() if isinstance(comments, str) and comments.strip() else None,
        )
    except ValidationError:
        return _upload_form(
            call,
            pid,
            "Le document n'a pas pu être ajouté : vérifiez son format "
            f"({_UPLOAD_FORMATS}), sa taille et son titre.",
            400,
        )
    return _redirect(f"/espace/{pid}/documents/{document.id}")


# --- profil médical ---------------------------------------------------------------------------


async def _profile(call: Call) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    csrf = call.session.csrf_token
    entries = await call.run_as(pid, call.state.space.profile.entries, pid)
    groups: dict[ProfileSection, list[ProfileEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.section, []).append(entry)
    sections = []
    for section in ProfileSection:
        items = "".join(
            f"<li><strong>{_e(x.label)}</strong>"
            + (f" — {_e(x.details)}" if x.details else "")
            + (f" <small>depuis le {_e(_when(x.started))}</small>" if x.started else "")
            + (f" <small>jusqu'au {_e(_when(x.ended))}</small>" if x.ended else "")
            + " "
            + post_button(
                f"/espace/{pid}/profil/{x.id}/supprimer",
                f"Supprimer « {x.label} »",
                csrf,
            )
            + "</li>"
            for x in groups.get(section, [])
        )
        if items:
            sections.append(
                f'<section class="profile-section" id="profil-{_e(section.value)}">'
                f"<h2>{_e(SECTION_TITLES[section])}</h2><ul>{items}</ul></section>"
            )
    options = "".join(
        f'<option value="{_e(s.value)}">{_e(SECTION_TITLES[s])}</option>' for s in ProfileSection
    )
    form = f"""<section id="profil-ajout"><h2>Ajouter une information</h2>
<form method="post" action="/espace/{_e(pid)}/profil" class="card">
{csrf_field(csrf)}
<label for="section">Rubrique</label>
<select id="section" name="section">{options}</select>
<label for="label">Intitulé</label>
<input id="label" name="label" required maxlength="200">
<label for="details">Précisions (facultatif)</label>
<input id="details" name="details" maxlength="2000">
<label for="started">Depuis le (facultatif)</label>
<input id="started" name="started" type="date">
<button type="submit" id="profile-add">Ajouter</button>
</form></section>"""
    body = (
        (await _spaces_nav(call, pid, "/profil"))
        + "<p>Le profil médical rassemble ce que vous souhaitez que les professionnels "
        "sachent : antécédents, allergies, traitements, personnes à prévenir.</p>"
        + ("".join(sections) or "<p>Votre profil médical est vide pour l'instant.</p>")
        + form
    )
    return _layout("Profil médical", body, call=call)


async def _profile_add(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str] = call.body
    if form.get("section") not in {x.value for x in ProfileSection}:
        raise ValidationError("unknown section of the profil médical")
    await call.run_as(
        pid,
        call.state.space.profile.add,
        pid,
        form.get("section", ""),
        form.get("label", ""),
        details=form.get("details") or None,
        started=_day(form.get("started")),
    )
    return _redirect(f"/espace/{pid}/profil")


async def _profile_remove(call: Call) -> Response:
    pid = call.path["patient_id"]
    await call.run_as(pid, call.state.space.profile.remove, pid, call.path["entry_id"])
    return _redirect(f"/espace/{pid}/profil")


# --- measures ---------------------------------------------------------------------------------

#: Units as a person reads them (the stored ones are UCUM codes).
_UNIT_NAMES: Final = {
    "kg": "kg",
    "cm": "cm",
    "kg/m2": "kg/m²",
    "/min": "par minute",
    "mm[Hg]": "mmHg",
    "Cel": "°C",
    "g/L": "g/L",
    "/d": "pas par jour",
    "{score}": "sur 10",
    "%": "%",
}


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def _measure_section(kind: MeasureKind, measures: list[Measure]) -> str:
    spec = MEASURE_SPECS[kind]
    name = spec.code.display or kind.value
    unit = _UNIT_NAMES.get(spec.unit, spec.unit)
    ordered = sorted(measures, key=lambda x: x.measured_at)
    series: list[tuple[str, list[tuple[datetime, float]]]] = [
        (name, [(x.measured_at.astimezone(PARIS), x.value) for x in ordered])
    ]
    if kind is MeasureKind.BLOOD_PRESSURE:
        series = [
            ("systolique", series[0][1]),
            (
                "diastolique",
                [
                    (x.measured_at.astimezone(PARIS), x.second)
                    for x in ordered
                    if x.second is not None
                ],
            ),
        ]
    low = min(x.value for x in ordered)
    high = max(x.value for x in ordered)
    description = (
        f"{len(ordered)} mesure{'s' if len(ordered) > 1 else ''} du "
        f"{_when(ordered[0].measured_at.date())} au {_when(ordered[-1].measured_at.date())}, "
        f"de {_number(low)} à {_number(high)} {unit} ; dernière valeur : "
        f"{_number(ordered[-1].value)} {unit}. Les valeurs sont dans le tableau qui suit."
    )
    chart = line_chart(f"chart-{kind.value}", f"{name} ({unit})", description, series, unit=unit)
    second_head = '<th scope="col">Diastolique</th>' if kind is MeasureKind.BLOOD_PRESSURE else ""
    rows = "".join(
        f"<tr><td>{_e(_when(x.measured_at))}</td><td>{_e(_number(x.value))}</td>"
        + (
            f"<td>{_e(_number(x.second)) if x.second is not None else ''}</td>"
            if kind is MeasureKind.BLOOD_PRESSURE
            else ""
        )
        + "</tr>"
        for x in reversed(ordered)
    )
    value_head = "Systolique" if kind is MeasureKind.BLOOD_PRESSURE else "Valeur"
    return (
        f'<section class="measure" id="mesure-{_e(kind.value)}"><h2>{_e(name)}</h2>{chart}'
        f'<table class="measures"><caption>{_e(name)} ({_e(unit)}), heure de Paris</caption>'
        f'<thead><tr><th scope="col">Date</th><th scope="col">{value_head}</th>{second_head}'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


async def _measures(call: Call) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    sections = []
    for kind in MeasureKind:
        series = await call.run_as(pid, call.state.space.measures.series, pid, kind)
        if series:
            sections.append(_measure_section(kind, list(series)))
    options = "".join(
        f'<option value="{_e(k.value)}">{_e(MEASURE_SPECS[k].code.display or k.value)} '
        f"({_e(_UNIT_NAMES.get(MEASURE_SPECS[k].unit, MEASURE_SPECS[k].unit))})</option>"
        for k in MeasureKind
    )
    form = f"""<section id="mesure-ajout"><h2>Ajouter une mesure</h2>
<form method="post" action="/espace/{_e(pid)}/mesures" class="card">
{csrf_field(call.session.csrf_token)}
<label for="kind">Mesure</label>
<select id="kind" name="kind">{options}</select>
<label for="value">Valeur (la systolique pour la tension)</label>
<input id="value" name="value" required inputmode="decimal" maxlength="16">
<label for="second">Diastolique (pour la tension seulement)</label>
<input id="second" name="second" inputmode="decimal" maxlength="16">
<label for="measured_at">Date et heure (heure de Paris ; maintenant si vide)</label>
<input id="measured_at" name="measured_at" type="datetime-local">
<button type="submit" id="measure-add">Ajouter</button>
</form></section>"""
    body = (
        (await _spaces_nav(call, pid, "/mesures"))
        + ("".join(sections) or "<p>Aucune mesure pour l'instant.</p>")
        + form
    )
    return _layout("Mesures", body, call=call)


def _decimal(value: str | None) -> float | None:
    if not value or not value.strip():
        return None
    try:
        return float(value.strip().replace(",", "."))
    except ValueError:
        raise ValidationError("a measure is a number") from None


async def _measure_add(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str] = call.body
    if form.get("kind") not in {x.value for x in MeasureKind}:
        raise ValidationError("unknown kind of measure")
    value = _decimal(form.get("value"))
    if value is None:
        raise ValidationError("a measure needs a value")
    measured_at = None
    if form.get("measured_at"):
        try:
            measured_at = datetime.fromisoformat(form["measured_at"]).replace(tzinfo=PARIS)
        except ValueError:
            raise ValidationError("the date of a measure is a date and time") from None
    await call.run_as(
        pid,
        call.state.space.measures.add,
        pid,
        form.get("kind", ""),
        value,
        measured_at=measured_at,
        second=_decimal(form.get("second")),
    )
    return _redirect(f"/espace/{pid}/mesures")


# --- access settings --------------------------------------------------------------------------

_GRANT_NAMES: Final = {
    GrantKind.CARE_TEAM: "équipe de soins",
    GrantKind.AUTHORISED: "autorisé par vous",
    GrantKind.EXTENDED: "mêmes droits que le médecin traitant",
    GrantKind.TREATING_DOCTOR: "médecin traitant",
}
_SETTINGS: Final = (
    (
        "object_emergency",
        "Je m'oppose à l'accès en urgence (bris de glace) à mon dossier",
    ),
    (
        "mask_all",
        "Masquer par défaut aux professionnels les documents qui seront ajoutés",
    ),
    (
        "notify_first_access",
        "Être prévenu la première fois qu'un professionnel consulte mon dossier",
    ),
)


async def _professional_name(call: Call, rpps: str) -> str:
    try:
        pro = await call.run(call.state.space.access.professional, rpps)
    except MonespaceError:
        return f"professionnel n° RPPS {rpps}"
    return f"{pro.name} ({pro.profession_name}, n° RPPS {pro.rpps})"


async def _access(call: Call, *, message: str = "", status: int = 200) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    csrf = call.session.csrf_token
    base = f"/espace/{pid}/acces"
    settings = await call.run_as(pid, call.state.space.access.settings, pid)
    grants = await call.run_as(pid, call.state.space.access.authorisations, pid)
    blocked = await call.run_as(pid, call.state.space.access.blocked, pid)
    boxes = "".join(
        f'<div class="check"><input type="checkbox" id="{name}" name="{name}" value="1"'
        f"{' checked' if getattr(settings, name) else ''}>"
        f'<label for="{name}">{_e(label)}</label></div>'
        for name, label in _SETTINGS
    )
    granted = ""
    for grant in grants:
        who = await _professional_name(call, grant.professional_id)
        until = f", jusqu'au {_when(grant.until)}" if grant.until else ""
        granted += (
            f"<li>{_e(who)} — {_e(_GRANT_NAMES[grant.kind])}{_e(until)} "
            + post_button(f"{base}/retirer/{grant.professional_id}", "Retirer l'accès", csrf)
            + "</li>"
        )
    blocked_items = ""
    for rpps in blocked:
        who = await _professional_name(call, rpps)
        blocked_items += (
            f"<li>{_e(who)} " + post_button(f"{base}/debloquer/{rpps}", "Débloquer", csrf) + "</li>"
        )

    def rpps_form(action: str, label: str, button: str, ident: str) -> str:
        return (
            f'<form method="post" action="{base}/{action}" class="card">{csrf_field(csrf)}'
            f'<label for="rpps-{ident}">{_e(label)}</label>'
            f'<input id="rpps-{ident}" name="rpps" required inputmode="numeric" maxlength="14"'
            ' autocomplete="off">'
            f'<button type="submit" id="{ident}">{_e(button)}</button></form>'
        )

    body = (
        (await _spaces_nav(call, pid, "/acces"))
        + (f'<p class="error" role="alert" id="access-error">{_e(message)}</p>' if message else "")
        + '<section id="settings"><h2>Mes choix</h2>'
        f'<form method="post" action="{base}/parametres" class="card">{csrf_field(csrf)}'
        f"<fieldset><legend>Paramètres d'accès</legend>{boxes}</fieldset>"
        '<button type="submit" id="settings-save">Enregistrer mes choix</button></form>'
        "</section>"
        + '<section id="grants"><h2>Professionnels qui ont accès</h2>'
        + (f"<ul>{granted}</ul>" if granted else "<p>Aucun professionnel déclaré.</p>")
        + rpps_form(
            "autoriser",
            "Numéro RPPS du professionnel à autoriser",
            "Autoriser",
            "authorise",
        )
        + rpps_form(
            "medecin-traitant",
            "Numéro RPPS de votre médecin traitant",
            "Déclarer comme médecin traitant",
            "treating-doctor",
        )
        + "</section>"
        + '<section id="blocked"><h2>Professionnels bloqués</h2>'
        "<p>Un professionnel bloqué n'a plus aucun accès, même en urgence.</p>"
        + (f"<ul>{blocked_items}</ul>" if blocked_items else "<p>Aucun professionnel bloqué.</p>")
        + rpps_form("bloquer", "Numéro RPPS du professionnel à bloquer", "Bloquer", "block")
        + "</section>"
    )
    return _layout("Accès à mon dossier", body, call=call, status=status)


async def _access_settings(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str] = call.body
    await call.run_as(
        pid,
        call.state.space.access.update_settings,
        pid,
        **{name: form.get(name) == "1" for name, _ in _SETTINGS},
    )
    return _redirect(f"/espace/{pid}/acces#settings")


def _rpps_action(name: str) -> Handler:
    async def change(call: Call) -> Response:
        pid = call.path["patient_id"]
        rpps = call.path.get("rpps") or str(call.body.get("rpps", ""))
        access = call.state.space.access
        method = {
            "authorise": access.authorise,
            "treating_doctor": access.declare_treating_doctor,
            "block": access.block,
            "unblock": access.unblock,
            "revoke": access.revoke,
        }[name]
        try:
            await call.run_as(pid, method, pid, rpps)
        except (NotFoundError, ValidationError) as exc:
            # said on the page itself, with the form, rather than on an error page
            unknown = isinstance(exc, NotFoundError)
            message = (
                "Aucun professionnel n'a ce numéro RPPS dans l'annuaire."
                if unknown
                else "Ce numéro RPPS n'est pas valide (11 chiffres, clé comprise), ou le "
                "professionnel ne peut pas être déclaré ainsi."
            )
            return await _access(call, message=message, status=404 if unknown else 422)
        return _redirect(f"/espace/{pid}/acces")

    change.__name__ = name
    return change


async def _style(_request: Request) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    return Response(_CSS, media_type="text/css", headers=headers)


def page_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of the patient page (not part of the JSON API nor of its OpenAPI)."""
    space = "/espace/{patient_id}"
    doc = space + "/documents/{document_id}"
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
        Route(doc + "/apercu", _page(state, _preview), methods=["GET"]),
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
        Route(space + "/ajouter", _page(state, _upload_page), methods=["GET"]),
        Route(space + "/ajouter", _page(state, _upload), methods=["POST"]),
        Route(space + "/profil", _page(state, _profile), methods=["GET"]),
        Route(space + "/profil", _page(state, _profile_add), methods=["POST"]),
        Route(
            space + "/profil/{entry_id}/supprimer", _page(state, _profile_remove), methods=["POST"]
        ),
        Route(space + "/mesures", _page(state, _measures), methods=["GET"]),
        Route(space + "/mesures", _page(state, _measure_add), methods=["POST"]),
        Route(space + "/acces", _page(state, _access), methods=["GET"]),
        Route(space + "/acces/parametres", _page(state, _access_settings), methods=["POST"]),
        Route(
            space + "/acces/autoriser", _page(state, _rpps_action("authorise")), methods=["POST"]
        ),
        Route(
            space + "/acces/medecin-traitant",
            _page(state, _rpps_action("treating_doctor")),
            methods=["POST"],
        ),
        Route(space + "/acces/bloquer", _page(state, _rpps_action("block")), methods=["POST"]),
        Route(
            space + "/acces/debloquer/{rpps}",
            _page(state, _rpps_action("unblock")),
            methods=["POST"],
        ),
        Route(
            space + "/acces/retirer/{rpps}", _page(state, _rpps_action("revoke")), methods=["POST"]
        ),
        Route("/static/style.css", _style, methods=["GET"]),
    ]
