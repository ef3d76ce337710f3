"""Master keys and the providers that hold them.

The master key (key-encryption key, KEK) never encrypts data: it wraps each patient's data key.
Keys are named by a fingerprint derived from the key itself, so the database records *which*
master key wrapped each data key without holding anything secret, and a wrong key is
recognised before any decryption is attempted.
"""

from __future__ import annotations

import abc
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import ConfigurationError, MasterKeyError

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "ENV_PREVIOUS_KEYS",
    "AuditKey",
    "EnvKeyProvider",
    "FileKeyProvider",
    "KeyProvider",
    "MasterKey",
    "StaticKeyProvider",
    "default_key_file",
    "default_key_provider",
    "verify_signature",
]

ENV_KEY = "MONESPACE_MASTER_KEY"
ENV_PREVIOUS_KEYS = "MONESPACE_PREVIOUS_MASTER_KEYS"
ENV_KEY_FILE = "MONESPACE_KEY_FILE"

KEY_BYTES = 32  # AES-256


def fingerprint(material: bytes) -> str:
    """A public name for a key: it identifies the key and reveals nothing usable about it."""
    return "k" + hashlib.sha256(b"monespace-master-key-id\x00" + material).hexdigest()[:16]


@attrs.frozen(repr=False)
class MasterKey:
    """A 256-bit master key and its fingerprint ``id``. Its ``repr`` never shows the key."""

    material: bytes = attrs.field()
    id: str = attrs.field(init=False)

    @material.validator
    def _check(self, _attribute: attrs.Attribute[bytes], value: bytes) -> None:
        if len(value) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes (got {len(value)})")

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "id", fingerprint(self.material))

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str, *, source: str = "the key") -> MasterKey:
        """Decode a base64 (standard or URL-safe) key; the error names *source*, not the key."""
        cleaned = text.strip()
        try:
            raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_")
        except (binascii.Error, ValueError) as exc:
            raise MasterKeyError(f"{source} is not valid base64") from exc
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(f"{source} must decode to {KEY_BYTES} bytes (got {len(raw)})")
        return cls(raw)

    def to_base64(self) -> str:
        """The key as URL-safe base64, for a key file or an environment variable."""
        return base64.urlsafe_b64encode(self.material).decode()


# HKDF labels: each derived key serves one purpose only, so a key derived for the audit
# chain can never be used, or confused, with the signing key or a data key.
_AUDIT_MAC_LABEL = b"monespace/audit/chain-hmac/v2"
_AUDIT_SIGNING_LABEL = b"monespace/audit/checkpoint-ed25519/v1"


def _derive(material: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(material)


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Whether *signature* is an Ed25519 signature of *data* by *public_key* (32 raw bytes).

    Needs no secret: an auditor holding an exported public key checks checkpoints with it.
    """
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


class AuditKey:
    """The keys that protect the audit trail: an HMAC-SHA256 key that chains the events and
    an Ed25519 key that signs checkpoints. Neither is ever stored in the database.

    The default implementation derives both from a master key with HKDF-SHA256 and fixed
    labels (:meth:`derive`), so they follow the master key's life: its fingerprint is their
    ``id``, recorded with each event and checkpoint. A provider backed by an HSM may return a
    subclass that computes :meth:`mac` and :meth:`sign` inside the device.

    :param id: the public name of the key, stored with each event it chains.
    :param mac_key: the 32-byte HMAC key.
    :param signing_seed: the 32-byte Ed25519 private key.

    .. versionadded:: 0.2
    """

    def __init__(self, id: str, mac_key: bytes, signing_seed: bytes) -> None:
        if len(mac_key) != KEY_BYTES or len(signing_seed) != KEY_BYTES:
            raise MasterKeyError(f"audit keys must be {KEY_BYTES} bytes")
        self.id = id
        self._mac_key = mac_key
        self._signing = Ed25519PrivateKey.from_private_bytes(signing_seed)

    @classmethod
    def derive(cls, master: MasterKey) -> AuditKey:
        """The audit keys of *master*, named by its fingerprint."""
        return cls(
            master.id,
            _derive(master.material, _AUDIT_MAC_LABEL),
            _derive(master.material, _AUDIT_SIGNING_LABEL),
        )

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of *data*."""
        # The standard library's one-shot HMAC: the chain computes one per event.
        return hmac.digest(self._mac_key, data, "sha256")

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of *data*."""
        return self._signing.sign(data)

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key, safe to export and publish."""
        return self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id!r})"


class KeyProvider(abc.ABC):
    """Where master keys come from. Implement this for a KMS or an HSM.

    A provider has one *current* key, used to wrap new data keys, and may know older keys,
    still needed to unwrap data keys until :meth:`monespace.Space.rotate_master_key` has
    re-wrapped them.

    .. versionadded:: 0.1
    """

    @abc.abstractmethod
    def current(self) -> MasterKey:
        """The key that wraps new data keys.

        :raises MasterKeyError: when no key is available.
        """

    @abc.abstractmethod
    def get(self, key_id: str) -> MasterKey | None:
        """The key with fingerprint *key_id*, or ``None`` if this provider does not hold it."""

    def audit_key(self, key_id: str | None = None) -> AuditKey | None:
        """The keys of the audit trail: the current ones (*key_id* ``None``), used for new
        events and checkpoints, or those named *key_id*, to verify older ones; ``None`` when
        this provider does not hold them.

        The default derives them from the master key of the same id (HKDF, fixed labels), so
        keeping a retired master key among the previous keys keeps the events it chained
        verifiable. Override to return dedicated audit keys (from an HSM, say).

        .. versionadded:: 0.2
        """
        if key_id is None:
            return AuditKey.derive(self.current())
        master = self.get(key_id)
        return None if master is None else AuditKey.derive(master)

    def rotate(self) -> MasterKey:
        """Make a new key current, keeping the old ones available, and return it.

        :raises ConfigurationError: when the provider cannot create keys itself (keys set in
            the environment are rotated by changing the environment).
        """
        raise ConfigurationError(
            f"{type(self).__name__} cannot create keys; install a new current key and "
            "keep the old one among the previous keys, then rotate"
        )


