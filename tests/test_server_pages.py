"""The patient's pages beyond the record and the messages: readable documents and their
sandboxed preview, upload, search and filters, the profil médical, measures with their
chart, access settings, the history in sentences, and a parent's switch between spaces."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from monespace import Actor
from monespace.actors import ActorKind
from monespace.identity import INS_NIR_TEST_OID
from monespace.record import LOINC, Code

from .test_server_world import CANARY, build_world, client, create_app

pytestmark = pytest.mark.anyio

CDA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "cisis" / "cda"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


async def _login(http, person) -> str:
    response = await http.post("/login", data=person.login())
    assert response.status_code == 303
    page = await http.get(f"/espace/{person.id}")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _hostile_cda(nir: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
<code code="DOCPAT03" codeSystem="1.2.250.1.213.1.1.4.12"/>
<title>Consultation</title><effectiveTime value="20260301100000+0100"/>
<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
<recordTarget><patientRole><id root="{INS_NIR_TEST_OID}" extension="{nir}"/>
</patientRole></recordTarget>
<component><structuredBody><component><section><title>Conclusion</title>
<text><paragraph onload="alert(1)">Tout va bien {CANARY}</paragraph>
<linkHtml href="javascript:alert(1)">lien</linkHtml><script>alert(2)</script></text>
</section></component></structuredBody></component></ClinicalDocument>""".encode()


async def test_a_consultation_report_is_a_compte_rendu_with_its_french_label(world, app):
    doctor = Actor(ActorKind.PROFESSIONAL, world.doctor)
    document = world.space.record.add_document(
        doctor,
        world.alice.id,
        PDF,
        media_type="application/pdf",
        type_code=Code("11488-4", LOINC),
        title="Consultation du 2 mars",
    )
    async with client(app) as http:
        await _login(http, world.alice)
        listing = await http.get(f"/espace/{world.alice.id}")
        assert "<h2>Comptes rendus" in listing.text
        assert "Compte rendu ou fiche de consultation ou de visite" in listing.text
        assert "11488-4" not in listing.text
        page = await http.get(f"/espace/{world.alice.id}/documents/{document.id}")
        assert "Compte rendu ou fiche de consultation ou de visite" in page.text
        assert "frame-src 'self'" in page.headers["content-security-policy"]
        assert "sandbox src=" in page.text or "sandbox></iframe>" in page.text
        preview = await http.get(f"/espace/{world.alice.id}/documents/{document.id}/apercu")
        assert preview.status_code == 200
        assert preview.content == PDF
        assert preview.headers["content-type"] == "application/pdf"
        csp = preview.headers["content-security-policy"]
        assert csp.startswith("sandbox;")
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'self'" in csp
        assert preview.headers["x-frame-options"] == "SAMEORIGIN"
        # a stranger's session gets nothing
    async with client(app) as http:
        await _login(http, world.bob)
        other = await http.get(f"/espace/{world.alice.id}/documents/{document.id}/apercu")
        assert other.status_code == 404


async def test_a_cda_document_reads_as_text_and_its_hostile_parts_are_inert(world, app):
    async with client(app) as http:
        csrf = await _login(http, world.alice)
        # a CDA about someone else is refused: the form says so, and stays
        upload = await http.post(
            f"/espace/{world.alice.id}/ajouter",
            data={"csrf_token": csrf, "title": "Ma consultation", "type": "DOCPAT03"},
            files={"file": ("cr.xml", _hostile_cda(world.bob.nir), "text/xml")},
        )
        assert upload.status_code == 400
        assert "n&#x27;a pas pu être ajouté" in upload.text
        upload = await http.post(
            f"/espace/{world.alice.id}/ajouter",
            data={"csrf_token": csrf, "title": "Ma consultation", "type": "DOCPAT03"},
            files={"file": ("cr.xml", _hostile_cda(world.alice.nir), "text/xml")},
        )
        assert upload.status_code == 303, upload.text
        page = await http.get(upload.headers["location"])
        assert f"Tout va bien {CANARY}" in page.text
        assert "<script" not in page.text
        assert "javascript:" not in page.text
        assert "onload" not in page.text


@pytest.mark.skipif(not CDA.is_dir(), reason="the CI-SIS examples are not in ../shared/data")
async def test_an_official_level_one_cda_shows_its_pdf_in_the_frame(world, app):
    # the official example, about Alice (its patient's INS replaced by hers)
    data = (CDA / "DOC_NON_STRUCTURE_CDA-R2-N1.xml").read_bytes()
    data = data.replace(b'extension="279035121518989"', f'extension="{world.alice.nir}"'.encode())
    doctor = Actor(ActorKind.PROFESSIONAL, world.doctor)
    document = world.space.record.add_document(doctor, world.alice.id, data, media_type="text/xml")
    async with client(app) as http:
        await _login(http, world.alice)
        page = await http.get(f"/espace/{world.alice.id}/documents/{document.id}")
        assert 'id="preview"' in page.text
        preview = await http.get(f"/espace/{world.alice.id}/documents/{document.id}/apercu")
        assert preview.content.startswith(b"%PDF-")


