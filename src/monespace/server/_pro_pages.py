"""The professional's side of the demo pages: plain HTML and CSS, no JavaScript.

A professional logs in with a simulated CPS card (their RPPS number, no password: a stand-in
for Pro Santé Connect, offered only by a server in demo mode), finds the person in front of
them from their carte Vitale, reads the record as the policy allows, and, when it refuses,
reads why in plain French (the rule :meth:`~monespace.access.AccessService.explain` names,
never the facts behind it). From there they declare themselves in the care team, open an
emergency access with a justification, deposit a document (a result to announce stays
hidden from the patient until its author releases it), start a message thread and follow
their conversations with the patient.

Every change goes through the services, where the one policy decides and audits; every form
carries the session's CSRF token; every page uses the layout of the patient's pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Final
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..access import Action, Professional
from ..actors import AccessMode, Actor, ActorKind
from ..errors import (
    AccessDeniedError,
    IdentifierError,
    MonespaceError,
    NotFoundError,
    ValidationError,
)
from ..identity import RPPS
from ..messaging import Message
from ..record import LOINC, Category, Code, Document, sniff, type_label
from ._api import fetch_document, reply_in_thread, thread_view
from ._html import NavLink, csrf_field, e, layout, navigation, post_button, redirect, when
from ._page import (
    _FORM_LIMIT,
    _XML_TYPES,
    CATEGORY_NAMES,
    _content,
    _multipart,
    _preview,
    _readable,
    _rows,
    _type_name,
    _Upload,
)
from ._problems import ProblemError, from_library_error
from ._routing import Call, Reply, ServerState, check_origin, read_body, render, session_token
from ._sessions import SessionKind

__all__ = ["REFUSALS", "pro_page_routes", "refusal_text"]

#: Why the policy refuses, said to the professional it refuses, by rule name. Only what the
#: rule means is said, never the facts it weighed (an explanation is otherwise the
#: operator's); ``tests/test_server_pro_pages.py`` checks every refusing rule has its text.
REFUSALS: Final = {
    "deny_by_default": "Aucune règle ne vous donne cet accès : il est refusé par défaut.",
    "space_must_be_open": (
        "Ce patient n'a pas d'espace ouvert : il n'est pas encore activé, il a été fermé, "
        "ou le patient s'y est opposé."
    ),
    "professional_must_be_known": (
        "Votre numéro RPPS n'est pas dans l'annuaire des professionnels de santé."
    ),
    "blocked_by_patient": (
        "Le patient vous a bloqué : vous n'avez aucun accès à son dossier, même en urgence."
    ),
    "patient_objects_to_all_access": (
        "Le patient s'est opposé à l'accès des professionnels de santé à son dossier."
    ),
    "patient_objects_to_emergency_access": (
        "Le patient s'est opposé à l'accès en urgence (bris de glace) à son dossier."
    ),
    "no_authorisation": (
        "Vous n'êtes ni dans l'équipe de soins de ce patient, ni autorisé par lui, ni son "
        "médecin traitant. Si vous le prenez en charge, déclarez-vous dans son équipe de "
        "soins ; en cas d'urgence, ouvrez un accès d'urgence."
    ),
    "no_emergency_declared": "Aucun accès d'urgence n'est ouvert pour vous sur ce dossier.",
    "regulation_is_for_the_regulating_doctor": (
        "L'accès en mode régulation est réservé au médecin régulateur du SAMU (centre 15)."
    ),
    "matrix_of_habilitations": (
        "Votre profession n'a pas accès à ce type de document ou de dossier "
        "(matrice d'habilitations)."
    ),
    "professional_feeds_record": (
        "Vous ne pouvez pas alimenter ce dossier : il faut être dans l'équipe de soins, "
        "autorisé par le patient, son médecin traitant, ou en accès d'urgence."
    ),
    "masked_by_patient": "Le patient a masqué ce document aux professionnels de santé.",
    "patient_masked_everything": (
        "Le patient a masqué par défaut ses documents aux professionnels de santé."
    ),
    "masked_including_emergency": "Ce document est masqué, y compris en cas d'urgence.",
    "hidden_until_announcement": (
        "Ce document attend d'être annoncé au patient lors d'une consultation."
    ),
    "hidden_from_representatives": (
        "Ce document n'est pas visible des représentants légaux du patient."
    ),
    "deleted_documents_are_gone": "Ce document a été supprimé du dossier.",
    "messaging_needs_open_space": (
        "La messagerie n'est possible qu'avec un patient dont l'espace est ouvert."
    ),
    "thread_participants_only": "Seuls les participants lisent cette conversation.",
    "thread_closed_to_replies": "Cette conversation est close : on n'y répond plus.",
    "app_acts_for_patient": "Seule une application autorisée par le patient agit pour lui.",
    "not_this_patient": "Une application n'agit que pour le patient qui l'a autorisée.",
    "app_not_referenced": "Cette application n'est pas ou plus référencée.",
    "consent_not_given": "Le patient n'a pas autorisé cette application, ou l'a retirée.",
    "outside_app_scopes": "Ce droit ne fait pas partie de ceux accordés à l'application.",
    "beyond_patient_rights": "Une application ne voit rien que le patient ne voie lui-même.",
    "wrong_role": "Cette étape du référencement revient à un autre intervenant.",
    "research_by_the_operator_for_a_study": (
        "Les données de recherche ne sont extraites que par l'opérateur, pour une étude."
    ),
}
_UNKNOWN_REFUSAL: Final = "L'accès est refusé par les règles d'accès du dossier."

#: The types a doctor most often deposits (LOINC, as in the DMP's value sets).
_PRO_TYPES: Final = (
    "11488-4",
    "57833-6",
    "11502-2",
    "18748-4",
    "34133-9",
    "60591-5",
    "11490-0",
)
_PRO_FORMATS: Final = "PDF, JPEG, PNG, texte ou CDA (XML)"
_MODES: Final = (
    (AccessMode.EMERGENCY, "Bris de glace : urgence qui met la vie du patient en danger"),
    (AccessMode.REGULATION, "Régulation médicale (SAMU, centre 15)"),
)
_MODE_NAMES: Final = {
    AccessMode.EMERGENCY: "accès d'urgence (bris de glace)",
    AccessMode.REGULATION: "accès en régulation (SAMU)",
}
_SIMULATION: Final = (
    '<p class="banner" role="note" id="psc-notice"><strong>Connexion simulée.</strong> '
    "Cette carte CPS simulée remplace Pro Santé Connect pour la démonstration : elle ne "
    "demande aucun code. Un vrai déploiement branche le fournisseur d'identité de l'État à "
    "sa place.</p>"
)

#: The categories as a professional reads them: the patient's own documents are theirs.
_CATEGORIES: Final = {
    **CATEGORY_NAMES,
    Category.PATIENT_DOCUMENTS: "Documents ajoutés par le patient",
}

Handler = Callable[[Call], Awaitable[Response]]


def refusal_text(rule: str) -> str:
    """The plain-French reason a professional is given for a refusal by *rule*."""
    return REFUSALS.get(rule, _UNKNOWN_REFUSAL)


# --- layout -----------------------------------------------------------------------------------


async def _who(call: Call) -> str:
    """The line that says who is logged in."""
    assert call.session is not None
    try:
        pro: Professional = await call.run(
            call.state.space.access.professional, call.session.person_id
        )
    except NotFoundError:
        return f"n° RPPS {call.session.person_id}"
    return f"{pro.name} ({pro.profession_name}, n° RPPS {pro.rpps})"


async def _pro_layout(
    call: Call, title: str, body: str, *, status: int = 200, csp: str | None = None
) -> Response:
    if call.session is None or call.session.kind is not SessionKind.PROFESSIONAL:
        return layout(title, _SIMULATION + body, status=status, csp=csp)
    pid = call.path.get("patient_id")
    links = [NavLink("/pro/patients", "Rechercher un patient", "recherche")]
    if pid:
        base = f"/pro/patients/{pid}"
        links += [
            NavLink(base, "Dossier du patient", "dossier"),
            NavLink(base + "/deposer", "Déposer un document", "deposer"),
            NavLink(base + "/message", "Écrire au patient", "message"),
            NavLink(base + "/messages", "Conversations", "messages"),
        ]
    rest = call.request.url.path.removeprefix(f"/pro/patients/{pid}" if pid else "/pro")
    section = rest.strip("/").split("/")[0]
    current = {"": "dossier" if pid else "recherche", "patients": "recherche"}.get(section, section)
    if section == "documents":
        current = "dossier"
    nav = navigation(
        links,
        current=current,
        csrf=call.session.csrf_token,
        label="Navigation du professionnel",
        logout="/pro/logout",
    )
    context = f'<p class="context" id="pro-who">Connecté : {e(await _who(call))}</p>'
    return layout(title, body, nav=nav, status=status, csp=csp, context=context)


def _login_form(message: str = "", status: int = 200) -> Response:
    alert = f'<p class="error" role="alert" id="login-error">{e(message)}</p>' if message else ""
    body = f"""{_SIMULATION}{alert}
