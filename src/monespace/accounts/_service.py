"""The accounts service: registering persons and reading their administrative data.

The lifecycle (invitation, activation, opposition, closure) builds on this.
"""

from __future__ import annotations

from .._core import Core, new_id
from ..access import Action, Resource
from ..actors import Actor
from ..codec import make_converter
from ..errors import NotFoundError
from ..identity import NIR
from ..storage import PatientRow, Transaction
from ._model import Patient, PatientIdentity

__all__ = ["AccountService", "read_identity"]

_IDENTITY = "identity"
_NIR_INDEX = "nir"


class AccountService:
    """``space.accounts``: persons and their administrative data.

    .. versionadded:: 0.1
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def register_patient(self, actor: Actor, identity: PatientIdentity) -> Patient:
        """Register a person, creating their data key. Operator only.

        :raises ConflictError: when a person with the same NIR is already registered.
        """
        with self._core.unit() as unit:
            patient_id = new_id()
            resource = Resource(patient_id, "patient", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_REGISTER, resource)
            keyring = self._core.keyring
            index = keyring.blind_index(unit.tx, _NIR_INDEX, identity.ins.matricule.value, unit.now)
            keyring.create(unit.tx, patient_id, unit.now)
            sealed = keyring.seal(
                unit.tx, patient_id, _IDENTITY, patient_id, _CODEC.dumps(identity).encode()
            )
            unit.tx.patients.add(PatientRow(patient_id, index, sealed, unit.now))
            unit.record(actor, Action.PATIENT_REGISTER, resource, decision)
            return Patient(patient_id, identity, unit.now)

    def get_patient(self, actor: Actor, patient_id: str) -> Patient:
        """A person's administrative data, for the person or the operator.

        :raises AccessDeniedError: when the actor may not read it, or there is no such person
            (the two are indistinguishable to someone who may not know).
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "patient", patient_id)
            decision = unit.authorize(actor, Action.PATIENT_READ, resource)
            row = unit.tx.patients.get(patient_id)
            if row is None:
                raise NotFoundError("no such person")
            patient = self._load(unit.tx, row)
            unit.record(actor, Action.PATIENT_READ, resource, decision)
            return patient

    def find_by_nir(self, actor: Actor, nir: NIR | str) -> Patient:
        """The person with this NIR. Operator only (a NIR lookup is an administrative act).

        :raises NotFoundError: when nobody has this NIR.
        """
        value = nir.value if isinstance(nir, NIR) else NIR.parse(nir).value
        with self._core.unit() as unit:
            decision = unit.authorize(actor, Action.PATIENT_READ, Resource(None, "patient"))
            index = self._core.keyring.blind_index(unit.tx, _NIR_INDEX, value, unit.now)
            row = unit.tx.patients.find_by_nir_index(index)
            if row is None:
                raise NotFoundError("nobody is registered with this NIR")
            patient = self._load(unit.tx, row)
            unit.record(actor, Action.PATIENT_READ, Resource(row.id, "patient", row.id), decision)
            return patient

    def count(self) -> int:
        """How many persons are registered (a figure, no personal data)."""
        with self._core.storage.read() as tx:
            return tx.patients.count()

    def shred(self, actor: Actor, patient_id: str) -> int:
        """Crypto-shred a person's data: destroy their data key and delete their contents.

        Everything sealed with the key (identity, documents) becomes unrecoverable, including
        from backups. The audit trail keeps the person's opaque id and what happened.

        :return: how many contents were deleted.
        """
        with self._core.unit() as unit:
            resource = Resource(patient_id, "patient", patient_id)
            decision = unit.authorize(actor, Action.CONTENT_SHRED, resource)
            if unit.tx.patients.get(patient_id) is None:
                raise NotFoundError("no such person")
            deleted = unit.tx.blobs.delete_for_patient(patient_id)
            self._core.keyring.destroy(unit.tx, patient_id, unit.now)
            unit.record(actor, Action.CONTENT_SHRED, resource, decision)
            return deleted

    def _load(self, tx: Transaction, row: PatientRow) -> Patient:
        return Patient(row.id, _open_identity(self._core, tx, row), row.created_at)


_CODEC = make_converter()


def _open_identity(core: Core, tx: Transaction, row: PatientRow) -> PatientIdentity:
    raw = core.keyring.open(tx, row.id, _IDENTITY, row.id, row.sealed_identity)
    return _CODEC.loads(raw, PatientIdentity)


def read_identity(core: Core, tx: Transaction, patient_id: str) -> PatientIdentity | None:
    """The decrypted identity of a person, for services that must contact them.

    No policy check: callers are services that already hold an authorised unit of work.
    """
    row = tx.patients.get(patient_id)
    return None if row is None else _open_identity(core, tx, row)
