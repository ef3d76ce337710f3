"""Extracts as DataFrames and Parquet files (the ``dataframes`` extra: pandas and pyarrow;
polars, optional, through Arrow).

Each table of an :class:`~monespace.research.Extract` becomes one Arrow table with a fixed
schema (dates as ``date32``, so that empty tables keep their types), then a pandas or polars
DataFrame, or one Parquet file per table.

.. versionadded:: 0.2
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs

from ..errors import MonespaceError
from ._model import (
    TABLES,
    DocumentRecord,
    Extract,
    MeasureRecord,
    PersonRecord,
    ReminderRecord,
    VaccinationRecord,
)

__all__ = ["read_parquet", "to_arrow", "to_pandas", "to_polars", "write_parquet"]

_RECORDS: dict[str, type] = {
    "people": PersonRecord,
    "documents": DocumentRecord,
    "measures": MeasureRecord,
    "vaccinations": VaccinationRecord,
    "reminders": ReminderRecord,
}


def _pyarrow() -> Any:
    try:
        import pyarrow  # noqa: PLC0415 - an optional dependency, imported when used
    except ImportError as exc:
        raise MonespaceError(
            "research extracts as DataFrames need the 'dataframes' extra: "
            "pip install 'monespace[dataframes]'"
        ) from exc
    return pyarrow


def _arrow_type(pa: Any, annotation: str) -> Any:
    if "date" in annotation:
        return pa.date32()
    if "float" in annotation:
        return pa.float64()
    return pa.string()


def _schema(pa: Any, record: type) -> Any:
    return pa.schema(
        [
            pa.field(f.name, _arrow_type(pa, str(f.type)), nullable="None" in str(f.type))
            for f in attrs.fields(record)
        ]
    )


def to_arrow(extract: Extract) -> dict[str, Any]:
    """The tables of *extract* as ``pyarrow.Table`` objects, by name (see ``TABLES``)."""
    pa = _pyarrow()
    tables: dict[str, Any] = {}
    for name in TABLES:
        record = _RECORDS[name]
        columns: dict[str, list[object]] = {f.name: [] for f in attrs.fields(record)}
        for row in extract.table(name):
            for column, value in attrs.asdict(row).items():  # type: ignore[arg-type]
                columns[column].append(value)
        tables[name] = pa.table(columns, schema=_schema(pa, record))
    return tables


def to_pandas(extract: Extract) -> dict[str, Any]:
    """The tables of *extract* as pandas DataFrames, by name (dates as ``datetime64``)."""
    frames: dict[str, Any] = {}
    for name, table in to_arrow(extract).items():
        frame = table.to_pandas()
        for field in table.schema:
            if str(field.type) == "date32[day]":
                frame[field.name] = frame[field.name].astype("datetime64[s]")
        frames[name] = frame
    return frames


def to_polars(extract: Extract) -> dict[str, Any]:
    """The tables of *extract* as polars DataFrames, by name (needs polars installed)."""
    try:
        import polars  # noqa: PLC0415 - optional, imported when used
    except ImportError as exc:
        raise MonespaceError("polars is not installed: pip install polars") from exc
    return {name: polars.from_arrow(table) for name, table in to_arrow(extract).items()}


def write_parquet(extract: Extract, folder: str | Path) -> list[Path]:
    """Write one Parquet file per table of *extract* into *folder* (created if needed), named
    ``<study>-<table>.parquet``; the study, the day and *k* go into each file's metadata.

    :return: the paths written.
    """
    _pyarrow()
    import pyarrow.parquet as pq  # noqa: PLC0415 - optional

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, table in to_arrow(extract).items():
        meta = {
            b"monespace.study": extract.study_id.encode(),
            b"monespace.made_on": extract.made_on.isoformat().encode(),
            b"monespace.k": str(extract.k).encode(),
        }
        path = target / f"{extract.study_id}-{name}.parquet"
        pq.write_table(table.replace_schema_metadata(meta), path)
        written.append(path)
    return written


def read_parquet(folder: str | Path, study_id: str) -> Extract:
    """Read back an extract :func:`write_parquet` wrote (without its report of left-out people
    and suppressions, which stay with the study's records)."""
    _pyarrow()
    import pyarrow.parquet as pq  # noqa: PLC0415 - optional

    tables: dict[str, tuple[Any, ...]] = {}
    made_on = dt.date.min
    k = 0
    for name in TABLES:
        table = pq.read_table(Path(folder) / f"{study_id}-{name}.parquet")
        meta = table.schema.metadata or {}
        made_on = dt.date.fromisoformat(meta[b"monespace.made_on"].decode())
        k = int(meta[b"monespace.k"])
        record = _RECORDS[name]
        tables[name] = tuple(record(**row) for row in table.to_pylist())
    return Extract(
        study_id,
        made_on,
        k,
        people=tables["people"],
        documents=tables["documents"],
        measures=tables["measures"],
        vaccinations=tables["vaccinations"],
        reminders=tables["reminders"],
    )
