"""Signup and login over an in-memory user store (the database comes with Alembic)."""

from __future__ import annotations

from src.core.security import hash_password, sign, verify_password
from src.models.user import User


class AuthError(Exception):
    """Bad credentials or a taken email."""


class AuthService:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.users: dict[str, User] = {}

    def signup(self, email: str, password: str) -> User:
        if email in self.users:
            raise AuthError(f"{email} is already registered")
        user = User(id=len(self.users) + 1, email=email, password_hash=hash_password(password))
        self.users[email] = user
        return user

    def login(self, email: str, password: str) -> str:
        user = self.users.get(email)
        if user is None or not verify_password(password, user.password_hash):
            raise AuthError("invalid email or password")
        return sign(str(user.id), self.secret)
