"""``space.access``: professionals, the patient's controls, emergency access, the access
history the patient reads, and explanations of every decision."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import attrs

from .._ids import new_id
from ..actors import AccessMode, Actor, ActorKind
from ..audit import DEFAULT_SHARD, AuditEvent, Outcome, events_from_rows
from ..errors import (
    IdentifierError,
    NotFoundError,
    UnknownProfessionalError,
    ValidationError,
)
from ..identities import (
    Professional,
    professional_from_row,
    professional_row,
    read_contact,
    read_identity,
)
from ..identity import NIR, RPPS
from ..policy import Action, Decision, Facts, ProfessionalFacts, Resource, decide
from ..record import AuthorKind
from ..storage import DocumentRow
from ._facts import AccessFacts
from ._mapping import emergency_row, grant_row, grants_from_rows, settings_from_row, settings_row
from ._model import AccessSettings, EmergencySession, Grant, GrantKind
from ._wording import HOLDER_VIEWS, sentence, third_person

if TYPE_CHECKING:
    from .._unit import Core, Unit

__all__ = ["AccessService", "Explanation", "FirstAccessNotifier", "HistoryEntry"]

_JUSTIFICATION = "emergency-justification"
_MIN_JUSTIFICATION = 10


@attrs.frozen
class Explanation:
    """Why the policy decides as it does for one actor, action and resource."""

    allowed: bool
    rule: str
    facts: Facts


@attrs.frozen
class HistoryEntry:
    """One line of the access history, in plain terms, for the patient.

    :param who: "vous", "votre représentant légal", "Dr ... (Médecin)", "Assurance Maladie"...
    :param what: what was done, in words ("a consulté un document", "a ajouté un document").
    :param mode: ``normal``, ``emergency`` (bris de glace) or ``regulation`` (SAMU).
    :param seq: the event's position in the audit trail: pass the last one seen as
        ``after_seq`` to read the next page.
    """

    at: datetime
    who: str
    actor_kind: str
    what: str
    mode: str
    outcome: str
    target_id: str | None
    #: Where the entry stands in the trail: pass it as ``history(after_seq=...)`` to read the
    #: next page.
    seq: int = 0
    #: The audited action's name (``"document.read"``), to filter on; never shown as such.
    action: str = ""
    #: The whole line as a French sentence ("Vous vous êtes connecté.").
    sentence: str = ""
    #: The holder, or their legal representative, consulted the space: a page view the
    #: history they read leaves out by default.
    holder_view: bool = False


#: Reads that count as "a professional read the record" (first-access notices).
_READS = frozenset({Action.DOCUMENT_READ, Action.DOCUMENT_SEARCH, Action.PATIENT_READ})


class FirstAccessNotifier:
    """Tells the holder the first time a professional reads their record (a configurable
    feature: on by default, and unconfirmed for the real service).

    The space registers it as a subscriber of the units of work (:attr:`Core.subscribers`):
    it sees each audit event as it is appended, so the notice is queued in the transaction
    of the read itself, and commits or rolls back with it. ``mark_seen`` makes it once per
    professional and patient.
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def __call__(self, unit: Unit, event: AuditEvent) -> None:
        patient_id = event.patient_id
        if (
            event.actor_kind is not ActorKind.PROFESSIONAL
            or event.outcome is not Outcome.SUCCESS
            or event.action not in _READS
            or patient_id is None
            or not unit.tx.access.mark_seen(patient_id, event.actor_id, unit.now)
        ):
            return
        settings = settings_from_row(unit.tx.access.settings(patient_id), patient_id)
        contact = read_contact(self._core, unit.tx, patient_id)
        if not settings.notify_first_access or contact is None or not contact.email:
            return
        unit.notify(
            channel="email",
            recipient=contact.email,
            subject="Un nouveau professionnel a consulté votre dossier",
            body=(
                "Un professionnel de santé a consulté votre dossier médical pour la première "
                "fois.\nVous pouvez voir qui et quand dans l'historique des accès, et bloquer "
                "un professionnel dans vos paramètres.\n"
            ),
            kind="first-access",
            patient_id=patient_id,
        )


