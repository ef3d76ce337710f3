"""The persons a space is for: their invitations (identity and contacts live in
:mod:`monespace.identities`, below every service)."""

from __future__ import annotations

from datetime import datetime

import attrs

from ..errors import MonespaceError
from ..identities import Contact, Patient, PatientIdentity, PostalAddress
from ._lifecycle import Channel

__all__ = [
    "Contact",
    "Invitation",
    "InvitationFailure",
    "Patient",
    "PatientIdentity",
    "PostalAddress",
]


@attrs.frozen
class Invitation:
    """An invitation that was queued: to whom (the holder or a representative) and by which
    channel, and when the opposition window closes."""

    patient_id: str
    channel: Channel
    to_representative: bool
    opposition_deadline: datetime


@attrs.frozen
class InvitationFailure:
    """A person a batch of invitations (``space.accounts.invite_many``) did not invite, and
    the error ``invite`` would have raised for them: :class:`~monespace.errors.NotFoundError`,
    :class:`~monespace.errors.ValidationError` (not registered, no e-mail or postal address),
    :class:`~monespace.errors.AccessDeniedError`.

    .. versionadded:: 0.3
    """

    patient_id: str
    error: MonespaceError
