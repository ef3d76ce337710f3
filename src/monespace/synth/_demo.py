"""Seeding a demo space: a synthetic population taken through the real lifecycle.

Everything goes through the public services, as an operator would drive them: people are
registered, minors attached to a parent, everyone invited (e-mails and letters land in the
outbox), a few oppose, some activate, and the deadline run opens the other spaces when their
six weeks are over. The clock is moved, not waited for.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

import attrs

from .._space import Space
from ..accounts import AccountState, PatientIdentity, RepresentationKind
from ..actors import Actor, ActorKind
from ..agenda import PARIS, Family, ReminderStatus
from ..clock import ManualClock
from ..errors import NotFoundError, ValidationError
from ..identities import Professional
from ..identity import RPPS
from ..messaging import NewAttachment
from ..record import LOINC, TRE_A05_TYPE, Code
from ._population import synthetic_identities

__all__ = [
    "PHASES",
    "DemoCheckpoint",
    "DemoLogin",
    "DemoProfessional",
    "DemoSummary",
    "SeedProgress",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "demo_work",
    "seed_demo",
]

#: Share of people who object (about 1.5 % did in 2022: docs/domain-rules.md §8).
OPPOSITION_RATE = 0.015
#: Share who activate their space themselves (15 to 35 % depending on the year, §8).
ACTIVATION_RATE = 0.30


@attrs.frozen(repr=False)
class DemoLogin:
    """What a person types to log in, or to activate their space (synthetic data only).

    :param role: ``"patient"`` (an active space with a full record), ``"representative"``
        (an active parent who reaches a child's space from the same login) or
        ``"activation"`` (a space that opened by itself, with a provisional *code*).
    :param represents: the spaces the person reaches as a legal representative.
    """

    role: str
    patient_id: str
    nir: str
    vitale_serial: str
    birth_date: date
    code: str | None = None
    represents: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"DemoLogin(role={self.role!r}, patient_id={self.patient_id!r})"


@attrs.frozen
class DemoProfessional:
    """A professional of the demo's directory, and their place in the demo records.

    :param role: ``"treating_doctor"`` (of the demo patient), ``"care_team"``, ``"specialist"`` or
        ``"unauthorised"`` (no access to anyone: try the emergency access with them).
    """

    rpps: str
    name: str
    profession: str
    role: str


@attrs.frozen
class DemoSummary:
    """What :func:`seed_demo` did: counts per state and a few ready-to-use logins."""

    patients: int
    states: dict[str, int]
    representations: int
    logins: tuple[DemoLogin, ...]
    professionals: tuple[DemoProfessional, ...] = ()
    documents: int = 0
    threads: int = 0

    def login(self, role: str) -> DemoLogin | None:
        """The first login of *role*, if the population had one."""
        return next((login for login in self.logins if login.role == role), None)


class SeedProgress(Protocol):
    """Where :func:`seed_demo` reports its work as it does it (a progress bar, say).

    ``phase(label)`` names the step that starts; ``advance(count)`` adds *count* units of
    work just done, out of :func:`demo_work` in all.
    """

    def phase(self, label: str) -> None:
        """A step of the seeding starts."""

    def advance(self, count: int = 1) -> None:
        """*count* more units of work are done."""


#: The steps of the seeding, in order, and how each is named to the person waiting.
PHASES = (
    ("register", "registering people"),
    ("represent", "attaching minors to a parent"),
    ("invite", "sending invitations"),
    ("answer", "oppositions and activations"),
    ("open", "opening spaces after six weeks"),
    ("directory", "registering professionals"),
    ("feed", "feeding the records"),
    ("converse", "writing messages"),
)
_PHASE_NAMES = tuple(name for name, _ in PHASES)
#: Notifications delivered per call while the outbox is emptied (one progress step each).
_DISPATCH_CHUNK = 50


def _quota(phase: str, count: int) -> int:
    """The units of work of one step: one per person, per professional, per conversation."""
    if phase == "directory":
        return len(_PROFESSIONALS)
    if phase == "converse":
        return 1
    return count


def demo_work(count: int) -> int:
    """The units of work :func:`seed_demo` reports for *count* people: the length of a
    progress bar that ends when the seeding does.

    .. versionadded:: 0.2
    """
    return sum(_quota(name, count) for name in _PHASE_NAMES)


@attrs.define
class DemoCheckpoint:
    """How far a :func:`seed_demo` run went: what a rerun needs to continue where an
    interrupted one stopped (no personal data: counts, the seed and the random state).

    :param today: the moment the seeding is dated from; a resumed run keeps it, so the
        same seed gives the same population.
    :param done: the steps finished.
    :param fed: the people whose record was fed (the one step that is not idempotent).
    :param rng_state: the random generator's state after the last step (or person) done.

    .. versionadded:: 0.2
    """

    count: int
    seed: int
    today: datetime
    done: list[str] = attrs.Factory(list)
    fed: int = 0
    rng_state: Any = None
    links: int = 0
    documents: int = 0
    threads: int = 0

    @property
    def finished(self) -> bool:
        """Whether every step is done."""
        return len(self.done) == len(_PHASE_NAMES)


def checkpoint_to_json(checkpoint: DemoCheckpoint) -> str:
    """*checkpoint* as JSON, to keep beside the database.

    .. versionadded:: 0.2
    """
    data = attrs.asdict(checkpoint)
    data["today"] = checkpoint.today.isoformat()
    data["version"] = 1
    return json.dumps(data)


def checkpoint_from_json(text: str) -> DemoCheckpoint:
    """The checkpoint :func:`checkpoint_to_json` wrote.

    :raises ValidationError: when *text* is not such a checkpoint.

    .. versionadded:: 0.2
    """
    try:
        data = json.loads(text)
        if data.pop("version") != 1:
            raise ValueError("unknown version")
        data["today"] = datetime.fromisoformat(data["today"])
        state = data.get("rng_state")
        if state is not None:
            version, internal, gauss = state
            data["rng_state"] = (version, tuple(internal), gauss)
        checkpoint = DemoCheckpoint(**data)
        if checkpoint.today.tzinfo is None or any(
            name not in _PHASE_NAMES for name in checkpoint.done
        ):
            raise ValueError("inconsistent checkpoint")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValidationError(
            "the demo checkpoint is not readable; delete it to start over"
        ) from exc
    return checkpoint


class _Run:
    """One seeding run, fresh or resumed: the steps in order, each reporting its work and
    saving the checkpoint when it ends (and after every person fed)."""

    def __init__(
        self,
        space: Space,
        checkpoint: DemoCheckpoint,
        progress: SeedProgress | None,
        save: Callable[[DemoCheckpoint], None] | None,
    ) -> None:
        clock = space.clock
        if not isinstance(clock, ManualClock):
            raise ValidationError("the demo needs a space opened with a ManualClock")
        self.space = space
        self.clock = clock
        self.cp = checkpoint
        self.progress = progress
        self.save_to = save
        self.operator = Actor.system("demo")
        self.rng = random.Random(checkpoint.seed)  # noqa: S311 - synthetic data
        if checkpoint.rng_state is not None:
            self.rng.setstate(checkpoint.rng_state)
        self.today = checkpoint.today
        self.reported = 0  # units reported in the current step

    def advance(self, count: int = 1) -> None:
        if self.progress is not None and count:
            self.progress.advance(count)
        self.reported += count

    def save(self) -> None:
        self.cp.rng_state = self.rng.getstate()
        if self.save_to is not None:
            self.save_to(self.cp)

    def step(self, name: str) -> bool:
        """Start step *name*; ``False`` (its work counted as done) when a previous run
        finished it."""
        self.reported = 0
        if name in self.cp.done:
            self.advance(_quota(name, self.cp.count))
            return False
        if self.progress is not None:
            self.progress.phase(dict(PHASES)[name])
        return True

    def end(self, name: str) -> None:
        # Saved first: the step is done whatever happens while the bar is drawn.
        self.cp.done.append(name)
        self.save()
        # Work a previous run did (or that has no item of its own) counts as done now.
        self.advance(max(0, _quota(name, self.cp.count) - self.reported))


def seed_demo(
    space: Space,
    count: int,
    *,
    seed: int = 0,
    progress: SeedProgress | None = None,
    checkpoint: DemoCheckpoint | None = None,
    save: Callable[[DemoCheckpoint], None] | None = None,
) -> DemoSummary:
    """Create *count* synthetic people in *space* and run them through the lifecycle.

    *space* must have been opened with a :class:`~monespace.ManualClock`: the invitations are
    dated seven weeks back so that the deadline run has spaces to open.

    :param progress: told of each step and of each unit of work as it is done
        (:func:`demo_work` units in all).
    :param checkpoint: resume the run this checkpoint describes (its *count*, *seed* and
        date win over the arguments): the steps it finished are skipped, the others are
        done again, which they tolerate (nobody is registered, linked, invited or answered
        twice), the records are fed from the first person not yet fed, and the demo
        conversations are written unless some already were. A person whose record was
        being fed at the very moment of the interruption may get that record twice.
    :param save: called with the checkpoint after each step and each person fed; keep it
        (as :func:`checkpoint_to_json`) to resume an interrupted run.

    .. versionchanged:: 0.2 *progress* reports every step; *checkpoint* and *save*.
    """
    # A run given a checkpoint looks before it acts: a previous run may have done any
    # part of the step it was in.
    resuming = checkpoint is not None
    if checkpoint is None:
        checkpoint = DemoCheckpoint(count, seed, space.clock.now())
    run = _Run(space, checkpoint, progress, save)
    count, today = checkpoint.count, checkpoint.today
    if not resuming:
        # Saved before any work: an interruption during the first step is resumable too.
        run.save()

    people = _register_people(run, resuming=resuming)
    if run.step("represent"):
        run.cp.links = _represent(run, people, resuming=resuming)
        run.end("represent")
    if run.step("invite"):
        run.clock.set(today - timedelta(days=50))
        space.accounts.invite_registered(run.operator, batch=50, progress=run.advance)
        run.end("invite")
    if run.step("answer"):
        _answer(run, people, resuming=resuming)
        run.end("answer")
    if run.step("open"):
        run.clock.set(today)
        space.accounts.tick()
        _deliver(run, count)
        run.end("open")
    run.clock.set(today)
    professionals = _register_professionals(space, run.operator)
    if run.step("directory"):
        run.advance(len(professionals))
        run.end("directory")
    if progress is not None:
        progress.phase("choosing the demo logins")
    logins = _demo_logins(space, run.operator, people, today.date())
    if run.step("feed"):
        _feed(run, people, logins, professionals)
        run.end("feed")
    if run.step("converse"):
        started = _threads_started(space, logins) if resuming else 0
        # The conversations are written together or, after an interruption among them,
        # left as they are: never twice.
        run.cp.threads = started or _converse(space, run.operator, logins, professionals)
        run.end("converse")
    return DemoSummary(
        patients=len(people),
        states=space.accounts.count_by_state(),
        representations=run.cp.links,
        logins=tuple(logins),
        professionals=tuple(professionals),
        documents=run.cp.documents,
        threads=run.cp.threads,
    )


def _register_people(run: _Run, *, resuming: bool) -> list[tuple[str, PatientIdentity]]:
    """Everyone, registered: on a resumed run, those a previous run registered are looked
    up by their NIR (the population is the same: same seed, same date)."""
    space, operator = run.space, run.operator
    identities = synthetic_identities(run.cp.count, seed=run.cp.seed, today=run.today.date())
    fresh = run.step("register")
    run.clock.set(run.today - timedelta(days=50))
    people: list[tuple[str, PatientIdentity]] = []
    if not resuming:
        for patient in space.accounts.register_patients(operator, identities):
            people.append((patient.id, patient.identity))
            run.advance()
        run.end("register")
        return people
    missing: list[tuple[int, PatientIdentity]] = []
    slots: list[tuple[str, PatientIdentity] | None] = []
    for identity in identities:
        try:
            patient = space.accounts.find_by_nir(operator, identity.ins.matricule)
        except NotFoundError:
            missing.append((len(slots), identity))
            slots.append(None)
            continue
        slots.append((patient.id, identity))
        if fresh:
            run.advance()
    registered = space.accounts.register_patients(operator, (i for _, i in missing))
    for (position, _), patient in zip(missing, registered, strict=True):
        slots[position] = (patient.id, patient.identity)
        if fresh:
            run.advance()
    if fresh:
        run.end("register")
    people = [slot for slot in slots if slot is not None]
    assert len(people) == len(slots)
    return people


def _represent(run: _Run, people: list[tuple[str, PatientIdentity]], *, resuming: bool) -> int:
    """Attach each minor to an adult drawn at random; on a resumed run a minor who already
    has a representative keeps them (the same draw is made, so what follows is the same)."""
    space, today = run.space, run.today.date()
    adults = [(pid, i) for pid, i in people if _age(i, today) >= 25]
    links = 0
    for pid, identity in people:
        if _age(identity, today) < space.accounts.lifecycle.majority_age and adults:
            parent_id, _ = run.rng.choice(adults)
            if not (resuming and _has_guardian(space, pid)):
                space.accounts.add_representative(
                    run.operator, pid, parent_id, RepresentationKind.LEGAL_GUARDIAN
                )
            links += 1
        run.advance()
    return links


def _answer(run: _Run, people: list[tuple[str, PatientIdentity]], *, resuming: bool) -> None:
    """A few object, some activate; on a resumed run, whoever already answered is left."""
    space, operator = run.space, run.operator
    run.clock.set(run.today - timedelta(days=45))
    for pid, identity in people:
        draw = run.rng.random()
        acted = resuming and space.accounts.account(operator, pid).state is not AccountState.INVITED
        if acted:
            pass
        elif draw < OPPOSITION_RATE:
            space.accounts.oppose(**_proof(space, operator, pid, identity))
        elif draw < OPPOSITION_RATE + ACTIVATION_RATE and not _has_guardian(space, pid):
            space.accounts.activate(**_proof(space, operator, pid, identity))
        run.advance()


def _deliver(run: _Run, count: int) -> None:
    """Empty the outbox, a chunk at a time (the invitations and the opening notices)."""
    budget = 10 * count + 100
    while budget > 0:
        report = run.space.dispatch(limit=min(_DISPATCH_CHUNK, budget))
        handled = report.sent + report.retrying + report.dead
        budget -= _DISPATCH_CHUNK
        # About one notification per person: the step's quota, capped so that the bar
        # never runs ahead of the step.
        run.advance(min(handled, max(0, count - run.reported)))
        if handled == 0:
            return


def _age(identity: PatientIdentity, today: date) -> int:
    traits = identity.ins.traits
    assert traits is not None
    born = traits.birth_date
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _has_guardian(space: Space, patient_id: str) -> bool:
    links = space.accounts.representatives_of(Actor.system("demo"), patient_id)
    return any(link.ended_at is None for link in links)


def _proof(
    space: Space, operator: Actor, patient_id: str, identity: PatientIdentity
) -> dict[str, Any]:
    traits = identity.ins.traits
    assert traits is not None
    assert identity.vitale_serial is not None
    return {
        "nir": identity.ins.matricule.value,
        "code": space.accounts.issue_code(operator, patient_id, send=False),
        "vitale_serial": identity.vitale_serial,
        "birth_date": traits.birth_date,
    }


# --- the directory and the logins -------------------------------------------------------------

#: (RPPS prefix, name, profession, specialty, role). Valid RPPS numbers (Luhn key appended).
_PROFESSIONALS = (
    ("1000311234", "Dr Claire Martin", "10", "SM26", "treating_doctor"),
    ("1000322345", "Marc Lefèvre", "21", None, "care_team"),
    ("1000333456", "Dr Sophie Bernard", "10", "SM04", "specialist"),
    ("1000344567", "Inès Moreau", "60", None, "care_team"),
    ("1000355678", "Dr Hugo Petit", "10", "SM26", "unauthorised"),
)


def _register_professionals(space: Space, operator: Actor) -> list[DemoProfessional]:
    registered = []
    for prefix, name, profession, specialty, role in _PROFESSIONALS:
        rpps = RPPS.build(prefix).value
        space.access.register_professional(
            operator,
            Professional(
                rpps,
                profession,
                name,
                specialty=specialty,
                mssante=f"{rpps}@demo.mssante.fr",
            ),
        )
        registered.append(DemoProfessional(rpps, name, profession, role))
    return registered


def _login_of(
    space: Space, operator: Actor, role: str, pid: str, identity: PatientIdentity, **extra: Any
) -> DemoLogin:
    proof = _proof(space, operator, pid, identity)
    code = proof.pop("code")
    return DemoLogin(role, pid, code=code if role == "activation" else None, **proof, **extra)


def _ensure_active(space: Space, operator: Actor, pid: str, identity: PatientIdentity) -> bool:
    account = space.accounts.account(operator, pid)
    if account.state is AccountState.ACTIVE:
        return True
    if not account.is_open:
        return False
    space.accounts.activate(**_proof(space, operator, pid, identity))
    return True


def _demo_logins(  # noqa: PLR0912 - three kinds of login, each with its fallbacks
    space: Space, operator: Actor, people: list[tuple[str, PatientIdentity]], today: date
) -> list[DemoLogin]:
    """A patient with an active space, a parent who represents a child, and a space that
    opened by itself (to try the activation)."""
    logins: list[DemoLogin] = []
    majority = space.accounts.lifecycle.majority_age
    adults = [
        (pid, i)
        for pid, i in people
        if _age(i, today) >= majority and not _has_guardian(space, pid)
    ]
    by_id = dict(people)
    parent: tuple[str, PatientIdentity, list[str]] | None = None
    for pid, _identity in people:
        if _age(_identity, today) >= majority:
            continue
        for link in space.accounts.representatives_of(operator, pid):
            if link.ended_at is None and link.representative_id in by_id:
                rep = link.representative_id
                if _ensure_active(space, operator, rep, by_id[rep]):
                    parent = (rep, by_id[rep], [pid])
                break
        if parent is not None:
            break
    for pid, identity in adults:
        if parent is not None and pid == parent[0]:
            continue
        if _ensure_active(space, operator, pid, identity):
            logins.append(_login_of(space, operator, "patient", pid, identity))
            break
    if parent is not None:
        rep, identity, children = parent
        represented = tuple(space.accounts.spaces_of(Actor.patient(rep))[1:]) or tuple(children)
        logins.append(
            _login_of(space, operator, "representative", rep, identity, represents=represented)
        )
    taken = {login.patient_id for login in logins}
    for pid, identity in adults:
        if pid in taken:
            continue
        if space.accounts.account(operator, pid).state is AccountState.CREATED:
            logins.append(_login_of(space, operator, "activation", pid, identity))
            break
    return logins


# --- records ----------------------------------------------------------------------------------


def _pdf(lines: list[str]) -> bytes:
    """A small valid one-page PDF showing *lines* (Latin-1 text, Helvetica)."""
    text = (
        "BT /F1 12 Tf 56 780 Td 16 TL "
        + " ".join(
            "({}) '".format(line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)"))
            for line in lines
        )
        + " ET"
    )
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _cda(
    identity: PatientIdentity,
    *,
    code: str,
    display: str,
    title: str,
    when: datetime,
    author: str,
    body: str,
) -> bytes:
    """A CDA R2 document about *identity*, by the professional *author* (an RPPS)."""
    stamp = when.strftime("%Y%m%d%H%M%S+0000")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">\n'
        '<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>\n'
        f'<id root="1.2.250.1.213.1.1.9" extension={quoteattr(_unique(identity, code, when))}/>\n'
        f'<code code="{code}" codeSystem="{LOINC}" displayName={quoteattr(display)}/>\n'
        f"<title>{escape(title)}</title>\n"
        f'<effectiveTime value="{stamp}"/>\n'
        '<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>\n'
        '<languageCode code="fr-FR"/>\n'
        "<recordTarget><patientRole>"
        f'<id root="{identity.ins.oid}" extension="{identity.ins.matricule.value}"/>'
        "</patientRole></recordTarget>\n"
        f'<author><time value="{stamp}"/><assignedAuthor>'
        f'<id root="1.2.250.1.71.4.2.1" extension="8{author}"/>'
        "</assignedAuthor></author>\n"
        f"<component>{body}</component>\n"
        "</ClinicalDocument>\n"
    ).encode()


def _unique(identity: PatientIdentity, code: str, when: datetime) -> str:
    return f"demo-{identity.ins.matricule.value[-6:]}-{code}-{when:%Y%m%d%H%M}"


def _structured(title: str, rows: list[tuple[str, str, str]]) -> str:
    cells = "".join(
        f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(c)}</td></tr>" for a, b, c in rows
    )
    return (
        "<structuredBody><component><section>"
        f"<title>{escape(title)}</title><text><table><thead><tr><th>Examen</th>"
        f"<th>Résultat</th><th>Valeurs de référence</th></tr></thead><tbody>{cells}</tbody>"
        "</table></text></section></component></structuredBody>"
    )


def _non_xml(pdf: bytes) -> str:
    encoded = base64.b64encode(pdf).decode()
    return (
        '<nonXMLBody><text mediaType="application/pdf" representation="B64">'
        f"{encoded}</text></nonXMLBody>"
    )


def _rich_record(  # noqa: PLR0917
    space: Space,
    pid: str,
    identity: PatientIdentity,
    holder: Actor,
    pros: dict[str, DemoProfessional],
    rng: random.Random,
) -> int:
    """A full record: documents of the main families, a masked one, a result hidden until
    its announcement, the profil médical, measures, a médecin traitant and a care team."""
    now = space.clock.now()
    doctor = Actor(ActorKind.PROFESSIONAL, pros["treating_doctor"].rpps)
    specialist = Actor(ActorKind.PROFESSIONAL, pros["specialist"].rpps)
    space.access.declare_treating_doctor(holder, pid, doctor.id)
    # The specialist who deposits the results takes part in the care: feeding a record
    # needs that standing (L1111-17 III).
    space.access.join_care_team(specialist, pid)
    for pro in pros.values():
        if pro.role == "care_team" and pro.profession != "10":
            space.access.join_care_team(Actor(ActorKind.PROFESSIONAL, pro.rpps), pid)
    record = space.record
    consult = now - timedelta(days=rng.randrange(20, 60))
    letter = _pdf(
        [
            "Compte rendu de consultation (document de demonstration)",
            f"Le {consult:%d/%m/%Y} - {pros['treating_doctor'].name}",
            "Motif : suivi annuel. Examen clinique sans particularite.",
            "Donnees synthetiques : aucune personne reelle.",
        ]
    )
    record.add_document(
        doctor,
        pid,
        _cda(
            identity,
            code="11488-4",
            display="Compte rendu de consultation",
            title="Compte rendu de consultation",
            when=consult,
            author=doctor.id,
            body=_non_xml(letter),
        ),
        media_type="text/xml",
    )
    biology = now - timedelta(days=rng.randrange(5, 20))
    rows = [
        ("Hémoglobine", f"{rng.uniform(12.5, 15.5):.1f} g/dL", "12,0 - 16,0"),
        ("Glycémie à jeun", f"{rng.uniform(0.8, 1.05):.2f} g/L", "0,70 - 1,10"),
        ("Cholestérol LDL", f"{rng.uniform(0.9, 1.6):.2f} g/L", "< 1,60"),
    ]
    record.add_document(
        specialist,
        pid,
        _cda(
            identity,
            code="11502-2",
            display="CR d'examens biologiques",
            title="Bilan sanguin",
            when=biology,
            author=specialist.id,
            body=_structured("Résultats", rows),
        ),
        media_type="text/xml",
    )
    record.add_document(
        specialist,
        pid,
        _cda(
            identity,
            code="11502-2",
            display="CR d'examens biologiques",
            title="Résultat à annoncer en consultation",
            when=now - timedelta(days=2),
            author=specialist.id,
            body=_structured("Résultats", [("Examen spécialisé", "voir consultation", "-")]),
        ),
        media_type="text/xml",
        hidden_from_patient=True,
    )
    record.add_document(
        doctor,
        pid,
        _pdf(["Ordonnance (demonstration)", "Paracetamol 1 g : 1 comprime si douleur, max 3/j"]),
        media_type="application/pdf",
        type_code=Code("57833-6", LOINC, "Prescription de médicaments"),
        title="Ordonnance",
        created_at=consult,
    )
    record.add_document(
        doctor,
        pid,
        b"Certificat de vaccination (demonstration) : vaccin contre la grippe saisonniere.\n",
        media_type="text/plain",
        type_code=Code("87273-9", LOINC, "Note de vaccination"),
        title="Vaccination contre la grippe",
    )
    masked = record.add_document(
        holder,
        pid,
        b"Notes personnelles (demonstration) : questions a poser au prochain rendez-vous.\n",
        media_type="text/plain",
        type_code=Code("DOCPAT01", TRE_A05_TYPE, "Document du patient"),
        title="Mes notes personnelles",
    )
    record.mask(holder, masked.id)
    profile = space.profile
    profile.add(holder, pid, "allergy", "Pénicilline", details="Urticaire en 2015")
    profile.add(holder, pid, "medical_history", "Asthme", started=date(2001, 9, 1))
    profile.add(holder, pid, "treatment", "Salbutamol", details="En cas de crise")
    profile.add(holder, pid, "vaccination", "Grippe saisonnière", started=now.date())
    weight = rng.uniform(55, 90)
    for weeks in range(6, 0, -1):
        at = now - timedelta(weeks=weeks)
        space.measures.add(
            holder, pid, "weight", round(weight + rng.uniform(-1, 1), 1), measured_at=at
        )
    space.measures.add(holder, pid, "blood_pressure", 128, second=82)
    # The agenda: a follow-up the médecin traitant booked, and a flu shot three months ago,
    # done (fixed dates: drawing from rng here would change every draw that follows).
    follow_up = now + timedelta(days=14)
    space.agenda.add(
        doctor,
        pid,
        kind="appointment",
        starts_at=follow_up,
        ends_at=follow_up + timedelta(minutes=20),
        title="Consultation de suivi",
        place="Cabinet médical",
        professional=doctor.id,
    )
    space.agenda.add(
        holder,
        pid,
        kind="vaccination",
        starts_at=now - timedelta(days=90),
        title="Vaccin contre la grippe",
        place="Pharmacie",
        status="done",
    )
    _prevention_agenda(space, pid, holder, doctor)
    return 7


#: The kind of agenda event that answers a reminder of each family.
_EVENT_KINDS = {
    Family.VACCINATION: ("vaccination", "Vaccination"),
    Family.CHILD_EXAM: ("examination", "Examen de suivi de l'enfant"),
    Family.MT_DENTS: ("examination", "Examen bucco-dentaire M'T dents"),
    Family.BILAN_PREVENTION: ("bilan_prevention", "Bilan de prévention"),
    Family.SCREENING: ("screening", "Dépistage"),
}
#: At most this many late reminders are recorded as done, per person.
_DONE_ACTS = 3


def _prevention_agenda(space: Space, pid: str, holder: Actor, doctor: Actor) -> None:
    """The agenda's answers to the prevention reminders, so that they show every state.

    Among the reminders that are late (overdue or due, oldest first), every other one was in
    fact done when it fell due: a done event naming the reminder records it (up to
    :data:`_DONE_ACTS`). The first due one left is booked with the médecin traitant in three
    weeks; the others stay overdue or due. No draw from the random generator: the draws that
    follow stay the same.
    """
    now = space.clock.now()
    late = sorted(
        (
            r
            for r in space.agenda.reminders(holder, pid)
            if r.status in (ReminderStatus.OVERDUE, ReminderStatus.DUE) and r.family in _EVENT_KINDS
        ),
        key=lambda r: (r.due_from, r.id),
    )
    done = late[::2][:_DONE_ACTS]
    for reminder in done:
        on = datetime.combine(reminder.due_from, time(10), PARIS)
        if on >= now:
            continue
        kind, title = _EVENT_KINDS[reminder.family]
        space.agenda.add(
            holder,
            pid,
            kind=kind,
            starts_at=on,
            title=title,
            reminder_id=reminder.id,
            status="done",
        )
    due = [r for r in late if r.status is ReminderStatus.DUE and r not in done]
    if due:
        kind, title = _EVENT_KINDS[due[0].family]
        booked = datetime.combine(now.date() + timedelta(days=21), time(9), PARIS)
        space.agenda.add(
            doctor,
            pid,
            kind=kind,
            starts_at=booked,
            ends_at=booked + timedelta(minutes=30),
            title=title,
            place="Cabinet médical",
            professional=doctor.id,
            reminder_id=due[0].id,
        )


def _feed(
    run: _Run,
    people: list[tuple[str, PatientIdentity]],
    logins: list[DemoLogin],
    professionals: list[DemoProfessional],
) -> None:
    """The health insurer feeds each open space with a reimbursement summary; the demo
    logins' spaces (and every fiftieth) get a full record. The checkpoint is saved after
    each person, so a resumed run starts with the first person not yet fed."""
    space, operator = run.space, run.operator
    pros: dict[str, DemoProfessional] = {}
    for pro in professionals:
        pros.setdefault(pro.role, pro)
    rich: dict[str, Actor] = {}
    for login in logins:
        if login.role in ("patient", "representative"):
            rich[login.patient_id] = Actor.patient(login.patient_id)
        for child in login.represents:
            rich[child] = Actor(ActorKind.REPRESENTATIVE, login.patient_id, on_behalf_of=child)
    run.advance(run.cp.fed)
    for number, (pid, identity) in enumerate(people):
        if number < run.cp.fed:
            continue
        if space.accounts.account(operator, pid).is_open:
            space.record.add_document(
                operator,
                pid,
                _pdf(["Releve de remboursements (demonstration)", "Consultation : 30,00 EUR"]),
                media_type="application/pdf",
                type_code=Code("REMB", TRE_A05_TYPE, "Remboursements"),
                title="Relevé de remboursements",
            )
            run.cp.documents += 1
            holder = rich.get(pid)
            if holder is None and number % 50 == 7:
                holder = Actor.patient(pid)
            if holder is not None:
                run.cp.documents += _rich_record(space, pid, identity, holder, pros, run.rng)
        run.cp.fed = number + 1
        run.save()
        run.advance()


# --- secure messaging -------------------------------------------------------------------------


def _threads_started(space: Space, logins: list[DemoLogin]) -> int:
    """The threads a previous run started in the demo patient's mailbox."""
    patient = next((x for x in logins if x.role == "patient"), None)
    if patient is None:
        return 0
    holder = Actor.patient(patient.patient_id)
    return space.messaging.inbox(holder, patient.patient_id, archived=None).total


def _converse(
    space: Space,
    operator: Actor,
    logins: list[DemoLogin],
    professionals: list[DemoProfessional],
) -> int:
    """A few conversations in the demo logins' mailboxes: the médecin traitant sends the
    demo patient a letter as a PDF attachment (and the patient replies), the specialist
    writes a note closed to replies, and the médecin traitant writes to the represented
    child. Each message is announced in the outbox ("you have a new message"), never its
    content."""
    pros: dict[str, DemoProfessional] = {}
    for pro in professionals:
        pros.setdefault(pro.role, pro)
    if "treating_doctor" not in pros or "specialist" not in pros:
        return 0
    doctor = Actor(ActorKind.PROFESSIONAL, pros["treating_doctor"].rpps)
    specialist = Actor(ActorKind.PROFESSIONAL, pros["specialist"].rpps)
    messaging = space.messaging
    clock = space.clock
    assert isinstance(clock, ManualClock)
    threads = 0

    def later(seconds: int) -> None:
        # Seconds, not hours: the served demo runs on the wall clock, and the messages must
        # not look as if they came from the future.
        clock.set(clock.now() + timedelta(seconds=seconds))

    patient = next((x for x in logins if x.role == "patient"), None)
    if patient is not None and space.accounts.account(operator, patient.patient_id).is_open:
        pid = patient.patient_id
        letter = _pdf(
            [
                "Courrier de liaison (document de demonstration)",
                f"{pros['treating_doctor'].name}",
                "Suite a notre consultation, vous trouverez ci-joint le courrier",
                "destine a votre cardiologue. Donnees synthetiques.",
            ]
        )
        first = messaging.start_thread(
            doctor,
            pid,
            subject="Votre courrier pour le cardiologue",
            body=(
                "Bonjour,\n\nVous trouverez ci-joint le courrier à remettre au cardiologue. "
                "Vous pouvez l'enregistrer dans vos documents.\n\nBien cordialement,\n"
                f"{pros['treating_doctor'].name}"
            ),
            attachments=[NewAttachment("courrier-cardiologue.pdf", "application/pdf", letter)],
            ins_qualified=True,
        )
        later(20)
        messaging.reply(
            Actor.patient(pid),
            first.thread_id,
            body="Merci docteur, je prends rendez-vous cette semaine.",
        )
        later(20)
        messaging.reply(
            doctor,
            first.thread_id,
            body="Parfait. N'hésitez pas à me recontacter si besoin.",
        )
        later(20)
        messaging.start_thread(
            specialist,
            pid,
            subject="Vos résultats de bilan sanguin",
            body=(
                "Bonjour,\n\nVos résultats de bilan sanguin sont dans votre dossier. Ils sont "
                "normaux. Ce message ne nécessite pas de réponse.\n\n"
                f"{pros['specialist'].name}"
            ),
            close=True,
        )
        threads += 2
    parent = next((x for x in logins if x.role == "representative"), None)
    if parent is not None:
        for child in parent.represents[:1]:
            if not space.accounts.account(operator, child).is_open:
                continue
            later(20)
            messaging.start_thread(
                doctor,
                child,
                subject="Rappel de vaccination",
                body=(
                    "Bonjour,\n\nLe rappel de vaccination de votre enfant est à prévoir dans "
                    "le mois. Prenez rendez-vous au cabinet.\n\n"
                    f"{pros['treating_doctor'].name}"
                ),
            )
            threads += 1
    return threads