class AccessService:
    """``space.access``: who may read a record, under the patient's control.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    # --- the directory ------------------------------------------------------------------------

    def register_professional(self, actor: Actor, professional: Professional) -> Professional:
        """Add or update a professional in the directory (the RPPS). Operator only.

        :raises InvalidRPPSError: when the RPPS number is invalid.
        """
        checked = attrs.evolve(professional, rpps=RPPS.parse(professional.rpps).value)
        with self._core.unit() as unit:
            resource = Resource(None, "professional", checked.rpps)
            decision = unit.authorize(actor, Action.DIRECTORY_MANAGE, resource)
            unit.tx.access.put_professional(professional_row(checked))
            unit.record(actor, Action.DIRECTORY_MANAGE, resource, decision)
            return checked

    def professional(self, rpps: str) -> Professional:
        """A professional of the directory (public data: the RPPS is a public directory).

        :raises UnknownProfessionalError: when the directory does not know them.
        """
        with self._core.storage.read() as tx:
            found = professional_from_row(tx.access.professional(rpps))
        if found is None:
            raise UnknownProfessionalError()
        return found

    # --- the professional's side ------------------------------------------------------------

    def find_patient(self, actor: Actor, *, nir: str, birth_date: date) -> str:
        """The id of the space of the person in front of a professional, from their carte
        Vitale (NIR and birth date), as a professional's software does through the INSi
        teleservice. It reveals no health data; reading the record is decided separately.

        :raises NotFoundError: when nobody matches both, or the NIR is malformed (the same
            answer, so the lookup is no oracle for birth dates).
        :raises UnknownProfessionalError: when the actor is not a professional of the
            directory.
        :raises AccessDeniedError: when the actor may not look patients up.
        """
        with self._core.unit() as unit:
            resource = Resource(None, "patient-lookup")
            decision = unit.authorize(actor, Action.PATIENT_LOOKUP, resource)
            try:
                value = NIR.parse(nir).value
            except IdentifierError:
                value = None
            index = (
                self._core.keyring.blind_index(unit.tx, "nir", value, unit.now) if value else None
            )
            row = unit.tx.patients.find_by_nir_index(index) if index else None
            identity = read_identity(self._core, unit.tx, row.id) if row else None
            traits = identity.ins.traits if identity else None
            if row is None or traits is None or traits.birth_date != birth_date:
                raise NotFoundError("nobody matches this carte Vitale")
            unit.record(actor, Action.PATIENT_LOOKUP, Resource(row.id, "patient", row.id), decision)
            return row.id

    def join_care_team(self, actor: Actor, patient_id: str) -> Grant:
        """A professional declares taking part in the patient's care: as a care-team member
        they are deemed authorised, unless the patient objects or blocks them (R1111-46).
        The patient sees it in their history and can block them at any time."""
        if actor.kind is not ActorKind.PROFESSIONAL:
            raise ValidationError("only a professional joins a care team")
        return self._grant(
            actor, patient_id, actor.id, kind=GrantKind.CARE_TEAM, event="access.care_team"
        )

    def break_glass(
        self,
        actor: Actor,
        patient_id: str,
        *,
        justification: str,
        mode: AccessMode = AccessMode.EMERGENCY,
    ) -> EmergencySession:
        """Open an emergency access (bris de glace, or SAMU regulation) to a record.

        Refused when the patient objected to emergency access. The justification is required
        and kept (sealed). The access lasts ``Settings.access.emergency_duration``; the
        professional then reads with ``Actor(..., mode=mode)``. The patient and their
        médecin traitant are told afterwards (R1111-48), without any health content.

        :raises AccessDeniedError: when the patient objected, or the actor may not.
        :raises ValidationError: when the justification is missing or the mode is normal.
        """
        if mode is AccessMode.NORMAL:
            raise ValidationError("an emergency access is in emergency or regulation mode")
        if len(justification.strip()) < _MIN_JUSTIFICATION:
            raise ValidationError(
                f"an emergency access needs a written justification "
                f"(at least {_MIN_JUSTIFICATION} characters)"
            )
        emergency_actor = attrs.evolve(actor, mode=mode)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "emergency")
            decision = unit.authorize(emergency_actor, Action.EMERGENCY_ACCESS, resource)
            duration = self._core.settings.access.emergency_duration
            session = EmergencySession(
                new_id(), patient_id, actor.id, mode, unit.now, unit.now + duration
            )
            sealed = self._core.keyring.seal(
                unit.tx, patient_id, _JUSTIFICATION, session.id, justification.encode()
            )
            unit.tx.access.add_emergency(emergency_row(session), sealed)
            unit.record(
                emergency_actor,
                "access.emergency",
                Resource(patient_id, "emergency", session.id),
                decision,
                purpose="ETREAT",
            )
            self._tell_about_emergency(unit, patient_id)
            return session

    def _tell_about_emergency(self, unit: Unit, patient_id: str) -> None:
        body = (
            "Un professionnel de santé a accédé à votre dossier médical en situation "
            "d'urgence.\nConsultez l'historique des accès dans Mon espace santé.\n"
        )
        contact = read_contact(self._core, unit.tx, patient_id)
        if contact is not None and contact.email:
            unit.notify(
                channel="email",
                recipient=contact.email,
                subject="Accès d'urgence à votre dossier médical",
                body=body,
                kind="emergency-access",
                patient_id=patient_id,
            )
        blocked = set(unit.tx.access.blocked(patient_id))
        spared = self._core.settings.access.block_spares_treating_doctor
        for grant in grants_from_rows(unit.tx.access.grants(patient_id)):
            # A médecin traitant the patient blocked is told nothing about their record,
            # unless the policy keeps blocks from reaching the médecin traitant.
            if grant.professional_id in blocked and not spared:
                continue
            if grant.kind is GrantKind.TREATING_DOCTOR and grant.active(unit.now):
                doctor = unit.tx.access.professional(grant.professional_id)
                if doctor is not None and doctor.mssante:
                    unit.notify(
                        channel="mssante",
                        recipient=doctor.mssante,
                        subject="Accès d'urgence au dossier d'un de vos patients",
                        body="Un accès d'urgence a eu lieu au dossier d'un de vos patients.\n",
                        kind="emergency-access-doctor",
                        patient_id=patient_id,
                    )

    # --- the patient's controls ---------------------------------------------------------------

    def authorise(
        self, actor: Actor, patient_id: str, rpps: str, *, until: datetime | None = None
    ) -> Grant:
        """Authorise a professional to read the record, permanently or until *until*.

        :raises UnknownProfessionalError: when no professional has this RPPS number in the
            directory.
        """
        return self._grant(
            actor,
            patient_id,
            rpps,
            kind=GrantKind.AUTHORISED,
            event="access.authorise",
            until=until,
        )

    def declare_treating_doctor(self, actor: Actor, patient_id: str, rpps: str) -> Grant:
        """Declare the médecin traitant (a physician); a previous one stops being it."""
        with self._core.storage.read() as tx:
            doctor = tx.access.professional(rpps)
        if doctor is not None and doctor.profession != "10":
            raise ValidationError("the médecin traitant is a physician")
        return self._grant(
            actor, patient_id, rpps, kind=GrantKind.TREATING_DOCTOR, event="access.treating_doctor"
        )

    def grant_extended_rights(self, actor: Actor, patient_id: str, rpps: str) -> Grant:
        """Give a professional the same rights as the médecin traitant."""
        return self._grant(
            actor, patient_id, rpps, kind=GrantKind.EXTENDED, event="access.authorise"
        )

    def revoke(self, actor: Actor, patient_id: str, rpps: str) -> int:
        """End every grant of a professional on the record, at once. Returns how many.

        :raises InvalidRPPSError: when the RPPS number is invalid.
        """
        # Normalised like everywhere else: "1000 0000025" (as printed on a CPS card) is the
        # same professional as "10000000025".
        rpps = RPPS.parse(rpps).value
        with self._core.unit() as unit:
            resource = Resource(patient_id, "grant", rpps)
            decision = unit.authorize(actor, Action.ACCESS_MANAGE, resource)
            ended = 0
            for grant in unit.tx.access.grants(patient_id, rpps):
                if grant.ended_at is None:
                    unit.tx.access.put_grant(attrs.evolve(grant, ended_at=unit.now))
                    ended += 1
            unit.record(actor, "access.revoke", resource, decision)
            return ended

    def block(self, actor: Actor, patient_id: str, rpps: str) -> None:
        """Block a professional: no access at all, with immediate effect, whatever the grants.

        :raises InvalidRPPSError: when the RPPS number is invalid.
        """
        # Normalised (and checked) first: a block stored under "1000 0000025" (with spaces)
        # would match no professional, and the patient would believe them blocked.
        rpps = RPPS.parse(rpps).value
        with self._core.unit() as unit:
            resource = Resource(patient_id, "block", rpps)
            decision = unit.authorize(actor, Action.ACCESS_MANAGE, resource)
            unit.tx.access.block(patient_id, rpps, unit.now)
            unit.record(actor, "access.block", resource, decision)

    def unblock(self, actor: Actor, patient_id: str, rpps: str) -> bool:
        """Lift a block. Returns whether there was one."""
        rpps = RPPS.parse(rpps).value  # as in block(): blocks are stored normalised
        with self._core.unit() as unit:
            resource = Resource(patient_id, "block", rpps)
            decision = unit.authorize(actor, Action.ACCESS_MANAGE, resource)
            lifted = unit.tx.access.unblock(patient_id, rpps)
            unit.record(actor, "access.unblock", resource, decision)
            return lifted

    def settings(self, actor: Actor, patient_id: str) -> AccessSettings:
        """The patient's access settings (the defaults until changed)."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "access-settings")
            decision = unit.authorize(actor, Action.ACCESS_READ, resource)
            found = settings_from_row(unit.tx.access.settings(patient_id), patient_id)
            unit.record(actor, Action.ACCESS_READ, resource, decision)
            return found

    def update_settings(
        self,
        actor: Actor,
        patient_id: str,
        *,
        object_all: bool | None = None,
        object_emergency: bool | None = None,
        mask_all: bool | None = None,
        notify_first_access: bool | None = None,
        object_research: bool | None = None,
    ) -> AccessSettings:
        """Change the patient's access settings; the change applies to the next request.

        :param object_research: object to (``True``) or accept again (``False``) the use of
            the record for research extracts (:attr:`AccessSettings.object_research`).

        .. versionchanged:: 0.2
           ``object_research``.
        """
        changes = {
            name: value
            for name, value in {
                "object_all": object_all,
                "object_emergency": object_emergency,
                "mask_all": mask_all,
                "notify_first_access": notify_first_access,
                "object_research": object_research,
            }.items()
            if value is not None
        }
        with self._core.unit() as unit:
            resource = Resource(patient_id, "access-settings")
            decision = unit.authorize(actor, Action.ACCESS_MANAGE, resource)
            current = settings_from_row(unit.tx.access.settings(patient_id), patient_id)
            updated = AccessSettings(
                patient_id,
                changes.get("object_all", current.object_all),
                changes.get("object_emergency", current.object_emergency),
                changes.get("mask_all", current.mask_all),
                changes.get("notify_first_access", current.notify_first_access),
                changes.get("object_research", current.object_research),
            )
            unit.tx.access.put_settings(settings_row(updated))
            unit.record(actor, "access.settings", resource, decision)
            return updated

    def authorisations(self, actor: Actor, patient_id: str) -> list[Grant]:
        """The grants of a record, current and past: the list of professionals with access."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "grant")
            decision = unit.authorize(actor, Action.ACCESS_READ, resource)
            grants = grants_from_rows(unit.tx.access.grants(patient_id))
            unit.record(actor, Action.ACCESS_READ, resource, decision)
            return grants

    def blocked(self, actor: Actor, patient_id: str) -> list[str]:
        """The RPPS numbers of the professionals the patient blocked."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "block")
            decision = unit.authorize(actor, Action.ACCESS_READ, resource)
            blocked = unit.tx.access.blocked(patient_id)
            unit.record(actor, Action.ACCESS_READ, resource, decision)
            return blocked

    def _grant(
        self,
        actor: Actor,
        patient_id: str,
        rpps: str,
        *,
        kind: GrantKind,
        event: str,
        until: datetime | None = None,
    ) -> Grant:
        number = RPPS.parse(rpps).value
        with self._core.unit() as unit:
            resource = Resource(patient_id, "grant", number)
            action = Action.CARE_TEAM_JOIN if kind is GrantKind.CARE_TEAM else Action.ACCESS_MANAGE
            decision = unit.authorize(actor, action, resource)
            if unit.tx.access.professional(number) is None:
                raise UnknownProfessionalError()
            # A naive 'until' cannot be compared with the clock: bad input, like a past date.
            if until is not None and (until.tzinfo is None or until.utcoffset() is None):
                raise ValidationError("'until' must be timezone-aware")
            if until is not None and until <= unit.now:
                raise ValidationError("'until' must be in the future")
            if kind is GrantKind.TREATING_DOCTOR:
                for old in unit.tx.access.grants(patient_id):
                    if old.kind == kind and old.ended_at is None:
                        unit.tx.access.put_grant(attrs.evolve(old, ended_at=unit.now))
            grant = Grant(patient_id, number, kind, unit.now, until, None, actor.id)
            unit.tx.access.put_grant(grant_row(grant))
            unit.record(actor, event, resource, decision)
            return grant

    # --- history and explanations -----------------------------------------------------------

    def history(
        self, actor: Actor, patient_id: str, *, after_seq: int = 0, limit: int = 200
    ) -> list[HistoryEntry]:
        """The access history of a record in plain terms, newest last: every read, addition,
        denial, masking, authorisation change and emergency access (L1111-19, R1111-43)."""
        events = self._core_history(actor, patient_id, after_seq, limit)
        with self._core.storage.read() as tx:
            names: dict[str, str] = {}
            for event in events:
                if event.actor_kind is ActorKind.PROFESSIONAL and event.actor_id not in names:
                    pro = professional_from_row(tx.access.professional(event.actor_id))
                    names[event.actor_id] = (
                        f"{pro.name} ({pro.profession_name})" if pro else event.actor_id
                    )
                elif event.actor_kind is ActorKind.APP and event.actor_id not in names:
                    app = tx.catalogue.app(event.actor_id)
                    names[event.actor_id] = app.name if app else event.actor_id
                if (
                    event.target_kind == "consent"
                    and event.target_id
                    and (event.target_id not in names)
                ):
                    app = tx.catalogue.app(event.target_id)
                    if app is not None:
                        names[event.target_id] = app.name
        return [self._entry(event, patient_id, names) for event in events]

    def _core_history(
        self, actor: Actor, patient_id: str, after_seq: int, limit: int
    ) -> list[AuditEvent]:
        with self._core.unit() as unit:
            resource = Resource(patient_id, "history")
            decision = unit.authorize(actor, Action.AUDIT_READ, resource)
            # Events about a document the reader may not see are left out for as long as it
            # stays hidden from them: a result hidden until the announcement consultation
            # (R1111-53), or what a minor keeps from their parents (R1111-50), would otherwise
            # show through "Dr X added a document". The operator's view is unchanged.
            hidden: dict[str, bool] = {}
            events: list[AuditEvent] = []
            # A patient's events are in at most two chains (shard 0 before the trail was
            # sharded, then the patient's shard): page by (shard, seq).
            shard, cursor = DEFAULT_SHARD, after_seq
            while len(events) < limit:
                rows = unit.tx.audit.for_patient(
                    patient_id, after_seq=cursor, limit=limit, after_shard=shard
                )
                batch = events_from_rows(rows)
                events += [e for e in batch if not self._hidden_from(unit, actor, e, hidden)]
                if len(batch) < limit:
                    break
                shard, cursor = batch[-1].shard, batch[-1].seq
            unit.record(actor, Action.AUDIT_READ, resource, decision)
            return events[:limit]

    @staticmethod
    def _entry(event: AuditEvent, patient_id: str, names: dict[str, str]) -> HistoryEntry:
        if event.actor_kind is ActorKind.PATIENT:
            who = "vous" if event.actor_id == patient_id else "une autre personne"
        elif event.actor_kind is ActorKind.REPRESENTATIVE:
            who = "votre représentant légal"
        elif event.actor_kind is ActorKind.PROFESSIONAL:
            who = names.get(event.actor_id, event.actor_id)
        elif event.actor_kind is ActorKind.APP:
            who = f"l'application {names.get(event.actor_id, event.actor_id)}"
        else:
            who = "l'Assurance Maladie"
        what = third_person(event.action)
        if event.outcome is Outcome.DENIED:
            what = f"s'est vu refuser l'accès ({what})"
        holder = event.actor_kind is ActorKind.PATIENT and event.actor_id == patient_id
        own = holder or event.actor_kind is ActorKind.REPRESENTATIVE
        return HistoryEntry(
            event.at,
            who,
            str(event.actor_kind),
            what,
            str(event.mode),
            str(event.outcome),
            event.target_id,
            event.seq,
            event.action,
            _named_app(
                sentence(who, event.action, str(event.outcome), holder=holder), event, names
            ),
            own and event.action in HOLDER_VIEWS,
        )

    def explain(
        self, actor: Actor, action: Action | str, *, patient_id: str, document_id: str | None = None
    ) -> Explanation:
        """The decision the policy would take, the rule that takes it, and the facts it used.

        An explanation reveals the patient's settings: it is for the operator and developers,
        through trusted code (the command line, tests), never for another user. It changes
        nothing and is recorded in the audit trail as the operator's act.
        """
        with self._core.unit() as unit:
            facts, resource = self._facts_for(unit, actor, patient_id, document_id)
            decision: Decision = decide(actor, Action(action), resource, facts, self._core.rules)
            unit.record(
                Actor.system("explain"),
                Action.ACCESS_EXPLAIN,
                Resource(patient_id, "explanation", actor.id),
                decision.rule,
            )
            return Explanation(decision.allowed, decision.rule, facts)

    def _facts_for(
        self, unit: Unit, actor: Actor, patient_id: str, document_id: str | None
    ) -> tuple[Facts, Resource]:
        resource = Resource(patient_id, "document" if document_id else "record", document_id)
        row = None
        if document_id is not None:
            row = unit.tx.documents.get(document_id)
            if row is None or row.patient_id != patient_id:
                raise NotFoundError("no such document in this record")
        return unit.facts(actor, resource, document=row), resource

    def who_can_see(self, actor: Actor, document_id: str) -> list[str]:
        """The kinds of actors who can read a document now, in words: the holder, their
        representatives, the author, the médecin traitant, authorised professionals (by
        profession), professionals in an emergency. For the holder and their representatives,
        about a document they may read; the operator and developers use :meth:`explain`.

        Each kind is a candidate reader the policy is asked about, with the facts of this
        record: the holder and the author as they are, a representative whose link is in
        force, and a professional of each profession holding each kind of grant, or in a
        declared emergency.
        """
        with self._core.unit() as unit:
            row = unit.tx.documents.get(document_id)
            if row is None:
                # The answer for a document the actor may not see (an unknown professional's
                # included): a missing one must not be told apart.
                missing = Resource(None, "document", document_id)
                raise unit.refusal(actor, missing, "deny_by_default")
            resource = Resource(row.patient_id, "document", document_id)
            decision = unit.authorize(actor, Action.ACCESS_READ, resource)
            # Like any other question about a document, it is for those who may read it: the
            # answer names the author (R1111-53, R1111-50).
            unit.authorize(actor, Action.DOCUMENT_READ, resource, document=row)
            unit.record(actor, Action.ACCESS_READ, resource, decision)
            return self._readers(unit, row, resource)

    def _readers(self, unit: Unit, row: DocumentRow, resource: Resource) -> list[str]:
        """:meth:`who_can_see`'s answer: every candidate reader :func:`decide` lets read."""
        rules = self._core.rules
        holder = Actor.patient(row.patient_id)
        holder_facts = unit.facts(holder, resource, document=row)

        def reads(candidate: Actor, facts: Facts) -> bool:
            return decide(candidate, Action.DOCUMENT_READ, resource, facts, rules).allowed

        seen: list[str] = []
        if reads(holder, holder_facts):
            seen.append("the holder")
        representative = Actor(ActorKind.REPRESENTATIVE, _ANYONE, on_behalf_of=row.patient_id)
        if reads(representative, attrs.evolve(holder_facts, represents=True)):
            seen.append("the holder's legal representatives")
        author = _author_of(row)
        if author is not None and reads(author, unit.facts(author, resource, document=row)):
            seen.append(f"its author ({row.author_kind} {row.author_id})")

        settings = AccessFacts.settings(unit.tx, row.patient_id)

        def professionals(mode: AccessMode, grants: tuple[GrantKind | None, ...]) -> set[str]:
            candidate = Actor(ActorKind.PROFESSIONAL, _ANYONE, mode=mode)
            return {
                profession
                for profession in self._core.settings.access.matrix.classes
                for grant in grants
                if reads(
                    candidate,
                    attrs.evolve(
                        holder_facts,
                        professional=ProfessionalFacts(
                            registered=True,
                            profession=profession,
                            grant=None if grant is None else str(grant),
                            emergency=mode is not AccessMode.NORMAL,
                            object_all=settings.object_all,
                            object_emergency=settings.object_emergency,
                            mask_all=settings.mask_all,
                        ),
                    ),
                )
            }

        authorised = professionals(AccessMode.NORMAL, (GrantKind.CARE_TEAM, GrantKind.AUTHORISED))
        treating = professionals(AccessMode.NORMAL, (GrantKind.EXTENDED, GrantKind.TREATING_DOCTOR))
        if authorised:
            names = ", ".join(sorted(authorised))
            seen.append(f"authorised professionals of these professions: {names}")
        if treating - authorised:
            seen.append("the médecin traitant and professionals with the same rights")
        if professionals(AccessMode.EMERGENCY, (None,)) or professionals(
            AccessMode.REGULATION, (None,)
        ):
            seen.append("professionals in a declared emergency (bris de glace, SAMU)")
        return seen

    def _hidden_from(
        self, unit: Unit, actor: Actor, event: AuditEvent, cache: dict[str, bool]
    ) -> bool:
        """Whether *event* is about a document the policy hides, now, from *actor* as holder
        or representative (see :meth:`history`).

        The history tells what happened: a document deleted since, or a space closed since,
        does not hide the events about it; only the document's visibility to its reader does.
        """
        if (
            actor.kind not in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE)
            or event.target_kind != "document"
            or event.target_id is None
        ):
            return False
        if event.target_id not in cache:
            row = unit.tx.documents.get(event.target_id)
            hidden = False
            if row is not None:
                resource = Resource(row.patient_id, "document", row.id)
                facts = unit.facts(actor, resource, document=row)
                assert facts.document is not None
                as_it_was = attrs.evolve(
                    facts, space_open=True, document=attrs.evolve(facts.document, deleted=False)
                )
                decision = decide(
                    actor, Action.DOCUMENT_READ, resource, as_it_was, self._core.rules
                )
                hidden = not decision.allowed
            cache[event.target_id] = hidden
        return cache[event.target_id]


