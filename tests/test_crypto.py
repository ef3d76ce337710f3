"""Envelope encryption and master-key providers."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monespace.crypto import (
    EnvKeyProvider,
    FileKeyProvider,
    MasterKey,
    StaticKeyProvider,
    content_aad,
    default_key_provider,
    generate_data_key,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from monespace.errors import ConfigurationError, DecryptionError, MasterKeyError

KEY = generate_data_key()
AAD = content_aad("content", "patient-1", "doc-1")


@given(st.binary(max_size=4096))
def test_sealed_data_opens_to_the_same_bytes(plaintext):
    assert open_sealed(KEY, seal(KEY, plaintext, AAD), AAD) == plaintext


def test_every_single_bit_flip_is_detected():
    """Flipping any bit of version, nonce, ciphertext or tag makes decryption fail."""
    sealed = seal(KEY, b"compte rendu", AAD)
    for position in range(len(sealed) * 8):
        tampered = bytearray(sealed)
        tampered[position // 8] ^= 1 << (position % 8)
        with pytest.raises(DecryptionError):
            open_sealed(KEY, bytes(tampered), AAD)


@pytest.mark.parametrize(
    "other",
    [
        content_aad("content", "patient-1", "doc-2"),
        content_aad("content", "patient-2", "doc-1"),
        content_aad("identity", "patient-1", "doc-1"),
        content_aad("content", "patient-1do", "c-1"),
    ],
)
def test_a_ciphertext_moved_to_another_object_does_not_open(other):
    with pytest.raises(DecryptionError):
        open_sealed(KEY, seal(KEY, b"x", AAD), other)


def test_truncated_or_unknown_format_is_a_decryption_error():
    sealed = seal(KEY, b"x", AAD)
    for bad in (b"", sealed[:10], b"\x02" + sealed[1:]):
        with pytest.raises(DecryptionError):
            open_sealed(KEY, bad, AAD)


def test_nonces_never_repeat():
    """20,000 encryptions under one key: no (key, nonce) pair twice."""
    nonces = {seal(KEY, b"", AAD)[1:13] for _ in range(20_000)}
    assert len(nonces) == 20_000


def test_a_data_key_wrapped_for_one_patient_cannot_be_unwrapped_for_another():
    master = MasterKey.generate()
    wrapped = wrap_key(master, "patient-1", KEY)
    assert unwrap_key(master, "patient-1", wrapped) == KEY
    with pytest.raises(DecryptionError):
        unwrap_key(master, "patient-2", wrapped)
    with pytest.raises(DecryptionError):
        unwrap_key(MasterKey.generate(), "patient-1", wrapped)


def test_master_key_repr_shows_only_the_fingerprint():
    key = MasterKey.generate()
    assert key.to_base64() not in repr(key)
    assert repr(key) == f"MasterKey(id={key.id!r})"
    assert key.id == MasterKey(key.material).id
    assert key.id != MasterKey.generate().id


@pytest.mark.parametrize("text", ["not base64 at all!", "AAAA", ""])
def test_malformed_base64_keys_are_refused_without_echoing_them(text):
    with pytest.raises(MasterKeyError) as info:
        MasterKey.from_base64(text, source="MONESPACE_MASTER_KEY")
    assert "MONESPACE_MASTER_KEY" in str(info.value)
    if text:
        assert text not in str(info.value)


def test_env_provider_reads_current_and_previous_keys():
    current, old = MasterKey.generate(), MasterKey.generate()
    provider = EnvKeyProvider(
        {
            "MONESPACE_MASTER_KEY": current.to_base64(),
            "MONESPACE_PREVIOUS_MASTER_KEYS": f" {old.to_base64()} ,",
        }
    )
    assert provider.current() == current
    assert provider.get(old.id) == old
    assert provider.get(MasterKey.generate().id) is None
    with pytest.raises(ConfigurationError):
        provider.rotate()


def test_file_provider_creates_a_private_key_file_and_rotates(tmp_path):
    path = tmp_path / "conf" / "master-key.json"
    provider = FileKeyProvider(path)
    first = provider.current()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert FileKeyProvider(path).current() == first
    second = provider.rotate()
    assert second != first
    reread = FileKeyProvider(path)
    assert reread.current() == second
    assert reread.get(first.id) == first
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".master-key-")]


def test_file_provider_refuses_a_key_file_others_can_read(tmp_path):
    path = tmp_path / "master-key.json"
    FileKeyProvider(path).current()
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        FileKeyProvider(path).current()


def test_file_provider_reports_malformed_and_missing_files(tmp_path):
    path = tmp_path / "master-key.json"
    path.write_text(json.dumps({"keys": []}))
    os.chmod(path, 0o600)
    with pytest.raises(MasterKeyError, match="malformed"):
        FileKeyProvider(path).current()
    with pytest.raises(MasterKeyError, match="does not exist"):
        FileKeyProvider(tmp_path / "absent.json", create=False).current()


def test_default_provider_prefers_the_environment(tmp_path, monkeypatch):
    key = MasterKey.generate()
    assert isinstance(
        default_key_provider({"MONESPACE_MASTER_KEY": key.to_base64()}), EnvKeyProvider
    )
    provider = default_key_provider({"MONESPACE_KEY_FILE": str(tmp_path / "k.json")})
    assert isinstance(provider, FileKeyProvider)
    assert provider.path == tmp_path / "k.json"


def test_static_provider_rotation_keeps_old_keys():
    first = MasterKey.generate()
    provider = StaticKeyProvider(first)
    second = provider.rotate()
    assert provider.current() == second
    assert provider.get(first.id) == first
