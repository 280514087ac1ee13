"""Keys derived from SESSION_SECRET, and encryption at rest for stored secrets.

One operator secret (SESSION_SECRET) feeds several jobs, each with its own key derived by
HKDF-SHA256 with a distinct ``info`` label, so a key of one job says nothing about another:
the session cookie, the CSRF token and the stored-secrets key below.

Stored secrets (integration passwords, SSO client secrets) are sealed with AES-256-GCM. The
stored form is ``v2:<base64 nonce+ciphertext>``; the context (tenant id and field) is bound
as associated data, so a ciphertext copied into another tenant's row does not decrypt.
``v1:`` values, written before keys were derived with HKDF (key = sha256 of a label and the
secret), are still read; ``optria rotate-secret`` rewrites them as ``v2``, and re-seals every
stored secret from an old SESSION_SECRET to the current one after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v2:"
LEGACY_PREFIX = "v1:"

# HKDF ``info`` labels: one per job. Changing one changes that key only.
PURPOSE_SESSION_COOKIE = "optria/session-cookie/v1"
PURPOSE_CSRF = "optria/csrf/v1"
PURPOSE_SECRETS_AT_REST = "optria/secrets-at-rest/v1"
_SALT = b"optria-iq key derivation"


class SecretBoxError(ValueError):
    pass


def derive_key(master_secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one job, derived from the operator's secret with HKDF-SHA256."""
    if not master_secret:
        raise ValueError("an empty secret derives no key")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=purpose.encode()).derive(master_secret)


def _legacy_key(master_secret: bytes) -> bytes:
    """The v1 key (before HKDF): read-only, so values stored by earlier versions still open."""
    return hashlib.sha256(b"optria-secretbox\0" + master_secret).digest()


class SecretBox:
    def __init__(self, master_secret: bytes) -> None:
        self._aead = AESGCM(derive_key(master_secret, PURPOSE_SECRETS_AT_REST))
        self._legacy = AESGCM(_legacy_key(master_secret))

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, sealed: str, *, context: str) -> str:
        if not isinstance(sealed, str):
            raise SecretBoxError("unknown secret format")
        if sealed.startswith(PREFIX):
            aead, body = self._aead, sealed[len(PREFIX):]
        elif sealed.startswith(LEGACY_PREFIX):
            aead, body = self._legacy, sealed[len(LEGACY_PREFIX):]
        else:
            raise SecretBoxError("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(body)
        except (binascii.Error, ValueError):
            raise SecretBoxError("secret is damaged (not base64)") from None
        if len(raw) < 12 + 16:
            raise SecretBoxError("secret is damaged (too short)")
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretBoxError("secret cannot be decrypted (wrong key or wrong tenant)") from None

    @staticmethod
    def is_current(sealed: str) -> bool:
        """True when the value is in the current format (a rotation has nothing to rewrite)."""
        return isinstance(sealed, str) and sealed.startswith(PREFIX)

    def seal_dict(self, values: dict[str, str], *, context: str) -> dict[str, str]:
        return {k: self.seal(v, context=f"{context}:{k}") for k, v in values.items() if v}

    def open_dict(self, sealed: dict[str, str], *, context: str) -> dict[str, str]:
        return {k: self.open(v, context=f"{context}:{k}") for k, v in sealed.items()}