#: The id of a candidate reader who stands for any actor of their kind (see
#: :meth:`AccessService.who_can_see`); no RPPS number, patient id or job name has this form.
_ANYONE = "(any)"


def _author_of(row: DocumentRow) -> Actor | None:
    """The actor who deposited a document: for a document in an establishment's name, the
    professional who deposited it (none is recorded for older deposits); for the insurer's,
    the operator. Whether they read it is the policy's call."""
    kind, author_id = row.author_kind, row.author_id
    if kind == AuthorKind.ESTABLISHMENT:
        submitted_by = row.submitted_by
        return None if submitted_by is None else Actor(ActorKind.PROFESSIONAL, submitted_by)
    if kind == AuthorKind.INSURER:
        return Actor.system(author_id)
    if kind == AuthorKind.REPRESENTATIVE:
        return Actor(ActorKind.REPRESENTATIVE, author_id, on_behalf_of=row.patient_id)
    return Actor(ActorKind(kind), author_id)  # a professional, the patient, an app


def _named_app(text: str, event: AuditEvent, names: dict[str, str]) -> str:
    """*text* with the app a consent change is about named ("l'application Poids Plus"
    rather than "une application"): the patient sees which one they connected."""
    name = names.get(event.target_id or "") if event.target_kind == "consent" else None
    if name is None:
        return text
    return text.replace("d'une application", f"de l'application {name}", 1).replace(
        "une application", f"l'application {name}", 1
    )
