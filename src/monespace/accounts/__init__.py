"""Accounts: persons, their identity and contacts, the lifecycle of their space,
provisional codes and legal representatives.

The service is ``space.accounts`` (:class:`monespace.AccountService`).

.. versionadded:: 0.1
"""

from ._codes import AttemptPolicy, CodeRecord, code_entropy_bits, generate_code
from ._lifecycle import Account, AccountState, Channel, LifecycleRules
from ._mapping import account_from_row, representation_from_row
from ._model import (
    Contact,
    Invitation,
    InvitationFailure,
    Patient,
    PatientIdentity,
    PostalAddress,
)
from ._proofs import OppositionProof, verify_opposition_proof
from ._representation import ProofRecord, Representation, RepresentationKind

__all__ = [
    "Account",
    "AccountState",
    "AttemptPolicy",
    "Channel",
    "CodeRecord",
    "Contact",
    "Invitation",
    "InvitationFailure",
    "LifecycleRules",
    "OppositionProof",
    "Patient",
    "PatientIdentity",
    "PostalAddress",
    "ProofRecord",
    "Representation",
    "RepresentationKind",
    "account_from_row",
    "code_entropy_bits",
    "generate_code",
    "representation_from_row",
    "verify_opposition_proof",
]
