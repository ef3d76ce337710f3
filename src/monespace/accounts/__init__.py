"""Accounts: persons, their identity and contacts.

.. versionadded:: 0.1
"""

from ._model import Contact, Patient, PatientIdentity, PostalAddress
from ._service import AccountService

__all__ = ["AccountService", "Contact", "Patient", "PatientIdentity", "PostalAddress"]