<form method="post" action="/pro/login" class="card">
<fieldset><legend>Carte CPS simulée</legend>
<label for="rpps">Numéro RPPS (11 chiffres)</label>
<input id="rpps" name="rpps" required inputmode="numeric" maxlength="14" autocomplete="off">
</fieldset>
<button type="submit" id="pro-login">Se connecter avec la carte simulée</button>
</form>
<p>Vous êtes patient ? <a href="/">Connexion avec la carte Vitale</a>.</p>"""
    return layout("Connexion des professionnels de santé", body, status=status)


async def _error_page(error: ProblemError, call: Call) -> Response:
    status = error.problem.status
    if status == 401:
        return _login_form("Votre session a expiré, ou vous n'êtes pas connecté.", status=401)
    texts = {
        404: ("Introuvable", "Cette page n'existe pas, ou vous n'y avez pas accès."),
        403: ("Requête refusée", "La requête n'a pas pu être vérifiée. Rechargez la page."),
        429: ("Trop de tentatives", "Patientez quelques minutes avant de réessayer."),
        409: ("Déjà fait", "Cette opération a déjà été faite, ou entre en conflit avec une autre."),
        413: ("Trop volumineux", "Le fichier ou le formulaire envoyé est trop volumineux."),
        400: (
            "Informations non valides",
            "Les informations saisies ne sont pas valides : vérifiez-les et recommencez.",
        ),
    }
    texts[422] = texts[400]
    title, text = texts.get(status, ("Erreur", "La requête n'a pas pu aboutir."))
    response = await _pro_layout(call, title, f"<p>{e(text)}</p>", status=status)
    response.headers.update(error.headers)
    return response


def _pro_page(
    state: ServerState, handler: Handler, *, auth: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """A professional's page: the session must be a professional's, a POST must carry the
    session's CSRF token, and every error becomes a page in French."""

    async def endpoint(request: Request) -> Response:
        token, from_cookie = session_token(request, state)
        session = state.sessions.get(token) if from_cookie else None
        call = Call(request, state, session, token if from_cookie else None, None, None, {})
        try:
            for value in request.path_params.values():
                text = str(value)
                if not text.replace("-", "").replace("_", "").isalnum() or len(text) > 64:
                    raise ProblemError(404, "not-found", "Not found")
            if request.method == "POST":
                check_origin(request)
                kind = request.headers.get("content-type", "")
                if kind.lower().startswith("multipart/form-data"):
                    call.body = _multipart(kind, await read_body(request, state.max_body_bytes))
                else:
                    form = parse_qs(
                        (await read_body(request, _FORM_LIMIT)).decode("utf-8", "replace"),
                        max_num_fields=20,
                    )
                    call.body = {k: v[0] for k, v in form.items() if v}
            if auth:
                if session is None or session.kind is not SessionKind.PROFESSIONAL:
                    call.session = None
                    raise ProblemError(401, "unauthenticated", "Authentication required")
                given = call.body.get("csrf_token") if request.method == "POST" else None
                if request.method == "POST" and not (
                    isinstance(given, str) and session.csrf_matches(given)
                ):
                    raise ProblemError(403, "csrf", "CSRF token missing or wrong")
            call.path = {k: str(v) for k, v in request.path_params.items()}
            return await handler(call)
        except ProblemError as error:
            return await _error_page(error, call)
        except MonespaceError as exc:
            return await _error_page(from_library_error(exc), call)

    endpoint.__name__ = getattr(handler, "__name__", "pro_page")
    return endpoint


