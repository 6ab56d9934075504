from __future__ import annotations

import unittest

from src.api.v1 import auth
from src.services.auth_service import AuthError, AuthService


class AuthServiceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.service = AuthService(secret="test")

    def test_signup_then_login(self) -> None:
        self.service.signup("ada@example.com", "pw")
        self.assertTrue(self.service.login("ada@example.com", "pw").startswith("1."))

    def test_duplicate_signup_is_refused(self) -> None:
        self.service.signup("ada@example.com", "pw")
        with self.assertRaises(AuthError):
            self.service.signup("ada@example.com", "pw")

    def test_login_handler_rejects_bad_password(self) -> None:
        auth.signup(self.service, {"email": "ada@example.com", "password": "pw"})
        status, _ = auth.login(self.service, {"email": "ada@example.com", "password": "no"})
        self.assertEqual(status, 401)