async def test_upload_search_and_filters(world, app):
    base = f"/espace/{world.alice.id}"
    async with client(app) as http:
        csrf = await _login(http, world.alice)
        form = await http.get(base + "/ajouter")
        assert 'enctype="multipart/form-data"' in form.text
        assert "Compte rendu déposé par le patient" in form.text  # the type's French label
        missing = await http.post(
            base + "/ajouter", data={"csrf_token": csrf, "title": "x"}, files={}
        )
        assert missing.status_code in (400, 403)
        refused = await http.post(
            base + "/ajouter",
            data={"csrf_token": csrf, "title": "Binaire"},
            files={"file": ("x.bin", b"\x00\x01\x02 not a known format", "application/pdf")},
        )
        assert refused.status_code == 400
        assert "Ce format n&#x27;est pas accepté" in refused.text
        no_csrf = await http.post(
            base + "/ajouter",
            data={"title": "Radio"},
            files={"file": ("radio.png", PNG, "image/png")},
        )
        assert no_csrf.status_code == 403
        added = await http.post(
            base + "/ajouter",
            data={"csrf_token": csrf, "title": "Radio du genou", "type": "DOCPAT04"},
            files={"file": ("radio.png", PNG, "image/png")},
        )
        assert added.status_code == 303
        page = await http.get(added.headers["location"])
        assert '<img src="' in page.text
        assert "Imagerie déposée par le patient" in page.text
        found = await http.get(base, params={"q": "genou"})
        assert "1 document trouvé" in found.text
        assert "Radio du genou" in found.text
        none = await http.get(base, params={"q": "genou", "categorie": "prescriptions"})
        assert "Aucun document ne correspond" in none.text
        period = await http.get(base, params={"depuis": "2030-01-01"})
        assert "Aucun document ne correspond" in period.text
        junk = await http.get(base, params={"categorie": "<script>", "depuis": "demain"})
        assert junk.status_code == 200
        assert "<script>" not in junk.text


async def test_profile_and_measures_with_an_accessible_chart(world, app):
    base = f"/espace/{world.alice.id}"
    async with client(app) as http:
        csrf = await _login(http, world.alice)
        added = await http.post(
            base + "/profil",
            data={"csrf_token": csrf, "section": "allergy", "label": "Arachide <b>"},
        )
        assert added.status_code == 303
        profile = await http.get(base + "/profil")
        assert "<h2>Allergies</h2>" in profile.text
        assert "Arachide &lt;b&gt;" in profile.text
        entry = re.search(
            r'action="(/espace/[^"]+/profil/[^"]+/supprimer)"[^<]*<input[^>]*><button[^>]*>'
            "Supprimer « Arachide",
            profile.text,
        )
        removed = await http.post(entry.group(1), data={"csrf_token": csrf})
        assert removed.status_code == 303
        assert "Arachide" not in (await http.get(base + "/profil")).text
        for day, value in (("2026-02-01T08:00", "72,5"), ("2026-02-15T08:00", "64")):
            response = await http.post(
                base + "/mesures",
                data={"csrf_token": csrf, "kind": "heart_rate", "value": value, "measured_at": day},
            )
            assert response.status_code == 303
        pressure = await http.post(
            base + "/mesures",
            data={"csrf_token": csrf, "kind": "blood_pressure", "value": "12O"},
        )
        assert pressure.status_code == 422  # not a number: said, nothing stored
        assert "Les informations saisies ne sont pas valides" in pressure.text
        page = await http.get(base + "/mesures")
        assert '<svg class="chart"' in page.text
        assert 'role="img"' in page.text
        assert '<title id="chart-weight-title">Poids corporel (kg)</title>' in page.text
        assert (
            "2 mesures du 01/02/2026 au 15/02/2026, de 64 à 72,5 par minute ; "
            "dernière valeur : 64 par minute" in page.text
        )
        assert "<td>01/02/2026 08:00</td><td>72,5</td>" in page.text
        assert "<script" not in page.text


