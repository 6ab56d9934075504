from __future__ import annotations

import unittest

from src.core.security import hash_password, sign, verify_password


class SecurityTest(unittest.TestCase):
    def test_password_round_trip(self) -> None:
        hashed = hash_password("s3cret")
        self.assertTrue(verify_password("s3cret", hashed))
        self.assertFalse(verify_password("wrong", hashed))

    def test_signature_depends_on_secret(self) -> None:
        self.assertNotEqual(sign("1", "a"), sign("1", "b"))
