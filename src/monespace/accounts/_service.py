"""The accounts service: persons, the lifecycle of their space, provisional codes,
activation and opposition, legal representatives, and the deadline run.

Lifecycle rules live in :mod:`._lifecycle` as pure functions; this module runs them inside
units of work, with their audit events and notifications.
"""

from __future__ import annotations

import functools
import hmac
import itertools
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, TypedDict, TypeVar
from zoneinfo import ZoneInfo

import attrs

from .._ids import new_id
from .._unit import Trace, notice_row
from ..actors import Actor, ActorKind
from ..audit import Outcome
from ..crypto import NOTIFICATION_KEY
from ..errors import (
    AccessDeniedError,
    ActivationError,
    IdentifierError,
    InvalidNIRError,
    MonespaceError,
    NotFoundError,
    ValidationError,
)
from ..identities import IDENTITY_KIND as _IDENTITY
from ..identities import NIR_INDEX as _NIR_INDEX
from ..identities import (
    contact_from_payload,
    identity_payload,
    read_contact,
    read_identity,
)
from ..identities import open_identity as _open_identity
from ..identity import NIR
from ..policy import Action, Decision, Resource
from ..storage import AccountRow, CodeRow, OutboxRow, PatientRow, Slice, Transaction
from . import _lifecycle as rules
from ._codes import AttemptPolicy, CodeRecord, generate_code, generate_codes, hash_code
from ._letters import (
    Letter,
    code_letter,
    code_sms,
    invitation_letter,
    majority_letter,
    suspension_letter,
)
from ._lifecycle import Account, AccountState, Channel, LifecycleRules, end_of_paris_day
from ._mapping import (
    account_from_row,
    account_row,
    code_from_row,
    code_row,
    proof_from_row,
    proof_row,
    representation_from_row,
    representation_row,
    representations_from_rows,
)
from ._model import Contact, Invitation, InvitationFailure, Patient, PatientIdentity
from ._proofs import OppositionProof, public_key_bytes, sign_opposition
from ._representation import ProofRecord, Representation, RepresentationKind
from ._sources import FailedSources

if TYPE_CHECKING:
    from .._unit import Core, Unit

__all__ = ["AccountService", "TickCounts"]

#: The outbox channel of text messages (an ``sms`` transport delivers them).
_SMS = "sms"
#: How a requested code is sent, at the holder's choice (§1.3).
_CODE_CHANNELS = ("email", _SMS)

_CODE_KEY = "space:codes"
_SIGNING_KEY = "space:signing"
_PARIS = ZoneInfo("Europe/Paris")

#: The actor recorded for steps a person takes by proving who they are (activation,
#: opposition, code requests), before they are logged in.
_PORTAL = Actor.system("activation-portal")
_DEADLINES = Actor.system("deadlines")


TickCounts = dict[str, int]
_T = TypeVar("_T")


