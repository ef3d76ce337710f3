"""The one place where the facts the access policy decides on are gathered.

:func:`~monespace.access.decide` reads nothing: every fact it needs (is the space open, does
the actor represent the patient, who is the professional and what did the patient allow or
forbid them, what is the document or thread about) is read here, through the transaction the
caller gives, so that every service, :meth:`AccessService.explain` and
:meth:`AccessService.who_can_see` decide on the same facts. Services pass the stored row of
the document or thread an action is about; the facts are derived from it here.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import TYPE_CHECKING

from ..accounts import AccountState, account_from_row, representation_from_row
from ..actors import AccessMode, Actor, ActorKind
from ..catalogue import app_from_row, consent_from_row
from ..messaging import ThreadStatus
from ..policy import AppFacts, DocumentFacts, Facts, ProfessionalFacts, Resource, ThreadFacts
from ..record import (
    INVISIBLE_REPRESENTANTS,
    MASQUE_PS,
    DocumentStatus,
    has_flag,
    hidden_from_patient_at,
)
from ._mapping import emergencies_from_rows, grants_from_rows, settings_from_row
from ._model import AccessSettings

if TYPE_CHECKING:
    from ..storage import DocumentRow, SubjectRow, ThreadRow, Transaction

__all__ = ["AccessFacts", "document_facts", "document_facts_key", "thread_facts"]


def document_facts(row: DocumentRow, now: datetime) -> DocumentFacts:
    """The policy's view of a stored document version at *now*."""
    return DocumentFacts(
        author_kind=row.author_kind,
        author_id=row.author_id,
        masked=has_flag(row.flags, MASQUE_PS),
        hidden_from_patient=hidden_from_patient_at(row.flags, row.release_at, now),
        hidden_from_representatives=has_flag(row.flags, INVISIBLE_REPRESENTANTS),
        deleted=row.status == DocumentStatus.DELETED,
        class_code=row.class_code,
        type_code=row.type_code,
        confidentiality=row.confidentiality,
        submitted_by=row.submitted_by,
    )


def document_facts_key(row: DocumentRow, now: datetime) -> Hashable:
    """A value equal for two stored versions whenever :func:`document_facts` gives them the
    same facts at *now*: every column it reads, and the one it derives from the clock."""
    return (
        row.author_kind,
        row.author_id,
        row.flags,
        hidden_from_patient_at(row.flags, row.release_at, now),
        row.status,
        row.class_code,
        row.type_code,
        row.confidentiality,
        row.submitted_by,
    )


def thread_facts(row: ThreadRow) -> ThreadFacts:
    """The policy's view of a stored messaging thread."""
    return ThreadFacts(row.professional_id, closed=row.status == ThreadStatus.CLOSED)


