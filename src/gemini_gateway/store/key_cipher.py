"""Encryption at rest for upstream keys stored in the database (opt-in).

With ``GEMINI_GATEWAY_KEY_ENCRYPTION_SECRET`` set, a key is stored as ``enc1:`` + a Fernet token
(AES-128-CBC with an HMAC-SHA256, from ``cryptography``), so a copy of the database alone does
not give the keys away. The Fernet key is derived from the secret with scrypt, once per process.
Keys stored before the secret was set are encrypted in place when the store opens with it.

Every replica needs the same secret. Without it (or with another one) an encrypted key cannot be
read: the key pool skips it and says so, and ``key list`` shows it as unreadable.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "enc1:"
_SALT = b"gemini-gateway/upstream-keys/v1"  # fixed: the secret itself must carry the entropy


class UnreadableKey(Exception):
    """A stored key that this process cannot decrypt (no secret, or another one)."""


class KeyCipher:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the key encryption secret is empty")
        derived = hashlib.scrypt(secret.encode(), salt=_SALT, n=2**14, r=8, p=1, dklen=32)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise UnreadableKey("encrypted with another secret") from exc


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def reveal(stored: str, cipher: KeyCipher | None) -> str:
    """The key itself from what the database holds; UnreadableKey when it cannot be decrypted."""
    if not is_encrypted(stored):
        return stored
    if cipher is None:
        raise UnreadableKey("encrypted, and GEMINI_GATEWAY_KEY_ENCRYPTION_SECRET is not set")
    return cipher.decrypt(stored)