# --- login ------------------------------------------------------------------------------------


async def _home(call: Call) -> Response:
    if call.session is not None and call.session.kind is SessionKind.PROFESSIONAL:
        return redirect("/pro/patients")
    return _login_form()


async def _login(call: Call) -> Response:
    given = str(call.body.get("rpps", ""))[:14].strip()
    source = call.client_ip()
    await call.limit("login-ip", source)
    await call.limit("login-person", f"{given}\x00{source}")
    try:
        rpps = RPPS.parse(given).value
    except IdentifierError:
        return _login_form(
            "Ce numéro RPPS n'est pas valide : il a 11 chiffres, clé de contrôle comprise.",
            status=422,
        )
    try:
        await call.run(call.state.space.access.professional, rpps)
    except NotFoundError:
        return _login_form(
            "Ce numéro RPPS n'est pas dans l'annuaire des professionnels de santé.", status=404
        )
    token = call.state.sessions.create(SessionKind.PROFESSIONAL, rpps, replaces=call.token)
    return render(Reply(redirect("/pro/patients"), set_session=token), call.request, call.state)


async def _logout(call: Call) -> Response:
    call.state.sessions.revoke(call.token)
    return render(Reply(redirect("/pro"), clear_session=True), call.request, call.state)


# --- finding a patient ------------------------------------------------------------------------


def _me(call: Call) -> Actor:
    assert call.session is not None
    return Actor(ActorKind.PROFESSIONAL, call.session.person_id)


