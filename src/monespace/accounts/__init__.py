"""Accounts: persons, their identity and contacts, the lifecycle of their space,
provisional codes and legal representatives.

The service is ``space.accounts`` (:class:`monespace.AccountService`).

.. versionadded:: 0.1
"""

from ._codes import AttemptPolicy, CodeRecord, code_entropy_bits, generate_code
from ._lifecycle import Account, AccountState, Channel, LifecycleRules
from ._model import Contact, Invitation, Patient, PatientIdentity, PostalAddress
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
    "LifecycleRules",
    "OppositionProof",
    "Patient",
    "PatientIdentity",
    "PostalAddress",
    "ProofRecord",
    "Representation",
    "RepresentationKind",
    "code_entropy_bits",
    "generate_code",
    "verify_opposition_proof",
]