async def test_access_settings_grants_blocks_and_the_history_in_sentences(world, app):
    base = f"/espace/{world.alice.id}"
    async with client(app) as http:
        csrf = await _login(http, world.alice)
        page = await http.get(base + "/acces")
        assert "Dr Claire Martin" in page.text  # her médecin traitant, by name
        saved = await http.post(
            base + "/acces/parametres",
            data={"csrf_token": csrf, "object_emergency": "1", "notify_first_access": "1"},
        )
        assert saved.status_code == 303
        settings = world.space.access.settings(Actor.patient(world.alice.id), world.alice.id)
        assert settings.object_emergency
        assert not settings.mask_all
        blocked = await http.post(
            base + "/acces/bloquer", data={"csrf_token": csrf, "rpps": world.stranger}
        )
        assert blocked.status_code == 303
        assert "Dr Paul Durand" in (await http.get(base + "/acces")).text
        bad = await http.post(base + "/acces/bloquer", data={"csrf_token": csrf, "rpps": "123"})
        assert bad.status_code == 422
        assert "Ce numéro RPPS n&#x27;est pas valide" in bad.text
        unknown = await http.post(
            base + "/acces/autoriser", data={"csrf_token": csrf, "rpps": "10000000025"}
        )
        assert unknown.status_code == 404
        assert "Aucun professionnel n&#x27;a ce numéro RPPS dans l&#x27;annuaire." in unknown.text
        for path, data in (
            ("/profil", {"section": "<bogus>", "label": "x"}),
            ("/mesures", {"kind": "<bogus>", "value": "1"}),
        ):
            response = await http.post(base + path, data={"csrf_token": csrf, **data})
            assert response.status_code == 422
            assert "bogus" not in response.text
        authorised = await http.post(
            base + "/acces/autoriser", data={"csrf_token": csrf, "rpps": world.stranger}
        )
        assert authorised.status_code == 303
        revoked = await http.post(
            base + f"/acces/retirer/{world.stranger}", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303
        unblocked = await http.post(
            base + f"/acces/debloquer/{world.stranger}", data={"csrf_token": csrf}
        )
        assert unblocked.status_code == 303
        history = (await http.get(base + "/historique")).text
        assert "Vous vous êtes connecté." in history
        assert "Vous avez bloqué un professionnel." in history
        assert "Vous avez modifié vos paramètres d&#x27;accès." in history
        assert "vous | " not in history
        assert "Vous avez consulté vos paramètres d&#x27;accès." not in history
        assert re.search(r"Vos propres consultations ne sont pas affichées \(\d+\)", history)
        everything = (await http.get(base + "/historique", params={"tout": "1"})).text
        assert "Vous avez consulté vos paramètres d&#x27;accès." in everything
        for code in ("thread.start", "inbox.read", "patient.lookup", "account.login"):
            assert code not in everything


async def test_a_parent_sees_whose_space_is_open_and_switches(world, app):
    async with client(app) as http:
        await _login(http, world.alice)
        own = await http.get(f"/espace/{world.alice.id}")
        assert "Espace ouvert : <strong>Mon espace (Camille, 45 ans)</strong>" in own.text
        link = f'href="/espace/{world.child}"'
        assert link in own.text
        child = await http.get(f"/espace/{world.child}")
        assert "Espace ouvert : <strong>Camille, 9 ans</strong>" in child.text
        assert f'<a href="/espace/{world.child}" aria-current="page">' in child.text
        # the navigation follows the space that is open
        assert f'href="/espace/{world.child}/profil"' in child.text
        profile = await http.get(f"/espace/{world.child}/profil")
        assert "ROR" in profile.text
    async with client(app) as http:
        await _login(http, world.bob)
        page = await http.get(f"/espace/{world.bob.id}")
        assert "Espace ouvert" not in page.text  # one space: nothing to switch


async def test_the_api_history_carries_the_sentences(world, app):
    async with client(app) as http:
        login = await http.post("/api/v1/session/patient", json=world.alice.login())
        headers = {"authorization": f"Bearer {login.json()['token']}"}
        await http.get(f"/api/v1/patients/{world.alice.id}/documents", headers=headers)
        history = await http.get(
            f"/api/v1/patients/{world.alice.id}/access/history", headers=headers
        )
        lines = history.json()
        assert {"sentence", "own_view"} <= set(lines[0])
        sentences = [x["sentence"] for x in lines]
        assert "Vous vous êtes connecté." in sentences
        assert all(x.endswith(".") for x in sentences)
        assert not any(code in " ".join(sentences) for code in ("account.login", "audit.read"))
        assert any(x["own_view"] for x in lines)


async def test_the_login_page_says_a_malformed_nir_is_malformed(world, app):
    """A malformed NIR is said as such, in French, without echoing it; a well-formed one that
    matches nobody keeps the uniform refusal."""
    async with client(app) as http:
        malformed = await http.post("/login", data={**world.alice.login(), "nir": "1234567"})
        assert malformed.status_code == 422
        assert "numéro de sécurité sociale n&#x27;est pas valide" in malformed.text
        assert "carte Vitale" in malformed.text
        assert "1234567" not in malformed.text
        nobody = await http.post("/login", data={**world.alice.login(), "nir": "185057511223344"})
        assert nobody.status_code == 401
        assert "ne correspondent pas" in nobody.text