class AccessFacts:
    """Gathers what the policy needs to decide, read through the transaction given.

    The space builds one and hands it to the units of work of every service.

    :param legacy_transition_end: until when the legacy DMP of a holder who opposed stays
        reachable by professionals (``LifecycleRules.legacy_dmp_transition_end``); ``None``:
        never.
    """

    def __init__(self, legacy_transition_end: datetime | None = None) -> None:
        self._legacy_end = legacy_transition_end

    def subject(self, tx: Transaction, now: datetime, actor: Actor, resource: Resource) -> Facts:
        """The facts about *actor* and *resource*'s patient: whether the space is open,
        whether the actor represents the patient, and who the professional is and what the
        patient decided about them. Nothing about a document or thread (see :meth:`about`)."""
        patient_id = resource.patient_id
        if patient_id is None:
            if resource.kind == "application" and resource.id is not None:
                # A step of the référencement: who applied (a vendor withdraws its own).
                application = tx.catalogue.application(resource.id)
                return Facts(applicant=None if application is None else application.vendor_id)
            if actor.kind is ActorKind.PROFESSIONAL:
                # No record concerned (a lookup, a mailbox): only who the professional is.
                known = tx.access.professional(actor.id) is not None
                return Facts(professional=ProfessionalFacts(registered=known))
            return Facts()
        is_professional = actor.kind is ActorKind.PROFESSIONAL
        # One round trip for the account and, for a professional, everything about them.
        read = tx.subject(patient_id, actor.id if is_professional else None)
        account = read.account
        represents = False
        if actor.kind is ActorKind.REPRESENTATIVE and actor.on_behalf_of == patient_id:
            link = tx.representations.get(patient_id, actor.id)
            represents = link is not None and representation_from_row(link).active(now)
        state = None if account is None else account_from_row(account)
        return Facts(
            space_open=state is not None and state.is_open,
            legacy_transition=(
                state is not None and self._in_legacy_transition(tx, now, state.state, patient_id)
            ),
            represents=represents,
            professional=(
                self._professional(tx, now, actor, patient_id, read) if is_professional else None
            ),
            app=self.app(tx, now, actor, patient_id) if actor.kind is ActorKind.APP else None,
        )

    @staticmethod
    def app(tx: Transaction, now: datetime, actor: Actor, patient_id: str) -> AppFacts:
        """Whether the app *actor* may act now (referenced, convention not ended) and the
        scopes of *patient_id*'s consent in force to it."""
        row = tx.catalogue.app(actor.id)
        if row is None:
            return AppFacts()
        consent_row = tx.catalogue.consent(patient_id, actor.id)
        consent = None if consent_row is None else consent_from_row(consent_row)
        return AppFacts(
            referenced=app_from_row(row).may_act(now),
            consent=(
                None
                if consent is None or not consent.active
                else frozenset(str(s) for s in consent.scopes)
            ),
        )

    def professional(
        self, tx: Transaction, now: datetime, actor: Actor, patient_id: str
    ) -> ProfessionalFacts:
        """Who the professional *actor* is, the strongest grant they hold on the record, and
        the patient's controls (block, objections, masking, emergency sessions)."""
        return self._professional(tx, now, actor, patient_id, tx.subject(patient_id, actor.id))

    @staticmethod
    def _professional(
        tx: Transaction, now: datetime, actor: Actor, patient_id: str, read: SubjectRow
    ) -> ProfessionalFacts:
        professional = read.professional
        if professional is None:
            return ProfessionalFacts()
        grants = [g for g in grants_from_rows(read.grants) if g.active(now)]
        strongest = max(grants, key=lambda g: g.strength, default=None)
        settings = settings_from_row(read.settings, patient_id)
        # Emergency sessions matter only in an emergency mode: read only then.
        emergency = actor.mode is not AccessMode.NORMAL and any(
            s.active(now) and s.mode is actor.mode
            for s in emergencies_from_rows(tx.access.emergencies(patient_id, actor.id))
        )
        return ProfessionalFacts(
            registered=True,
            profession=professional.profession,
            grant=None if strongest is None else str(strongest.kind),
            blocked=read.blocked,
            emergency=emergency,
            object_all=settings.object_all,
            object_emergency=settings.object_emergency,
            mask_all=settings.mask_all,
        )

    def _in_legacy_transition(
        self, tx: Transaction, now: datetime, state: AccountState, patient_id: str
    ) -> bool:
        """The holder opposed, the transition has not ended, and their space holds a legacy
        DMP (an opposed space receives documents only from the migration)."""
        return (
            state is AccountState.OPPOSED
            and self._legacy_end is not None
            and now < self._legacy_end
            and bool(tx.documents.for_patient(patient_id))
        )

    @staticmethod
    def settings(tx: Transaction, patient_id: str) -> AccessSettings:
        """The patient's access settings (the defaults until changed)."""
        return settings_from_row(tx.access.settings(patient_id), patient_id)

    @staticmethod
    def about(
        facts: Facts,
        now: datetime,
        *,
        document: DocumentRow | None = None,
        thread: ThreadRow | None = None,
    ) -> Facts:
        """*facts* completed with those of the *document* or *thread* the action is about."""
        # Built field by field: attrs.evolve looks the fields up on every call, and a search
        # completes the facts once per row it reads.
        return Facts(
            space_open=facts.space_open,
            represents=facts.represents,
            document=None if document is None else document_facts(document, now),
            professional=facts.professional,
            thread=None if thread is None else thread_facts(thread),
            legacy_transition=facts.legacy_transition,
            app=facts.app,
            applicant=facts.applicant,
        )

    @staticmethod
    def document_key(document: DocumentRow, now: datetime) -> Hashable:
        """Equal for two documents that :meth:`about` completes with the same facts
        (:func:`document_facts_key`)."""
        return document_facts_key(document, now)

    def gather(
        self,
        tx: Transaction,
        now: datetime,
        actor: Actor,
        resource: Resource,
        *,
        document: DocumentRow | None = None,
        thread: ThreadRow | None = None,
    ) -> Facts:
        """Every fact for one decision: :meth:`subject` completed by :meth:`about`."""
        return self.about(
            self.subject(tx, now, actor, resource), now, document=document, thread=thread
        )
