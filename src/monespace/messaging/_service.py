"""``space.messaging``: secure messaging between professionals and patients (MSS-C).

Every operation is one unit of work: the policy decides (only participants touch a thread,
only professionals start one, a closed thread takes no reply from the patient's side), the
change is made, an audit event is written, and notifications or outbound deliveries are
queued, all in one transaction. Subjects, bodies, file names and attachments are sealed with
the patient's key; audit events and notifications carry identifiers only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from .._ids import new_id
from ..actors import Actor, ActorKind
from ..errors import AccessDeniedError, NotFoundError, ValidationError
from ..identities import (
    Professional,
    names_person,
    professional_from_row,
    read_contact,
    read_identity,
    row_by_nir,
)
from ..identity import MSSanteAddress, parse_professional_address, patient_address
from ..policy import Action, Decision, Resource, decide
from ..record import Code, Document, ParsedDocument, check_media_type
from ..storage import AttachmentRow, MessageRow, Slice, ThreadRow
from ._mapping import (
    ATTACHMENT_KIND,
    ATTACHMENT_META_KIND,
    MESSAGE_KIND,
    THREAD_KIND,
    MessagePayload,
    attachment_blob_row,
    attachment_from_row,
    attachment_meta,
    attachment_row,
    message_from_row,
    message_payload,
    message_row,
    read_message_payload,
    side_of,
    thread_from_row,
    thread_row,
)
from ._model import (
    MSSANTE_CHANNEL,
    OUTBOUND_KIND,
    Attachment,
    InboundMessage,
    InboxPage,
    Message,
    MessagingSettings,
    NewAttachment,
    RecordAttachment,
    Thread,
    ThreadStatus,
    ThreadView,
    UnknownRecipientError,
    UnknownSenderError,
)
from ._outbound import OutboundAttachment, OutboundMessage, encode_outbound
from ._rules import (
    actor_side,
    check_attachment_sizes,
    check_body,
    check_message_id,
    check_subject,
    filed_type,
    filename_of,
    is_message_id,
    reply_headers,
    reply_subject,
    safe_filename,
    title_of,
)

if TYPE_CHECKING:
    from .. import RecordService
    from .._unit import Core, Unit

__all__ = ["MessagingService"]

_DEADLINES: Final = Actor.system("deadlines")

# Notifications say that something happened, never what: no subject, no sender, no text.
_NOTICE_SUBJECT: Final = "Nouveau message dans votre espace santé"
_NOTICE_BODY: Final = (
    "Vous avez reçu un nouveau message dans la messagerie de votre espace santé.\n"
    "Connectez-vous à votre espace santé pour le lire.\n"
)
_NOTICE_SMS: Final = "Mon espace santé : vous avez reçu un nouveau message."


@attrs.frozen(repr=False)
class _Prepared:
    """An attachment checked before the unit of work: name, type, size, CDA header."""

    filename: str
    media_type: str
    content: bytes
    sha256: bytes
    parsed: ParsedDocument | None

    @property
    def cda_codes(self) -> tuple[str, ...]:
        return () if self.parsed is None or not self.parsed.type_code else (self.parsed.type_code,)


class MessagingService:
    """Threads and messages between professionals and patients, under the access policy.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core, record: RecordService) -> None:
        self._core = core
        self._record = record

    @property
    def settings(self) -> MessagingSettings:
        """The messaging limits and policies in force (``Settings.messaging``)."""
        return self._core.settings.messaging

    # --- writing -----------------------------------------------------------------------------

    def start_thread(
        self,
        actor: Actor,
        patient_id: str,
        *,
        subject: str,
        body: str,
        attachments: Sequence[NewAttachment | RecordAttachment] = (),
        close: bool = False,
        ins_qualified: bool | None = None,
    ) -> Message:
        """Start a conversation with a patient: professionals and establishments only.

        The patient is told by e-mail (or SMS) that a message is waiting, never what it says.

        :param attachments: files, or documents of the patient's record the professional may
            read (:class:`~monespace.messaging.RecordAttachment`).
        :param close: send it closed to replies (``X-MSS-MES: FIN``).
        :param ins_qualified: what ``X-MSS-INS`` says, when the sender says it.
        :raises UnknownProfessionalError: when the actor is a professional the directory does
            not know.
        :raises AccessDeniedError: when the actor may not write to this patient (a patient
            starting a thread, a blocked professional, a space not open).
        :raises ValidationError: bad subject, body or attachment; nothing is stored.
        """
        subject = check_subject(subject, limit=self.settings.max_subject_chars)
        body = check_body(body, limit=self.settings.max_body_chars)
        files = self._resolve(actor, patient_id, attachments)
        prepared = self._prepare(files)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "thread")
            decision = unit.authorize(actor, Action.THREAD_START, resource)
            self._check_cda_patients(unit, patient_id, prepared)
            thread = self._new_thread(unit, actor, patient_id, subject, close)
            row = self._store(
                unit,
                actor,
                thread,
                subject=subject,
                body=body,
                prepared=prepared,
                closes=close,
                ins_qualified=ins_qualified,
                rfc_message_id=self._local_message_id(),
            )
            unit.record(
                actor, Action.THREAD_START, Resource(patient_id, "message", row.id), decision
            )
            self._tell_patient(unit, patient_id, row.id)
            return self._message(unit, row)

    def reply(
        self,
        actor: Actor,
        thread_id: str,
        *,
        body: str,
        subject: str | None = None,
        attachments: Sequence[NewAttachment | RecordAttachment] = (),
        close: bool = False,
    ) -> Message:
        """Write in a thread: the patient (or their representative) replies, the professional
        writes again.

        A professional's message sets the thread's state: with *close* it is closed to
        replies (``X-MSS-MES: FIN``, as on the wire, where FIN applies to one message),
        without it the thread is open again. The patient's side is told of a professional's
        message by e-mail; a patient's message is queued for the professional's MSSanté
        mailbox when the directory knows one.

        :param subject: default ``Re: <the thread's subject>``.
        :raises AccessDeniedError: not a participant, a patient asking to close, or a reply
            from the patient's side to a closed thread (rule ``thread_closed_to_replies``);
            a thread that does not exist is refused the same way.
        :raises ValidationError: bad subject, body or attachment; nothing is stored.
        """
        body = check_body(body, limit=self.settings.max_body_chars)
        if subject is not None:
            subject = check_subject(subject, limit=self.settings.max_subject_chars)
        with self._core.storage.read() as tx:
            peek = tx.messages.get_thread(thread_id)
        # Record documents are read (and audited) before the unit: the record has its own.
        files = self._resolve(actor, peek.patient_id, attachments) if peek is not None else []
        prepared = self._prepare(files)
        with self._core.unit() as unit:
            thread, _, decision = self._authorize(unit, actor, Action.THREAD_REPLY, thread_id)
            if close:
                self._authorize(unit, actor, Action.THREAD_CLOSE, thread_id)
            self._check_cda_patients(unit, thread.patient_id, prepared)
            if subject is None:
                subject = self._reply_subject(unit, thread)
            row = self._store(
                unit,
                actor,
                thread,
                subject=subject,
                body=body,
                prepared=prepared,
                closes=close,
                ins_qualified=None,
                rfc_message_id=self._local_message_id(),
            )
            unit.record(
                actor,
                Action.THREAD_REPLY,
                Resource(thread.patient_id, "message", row.id),
                decision,
            )
            if actor.kind is ActorKind.PROFESSIONAL:
                self._tell_patient(unit, thread.patient_id, row.id)
            else:
                self._deliver_outbound(
                    unit, thread, row=row, subject=subject, body=body, prepared=prepared
                )
            return self._message(unit, row)

    def close(self, actor: Actor, thread_id: str) -> Thread:
        """Close a thread to the patient's replies (the professional who started it)."""
        return self._set_closed(actor, thread_id, closed=True)

    def reopen(self, actor: Actor, thread_id: str) -> Thread:
        """Open a closed thread to replies again (the professional who started it)."""
        return self._set_closed(actor, thread_id, closed=False)

    def _set_closed(self, actor: Actor, thread_id: str, *, closed: bool) -> Thread:
        with self._core.unit() as unit:
            row, resource, decision = self._authorize(unit, actor, Action.THREAD_CLOSE, thread_id)
            status = ThreadStatus.CLOSED if closed else ThreadStatus.OPEN
            updated = attrs.evolve(row, status=str(status), closed_at=unit.now if closed else None)
            unit.tx.messages.update_thread(updated)
            unit.record(actor, Action.THREAD_CLOSE, resource, decision)
            return self._thread(unit, updated, actor_side(actor.kind))

    def archive(self, actor: Actor, thread_id: str, *, archived: bool = True) -> Thread:
        """Archive a thread in the actor's own mailbox (or bring it back with
        ``archived=False``). The other side's mailbox is not touched, and a new message
        brings an archived thread back to the recipient's inbox."""
        with self._core.unit() as unit:
            row, resource, decision = self._authorize(unit, actor, Action.THREAD_ARCHIVE, thread_id)
            if actor_side(actor.kind) == "professional":
                updated = attrs.evolve(row, professional_archived=archived)
            else:
                updated = attrs.evolve(row, patient_archived=archived)
            unit.tx.messages.update_thread(updated)
            unit.record(actor, Action.THREAD_ARCHIVE, resource, decision)
            return self._thread(unit, updated, actor_side(actor.kind))

    # --- receiving from the MSSanté trust space ------------------------------------------------

    def receive(self, gateway: Actor, inbound: InboundMessage) -> Message:
        """Hand in a message a professional sent from their MSSanté mailbox (the operator's
        SMTP gateway calls this).

        The gateway (a system actor) is authorised to deliver; the professional is the
        directory entry of the sender's address, and starts a thread or writes in one like any
        professional, under the same rules. The thread is found through ``In-Reply-To`` and
        ``References``, and only among the threads this professional has with this patient.
        A message received twice (same ``Message-ID``, same patient: an SMTP retry) is stored
        once: the second call returns the first message.

        :raises InvalidMSSanteAddressError: a malformed sender or recipient address.
        :raises UnknownRecipientError: the recipient is not the address of a registered patient.
        :raises UnknownSenderError: no professional in the directory has the sender's address.
        :raises AccessDeniedError: the space is not open, or the sender may not write (blocked,
            a reply to another professional's thread is never taken as one).
        :raises ValidationError: bad headers, body or attachments; nothing is stored.
        """
        recipient = MSSanteAddress.parse(inbound.recipient)
        nir = recipient.patient_nir
        if nir is None:
            raise UnknownRecipientError("the recipient is not a patient mailbox")
        sender = parse_professional_address(inbound.sender)
        subject = check_subject(inbound.subject, limit=self.settings.max_subject_chars)
        body = check_body(inbound.body, limit=self.settings.max_body_chars)
        rfc_message_id = check_message_id(inbound.rfc_message_id)
        # Threading headers are hints: malformed ones are ignored, never trusted.
        hints = [
            h
            for h in (inbound.in_reply_to, *reversed(inbound.references))
            if h is not None and is_message_id(h)
        ]
        prepared = self._prepare(inbound.attachments)
        patient_id = self._recipient(gateway, nir.value)
        with self._core.unit() as unit:
            receipt = Resource(patient_id, "message")
            allowed = unit.authorize(gateway, Action.MESSAGE_RECEIVE, receipt)
            professional = unit.tx.access.professional_by_mssante(sender.value)
            if professional is None:
                raise UnknownSenderError("no professional in the directory has this address")
            author = Actor(ActorKind.PROFESSIONAL, professional.rpps)
            earlier = unit.tx.messages.by_rfc_message_id(patient_id, rfc_message_id)
            if earlier is not None:
                if earlier.sender_id != author.id:
                    raise ValidationError("this Message-ID was already used by another sender")
                unit.record(
                    gateway,
                    Action.MESSAGE_RECEIVE,
                    Resource(patient_id, "message", earlier.id),
                    "duplicate_delivery",
                )
                return self._message(unit, earlier)
            thread = self._thread_for(unit, patient_id, author.id, hints)
            if thread is None:
                decision = unit.authorize(
                    author, Action.THREAD_START, Resource(patient_id, "thread")
                )
                thread = self._new_thread(unit, author, patient_id, subject, inbound.closes_thread)
                action = Action.THREAD_START
            else:
                resource = Resource(patient_id, "thread", thread.id)
                decision = unit.authorize(author, Action.THREAD_REPLY, resource, thread=thread)
                action = Action.THREAD_REPLY
            self._check_cda_patients(unit, patient_id, prepared)
            row = self._store(
                unit,
                author,
                thread,
                subject=subject,
                body=body,
                prepared=prepared,
                closes=inbound.closes_thread,
                ins_qualified=inbound.ins_qualified,
                rfc_message_id=rfc_message_id,
                in_reply_to=hints[0] if hints else None,
                origin="smtp",
            )
            message = Resource(patient_id, "message", row.id)
            unit.record(gateway, Action.MESSAGE_RECEIVE, message, allowed)
            unit.record(author, action, message, decision)
            self._tell_patient(unit, patient_id, row.id)
            return self._message(unit, row)

    def _recipient(self, gateway: Actor, nir: str) -> str:
        """The patient whose mailbox is *nir*: a lookup by NIR, an administrative act the
        gateway must be allowed, audited in a transaction of its own."""
        with self._core.unit() as unit:
            decision = unit.authorize(gateway, Action.PATIENT_READ, Resource(None, "patient"))
            row = row_by_nir(self._core, unit.tx, nir, unit.now)
            if row is None:
                raise UnknownRecipientError("no patient mailbox has this address")
            unit.record(gateway, Action.PATIENT_READ, Resource(row.id, "patient", row.id), decision)
            return row.id

    def _thread_for(
        self, unit: Unit, patient_id: str, professional_id: str, hints: Iterable[str]
    ) -> ThreadRow | None:
        for hint in hints:
            earlier = unit.tx.messages.by_rfc_message_id(patient_id, hint)
            if earlier is None:
                continue
            thread = unit.tx.messages.get_thread(earlier.thread_id)
            # Only this professional's own threads: a reference to someone else's message
            # starts a new conversation rather than slipping into theirs.
            if thread is not None and thread.professional_id == professional_id:
                return thread
        return None

    def _new_thread(
        self, unit: Unit, author: Actor, patient_id: str, subject: str, closed: bool
    ) -> ThreadRow:
        thread_id = new_id()
        thread = thread_row(
            thread_id,
            patient_id,
            author.id,
            closed=closed,
            now=unit.now,
            sealed_subject=self._seal(unit, patient_id, THREAD_KIND, thread_id, subject.encode()),
        )
        unit.tx.messages.add_thread(thread)
        return thread

    # --- reading -----------------------------------------------------------------------------

    def inbox(
        self,
        actor: Actor,
        patient_id: str | None = None,
        *,
        correspondent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        archived: bool | None = False,
        offset: int = 0,
        limit: int = 50,
    ) -> InboxPage:
        """A mailbox, most recent thread first, with unread counts.

        The patient's mailbox by default for a patient or representative (their own, or the
        one they act for); a professional without *patient_id* gets their threads with every
        patient, each still decided on its own (a patient who blocked them, or whose space
        closed, drops out).

        :param correspondent: for the patient's side, an RPPS number, an MSSanté address or
            part of the professional's name (case-insensitive); for a professional, a patient
            id.
        :param since: last message at or after; *until*: before.
        :param text: words that must all appear in the subject (case-insensitive).
        :param archived: ``False`` the inbox, ``True`` the archive, ``None`` both.
        """
        if not 1 <= limit <= 500 or offset < 0:
            raise ValidationError("'limit' must be 1-500 and 'offset' not negative")
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise ValidationError(f"{name!r} must be timezone-aware")
        words = [w.casefold() for w in (text or "").split()]
        side = actor_side(actor.kind)
        with self._core.unit() as unit:
            if side == "professional" and patient_id is None:
                resource = Resource(None, "mailbox", actor.id)
                decision = unit.authorize(actor, Action.INBOX_READ, resource)
                rows = [
                    r
                    for r in unit.tx.messages.threads_for_professional(actor.id)
                    if self._may(unit, actor, Action.THREAD_READ, r)
                ]
                unread = unit.tx.messages.unread_for_professional(actor.id)
            else:
                owner = patient_id or actor.on_behalf_of or actor.id
                resource = Resource(owner, "mailbox")
                decision = unit.authorize(actor, Action.INBOX_READ, resource)
                rows = unit.tx.messages.threads_for_patient(owner)
                if side == "professional":
                    rows = [r for r in rows if self._may(unit, actor, Action.THREAD_READ, r)]
                    unread = unit.tx.messages.unread_for_professional(actor.id)
                else:
                    unread = unit.tx.messages.unread_for_patient(owner)
            names: dict[str, Professional | None] = {}
            matched: list[Thread] = []
            for row in rows:
                is_archived = (
                    row.professional_archived if side == "professional" else (row.patient_archived)
                )
                if (
                    (archived is not None and is_archived != archived)
                    or (since is not None and row.last_message_at < since)
                    or (until is not None and row.last_message_at >= until)
                    or not self._is_correspondent(unit, row, side, correspondent, names)
                ):
                    continue
                thread = self._thread(unit, row, side, unread=unread.get(row.id, 0))
                if all(w in thread.subject.casefold() for w in words):
                    matched.append(thread)
            unit.record(actor, Action.INBOX_READ, resource, decision)
            page = tuple(matched[offset : offset + limit])
            return InboxPage(page, len(matched), sum(t.unread for t in matched), offset, limit)

    def _is_correspondent(
        self,
        unit: Unit,
        row: ThreadRow,
        side: str,
        wanted: str | None,
        cache: dict[str, Professional | None],
    ) -> bool:
        if wanted is None:
            return True
        if side == "professional":
            return row.patient_id == wanted
        if row.professional_id == wanted:
            return True
        if row.professional_id not in cache:
            found = unit.tx.access.professional(row.professional_id)
            cache[row.professional_id] = professional_from_row(found)
        professional = cache[row.professional_id]
        if professional is None:
            return False
        needle = wanted.strip().casefold()
        return bool(needle) and (
            needle in professional.name.casefold()
            or needle == (professional.mssante or "").casefold()
        )

    def _may(self, unit: Unit, actor: Actor, action: Action, row: ThreadRow) -> bool:
        """Whether the policy lets *actor* do *action* on a thread listed in a mailbox."""
        resource = Resource(row.patient_id, "thread", row.id)
        facts = unit.facts(actor, resource, thread=row)
        return decide(actor, action, resource, facts, self._core.rules).allowed

    def patient_of(
        self, actor: Actor, *, thread_id: str | None = None, attachment_id: str | None = None
    ) -> str | None:
        """The patient whose mailbox holds a thread (or an attachment's thread), if *actor*
        takes part in it; ``None`` when there is no such thread or the actor does not take
        part (the two are indistinguishable). Give one of *thread_id*, *attachment_id*.

        The policy decides, as for reading the thread. It changes nothing and tells a
        participant only what they already know, so it records nothing: an edge asks it to
        check that a thread belongs to the space it was named under, then makes the call it
        was asked for, which is decided and audited.
        """
        if (thread_id is None) == (attachment_id is None):
            raise ValidationError("give one of 'thread_id' and 'attachment_id'")
        with self._core.storage.read() as tx:
            if attachment_id is not None:
                attachment = tx.messages.get_attachment(attachment_id)
                thread_id = None if attachment is None else attachment.thread_id
            row = None if thread_id is None else tx.messages.get_thread(thread_id)
            if row is None:
                return None
            resource = Resource(row.patient_id, "thread", row.id)
            now, provider = self._core.now(), self._core.facts
            facts = provider.about(provider.subject(tx, now, actor, resource), now, thread=row)
        allowed = decide(actor, Action.THREAD_READ, resource, facts, self._core.rules).allowed
        return row.patient_id if allowed else None

    def thread(self, actor: Actor, thread_id: str, *, mark_read: bool = True) -> ThreadView:
        """A thread with its messages, oldest first.

        :param mark_read: record the read receipts: the other side's messages not yet read
            are marked read now.
        :raises AccessDeniedError: when the actor does not take part, or there is no such
            thread (the two are indistinguishable).
        """
        with self._core.unit() as unit:
            row, resource, decision = self._authorize(unit, actor, Action.THREAD_READ, thread_id)
            side = actor_side(actor.kind)
            messages = unit.tx.messages.messages_in_thread(thread_id)
            if mark_read:
                for index, message in enumerate(messages):
                    if message.read_at is None and side_of(message) != side:
                        messages[index] = attrs.evolve(message, read_at=unit.now)
                        unit.tx.messages.update_message(messages[index])
            by_message: dict[str, list[AttachmentRow]] = {}
            for attachment in unit.tx.messages.attachments_in_thread(thread_id):
                by_message.setdefault(attachment.message_id, []).append(attachment)
            models = tuple(self._message(unit, m, by_message.get(m.id, [])) for m in messages)
            unread = sum(1 for m in messages if m.read_at is None and side_of(m) != side)
            unit.record(actor, Action.THREAD_READ, resource, decision)
            thread = self._thread(unit, row, side, unread=unread, count=len(messages))
            return ThreadView(thread, models)

    def read_attachment(self, actor: Actor, attachment_id: str) -> tuple[Attachment, bytes]:
        """An attachment and its decrypted content. Each read is audited.

        :raises AccessDeniedError: when the actor does not take part in its thread, or there
            is no such attachment.
        """
        with self._core.unit() as unit:
            _, attachment, data, _ = self._open_attachment(
                unit, actor, Action.ATTACHMENT_READ, attachment_id
            )
            return attachment, data

    def file_attachment(
        self,
        actor: Actor,
        attachment_id: str,
        *,
        type_code: Code | None = None,
        title: str | None = None,
    ) -> Document:
        """Save an attachment into the patient's record (the patient or their
        representative).

        The document is added by :meth:`RecordService.add_document`, so the record's own
        checks and rules apply: the media type against the bytes, the CDA header (title,
        dates, confidentiality, unique id) and its patient, who must be the holder. A
        document the patient adds is theirs, so it takes a patient-deposited type (TRE_A05):
        for a CDA, the DOCPAT type of its class (a biology report becomes ``DOCPAT05``),
        otherwise ``EXPPAT_2``, unless *type_code* says which; the original type code and the
        sender are kept in the document's comments. Filing is two steps, each atomic and
        audited: the attachment is read (``attachment.file``), then the document is added;
        if the second fails, nothing is added and the attachment stays where it was.

        :raises AccessDeniedError: not the patient's side of the thread.
        :raises ConflictError: a CDA already in the record (same unique id).
        :raises ValidationError: what the record refuses.
        """
        with self._core.unit() as unit:
            row, attachment, data, thread = self._open_attachment(
                unit, actor, Action.ATTACHMENT_FILE, attachment_id
            )
            professional = unit.tx.access.professional(thread.professional_id)
        parsed = self._parse(row.media_type, data)
        chosen = type_code or filed_type(parsed)
        origin = (
            f"Reçu par messagerie sécurisée de {professional.name if professional else ''} "
            f"({thread.professional_id})."
        )
        if parsed is not None and parsed.type_code:
            origin += f" Type d'origine : {parsed.type_code} ({parsed.type_code_system})."
        return self._record.add_document(
            actor,
            row.patient_id,
            data,
            media_type=row.media_type,
            type_code=chosen,
            title=title or (None if parsed is not None else title_of(attachment.filename)),
            comments=origin,
        )

    def _open_attachment(
        self, unit: Unit, actor: Actor, action: Action, attachment_id: str
    ) -> tuple[AttachmentRow, Attachment, bytes, ThreadRow]:
        row = unit.tx.messages.get_attachment(attachment_id)
        thread = unit.tx.messages.get_thread(row.thread_id) if row is not None else None
        resource = Resource(
            thread.patient_id if thread is not None else None, "attachment", attachment_id
        )
        decision = unit.authorize(actor, action, resource, thread=thread)
        if row is None or thread is None:
            raise AccessDeniedError("deny_by_default")  # the policy denied already; belt and braces
        blob = unit.tx.blobs.get(row.content_id)
        if blob is None:
            raise NotFoundError("the attachment's content is missing")
        keyring = self._core.keyring
        data = keyring.open(unit.tx, row.patient_id, ATTACHMENT_KIND, row.content_id, blob.sealed)
        unit.record(actor, action, resource, decision)
        return row, self._attachment(unit, row), data, thread

    # --- deadlines -----------------------------------------------------------------------------

    def tick(
        self, now: datetime | None = None, *, batch: int = 500, part: Slice | None = None
    ) -> dict[str, int]:
        """Apply the retention policy (``MessagingSettings.retention``): delete messages sent
        before ``now - retention``, their attachments, and threads left empty.

        :return: ``{"messages_expired": n}``; nothing when no retention is set.
        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        retention = self.settings.retention
        if retention is None:
            return {}
        moment = now if now is not None else self._core.now()
        cutoff = moment - retention
        expired = 0
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                rows = unit.tx.messages.sent_before(cutoff, limit=batch, part=part)
                for row in rows:
                    self._expire(unit, row)
                expired += len(rows)
            if len(rows) < batch:
                return {"messages_expired": expired}

    def _expire(self, unit: Unit, row: MessageRow) -> None:
        tx = unit.tx
        for attachment in tx.messages.attachments_in_thread(row.thread_id):
            if attachment.message_id == row.id:
                tx.blobs.delete(attachment.content_id)
        tx.messages.delete_message(row.id)
        if not tx.messages.messages_in_thread(row.thread_id):
            tx.messages.delete_thread(row.thread_id)
        unit.record(
            _DEADLINES,
            "message.expire",
            Resource(row.patient_id, "message", row.id),
            "messaging_retention",
        )

    # --- internals ---------------------------------------------------------------------------

    def _authorize(
        self, unit: Unit, actor: Actor, action: Action, thread_id: str
    ) -> tuple[ThreadRow, Resource, Decision]:
        """The thread *thread_id*, if *actor* may do *action* on it. A thread that does not
        exist is denied exactly like one the actor does not take part in."""
        row = unit.tx.messages.get_thread(thread_id)
        resource = Resource(row.patient_id if row is not None else None, "thread", thread_id)
        decision = unit.authorize(actor, action, resource, thread=row)
        if row is None:
            raise AccessDeniedError("deny_by_default")  # the policy denied already
        return row, resource, decision

    def _resolve(
        self,
        actor: Actor,
        patient_id: str,
        items: Sequence[NewAttachment | RecordAttachment],
    ) -> list[NewAttachment]:
        files: list[NewAttachment] = []
        for item in items:
            if isinstance(item, NewAttachment):
                files.append(item)
                continue
            # The record decides (and audits) whether the sender may read the document.
            document = self._record.get_document(actor, item.document_id)
            if document.patient_id != patient_id:
                raise ValidationError(
                    "a record document may only be sent to the patient whose record holds it"
                )
            content = self._record.read_content(actor, item.document_id)
            files.append(
                NewAttachment(
                    filename_of(document.title, document.media_type), document.media_type, content
                )
            )
        return files

    def _prepare(self, files: Sequence[NewAttachment]) -> list[_Prepared]:
        check_attachment_sizes([len(f.content) for f in files], self.settings)
        prepared = []
        for position, file in enumerate(files):
            try:
                media = check_media_type(file.media_type, file.content)
            except ValidationError as exc:
                raise ValidationError(f"attachment {position + 1}: {exc}") from None
            prepared.append(
                _Prepared(
                    safe_filename(file.filename),
                    media,
                    file.content,
                    hashlib.sha256(file.content).digest(),
                    self._parse(media, file.content),
                )
            )
        return prepared

    def _parse(self, media: str, content: bytes) -> ParsedDocument | None:
        """The header of a CDA (or any document a parser plugin reads); ``None`` otherwise.

        A document that a parser accepts but cannot read (malformed, hostile) is refused:
        ``ValidationError`` propagates.
        """
        for parser in self._core.plugins.document_parsers.values():
            if parser.accepts(media, content):
                return parser.parse(content)
        return None

    def _check_cda_patients(self, unit: Unit, patient_id: str, prepared: list[_Prepared]) -> None:
        """Every document naming a patient must name this one (identity vigilance: a
        report about someone else must not reach this mailbox)."""
        named = [p for p in prepared if p.parsed is not None and p.parsed.patient_ins]
        if not named:
            return
        identity = read_identity(self._core, unit.tx, patient_id)
        for position, item in enumerate(prepared):
            parsed = item.parsed
            if parsed is None or parsed.patient_ins is None:
                continue
            if not names_person(identity, parsed.patient_ins, parsed.patient_ins_oid):
                raise ValidationError(
                    f"attachment {position + 1} is about another patient than the recipient"
                )

    def _store(
        self,
        unit: Unit,
        actor: Actor,
        thread: ThreadRow,
        *,
        subject: str,
        body: str,
        prepared: list[_Prepared],
        closes: bool,
        ins_qualified: bool | None,
        rfc_message_id: str,
        in_reply_to: str | None = None,
        origin: str = "space",
    ) -> MessageRow:
        tx = unit.tx
        patient_id = thread.patient_id
        earlier = tx.messages.messages_in_thread(thread.id)
        in_reply_to, references = reply_headers(
            [(side_of(m), m.rfc_message_id) for m in earlier], actor_side(actor.kind), in_reply_to
        )
        message_id = new_id()
        payload = MessagePayload(subject, body, in_reply_to, references)
        sealed = self._seal(unit, patient_id, MESSAGE_KIND, message_id, message_payload(payload))
        row = message_row(
            message_id,
            thread,
            sender_kind=actor.kind,
            sender_id=actor.id,
            now=unit.now,
            rfc_message_id=rfc_message_id,
            origin=origin,
            sealed=sealed,
            closes_thread=closes,
            ins_qualified=ins_qualified,
            position=earlier[-1].position + 1 if earlier else 0,
        )
        tx.messages.add_message(row)
        for position, item in enumerate(prepared):
            self._store_attachment(unit, row, position, item)
        if actor.kind is ActorKind.PROFESSIONAL:
            # FIN belongs to a message: the professional's latest message decides.
            updated = attrs.evolve(
                thread,
                last_message_at=unit.now,
                status=str(ThreadStatus.CLOSED if closes else ThreadStatus.OPEN),
                closed_at=unit.now if closes else None,
                patient_archived=False,
            )
        else:
            updated = attrs.evolve(thread, last_message_at=unit.now, professional_archived=False)
        tx.messages.update_thread(updated)
        return row

    def _store_attachment(
        self, unit: Unit, message: MessageRow, position: int, item: _Prepared
    ) -> None:
        patient_id = message.patient_id
        content_id = new_id()
        attachment_id = new_id()
        sealed = self._seal(unit, patient_id, ATTACHMENT_KIND, content_id, item.content)
        unit.tx.blobs.add(
            attachment_blob_row(
                content_id,
                patient_id,
                media_type=item.media_type,
                size=len(item.content),
                sha256=item.sha256,
                sealed=sealed,
                now=unit.now,
            )
        )
        meta = attachment_meta(item.filename, item.cda_codes)
        unit.tx.messages.add_attachment(
            attachment_row(
                attachment_id,
                message,
                content_id=content_id,
                media_type=item.media_type,
                size=len(item.content),
                sha256=item.sha256,
                sealed_meta=self._seal(unit, patient_id, ATTACHMENT_META_KIND, attachment_id, meta),
                position=position,
            )
        )

    def _seal(self, unit: Unit, patient_id: str, kind: str, object_id: str, data: bytes) -> bytes:
        return self._core.keyring.seal(unit.tx, patient_id, kind, object_id, data)

    def _open(self, unit: Unit, patient_id: str, kind: str, object_id: str, data: bytes) -> bytes:
        return self._core.keyring.open(unit.tx, patient_id, kind, object_id, data)

    def _local_message_id(self) -> str:
        return f"<{new_id()}@{self.settings.message_id_domain}>"

    def _reply_subject(self, unit: Unit, thread: ThreadRow) -> str:
        subject = self._open(
            unit, thread.patient_id, THREAD_KIND, thread.id, thread.sealed_subject
        ).decode()
        return reply_subject(subject, self.settings.max_subject_chars)

    def _tell_patient(self, unit: Unit, patient_id: str, message_id: str) -> None:
        """Tell the patient a message is waiting, on their personal contact: e-mail, else SMS.

        The notice says that a message arrived, never its subject, sender or text.
        """
        contact = read_contact(self._core, unit.tx, patient_id)
        if contact is None:
            return
        if contact.email:
            channel, recipient, body = "email", contact.email, _NOTICE_BODY
        elif contact.phone:
            channel, recipient, body = "sms", contact.phone, _NOTICE_SMS
        else:
            return
        unit.notify(
            channel=channel,
            recipient=recipient,
            subject=_NOTICE_SUBJECT,
            body=body,
            kind="new-message",
            patient_id=patient_id,
            idempotency_key=f"new-message:{message_id}",
        )

    def _deliver_outbound(
        self,
        unit: Unit,
        thread: ThreadRow,
        *,
        row: MessageRow,
        subject: str,
        body: str,
        prepared: list[_Prepared],
    ) -> None:
        """Queue a message of the patient's side for the professional's MSSanté mailbox."""
        if not self.settings.deliver_to_mssante:
            return
        professional = unit.tx.access.professional(thread.professional_id)
        identity = read_identity(self._core, unit.tx, thread.patient_id)
        if professional is None or not professional.mssante or identity is None:
            return
        payload = read_message_payload(
            self._open(unit, row.patient_id, MESSAGE_KIND, row.id, row.sealed)
        )
        outbound = OutboundMessage(
            message_id=row.id,
            thread_id=thread.id,
            rfc_message_id=row.rfc_message_id,
            sender=patient_address(identity.ins.matricule).value,
            recipient=professional.mssante,
            subject=subject,
            body=body,
            sent_at=row.sent_at,
            in_reply_to=payload.in_reply_to,
            references=payload.references,
            # Every CDA was checked against the patient's INS above: say so (X-MSS-INS: O).
            ins_qualified=True
            if any(p.parsed and p.parsed.patient_ins for p in prepared)
            else None,
            attachments=tuple(
                OutboundAttachment(p.filename, p.media_type, p.content, p.cda_codes)
                for p in prepared
            ),
        )
        unit.notify(
            channel=MSSANTE_CHANNEL,
            recipient=professional.mssante,
            subject="Message sécurisé",
            body=encode_outbound(outbound),
            kind=OUTBOUND_KIND,
            patient_id=thread.patient_id,
            idempotency_key=f"mssante:{row.id}",
        )

    # --- models ------------------------------------------------------------------------------

    def _thread(
        self,
        unit: Unit,
        row: ThreadRow,
        side: str,
        *,
        unread: int | None = None,
        count: int | None = None,
    ) -> Thread:
        subject = self._open(unit, row.patient_id, THREAD_KIND, row.id, row.sealed_subject)
        if unread is None or count is None:
            messages = unit.tx.messages.messages_in_thread(row.id)
            count = len(messages) if count is None else count
            if unread is None:
                unread = sum(1 for m in messages if m.read_at is None and side_of(m) != side)
        stored = unit.tx.access.professional(row.professional_id)
        professional = None if stored is None else professional_from_row(stored)
        return thread_from_row(
            row, subject, side, count=count, unread=unread, professional=professional
        )

    def _message(
        self, unit: Unit, row: MessageRow, attachments: list[AttachmentRow] | None = None
    ) -> Message:
        payload = read_message_payload(
            self._open(unit, row.patient_id, MESSAGE_KIND, row.id, row.sealed)
        )
        if attachments is None:
            attachments = [
                a
                for a in unit.tx.messages.attachments_in_thread(row.thread_id)
                if a.message_id == row.id
            ]
        return message_from_row(row, payload, tuple(self._attachment(unit, a) for a in attachments))

    def _attachment(self, unit: Unit, row: AttachmentRow) -> Attachment:
        meta = self._open(unit, row.patient_id, ATTACHMENT_META_KIND, row.id, row.sealed_meta)
        return attachment_from_row(row, meta)
