"""Slices of the patients, for deadline runs that share the work (``space.tick`` in parallel).

A patient belongs to slice ``h mod n`` of *n*, where *h* is the first 8 bytes (big-endian)
of the SHA-256 of their id: the hash the sharded audit trail uses, so with as many slices as
audit shards, slice *i* writes to audit shard *i + 1* only. The SQL backends compute the same
value in SQL (``monespace_slice(patient_id, n)``: a function registered on every SQLite
connection, and created by migration 0017 on PostgreSQL), so a repository can select one
slice's due rows.
"""

from __future__ import annotations

import hashlib

import attrs

from ..errors import ValidationError

__all__ = ["Slice", "slice_of"]


def slice_of(patient_id: str, count: int) -> int:
    """The slice (0 to *count* - 1) of *patient_id* among *count*."""
    digest = hashlib.sha256(patient_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _check(instance: Slice, _attribute: object, _value: int) -> None:
    if instance.count < 1 or not 0 <= instance.index < instance.count:
        raise ValidationError(
            f"a slice must be i/n with 0 <= i < n (got {instance.index}/{instance.count})"
        )


@attrs.frozen
class Slice:
    """Slice *index* of *count* slices of the patients (``Slice(0, 4)`` … ``Slice(3, 4)``).

    .. versionadded:: 0.3
    """

    index: int = attrs.field(validator=_check)
    count: int = attrs.field(validator=_check)

    @classmethod
    def parse(cls, text: str) -> Slice:
        """``"i/n"`` as a slice.

        :raises ValidationError: for anything else, or i out of 0..n-1.
        """
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValidationError(f"a slice must be written i/n, such as 0/4 (got {text!r})")
        return cls(int(index), int(count))

    def holds(self, patient_id: str | None) -> bool:
        """Whether the slice holds *patient_id*. Rows without a patient are in slice 0."""
        if patient_id is None:
            return self.index == 0
        return slice_of(patient_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
