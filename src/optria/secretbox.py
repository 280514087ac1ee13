"""Encryption at rest for stored secrets (integration passwords, SSO client secrets).

AES-256-GCM with a key derived from SESSION_SECRET for this purpose only. The stored form
is ``v1:<base64 nonce+ciphertext>``; the tenant id is bound as associated data, so a
ciphertext copied into another tenant's row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"


class SecretBoxError(ValueError):
    pass


class SecretBox:
    def __init__(self, master_secret: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"optria-secretbox\0" + master_secret).digest())

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, sealed: str, *, context: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SecretBoxError("unknown secret format")
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretBoxError("secret cannot be decrypted (wrong key or wrong tenant)") from None

    def seal_dict(self, values: dict[str, str], *, context: str) -> dict[str, str]:
        return {k: self.seal(v, context=f"{context}:{k}") for k, v in values.items() if v}

    def open_dict(self, sealed: dict[str, str], *, context: str) -> dict[str, str]:
        return {k: self.open(v, context=f"{context}:{k}") for k, v in sealed.items()}