async def _search_page(call: Call, message: str = "", status: int = 200) -> Response:
    assert call.session is not None
    alert = f'<p class="error" role="alert" id="lookup-error">{e(message)}</p>' if message else ""
    body = f"""{alert}
<p>Lisez la carte Vitale du patient (ici, saisissez son numéro de sécurité sociale et sa date
de naissance). La recherche ne montre rien du dossier : l'accès est décidé ensuite.</p>
<form method="post" action="/pro/patients" class="card" aria-label="Rechercher un patient">
{csrf_field(call.session.csrf_token)}
<label for="nir">Numéro de sécurité sociale</label>
<input id="nir" name="nir" required inputmode="numeric" maxlength="32" autocomplete="off">
<label for="birth_date">Date de naissance</label>
<input id="birth_date" name="birth_date" type="date" required>
<button type="submit" id="lookup">Rechercher le dossier</button>
</form>"""
    return await _pro_layout(call, "Rechercher un patient", body, status=status)


async def _search(call: Call) -> Response:
    return await _search_page(call)


async def _lookup(call: Call) -> Response:
    assert call.session is not None
    await call.limit("lookup-person", call.session.person_id)
    nir = str(call.body.get("nir", ""))[:32]
    try:
        born = date.fromisoformat(str(call.body.get("birth_date", "")))
    except ValueError:
        return await _search_page(call, "La date de naissance n'est pas une date.", 422)
    try:
        pid = await call.run(
            call.state.space.access.find_patient, _me(call), nir=nir, birth_date=born
        )
    except NotFoundError:
        return await _search_page(
            call,
            "Aucun dossier ne correspond à ce numéro de sécurité sociale et à cette date de "
            "naissance. Vérifiez-les sur la carte Vitale.",
            404,
        )
    return redirect(f"/pro/patients/{pid}")


# --- the record -------------------------------------------------------------------------------


async def _explained(call: Call, action: Action, pid: str, document_id: str | None = None) -> str:
    """Why the policy refuses *action* to this professional, in a paragraph."""
    explanation = await call.run_as(
        pid,
        call.state.space.access.explain,
        action,
        patient_id=pid,
        document_id=document_id,
    )
    return f'<p id="refusal-reason">{e(refusal_text(explanation.rule))}</p>'


async def _patient_line(call: Call, pid: str) -> str:
    """Who the record is about, when the policy lets this professional know."""
    try:
        patient = await call.run_as(pid, call.state.space.accounts.get_patient, pid)
    except AccessDeniedError:
        return ""
    traits = patient.identity.ins.traits
    if traits is None:
        return ""
    return (
        f'<p id="patient">Patient : {e(traits.first_given_name.title())} '
        f"{e(traits.birth_name)}, né(e) le {e(when(traits.birth_date))}</p>"
    )


def _emergency_form(call: Call, pid: str) -> str:
    assert call.session is not None
    modes = "".join(
        f'<div class="check"><input type="radio" id="mode-{mode.value}" name="mode" '
        f'value="{mode.value}"{" checked" if mode is AccessMode.EMERGENCY else ""}>'
        f'<label for="mode-{mode.value}">{e(label)}</label></div>'
        for mode, label in _MODES
    )
    return f"""<section id="emergency"><h2>Accès d'urgence (bris de glace)</h2>
<p>En cas d'urgence, vous pouvez accéder au dossier sans autorisation, sauf si le patient s'y est
opposé. L'accès est tracé, votre justification conservée, et le patient en est informé.</p>
<form method="post" action="/pro/patients/{e(pid)}/urgence" class="card">
{csrf_field(call.session.csrf_token)}
<fieldset><legend>Situation</legend>{modes}</fieldset>
<label for="justification">Justification (au moins 10 caractères)</label>
<textarea id="justification" name="justification" rows="3" required minlength="10"
 maxlength="2000"></textarea>
<button type="submit" id="break-glass">Ouvrir l'accès d'urgence</button>
</form></section>"""


def _care_team_form(call: Call, pid: str) -> str:
    assert call.session is not None
    return (
        '<section id="care-team"><h2>Équipe de soins</h2>'
        "<p>Vous prenez ce patient en charge ? Déclarez-vous dans son équipe de soins : vous "
        "accédez alors à son dossier, sauf s'il s'y oppose ou vous bloque. Le patient le voit "
        "dans son historique.</p>"
        + post_button(
            f"/pro/patients/{pid}/equipe-de-soins",
            "Je fais partie de l'équipe de soins",
            call.session.csrf_token,
            button_id="join-care-team",
        )
        + "</section>"
    )


def _document_row(pid: str, document: Document) -> str:
    return (
        f'<li><a class="doc" href="/pro/patients/{e(pid)}/documents/{e(document.id)}">'
        f"{e(document.title)}</a> <small>{e(_type_name(document))} · "
        f"{e(when(document.created_at))}</small>"
        + (' <span class="tag">masqué par le patient</span>' if document.masked else "")
        + "</li>"
    )


