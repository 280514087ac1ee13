"""Argon2 password hashing and the strength rules shown on every password form."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the user does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("optria-timing-equaliser")

MIN_LENGTH = 10
RULES_TEXT = "At least 10 characters, with letters and digits."


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problems(password: str, *, username: str = "") -> list[str]:
    """English problem keys (translated on pages); empty when the password is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append("Password must be at least 10 characters long.")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append("Password must contain letters and digits.")
    if username and username.lower() in password.lower():
        problems.append("Password must not contain the username.")
    if len(password) > 256:
        problems.append("Password is too long.")
    return problems
