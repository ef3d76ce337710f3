"""The persons a space is for: their invitations (identity and contacts live in
:mod:`monespace.identities`, below every service)."""

from __future__ import annotations

from datetime import datetime

import attrs

from ..identities import Contact, Patient, PatientIdentity, PostalAddress
from ._lifecycle import Channel

__all__ = ["Contact", "Invitation", "Patient", "PatientIdentity", "PostalAddress"]


@attrs.frozen
class Invitation:
    """An invitation that was queued: to whom (the holder or a representative) and by which
    channel, and when the opposition window closes."""

    patient_id: str
    channel: Channel
    to_representative: bool
    opposition_deadline: datetime
