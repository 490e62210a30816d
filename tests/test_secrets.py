"""Credential encryption: where the key comes from, and every way it can be wrong."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from confluence_rag.errors import SecretKeyError
from confluence_rag.secrets import KEY_FILE_NAME, CredentialCipher, key_file_path
from confluence_rag.settings import Settings


def test_generated_key_file_is_private_and_reused(settings: Settings) -> None:
    cipher = CredentialCipher.from_settings(settings)
    path = key_file_path(settings)
    assert path == settings.data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = cipher.encrypt(b"hunter2")
    assert b"hunter2" not in token
    # A second process (a new cipher) reads the same file and decrypts.
    again = CredentialCipher.from_settings(settings)
    assert again.decrypt(token) == b"hunter2"


def test_loose_key_file_permissions_are_tightened(settings: Settings) -> None:
    CredentialCipher.from_settings(settings)
    path = key_file_path(settings)
    path.chmod(0o644)
    CredentialCipher.from_settings(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_from_settings_wins_over_the_file(isolated_env: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(data_dir=isolated_env, secret_key=SecretStr(key))
    cipher = CredentialCipher.from_settings(settings)
    assert not key_file_path(settings).exists()
    assert Fernet(key.encode()).decrypt(cipher.encrypt(b"x")) == b"x"
    assert key not in repr(cipher) and key not in repr(settings) and key not in str(settings)


def test_key_from_environment(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CONFLUENCE_RAG_SECRET_KEY", key)
    cipher = CredentialCipher.from_settings(Settings())
    assert cipher.origin == "CONFLUENCE_RAG_SECRET_KEY"
    assert Fernet(key.encode()).decrypt(cipher.encrypt(b"y")) == b"y"


# Explicit ids: a random key in a test id differs between xdist workers' collections.
@pytest.mark.parametrize(
    "bad",
    ["not-a-key", "   ", "a" * 44, Fernet.generate_key().decode()[:-2]],
    ids=["text", "blank", "not-a-fernet-key", "truncated-key"],
)
def test_malformed_key_names_the_variable(isolated_env: Path, bad: str) -> None:
    settings = Settings(data_dir=isolated_env, secret_key=SecretStr(bad))
    with pytest.raises(SecretKeyError) as info:
        CredentialCipher.from_settings(settings)
    assert "CONFLUENCE_RAG_SECRET_KEY" in info.value.message
    if bad.strip():
        assert bad not in info.value.message


def test_wrong_key_cannot_decrypt_and_says_so(isolated_env: Path) -> None:
    first = Settings(data_dir=isolated_env, secret_key=SecretStr(Fernet.generate_key().decode()))
    token = CredentialCipher.from_settings(first).encrypt(b"secret-token")
    second = Settings(data_dir=isolated_env, secret_key=SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(SecretKeyError) as info:
        CredentialCipher.from_settings(second).decrypt(token)
    assert "CONFLUENCE_RAG_SECRET_KEY" in info.value.message
    assert "secret-token" not in info.value.message


def test_missing_key_file_after_encryption_is_a_clear_error(settings: Settings) -> None:
    token = CredentialCipher.from_settings(settings).encrypt(b"tok")
    key_file_path(settings).unlink()  # the key was lost: a new one is generated...
    with pytest.raises(SecretKeyError, match="CONFLUENCE_RAG_SECRET_KEY"):
        CredentialCipher.from_settings(settings).decrypt(token)  # ...and cannot read old data


def test_corrupt_key_file_is_a_clear_error(settings: Settings) -> None:
    path = key_file_path(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage\n")
    with pytest.raises(SecretKeyError, match="CONFLUENCE_RAG_SECRET_KEY") as info:
        CredentialCipher.from_settings(settings)
    assert str(path) in info.value.message

    path.write_bytes(b"")
    with pytest.raises(SecretKeyError, match="empty"):
        CredentialCipher.from_settings(settings)
