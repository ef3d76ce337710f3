"""The pages of referenced apps: the public catalogue (searchable, no login) and the apps a
patient connected, with the forms to narrow and disconnect them; the history tells each
consent change and each access of the app in plain French."""

from __future__ import annotations

import re

import pytest

from monespace import Actor, ActorKind
from monespace.catalogue import Scope

from .test_oauth_server import ALL, bearer, reference, tokens
from .test_server_world import build_world, client, create_app

pytestmark = pytest.mark.anyio

MINISTER = Actor.authority("cabinet", "minister")


@pytest.fixture
def world():
    w = build_world()
    reference(w.space, "suivi-poids")
    reference(w.space, "autre-appli", scopes=frozenset({Scope.MESURES_READ}), service="Autre")
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


def _main(page: str) -> str:
    """The text of the page's ``<main>``, tags removed."""
    main = page[page.index("<main") : page.index("</main>")]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)).replace("&#x27;", "'")


async def test_the_public_catalogue_is_searchable_without_login(world, app):
    application = world.space.catalogue.applications(status="referenced")
    suspended = next(a for a in application if a.client_id == "autre-appli")
    world.space.catalogue.suspend(MINISTER, suspended.id)
    async with client(app) as http:
        page = await http.get("/catalogue")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        text = _main(page.text)
        assert "Suivi Poids" in text
        assert "Balance SAS" in text
        assert "Enregistrer des mesures de santé" in text
        assert "documents, agenda et mesures" in text
        # a suspended service is not offered
        assert "Autre" not in text
        assert "1 service trouvé" in text
        # by words (accents and case ignored) and by category
        found = await http.get("/catalogue", params={"q": "BALANCE"})
        assert 'id="app-suivi-poids"' in found.text
        nothing = await http.get("/catalogue", params={"q": "introuvable"})
        assert "0 service trouvé" in _main(nothing.text)
        assert 'id="catalogue"' not in nothing.text
        category = await http.get("/catalogue", params={"categorie": "Suivi du poids"})
        assert 'id="app-suivi-poids"' in category.text
        assert '<option value="Suivi du poids" selected>' in category.text
        # what is typed comes back escaped
        hostile = await http.get("/catalogue", params={"q": '"><script>x</script>'})
        assert "<script>x" not in hostile.text