_NOTICES: Final = {
    "equipe": "Vous êtes déclaré dans l'équipe de soins de ce patient.",
    "urgence": "L'accès d'urgence est ouvert. Il est tracé et le patient en sera informé.",
}


async def _record(call: Call) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    notice = _NOTICES.get(call.request.query_params.get("fait", ""), "")
    status = (f'<p role="status" id="notice">{e(notice)}</p>') if notice else ""
    emergency = call.session.emergencies.get(pid)
    actor = call.actor(pid)
    if emergency is not None and actor.mode is not AccessMode.NORMAL:
        status += (
            f'<p class="tag" id="emergency-mode">{e(_MODE_NAMES[emergency[0]].capitalize())} '
            f"jusqu'à {e(when(emergency[1]))} (heure de Paris)</p>"
        )
    try:
        page = await call.run(call.state.space.record.search, actor, pid, limit=500)
    except AccessDeniedError:
        reason = await _explained(call, Action.DOCUMENT_SEARCH, pid)
        body = (
            status
            + '<section id="refusal" class="refusal"><h2>Accès refusé</h2>'
            + reason
            + "</section>"
            + _care_team_form(call, pid)
            + _emergency_form(call, pid)
        )
        return await _pro_layout(call, "Dossier du patient", body, status=403)
    groups: dict[Category, list[Document]] = {}
    for document in page.documents:
        groups.setdefault(document.category, []).append(document)
    sections = "".join(
        f'<section class="category" id="cat-{name.value}">'
        f"<h2>{e(_CATEGORIES[name])} ({len(groups[name])})</h2><ul>"
        + "".join(_document_row(pid, d) for d in groups[name])
        + "</ul></section>"
        for name in Category
        if name in groups
    )
    listing = sections or "<p>Aucun document que vous puissiez voir dans ce dossier.</p>"
    if page.total > len(page.documents):
        listing += f"<p>{len(page.documents)} documents affichés sur {page.total}.</p>"
    body = (
        status
        + (await _patient_line(call, pid))
        + "<p>Vous voyez les documents que les règles d'accès vous ouvrent ; un document "
        "masqué par le patient n'apparaît que si votre situation le permet (médecin traitant, "
        "auteur du document, accès d'urgence selon le paramétrage).</p>" + listing
    )
    return await _pro_layout(call, "Dossier du patient", body)


async def _document(call: Call) -> Response:
    pid, did = call.path["patient_id"], call.path["document_id"]
    try:
        document = await fetch_document(call, pid, did)
    except AccessDeniedError:
        body = (
            '<section id="refusal" class="refusal"><h2>Accès refusé</h2>'
            + await _explained(call, Action.DOCUMENT_READ, pid, did)
            + f'</section><p><a href="/pro/patients/{e(pid)}">Retour au dossier</a></p>'
        )
        return await _pro_layout(call, "Document", body, status=403)
    base = f"/pro/patients/{e(pid)}/documents/{e(did)}"
    readable = await _readable(call, pid, document)
    if readable is not None and readable.embedded is None:
        content = (
            f'<article class="cda" id="content"><h2>Contenu du document</h2>{readable.html}'
            "</article>"
            if readable.html
            else "<p>Ce document ne contient pas de texte à afficher.</p>"
        )
    elif (readable is not None and readable.embedded is not None) or document.media_type in (
        "application/pdf",
        "image/jpeg",
        "image/png",
    ):
        content = (
            f'<iframe class="preview" src="{base}/apercu" title="Aperçu : {e(document.title)}" '
            'id="preview" sandbox></iframe>'
        )
    elif document.media_type == "text/plain":
        raw = await call.run_as(pid, call.state.space.record.read_content, did)
        content = (
            f'<pre class="content" id="content">{e(raw[:200_000].decode("utf-8", "replace"))}</pre>'
        )
    else:
        content = "<p>Ce format ne peut pas être affiché ici : téléchargez le document.</p>"
    author = document.author.name if document.author is not None else None
    table = _rows(
        [
            ("Catégorie", _CATEGORIES[document.category]),
            ("Type", _type_name(document)),
            ("Date", when(document.created_at)),
            ("Ajouté le", when(document.submitted_at)),
            *([("Auteur", author)] if author else []),
        ]
    )
    announcement = ""
    if document.hidden_from_patient_at(call.state.now()):
        assert call.session is not None
        latest = f" (au plus tard le {when(document.release_at)})" if document.release_at else ""
        announcement = (
            '<section id="announcement"><h2>Résultat à annoncer</h2>'
            f"<p>Le patient ne voit pas encore ce document : il attend d'être annoncé lors "
            f"d'une consultation{e(latest)}.</p>"
            + post_button(
                f"{base}/annoncer",
                "Je l'ai annoncé : le rendre visible au patient",
                call.session.csrf_token,
                button_id="release",
            )
            + "</section>"
        )
    body = (
        f'<table class="meta"><caption>Informations sur le document</caption>{table}</table>'
        f"{announcement}"
        f'<p><a href="{base}/contenu" id="download">Télécharger le document</a> · '
        f'<a href="/pro/patients/{e(pid)}">Retour au dossier</a></p>{content}'
    )
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return await _pro_layout(call, document.title, body, csp=csp)