class StaticKeyProvider(KeyProvider):
    """Keys given in code. For tests and for embedders with their own vault.

    :param current: the key that wraps new data keys.
    :param previous: older keys still needed for unwrapping.
    """

    def __init__(self, current: MasterKey, *previous: MasterKey) -> None:
        self._current = current
        self._keys = {key.id: key for key in (current, *previous)}

    def current(self) -> MasterKey:
        return self._current

    def get(self, key_id: str) -> MasterKey | None:
        return self._keys.get(key_id)

    def rotate(self) -> MasterKey:
        self._current = MasterKey.generate()
        self._keys[self._current.id] = self._current
        return self._current

    def __repr__(self) -> str:
        return f"StaticKeyProvider(current={self._current.id!r}, keys={len(self._keys)})"


class EnvKeyProvider(KeyProvider):
    """Keys from the environment: ``MONESPACE_MASTER_KEY`` (current, base64 of 32 bytes) and
    ``MONESPACE_PREVIOUS_MASTER_KEYS`` (comma-separated, still accepted for unwrapping).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._current = MasterKey.from_base64(env[ENV_KEY], source=ENV_KEY)
        previous = [
            MasterKey.from_base64(part, source=f"an entry of {ENV_PREVIOUS_KEYS}")
            for part in env.get(ENV_PREVIOUS_KEYS, "").split(",")
            if part.strip()
        ]
        self._keys = {key.id: key for key in (self._current, *previous)}

    def current(self) -> MasterKey:
        return self._current

    def get(self, key_id: str) -> MasterKey | None:
        return self._keys.get(key_id)

    def __repr__(self) -> str:
        return f"EnvKeyProvider(current={self._current.id!r})"


class FileKeyProvider(KeyProvider):
    """Keys in a JSON file readable by its owner only, created with mode 0600 on first use.

    The file is refused if anyone but its owner can read it, as ``ssh`` refuses a private
    key that others can read: a master key others can read protects nothing.

    :param path: the key file.
    :param create: create the file with a new key when it does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self._create = create
        self._loaded: tuple[str, dict[str, MasterKey]] | None = None

    def current(self) -> MasterKey:
        current_id, keys = self._load()
        return keys[current_id]

    def get(self, key_id: str) -> MasterKey | None:
        # Looking a key up never creates the file: a wrong MONESPACE_KEY_FILE must end in
        # "this key is not available", not in a new, unrelated key file.
        if self._loaded is None and not self.path.exists():
            return None
        return self._load()[1].get(key_id)

    def rotate(self) -> MasterKey:
        _, keys = self._load()
        new = MasterKey.generate()
        self._write(new.id, [*keys.values(), new])
        self._loaded = None
        return new

    def _load(self) -> tuple[str, dict[str, MasterKey]]:
        if self._loaded is None:
            if not self.path.exists():
                if not self._create:
                    raise MasterKeyError(f"the key file {self.path} does not exist")
                key = MasterKey.generate()
                self._write(key.id, [key])
            self._loaded = self._read()
        return self._loaded

    def _read(self) -> tuple[str, dict[str, MasterKey]]:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(
                f"the key file {self.path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {self.path}"
            )
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            keys = {
                key.id: key
                for key in (
                    MasterKey.from_base64(entry["key"], source=f"a key in {self.path}")
                    for entry in document["keys"]
                )
            }
            current_id = document["current"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MasterKeyError(f"the key file {self.path} is malformed") from exc
        if current_id not in keys:
            raise MasterKeyError(f"the key file {self.path} names a current key it lacks")
        return current_id, keys

    def _write(self, current_id: str, keys: Iterable[MasterKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "format": "monespace-master-keys/1",
            "current": current_id,
            "keys": [
                {"id": key.id, "key": key.to_base64(), "added": datetime.now(UTC).isoformat()}
                for key in keys
            ],
        }
        # Write a temporary file with mode 0600 from the start, fsync it, then rename it over
        # the old one: a crash leaves either the old file or the new one, never half a key.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".master-key-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self.path)!r})"


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """``MONESPACE_KEY_FILE``, else ``$XDG_CONFIG_HOME/monespace/master-key.json``."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY_FILE):
        return Path(env[ENV_KEY_FILE])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "monespace" / "master-key.json"


def default_key_provider(environ: Mapping[str, str] | None = None) -> KeyProvider:
    """The provider used when neither ``open()`` nor a plugin supplies one."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY):
        return EnvKeyProvider(env)
    return FileKeyProvider(default_key_file(env))
