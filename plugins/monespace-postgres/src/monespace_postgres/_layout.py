"""Which table is what in a layout that scales out, and the Citus statements that follow.

Three kinds of table (docs/explanation/scaling-out.md says why each table is where it is):

- **patient** tables hold one person's data: hash-partitioned by their patient key, every
  primary and unique key includes it, so one person's rows sit in one partition (one Citus
  shard) and every statement about one person stays there;
- **lookup** tables map a value that is not a patient key (the NIR blind index, a document
  id) to the patient, one row per value, so the value is unique across partitions and found
  without asking each of them; in Citus they are distributed by that value;
- **shared** tables hold data that belongs to nobody in particular or to the deployment
  (the directory of professionals, the audit trail's shards and checkpoints, the work
  queues, the migration ledger): reference tables, copied to every node, or tables of the
  coordinator.

The catalog test (``tests/test_postgres_layout.py``) reads PostgreSQL's catalog and fails
when a table is not listed here, when a patient table is not partitioned by its key, or
when one of its keys lacks it.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

__all__ = ["LAYOUT", "TableLayout", "citus_statements"]

Kind = Literal["patient", "lookup", "reference", "coordinator"]


@attrs.frozen
class TableLayout:
    """Where one table goes.

    :ivar kind: ``patient`` (partitioned by *key*, colocated), ``lookup`` (distributed by
        *key*, its own colocation), ``reference`` (a copy on every node) or ``coordinator``
        (kept on the coordinator node: queues and ledgers written by the deployment).
    :ivar key: the distribution column (``None`` for reference and coordinator tables).
    :ivar why: one line, for the documentation.
    """

    kind: Kind
    key: str | None
    why: str


def _patient(why: str, key: str = "patient_id") -> TableLayout:
    return TableLayout("patient", key, why)


#: Every table of the PostgreSQL schema, by name.
LAYOUT: Final[dict[str, TableLayout]] = {
    "patients": _patient("the sealed identity; its id is the patient key", key="id"),
    "data_keys": _patient("the wrapped data key of a patient (space keys hash like any owner)"),
    "blobs": _patient("encrypted contents"),
    "accounts": _patient("the lifecycle of a space"),
    "provisional_codes": _patient("the hashed provisional code"),
    "identity_proofs": _patient("blind indexes of the Carte Vitale and birth date"),
    "representations": _patient("who represents the patient (read from the patient's side)"),
    "documents": _patient("the record's documents"),
    "profile_entries": _patient("the profil médical"),
    "measures": _patient("health measures"),
    "devices": _patient("the devices that took the measures"),
    "access_grants": _patient("the care team and other grants"),
    "access_blocks": _patient("professionals the patient blocked"),
    "access_settings": _patient("the patient's objections and masks"),
    "emergency_sessions": _patient("emergency accesses to the record"),
    "access_seen": _patient("professionals who already read the record"),
    "message_threads": _patient("conversations of the patient"),
    "messages": _patient("messages of those conversations"),
    "message_attachments": _patient("their attachments"),
    "agenda_events": _patient("appointments and health events"),
    "agenda_history": _patient("every version of them"),
    "reminder_opt_outs": _patient("reminder families the patient refused"),
    "reminders_sent": _patient("reminders already sent, once per cycle"),
    "app_consents": _patient("the apps the patient authorised, and their scopes"),
    "oauth_codes": _patient("hashed authorization codes issued for the patient"),
    "oauth_tokens": _patient("hashed access and refresh tokens of the patient's apps"),
    "patient_by_nir_index": TableLayout(
        "lookup", "nir_index", "NIR blind index -> patient: log-in and registration"
    ),
    "patient_by_document": TableLayout(
        "lookup", "document_id", "document id -> patient: a document named without its patient"
    ),
    "patient_by_oauth_code": TableLayout(
        "lookup", "code_hash", "code hash -> patient: an app exchanges a code"
    ),
    "patient_by_oauth_token": TableLayout(
        "lookup", "token_hash", "token hash -> patient: every request of an app"
    ),
    "professionals": TableLayout(
        "reference", None, "the directory (RPPS): read by every patient's access decisions"
    ),
    "catalogue_applications": TableLayout(
        "reference", None, "applications for référencement: about services, not persons"
    ),
    "catalogue_apps": TableLayout("reference", None, "the public catalogue of referenced apps"),
    "audit_shards": TableLayout("reference", None, "one row per audit chain: its head seal"),
    "audit_checkpoints": TableLayout(
        "reference", None, "signed Merkle roots over every chain head"
    ),
    "audit_events": TableLayout(
        "coordinator",
        None,
        "one hash chain per shard of patients; distributed by its shard column at scale",
    ),
    "outbox": TableLayout(
        "coordinator", None, "the delivery queue, drained by dispatchers (patient optional)"
    ),
    "dmp_ledger": TableLayout(
        "coordinator", None, "the operator's import ledger (quarantined lines have no patient)"
    ),
    "schema_migrations": TableLayout("coordinator", None, "the schema version"),
    "web_sessions": TableLayout(
        "coordinator", None, "the demo server's sessions, by token hash (a person's or a pro's)"
    ),
    "rate_limits": TableLayout(
        "coordinator", None, "attempt counters of the logins, by keyed hash and time window"
    ),
}


def citus_statements() -> list[str]:
    """The statements that distribute a migrated schema over a Citus cluster, in order.

    Run on the coordinator after the migrations (``SELECT create_distributed_table ...``).
    Reference tables first (distributed tables hold foreign keys to them), then the
    patient tables colocated with ``patients``, then the lookup tables.
    """
    out = [
        # A foreign key between two persons' rows, or from a coordinator table to a
        # distributed one, cannot be checked across nodes.
        "ALTER TABLE representations DROP CONSTRAINT representations_representative_fkey;",
        "ALTER TABLE dmp_ledger DROP CONSTRAINT dmp_ledger_patient_fkey;",
    ]
    out += [
        f"SELECT create_reference_table('{name}');"
        for name, t in LAYOUT.items()
        if t.kind == "reference"
    ]
    out.append("SELECT create_distributed_table('patients', 'id');")
    out += [
        f"SELECT create_distributed_table('{name}', '{t.key}', colocate_with => 'patients');"
        for name, t in LAYOUT.items()
        if t.kind == "patient" and name != "patients"
    ]
    out += [
        f"SELECT create_distributed_table('{name}', '{t.key}', colocate_with => 'none');"
        for name, t in LAYOUT.items()
        if t.kind == "lookup"
    ]
    return out
