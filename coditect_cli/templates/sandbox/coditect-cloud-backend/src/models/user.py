"""The user account."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class User:
    id: int
    email: str
    password_hash: str
    role: str = "member"
