"""Migration of legacy DMPs (created before 1 July 2021) into the spaces.

Every DMP opened before Mon espace santé is attached to the holder's space (CSP R1111-40) when
the space is activated or opened, unless the holder opposed: then the DMP stays readable by
professionals only, during a transitional period (CNIL délibération 2021-050: three years
from 1 January 2022), after which it is closed. docs/domain-rules.md §2.

Matching is strict. A document is attached only when its INS (matricule *and* OID) names a
registered person and the identity traits it carries agree with theirs; anything else is
quarantined with a reason, never attached to someone else (security plan T11). Each run
writes a reconciliation ledger, and running it again imports nothing twice.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .._ids import new_id
from .._text import LIMITS, neutralise_text
from ..actors import Actor
from ..audit import Outcome
from ..errors import DataShreddedError, IdentifierError, ValidationError
from ..identities import read_identity, row_by_nir
from ..identity import INS, INSTraits
from ..interop.cda import CdaDocument, read_cda
from ..interop.dmp import (
    LegacyDocument,
    XdmLimits,
    iter_legacy_documents,
    matches_declared_hash,
)
from ..policy import Action, Resource
from ..record import Author, AuthorKind, Code
from ..storage import LedgerRow, Slice
from ._lifecycle import AccountState
from ._mapping import account_from_row

if TYPE_CHECKING:
    from .. import RecordService
    from .._unit import Core, Unit

__all__ = ["DmpMigrationService", "MigrationReport"]

#: The key of the ledger lines that name no patient (documents quarantined before a match).
_LEDGER_OWNER = "space:dmp-ledger"
#: What a source name is sealed as (the associated data binds it to its ledger line).
_SOURCE_KIND = "dmp-ledger-source"
#: The prefix of a sealed source name in the ledger's ``source`` column (base64 after it).
_SEALED = "sealed:"
#: What the ledger shows for the source of a patient whose data key was destroyed.
_SHREDDED = "[deleted with the patient's key]"
#: Documents imported in one transaction (one commit, one fsync, for all of them), and the
#: bytes of documents read ahead for one: a crash loses at most one batch, which running
#: the import again imports.
_BATCH_DOCUMENTS = 100
_BATCH_BYTES = 8 * 1024 * 1024

#: Spaces a legacy DMP can be attached to now, or staged in until the space opens.
_ATTACHABLE = frozenset(
    {AccountState.REGISTERED, AccountState.INVITED, AccountState.CREATED, AccountState.ACTIVE}
)


@attrs.frozen
class MigrationReport:
    """What one import run did.

    :ivar reasons: quarantine reasons and how many documents each.
    """

    run_id: str
    imported: int
    duplicates: int
    quarantined: int
    reasons: dict[str, int]


class _Quarantine(Exception):
    def __init__(self, reason: str, patient_id: str | None = None) -> None:
        self.reason = reason
        self.patient_id = patient_id


def _name_key(text: str) -> str:
    """Names compared as the INS compares them: case, accents, spaces and hyphens ignored."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalpha()).casefold()


def _traits_agree(ours: INSTraits, theirs: INSTraits) -> bool:
    return (
        _name_key(ours.birth_name) == _name_key(theirs.birth_name)
        and _name_key(ours.first_given_name) == _name_key(theirs.first_given_name)
        and ours.birth_date == theirs.birth_date
        and ours.sex == theirs.sex
    )