class AccountService:
    """``space.accounts``: persons, their space's lifecycle, codes and representatives.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core
        self._failed_sources = FailedSources(core.settings.attempts.window)

    @property
    def lifecycle(self) -> LifecycleRules:
        """The lifecycle durations in force (``Settings.lifecycle``)."""
        return self._core.settings.lifecycle

    @property
    def attempts(self) -> AttemptPolicy:
        """The guessing limits in force (``Settings.attempts``)."""
        return self._core.settings.attempts

    # --- registration ----------------------------------------------------------------------

    def register_patient(self, actor: Actor, identity: PatientIdentity) -> Patient:
        """Register a person (state ``registered``), creating their data key. Operator only.

        :raises ConflictError: when a person with the same NIR is already registered.
        """
        with self._core.unit() as unit:
            return self._register(unit, actor, identity)

    def register_patients(
        self, actor: Actor, identities: Iterable[PatientIdentity], *, batch: int = 500
    ) -> Iterator[Patient]:
        """Register many persons, *batch* per transaction, lazily (constant memory).

        A failure rolls back its batch only; batches already yielded stay registered.
        """
        pending = iter(identities)
        while True:
            with self._core.unit() as unit:
                chunk = itertools.islice(pending, batch)
                done = [self._register(unit, actor, identity) for identity in chunk]
            yield from done
            if len(done) < batch:
                return

    def _register(self, unit: Unit, actor: Actor, identity: PatientIdentity) -> Patient:
        patient_id = new_id()
        resource = Resource(patient_id, "patient", patient_id)
        decision = unit.authorize(actor, Action.PATIENT_REGISTER, resource)
        keyring = self._core.keyring
        index = keyring.blind_index(unit.tx, _NIR_INDEX, identity.ins.matricule.value, unit.now)
        keyring.create(unit.tx, patient_id, unit.now)
        sealed = keyring.seal(
            unit.tx, patient_id, _IDENTITY, patient_id, identity_payload(identity)
        )
        unit.tx.patients.add(PatientRow(patient_id, index, sealed, unit.now))
        unit.tx.accounts.add(account_row(Account(patient_id)), None)
        unit.tx.proofs.put(proof_row(self._proof_record(unit, patient_id, identity)))
        unit.record(actor, Action.PATIENT_REGISTER, resource, decision)
        return Patient(patient_id, identity, unit.now)

    def _proof_record(self, unit: Unit, patient_id: str, identity: PatientIdentity) -> ProofRecord:
        traits = identity.ins.traits
        assert traits is not None  # PatientIdentity requires them
        # A person without a known card serial cannot prove themselves with one: store a
        # value no input can match.
        serial = identity.vitale_serial or f"\x00unknown:{new_id()}"
        return ProofRecord(
            patient_id,
            self._proof_index(unit, patient_id, "vitale", serial.upper()),
            self._proof_index(unit, patient_id, "birth", traits.birth_date.isoformat()),
        )

    def _proof_index(self, unit: Unit, patient_id: str, what: str, value: str) -> bytes:
        return self._core.keyring.blind_index(unit.tx, what, f"{patient_id}\x00{value}", unit.now)

    # --- reading ---------------------------------------------------------------------------

    def get_patient(self, actor: Actor, patient_id: str) -> Patient:
        """A person's administrative data, for the person, a representative or the operator.

        :raises AccessDeniedError: when the actor may not read it, or there is no such person
            (the two are indistinguishable to someone who may not know).
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "patient", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_READ, resource)
            row = unit.tx.patients.get(patient_id)
            if row is None:
                raise NotFoundError("no such person")
            patient = self._load(unit.tx, row)
            unit.record(actor, Action.PATIENT_READ, resource, decision)
            return patient

    def find_by_nir(self, actor: Actor, nir: NIR | str) -> Patient:
        """The person with this NIR. Operator only (a NIR lookup is an administrative act).

        :raises NotFoundError: when nobody has this NIR.
        """
        value = nir.value if isinstance(nir, NIR) else NIR.parse(nir).value
        with self._core.unit() as unit:
            decision = unit.authorize(actor, Action.PATIENT_READ, Resource(None, "patient"))
            row = self._row_by_nir(unit, value)
            if row is None:
                raise NotFoundError("nobody is registered with this NIR")
            patient = self._load(unit.tx, row)
            unit.record(actor, Action.PATIENT_READ, Resource(row.id, "patient", row.id), decision)
            return patient

    def _row_by_nir(self, unit: Unit, nir: str) -> PatientRow | None:
        index = self._core.keyring.blind_index(unit.tx, _NIR_INDEX, nir, unit.now)
        return unit.tx.patients.find_by_nir_index(index)

    def account(self, actor: Actor, patient_id: str) -> Account:
        """The lifecycle record of a space, for its holder, a representative or the operator."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "account", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_READ, resource)
            account = self._account(unit, patient_id)
            unit.record(actor, Action.PATIENT_READ, resource, decision)
            return account

    def count(self) -> int:
        """How many persons are registered (a figure, no personal data)."""
        with self._core.storage.read() as tx:
            return tx.patients.count()

    def count_by_state(self) -> dict[str, int]:
        """How many spaces are in each lifecycle state (figures, no personal data)."""
        with self._core.storage.read() as tx:
            return tx.accounts.count_by_state()

    def spaces_of(self, actor: Actor) -> list[str]:
        """The spaces a logged-in person reaches from one login: their own and those of the
        people they currently represent (a parent sees their children's)."""
        if actor.kind not in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE):
            return []
        with self._core.storage.read() as tx:
            now = self._core.now()
            represented = [
                link.patient_id
                for link in representations_from_rows(
                    tx.representations.by_representative(actor.id)
                )
                if link.active(now)
            ]
        return [actor.id, *represented]

    def representatives_of(self, actor: Actor, patient_id: str) -> list[Representation]:
        """The representation links of a space (current and ended), for the holder, their
        representatives and the operator."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "representation", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_READ, resource)
            links = representations_from_rows(unit.tx.representations.of_patient(patient_id))
            unit.record(actor, Action.PATIENT_READ, resource, decision)
            return links

    # --- lifecycle: operator ----------------------------------------------------------------

    def create_space(self, actor: Actor, patient_id: str) -> Account:
        """Open a registered person's space at once, before any letter. Operator only."""
        return self._transition(actor, Action.ACCOUNT_CREATE, patient_id, rules.create_now)

    def invite(self, actor: Actor, patient_id: str) -> Invitation:
        """Send the information and a provisional code (R1111-28). Operator only.

        By e-mail when an address is known, else by postal letter; for a person with a legal
        representative, to the representative. The opposition window runs from now.

        :raises ValidationError: when neither an e-mail nor a postal address is known.
        """
        with self._core.unit() as unit:
            return self._invite(unit, actor, patient_id)

    def invite_registered(
        self,
        actor: Actor,
        *,
        batch: int = 500,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
        part: Slice | None = None,
    ) -> dict[str, int]:
        """Invite every registered person, *batch* per transaction (as :meth:`invite_many`
        does), in constant memory.

        People without any contact are skipped (and counted); people a batch could not
        invite for another reason (their space changed meanwhile) are counted as
        ``failed``. Each is traced as a failed invitation, as :meth:`invite` traces it.
        ``progress(n)`` is called after each batch with the number handled in it.

        :param part: only the registered people of this slice
            (:class:`~monespace.storage.Slice`). One run per slice, in as many processes
            at once, invites everyone once. Their writes take turns (on SQLite as on
            PostgreSQL), but each process prepares its next batch while another writes.

        :return: counts: ``invited``, ``by_email``, ``by_letter``, ``skipped``, ``failed``.
        :raises AccessDeniedError: when the policy denies *actor* the invitations (after
            the first batch, whose denials are traced).

        .. versionchanged:: 0.3 One write transaction per batch with its rows written a
           table at a time (:meth:`invite_many`); ``failed``; *part*.
        """
        counts = {"invited": 0, "by_email": 0, "by_letter": 0, "skipped": 0, "failed": 0}
        handled = 0
        after: str | None = None
        self._ensure_invitation_keys()
        while limit is None or handled < limit:
            size = batch if limit is None else min(batch, limit - handled)
            with self._core.storage.read() as tx:
                ids = tx.accounts.in_state(
                    AccountState.REGISTERED, after=after, limit=size, part=part
                )
            if not ids:
                break
            denied: AccessDeniedError | None = None
            for outcome in self._invite_batch(actor, ids):
                if isinstance(outcome, Invitation):
                    counts["invited"] += 1
                    channel = "by_email" if outcome.channel is Channel.EMAIL else "by_letter"
                    counts[channel] += 1
                elif isinstance(outcome.error, _NoContactError):
                    counts["skipped"] += 1
                elif isinstance(outcome.error, AccessDeniedError):
                    denied = denied or outcome.error
                else:
                    counts["failed"] += 1
            if denied is not None:
                raise denied
            handled += len(ids)
            after = ids[-1]
            if progress is not None:
                progress(len(ids))
        return counts

    def invite_many(
        self,
        actor: Actor,
        patient_ids: Iterable[str],
        *,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> list[Invitation | InvitationFailure]:
        """Invite each of *patient_ids* as :meth:`invite` does, *batch* per transaction.

        The same rules, the same audit events (one ``account.invite`` per person: a
        success, a failure or a denial) and the same notices as one :meth:`invite` per
        person, but each batch does its work before its write transaction begins
        (accounts, contacts and representatives read a few statements per batch,
        identities opened, codes drawn and hashed, letters sealed) and then writes its rows
        a table at a time. A person who cannot be invited is reported, with the error
        :meth:`invite` would have raised, and the others of the batch are invited all the
        same. ``progress(n)`` is called after each batch with the number handled in it.

        The letters go to the contacts read when the batch began (a few milliseconds
        before its write transaction). A person whose account changed in between is
        invited (or refused) as :meth:`invite` would, from what the write transaction
        reads.

        :return: in the order of *patient_ids*, an :class:`Invitation` for each person
            invited and an :class:`InvitationFailure` for each other.

        .. versionadded:: 0.3
        """
        outcomes: list[Invitation | InvitationFailure] = []
        pending = iter(patient_ids)
        self._ensure_invitation_keys()
        while chunk := list(itertools.islice(pending, batch)):
            outcomes += self._invite_batch(actor, chunk)
            if progress is not None:
                progress(len(chunk))
        return outcomes

    def _ensure_invitation_keys(self) -> None:
        """Create the space-wide keys an invitation uses (the codes' and the notices'), on
        the space's first invitation: a batch prepares in a read transaction, where they
        cannot be created."""
        keyring = self._core.keyring
        try:
            with self._core.storage.read() as tx:
                for owner in (_CODE_KEY, NOTIFICATION_KEY):
                    keyring.get(tx, owner)
            return
        except NotFoundError:
            pass
        with self._core.unit() as unit:
            for owner in (_CODE_KEY, NOTIFICATION_KEY):
                keyring.get_or_create(unit.tx, owner, unit.now)

    def _invite_batch(self, actor: Actor, ids: list[str]) -> list[Invitation | InvitationFailure]:
        unique = list(dict.fromkeys(ids))
        now, read, ready = self._prepare_invitations(unique)
        results: list[Invitation | InvitationFailure | None] = [None] * len(ids)
        with self._core.unit() as unit:
            # The whole batch happens at the instant it was prepared for.
            unit.now = now
            # Read again: a person whose account changed since (or who appears twice) is
            # invited one by one below, from what this transaction reads.
            current = unit.tx.accounts.get_many(unique)
            traces: list[Trace] = []
            accounts: list[tuple[AccountRow, datetime | None]] = []
            codes: list[CodeRow] = []
            notices: list[OutboxRow] = []
            again: list[tuple[int, Resource, Decision]] = []
            batched: set[str] = set()
            for i, patient_id in enumerate(ids):
                resource = Resource(patient_id, "account", patient_id)
                decision = unit.decide_or_record(actor, Action.ACCOUNT_INVITE, resource)
                if not decision.allowed:
                    results[i] = InvitationFailure(patient_id, AccessDeniedError(decision.rule))
                    continue
                if patient_id in batched or current.get(patient_id) != read[patient_id]:
                    again.append((i, resource, decision))
                    continue
                batched.add(patient_id)
                prepared = ready[patient_id]
                if isinstance(prepared, MonespaceError):
                    failed = Trace(
                        actor, Action.ACCOUNT_INVITE, resource, decision, Outcome.FAILURE
                    )
                    traces.append(failed)
                    results[i] = InvitationFailure(patient_id, prepared)
                    continue
                invited = prepared.account
                accounts.append((account_row(invited), invited.deadline_at(self.lifecycle)))
                codes.append(prepared.code)
                notices.append(prepared.notice)
                traces.append(Trace(actor, Action.ACCOUNT_INVITE, resource, decision))
                results[i] = prepared.invitation
            unit.tx.accounts.update_many(accounts)
            unit.tx.codes.put_many(codes)
            unit.tx.outbox.add_many(notices)
            unit.record_many(traces)
            for i, resource, decision in again:
                patient_id = ids[i]
                try:
                    results[i] = self._invite_allowed(unit, actor, patient_id, resource, decision)
                except MonespaceError as exc:
                    unit.record_failure(actor, Action.ACCOUNT_INVITE, resource, decision)
                    results[i] = InvitationFailure(patient_id, exc)
        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    def _prepare_invitations(
        self, ids: list[str]
    ) -> tuple[datetime, dict[str, AccountRow | None], dict[str, _Prepared | MonespaceError]]:
        """Everything a batch of invitations writes, computed in a read transaction: the
        moment, the accounts as read, and for each person their invitation's rows or the
        error :meth:`invite` would raise."""
        core, keyring = self._core, self._core.keyring
        with core.storage.read() as tx:
            now = core.now()
            rows = tx.accounts.get_many(ids)
            links: dict[str, list[Representation]] = {}
            for link in representations_from_rows(tx.representations.of_patients(ids)):
                if link.active(now):
                    links.setdefault(link.patient_id, []).append(link)
            owners = [*ids, *(link.representative_id for ls in links.values() for link in ls)]
            persons = tx.patients.get_many(owners)
            # Read for the keyring, which then opens each identity without a statement
            # (a backend keeps the key rows a transaction read).
            tx.keys.get_many(owners)
            code_key = keyring.get(tx, _CODE_KEY)
            codes = generate_codes(len(ids))
            ready: dict[str, _Prepared | MonespaceError] = {}
            for patient_id, code in zip(ids, codes, strict=True):
                try:
                    ready[patient_id] = self._prepare_invitation(
                        tx,
                        now,
                        code=code,
                        code_key=code_key,
                        row=rows.get(patient_id),
                        persons=persons,
                        links=links.get(patient_id, []),
                    )
                except _NoAccountError:
                    ready[patient_id] = NotFoundError("no such account")
                except MonespaceError as exc:
                    ready[patient_id] = exc
        return now, {pid: rows.get(pid) for pid in ids}, ready

    def _prepare_invitation(
        self,
        tx: Transaction,
        now: datetime,
        *,
        code: str,
        code_key: bytes,
        row: AccountRow | None,
        persons: dict[str, PatientRow],
        links: list[Representation],
    ) -> _Prepared:
        """What :meth:`_invite_allowed` does, without writing: the same checks in the same
        order, and the rows to write."""
        if row is None:
            raise _NoAccountError
        patient_id = row.patient_id
        account = account_from_row(row)
        contact, to_representative = None, False
        # A current representative's contact first (ordered as of_patient orders them).
        for link in sorted(links, key=lambda link: link.representative_id):
            contact = self._contact(tx, persons.get(link.representative_id))
            if contact is not None:
                to_representative = True
                break
        if contact is None:
            contact = self._contact(tx, persons.get(patient_id))
            if contact is None:
                raise NotFoundError("no such person")
        channel = Channel.EMAIL if contact.email else Channel.LETTER
        if channel is Channel.LETTER and contact.postal_address is None:
            raise _NoContactError("no e-mail or postal address is known for this person")
        invited = rules.invite(account, now, channel, self.lifecycle)
        deadline = invited.opposition_deadline(self.lifecycle)
        assert deadline is not None
        letter = invitation_letter(
            code=code,
            opposition_deadline=deadline,
            code_expires=end_of_paris_day(now + self.lifecycle.code_validity),
            for_representative=to_representative,
        )
        notice = notice_row(
            self._core.keyring,
            tx,
            now,
            **_message(contact, letter),
            kind="invitation",
            patient_id=patient_id,
        )
        return _Prepared(
            account=invited,
            code=code_row(self._code_record(code_key, patient_id, code, now)),
            notice=notice,
            invitation=Invitation(patient_id, channel, to_representative, deadline),
        )

    def _contact(self, tx: Transaction, row: PatientRow | None) -> Contact | None:
        """The contact details in a stored person's sealed identity (see ``read_contact``)."""
        if row is None:
            return None
        return contact_from_payload(
            self._core.keyring.open(tx, row.id, _IDENTITY, row.id, row.sealed_identity)
        )

    def _invite(self, unit: Unit, actor: Actor, patient_id: str) -> Invitation:
        resource = Resource(patient_id, "account", patient_id)
        decision = unit.authorize(actor, Action.ACCOUNT_INVITE, resource)
        return self._invite_allowed(unit, actor, patient_id, resource, decision)

    def _invite_allowed(
        self, unit: Unit, actor: Actor, patient_id: str, resource: Resource, decision: Decision
    ) -> Invitation:
        account = self._account(unit, patient_id)
        contact, to_representative = self._addressee(unit, patient_id)
        channel = Channel.EMAIL if contact.email else Channel.LETTER
        if channel is Channel.LETTER and contact.postal_address is None:
            raise _NoContactError("no e-mail or postal address is known for this person")
        invited = rules.invite(account, unit.now, channel, self.lifecycle)
        code = self._issue_code(unit, patient_id)
        deadline = invited.opposition_deadline(self.lifecycle)
        assert deadline is not None
        letter = invitation_letter(
            code=code,
            opposition_deadline=deadline,
            code_expires=end_of_paris_day(unit.now + self.lifecycle.code_validity),
            for_representative=to_representative,
        )
        self._send(unit, patient_id, contact, letter, kind="invitation")
        self._save(unit, invited)
        unit.record(actor, Action.ACCOUNT_INVITE, resource, decision)
        return Invitation(patient_id, channel, to_representative, deadline)

    def issue_code(self, actor: Actor, patient_id: str, *, send: bool = True) -> str:
        """Issue a new provisional code for a person (operator only; a counter, the 3422).

        The previous code stops working. The code is returned once and, with *send*, also
        sent to the person (or their representative). It is stored only as a keyed hash.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "code", patient_id)
            decision = unit.authorize(actor, Action.CODE_ISSUE, resource)
            self._account(unit, patient_id)
            code = self._issue_code(unit, patient_id)
            if send:
                contact, _ = self._addressee(unit, patient_id)
                letter = code_letter(
                    code=code,
                    code_expires=end_of_paris_day(unit.now + self.lifecycle.code_validity),
                )
                self._send(unit, patient_id, contact, letter, kind="code")
            unit.record(actor, Action.CODE_ISSUE, resource, decision)
            return code

    def request_code(
        self,
        *,
        nir: str,
        vitale_serial: str,
        birth_date: date,
        source: str | None = None,
        channel: str = "email",
    ) -> None:
        """Self-service: "generate a provisional code" with the carte Vitale (§1.3).

        The new code is sent, never returned, by SMS or e-mail at the holder's choice (§1.3):
        *channel* ``"sms"`` to the declared phone number, through the outbox's ``sms``
        transport; ``"email"`` to the e-mail address, or by letter without one. Wrong
        information raises the same :class:`ActivationError` as a wrong code, and counts
        towards the person's failures (:class:`AttemptPolicy`).

        :param source: where the attempt comes from (see :meth:`activate`).

        :raises ValidationError: an unknown *channel*, or ``"sms"`` for a person without a
            phone number (once the proof of identity passed).
        """
        if channel not in _CODE_CHANNELS:
            raise ValidationError(
                f"unknown channel {channel!r}: a code is sent by {' or '.join(_CODE_CHANNELS)}"
            )
        self._with_proof(
            nir=nir,
            code=None,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            representative=None,
            action=Action.CODE_ISSUE,
            step=functools.partial(self._send_new_code, channel=channel),
            source=source,
        )

    def _send_new_code(
        self, unit: Unit, account: Account, by: Actor, *, channel: str = "email"
    ) -> None:
        code = self._issue_code(unit, account.patient_id)
        contact, _ = self._addressee(unit, account.patient_id)
        expires = end_of_paris_day(unit.now + self.lifecycle.code_validity)
        if channel == _SMS:
            if not contact.phone:
                raise ValidationError("no phone number is known to send the code by SMS")
            text = code_sms(code=code, code_expires=expires)
            unit.notify(
                channel=_SMS,
                recipient=contact.phone,
                subject=text.subject,
                body=text.body,
                kind="code",
                patient_id=account.patient_id,
            )
            return
        letter = code_letter(code=code, code_expires=expires)
        self._send(unit, account.patient_id, contact, letter, kind="code")

    def close_with_code(
        self,
        *,
        nir: str,
        code: str,
        vitale_serial: str,
        birth_date: date,
        delete: bool = False,
        representative: Actor | None = None,
        source: str | None = None,
    ) -> Account:
        """Close a space without logging in, with a code provisoire and the carte Vitale
        ("closure is always possible with a provisional code and the carte Vitale", §1.1,
        §1.3). With *delete*, the data are purged at the next deadline run instead of being
        archived ten years (R1111-36). The code works once.

        :param source: where the attempt comes from (see :meth:`activate`).
        :raises ActivationError: when the proof of identity is refused (see :meth:`activate`).
        :raises InvalidTransitionError: when the space is not open (to oppose an invited
            space, see :meth:`oppose`).
        """
        step = rules.request_deletion if delete else rules.close

        def close(unit: Unit, account: Account, by: Actor) -> Account:
            closed = step(account, unit.now, self.lifecycle)
            self._save(unit, closed)
            return closed

        return self._with_proof(
            nir=nir,
            code=code,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            representative=representative,
            action=Action.ACCOUNT_DELETE if delete else Action.ACCOUNT_CLOSE,
            step=close,
            source=source,
        )

    def suspend(self, actor: Actor, patient_id: str) -> Account:
        """Suspend a space (fraud, serious malfunction). Operator only. The holder is told
        and has six weeks to object before the space closes (R1111-36)."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "account", patient_id)
            decision = unit.authorize(actor, Action.ACCOUNT_SUSPEND, resource)
            account = rules.suspend(self._account(unit, patient_id), unit.now, self.lifecycle)
            self._save(unit, account)
            # The six weeks to object run from "the sending of that notice" (R1111-36), and
            # the space closes by itself after them: the notice goes to whoever is written
            # to about the space, when anyone can be.
            contact, _ = self._addressee(unit, patient_id)
            if contact.email or contact.postal_address:
                assert account.suspension_deadline is not None
                letter = suspension_letter(objection_deadline=account.suspension_deadline)
                self._send(unit, patient_id, contact, letter, kind="suspension")
            unit.record(actor, Action.ACCOUNT_SUSPEND, resource, decision)
            return account

    def record_death(self, actor: Actor, patient_id: str, died_on: date) -> Account:
        """Record a death: the space is closed and archived (assumption, configurable through
        :attr:`LifecycleRules.close_on_death`), and every representation link involving the
        person ends. Operator only."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "account", patient_id)
            decision = unit.authorize(actor, Action.DEATH_RECORD, resource)
            account = rules.record_death(
                self._account(unit, patient_id), unit.now, died_on, self.lifecycle
            )
            self._save(unit, account)
            tx = unit.tx
            for link in (
                *tx.representations.of_patient(patient_id),
                *tx.representations.by_representative(patient_id),
            ):
                if link.ended_at is None:
                    tx.representations.put(
                        attrs.evolve(link, ended_at=unit.now, end_reason="death")
                    )
            unit.record(actor, Action.DEATH_RECORD, resource, decision)
            return account

    def add_representative(
        self,
        actor: Actor,
        patient_id: str,
        representative_id: str,
        kind: RepresentationKind = RepresentationKind.LEGAL_GUARDIAN,
        *,
        until: datetime | None = None,
    ) -> Representation:
        """Record that *representative_id* represents *patient_id*. Operator only.

        For a minor's legal guardian the link ends, by default, at the minor's majority
        (:attr:`LifecycleRules.majority_age`, midnight Paris time on the birthday); a
        protected adult's representative has no end unless *until* is given.

        :raises ValidationError: when the two are the same person, or a guardian is named for
            an adult.
        """
        if patient_id == representative_id:
            raise ValidationError("a person cannot be their own representative")
        with self._core.unit() as unit:
            resource = Resource(patient_id, "representation", representative_id)
            decision = unit.authorize(actor, Action.REPRESENTATION_MANAGE, resource)
            identity = read_identity(self._core, unit.tx, patient_id)
            if identity is None or unit.tx.patients.get(representative_id) is None:
                raise NotFoundError("no such person")
            ends_at = until
            if kind is RepresentationKind.LEGAL_GUARDIAN and ends_at is None:
                ends_at = self.majority_at(identity)
                if ends_at <= unit.now:
                    raise ValidationError("a legal guardian is for a minor; this person is of age")
            link = Representation(patient_id, representative_id, kind, unit.now, ends_at)
            unit.tx.representations.put(representation_row(link))
            unit.record(actor, Action.REPRESENTATION_MANAGE, resource, decision)
            return link

    def end_representation(
        self, actor: Actor, patient_id: str, representative_id: str, *, reason: str = "removed"
    ) -> Representation:
        """End a representation link now. Operator only."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, "representation", representative_id)
            decision = unit.authorize(actor, Action.REPRESENTATION_MANAGE, resource)
            row = unit.tx.representations.get(patient_id, representative_id)
            if row is None or row.ended_at is not None:
                raise NotFoundError("no current representation between these persons")
            ended = attrs.evolve(representation_from_row(row), ended_at=unit.now, end_reason=reason)
            unit.tx.representations.put(representation_row(ended))
            unit.record(actor, Action.REPRESENTATION_MANAGE, resource, decision)
            return ended

    def majority_at(self, identity: PatientIdentity) -> datetime:
        """When a person comes of age: midnight, Paris time, on their birthday."""
        traits = identity.ins.traits
        assert traits is not None
        born = datetime.combine(traits.birth_date, time(0), tzinfo=_PARIS)
        return rules.add_years(born, self.lifecycle.majority_age).astimezone(UTC)

    def shred(self, actor: Actor, patient_id: str) -> int:
        """Crypto-shred a person's data now, whatever the state of their space. Operator only.

        Destroys their data key and deletes their contents, profile, measures and pending
        notifications; everything sealed with the key (identity, documents) becomes
        unrecoverable. A backup taken earlier still holds the key, wrapped by the master key:
        it becomes unrecoverable too once that master key is rotated and retired. The space
        is marked purged; the audit trail keeps the opaque id and what happened. The deadline
        run does the same at the end of the archive period.

        :return: how many contents were deleted.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "patient", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_SHRED, resource)
            account = self._account(unit, patient_id)
            deleted = self._purge_data(unit, patient_id)
            purged = attrs.evolve(account, state=AccountState.PURGED, purged_at=unit.now)
            self._save(unit, purged)
            unit.record(actor, Action.PATIENT_SHRED, resource, decision)
        self._core.storage.scrub()
        return deleted

    # --- lifecycle: the holder (or their representative) -------------------------------------

    def activate(
        self,
        *,
        nir: str,
        code: str,
        vitale_serial: str,
        birth_date: date,
        representative: Actor | None = None,
        source: str | None = None,
    ) -> Account:
        """Activate a space with the provisional code and the carte Vitale (§1.4).

        A representative activates the space of the person they represent, from their own
        login, with that person's details (both spaces are then reachable from one login).

        :param source: where the attempt comes from (the client's network address, say).
            After repeated failures against a person, only the sources that failed are
            delayed (:class:`AttemptPolicy`); an unknown source (``None``) is treated as one
            that failed.
        :raises InvalidNIRError: when the NIR is malformed (its length, characters or check
            key), whatever else is given.
        :raises ActivationError: whatever was wrong with a well-formed NIR (the code, the NIR,
            the card serial, the birth date, a delay after failures): the message never says
            which.
        :raises InvalidTransitionError: when the space cannot be activated (closed, purged).
        """
        return self._with_proof(
            nir=nir,
            code=code,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            representative=representative,
            action=Action.ACCOUNT_ACTIVATE,
            step=self._activate_step,
            source=source,
        )

    def _activate_step(self, unit: Unit, account: Account, by: Actor) -> Account:
        activated = rules.activate(account, unit.now, self.lifecycle)
        self._save(unit, activated)
        return activated

    def oppose(
        self,
        *,
        nir: str,
        code: str,
        vitale_serial: str,
        birth_date: date,
        representative: Actor | None = None,
        source: str | None = None,
    ) -> OppositionProof:
        """Object to the creation of the space, within six weeks of the information (§1.7).

        :param source: where the attempt comes from (see :meth:`activate`).
        :return: a signed proof of opposition for the person to keep.
        :raises ActivationError: when the proof of identity is refused (see :meth:`activate`).
        :raises InvalidTransitionError: after the window, or once the space is open (close it
            instead).
        """
        return self._with_proof(
            nir=nir,
            code=code,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            representative=representative,
            action=Action.ACCOUNT_OPPOSE,
            step=self._oppose_step,
            source=source,
        )

    def _oppose_step(self, unit: Unit, account: Account, by: Actor) -> OppositionProof:
        opposed = rules.oppose(account, unit.now, self.lifecycle)
        self._save(unit, opposed)
        identity = read_identity(self._core, unit.tx, account.patient_id)
        assert identity is not None
        seed = self._core.keyring.get_or_create(unit.tx, _SIGNING_KEY, unit.now)
        return sign_opposition(
            seed,
            proof_id=new_id(),
            matricule=identity.ins.matricule.value,
            oid=identity.ins.oid,
            opposed_at=unit.now,
            by="representative" if by.kind is ActorKind.REPRESENTATIVE else "holder",
        )

    def authenticate(
        self,
        *,
        nir: str,
        vitale_serial: str,
        birth_date: date,
        representative_of: str | None = None,
        source: str | None = None,
    ) -> Actor:
        """Log a person in with their carte Vitale details, for demos and local tools.

        The real service logs people in with FranceConnect or a password and a one-time code
        (R1111-32); this stands in for it in the demo server and the command line. Failures
        count towards the same limits as activation and give the same uniform error.

        :param representative_of: log in as the legal representative of this space.
        :param source: where the attempt comes from (see :meth:`activate`).
        :return: the patient (or representative) actor.
        :raises ActivationError: whatever was wrong, and when the space is not active.
        """

        def login(unit: Unit, account: Account, by: Actor) -> Actor:
            if account.state is not AccountState.ACTIVE:
                raise ActivationError
            if representative_of is None:
                return Actor.patient(account.patient_id)
            represented = Actor(
                ActorKind.REPRESENTATIVE, account.patient_id, on_behalf_of=representative_of
            )
            facts = unit.facts(represented, Resource(representative_of, "account"))
            if not facts.represents:
                raise ActivationError
            return represented

        return self._with_proof(
            nir=nir,
            code=None,
            vitale_serial=vitale_serial,
            birth_date=birth_date,
            representative=None,
            action=Action.ACCOUNT_LOGIN,
            step=login,
            source=source,
        )

    def signing_public_key(self) -> bytes:
        """The raw Ed25519 public key that verifies this space's proofs of opposition."""
        with self._core.storage.write() as tx:
            seed = self._core.keyring.get_or_create(tx, _SIGNING_KEY, self._core.now())
        return public_key_bytes(seed)

    def close(self, actor: Actor, patient_id: str, *, delete: bool = False) -> Account:
        """Close a space (the holder, a representative, or the operator on request).

        The data are archived for ten years, then purged; with *delete*, the data are purged
        at the next deadline run instead (the express request of R1111-36).
        """
        step = rules.request_deletion if delete else rules.close
        action = Action.ACCOUNT_DELETE if delete else Action.ACCOUNT_CLOSE
        return self._transition(actor, action, patient_id, step)

    def request_deletion(self, actor: Actor, patient_id: str) -> Account:
        """Ask for a closed space's archive to be deleted now rather than after ten years."""
        return self._transition(actor, Action.ACCOUNT_DELETE, patient_id, rules.request_deletion)

    def reopen(self, actor: Actor, patient_id: str) -> Account:
        """Reopen a closed space: the archived data come back (R1111-36)."""
        return self._transition(actor, Action.ACCOUNT_REOPEN, patient_id, rules.reopen)

    def object_to_suspension(self, actor: Actor, patient_id: str) -> Account:
        """The holder objects to a suspension within six weeks: the space is restored."""
        return self._transition(
            actor, Action.ACCOUNT_OBJECT, patient_id, rules.object_to_suspension
        )

    # --- the deadline run ------------------------------------------------------------------

    def tick(
        self, now: datetime | None = None, *, batch: int = 500, part: Slice | None = None
    ) -> TickCounts:
        """Apply every lifecycle deadline passed at *now* (default: the clock's time).

        Opens spaces whose opposition window ended, closes suspended spaces nobody objected
        for, purges archives whose ten years ended and spaces whose deletion was requested,
        and ends representations at majority (inviting the young adult to take over).

        :return: how many of each transition were applied (``created``, ``closed``,
            ``purged``, ``majority``).
        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        moment = now if now is not None else self._core.now()
        counts: TickCounts = {}
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                due = unit.tx.accounts.due(moment, limit=batch, part=part)
                for account in due:
                    self._apply_deadlines(unit, account_from_row(account), counts)
            if len(due) < batch:
                break
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                ending = unit.tx.representations.ending(moment, limit=batch, part=part)
                for link in ending:
                    self._end_at_majority(unit, representation_from_row(link), counts)
            if len(ending) < batch:
                break
        if counts.get("purged"):
            # Purged data must not survive in the storage's journal either.
            self._core.storage.scrub()
        return counts

    def _apply_deadlines(self, unit: Unit, account: Account, counts: TickCounts) -> None:
        current = account
        while (following := rules.due_transition(current, unit.now, self.lifecycle)) is not None:
            if following.state is AccountState.PURGED:
                self._purge_data(unit, current.patient_id)
            current = following
            name = str(current.state)
            counts[name] = counts.get(name, 0) + 1
            unit.record(
                _DEADLINES,
                f"account.{name}",
                Resource(current.patient_id, "account", current.patient_id),
                "lifecycle_deadline",
            )
        self._save(unit, current)

    def _purge_data(self, unit: Unit, patient_id: str) -> int:
        # The NIR index and the proofs go too: the person may register again one day, and
        # nothing may still tie this opaque id to a NIR, a card or a birth date.
        unit.tx.patients.replace_nir_index(patient_id, secrets.token_bytes(32))
        unit.tx.proofs.put(
            proof_row(ProofRecord(patient_id, secrets.token_bytes(32), secrets.token_bytes(32)))
        )
        unit.tx.outbox.cancel_for_patient(patient_id, "the space was purged")
        unit.tx.messages.delete_for_patient(patient_id)
        unit.tx.documents.delete_for_patient(patient_id)
        unit.tx.profile.delete_for_patient(patient_id)
        unit.tx.measures.delete_for_patient(patient_id)
        unit.tx.devices.delete_for_patient(patient_id)
        unit.tx.agenda.delete_for_patient(patient_id)
        unit.tx.catalogue.delete_consents(patient_id)
        unit.tx.oauth.delete_for_patient(patient_id)
        deleted = unit.tx.blobs.delete_for_patient(patient_id)
        self._core.keyring.destroy(unit.tx, patient_id, unit.now)
        return deleted

    def _end_at_majority(self, unit: Unit, link: Representation, counts: TickCounts) -> None:
        ended = attrs.evolve(link, ended_at=unit.now, end_reason="majority")
        unit.tx.representations.put(representation_row(ended))
        counts["majority"] = counts.get("majority", 0) + 1
        resource = Resource(link.patient_id, "representation", link.representative_id)
        unit.record(_DEADLINES, "representation.end", resource, "majority_reached")
        stored = unit.tx.accounts.get(link.patient_id)
        account = None if stored is None else account_from_row(stored)
        others = [
            other
            for other in unit.tx.representations.of_patient(link.patient_id)
            if other.ended_at is None and other.representative_id != link.representative_id
        ]
        # Invite the young adult once, when the last guardian's access ends.
        if account is None or not account.is_open or others:
            return
        identity = read_identity(self._core, unit.tx, link.patient_id)
        if identity is None or not (identity.contact.email or identity.contact.postal_address):
            return
        # A code only helps a space that was never activated: an active one cannot be
        # activated again, and the young adult then logs in with their own credentials.
        if account.state is AccountState.ACTIVE:
            letter = majority_letter(code=None, code_expires=None)
        else:
            code = self._issue_code(unit, link.patient_id)
            expires = unit.now + self.lifecycle.code_validity
            letter = majority_letter(code=code, code_expires=expires)
        self._send(unit, link.patient_id, identity.contact, letter, kind="majority")

    # --- internals -------------------------------------------------------------------------

    def _account(self, unit: Unit, patient_id: str) -> Account:
        row = unit.tx.accounts.get(patient_id)
        if row is None:
            raise NotFoundError("no such account")
        return account_from_row(row)

    def _save(self, unit: Unit, account: Account) -> None:
        unit.tx.accounts.update(account_row(account), account.deadline_at(self.lifecycle))

    def _transition(
        self,
        actor: Actor,
        action: Action,
        patient_id: str,
        step: Callable[[Account, datetime, LifecycleRules], Account],
    ) -> Account:
        with self._core.unit() as unit:
            resource = Resource(patient_id, "account", patient_id)
            decision = unit.authorize(actor, action, resource)
            account = step(self._account(unit, patient_id), unit.now, self.lifecycle)
            self._save(unit, account)
            unit.record(actor, action, resource, decision)
            return account

    def _issue_code(self, unit: Unit, patient_id: str) -> str:
        code = generate_code()
        key = self._core.keyring.get_or_create(unit.tx, _CODE_KEY, unit.now)
        unit.tx.codes.put(code_row(self._code_record(key, patient_id, code, unit.now)))
        return code

    def _code_record(self, key: bytes, patient_id: str, code: str, now: datetime) -> CodeRecord:
        """A new code's record: its keyed hash, valid until the end of its last day."""
        return CodeRecord(
            patient_id,
            hash_code(key, patient_id, code),
            now,
            end_of_paris_day(now + self.lifecycle.code_validity),
        )

    def _addressee(self, unit: Unit, patient_id: str) -> tuple[Contact, bool]:
        """Whom to write to about *patient_id*'s space: a current representative's contact
        if there is one (a minor's parent), else the person's own."""
        for link in representations_from_rows(unit.tx.representations.of_patient(patient_id)):
            if link.active(unit.now):
                contact = read_contact(self._core, unit.tx, link.representative_id)
                if contact is not None:
                    return contact, True
        contact = read_contact(self._core, unit.tx, patient_id)
        if contact is None:
            raise NotFoundError("no such person")
        return contact, False

    def _send(
        self, unit: Unit, patient_id: str, contact: Contact, letter: Letter, *, kind: str
    ) -> None:
        unit.notify(**_message(contact, letter), kind=kind, patient_id=patient_id)

    def _with_proof(
        self,
        *,
        nir: str,
        code: str | None,
        vitale_serial: str,
        birth_date: date,
        representative: Actor | None,
        action: Action,
        step: Callable[[Unit, Account, Actor], _T],
        source: str | None,
    ) -> _T:
        """Check a proof of identity and run *step*, or count the failure and refuse.

        Every check is computed whatever the outcome of the others, and compared in constant
        time, so neither the answer nor its timing tells which part was wrong. Failed attempts
        are committed before :class:`ActivationError` is raised: a guesser cannot roll them
        back.

        A malformed NIR (its length, characters or check key) is said as such first
        (:class:`InvalidNIRError`): whether a string is a well-formed NIR is a property of the
        string alone, so saying it tells a guesser nothing about anyone, and it spares a
        person with a typo the "does not match our records" that sends them to ask for a new
        code. Nothing is counted or audited for it: no person is concerned.
        """
        try:
            NIR.parse(nir)
        except InvalidNIRError as exc:
            raise InvalidNIRError(
                f"the NIR is malformed ({exc}); check the 15 characters on the carte Vitale: "
                "13 digits (2A or 2B for Corsica) and the 2-digit key"
            ) from None
        with self._core.unit() as unit:
            # The representative is one more part of the proof, checked with the rest: a
            # person who does not represent the holder neither consumes their code nor
            # clears their failures.
            outcome = self._check_proof(
                unit,
                nir,
                code,
                vitale_serial,
                birth_date,
                representative=representative,
                source=source,
            )
            failed = outcome is None
            if outcome is None:
                resource = Resource(None, "account")
                unit.record(_PORTAL, action, resource, "proof_of_identity", outcome=Outcome.FAILURE)
            else:
                account, _ = outcome
                by = representative or Actor.patient(account.patient_id)
                resource = Resource(account.patient_id, "account", account.patient_id)
                result = step(unit, account, by)
                unit.record(by, action, resource, "proof_of_identity")
        if failed:
            raise ActivationError
        return result

    def _check_proof(
        self,
        unit: Unit,
        nir: str,
        code: str | None,
        vitale_serial: str,
        birth_date: date,
        *,
        representative: Actor | None = None,
        source: str | None = None,
    ) -> tuple[Account, ProofRecord] | None:
        keyring = self._core.keyring
        try:
            nir_value = NIR.parse(nir).value
        except IdentifierError:
            nir_value = "0" * 15  # no match, but the same work as a real lookup
        row = self._row_by_nir(unit, nir_value)
        patient_id = row.id if row is not None else "\x00nobody"
        account_found = unit.tx.accounts.get(patient_id) if row is not None else None
        proof_found = unit.tx.proofs.get(patient_id) if row is not None else None
        code_found = unit.tx.codes.get(patient_id) if row is not None else None
        account = None if account_found is None else account_from_row(account_found)
        proof = None if proof_found is None else proof_from_row(proof_found)
        record = None if code_found is None else code_from_row(code_found)
        vitale = self._proof_index(unit, patient_id, "vitale", vitale_serial.strip().upper())
        birth = self._proof_index(unit, patient_id, "birth", birth_date.isoformat())
        code_key = keyring.get_or_create(unit.tx, _CODE_KEY, unit.now)
        given = hash_code(code_key, patient_id, code or "")
        expected_code = record.code_hash if record is not None else bytes(32)
        acts_for = representative is None or (
            representative.kind is ActorKind.REPRESENTATIVE
            and unit.facts(representative, Resource(patient_id, "account", patient_id)).represents
        )
        ok = all(
            [
                acts_for,
                hmac.compare_digest(vitale, proof.vitale_index if proof else bytes(32)),
                hmac.compare_digest(birth, proof.birth_index if proof else bytes(32)),
                code is None
                or (
                    hmac.compare_digest(given, expected_code)
                    and record is not None
                    and record.usable(unit.now)
                ),
            ]
        )
        if account is None or proof is None:
            return None
        failures = self.attempts.streak(proof.failures, proof.last_failure_at, unit.now)
        sources = self._failed_sources
        # An unknown source cannot show that it has not failed: it waits as if it had
        # failed last.
        failed_at = (
            proof.last_failure_at
            if source is None
            else sources.failed_at(patient_id, source, unit.now)
        )
        if self.attempts.throttled(failures, failed_at, unit.now):
            # Refused unchecked: nothing was evaluated, so nothing is counted (the code's
            # tries included), and the delay does not grow while a source keeps knocking.
            return None
        if code is not None and (record is None or not record.usable(unit.now)):
            # No usable code: the attempt fails whatever else it holds, so it tells nothing
            # and is not counted (the holder trying a code an attacker had revoked does
            # not get their own address delayed).
            return None
        if ok:
            if code is not None and record is not None:
                # Only a verified code clears the failures: a code request or a login
                # proves only the NIR, card serial and birth date (printed on the card).
                unit.tx.proofs.put(proof_row(attrs.evolve(proof, failures=0, last_failure_at=None)))
                unit.tx.codes.put(code_row(attrs.evolve(record, used_at=unit.now)))
            sources.forget(patient_id, source)
            return account, proof
        unit.tx.proofs.put(
            proof_row(attrs.evolve(proof, failures=failures + 1, last_failure_at=unit.now))
        )
        sources.mark(patient_id, source, unit.now)
        if code is not None and record is not None:
            attempts = record.attempts + 1
            revoked = unit.now if attempts >= self.attempts.per_code else None
            unit.tx.codes.put(code_row(attrs.evolve(record, attempts=attempts, revoked_at=revoked)))
        return None

    def _load(self, tx: Transaction, row: PatientRow) -> Patient:
        return Patient(row.id, _open_identity(self._core, tx, row), row.created_at)


class _NoContactError(ValidationError):
    """No way to reach the person."""


class _NoAccountError(Exception):
    """A batch was given an id without an account (``invite`` raises ``NotFoundError``)."""


@attrs.frozen
class _Prepared:
    """One invitation of a batch, computed before its write transaction."""

    account: Account
    code: CodeRow
    notice: OutboxRow
    invitation: Invitation


class _Message(TypedDict):
    channel: str
    recipient: str
    subject: str
    body: str


def _message(contact: Contact, letter: Letter) -> _Message:
    """How *letter* reaches *contact*: by e-mail when they have an address, else by post
    (the postal address heads the letter).

    :raises _NoContactError: when *contact* has neither.
    """
    if contact.email:
        return _Message(
            channel=Channel.EMAIL, recipient=contact.email, subject=letter.subject, body=letter.body
        )
    address = contact.postal_address
    if address is None:
        raise _NoContactError("no e-mail or postal address is known for this person")
    block = "\n".join([*address.lines, f"{address.postal_code} {address.city}", address.country])
    return _Message(
        channel=Channel.LETTER,
        recipient=", ".join([*address.lines, f"{address.postal_code} {address.city}"]),
        subject=letter.subject,
        body=f"{block}\n\n{letter.body}",
    )
