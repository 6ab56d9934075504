"""HTTP handlers of /api/v1/auth (framework-free: each returns a status and a JSON body)."""

from __future__ import annotations

from src.services.auth_service import AuthError, AuthService


def signup(service: AuthService, body: dict) -> tuple[int, dict]:
    user = service.signup(body["email"], body["password"])
    return 201, {"id": user.id, "email": user.email}


def login(service: AuthService, body: dict) -> tuple[int, dict]:
    try:
        return 200, {"access_token": service.login(body["email"], body["password"])}
    except AuthError as exc:
        return 401, {"detail": str(exc)}
