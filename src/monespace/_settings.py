"""Settings of a space: limits and delays that an operator may need to change."""

from __future__ import annotations

from datetime import timedelta

import attrs

from .accounts import AttemptPolicy, LifecycleRules
from .agenda import AgendaSettings
from .audit import AuditSettings
from .catalogue import CatalogueSettings, OAuthSettings
from .messaging import MessagingSettings
from .policy import AccessPolicy
from .record import RecordSettings

__all__ = ["Settings"]


@attrs.frozen
class Settings:
    """Tunable limits of a space. Every field has a documented default.

    :param max_content_bytes: the largest content accepted (20 MiB by default: the DMP's
        own limit for a document is of that order; large imaging stays in the PACS and is
        referenced, not copied).
    :param outbox_max_attempts: deliveries tried before a notification is marked dead.
    :param outbox_retry_base: the delay after the first failure; it doubles each time.
    :param outbox_retry_cap: the longest delay between two attempts.
    :param lifecycle: the durations of a space's lifecycle (opposition window, archive...).
    :param attempts: the limits on guessing provisional codes and proofs of identity.
    :param record: the delays of the record's visibility rules (announcement consultation).
    :param access: the professional-access rules' settings (matrix, médecin traitant's
        override, emergency duration).
    :param messaging: the secure messaging's limits and retention policy.
    :param agenda: whether ticks send prevention reminders, and the calendar edition.
    :param audit: when the audit trail writes signed checkpoints.
    :param catalogue: the référencement's convention duration, renewal window and the
        edition of the référentiel.
    :param oauth: the lifetimes of apps' authorization codes, access and refresh tokens.

    .. versionchanged:: 0.2
       ``audit`` and ``agenda``.
    """

    max_content_bytes: int = 20 * 1024 * 1024
    outbox_max_attempts: int = 8
    outbox_retry_base: timedelta = timedelta(minutes=1)
    outbox_retry_cap: timedelta = timedelta(hours=6)
    lifecycle: LifecycleRules = attrs.field(factory=LifecycleRules)
    attempts: AttemptPolicy = attrs.field(factory=AttemptPolicy)
    record: RecordSettings = attrs.field(factory=RecordSettings)
    access: AccessPolicy = attrs.field(factory=AccessPolicy)
    messaging: MessagingSettings = attrs.field(factory=MessagingSettings)
    agenda: AgendaSettings = attrs.field(factory=AgendaSettings)
    audit: AuditSettings = attrs.field(factory=AuditSettings)
    catalogue: CatalogueSettings = attrs.field(factory=CatalogueSettings)
    oauth: OAuthSettings = attrs.field(factory=OAuthSettings)

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after the *attempts*-th failed delivery."""
        delay = self.outbox_retry_base * (1 << min(max(attempts - 1, 0), 30))
        return min(delay, self.outbox_retry_cap)
