"""Numbered SQL migrations shipped as package data (``migrations/<dialect>/NNNN_name.sql``)."""

from __future__ import annotations

import re
from importlib import resources

import attrs

from ..errors import StorageError

__all__ = ["Migration", "load_migrations"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@attrs.frozen
class Migration:
    """One schema step: its number, its name and its SQL."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration of *dialect*, in order; numbering must be 1, 2, 3... without gaps."""
    folder = resources.files("monespace.storage") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StorageError(f"the {dialect} migrations are not numbered 1..n without gaps")
    return found