class DmpMigrationService:
    """``space.dmp``: importing legacy DMPs, with a reconciliation ledger.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core, record: RecordService) -> None:
        self._core = core
        self._record = record

    def import_sources(
        self,
        actor: Actor,
        sources: Iterable[str | Path],
        *,
        progress: Callable[[int], None] | None = None,
        limits: XdmLimits | None = None,
    ) -> MigrationReport:
        """Import the legacy DMP documents found in *sources* (folders or XDM archives).

        Each document is imported, or skipped as already imported, or quarantined, together
        with its ledger line, in batches of up to 100 documents per transaction (one commit
        for the batch; a quarantined document does not hold back the others): an
        interrupted run is resumed by running it again. A source that cannot be read at all
        (a truncated or hostile archive, one over its limits) raises before anything of it
        is imported; the sources before it stay imported, and the ledger of the run says
        so: the error carries a note ``import run <run_id> ...`` naming the run.

        Documents are read one batch ahead (up to 100 documents or 8 MiB, or one document
        when it is larger), so memory holds one batch whatever the size of the sources.

        .. versionchanged:: 0.2
           Batches of documents per transaction, instead of one transaction per document.

        :param limits: the bounds of an XDM archive (:class:`~monespace.interop.dmp.XdmLimits`
            by default: 20 MiB per document, 512 MiB per archive).
        :raises AccessDeniedError: when the actor is not the operator.
        :raises MalformedDocumentError, HostileDocumentError: for an unreadable source.
        :raises DocumentTooLargeError: for a document over the size limit.
        """
        with self._core.unit() as unit:
            unit.authorize(actor, Action.DMP_IMPORT, Resource(None, "dmp"))
        run_id = new_id()
        counts = {"imported": 0, "duplicate": 0, "quarantined": 0}
        reasons: dict[str, int] = {}

        def flush(batch: list[LegacyDocument]) -> None:
            for outcome, reason in self._import_batch(actor, run_id, batch):
                counts[outcome] += 1
                if reason is not None:
                    reasons[reason] = reasons.get(reason, 0) + 1
                if progress is not None:
                    progress(1)
            batch.clear()

        for number, source in enumerate(sources, 1):
            batch: list[LegacyDocument] = []
            size = 0
            try:
                for document in iter_legacy_documents(source, limits=limits):
                    batch.append(document)
                    size += len(document.data)
                    if len(batch) >= _BATCH_DOCUMENTS or size >= _BATCH_BYTES:
                        flush(batch)
                        size = 0
                flush(batch)
            except ValidationError as exc:
                # What was read of the source before it failed is imported, as it would
                # have been one document at a time.
                flush(batch)
                exc.add_note(
                    f"import run {run_id} stopped at source {number}; the ledger of the run "
                    "has what was imported before it"
                )
                raise
        return MigrationReport(
            run_id, counts["imported"], counts["duplicate"], counts["quarantined"], reasons
        )

    def ledger(self, actor: Actor, run_id: str) -> list[LedgerRow]:
        """The reconciliation ledger of one run. Operator only."""
        with self._core.unit() as unit:
            resource = Resource(None, "dmp", run_id)
            decision = unit.authorize(actor, Action.DMP_IMPORT, resource)
            rows = [self._opened(unit, row) for row in unit.tx.ledger.for_run(run_id)]
            unit.record(actor, "dmp.ledger.read", resource, decision)
            return rows

    def _opened(self, unit: Unit, row: LedgerRow) -> LedgerRow:
        """A ledger line with its source name unsealed (lines stored before names were
        sealed hold it in clear)."""
        if not row.source.startswith(_SEALED):
            return row
        owner = row.patient_id or _LEDGER_OWNER
        sealed = base64.b64decode(row.source.removeprefix(_SEALED))
        try:
            name = self._core.keyring.open(unit.tx, owner, _SOURCE_KIND, row.id, sealed)
        except DataShreddedError:
            return attrs.evolve(row, source=_SHREDDED)
        return attrs.evolve(row, source=name.decode())

    def _import_batch(
        self, actor: Actor, run_id: str, batch: list[LegacyDocument]
    ) -> list[tuple[str, str | None]]:
        """Import *batch* in one transaction: each document imported, skipped as a
        duplicate, or quarantined, with its ledger line; the outcome and reason of each.

        Every check that quarantines a document runs before anything of it is written, so
        a quarantined document leaves only its ledger line and its audit event in the
        batch. What reads no state (the declared hash, the CDA parse) runs before the
        transaction, which holds the write lock for less.
        """
        if not batch:
            return []
        read: list[tuple[bytes, CdaDocument | _Quarantine]] = []
        for document in batch:
            digest = bytes.fromhex(document.sha256)
            try:
                if not matches_declared_hash(document):
                    raise _Quarantine("hash-mismatch")
                read.append((digest, self._read(document)))
            except _Quarantine as quarantine:
                read.append((digest, quarantine))
        results: list[tuple[str, str | None]] = []
        with self._core.unit() as unit:
            for document, (digest, cda) in zip(batch, read, strict=True):
                try:
                    results.append(
                        self._import_one(unit, actor, run_id, document, digest=digest, cda=cda)
                    )
                except _Quarantine as quarantine:
                    self._line(
                        unit,
                        run_id,
                        document,
                        digest,
                        outcome="quarantined",
                        reason=quarantine.reason,
                    )
                    unit.record(
                        actor,
                        "dmp.quarantine",
                        Resource(None, "dmp", run_id),
                        quarantine.reason,
                        outcome=Outcome.FAILURE,
                    )
                    results.append(("quarantined", quarantine.reason))
        return results

    def _import_one(
        self,
        unit: Unit,
        actor: Actor,
        run_id: str,
        document: LegacyDocument,
        *,
        digest: bytes,
        cda: CdaDocument | _Quarantine,
    ) -> tuple[str, str | None]:
        """One document of a batch, in *unit*; *cda*: what reading it gave.

        :raises _Quarantine: before anything of the document is written.
        """
        if unit.tx.ledger.imported(digest) is not None:
            self._line(
                unit, run_id, document, digest, outcome="duplicate", reason="already-imported"
            )
            return "duplicate", None
        if isinstance(cda, _Quarantine):
            raise cda
        patient_id = self._match(unit, cda)
        if unit.tx.documents.by_unique_id(patient_id, _unique_id(cda, digest)):
            self._line(unit, run_id, document, digest, outcome="duplicate", reason="same-unique-id")
            return "duplicate", None
        self._check_state(unit, patient_id)
        try:
            imported = self._record.import_legacy(
                unit,
                actor,
                patient_id,
                document.data,
                parsed=cda.to_parsed(),
                author=_legacy_author(cda),
                unique_id=_unique_id(cda, digest),
            )
        except ValidationError as exc:
            raise _Quarantine("refused-by-record", patient_id) from exc
        self._line(
            unit,
            run_id,
            document,
            digest,
            outcome="imported",
            patient_id=patient_id,
            document_id=imported.id,
        )
        return "imported", None

    def _read(self, document: LegacyDocument) -> CdaDocument:
        try:
            return read_cda(document.data)
        except ValidationError as exc:
            raise _Quarantine(f"unreadable:{type(exc).__name__}") from exc

    def _match(self, unit: Unit, cda: CdaDocument) -> str:
        """The registered person the document is about, or quarantine."""
        if cda.patient is None or cda.patient.ins is None:
            raise _Quarantine("no-ins")
        try:
            ins: INS = cda.patient.to_ins()
        except IdentifierError as exc:
            raise _Quarantine("invalid-ins") from exc
        if ins.traits is None:
            raise _Quarantine("traits-missing")
        row = row_by_nir(self._core, unit.tx, ins.matricule.value, unit.now)
        if row is None:
            raise _Quarantine("unknown-person")
        identity = read_identity(self._core, unit.tx, row.id)
        if identity is None or identity.ins.traits is None:
            raise _Quarantine("unknown-person")
        if identity.ins.oid != ins.oid:
            raise _Quarantine("ins-oid-differs")
        if not _traits_agree(identity.ins.traits, ins.traits):
            raise _Quarantine("traits-differ")
        return row.id

    def _check_state(self, unit: Unit, patient_id: str) -> None:
        row = unit.tx.accounts.get(patient_id)
        if row is None:
            raise _Quarantine("unknown-person")
        account = account_from_row(row)
        if account.state in _ATTACHABLE:
            return
        if account.state is AccountState.OPPOSED and unit.now < self.transition_end:
            return  # transitional: readable by professionals only, until the end date
        reason = (
            "opposed-transition-ended" if account.state is AccountState.OPPOSED else "space-closed"
        )
        raise _Quarantine(reason, patient_id)

    @property
    def transition_end(self) -> datetime:
        """When the legacy DMPs of people who opposed close (``Settings.lifecycle``)."""
        return self._core.settings.lifecycle.legacy_dmp_transition_end

    def _line(
        self,
        unit: Unit,
        run_id: str,
        document: LegacyDocument,
        digest: bytes,
        *,
        outcome: str,
        reason: str | None = None,
        patient_id: str | None = None,
        document_id: str | None = None,
    ) -> None:
        # A legacy file's name may say what the document is about ("compte-rendu-IVG.pdf"):
        # it is sealed, with the patient's key once the document is matched to someone (their
        # crypto-shredding takes it along), with the space's ledger key before.
        line_id = new_id()
        owner = patient_id or _LEDGER_OWNER
        if patient_id is None:
            self._core.keyring.get_or_create(unit.tx, _LEDGER_OWNER, unit.now)
        # The name comes from an archive: kept in a safe rendering rather than refused, since
        # refusing would lose the document's line in the ledger.
        source = neutralise_text(document.source, max_length=LIMITS["source"])
        sealed = self._core.keyring.seal(unit.tx, owner, _SOURCE_KIND, line_id, source.encode())
        unit.tx.ledger.add(
            LedgerRow(
                line_id,
                run_id,
                unit.now,
                _SEALED + base64.b64encode(sealed).decode(),
                digest,
                outcome,
                reason,
                patient_id,
                document_id,
            )
        )

    def tick(self, now: datetime | None = None, *, part: Slice | None = None) -> dict[str, int]:
        """Close the legacy DMPs of people who opposed, once the transitional period ended.

        :return: ``legacy_dmp_closed``: how many such DMPs were closed.
        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        moment = now if now is not None else self._core.now()
        if moment < self.transition_end:
            return {}
        closed = 0
        with self._core.storage.read() as tx:
            opposed = tx.accounts.in_state(AccountState.OPPOSED, limit=1_000_000)
        for patient_id in opposed:
            if part is not None and not part.holds(patient_id):
                continue
            with self._core.unit() as unit:
                unit.now = moment
                lines = unit.tx.ledger.imported_for_patient(patient_id)
                removed = self._record.remove_legacy(
                    unit, patient_id, [line.document_id for line in lines if line.document_id]
                )
                if removed:
                    closed += 1
                    unit.record(
                        Actor.system("deadlines"),
                        "dmp.close",
                        Resource(patient_id, "dmp", patient_id),
                        "legacy_dmp_transition_ended",
                    )
        return {"legacy_dmp_closed": closed} if closed else {}


def _legacy_author(cda: CdaDocument) -> Author:
    """The first author with a national professional id, else the insurer that kept the DMP.
    Reimbursement data (class 60) are the insurer's whoever the document names: only the
    health insurer deposits them (R1111-42 1° d)."""
    if cda.class_code == "60":
        return Author(AuthorKind.INSURER, "legacy-dmp")
    for author in cda.authors:
        if author.national_id:
            specialty = (
                Code(author.specialty.code, author.specialty.code_system)
                if author.specialty is not None and author.specialty.code_system
                else None
            )
            return Author(AuthorKind.PROFESSIONAL, author.national_id, specialty=specialty)
    return Author(AuthorKind.INSURER, "legacy-dmp")


def _unique_id(cda: CdaDocument, digest: bytes) -> str:
    """The document's XDS unique id; a hash of its bytes when it carries none."""
    if cda.document_id is not None:
        return str(cda.document_id)
    return "sha256:" + digest.hex()
