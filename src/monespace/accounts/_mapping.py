"""Accounts rows <-> model, and the sealed identity payload, through the codec's converters.

Storage knows rows only (:mod:`monespace.storage`); this module is the one place that turns
them into the accounts model and back.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..codec import make_converter, restructure
from ..storage import AccountRow, CodeRow, ProofRow, RepresentationRow
from ._codes import CodeRecord
from ._lifecycle import Account
from ._representation import ProofRecord, Representation

__all__ = [
    "account_from_row",
    "account_row",
    "code_from_row",
    "code_row",
    "proof_from_row",
    "proof_row",
    "representation_from_row",
    "representation_row",
    "representations_from_rows",
]

_JSON = make_converter()


def account_row(account: Account) -> AccountRow:
    """The row that stores *account*."""
    row: AccountRow = restructure(account, AccountRow)
    return row


def account_from_row(row: AccountRow) -> Account:
    """The account a row stores."""
    account: Account = restructure(row, Account)
    return account


def code_row(record: CodeRecord) -> CodeRow:
    """The row that stores a provisional code record."""
    row: CodeRow = restructure(record, CodeRow)
    return row


def code_from_row(row: CodeRow) -> CodeRecord:
    """The provisional code record a row stores."""
    record: CodeRecord = restructure(row, CodeRecord)
    return record


def proof_row(record: ProofRecord) -> ProofRow:
    """The row that stores a proof record (the row's ``failures_since`` column holds the
    time of the last failure, from which the delays run)."""
    return ProofRow(
        record.patient_id,
        record.vitale_index,
        record.birth_index,
        record.failures,
        record.last_failure_at,
    )


def proof_from_row(row: ProofRow) -> ProofRecord:
    """The proof record a row stores."""
    return ProofRecord(
        row.patient_id, row.vitale_index, row.birth_index, row.failures, row.failures_since
    )


def representation_row(link: Representation) -> RepresentationRow:
    """The row that stores a representation link."""
    row: RepresentationRow = restructure(link, RepresentationRow)
    return row


def representation_from_row(row: RepresentationRow) -> Representation:
    """The representation link a row stores."""
    link: Representation = restructure(row, Representation)
    return link


def representations_from_rows(rows: Iterable[RepresentationRow]) -> list[Representation]:
    """The links some rows store, in their order."""
    return [representation_from_row(row) for row in rows]
