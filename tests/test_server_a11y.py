"""Accessibility of the patient's and the professional's pages, checked in a real browser, and
the patient's, the parent's and the professional's journeys driven end to end.

axe-core (from the npm registry, pinned in ``tests/a11y/package-lock.json``; install it with
``npm ci --prefix tests/a11y``) runs in Debian's Chromium, driven by Playwright through the
browser's executable path (Playwright's own browser download is not used). Every page
must have no *serious* or *critical* violation of WCAG 2.1 A and AA (RGAA, the French
reference, builds on it). Screenshots of each step are kept in ``reports/screenshots/``
(ignored by git) as the test's artefacts.

Where Chromium, Node's axe-core or Playwright is missing the test is skipped, saying what to
install, except in CI (the ``CI`` environment variable set), where it fails instead.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.routing import Match, Route

from monespace import Actor
from monespace.actors import ActorKind
from monespace.testing import reference_app

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test says what to install
    sync_playwright = None

from .test_server_live import running
from .test_server_world import build_world, create_app

#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "reports" / "screenshots"
CDA = ROOT / ".." / "shared" / "data" / "cisis" / "cda"
CHROMIUM = next(
    (
        p
        for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
#: What axe checks: WCAG 2.0 and 2.1, levels A and AA.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _missing() -> str | None:
    if CHROMIUM is None:
        return "Chromium is not installed (Debian: apt-get install chromium)"
    if shutil.which("node") is None or not AXE.exists():
        return "axe-core is not installed: npm ci --prefix tests/a11y (needs Node.js)"
    if sync_playwright is None:
        return "Playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the accessibility test cannot run in CI: {reason}")
        pytest.skip(reason)
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def live(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'a11y.db'}")
    doctor = Actor(ActorKind.PROFESSIONAL, world.doctor)
    # a structured CDA about Alice, for the readable document page (the official example
    # with her INS in place of its patient's)
    example = CDA / "VAC-NOTE_2023.01.xml"
    if example.exists():
        data = example.read_bytes().replace(
            b'extension="279035121518989"', f'extension="{world.alice.nir}"'.encode()
        )
        world.documents[world.alice.id].append(
            world.space.record.add_document(doctor, world.alice.id, data, media_type="text/xml").id
        )
    world.space.measures.add(Actor.patient(world.alice.id), world.alice.id, "weight", 71.2)
    # a referenced app Alice connected, for the catalogue and the connected apps' pages
    reference_app(
        world.space, "suivi-poids", name="Suivi Poids", publisher="Balance SAS", category="Poids"
    )
    world.space.consents.grant(
        Actor.patient(world.alice.id),
        world.alice.id,
        "suivi-poids",
        ["mesures.read", "mesures.write", "documents.read"],
    )
    app = create_app(world.space)
    with running(app) as url:
        yield world, url
    world.space.close()


def _page(browser):
    # axe is injected by the test: the pages' own policy allows no script at all
    context = browser.new_context(
        bypass_csp=True, locale="fr-FR", viewport={"width": 1100, "height": 900}
    )
    return context, context.new_page()


#: The paths of the pages audited in this run, to check that none was forgotten.
AUDITED: set[str] = set()


def _audit(page, name: str) -> list[dict]:
    """Run axe on the page; return its serious and critical violations (and keep a shot)."""
    AUDITED.add(urlsplit(page.url).path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        {
            "page": name,
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _login(page, url: str, person) -> None:
    page.goto(url + "/")
    # by keyboard: the labels name the fields, Tab moves between them, Enter submits
    page.get_by_label("Numéro de sécurité sociale").fill(person.nir)
    page.keyboard.press("Tab")
    page.keyboard.type(person.vitale_serial)
    page.get_by_label("Date de naissance").fill(person.birth_date.isoformat())
    page.get_by_label("Date de naissance").press("Enter")
    page.wait_for_url(f"**/espace/{person.id}")


def test_every_patient_page_has_no_serious_violation_and_the_journey_works(browser, live):
    world, url = live
    context, page = _page(browser)
    violations: list[dict] = []
    page.goto(url + "/")
    violations += _audit(page, "patient-01-connexion")
    _login(page, url, world.alice)
    base = f"{url}/espace/{world.alice.id}"
    violations += _audit(page, "patient-02-documents")
    # search, by the form
    page.get_by_label("Mots du titre ou du commentaire").fill("Compte rendu")
    page.get_by_role("button", name="Rechercher").click()
    page.wait_for_load_state()
    assert "trouvé" in page.inner_text("#result-count")
    violations += _audit(page, "patient-03-recherche")
    # a readable CDA document: a table of vaccinations, no XML
    if len(world.documents[world.alice.id]) > 2:
        page.goto(f"{base}/documents/{world.documents[world.alice.id][-1]}")
        assert page.locator("article.cda table").count() >= 1
        assert "urn:hl7-org:v3" not in page.content()
        violations += _audit(page, "patient-04-document-cda")
    # upload an image: it shows inline on its page
    page.goto(f"{base}/ajouter")
    violations += _audit(page, "patient-05-ajouter")
    page.get_by_label("Fichier").set_input_files(
        files=[{"name": "genou.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_label("Titre").fill("Radio du genou")
    page.get_by_label("Type de document").select_option("DOCPAT04")
    page.get_by_role("button", name="Ajouter le document").click()
    page.wait_for_url("**/documents/**")
    assert page.locator("img#preview").count() == 1
    violations += _audit(page, "patient-06-document-image")
    # the profil médical: add an entry
    page.goto(f"{base}/profil")
    page.get_by_label("Rubrique").select_option("allergy")
    page.get_by_label("Intitulé").fill("Arachide")
    page.get_by_role("button", name="Ajouter", exact=True).click()
    page.wait_for_url("**/profil")
    assert "Arachide" in page.content()
    violations += _audit(page, "patient-07-profil")
    # measures: add one, the chart and its table are there
    page.goto(f"{base}/mesures")
    page.get_by_label("Mesure", exact=True).select_option("weight")
    page.get_by_label("Valeur (la systolique pour la tension)").fill("70,4")
    page.get_by_role("button", name="Ajouter", exact=True).click()
    page.wait_for_url("**/mesures")
    assert page.locator("svg.chart title").count() >= 1
    violations += _audit(page, "patient-08-mesures")
    # access settings: object to emergency access
    page.goto(f"{base}/acces")
    page.get_by_label("Je m'oppose à l'accès en urgence").check()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.wait_for_url("**/acces**")
    assert page.get_by_label("Je m'oppose à l'accès en urgence").is_checked()
    violations += _audit(page, "patient-09-acces")
    # the history, in sentences
    page.goto(f"{base}/historique")
    text = page.inner_text("main")
    assert "Vous vous êtes connecté." in text
    assert "Vous avez modifié vos paramètres d'accès." in text
    assert "account.login" not in text
    violations += _audit(page, "patient-10-historique")
    # the connected apps: narrow one by the form, the catalogue is one link away
    page.goto(f"{base}/applications")
    assert "Suivi Poids" in page.inner_text("#connected")
    violations += _audit(page, "patient-14-applications")
    page.get_by_label("Lire les documents de votre dossier (ceux que vous pouvez voir)").uncheck()
    page.get_by_role("button", name="Garder seulement les droits cochés").click()
    page.wait_for_url("**/applications")
    assert "Lire les documents" not in page.inner_text("#granted-suivi-poids")
    page.get_by_role("link", name="Voir le catalogue des services référencés").click()
    page.wait_for_url("**/catalogue")
    page.get_by_label("Nom du service, de son éditeur ou catégorie").fill("balance")
    page.get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/catalogue?**")
    assert "1 service trouvé" in page.inner_text("#catalogue-count")
    violations += _audit(page, "patient-15-catalogue")
    page.goto(f"{base}/applications")
    page.get_by_role("button", name="Déconnecter Suivi Poids").click()
    page.wait_for_url("**/applications")
    assert page.locator("#no-app").count() == 1
    violations += _audit(page, "patient-16-applications-deconnectee")
    for path, name in (
        ("/messages", "patient-11-messagerie"),
        (f"/messages/{world.threads[world.alice.id]}", "patient-12-conversation"),
        ("/agenda", "patient-13-agenda"),
    ):
        page.goto(base + path)
        violations += _audit(page, name)
    # the keyboard reaches the skip link first, and it leads to the content
    page.goto(base)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    context.close()
    assert not violations, json.dumps(violations, ensure_ascii=False, indent=1)
    # every HTML page of the patient's side was audited (downloads and previews are files)
    app = create_app(world.space)
    pages = {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and "GET" in (route.methods or ())
        and (route.path in ("/", "/catalogue") or route.path.startswith("/espace/"))
        and not route.path.endswith(("/contenu", "/apercu", ".ics"))
        and "/pieces-jointes/" not in route.path
    }
    audited = {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        for path in AUDITED
        if route.path in pages
        and route.matches({"type": "http", "path": path, "method": "GET"})[0] is Match.FULL
    }
    assert len(pages) >= 10
    assert pages == audited, f"patient pages not audited: {sorted(pages - audited)}"


def test_the_parent_journey(browser, live):
    world, url = live
    context, page = _page(browser)
    violations: list[dict] = []
    _login(page, url, world.alice)
    assert "Mon espace (Camille" in page.inner_text("#open-space")
    # switch to the child's space by the link
    page.get_by_role("link", name="Camille, 9 ans").click()
    page.wait_for_url(f"**/espace/{world.child}")
    assert page.inner_text("#open-space") == "Espace ouvert : Camille, 9 ans"
    violations += _audit(page, "parent-01-espace-enfant")
    page.get_by_role("link", name="Profil médical").click()
    page.wait_for_url("**/profil")
    assert "ROR" in page.content()
    assert "Camille, 9 ans" in page.inner_text("#open-space")
    violations += _audit(page, "parent-02-profil-enfant")
    page.get_by_role("link", name="Historique des accès").click()
    page.wait_for_url("**/historique")
    violations += _audit(page, "parent-03-historique-enfant")
    # and back to their own space
    page.get_by_role("link", name="Mon espace (Camille").click()
    page.wait_for_url(f"**/espace/{world.alice.id}/historique")
    assert "Mon espace" in page.inner_text("#open-space")
    context.close()
    assert not violations, json.dumps(violations, ensure_ascii=False, indent=1)


def _pro_login(page, url: str, rpps: str) -> None:
    page.goto(url + "/pro")
    # by keyboard: the label names the field, Enter submits
    page.get_by_label("Numéro RPPS (11 chiffres)").fill(rpps)
    page.get_by_label("Numéro RPPS (11 chiffres)").press("Enter")
    page.wait_for_url("**/pro/patients")


def _find(page, person) -> None:
    page.get_by_label("Numéro de sécurité sociale").fill(person.nir)
    page.get_by_label("Date de naissance").fill(person.birth_date.isoformat())
    page.get_by_role("button", name="Rechercher le dossier").click()
    page.wait_for_url(f"**/pro/patients/{person.id}")


def test_the_professional_journey(browser, live):
    world, url = live
    context, page = _page(browser)
    violations: list[dict] = []
    page.goto(url + "/pro")
    assert "Pro Santé Connect" in page.inner_text("#psc-notice")
    violations += _audit(page, "pro-01-connexion")
    _pro_login(page, url, world.stranger)
    assert "Dr Paul Durand" in page.inner_text("#pro-who")
    violations += _audit(page, "pro-02-recherche")
    # a carte Vitale that matches nobody: said on the form
    page.get_by_label("Numéro de sécurité sociale").fill(world.alice.nir)
    page.get_by_label("Date de naissance").fill("1999-01-01")
    page.get_by_role("button", name="Rechercher le dossier").click()
    page.wait_for_load_state()
    assert "Aucun dossier" in page.inner_text("#lookup-error")
    violations += _audit(page, "pro-03-recherche-sans-resultat")
    # Alice's record is refused, and why is said in French
    _find(page, world.alice)
    assert "équipe de soins" in page.inner_text("#refusal-reason")
    violations += _audit(page, "pro-04-refus-explique")
    # declaring the care team opens it
    page.get_by_role("button", name="Je fais partie de l'équipe de soins").click()
    page.wait_for_url(f"**/pro/patients/{world.alice.id}?fait=equipe")
    assert "équipe de soins" in page.inner_text("#notice")
    violations += _audit(page, "pro-05-dossier")
    page.locator("a.doc").first.click()
    page.wait_for_url("**/documents/**")
    violations += _audit(page, "pro-06-document")
    # deposit an image, then read it back
    page.get_by_role("link", name="Déposer un document").click()
    page.wait_for_url("**/deposer")
    violations += _audit(page, "pro-07-deposer")
    page.get_by_label("Fichier").set_input_files(
        files=[{"name": "genou.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_label("Titre").fill("Radio du genou")
    page.get_by_label("Type de document").select_option("18748-4")
    page.get_by_label("Résultat à annoncer").check()
    page.get_by_role("button", name="Déposer le document").click()
    page.wait_for_url("**/documents/**")
    assert "Radio du genou" in page.inner_text("h1")
    assert page.locator("#announcement").count() == 1
    violations += _audit(page, "pro-08-document-depose")
    # announced in consultation: the patient may now see it
    with page.expect_navigation():
        page.get_by_role("button", name="Je l'ai annoncé").click()
    assert page.locator("#announcement").count() == 0
    # write to the patient
    page.get_by_role("link", name="Écrire au patient").click()
    page.wait_for_url("**/message")
    violations += _audit(page, "pro-09-message")
    page.get_by_label("Objet").fill("Votre radio")
    page.get_by_label("Message", exact=True).fill("La radio du genou est normale.")
    page.get_by_role("button", name="Envoyer le message").click()
    page.wait_for_url("**/messages/**")
    assert "La radio du genou est normale." in page.inner_text("#messages")
    violations += _audit(page, "pro-10-conversation")
    page.get_by_role("link", name="Conversations", exact=True).click()
    page.wait_for_url("**/messages")
    violations += _audit(page, "pro-11-conversations")
    # an emergency access to Bob's record, with its justification
    page.get_by_role("link", name="Rechercher un patient").click()
    page.wait_for_url("**/pro/patients")
    _find(page, world.bob)
    page.get_by_role("button", name="Ouvrir l'accès d'urgence").click()
    # the browser asks for the justification before sending (required field)
    assert page.url.endswith(f"/pro/patients/{world.bob.id}")
    page.get_by_label("Justification (au moins 10 caractères)").fill("Patient inconscient")
    page.get_by_role("button", name="Ouvrir l'accès d'urgence").click()
    page.wait_for_url("**?fait=urgence")
    assert page.locator("#emergency-mode").count() == 1
    violations += _audit(page, "pro-12-urgence")
    context.close()
    assert not violations, json.dumps(violations, ensure_ascii=False, indent=1)
    # the patient reads the professional's actions in their history
    history = world.space.access.history(Actor.patient(world.bob.id), world.bob.id)
    assert any(x.mode == "emergency" for x in history)
    # every HTML page of the professional's side was audited (downloads and previews are files)
    app = create_app(world.space)
    pages = {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        and "GET" in (route.methods or ())
        and route.path.startswith("/pro")
        and not route.path.endswith(("/contenu", "/apercu"))
    }
    audited = {
        route.path
        for route in app.routes
        if isinstance(route, Route)
        for path in AUDITED
        if route.path in pages
        and route.matches({"type": "http", "path": path, "method": "GET"})[0] is Match.FULL
    }
    assert len(pages) >= 5
    assert pages == audited, f"professional pages not audited: {sorted(pages - audited)}"