async def test_a_patient_sees_narrows_and_disconnects_an_app(world, app):
    pid = world.alice.id
    async with client(app) as http:
        got = await tokens(http, world)
        assert got["scope"] == ALL
        token = got["access_token"]
        assert (
            await http.get(f"/api/v1/patients/{pid}/documents", headers=bearer(token))
        ).is_success
        page = await http.get(f"/espace/{pid}/applications")
        assert page.status_code == 200
        text = _main(page.text)
        assert "Suivi Poids" in text
        assert "publié par Balance SAS" in text
        assert "par le titulaire de l'espace" in text
        assert "Ajouter des documents à votre dossier" in text
        assert 'href="/catalogue"' in page.text
        assert 'aria-current="page"' in page.text  # the navigation marks the section
        csrf = _csrf(page.text)
        base = f"/espace/{pid}/applications/suivi-poids"
        # keep the measures only
        kept = {"csrf_token": csrf, "scope:mesures.read": "1", "scope:mesures.write": "1"}
        narrowed = await http.post(base + "/restreindre", data=kept)
        assert narrowed.status_code == 303
        consent = world.space.consents.active(pid, "suivi-poids")
        assert consent is not None
        assert consent.scopes == {Scope.MESURES_READ, Scope.MESURES_WRITE}
        page = await http.get(f"/espace/{pid}/applications")
        assert "Ajouter des documents" not in _main(page.text)
        documents = await http.get(f"/api/v1/patients/{pid}/documents", headers=bearer(token))
        assert documents.status_code == 403
        measures = await http.get(
            f"/api/v1/patients/{pid}/measures?kind=weight", headers=bearer(token)
        )
        assert measures.status_code == 200
        # disconnect: the token stops working at once, the consent is listed as ended
        revoked = await http.post(base + "/retirer", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        measures = await http.get(
            f"/api/v1/patients/{pid}/measures?kind=weight", headers=bearer(token)
        )
        assert measures.status_code == 403
        page = await http.get(f"/espace/{pid}/applications")
        assert 'id="no-app"' in page.text
        assert "déconnecté le" in _main(page.text)
        # the history, in French, names the app
        history = _main((await http.get(f"/espace/{pid}/historique")).text)
    assert "Vous avez autorisé la connexion d'une application." in history
    assert "Vous avez autorisé l'application Suivi Poids à accéder à votre espace." in history
    assert "L'application Suivi Poids s'est connectée à votre espace." in history
    assert "L'application Suivi Poids a consulté" in history
    assert "Vous avez réduit les droits de l'application Suivi Poids." in history
    assert "Vous avez retiré l'autorisation de l'application Suivi Poids." in history
    assert "consent." not in history
    assert "oauth." not in history
    # reading the list is the holder's own view: left out by default
    assert "liste des applications autorisées" not in history


async def test_bad_forms_change_nothing(world, app):
    pid = world.alice.id
    world.space.consents.grant(Actor.patient(pid), pid, "suivi-poids", ["mesures.read"])
    async with client(app) as http:
        await http.post("/login", data=world.alice.login())
        page = await http.get(f"/espace/{pid}/applications")
        csrf = _csrf(page.text)
        base = f"/espace/{pid}/applications/suivi-poids"
        # without the CSRF token
        assert (await http.post(base + "/retirer", data={})).status_code == 403
        assert (await http.post(base + "/restreindre", data={"csrf_token": "x"})).status_code == 403
        # nothing kept: said on the page, nothing changed
        empty = await http.post(base + "/restreindre", data={"csrf_token": csrf})
        assert empty.status_code == 422
        assert "Gardez au moins un droit" in _main(empty.text)
        # a scope the consent does not hold cannot be added by narrowing
        more = {"csrf_token": csrf, "scope:documents.write": "1"}
        assert (await http.post(base + "/restreindre", data=more)).status_code == 422
        # an app that is not connected
        other = f"/espace/{pid}/applications/autre-appli/retirer"
        missing = await http.post(other, data={"csrf_token": csrf})
        assert missing.status_code == 404
        assert "n'est pas connecté" in _main(missing.text)
    consent = world.space.consents.active(pid, "suivi-poids")
    assert consent is not None
    assert consent.scopes == {Scope.MESURES_READ}


async def test_another_person_reads_nothing_and_a_parent_reaches_the_childs_apps(world, app):
    child = world.child
    parent = Actor(ActorKind.REPRESENTATIVE, world.alice.id, on_behalf_of=child)
    world.space.consents.grant(parent, child, "suivi-poids", ["mesures.read"])
    async with client(app) as http:
        await http.post("/login", data=world.bob.login())
        for path in (f"/espace/{world.alice.id}/applications", f"/espace/{child}/applications"):
            refused = await http.get(path)
            assert refused.status_code == 404  # as if the space did not exist
            assert "Suivi Poids" not in refused.text
        # nor can he change what the child's parent granted, with his own valid CSRF token
        csrf = _csrf((await http.get(f"/espace/{world.bob.id}/applications")).text)
        for action in ("retirer", "restreindre"):
            path = f"/espace/{child}/applications/suivi-poids/{action}"
            sent = {"csrf_token": csrf, "scope:mesures.read": "1"}
            assert (await http.post(path, data=sent)).status_code == 404
        assert world.space.consents.active(child, "suivi-poids") is not None
        http.cookies.clear()
        await http.post("/login", data=world.alice.login())
        page = await http.get(f"/espace/{child}/applications")
        assert page.status_code == 200
        text = _main(page.text)
        assert "Camille, 9 ans" in text
        assert "par un représentant légal" in text
        assert "Consulter vos mesures de santé" in text
    # without a session: the login form
    async with client(app) as http:
        assert (await http.get(f"/espace/{child}/applications")).status_code == 401


async def test_a_suspended_app_is_said_to_have_stopped(world, app):
    pid = world.alice.id
    world.space.consents.grant(Actor.patient(pid), pid, "suivi-poids", ["mesures.read"])
    (application,) = [
        a for a in world.space.catalogue.applications() if a.client_id == "suivi-poids"
    ]
    world.space.catalogue.suspend(MINISTER, application.id)
    async with client(app) as http:
        await http.post("/login", data=world.alice.login())
        page = await http.get(f"/espace/{pid}/applications")
    text = _main(page.text)
    assert "Suivi Poids" in text
    assert "n'est plus référencé : il ne peut plus accéder à votre espace" in text
