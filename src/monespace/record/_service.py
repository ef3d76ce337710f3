"""``space.record``: the documents of a patient's record, their visibility and search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import attrs

from .._ids import new_id
from .._unit import Core, Unit
from ..access import Action, Resource, decide
from ..accounts._lifecycle import add_months
from ..accounts._service import read_contact, read_identity
from ..actors import Actor, ActorKind
from ..crypto import content_aad, open_sealed
from ..errors import AccessDeniedError, NotFoundError, ValidationError
from ..interop.cda import CdaDocument
from ..storage import BlobRow, DocumentRow
from ._codes import class_code_for, is_member
from ._mime import check_media_type, sniff
from ._model import (
    TRE_A05_TYPE,
    Author,
    AuthorKind,
    Category,
    Code,
    Document,
    DocumentPage,
    DocumentStatus,
    RecordSettings,
    category_of,
)
from ._parsers import ParsedDocument

__all__ = ["RecordService"]

_BLOB_KIND = "document"
_META_KIND = "document-meta"
_MASQUE_PS, _INVISIBLE_PATIENT, _INVISIBLE_REPRESENTANTS = 1, 2, 4
_CONFIDENTIALITY_FLAGS = {
    "MASQUE_PS": _MASQUE_PS,
    "INVISIBLE_PATIENT": _INVISIBLE_PATIENT,
    "INVISIBLE_REPRESENTANTS_LEGAUX": _INVISIBLE_REPRESENTANTS,
}
_LEVELS = frozenset({"N", "R", "V"})
#: The years a document's dates may fall in. Below year 1000 the stored form of a timestamp
#: (fixed-width UTC text) breaks, and near year 9999 converting to UTC overflows.
_YEARS = range(1900, 9999)


def _check_time(name: str, moment: datetime | None) -> None:
    """Refuse a naive or absurd date before it reaches storage.

    Fix: naive datetimes were stored as given; on the memory backend one naive ``created_at``
    made every later search of the record fail (comparing naive and aware datetimes), and on
    SQLite it was silently read as the machine's local time. A ``created_at`` in year 999 was
    stored but could not be read back, so every search of the record failed on SQLite.
    """
    if moment is None:
        return
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{name!r} must be timezone-aware")
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        year = moment.year
    if year not in _YEARS:
        raise ValidationError(f"{name!r} must fall between {_YEARS[0]} and {_YEARS[-1]}")


class RecordService:
    """The medical record: typed documents under the access policy.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def settings(self) -> RecordSettings:
        """The record's delays in force (``Settings.record``)."""
        return self._core.settings.record

    # --- adding ------------------------------------------------------------------------------

    def add_document(
        self,
        actor: Actor,
        patient_id: str,
        content: bytes,
        *,
        media_type: str,
        type_code: Code | None = None,
        class_code: str | None = None,
        title: str | None = None,
        author: Author | None = None,
        created_at: datetime | None = None,
        format_code: str | None = None,
        confidentiality: str = "N",
        masked: bool = False,
        hidden_from_patient: bool = False,
        hidden_from_representatives: bool = False,
        comments: str | None = None,
        unique_id: str | None = None,
        service_start: datetime | None = None,
        service_stop: datetime | None = None,
    ) -> Document:
        """Add a document to *patient_id*'s record.

        A CDA R2 document (XML) fills what its header carries: type code, title, creation
        time, confidentiality codes, unique id; its patient must be the holder of the record.
        Other contents need an explicit *type_code*.

        :raises ValidationError: unknown or inconsistent codes, a media type that lies, an
            empty or oversized content, a CDA about someone else; nothing is stored.
        :raises AccessDeniedError: when the actor may not add to this record.
        """
        media = self._check_content(content, media_type)
        parsed = self._parse(media, content)
        _check_time("created_at", created_at)
        _check_time("service_start", service_start)
        _check_time("service_stop", service_stop)
        if created_at is None and parsed is not None:
            _check_time("effectiveTime", parsed.effective_time)
        with self._core.unit() as unit:
            resource = Resource(patient_id, "document")
            decision = unit.authorize(actor, Action.DOCUMENT_ADD, resource)
            document_author = self._author(actor, author)
            if parsed is not None:
                self._check_patient(unit, patient_id, parsed)
            type_, klass = self._codes(
                type_code or (_code(parsed.type_code, parsed.type_code_system) if parsed else None),
                class_code,
                document_author,
            )
            flags, level = self._flags(
                parsed, confidentiality, masked, hidden_from_patient, hidden_from_representatives
            )
            # Fix: a professional depositing in the name of their establishment (an author
            # this method accepts) could not hide a result from the patient: the check
            # looked at the author's kind, and only PROFESSIONAL passed.
            if flags & (_INVISIBLE_PATIENT | _INVISIBLE_REPRESENTANTS) and (
                document_author.kind not in (AuthorKind.PROFESSIONAL, AuthorKind.ESTABLISHMENT)
            ):
                raise ValidationError(
                    "only a professional may hide a document from the patient or from the "
                    "legal representatives"
                )
            release_at, notify_at = self._announcement(unit.now, flags)
            document_id = new_id()
            document = Document(
                id=document_id,
                patient_id=patient_id,
                lineage_id=document_id,
                version=1,
                unique_id=unique_id or (parsed.document_id if parsed else None) or document_id,
                class_code=klass,
                type_code=type_,
                format_code=format_code,
                media_type=media,
                author=document_author,
                title=(title or (parsed.title if parsed else None) or "Document").strip(),
                created_at=created_at or (parsed.effective_time if parsed else None) or unit.now,
                submitted_at=unit.now,
                content_id=new_id(),
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                confidentiality=level,
                masked=bool(flags & _MASQUE_PS),
                hidden_from_patient=bool(flags & _INVISIBLE_PATIENT),
                hidden_from_representatives=bool(flags & _INVISIBLE_REPRESENTANTS),
                comments=comments,
                service_start=service_start,
                service_stop=service_stop,
                release_at=release_at,
                notify_at=notify_at,
                submitted_by=(
                    actor.id if document_author.kind is AuthorKind.ESTABLISHMENT else None
                ),
            )
            self._store(unit, document, content)
            event = Resource(patient_id, "document", document_id)
            unit.record(actor, Action.DOCUMENT_ADD, event, decision)
            if actor.kind is not ActorKind.PATIENT and not document.hidden_from_patient:
                self._tell_patient(unit, patient_id, kind="new-document")
            return document

    def _check_content(self, content: bytes, media_type: str) -> str:
        limit = self._core.settings.max_content_bytes
        if not content:
            raise ValidationError("a document must not be empty")
        if len(content) > limit:
            raise ValidationError(f"a document must be at most {limit} bytes (got {len(content)})")
        return check_media_type(media_type, content)

    def _parse(self, media: str, content: bytes) -> ParsedDocument | None:
        # Fix: XML may be declared text/plain (it is text), and the CDA parser only accepts
        # XML media types, so a CDA about another patient declared text/plain was stored
        # without its patient being checked. XML content is offered to the parsers as XML too.
        offered = [media]
        if media == "text/plain" and sniff(content) == "text/xml":
            offered.append("text/xml")
        for parser in self._core.plugins.document_parsers.values():
            if any(parser.accepts(m, content) for m in offered):
                return parser.parse(content)
        return None

    def _check_patient(self, unit: Unit, patient_id: str, parsed: ParsedDocument) -> None:
        """A document naming a patient must name the holder of the record it is added to."""
        if parsed.patient_ins is None:
            return
        identity = read_identity(self._core, unit.tx, patient_id)
        same = identity is not None and identity.ins.matricule.value == (
            parsed.patient_ins.strip().upper()
        )
        # A test or demo INS never matches a real one, even with the same matricule.
        if same and identity is not None and parsed.patient_ins_oid is not None:
            same = identity.ins.oid == parsed.patient_ins_oid.removeprefix("urn:oid:")
        if not same:
            raise ValidationError("the document is about another patient than this record's")

    def _author(self, actor: Actor, given: Author | None) -> Author:
        """Who the document is by: derived from the actor, never taken on trust."""
        derived = {
            ActorKind.PATIENT: AuthorKind.PATIENT,
            ActorKind.REPRESENTATIVE: AuthorKind.REPRESENTATIVE,
            ActorKind.PROFESSIONAL: AuthorKind.PROFESSIONAL,
            ActorKind.APP: AuthorKind.APP,
            ActorKind.SYSTEM: AuthorKind.INSURER,
        }[actor.kind]
        if given is None:
            return Author(derived, actor.id)
        allowed = {derived} | (
            {AuthorKind.ESTABLISHMENT} if derived is AuthorKind.PROFESSIONAL else set()
        )
        if given.kind not in allowed or (
            given.kind is not AuthorKind.ESTABLISHMENT and given.id != actor.id
        ):
            raise ValidationError("a document's author must be the actor who adds it")
        return given

    def _codes(
        self, type_code: Code | None, class_code: str | None, author: Author
    ) -> tuple[Code, str]:
        if type_code is None:
            raise ValidationError("a document needs a type code (XDS typeCode)")
        derived = class_code_for(type_code.code, type_code.system)
        # Fix: a type of the DMP's own list (JDV_J66, through the ASS_X16 type -> class map)
        # that the CI-SIS set J07 no longer carries, such as 11526-1 (pathology report), was
        # refused although monespace maps it to its class and shows it among the results.
        if derived is None and not is_member("J07", type_code.code, type_code.system):
            raise ValidationError(
                f"type code {type_code.code!r} ({type_code.system}) is not in the CI-SIS "
                "value set JDV_J07_XdsTypeCode_CISIS"
            )
        klass = class_code or derived
        if klass is None:
            raise ValidationError(
                f"no class code is known for type code {type_code.code!r}; give one explicitly"
            )
        if derived is not None and class_code is not None and class_code != derived:
            raise ValidationError(
                f"class code {class_code!r} is inconsistent with type code "
                f"{type_code.code!r} (expected {derived!r})"
            )
        by_holder = author.kind in (AuthorKind.PATIENT, AuthorKind.REPRESENTATIVE)
        patient_type = type_code.system == TRE_A05_TYPE and type_code.code.startswith(
            ("DOCPAT", "EXPPAT")
        )
        if by_holder and not patient_type:
            raise ValidationError(
                "documents added by the patient use the DOCPAT or EXPPAT types (TRE_A05)"
            )
        return type_code, klass

    @staticmethod
    def _flags(
        parsed: ParsedDocument | None,
        confidentiality: str,
        masked: bool,
        hidden_from_patient: bool,
        hidden_from_representatives: bool,
    ) -> tuple[int, str]:
        codes = set(parsed.confidentiality if parsed else ())
        flags = (
            (_MASQUE_PS if masked else 0)
            | (_INVISIBLE_PATIENT if hidden_from_patient else 0)
            | (_INVISIBLE_REPRESENTANTS if hidden_from_representatives else 0)
        )
        for code in codes:
            flags |= _CONFIDENTIALITY_FLAGS.get(code, 0)
        levels = sorted(codes & _LEVELS)
        level = levels[-1] if levels and confidentiality == "N" else confidentiality
        if level not in _LEVELS:
            raise ValidationError("'confidentiality' must be N, R or V")
        return flags, level

    def _announcement(self, now: datetime, flags: int) -> tuple[datetime | None, datetime | None]:
        """When a hidden result is released, and when the patient is told it is waiting."""
        if not flags & _INVISIBLE_PATIENT:
            return None, None
        return (
            add_months(now, self.settings.announcement_months),
            now + self.settings.announcement_notice,
        )

    def _store(self, unit: Unit, document: Document, content: bytes) -> None:
        keyring = self._core.keyring
        pid = document.patient_id
        sealed = keyring.seal(unit.tx, pid, _BLOB_KIND, document.content_id, content)
        unit.tx.blobs.add(
            BlobRow(
                document.content_id,
                pid,
                _BLOB_KIND,
                document.media_type,
                document.size,
                bytes.fromhex(document.sha256),
                sealed,
                unit.now,
            )
        )
        unit.tx.documents.add(self._row(unit, document))

    def _row(self, unit: Unit, document: Document) -> DocumentRow:
        meta = {
            "title": document.title,
            "comments": document.comments,
            "type_display": document.type_code.display,
            "author": attrs.asdict(document.author, recurse=True),
            "service_start": _iso(document.service_start),
            "service_stop": _iso(document.service_stop),
        }
        sealed = self._core.keyring.seal(
            unit.tx, document.patient_id, _META_KIND, document.id, json.dumps(meta).encode()
        )
        return DocumentRow(
            id=document.id,
            patient_id=document.patient_id,
            lineage_id=document.lineage_id,
            version=document.version,
            unique_id=document.unique_id,
            class_code=document.class_code,
            type_code=document.type_code.code,
            type_system=document.type_code.system,
            format_code=document.format_code,
            media_type=document.media_type,
            confidentiality=document.confidentiality,
            flags=(
                (_MASQUE_PS if document.masked else 0)
                | (_INVISIBLE_PATIENT if document.hidden_from_patient else 0)
                | (_INVISIBLE_REPRESENTANTS if document.hidden_from_representatives else 0)
            ),
            author_kind=str(document.author.kind),
            author_id=document.author.id,
            created_at=document.created_at,
            submitted_at=document.submitted_at,
            status=str(document.status),
            replaces=document.replaces,
            content_id=document.content_id,
            size=document.size,
            sha256=bytes.fromhex(document.sha256),
            sealed_meta=sealed,
            release_at=document.release_at,
            notify_at=document.notify_at,
            submitted_by=document.submitted_by,
        )

    def _document(self, unit: Unit, row: DocumentRow, key: bytes | None = None) -> Document:
        """The document of *row*; *key*: the patient's data key, when the caller holds it."""
        if key is None:
            key = self._core.keyring.get(unit.tx, row.patient_id)
        raw = open_sealed(key, row.sealed_meta, content_aad(_META_KIND, row.patient_id, row.id))
        meta = json.loads(raw)
        author = meta["author"]
        specialty = author.get("specialty")
        return Document(
            id=row.id,
            patient_id=row.patient_id,
            lineage_id=row.lineage_id,
            version=row.version,
            unique_id=row.unique_id,
            class_code=row.class_code,
            type_code=Code(row.type_code, row.type_system, meta.get("type_display")),
            format_code=row.format_code,
            media_type=row.media_type,
            author=Author(
                AuthorKind(author["kind"]),
                author["id"],
                author.get("name"),
                Code(**specialty) if specialty else None,
                author.get("organisation"),
            ),
            title=meta["title"],
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            content_id=row.content_id,
            size=row.size,
            sha256=row.sha256.hex(),
            confidentiality=row.confidentiality,
            masked=bool(row.flags & _MASQUE_PS),
            hidden_from_patient=bool(row.flags & _INVISIBLE_PATIENT),
            hidden_from_representatives=bool(row.flags & _INVISIBLE_REPRESENTANTS),
            comments=meta.get("comments"),
            service_start=_from_iso(meta.get("service_start")),
            service_stop=_from_iso(meta.get("service_stop")),
            status=DocumentStatus(row.status),
            replaces=row.replaces,
            release_at=row.release_at,
            notify_at=row.notify_at,
            submitted_by=row.submitted_by,
        )

    # --- reading -----------------------------------------------------------------------------

    def _authorized_row(
        self, unit: Unit, actor: Actor, action: Action, document_id: str
    ) -> tuple[DocumentRow, Resource]:
        """The document *document_id*, if *actor* may do *action* on it.

        A document that does not exist is denied exactly like one the actor may not see.
        """
        row = unit.tx.documents.get(document_id)
        resource = Resource(row.patient_id if row else None, "document", document_id)
        decision = unit.authorize(actor, action, resource, document=row)
        if row is None:  # the policy denies resources without an owner; never rely on it alone
            raise AccessDeniedError("deny_by_default")
        unit.record(actor, action, resource, decision)
        return row, resource

    def get_document(self, actor: Actor, document_id: str) -> Document:
        """A document's metadata.

        :raises AccessDeniedError: when the actor may not see it, or it does not exist.
        """
        with self._core.unit() as unit:
            row, _ = self._authorized_row(unit, actor, Action.DOCUMENT_READ, document_id)
            return self._document(unit, row)

    def read_content(self, actor: Actor, document_id: str) -> bytes:
        """A document's content, decrypted. Each read is audited."""
        with self._core.unit() as unit:
            row, _ = self._authorized_row(unit, actor, Action.DOCUMENT_READ, document_id)
            blob = unit.tx.blobs.get(row.content_id)
            if blob is None:
                raise NotFoundError("the document's content is missing")
            return self._core.keyring.open(
                unit.tx, row.patient_id, _BLOB_KIND, row.content_id, blob.sealed
            )

    def search(
        self,
        actor: Actor,
        patient_id: str,
        *,
        category: Category | str | None = None,
        type_code: str | None = None,
        author_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        include_replaced: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> DocumentPage:
        """The documents of a record that *actor* may see, newest first, one page at a time.

        :param category: only this category (see :class:`~monespace.record.Category`).
        :param since: created at or after; *until*: created before.
        :param text: words that must all appear in the title or comments (case-insensitive,
            accents matter).
        :param include_replaced: also list versions replaced by newer ones.
        """
        if not 1 <= limit <= 500 or offset < 0:
            raise ValidationError("'limit' must be 1-500 and 'offset' not negative")
        return self._search(
            actor,
            patient_id,
            category=category,
            type_code=type_code,
            author_id=author_id,
            since=since,
            until=until,
            text=text,
            include_replaced=include_replaced,
            offset=offset,
            limit=limit,
        )

    def _search(
        self,
        actor: Actor,
        patient_id: str,
        *,
        category: Category | str | None = None,
        type_code: str | None = None,
        author_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        include_replaced: bool = False,
        offset: int = 0,
        limit: int | None,
    ) -> DocumentPage:
        """:meth:`search`, where ``limit=None`` means every match."""
        # Fix: an unknown category raised ValueError and naive dates a TypeError deep in the
        # filter; both are bad input, so ValidationError.
        try:
            wanted = Category(category) if category is not None else None
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ValidationError(f"unknown category (known: {known})") from None
        _check_time("since", since)
        _check_time("until", until)
        words = [w.casefold() for w in (text or "").split()]
        with self._core.unit() as unit:
            resource = Resource(patient_id, "record")
            decision = unit.authorize(actor, Action.DOCUMENT_SEARCH, resource)
            # Performance: every filter but the words works on the stored row (the category
            # derives from its codes), so only the requested page is decrypted; the words,
            # which are sealed, need every candidate decrypted. Decrypting the whole record
            # for each page made the first page of a 1,000-document record cost as much as
            # listing all of it.
            rows = [
                row
                for row in reversed(unit.tx.documents.for_patient(patient_id))
                if (include_replaced or row.status == DocumentStatus.APPROVED)
                and (type_code is None or row.type_code == type_code)
                and (author_id is None or row.author_id == author_id)
                and (since is None or row.created_at >= since)
                and (until is None or row.created_at < until)
                and (wanted is None or _category(row) is wanted)
                and self._may_read(unit, actor, row)
            ]
            end = None if limit is None else offset + limit
            # One record, one data key: read it once, not once per document.
            key = self._core.keyring.get(unit.tx, patient_id) if rows else b""
            if words:
                found = [
                    d
                    for d in (self._document(unit, row, key) for row in rows)
                    if _has_words(d, words)
                ]
                total, page = len(found), tuple(found[offset:end])
            else:
                total = len(rows)
                page = tuple(self._document(unit, row, key) for row in rows[offset:end])
            unit.record(actor, Action.DOCUMENT_SEARCH, resource, decision)
            return DocumentPage(page, total, offset, len(page) if limit is None else limit)

    def _may_read(self, unit: Unit, actor: Actor, row: DocumentRow) -> bool:
        resource = Resource(row.patient_id, "document", row.id)
        facts = unit.facts(actor, resource, document=row)
        return decide(actor, Action.DOCUMENT_READ, resource, facts, self._core.rules).allowed

    # --- changing ------------------------------------------------------------------------------

    def _update(
        self,
        actor: Actor,
        action: Action,
        document_id: str,
        change: Callable[[DocumentRow], DocumentRow],
        *,
        tell_patient: bool = False,
    ) -> Document:
        with self._core.unit() as unit:
            row, _ = self._authorized_row(unit, actor, action, document_id)
            if row.status != DocumentStatus.APPROVED:
                raise ValidationError(
                    f"the document is {row.status}; only the current version changes"
                )
            updated = change(row)
            unit.tx.documents.update(updated)
            # Fix: masking, unmasking, releasing and deleting changed the current version
            # only, so the versions it replaced stayed readable by every authorised
            # professional after a masking, and by everyone after a deletion. A change made
            # through the current version applies to the whole document: every version.
            for other in unit.tx.documents.for_patient(row.patient_id):
                if other.lineage_id == row.lineage_id and other.id != row.id:
                    unit.tx.documents.update(change(other))
            # Fix: releasing a document that was not hidden told the patient of a "new
            # document" each time: only a release that makes something visible tells them.
            if tell_patient and row.flags & _INVISIBLE_PATIENT:
                self._tell_patient(unit, row.patient_id, kind="new-document")
            return self._document(unit, updated)

    def mask(self, actor: Actor, document_id: str) -> Document:
        """Hide a document from professionals (MASQUE_PS): only its author still sees it.

        The holder (or their representative) decides, and may change their mind at any time
        (R1111-49).
        """
        return self._update(
            actor,
            Action.DOCUMENT_MASK,
            document_id,
            lambda row: attrs.evolve(row, flags=row.flags | _MASQUE_PS),
        )

    def unmask(self, actor: Actor, document_id: str) -> Document:
        """Show a masked document to authorised professionals again."""
        return self._update(
            actor,
            Action.DOCUMENT_UNMASK,
            document_id,
            lambda row: attrs.evolve(row, flags=row.flags & ~_MASQUE_PS),
        )

    def release(self, actor: Actor, document_id: str) -> Document:
        """The author releases a result after the announcement consultation (R1111-53)."""
        return self._update(
            actor,
            Action.DOCUMENT_RELEASE,
            document_id,
            _released,
            tell_patient=True,
        )

    def delete(self, actor: Actor, document_id: str) -> Document:
        """Delete a document (its author only): every version of it, which stay stored,
        marked deleted."""
        return self._update(
            actor,
            Action.DOCUMENT_DELETE,
            document_id,
            lambda row: attrs.evolve(row, status=str(DocumentStatus.DELETED)),
        )

    def replace(
        self,
        actor: Actor,
        document_id: str,
        content: bytes,
        *,
        media_type: str,
        title: str | None = None,
        comments: str | None = None,
    ) -> Document:
        """A new version of a document by its author; the old one is marked deprecated.

        The type, class and visibility flags carry over; the unique id is new.

        :raises ValidationError: when the document was deleted or already replaced.
        """
        media = self._check_content(content, media_type)
        # Fix: the new content was never parsed, so a CDA about another patient (or a
        # hostile one) could replace a document that passed these checks when it was added.
        parsed = self._parse(media, content)
        with self._core.unit() as unit:
            row, _ = self._authorized_row(unit, actor, Action.DOCUMENT_REPLACE, document_id)
            if row.status != DocumentStatus.APPROVED:
                raise ValidationError(f"a {row.status} document cannot be replaced")
            if parsed is not None:
                self._check_patient(unit, row.patient_id, parsed)
            old = self._document(unit, row)
            new_id_ = new_id()
            document = attrs.evolve(
                old,
                id=new_id_,
                version=old.version + 1,
                unique_id=new_id_,
                media_type=media,
                title=title or old.title,
                comments=comments if comments is not None else old.comments,
                submitted_at=unit.now,
                created_at=unit.now,
                content_id=new_id(),
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                replaces=old.id,
                status=DocumentStatus.APPROVED,
            )
            unit.tx.documents.update(attrs.evolve(row, status=str(DocumentStatus.DEPRECATED)))
            self._store(unit, document, content)
            return document

    # --- deadlines -----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, batch: int = 500) -> dict[str, int]:
        """Tell patients whose result is still hidden after two weeks, and release hidden
        results after one month (R1111-53).

        :return: ``announcement_notices`` and ``released`` counts.
        """
        moment = now if now is not None else self._core.now()
        counts = {"announcement_notices": 0, "released": 0}
        system = Actor.system("deadlines")
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                notices = unit.tx.documents.to_notify(moment, limit=batch)
                for row in notices:
                    unit.tx.documents.update(attrs.evolve(row, notify_at=None))
                    # Fix: deleted and replaced versions kept their deadlines, so the patient
                    # was told about a deleted result, and twice about a replaced one. Only
                    # the current version of a document is announced.
                    if row.status != DocumentStatus.APPROVED:
                        continue
                    self._tell_patient(unit, row.patient_id, kind="announcement-pending")
                    unit.record(
                        system,
                        "document.notice",
                        Resource(row.patient_id, "document", row.id),
                        "announcement_deadline",
                    )
                    counts["announcement_notices"] += 1
                releases = unit.tx.documents.releasing(moment, limit=batch)
                for row in releases:
                    unit.tx.documents.update(_released(row))
                    unit.record(
                        system,
                        "document.release",
                        Resource(row.patient_id, "document", row.id),
                        "announcement_deadline",
                    )
                    if row.status != DocumentStatus.APPROVED:
                        continue  # an old version is released with the current one, silently
                    self._tell_patient(unit, row.patient_id, kind="new-document")
                    counts["released"] += 1
            if len(notices) < batch and len(releases) < batch:
                return counts

    def _tell_patient(self, unit: Unit, patient_id: str, *, kind: str) -> None:
        contact = read_contact(self._core, unit.tx, patient_id)
        if contact is None or not contact.email:
            return
        subject, body = _NOTICES[kind]
        unit.notify(
            channel="email",
            recipient=contact.email,
            subject=subject,
            body=body,
            kind=kind,
            patient_id=patient_id,
        )

    def import_legacy(
        self,
        unit: Unit,
        actor: Actor,
        patient_id: str,
        content: bytes,
        *,
        cda: CdaDocument,
        unique_id: str,
    ) -> Document:
        """Store a legacy DMP document in a space, within the migration's unit of work.

        The space need not be open yet: the document becomes visible when it opens (or stays
        for professionals only, if the holder opposed). Its author is the professional the
        CDA names. The caller has matched the patient; the policy still decides.
        """
        resource = Resource(patient_id, "document")
        decision = unit.authorize(actor, Action.DMP_IMPORT, resource)
        if cda.type.code_system is None:
            raise ValidationError("the legacy document's type code has no code system")
        author = _legacy_author(cda)
        type_, klass = self._codes(Code(cda.type.code, cda.type.code_system), None, author)
        codes = tuple(c.code for c in cda.confidentiality)
        flags = 0
        for code in codes:
            flags |= _CONFIDENTIALITY_FLAGS.get(code, 0)
        levels = sorted(set(codes) & _LEVELS)
        document_id = new_id()
        document = Document(
            id=document_id,
            patient_id=patient_id,
            lineage_id=document_id,
            version=1,
            unique_id=unique_id,
            class_code=klass,
            type_code=type_,
            format_code=None,
            media_type=check_media_type("text/xml", content),
            author=author,
            title=(cda.title or "Document du DMP").strip(),
            created_at=cda.effective_time or unit.now,
            submitted_at=unit.now,
            content_id=new_id(),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            confidentiality=levels[-1] if levels else "N",
            masked=bool(flags & _MASQUE_PS),
            hidden_from_patient=False,  # a result from years ago has had its announcement
            hidden_from_representatives=bool(flags & _INVISIBLE_REPRESENTANTS),
        )
        self._store(unit, document, content)
        unit.record(
            actor, Action.DMP_IMPORT, Resource(patient_id, "document", document_id), decision
        )
        return document

    def remove_legacy(self, unit: Unit, patient_id: str, document_ids: Iterable[str]) -> int:
        """Delete legacy documents of a record (a transitional DMP that closed)."""
        removed = 0
        for document_id in document_ids:
            row = unit.tx.documents.get(document_id)
            if row is None or row.patient_id != patient_id:
                continue
            unit.tx.documents.delete(document_id)
            unit.tx.blobs.delete(row.content_id)
            removed += 1
        return removed

    def documents_of(self, actor: Actor, patient_id: str) -> Iterable[Document]:
        """Every document *actor* may see in a record, newest first (what :meth:`search`
        lists without filters), read in one transaction and audited as one search."""
        # Fix: this paged through search() lazily, one transaction per 500 documents, so a
        # document added between two pages shifted the newest-first order: one document was
        # listed twice and the new one not at all. It also decided on every row once per page.
        return iter(self._search(actor, patient_id, limit=None).documents)


# --- legacy DMP migration (called by monespace.accounts._migration) ---------------------------


def _legacy_author(cda: CdaDocument) -> Author:
    """The first author with a national professional id, else the insurer that kept the DMP."""
    for author in cda.authors:
        if author.national_id:
            specialty = (
                Code(author.specialty.code, author.specialty.code_system)
                if author.specialty is not None and author.specialty.code_system
                else None
            )
            return Author(AuthorKind.PROFESSIONAL, author.national_id, specialty=specialty)
    return Author(AuthorKind.INSURER, "legacy-dmp")


# Notifications say that something happened, never what: no title, no type, no author.
_NOTICES = {
    "new-document": (
        "Nouveau document dans votre espace santé",
        "Un nouveau document a été ajouté à votre dossier médical.\n"
        "Connectez-vous à Mon espace santé pour le consulter.\n",
    ),
    "announcement-pending": (
        "Votre dossier médical a été mis à jour",
        "Votre dossier médical a été mis à jour. Nous vous invitons à prendre rendez-vous\n"
        "avec un professionnel de santé, en particulier votre médecin traitant.\n",
    ),
}


def _released(row: DocumentRow) -> DocumentRow:
    return attrs.evolve(row, flags=row.flags & ~_INVISIBLE_PATIENT, release_at=None, notify_at=None)


def _code(code: str | None, system: str | None) -> Code | None:
    return None if code is None or system is None else Code(code, system)


def _category(row: DocumentRow) -> Category:
    """What :attr:`Document.category` says, from the stored codes alone."""
    return category_of(row.class_code, Code(row.type_code, row.type_system))


def _has_words(document: Document, words: list[str]) -> bool:
    haystack = f"{document.title} {document.comments or ''}".casefold()
    return all(word in haystack for word in words)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
