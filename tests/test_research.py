"""Research extracts: pseudonymised, k-anonymous, honouring objections, audited with their
purpose, and the example notebooks that use them."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monespace import Actor, ActorKind, ManualClock
from monespace.accounts import RepresentationKind
from monespace.errors import AccessDeniedError, UnknownProfessionalError
from monespace.record import Code
from monespace.research import (
    GENERALISED,
    TABLES,
    PersonRecord,
    Study,
    age_band,
    aggregate,
    anonymise_people,
    departement,
    read_parquet,
    to_pandas,
    write_parquet,
)
from monespace.synth import synthetic_identities

from .helpers import identity, open_patient, open_space

OPERATOR = Actor.system("research")
NOW = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
ATC = "http://www.whocc.no/atc"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _study(k: int = 2, study_id: str = "vacc-2026") -> Study:
    return Study(study_id, "Couverture vaccinale", "CNIL-DR-2026-001", k=k)


def _populate(space, count: int, seed: int = 0):
    """*count* synthetic people with open spaces, each with a measure, a coded vaccination
    (with a label that must never leave) and a document."""
    people = list(
        space.accounts.register_patients(
            OPERATOR, synthetic_identities(count, seed=seed, today=NOW.date())
        )
    )
    for patient in people:
        space.accounts.create_space(OPERATOR, patient.id)
        _feed(space, patient.id)
    return people


def _feed(space, patient_id: str) -> None:
    holder = Actor.patient(patient_id)
    space.measures.add(holder, patient_id, "weight", 60 + len(patient_id) % 30)
    space.profile.add(
        holder,
        patient_id,
        "vaccination",
        "Grippe saisonnière chez le Dr Secret",
        code=Code("J07BB02", ATC),
        started=dt.date(2025, 11, 2),
    )


def _alike(space, count: int, first: int = 1):
    """*count* people who share their age band, sex and département (no suppression)."""
    return [open_patient(space, identity(n)) for n in range(first, first + count)]


def _cells(extract) -> list[object]:
    return [
        value
        for name in TABLES
        for record in extract.table(name)
        for value in attrs.astuple(record)
    ]


def _identifiers(people) -> set[str]:
    found: set[str] = set()
    for patient in people:
        ins = patient.identity.ins
        traits = ins.traits
        found |= {patient.id, ins.matricule.value, ins.matricule.value[:13]}
        found |= {traits.birth_name, traits.first_given_name, *traits.given_names}
        if patient.identity.contact.email:
            found.add(patient.identity.contact.email)
    return found


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def space(url, clock):
    with open_space(url, clock) as opened:
        yield opened


# --- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cog", "nir_department", "expected"),
    [
        ("14118", None, "14"),
        ("2A004", None, "2A"),
        ("97411", None, "974"),
        ("99100", None, "99"),
        (None, "75", "75"),
        (None, None, GENERALISED),
    ],
)
def test_departement_from_the_birth_place_or_the_nir(cog, nir_department, expected):
    """The département comes from the COG code of the birth place, else from the NIR."""
    assert departement(cog, nir_department) == expected


def test_age_bands():
    """Ages are counted in completed years and shown as bands; 100 and more share one."""
    at = dt.date(2026, 6, 1)
    assert age_band(dt.date(1990, 6, 2), at) == "30-39"
    assert age_band(dt.date(1986, 6, 1), at) == "40-49"
    assert age_band(dt.date(1920, 1, 1), at) == "100+"
    assert age_band(dt.date(2024, 1, 1), at, width=2) == "2-3"


_people = st.lists(
    st.builds(
        PersonRecord,
        pseudonym=st.uuids().map(lambda u: u.hex),
        age_band=st.sampled_from(["0-9", "10-19", "20-29", "80-89"]),
        sex=st.sampled_from("FM"),
        departement=st.sampled_from(["14", "75", "2A", "971", "99"]),
    ),
    max_size=80,
    unique_by=lambda p: p.pseudonym,
)


@given(people=_people, k=st.integers(2, 12))
def test_every_group_of_the_people_table_holds_k(people, k):
    """After anonymisation every age band x sex x département group holds at least k people,
    only people of small groups changed, and the report accounts for every suppression."""
    kept, suppressed, report = anonymise_people(people, k)
    groups = Counter((p.age_band, p.sex, p.departement) for p in kept)
    assert all(n >= k for n in groups.values())
    assert {p.pseudonym for p in kept} | suppressed == {p.pseudonym for p in people}
    assert not {p.pseudonym for p in kept} & suppressed
    before = Counter((p.age_band, p.sex, p.departement) for p in people)
    originals = {p.pseudonym: p for p in people}
    for person in kept:
        original = originals[person.pseudonym]
        if before[(original.age_band, original.sex, original.departement)] >= k:
            assert person == original
    counted = {s.action: s.count for s in report}
    assert counted.get("suppressed person", 0) == len(suppressed)


@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "pseudonym": st.sampled_from([f"p{n}" for n in range(40)]),
                "age_band": st.sampled_from(["0-9", "10-19", "20-29"]),
                "status": st.sampled_from(["done", "due", "overdue"]),
            }
        ),
        max_size=120,
    ),
    k=st.integers(2, 12),
)
def test_aggregates_never_show_a_cell_below_k(rows, k):
    """An aggregate shows no count from 1 to k - 1, and reports how many cells it hid."""
    table = aggregate(rows, ["age_band", "status"], k=k, name="coverage")
    shown = [r["people"] for r in table.rows]
    assert all(n is None or n >= k for n in shown)
    hidden = sum(n is None for n in shown)
    assert sum(s.count for s in table.suppressions) == hidden


def test_a_study_is_validated():
    """A study needs a clean id, a purpose, an approval and k of at least 2."""
    with pytest.raises(ValueError, match="'id'"):
        Study("a b", "p", "a")
    with pytest.raises(ValueError, match="'purpose'"):
        Study("s", " ", "a")
    with pytest.raises(ValueError, match="'k'"):
        Study("s", "p", "a", k=1)


# --- extracts from a space ----------------------------------------------------------------------


@given(count=st.integers(1, 25), seed=st.integers(0, 10_000), k=st.integers(2, 6), data=st.data())
def test_extracts_hold_no_identifier_and_no_small_group(count, seed, k, data):
    """Whatever the population, an extract holds no NIR, INS, name, e-mail address, id of
    the space or free text, and no group of people smaller than k; objectors are out."""
    with open_space("memory://", ManualClock(NOW)) as space:
        people = _populate(space, count, seed)
        objecting = data.draw(st.sets(st.sampled_from(range(count)), max_size=count))
        for index in objecting:
            patient = people[index]
            space.access.update_settings(
                Actor.patient(patient.id), patient.id, object_research=True
            )
        extract = space.research.extract(OPERATOR, _study(k))
    forbidden = _identifiers(people) | {"Grippe saisonnière chez le Dr Secret"}
    for cell in _cells(extract):
        if isinstance(cell, str):
            assert cell not in forbidden
            assert not any(len(word) > 5 and word in cell for word in forbidden)
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.pseudonym) for p in extract.people)
    groups = Counter((p.age_band, p.sex, p.departement) for p in extract.people)
    assert all(n >= k for n in groups.values())
    assert extract.left_out.get("objection", 0) == len(objecting)
    included = {p.pseudonym for p in extract.people}
    for name in TABLES[1:]:
        assert {r.pseudonym for r in extract.table(name)} <= included
    assert len(extract.people) + sum(
        s.count for s in extract.suppressions if s.action == "suppressed person"
    ) == count - len(objecting)


def test_pseudonyms_are_keyed_per_study(space):
    """The same person has the same pseudonym in two extracts of a study, and another one
    in another study."""
    _populate(space, 3)
    first = space.research.extract(OPERATOR, _study())
    again = space.research.extract(OPERATOR, _study())
    other = space.research.extract(OPERATOR, _study(study_id="other-study"))
    assert {p.pseudonym for p in first.people} == {p.pseudonym for p in again.people}
    assert not {p.pseudonym for p in first.people} & {p.pseudonym for p in other.people}


def test_objection_is_honoured_and_can_be_lifted(space, clock):
    """An objection (holder or representative) leaves the person out; lifted, they are in."""
    holder, *_ = _alike(space, 3)
    study = _study(k=2)
    assert len(space.research.extract(OPERATOR, study).people) == 3

    settings = space.access.update_settings(
        Actor.patient(holder.id), holder.id, object_research=True
    )
    assert settings.object_research is True
    out = space.research.extract(OPERATOR, study)
    assert out.left_out == {"objection": 1}
    assert len(out.people) == 2

    space.access.update_settings(Actor.patient(holder.id), holder.id, object_research=False)
    assert len(space.research.extract(OPERATOR, study).people) == 3
    changes = [
        e
        for e in space.audit.events(OPERATOR)
        if e.action == "access.settings" and e.patient_id == holder.id
    ]
    assert len(changes) == 2
    assert space.access.settings(Actor.patient(holder.id), holder.id).object_research is False


def test_a_representative_may_object(space):
    """A legal representative sets the objection for the person they represent."""
    holder, parent = _alike(space, 2)
    space.accounts.add_representative(
        OPERATOR, holder.id, parent.id, RepresentationKind.PROTECTED_ADULT
    )
    rep = Actor(ActorKind.REPRESENTATIVE, parent.id, on_behalf_of=holder.id)
    space.access.update_settings(rep, holder.id, object_research=True)
    assert space.research.extract(OPERATOR, _study()).left_out == {"objection": 1}


def test_closed_spaces_are_left_out(space):
    """A person whose space is not open is not extracted."""
    space.accounts.register_patient(OPERATOR, identity(3))
    _alike(space, 2, first=4)
    extract = space.research.extract(OPERATOR, _study())
    assert extract.left_out == {"space_not_open": 1}
    assert len(extract.people) == 2


def test_the_extract_is_audited_with_its_purpose(space):
    """Each extracted person's trail, and the study-wide event, carry the study's purpose;
    the person's history says their data were used."""
    people = _populate(space, 2)
    study = _study()
    space.research.extract(OPERATOR, study)
    events = [e for e in space.audit.events(OPERATOR) if e.action == "research.extract"]
    assert {e.patient_id for e in events} == {None, *(p.id for p in people)}
    assert all(e.purpose == study.audit_purpose for e in events)
    assert all(e.target_kind == "study" and e.target_id == study.id for e in events)
    assert all(e.rule == "operator_extracts_for_study" for e in events)
    history = space.access.history(Actor.patient(people[0].id), people[0].id)
    assert any("étude" in line.what for line in history)


