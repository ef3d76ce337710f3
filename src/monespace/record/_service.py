"""``space.record``: the documents of a patient's record, their visibility and search."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._ids import new_id
from ..actors import Actor, ActorKind
from ..crypto import content_aad, open_sealed
from ..errors import (
    AccessDeniedError,
    ConflictError,
    MonespaceError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from ..identities import names_person, read_contact, read_identity
from ..policy import Action, Resource
from ..storage import DocumentRow, Slice
from ._mapping import (
    BLOB_KIND,
    META_KIND,
    blob_row,
    category_of_row,
    document_from_row,
    document_meta,
    document_row,
)
from ._mime import check_media_type, sniff
from ._model import (
    Author,
    AuthorKind,
    BatchResult,
    Category,
    Code,
    Document,
    DocumentPage,
    DocumentStatus,
    NewDocument,
    RecordSettings,
    Rejection,
)
from ._parsers import ParsedDocument
from ._rules import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS,
    MASQUE_PS,
    announcement,
    check_codes,
    check_comments,
    check_format_code,
    check_may_hide,
    check_minor_secret,
    check_time,
    document_author,
    document_title,
    flags_of,
    has_flag,
    matches_words,
    visibility,
)

if TYPE_CHECKING:
    from .._unit import Core, Unit

__all__ = ["RecordService"]


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
        minor_secret: bool = False,
    ) -> Document:
        """Add a document to *patient_id*'s record.

        A CDA R2 document (XML) fills what its header carries: type code, title, creation
        time, confidentiality codes, unique id; its patient must be the holder of the record.
        Other contents need an explicit *type_code*.

        :param minor_secret: the health insurer's reimbursement data of care a minor keeps
            secret and objected to seeing in their space (R1111-33): refused, never stored.
        :raises ValidationError: unknown or inconsistent codes, a media type that lies, an
            empty or oversized content, a CDA about someone else, *minor_secret* data;
            nothing is stored.
        :raises AccessDeniedError: when the actor may not add to this record.
        """
        new = NewDocument(
            patient_id,
            content,
            media_type,
            type_code=type_code,
            class_code=class_code,
            title=title,
            author=author,
            created_at=created_at,
            format_code=format_code,
            confidentiality=confidentiality,
            masked=masked,
            hidden_from_patient=hidden_from_patient,
            hidden_from_representatives=hidden_from_representatives,
            comments=comments,
            unique_id=unique_id,
            service_start=service_start,
            service_stop=service_stop,
            minor_secret=minor_secret,
        )
        ready = self._prepare(new)
        with self._core.unit() as unit:
            document = self._add(unit, actor, new, ready, batch=False)
            if actor.kind is not ActorKind.PATIENT and not document.hidden_from_patient:
                self._tell_patient(unit, patient_id, kind="new-document")
            return document

    #: The most documents one call of :meth:`add_documents` takes.
    MAX_BATCH = 1000

    def add_documents(self, actor: Actor, documents: Iterable[NewDocument]) -> BatchResult:
        """Add a batch of documents (a feed, a migration) in one transaction.

        Each document goes through what :meth:`add_document` checks and decides, and gets
        its own audit event; a document that fails (bad input, a denial, a unique id
        already in its record) is reported in :attr:`BatchResult.rejected` with the error
        :meth:`add_document` would raise (a denial is audited), and the others are added.
        The holder of each record that received documents gets one notice for the batch,
        not one per document. Everything commits together: a failure of the transaction
        itself (the disk) adds nothing and raises.

        :raises ValidationError: more than :attr:`MAX_BATCH` documents.

        .. versionadded:: 0.2
        """
        items = list(documents)
        if len(items) > self.MAX_BATCH:
            raise ValidationError(f"a batch holds at most {self.MAX_BATCH} documents")
        prepared: list[_Prepared | MonespaceError] = []
        for item in items:
            try:
                prepared.append(self._prepare(item))
            except MonespaceError as exc:
                prepared.append(exc)
        added: list[Document] = []
        rejected: list[Rejection] = []
        if not items:
            return BatchResult((), ())
        with self._core.unit() as unit:
            told: dict[str, None] = {}
            for index, (item, ready) in enumerate(zip(items, prepared, strict=True)):
                if isinstance(ready, MonespaceError):
                    rejected.append(Rejection(index, ready))
                    continue
                try:
                    document = self._add(unit, actor, item, ready, batch=True)
                except (ConflictError, NotFoundError) as exc:
                    rejected.append(Rejection(index, exc))
                    continue
                except StorageError:
                    raise  # the transaction itself failed: nothing of the batch is kept
                except MonespaceError as exc:
                    # Refused before anything of this document was written (a lone addition
                    # would have raised it): the others go on.
                    rejected.append(Rejection(index, exc))
                    continue
                added.append(document)
                if actor.kind is not ActorKind.PATIENT and not document.hidden_from_patient:
                    told[document.patient_id] = None
            for patient_id in told:
                self._tell_patient(unit, patient_id, kind="new-document")
        return BatchResult(tuple(added), tuple(rejected))

    def _prepare(self, new: NewDocument) -> _Prepared:
        """What is checked and computed before any transaction, so that the write lock is
        held for less: the content, its media type and what a parser reads from it, the
        times, and the content's SHA-256 (hex)."""
        media = self._check_content(new.content, new.media_type)
        parsed = self._parse(media, new.content)
        check_time("created_at", new.created_at)
        check_time("service_start", new.service_start)
        check_time("service_stop", new.service_stop)
        if new.created_at is None and parsed is not None:
            check_time("effectiveTime", parsed.effective_time)
        return _Prepared(media, parsed, hashlib.sha256(new.content).hexdigest())

    def _add(
        self,
        unit: Unit,
        actor: Actor,
        new: NewDocument,
        ready: _Prepared,
        *,
        batch: bool,
    ) -> Document:
        """Decide on, seal and store one document in *unit*, and audit it. In a *batch*, a
        denial is recorded and raised as :class:`AccessDeniedError` without ending the unit,
        and nothing is written before every check has passed."""
        media, parsed = ready.media_type, ready.parsed
        patient_id = new.patient_id
        resource = Resource(patient_id, "document")
        by = document_author(actor.kind, actor.id, new.author)
        type_, klass = check_codes(
            new.type_code or (_code(parsed.type_code, parsed.type_code_system) if parsed else None),
            new.class_code,
            by,
        )
        check_minor_secret(new.minor_secret, by, klass)
        body_media = parsed.body_media_type if parsed and parsed.structured is False else None
        format_ = check_format_code(new.format_code, media, body_media)
        flags, level = visibility(
            parsed.confidentiality if parsed else (),
            new.confidentiality,
            flags_of(
                masked=new.masked,
                hidden_from_patient=new.hidden_from_patient,
                hidden_from_representatives=new.hidden_from_representatives,
            ),
        )
        check_may_hide(flags, by)
        release_at, notify_at = announcement(unit.now, flags, self.settings)
        document_id = new_id()
        content = new.content
        document = Document(
            id=document_id,
            patient_id=patient_id,
            lineage_id=document_id,
            version=1,
            unique_id=new.unique_id or (parsed.document_id if parsed else None) or document_id,
            class_code=klass,
            type_code=type_,
            format_code=format_,
            media_type=media,
            author=by,
            title=document_title(new.title, parsed.title if parsed else None, "Document"),
            created_at=new.created_at or (parsed.effective_time if parsed else None) or unit.now,
            submitted_at=unit.now,
            content_id=new_id(),
            size=len(content),
            sha256=ready.sha256,
            confidentiality=level,
            masked=has_flag(flags, MASQUE_PS),
            hidden_from_patient=has_flag(flags, INVISIBLE_PATIENT),
            hidden_from_representatives=has_flag(flags, INVISIBLE_REPRESENTANTS),
            comments=check_comments(new.comments),
            service_start=new.service_start,
            service_stop=new.service_stop,
            release_at=release_at,
            notify_at=notify_at,
            submitted_by=actor.id if by.kind is AuthorKind.ESTABLISHMENT else None,
        )
        # The policy decides on the document as it would be stored (its class and type
        # bound what a profession may deposit); nothing is sealed before it agrees.
        stored = document_row(document, b"")
        if batch:
            decision = unit.decide_or_record(actor, Action.DOCUMENT_ADD, resource, document=stored)
            if not decision.allowed:
                raise unit.refusal(actor, resource, decision.rule)
        else:
            decision = unit.authorize(actor, Action.DOCUMENT_ADD, resource, document=stored)
        try:
            if parsed is not None:
                self._check_patient(unit, patient_id, parsed)
            if batch and unit.tx.documents.by_unique_id(patient_id, document.unique_id):
                # Checked before writing: a failed insert would leave the sealed content
                # behind in the batch's transaction.
                raise ConflictError("a document with this unique id is already in the record")
        except MonespaceError:
            if batch:
                # Allowed, then failed: traced as a failure, as a lone addition's would be
                # (by the unit, which a batch's item does not end).
                unit.record_failure(actor, Action.DOCUMENT_ADD, resource, decision)
            raise
        self._store(unit, document, content)
        unit.record(
            actor, Action.DOCUMENT_ADD, Resource(patient_id, "document", document_id), decision
        )
        return document

    def _check_content(self, content: bytes, media_type: str) -> str:
        limit = self._core.settings.max_content_bytes
        if not content:
            raise ValidationError("a document must not be empty")
        if len(content) > limit:
            raise ValidationError(f"a document must be at most {limit} bytes (got {len(content)})")
        return check_media_type(media_type, content)

    def _parse(self, media: str, content: bytes) -> ParsedDocument | None:
        # XML may be declared text/plain (it is text), and the CDA parser only accepts XML
        # media types: XML content is offered to the parsers as XML too, so that a CDA about
        # another patient declared text/plain still has its patient checked.
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
        if not names_person(identity, parsed.patient_ins, parsed.patient_ins_oid):
            raise ValidationError("the document is about another patient than this record's")

    def _store(self, unit: Unit, document: Document, content: bytes) -> None:
        keyring = self._core.keyring
        pid = document.patient_id
        sealed = keyring.seal(unit.tx, pid, BLOB_KIND, document.content_id, content)
        unit.tx.blobs.add(blob_row(document, sealed, unit.now))
        unit.tx.documents.add(self._row(unit, document))

    def _row(self, unit: Unit, document: Document) -> DocumentRow:
        sealed = self._core.keyring.seal(
            unit.tx, document.patient_id, META_KIND, document.id, document_meta(document)
        )
        return document_row(document, sealed)

    def _document(self, unit: Unit, row: DocumentRow, key: bytes | None = None) -> Document:
        """The document of *row*; *key*: the patient's data key, when the caller holds it."""
        if key is None:
            key = self._core.keyring.get(unit.tx, row.patient_id)
        meta = open_sealed(key, row.sealed_meta, content_aad(META_KIND, row.patient_id, row.id))
        return document_from_row(row, meta)

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
                unit.tx, row.patient_id, BLOB_KIND, row.content_id, blob.sealed
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
        after: str | None = None,
    ) -> DocumentPage:
        """The documents of a record that *actor* may see, newest first, one page at a time.

        :param category: only this category (see :class:`~monespace.record.Category`).
        :param since: created at or after; *until*: created before.
        :param text: words that must all appear in the title or comments (case-insensitive,
            accents matter).
        :param include_replaced: also list versions replaced by newer ones.
        :param after: the ``next`` token of the previous page (with the same filters, and
            no *offset*): the page after it, read from where the previous one ended, so
            that paging through a record costs what it lists. The first page counts the
            total; the following pages keep it.

        .. versionchanged:: 0.2
           *after*, and ``DocumentPage.next``.
        """
        if not 1 <= limit <= 500 or offset < 0:
            raise ValidationError("'limit' must be 1-500 and 'offset' not negative")
        if after is not None:
            if offset:
                raise ValidationError("'after' and 'offset' are not used together")
            return self._search_after(
                actor,
                patient_id,
                after,
                category=category,
                type_code=type_code,
                author_id=author_id,
                since=since,
                until=until,
                text=text,
                include_replaced=include_replaced,
                limit=limit,
            )
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
        # An unknown category and naive dates are bad input: ValidationError, before the
        # filter would fail on them with a ValueError or a TypeError.
        try:
            wanted = Category(category) if category is not None else None
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ValidationError(f"unknown category (known: {known})") from None
        check_time("since", since)
        check_time("until", until)
        words = [w.casefold() for w in (text or "").split()]
        with self._core.unit() as unit:
            resource = Resource(patient_id, "record")
            decision = unit.authorize(actor, Action.DOCUMENT_SEARCH, resource)
            keep = self._filter(
                unit,
                actor,
                patient_id,
                type_code=type_code,
                author_id=author_id,
                since=since,
                until=until,
                wanted=wanted,
                include_replaced=include_replaced,
            )
            if (
                limit is not None
                and not offset
                and not words
                and self._core.rules_ignore_document_ids
            ):
                # The first page: the total counted over groups of versions that share what
                # the filters and the policy read (one decision per group, no row built),
                # then the page read newest first like the following ones. Deciding on and
                # building every row of a 10,000-document record to count it cost as much
                # as listing it all. Rules that look at a document's id (an embedder's) are
                # asked about every row below instead. A record that fits in its first page
                # (most do) was read whole by the page itself: its total is what it kept.
                found, more = self._collect(
                    unit, patient_id, None, limit=limit, keep=keep, words=words
                )
                total = (
                    sum(
                        size
                        for row, size in unit.tx.documents.kinds_for_patient(
                            patient_id, since=since, until=until
                        )
                        if keep(row)
                    )
                    if more
                    else len(found)
                )
                unit.record(actor, Action.DOCUMENT_SEARCH, resource, decision)
                token = _page_token(len(found), total, found[-1].id) if more else None
                return DocumentPage(tuple(found), total, 0, limit, next=token)
            # Performance: every filter but the words works on the stored row (the category
            # derives from its codes), so only the requested page is decrypted; the words,
            # which are sealed, need every candidate decrypted.
            rows = [row for row in reversed(unit.tx.documents.for_patient(patient_id)) if keep(row)]
            end = None if limit is None else offset + limit
            # One record, one data key: read it once, not once per document.
            key = self._core.keyring.get(unit.tx, patient_id) if rows else b""
            if words:
                found = [
                    d
                    for d in (self._document(unit, row, key) for row in rows)
                    if matches_words(d.title, d.comments, words)
                ]
                total, page = len(found), tuple(found[offset:end])
            else:
                total = len(rows)
                page = tuple(self._document(unit, row, key) for row in rows[offset:end])
            unit.record(actor, Action.DOCUMENT_SEARCH, resource, decision)
            following = offset + len(page)
            token = (
                _page_token(following, total, page[-1].id)
                if limit is not None and page and following < total
                else None
            )
            return DocumentPage(
                page, total, offset, len(page) if limit is None else limit, next=token
            )

    def _search_after(
        self,
        actor: Actor,
        patient_id: str,
        after: str,
        *,
        category: Category | str | None,
        type_code: str | None,
        author_id: str | None,
        since: datetime | None,
        until: datetime | None,
        text: str | None,
        include_replaced: bool,
        limit: int,
    ) -> DocumentPage:
        """The page after the token *after*: rows read newest first from where the previous
        page ended, in chunks, each decided, until the page is full."""
        try:
            wanted = Category(category) if category is not None else None
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ValidationError(f"unknown category (known: {known})") from None
        check_time("since", since)
        check_time("until", until)
        offset, total, last_id = _read_page_token(after)
        words = [w.casefold() for w in (text or "").split()]
        with self._core.unit() as unit:
            resource = Resource(patient_id, "record")
            decision = unit.authorize(actor, Action.DOCUMENT_SEARCH, resource)
            last = unit.tx.documents.get(last_id)
            if last is None or last.patient_id != patient_id:
                raise ValidationError("'after' is not a page token of this record")
            keep = self._filter(
                unit,
                actor,
                patient_id,
                type_code=type_code,
                author_id=author_id,
                since=since,
                until=until,
                wanted=wanted,
                include_replaced=include_replaced,
            )
            found, more = self._collect(
                unit, patient_id, (last.created_at, last.id), limit=limit, keep=keep, words=words
            )
            unit.record(actor, Action.DOCUMENT_SEARCH, resource, decision)
            following = offset + len(found)
            token = (
                _page_token(following, max(total, following + 1), found[-1].id) if more else None
            )
            return DocumentPage(tuple(found), max(total, following), offset, limit, next=token)

    @staticmethod
    def _filter(
        unit: Unit,
        actor: Actor,
        patient_id: str,
        *,
        type_code: str | None,
        author_id: str | None,
        since: datetime | None,
        until: datetime | None,
        wanted: Category | None,
        include_replaced: bool,
    ) -> Callable[[DocumentRow], bool]:
        """Whether a stored version matches a search's filters other than words, and *actor*
        may read it: everything decided on the row, without decrypting it."""
        may_read = unit.document_reader(actor, patient_id)

        def keep(row: DocumentRow) -> bool:
            return (
                (include_replaced or row.status == DocumentStatus.APPROVED)
                and (type_code is None or row.type_code == type_code)
                and (author_id is None or row.author_id == author_id)
                and (since is None or row.created_at >= since)
                and (until is None or row.created_at < until)
                and (wanted is None or category_of_row(row) is wanted)
                and may_read(row)
            )

        return keep

    def _collect(
        self,
        unit: Unit,
        patient_id: str,
        cursor: tuple[datetime, str] | None,
        *,
        limit: int,
        keep: Callable[[DocumentRow], bool],
        words: list[str],
    ) -> tuple[list[Document], bool]:
        """Up to *limit* documents that *keep* accepts and that contain *words*, read newest
        first from before *cursor* (from the newest when ``None``) in chunks, and whether
        another one follows them."""
        key = b""
        found: list[Document] = []
        more = False
        # The page and one more row (to know whether a page follows): most rows of a record
        # are visible, and a short chunk is followed by another.
        chunk = limit + 1
        while True:
            rows = unit.tx.documents.newest_for_patient(patient_id, before=cursor, limit=chunk)
            for row in rows:
                if not keep(row):
                    continue
                if len(found) == limit and not words:
                    more = True  # a visible row follows the page: no need to open it
                    break
                if not key:
                    key = self._core.keyring.get(unit.tx, patient_id)
                document = self._document(unit, row, key)
                if words and not matches_words(document.title, document.comments, words):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append(document)
            if more or len(rows) < chunk:
                return found, more
            cursor = (rows[-1].created_at, rows[-1].id)

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
            # A change made through the current version (masking, unmasking, releasing,
            # deleting) applies to the whole document: the versions it replaced must not stay
            # readable by professionals after a masking, or by anyone after a deletion.
            for other in unit.tx.documents.for_patient(row.patient_id):
                if other.lineage_id == row.lineage_id and other.id != row.id:
                    unit.tx.documents.update(change(other))
            # Only a release that makes something visible tells the patient of a new document.
            if tell_patient and has_flag(row.flags, INVISIBLE_PATIENT):
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
            lambda row: attrs.evolve(row, flags=row.flags | MASQUE_PS),
        )

    def unmask(self, actor: Actor, document_id: str) -> Document:
        """Show a masked document to authorised professionals again."""
        return self._update(
            actor,
            Action.DOCUMENT_UNMASK,
            document_id,
            lambda row: attrs.evolve(row, flags=row.flags & ~MASQUE_PS),
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
        # The new content is parsed like an added one: a CDA about another patient (or a
        # hostile one) must not replace a document that passed these checks when added.
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
                title=document_title(title, None, old.title),
                comments=check_comments(comments) if comments is not None else old.comments,
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

    def tick(
        self, now: datetime | None = None, *, batch: int = 500, part: Slice | None = None
    ) -> dict[str, int]:
        """Tell patients whose result is still hidden after two weeks, and release hidden
        results after one month (R1111-53).

        :return: ``announcement_notices`` and ``released`` counts.
        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        moment = now if now is not None else self._core.now()
        counts = {"announcement_notices": 0, "released": 0}
        system = Actor.system("deadlines")
        while True:
            with self._core.unit() as unit:
                unit.now = moment
                notices = unit.tx.documents.to_notify(moment, limit=batch, part=part)
                for row in notices:
                    unit.tx.documents.update(attrs.evolve(row, notify_at=None))
                    # Deleted and replaced versions keep their deadlines: only the current
                    # version is announced, so a deleted result is never announced, and a
                    # replaced one once.
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
                releases = unit.tx.documents.releasing(moment, limit=batch, part=part)
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
        parsed: ParsedDocument,
        author: Author,
        unique_id: str,
    ) -> Document:
        """Store a legacy DMP document in a space, within the migration's unit of work.

        The space need not be open yet: the document becomes visible when it opens (or stays
        for professionals only, if the holder opposed). The migration reads the legacy format
        and hands over what it read (*parsed*) and who wrote it (*author*: the professional
        the document names, or the insurer that kept the DMP). The caller has matched the
        patient; the policy still decides.

        :raises ValidationError: a document without a coded type, or with codes the record
            refuses; nothing is stored, and the failure is traced in *unit*, which goes on
            (the migration imports a batch of documents in one unit).
        """
        resource = Resource(patient_id, "document")
        decision = unit.authorize(actor, Action.DMP_IMPORT, resource)
        try:
            if parsed.type_code is None or parsed.type_code_system is None:
                raise ValidationError("the legacy document's type code has no code system")
            type_, klass = check_codes(
                Code(parsed.type_code, parsed.type_code_system), None, author
            )
            media_type = check_media_type("text/xml", content)
            title = document_title(None, parsed.title, "Document du DMP")
        except ValidationError:
            unit.record_failure(actor, Action.DMP_IMPORT, resource, decision)
            raise
        flags, level = visibility(parsed.confidentiality, "N", 0)
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
            media_type=media_type,
            author=author,
            title=title,
            created_at=parsed.effective_time or unit.now,
            submitted_at=unit.now,
            content_id=new_id(),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            confidentiality=level,
            masked=has_flag(flags, MASQUE_PS),
            hidden_from_patient=False,  # a result from years ago has had its announcement
            hidden_from_representatives=has_flag(flags, INVISIBLE_REPRESENTANTS),
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
        # One transaction for the whole list: paging through search() would let a document
        # added between two pages shift the newest-first order (one listed twice, the new
        # one not at all).
        return iter(self._search(actor, patient_id, limit=None).documents)


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


@attrs.frozen
class _Prepared:
    """What :meth:`RecordService._prepare` checked and computed of a new document before its
    transaction: its media type, what a parser read from it, and its SHA-256 (hex)."""

    media_type: str
    parsed: ParsedDocument | None
    sha256: str


def _page_token(offset: int, total: int, last_id: str) -> str:
    """The token of the page that starts at *offset*, after the document *last_id*: it
    carries the position and the first page's total, and a document id (never a date, a
    code or a title: tokens end up in URLs)."""
    return f"{offset}.{total}.{last_id}"


def _read_page_token(token: str) -> tuple[int, int, str]:
    """The (offset, total, last document id) of a :func:`_page_token`.

    :raises ValidationError: when *token* is not one.
    """
    parts = token.split(".")
    if (
        len(parts) != 3
        or not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts[:2])
        or not 1 <= len(parts[2]) <= 64
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in parts[2])
    ):
        raise ValidationError("'after' is not a page token")
    return int(parts[0]), int(parts[1]), parts[2]


def _released(row: DocumentRow) -> DocumentRow:
    """A version released to the patient: no longer hidden, no deadline left."""
    return attrs.evolve(row, flags=row.flags & ~INVISIBLE_PATIENT, release_at=None, notify_at=None)


def _code(code: str | None, system: str | None) -> Code | None:
    return None if code is None or system is None else Code(code, system)
