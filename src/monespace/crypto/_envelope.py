"""Envelope encryption with AES-256-GCM.

Each patient has a data key (DEK). Contents are sealed with it; the DEK itself is stored
wrapped (encrypted) by a master key. Associated data binds every ciphertext to the identity of
the object it belongs to, so a ciphertext copied onto another row, another patient or another
kind of object fails to decrypt instead of being read as the wrong thing.

Nonces are 96 random bits drawn by this module for every encryption; callers cannot supply
one. NIST SP 800-38D bounds random-nonce GCM at 2**32 encryptions per key: with one key per
patient that bound is out of reach.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DecryptionError
from ._keys import KEY_BYTES, MasterKey

__all__ = ["content_aad", "generate_data_key", "open_sealed", "seal", "unwrap_key", "wrap_key"]

_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12
_OVERHEAD = len(_FORMAT_V1) + _NONCE_BYTES + 16


def generate_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_BYTES)


def content_aad(kind: str, patient_id: str, object_id: str) -> bytes:
    """Associated data for a sealed object: its kind, owner and id, unambiguously joined."""
    parts = (b"monespace/v1", kind.encode(), patient_id.encode(), object_id.encode())
    # Length-prefix each part so that ("ab", "c") and ("a", "bc") can never give the same bytes.
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt *plaintext* under *key*; the result is ``version || nonce || ciphertext+tag``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt what :func:`seal` produced.

    :raises DecryptionError: when the data, its tag or the associated data were altered, or
        the key is not the one that sealed it.
    """
    if len(sealed) < _OVERHEAD or sealed[:1] != _FORMAT_V1:
        raise DecryptionError("the sealed data is truncated or in an unknown format")
    nonce = sealed[1 : 1 + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + _NONCE_BYTES :], aad)
    except InvalidTag as exc:
        raise DecryptionError(
            "authentication failed: the data was altered or belongs to another object"
        ) from exc


def _wrap_aad(patient_id: str, master_key_id: str) -> bytes:
    return content_aad("data-key", patient_id, master_key_id)


def wrap_key(master: MasterKey, patient_id: str, data_key: bytes) -> bytes:
    """Encrypt a patient's data key under a master key."""
    return seal(master.material, data_key, _wrap_aad(patient_id, master.id))


def unwrap_key(master: MasterKey, patient_id: str, wrapped: bytes) -> bytes:
    """Decrypt a data key wrapped by :func:`wrap_key`."""
    return open_sealed(master.material, wrapped, _wrap_aad(patient_id, master.id))