@pytest.mark.parametrize("kind", ["patient", "professional", "app"])
def test_only_the_operator_extracts(space, kind):
    """Nobody but the operator makes an extract, and the refusal is traced."""
    people = _populate(space, 1)
    actor = Actor(kind, people[0].id if kind == "patient" else "10000000009")
    # A professional the directory does not know is told so; the denial is traced alike.
    refused = UnknownProfessionalError if kind == "professional" else AccessDeniedError
    with pytest.raises(refused):
        space.research.extract(actor, _study())
    denied = [e for e in space.audit.events(OPERATOR) if e.action == "research.extract"]
    assert [e.outcome for e in denied] == ["denied"]


def test_extract_contents(space):
    """An extract holds codes, values and days: LOINC and UCUM for measures, the ATC code
    for vaccinations, reminder statuses, and the type codes of documents."""
    people = _alike(space, 2)
    for patient in people:
        _feed(space, patient.id)
    holder = Actor.patient(people[0].id)
    space.record.add_document(
        holder,
        people[0].id,
        b"note",
        media_type="text/plain",
        type_code=Code("EXPPAT_2", "1.2.250.1.213.1.1.4.12"),
        title="Titre secret",
    )
    extract = space.research.extract(OPERATOR, _study())
    assert {(m.loinc, m.unit) for m in extract.measures} == {("29463-7", "kg")}
    assert {(v.code_system, v.code) for v in extract.vaccinations} == {(ATC, "J07BB02")}
    assert [d.type_code for d in extract.documents] == ["EXPPAT_2"]
    assert extract.reminders
    assert {r.status for r in extract.reminders} <= {"due", "upcoming", "overdue", "done"}
    assert "Titre secret" not in _cells(extract)