# --- acting on the record ---------------------------------------------------------------------


async def _release(call: Call) -> Response:
    """The author tells the patient a result was announced: it becomes visible to them."""
    pid, did = call.path["patient_id"], call.path["document_id"]
    await fetch_document(call, pid, did)
    try:
        await call.run_as(pid, call.state.space.record.release, did)
    except AccessDeniedError:
        explanation = await call.run_as(
            pid,
            call.state.space.access.explain,
            Action.DOCUMENT_RELEASE,
            patient_id=pid,
            document_id=did,
        )
        body = (
            '<section id="refusal" class="refusal"><h2>Refusé</h2>'
            f'<p id="refusal-reason">{e(refusal_text(explanation.rule))}</p>'
            "<p>Seul l'auteur d'un résultat l'annonce au patient et le lui rend visible.</p>"
            "</section>"
            f'<p><a href="/pro/patients/{e(pid)}/documents/{e(did)}">Retour au document</a></p>'
        )
        return await _pro_layout(call, "Annonce refusée", body, status=403)
    return redirect(f"/pro/patients/{pid}/documents/{did}")


async def _join(call: Call) -> Response:
    pid = call.path["patient_id"]
    try:
        await call.run(call.state.space.access.join_care_team, _me(call), pid)
    except AccessDeniedError:
        return await _refused(call, pid, Action.CARE_TEAM_JOIN, "Déclaration refusée")
    return redirect(f"/pro/patients/{pid}?fait=equipe")


async def _refused(call: Call, pid: str, action: Action, title: str) -> Response:
    body = (
        '<section id="refusal" class="refusal"><h2>Refusé</h2>'
        + await _explained(call, action, pid)
        + f'</section><p><a href="/pro/patients/{e(pid)}">Retour au dossier</a></p>'
    )
    return await _pro_layout(call, title, body, status=403)


async def _break_glass(call: Call) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    modes = {mode.value: mode for mode, _ in _MODES}
    mode = modes.get(str(call.body.get("mode", "")))
    justification = str(call.body.get("justification", ""))
    if mode is None or len(justification.strip()) < 10:
        body = (
            '<p class="error" role="alert" id="emergency-error">Choisissez la situation et '
            "justifiez l'accès d'urgence en quelques mots (au moins 10 caractères).</p>"
            + _emergency_form(call, pid)
        )
        return await _pro_layout(call, "Accès d'urgence", body, status=422)
    actor = Actor(ActorKind.PROFESSIONAL, call.session.person_id, mode=mode)
    try:
        emergency = await call.run(
            call.state.space.access.break_glass,
            _me(call),
            pid,
            justification=justification[:2000],
            mode=mode,
        )
    except AccessDeniedError:
        explanation = await call.run(
            call.state.space.access.explain, actor, Action.EMERGENCY_ACCESS, patient_id=pid
        )
        body = (
            '<section id="refusal" class="refusal"><h2>Accès d\'urgence refusé</h2>'
            f'<p id="refusal-reason">{e(refusal_text(explanation.rule))}</p></section>'
            f'<p><a href="/pro/patients/{e(pid)}">Retour au dossier</a></p>'
        )
        return await _pro_layout(call, "Accès d'urgence", body, status=403)
    call.session.emergencies[pid] = (mode, emergency.expires_at)
    await call.run(call.state.sessions.add_emergency, call.token, pid, mode, emergency.expires_at)
    return redirect(f"/pro/patients/{pid}?fait=urgence")


def _deposit_form(call: Call, pid: str, message: str = "") -> str:
    assert call.session is not None
    alert = f'<p class="error" role="alert" id="deposit-error">{e(message)}</p>' if message else ""
    options = "".join(
        f'<option value="{e(code)}">{e(type_label(code, LOINC) or code)}</option>'
        for code in _PRO_TYPES
    )
    return f"""{alert}
<p>Le document rejoint le dossier du patient, qui le voit dans « Mes documents ». Formats
acceptés : {e(_PRO_FORMATS)} ; un document CDA porte son propre type.</p>
<form method="post" action="/pro/patients/{e(pid)}/deposer" enctype="multipart/form-data"
 class="card">
{csrf_field(call.session.csrf_token)}
<label for="file">Fichier</label>
<input id="file" name="file" type="file" required
 accept="application/pdf,image/jpeg,image/png,text/plain,text/xml">
<label for="title">Titre</label>
<input id="title" name="title" required maxlength="200">
<label for="type">Type de document</label>
<select id="type" name="type">{options}</select>
<div class="check"><input type="checkbox" id="announce" name="announce" value="1">
<label for="announce">Résultat à annoncer : le patient ne le voit qu'après l'annonce en
consultation (au plus tard dans un mois)</label></div>
<button type="submit" id="deposit">Déposer le document</button>
</form>"""


