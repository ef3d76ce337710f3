"""Encrypted contents of a patient's space (the bytes of documents and attachments)."""

from __future__ import annotations

import hashlib
from datetime import datetime

import attrs

from .._ids import new_id
from .._unit import Core, Unit
from ..access import Action, Resource
from ..actors import Actor, ActorKind
from ..errors import AccessDeniedError, ValidationError
from ..identities import read_contact
from ..storage import BlobRow

__all__ = ["ContentRef", "ContentService"]

_MEDIA_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-/")


@attrs.frozen
class ContentRef:
    """A stored content, without its bytes.

    :ivar sha256: hex SHA-256 of the plaintext (the XDS ``hash`` metadata).
    """

    id: str
    patient_id: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime


def _ref(row: BlobRow) -> ContentRef:
    return ContentRef(
        row.id, row.patient_id, row.media_type, row.size, row.sha256.hex(), row.created_at
    )


class ContentService:
    """Store and read encrypted contents, under the access policy.

    .. versionadded:: 0.1
    """

    KIND = "content"

    def __init__(self, core: Core) -> None:
        self._core = core

    def put(
        self,
        actor: Actor,
        patient_id: str,
        data: bytes,
        *,
        media_type: str = "application/octet-stream",
    ) -> ContentRef:
        """Encrypt and store *data* in *patient_id*'s space.

        When someone other than the patient adds a content, the patient is told by e-mail
        (if they have an address) that something new is in their space, without saying what.

        :raises ValidationError: when *data* is empty, too large, or the media type malformed.
        """
        settings = self._core.settings
        if not data:
            raise ValidationError("a content must not be empty")
        if len(data) > settings.max_content_bytes:
            raise ValidationError(
                f"a content must be at most {settings.max_content_bytes} bytes (got {len(data)})"
            )
        media = media_type.strip().lower()
        if media.count("/") != 1 or not set(media) <= _MEDIA_TYPE_CHARS:
            raise ValidationError("'media_type' must look like type/subtype")
        with self._core.unit() as unit:
            content_id = new_id()
            resource = Resource(patient_id, self.KIND, content_id)
            decision = unit.authorize(actor, Action.CONTENT_WRITE, resource)
            keyring = self._core.keyring
            sealed = keyring.seal(unit.tx, patient_id, self.KIND, content_id, data)
            row = BlobRow(
                content_id,
                patient_id,
                self.KIND,
                media,
                len(data),
                hashlib.sha256(data).digest(),
                sealed,
                unit.now,
            )
            unit.tx.blobs.add(row)
            unit.record(actor, Action.CONTENT_WRITE, resource, decision)
            if actor.kind is not ActorKind.PATIENT:
                self._tell_patient(unit, patient_id)
            return _ref(row)

    def get(self, actor: Actor, content_id: str) -> bytes:
        """Decrypt and return a content.

        :raises AccessDeniedError: when the actor may not read it *or it does not exist*:
            the answer is the same, so a denial never confirms that something exists.
        """
        with self._core.unit() as unit:
            row = unit.tx.blobs.get(content_id)
            resource = Resource(
                row.patient_id if row is not None and row.kind == self.KIND else None,
                self.KIND,
                content_id,
            )
            decision = unit.authorize(actor, Action.CONTENT_READ, resource)
            if row is None or resource.patient_id is None:
                # The policy denies resources without an owner; never rely on that alone.
                raise AccessDeniedError("deny_by_default")
            data = self._core.keyring.open(
                unit.tx, resource.patient_id, self.KIND, content_id, row.sealed
            )
            unit.record(actor, Action.CONTENT_READ, resource, decision)
            return data

    def list(self, actor: Actor, patient_id: str) -> list[ContentRef]:
        """The contents of a space the actor may read, oldest first."""
        with self._core.unit() as unit:
            resource = Resource(patient_id, self.KIND)
            decision = unit.authorize(actor, Action.CONTENT_READ, resource)
            rows = unit.tx.blobs.list_for_patient(patient_id)
            refs = [_ref(r) for r in rows if r.kind == self.KIND]
            unit.record(actor, Action.CONTENT_READ, resource, decision)
            return refs

    def _tell_patient(self, unit: Unit, patient_id: str) -> None:
        contact = read_contact(self._core, unit.tx, patient_id)
        if contact is not None and contact.email:
            unit.notify(
                channel="email",
                recipient=contact.email,
                subject="Nouveau contenu dans votre espace santé",
                body=(
                    "Un nouvel élément a été ajouté à votre espace santé.\n"
                    "Connectez-vous à votre espace pour le consulter.\n"
                ),
                kind="new-content",
                patient_id=patient_id,
            )
