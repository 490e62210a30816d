"""Credential encryption at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``CONFLUENCE_RAG_SECRET_KEY`` (``settings.secret_key``) when set, otherwise
from a key file generated once in the data dir with mode 0600, so a laptop install works with no
setup while a server can keep the key out of the data volume. A key that is malformed, or that
cannot decrypt what was stored with another key, raises ``SecretKeyError`` naming the variable:
the user must know which knob to turn, and a stored token is never silently dropped.

Nothing here logs or formats plaintext: errors describe the key, never the data.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from confluence_rag.errors import SecretKeyError
from confluence_rag.settings import Settings

KEY_FILE_NAME = "secret.key"
ENV_NAME = "CONFLUENCE_RAG_SECRET_KEY"


class CredentialCipher:
    """Encrypts and decrypts small secrets (credential payloads) with one Fernet key."""

    def __init__(self, key: bytes, *, origin: str) -> None:
        # ``origin`` says where the key came from, for error messages only (never the key).
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"The secret key from {origin} is malformed: it must be a Fernet key "
                f"(32 url-safe base64-encoded bytes, e.g. from "
                f"`python -c 'from cryptography.fernet import Fernet; "
                f"print(Fernet.generate_key().decode())'`). Fix {ENV_NAME}.",
                details={"setting": ENV_NAME, "origin": origin},
            ) from None
        self.origin = origin

    def __repr__(self) -> str:
        return f"CredentialCipher(origin={self.origin!r})"

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SecretKeyError(
                f"Stored credentials cannot be decrypted with the secret key from {self.origin}: "
                f"the key changed since they were saved. Restore the original {ENV_NAME} "
                f"(or key file), or delete and re-add the source.",
                details={"setting": ENV_NAME, "origin": self.origin},
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialCipher:
        """The cipher for this installation: the configured key, else the data-dir key file."""
        if settings.secret_key is not None:
            raw = settings.secret_key.get_secret_value().strip()
            if not raw:
                raise SecretKeyError(
                    f"{ENV_NAME} is set but empty. Unset it to use a generated key file, or set "
                    f"it to a Fernet key.",
                    details={"setting": ENV_NAME},
                )
            return cls(raw.encode("ascii", "replace"), origin=ENV_NAME)
        path = key_file_path(settings)
        try:
            key = load_or_create_key_file(path)
        except OSError as error:
            # unreadable, a directory, a read-only data dir: name the file and the way out
            raise SecretKeyError(
                f"The secret key file {path} cannot be read or created "
                f"({error.strerror or error}). Fix its permissions, or set {ENV_NAME}.",
                details={"setting": ENV_NAME, "path": str(path)},
            ) from None
        return cls(key, origin=f"key file {path} ({ENV_NAME} unset)")


def key_file_path(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, creating it (mode 0600, atomically) if it does not exist yet.

    ``O_EXCL`` makes two processes starting at once agree on one key: the loser reads the
    winner's file instead of overwriting it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return key


def _read_key_file(path: Path) -> bytes:
    # A writer may be between open and write; a short wait lets it finish.
    for _ in range(50):
        data = path.read_bytes().strip()
        if data:
            break
        time.sleep(0.01)
    if not data:
        raise SecretKeyError(
            f"The key file {path} is empty. Restore it, or set {ENV_NAME}.",
            details={"setting": ENV_NAME, "path": str(path)},
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        # Others could read the key: tighten it rather than refuse, the owner meant to keep it.
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    return data