async def _deposit_page(call: Call) -> Response:
    pid = call.path["patient_id"]
    return await _pro_layout(call, "Déposer un document", _deposit_form(call, pid))


def _deposit_problem(upload: object, title: object, code: object) -> str | None:
    """What is wrong with a deposit form, in French; ``None`` when nothing is."""
    if not isinstance(upload, _Upload) or not upload.content:
        return "Choisissez un fichier à déposer."
    if not isinstance(title, str) or not title.strip():
        return "Donnez un titre au document."
    if not isinstance(code, str) or code not in _PRO_TYPES:
        return "Choisissez un type de document dans la liste."
    if sniff(upload.content) in (None, "application/dicom"):
        return f"Ce format n'est pas accepté : {_PRO_FORMATS}."
    return None


async def _deposit(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str | _Upload] = call.body
    upload, title, code = form.get("file"), form.get("title"), form.get("type")

    async def again(message: str, status: int = 400) -> Response:
        body = _deposit_form(call, pid, message)
        return await _pro_layout(call, "Déposer un document", body, status=status)

    problem = _deposit_problem(upload, title, code)
    if problem is not None:
        return await again(problem)
    assert isinstance(upload, _Upload)
    assert isinstance(title, str)
    assert isinstance(code, str)
    media_type = sniff(upload.content) or ""
    try:
        document = await call.run_as(
            pid,
            call.state.space.record.add_document,
            pid,
            upload.content,
            media_type=media_type,
            type_code=None if media_type in _XML_TYPES else Code(code, LOINC),
            title=title.strip(),
            hidden_from_patient=form.get("announce") == "1",
        )
    except AccessDeniedError:
        explanation = await call.run_as(
            pid, call.state.space.access.explain, Action.DOCUMENT_ADD, patient_id=pid
        )
        return await again("Dépôt refusé. " + refusal_text(explanation.rule), 403)
    except ValidationError:
        return await again(
            "Le document n'a pas pu être déposé : vérifiez son format "
            f"({_PRO_FORMATS}), sa taille, son titre et, pour un CDA, le patient qu'il désigne."
        )
    return redirect(f"/pro/patients/{pid}/documents/{document.id}")


def _message_form(call: Call, pid: str, message: str = "") -> str:
    assert call.session is not None
    alert = f'<p class="error" role="alert" id="message-error">{e(message)}</p>' if message else ""
    return f"""{alert}
<p>Le patient est prévenu qu'un message l'attend dans sa messagerie, sans son contenu.</p>
<form method="post" action="/pro/patients/{e(pid)}/message" class="card">
{csrf_field(call.session.csrf_token)}
<label for="subject">Objet</label>
<input id="subject" name="subject" required maxlength="200">
<label for="body">Message</label>
<textarea id="body" name="body" rows="6" required maxlength="20000"></textarea>
<div class="check"><input type="checkbox" id="close" name="close" value="1">
<label for="close">Le patient ne pourra pas répondre (message clos)</label></div>
<button type="submit" id="send">Envoyer le message</button>
</form>"""


async def _message_page(call: Call) -> Response:
    pid = call.path["patient_id"]
    return await _pro_layout(call, "Écrire au patient", _message_form(call, pid))


async def _start_thread(call: Call) -> Response:
    pid = call.path["patient_id"]
    try:
        sent = await call.run_as(
            pid,
            call.state.space.messaging.start_thread,
            pid,
            subject=str(call.body.get("subject", "")),
            body=str(call.body.get("body", "")),
            close=call.body.get("close") == "1",
        )
    except AccessDeniedError:
        explanation = await call.run_as(
            pid, call.state.space.access.explain, Action.THREAD_START, patient_id=pid
        )
        body = _message_form(call, pid, "Envoi refusé. " + refusal_text(explanation.rule))
        return await _pro_layout(call, "Écrire au patient", body, status=403)
    except ValidationError:
        body = _message_form(
            call, pid, "Le message n'a pas pu être envoyé : donnez-lui un objet et un texte."
        )
        return await _pro_layout(call, "Écrire au patient", body, status=400)
    return redirect(f"/pro/patients/{pid}/messages/{sent.thread_id}")