def test_parquet_round_trip(space, tmp_path):
    """An extract written to Parquet reads back equal, table by table, with its metadata."""
    for patient in _alike(space, 4):
        _feed(space, patient.id)
    extract = space.research.extract(OPERATOR, _study())
    assert len(extract.people) == 4
    assert len(extract.measures) == 4
    paths = write_parquet(extract, tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"vacc-2026-{t}.parquet" for t in TABLES)
    back = read_parquet(tmp_path, "vacc-2026")
    assert (back.study_id, back.made_on, back.k) == (extract.study_id, extract.made_on, 2)
    for name in TABLES:
        assert back.table(name) == extract.table(name)


def test_pandas_frames_keep_their_columns_when_empty(space):
    """Every table becomes a DataFrame with its columns, even with no rows."""
    frames = to_pandas(space.research.extract(OPERATOR, _study()))
    assert set(frames) == set(TABLES)
    assert list(frames["people"].columns) == ["pseudonym", "age_band", "sex", "departement"]
    assert frames["measures"].empty


# --- the example notebooks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The Jupyter kernel the notebooks run in; the tests are skipped, saying why, when no
    kernel can start on this machine (no ipykernel, no sockets)."""
    pytest.importorskip("nbclient")
    manager = pytest.importorskip("jupyter_client.manager")
    try:
        started, client = manager.start_new_kernel(kernel_name="python3", startup_timeout=30)
    except Exception as exc:
        pytest.skip(f"a Jupyter kernel cannot start here: {type(exc).__name__}: {exc}")
    client.stop_channels()
    started.shutdown_kernel(now=True)
    return "python3"


@pytest.mark.parametrize(
    "notebook", ["research/vaccination_coverage.ipynb", "research/measures_trends.ipynb"]
)
def test_example_notebooks_run(notebook, kernel_name, tmp_path):
    """Each example notebook runs from a fresh seed, without an error, within seconds, and
    draws its figure."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    book = nbformat.read(EXAMPLES / notebook, as_version=4)
    nbclient.NotebookClient(
        book, timeout=30, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    figures = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert figures, "the notebook draws no figure"
