"""The pages of referenced apps: the public catalogue, and the apps a patient connected.

- ``GET /catalogue``: the referenced services, searchable by words and category, with what
  each may exchange; public (no login), as the catalogue of Mon espace santé is;
- ``GET /espace/{patient_id}/applications``: the apps the holder (or the child they
  represent) connected, what each may do in plain French, since when and by whom, with a
  form to narrow an app's rights and one to disconnect it (both with the session's CSRF
  token, no JavaScript); the consents revoked are listed below;
- ``POST …/applications/{client_id}/restreindre`` and ``…/retirer``: those two forms.

Every change goes through ``space.consents``, so the policy decides and the history records
it; an app's tokens stop working at the revocation.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..catalogue import App, Consent, ExchangeTier, Scope
from ..errors import NotFoundError, ValidationError
from ._html import PARIS, csrf_field, e, post_button, redirect, when
from ._oauth import SCOPE_WORDS
from ._page import _layout, _page, _spaces_nav
from ._routing import Call, ServerState
from ._sessions import SessionKind

__all__ = ["TIER_WORDS", "app_page_routes"]

#: What an exchange tier lets a service exchange, in the patient's words.
TIER_WORDS: Final = {
    ExchangeTier.NONE: "aucun échange de données avec votre espace",
    ExchangeTier.DOCUMENTS: "documents",
    ExchangeTier.AGENDA: "documents et agenda",
    ExchangeTier.MESURES: "documents, agenda et mesures",
}
_SEARCH_MAX: Final = 100


def _scope_list(scopes: frozenset[Scope], ident: str) -> str:
    items = "".join(f"<li>{e(SCOPE_WORDS[s])}</li>" for s in sorted(scopes))
    return f'<ul id="{e(ident)}">{items}</ul>'


def _entry(app: App) -> str:
    until = (
        f" Référencé jusqu'au {e(when(app.convention_until.astimezone(PARIS).date()))}."
        if app.convention_until
        else ""
    )
    return (
        f'<li class="card" id="app-{e(app.client_id)}"><h2>{e(app.name)}</h2>'
        f"<p>Publié par {e(app.publisher)}. Catégorie : {e(app.category)}. Échanges possibles : "
        f"{e(TIER_WORDS[app.exchange_tier])}.{until}</p>"
        "<p>Ce que le service peut vous demander :</p>"
        + _scope_list(app.scopes, f"scopes-{app.client_id}")
        + "</li>"
    )


async def _catalogue(call: Call) -> Response:
    """The public catalogue: no login, the same for everyone."""
    params = call.request.query_params
    words = params.get("q", "")[:_SEARCH_MAX].strip()
    category = params.get("categorie", "")[:_SEARCH_MAX].strip()
    catalogue = call.state.space.catalogue
    everything = await call.run(catalogue.search)
    found = await call.run(catalogue.search, words or None, category=category or None)
    categories = sorted({a.category for a in everything}, key=str.casefold)
    options = '<option value="">Toutes</option>' + "".join(
        f'<option value="{e(c)}"{" selected" if c == category else ""}>{e(c)}</option>'
        for c in categories
    )
    count = (
        f"{len(found)} service{'s' if len(found) > 1 else ''} trouvé{'s' if len(found) > 1 else ''}"
    )
    body = (
        "<p>Les services numériques référencés par l'État : vous pouvez les connecter à votre "
        "espace, choisir ce qu'ils peuvent faire, et les déconnecter à tout moment.</p>"
        '<form method="get" action="/catalogue" class="card" role="search" '
        'aria-label="Rechercher un service">'
        '<label for="q">Nom du service, de son éditeur ou catégorie</label>'
        f'<input id="q" name="q" value="{e(words)}" maxlength="{_SEARCH_MAX}">'
        f'<label for="categorie">Catégorie</label><select id="categorie" name="categorie">'
        f"{options}</select>"
        '<button type="submit" id="catalogue-search">Rechercher</button></form>'
        f'<p id="catalogue-count" role="status">{count}</p>'
        + (
            f'<ul class="apps" id="catalogue">{"".join(_entry(a) for a in found)}</ul>'
            if found
            else ""
        )
    )
    # The visitor's own navigation when a patient is logged in; the page is public.
    logged_in = call.session is not None and call.session.kind is SessionKind.PATIENT
    return _layout("Catalogue des services référencés", body, call=call if logged_in else None)


def _by_whom(consent: Consent, pid: str) -> str:
    kind, _, who = consent.by.partition(":")
    if kind == "representative":
        return "par un représentant légal"
    if kind == "patient" and who == pid:
        return "par le titulaire de l'espace"
    return ""


async def _app_of(call: Call, client_id: str) -> App | None:
    try:
        return await call.run(call.state.space.catalogue.app, client_id)
    except NotFoundError:
        return None


def _narrow_form(base: str, consent: Consent, csrf: str) -> str:
    cid = consent.client_id
    boxes = "".join(
        f'<div class="check"><input type="checkbox" id="keep-{e(cid)}-{e(str(s))}" '
        f'name="scope:{e(str(s))}" value="1" checked>'
        f'<label for="keep-{e(cid)}-{e(str(s))}">{e(SCOPE_WORDS[s])}</label></div>'
        for s in sorted(consent.scopes)
    )
    return (
        f'<form method="post" action="{e(base)}/{e(cid)}/restreindre">{csrf_field(csrf)}'
        f"<fieldset><legend>Droits à garder (décochez ceux à retirer)</legend>{boxes}"
        "</fieldset>"
        f'<button type="submit" id="narrow-{e(cid)}">Garder seulement les droits cochés</button>'
        "</form>"
    )


async def _connected(call: Call, *, message: str = "", status: int = 200) -> Response:
    pid = call.path["patient_id"]
    assert call.session is not None
    csrf = call.session.csrf_token
    base = f"/espace/{pid}/applications"
    consents = await call.run_as(pid, call.state.space.consents.of, pid)
    active = ""
    revoked = ""
    for consent in sorted(consents, key=lambda c: c.granted_at, reverse=True):
        app = await _app_of(call, consent.client_id)
        name = app.name if app else consent.client_id
        publisher = f", publié par {app.publisher}" if app else ""
        cid = consent.client_id
        if not consent.active:
            revoked += (
                f"<li>{e(name)}{e(publisher)} : autorisé le {e(when(consent.granted_at))}, "
                f"déconnecté le {e(when(consent.revoked_at))}</li>"
            )
            continue
        stopped = (
            '<p class="error">Ce service n\'est plus référencé : il ne peut plus accéder à '
            "votre espace.</p>"
            if app is None or not app.may_act(call.state.now())
            else ""
        )
        active += (
            f'<li class="card" id="consent-{e(cid)}"><h2>{e(name)}</h2>'
            f"<p>Service référencé{e(publisher)}. Autorisé le "
            f"{e(when(consent.granted_at))} (heure de Paris) {e(_by_whom(consent, pid))}.</p>"
            f"{stopped}<p>Ce qu'il peut faire :</p>"
            + _scope_list(consent.scopes, f"granted-{cid}")
            + _narrow_form(base, consent, csrf)
            + post_button(
                f"{base}/{cid}/retirer",
                f"Déconnecter {name}",
                csrf,
                button_id=f"revoke-{cid}",
            )
            + "</li>"
        )
    body = (
        (await _spaces_nav(call, pid, "/applications"))
        + (f'<p class="error" role="alert" id="apps-error">{e(message)}</p>' if message else "")
        + "<p>Les services référencés que vous avez connectés à cet espace, et ce que chacun "
        "peut faire. Chaque accès d'un service apparaît dans l'historique des accès. "
        '<a href="/catalogue" id="catalogue-link">Voir le catalogue des services '
        "référencés</a>.</p>"
        + (
            f'<ul class="apps" id="connected">{active}</ul>'
            if active
            else '<p id="no-app">Aucun service connecté.</p>'
        )
        + (
            f'<section id="revoked"><h2>Services déconnectés</h2><ul>{revoked}</ul></section>'
            if revoked
            else ""
        )
    )
    return _layout("Applications connectées", body, call=call, status=status)


async def _narrow(call: Call) -> Response:
    pid = call.path["patient_id"]
    form: dict[str, str] = call.body
    keep = [
        name.removeprefix("scope:")
        for name, value in form.items()
        if name.startswith("scope:") and value == "1"
    ]
    try:
        await call.run_as(pid, call.state.space.consents.narrow, pid, call.path["client_id"], keep)
    except NotFoundError:
        return await _connected(
            call, message="Ce service n'est pas connecté à cet espace.", status=404
        )
    except ValidationError:
        # said on the page, with the forms: nothing was changed
        return await _connected(
            call,
            message="Gardez au moins un droit, ou déconnectez le service. Rien n'a été modifié.",
            status=422,
        )
    return redirect(f"/espace/{pid}/applications")


async def _revoke(call: Call) -> Response:
    pid = call.path["patient_id"]
    try:
        await call.run_as(pid, call.state.space.consents.revoke, pid, call.path["client_id"])
    except NotFoundError:
        return await _connected(
            call, message="Ce service n'est pas connecté à cet espace.", status=404
        )
    return redirect(f"/espace/{pid}/applications")


def app_page_routes(state: ServerState) -> list[BaseRoute]:
    """The public catalogue page and the patient's connected apps (not part of the JSON API
    nor of its OpenAPI)."""
    base = "/espace/{patient_id}/applications"
    return [
        Route("/catalogue", _page(state, _catalogue, auth=False), methods=["GET"]),
        Route(base, _page(state, _connected), methods=["GET"]),
        Route(base + "/{client_id}/restreindre", _page(state, _narrow), methods=["POST"]),
        Route(base + "/{client_id}/retirer", _page(state, _revoke), methods=["POST"]),
    ]
