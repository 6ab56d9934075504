"""Password hashing and signed tokens."""

from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 10_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return salt.hex() + "$" + digest.hex()


def verify_password(password: str, hashed: str) -> bool:
    salt = bytes.fromhex(hashed.partition("$")[0])
    return hmac.compare_digest(hash_password(password, salt), hashed)


def sign(subject: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), subject.encode(), hashlib.sha256).hexdigest()
    return subject + "." + mac
