"""Encryption at rest: master-key providers and AES-256-GCM envelope encryption.

.. versionadded:: 0.1
"""

from ._envelope import content_aad, generate_data_key, open_sealed, seal, unwrap_key, wrap_key
from ._keyring import NOTIFICATION_KEY, Keyring, RotationReport
from ._keys import (
    ENV_KEY,
    ENV_KEY_FILE,
    ENV_PREVIOUS_KEYS,
    AuditKey,
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    MasterKey,
    StaticKeyProvider,
    default_key_file,
    default_key_provider,
    verify_signature,
)

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "ENV_PREVIOUS_KEYS",
    "NOTIFICATION_KEY",
    "AuditKey",
    "EnvKeyProvider",
    "FileKeyProvider",
    "KeyProvider",
    "Keyring",
    "MasterKey",
    "RotationReport",
    "StaticKeyProvider",
    "content_aad",
    "default_key_file",
    "default_key_provider",
    "generate_data_key",
    "open_sealed",
    "seal",
    "unwrap_key",
    "verify_signature",
    "wrap_key",
]
