"""The layout that scales out, read back from PostgreSQL's catalog (not from our SQL files):
every table is classified, every patient table is hash-partitioned by its patient key, and
every primary and unique key of a patient table includes that key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import attrs
import psycopg
import pytest
from psycopg import sql

from monespace.errors import ConfigurationError, ConflictError
from monespace.testing import make_patient_row
from monespace_postgres import PostgresStorage
from monespace_postgres._layout import LAYOUT, citus_statements

#: The fixtures (server) live there: see its docstring.
pytest_plugins = ["postgres_support"]


@pytest.fixture(scope="module")
def migrated(server: str) -> Iterator[tuple[str, str]]:
    """One schema for the module, migrated with three partitions: (url, schema)."""
    schema = f"monespace_test_{secrets.token_hex(6)}"
    url = f"{server}{'&' if '?' in server else '?'}schema={schema}&partitions=3"
    PostgresStorage.from_url(url).close()
    yield url, schema
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _catalog(server: str, schema: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server, autocommit=True) as conn:
        return list(conn.execute(query, (schema,)).fetchall())


_TABLES = """
    SELECT c.relname, c.relkind, p.partstrat, p.partattrs::text,
           (SELECT string_agg(a.attname, ',') FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum = ANY (p.partattrs))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
     WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# Every unique index (primary keys, unique constraints and unique indexes alike), with its
# columns by name.
_UNIQUE = """
    SELECT t.relname, i.relname,
           array(SELECT a.attname FROM unnest(x.indkey) k
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k)
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = %s AND x.indisunique AND NOT t.relispartition
"""


def test_every_table_is_classified(server: str, migrated: tuple[str, str]) -> None:
    tables = {row[0] for row in _catalog(server, migrated[1], _TABLES)}
    assert tables - LAYOUT.keys() == set(), "tables missing from monespace_postgres._layout"
    assert LAYOUT.keys() - tables == set(), "tables of the layout missing from the schema"


def test_patient_tables_are_hash_partitioned_by_their_patient_key(
    server: str, migrated: tuple[str, str]
) -> None:
    found = {row[0]: row for row in _catalog(server, migrated[1], _TABLES)}
    for name, layout in LAYOUT.items():
        _, relkind, strategy, _, columns = found[name]
        if layout.kind == "patient":
            assert (relkind, strategy, columns) == ("p", "h", layout.key), name
        else:
            assert relkind == "r", f"{name} is a {layout.kind} table: not partitioned"


def test_every_key_of_a_patient_table_includes_the_patient_key(
    server: str, migrated: tuple[str, str]
) -> None:
    checked = 0
    for table, index, columns in _catalog(server, migrated[1], _UNIQUE):
        layout = LAYOUT[str(table)]
        if layout.kind in ("patient", "lookup"):
            assert layout.key in columns, f"{index} of {table} lacks {layout.key}"
            checked += 1
    assert checked >= len([t for t in LAYOUT.values() if t.kind in ("patient", "lookup")])


def test_the_partition_count_is_the_urls(server: str, migrated: tuple[str, str]) -> None:
    counts = _catalog(
        server,
        migrated[1],
        """SELECT p.relname, count(*) FROM pg_inherits h
             JOIN pg_class p ON p.oid = h.inhparent
             JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE n.nspname = %s AND p.relkind = 'p' GROUP BY p.relname""",
    )
    patient_tables = {n for n, t in LAYOUT.items() if t.kind == "patient"}
    assert {str(name): count for name, count in counts} == dict.fromkeys(patient_tables, 3)


@pytest.mark.parametrize("value", ["0", "1025", "many"])
def test_a_partition_count_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="partitions"):
        PostgresStorage.from_url(f"postgresql://u:secret@h/db?partitions={value}")


def test_the_lookup_tables_keep_in_step_and_keep_values_unique(
    server: str, migrated: tuple[str, str]
) -> None:
    url, schema = migrated
    one, two = make_patient_row(901), make_patient_row(902)
    with PostgresStorage.from_url(url) as storage:
        with storage.write() as tx:
            tx.patients.add(one)
            tx.patients.add(two)
        # The same blind index for another person: refused although the two rows would
        # land in different partitions.
        clash = make_patient_row(903)
        clash = attrs.evolve(clash, nir_index=one.nir_index)
        with pytest.raises(ConflictError), storage.write() as tx:
            tx.patients.add(clash)
        with storage.write() as tx:
            tx.patients.replace_nir_index(two.id, b"\x07" * 32)
        with storage.read() as tx:
            found = tx.patients.find_by_nir_index(b"\x07" * 32)
            assert found is not None
            assert found.id == two.id
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        mapped = conn.execute(
            "SELECT nir_index, patient_id FROM patient_by_nir_index "
            "WHERE patient_id IN ('p000901', 'p000902', 'p000903') ORDER BY patient_id"
        ).fetchall()
    assert mapped == [(one.nir_index, one.id), (b"\x07" * 32, two.id)]


def test_the_citus_statements_cover_every_distributed_table() -> None:
    statements = "\n".join(citus_statements())
    for name, layout in LAYOUT.items():
        if layout.kind == "reference":
            assert f"create_reference_table('{name}')" in statements
        elif layout.kind in ("patient", "lookup"):
            assert f"create_distributed_table('{name}', '{layout.key}'" in statements