async def _threads(call: Call) -> Response:
    """The conversations of this professional with this patient, newest first."""
    pid = call.path["patient_id"]
    page = await call.run(
        call.state.space.messaging.inbox, _me(call), correspondent=pid, archived=None, limit=200
    )
    items = "".join(
        f'<li><a class="thread" href="/pro/patients/{e(pid)}/messages/{e(t.id)}">'
        f"{e(t.subject)}</a>"
        + (
            f' <span class="unread">{t.unread} non lu{"s" if t.unread > 1 else ""}</span>'
            if t.unread
            else ""
        )
        + (' <span class="tag">close</span>' if t.closed else "")
        + f"<br><small>{e(when(t.last_message_at))} · {t.message_count} message"
        f"{'s' if t.message_count > 1 else ''}</small></li>"
        for t in page.threads
    )
    body = (
        f'<ul class="threads" id="threads">{items}</ul>'
        if items
        else "<p>Aucune conversation avec ce patient.</p>"
    ) + f'<p><a href="/pro/patients/{e(pid)}/message">Écrire un nouveau message</a></p>'
    return await _pro_layout(call, "Conversations avec le patient", body)


_SIDES: Final = {"patient": "Le patient", "representative": "Son représentant légal"}


def _message(message: Message) -> str:
    who = "Vous" if message.from_professional else _SIDES.get(message.sender_kind, "Le patient")
    read = ""
    if message.from_professional:
        read = f" · lu le {when(message.read_at)}" if message.read_at else " · pas encore lu"
    files = "".join(f"<li>{e(a.filename)}</li>" for a in message.attachments)
    return (
        f'<article class="message"><p><strong>{e(who)}</strong> · '
        f"{e(when(message.sent_at))}{e(read)}</p>"
        f'<pre class="message-body">{e(message.body)}</pre>'
        + (f'<p>Pièces jointes :</p><ul class="attachments">{files}</ul>' if files else "")
        + "</article>"
    )


async def _thread(call: Call) -> Response:
    pid, tid = call.path["patient_id"], call.path["thread_id"]
    assert call.session is not None
    view = await thread_view(call, pid, tid)
    base = f"/pro/patients/{e(pid)}/messages/{e(tid)}"
    if view.thread.closed:
        reply = '<p class="closed" id="closed">Cette conversation est close aux réponses.</p>'
    else:
        reply = f"""<form method="post" action="{base}/repondre" class="card reply">
{csrf_field(call.session.csrf_token)}
<label for="reply-body">Votre réponse</label>
<textarea id="reply-body" name="body" rows="6" required maxlength="20000"></textarea>
<button type="submit" id="reply">Envoyer</button>
</form>"""
    messages = "".join(_message(x) for x in view.messages)
    body = (
        f'<div class="messages" id="messages">{messages}</div>{reply}'
        f'<p><a href="/pro/patients/{e(pid)}/messages">Retour aux conversations</a></p>'
    )
    return await _pro_layout(call, view.thread.subject, body)


async def _reply(call: Call) -> Response:
    pid, tid = call.path["patient_id"], call.path["thread_id"]
    await reply_in_thread(call, pid, tid, body=str(call.body.get("body", "")))
    return redirect(f"/pro/patients/{pid}/messages/{tid}")


def pro_page_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of the professional's pages (under ``/pro``), offered in demo mode only:
    their login is the simulated one."""
    if not state.demo:
        return []
    record = "/pro/patients/{patient_id}"
    document = record + "/documents/{document_id}"
    thread = record + "/messages/{thread_id}"
    return [
        Route("/pro", _pro_page(state, _home, auth=False), methods=["GET"]),
        Route("/pro/login", _pro_page(state, _login, auth=False), methods=["POST"]),
        Route("/pro/logout", _pro_page(state, _logout), methods=["POST"]),
        Route("/pro/patients", _pro_page(state, _search), methods=["GET"]),
        Route("/pro/patients", _pro_page(state, _lookup), methods=["POST"]),
        Route(record, _pro_page(state, _record), methods=["GET"]),
        Route(document, _pro_page(state, _document), methods=["GET"]),
        Route(document + "/apercu", _pro_page(state, _preview), methods=["GET"]),
        Route(document + "/contenu", _pro_page(state, _content), methods=["GET"]),
        Route(document + "/annoncer", _pro_page(state, _release), methods=["POST"]),
        Route(record + "/equipe-de-soins", _pro_page(state, _join), methods=["POST"]),
        Route(record + "/urgence", _pro_page(state, _break_glass), methods=["POST"]),
        Route(record + "/deposer", _pro_page(state, _deposit_page), methods=["GET"]),
        Route(record + "/deposer", _pro_page(state, _deposit), methods=["POST"]),
        Route(record + "/message", _pro_page(state, _message_page), methods=["GET"]),
        Route(record + "/message", _pro_page(state, _start_thread), methods=["POST"]),
        Route(record + "/messages", _pro_page(state, _threads), methods=["GET"]),
        Route(thread, _pro_page(state, _thread), methods=["GET"]),
        Route(thread + "/repondre", _pro_page(state, _reply), methods=["POST"]),
    ]
