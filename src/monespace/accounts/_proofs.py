"""Signed proofs of opposition: the document a person keeps to show they objected.

A proof is a small JSON document signed with the space's Ed25519 key. Anyone holding the
space's public key (:meth:`monespace.AccountService.signing_public_key`) can check it with
:func:`verify_opposition_proof`, without access to the space.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..codec import make_converter
from ..errors import ValidationError

__all__ = ["OppositionProof", "sign_opposition", "verify_opposition_proof"]

_TYPE = "monespace-opposition-proof/1"
_CODEC = make_converter()


@attrs.frozen
class _ProofIns:
    matricule: str
    oid: str


@attrs.frozen
class _ProofFields:
    """The signed fields of a proof; their JSON form is what the signature covers."""

    type: str
    proof_id: str
    ins: _ProofIns
    opposed_at: datetime
    by: str


@attrs.frozen(repr=False)
class OppositionProof:
    """A proof of opposition.

    :ivar document: the signed JSON text to hand to the person (PDF rendering is the
        embedder's concern); it names the person by their INS matricule.
    :ivar proof_id: a reference to quote to the operator.
    """

    proof_id: str
    opposed_at: datetime
    document: str

    def __repr__(self) -> str:
        return f"OppositionProof(proof_id={self.proof_id!r})"


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_key_bytes(seed: bytes) -> bytes:
    """The raw Ed25519 public key for a 32-byte private seed."""
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_opposition(
    seed: bytes, *, proof_id: str, matricule: str, oid: str, opposed_at: datetime, by: str
) -> OppositionProof:
    """Sign a proof that the person with INS (*matricule*, *oid*) objected at *opposed_at*.

    :param by: ``"holder"`` or ``"representative"``.
    """
    fields: dict[str, Any] = _CODEC.unstructure(
        _ProofFields(_TYPE, proof_id, _ProofIns(matricule, oid), opposed_at, by)
    )
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(_canonical(fields))
    document = json.dumps(
        {**fields, "signature": base64.b64encode(signature).decode()}, ensure_ascii=False
    )
    return OppositionProof(proof_id, opposed_at, document)


def verify_opposition_proof(document: str, public_key: bytes) -> dict[str, Any]:
    """Check a proof's signature and return its fields.

    :raises ValidationError: when the document is malformed or the signature does not match.
    """
    try:
        data = json.loads(document)
        signature = base64.b64decode(data.pop("signature"), validate=True)
        if data.get("type") != _TYPE:
            raise ValueError("unknown type")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError("this is not a monespace proof of opposition") from exc
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, _canonical(data))
    except (InvalidSignature, ValueError) as exc:
        raise ValidationError("the proof's signature does not match this space's key") from exc
    return dict(data)
