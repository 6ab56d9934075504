"""The embedded local sandbox: a small imitation of the CODITECT cloud platform's repositories.

:func:`build_sandbox` creates, in one directory, four bare "origin" repositories (the
``coditect-rollout-master`` superproject and its three cloud submodules: infra, backend, frontend), each
with ``main`` and ``develop`` branches and a few lines of plausible content in exactly the paths the
phase-1 manifest's streams own, plus a working clone of the superproject with its submodules initialised
and checked out on ``develop``. Every repository ships the same ``ci/check.py``: small, genuine,
stdlib-only checks behind the manifest's gate commands.

The build is deterministic (fixed identity and dates, global and system git config ignored) and refuses
to touch a non-empty directory that is not a previous sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.errors import ManifestError, RefusedError

MARKER = ".coditect-sandbox"
MARKER_KIND = "coditect-sandbox"
MARKER_VERSION = 1

SUPERPROJECT = "coditect-rollout-master"
SUBMODULE_DIR = "submodules/cloud"

# Local file transport for submodules is blocked by default since git 2.38 (CVE-2022-39253).
_ALLOW_FILE = ("-c", "protocol.file.allow=always")

IDENTITY_NAME = "CODITECT Sandbox"
IDENTITY_EMAIL = "sandbox@coditect.invalid"
_DATE = "2026-11-30T09:00:00+00:00"
_DEVELOP_DATE = "2026-11-30T10:00:00+00:00"

_EXECUTABLE = frozenset({"ci/check.py", "scripts/deploy.sh"})


@dataclass(frozen=True)
class Sandbox:
    """A built sandbox: the user's working clone, the bare origins by repository name, and whether an
    earlier sandbox was replaced."""

    root: Path
    origins: dict[str, Path]
    rebuilt: bool


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --------------------------------------------------------------------------------------------------
# ci/check.py: the same file in every repository (kept free of ''' so it fits in one raw string).
# --------------------------------------------------------------------------------------------------

CHECK_PY = r'''#!/usr/bin/env python3
"""Quality gates of the CODITECT sandbox: small, genuine, stdlib-only checks.

Usage: python3 ci/check.py WHAT
WHAT is one of: opentofu, security, openapi, typescript, tests, kubernetes, docs, database.

Exit status: 0 when the check passes, 1 when it finds problems (listed one a line on stderr, the last
line a summary), 2 on bad usage. The checks look at the repository holding this script (the parent of
ci/), never into hidden directories, node_modules or nested repositories (submodules, worktrees).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
PRUNE = {"node_modules", "__pycache__", "venv"}
CLOSERS = {")": "(", "]": "[", "}": "{"}


def rel(path):
    return path.relative_to(ROOT).as_posix()


def read(path):
    return path.read_text(encoding="utf-8", errors="replace")


def walk(top, suffixes=None):
    """Files under ROOT/top (sorted), optionally only those whose name ends with one of suffixes."""
    base = ROOT / top if top else ROOT
    found = []
    if not base.is_dir():
        return found

    def visit(folder):
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                if entry.name.startswith(".") or entry.name in PRUNE or (entry / ".git").exists():
                    continue
                visit(entry)
            elif entry.is_file() and (suffixes is None or entry.name.endswith(suffixes)):
                found.append(entry)

    visit(base)
    return found


def brackets(text, line_comments, quotes, multiline_quotes=""):
    """The first bracket problem in text as "line N: message", or None when (), [], {} balance.

    Comments (line_comments, /* */) and string literals (quotes) are skipped; a quote not in
    multiline_quotes ends at the end of its line.
    """
    stack = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif any(text.startswith(marker, i) for marker in line_comments):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return "line %d: unterminated /* comment" % line
            line += text.count("\n", i, end)
            i = end + 2
        elif c in quotes:
            j = i + 1
            while j < n and text[j] != c and (text[j] != "\n" or c in multiline_quotes):
                j += 2 if text[j] == "\\" else 1
            end = j + 1 if j < n and text[j] == c else min(j, n)
            line += text.count("\n", i, end)
            i = end
        else:
            if c in "([{":
                stack.append((c, line))
            elif c in CLOSERS:
                if not stack:
                    return "line %d: unexpected %r" % (line, c)
                opener, opened = stack.pop()
                if opener != CLOSERS[c]:
                    return "line %d: %r closes %r opened on line %d" % (line, c, opener, opened)
            i += 1
    if stack:
        opener, opened = stack[-1]
        return "line %d: %r is never closed" % (opened, opener)
    return None


def check_opentofu():
    dirs = [d for d in ("opentofu", "terraform") if (ROOT / d).is_dir()]
    if not dirs:
        return 0, ["no opentofu/ or terraform/ directory"]
    files = [f for d in dirs for f in walk(d, (".tf", ".tfvars"))]
    if not files:
        return 0, ["no *.tf files under %s" % " or ".join(d + "/" for d in dirs)]
    problems = []
    for path in files:
        text = read(path)
        for number, line in enumerate(text.splitlines(), 1):
            if "TODO-BREAK" in line:
                problems.append("%s:%d: TODO-BREAK marker" % (rel(path), number))
        bad = brackets(text, ("#", "//"), '"')
        if bad:
            problems.append("%s: unbalanced brackets, %s" % (rel(path), bad))
    return len(files), problems


def check_security():
    files = walk("opentofu") + walk("terraform")
    problems = []
    for path in files:
        for number, line in enumerate(read(path).splitlines(), 1):
            if "0.0.0.0/0" in line or "::/0" in line:
                problems.append("%s:%d: open to the whole internet: %s" % (rel(path), number, line.strip()))
    return len(files), problems


def check_openapi():
    path = ROOT / "openapi.yaml"
    if not path.is_file():
        return 0, ["openapi.yaml: missing"]
    lines = read(path).splitlines()
    problems = []
    significant = [(n, text) for n, text in enumerate(lines, 1) if text.strip() and text.lstrip()[0] != "#"]
    if not significant or not significant[0][1].startswith("openapi:"):
        first = significant[0][0] if significant else 1
        problems.append("openapi.yaml:%d: must start with `openapi:`" % first)
    if not any(text.startswith("paths:") for text in lines):
        problems.append("openapi.yaml: no top-level `paths:`")
    seen = {}
    for number, line in enumerate(lines, 1):
        match = re.match(r"\s*operationId:\s*[\"']?([^\"'\s#]*)", line)
        if not match:
            continue
        op = match.group(1)
        if not op:
            problems.append("openapi.yaml:%d: empty operationId" % number)
        elif op in seen:
            problems.append(
                "openapi.yaml:%d: duplicate operationId %r (first on line %d)" % (number, op, seen[op])
            )
        else:
            seen[op] = number
    return 1, problems


def check_typescript():
    if not (ROOT / "src").is_dir():
        return 0, ["no src/ directory"]
    files = walk("src", (".ts", ".tsx"))
    if not files:
        return 0, ["no TypeScript files (*.ts, *.tsx) under src/"]
    problems = []
    for path in files:
        bad = brackets(read(path), ("//",), "'\"`", "`")
        if bad:
            problems.append("%s: unbalanced brackets, %s" % (rel(path), bad))
    return len(files), problems


TEST_NAME = re.compile(r"^(test_.*\.py|.*_test\.py|.*\.(test|spec)\.[jt]sx?)$")


def check_tests():
    if not (ROOT / "tests").is_dir():
        return 0, ["no tests/ directory"]
    problems = []
    if not [f for f in walk("tests") if TEST_NAME.match(f.name)]:
        problems.append("tests/: no test files (test_*.py, *_test.py, *.test.ts[x], *.spec.ts[x])")
    files = walk("tests") + walk("src")
    for path in files:
        for number, line in enumerate(read(path).splitlines(), 1):
            if "FAIL_GATE" in line:
                problems.append("%s:%d: FAIL_GATE marker" % (rel(path), number))
    return len(files), problems


def check_kubernetes():
    if not (ROOT / "kubernetes").is_dir():
        return 0, ["no kubernetes/ directory"]
    files = walk("kubernetes", (".yaml", ".yml"))
    if not files:
        return 0, ["no YAML files under kubernetes/"]
    problems = []
    for path in files:
        documents = [(1, [])]  # (first line, lines) of every "---"-separated document
        for number, line in enumerate(read(path).splitlines(), 1):
            if line.startswith("---"):
                documents.append((number + 1, []))
            else:
                documents[-1][1].append(line)
        for first, body in documents:
            content = [text for text in body if text.strip() and text.lstrip()[0] != "#"]
            if not content:
                continue
            for key in ("apiVersion", "kind"):
                if not any(re.match(r"%s:\s*\S" % key, text) for text in content):
                    problems.append("%s:%d: document has no `%s:`" % (rel(path), first, key))
    return len(files), problems


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")


def check_docs():
    files = walk("", ".md")
    problems = []
    for path in files:
        fenced = False
        for number, line in enumerate(read(path).splitlines(), 1):
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
                continue
            if fenced:
                continue
            for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                target = match.group(1)
                if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith(("#", "//")):
                    continue
                target = unquote(target.split("#", 1)[0].split("?", 1)[0])
                resolved = ROOT / target.lstrip("/") if target.startswith("/") else path.parent / target
                if not resolved.exists():
                    problems.append("%s:%d: broken link to %s" % (rel(path), number, match.group(1)))
    return len(files), problems


def check_database():
    versions = ROOT / "alembic" / "versions"
    if not (ROOT / "alembic").is_dir():
        return 0, ["no alembic/ directory"]
    files = [f for f in walk("alembic/versions", ".py") if f.name != "__init__.py"]
    if not files:
        return 0, ["%s/: no migration files" % rel(versions)]
    problems, revisions = [], {}
    for path in files:
        text = read(path)
        rev = re.search(r"^revision\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(?:[\"']([^\"']+)[\"']|None)", text, re.M)
        if not rev or not down or not re.search(r"^def upgrade\(", text, re.M):
            needs = "needs `revision = ...`, `down_revision = ...` and `def upgrade()`"
            problems.append("%s: a migration %s" % (rel(path), needs))
            continue
        revisions[rev.group(1)] = (down.group(1), path)
    children = {}
    for rev, (down, path) in sorted(revisions.items()):
        if down is not None and down not in revisions:
            problems.append("%s: down_revision %r is not a known revision" % (rel(path), down))
        children.setdefault(down, []).append(rev)
    for parent, revs in sorted(children.items(), key=lambda item: str(item[0])):
        if len(revs) > 1:
            heads = ", ".join(revs)
            problems.append("alembic: %s all follow %r: multiple heads, merge them" % (heads, parent))
    return len(files), problems


CHECKS = {
    "opentofu": check_opentofu,
    "security": check_security,
    "openapi": check_openapi,
    "typescript": check_typescript,
    "tests": check_tests,
    "kubernetes": check_kubernetes,
    "docs": check_docs,
    "database": check_database,
}


def main(argv):
    if len(argv) != 2 or argv[1] not in CHECKS:
        if len(argv) == 2:
            print("check.py: unknown check %r" % argv[1], file=sys.stderr)
        print("usage: python3 ci/check.py {%s}" % "|".join(CHECKS), file=sys.stderr)
        return 2
    what = argv[1]
    checked, problems = CHECKS[what]()
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("check %s: FAILED, %d problem(s): %s" % (what, len(problems), problems[0]), file=sys.stderr)
        return 1
    print("check %s: ok (%d file(s) checked in %s)" % (what, checked, ROOT.name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''

# --------------------------------------------------------------------------------------------------
# Repository contents
# --------------------------------------------------------------------------------------------------

_ROOT_FILES: dict[str, str] = {
    ".gitignore": _d("""
        # coditect's local state: worktrees, locks, logs
        .coditect/
        __pycache__/
        """),
    "README.md": _d("""
        # CODITECT Rollout Master

        The superproject of the CODITECT Cloud Platform rollout. The cloud services live in submodules
        under `submodules/cloud/`: infrastructure (OpenTofu), backend (FastAPI) and frontend (React).

        - [Deployment guide](docs/deployment-guide.md)
        - [Changelog](CHANGELOG.md)

        Phase workstreams are described in `workstreams/`; gates run `python3 ci/check.py <check>`.
        """),
    "CHANGELOG.md": _d("""
        # Changelog

        ## 0.0.1

        - Superproject with the infra, backend and frontend submodules.
        """),
    "docs/deployment-guide.md": _d("""
        # Deployment guide

        Phase 1 runs five parallel workstreams, one terminal and one agent each, on feature branches
        merged into `phase-1-integration` and then `develop`. See the [README](../README.md).

        1. Infrastructure: OpenTofu modules for Cloud Run, Cloud SQL and the VPC.
        2. Backend: auth service against the OpenAPI contract.
        3. Frontend: auth pages against the Prism mock.
        4. Deployment: Docker, Kubernetes manifests, CI/CD.
        5. Documentation: this guide and the runbooks.
        """),
}

_INFRA_FILES: dict[str, str] = {
    "README.md": _d("""
        # coditect-cloud-infra

        GCP infrastructure of the CODITECT Cloud Platform as OpenTofu modules.
        See the [architecture](docs/architecture.md) and the [changelog](CHANGELOG.md).
        """),
    "CHANGELOG.md": _d("""
        # Changelog

        ## 0.0.1

        - Networking, database and Cloud Run modules; dev environment.
        """),
    "docs/architecture.md": _d("""
        # Infrastructure architecture

        Cloud Run (backend API) in a private VPC, Cloud SQL PostgreSQL over a private service connection,
        Redis Memorystore for sessions. Modules: [networking](../opentofu/modules/networking/main.tf),
        [database](../opentofu/modules/database/main.tf), [cloud-run](../opentofu/modules/cloud-run/main.tf).
        """),
    "opentofu/modules/networking/main.tf": _d("""
        # VPC with a private subnet; only Google health-check ranges may reach the services.
        variable "name" { type = string }
        variable "region" { type = string }

        resource "google_compute_network" "vpc" {
          name                    = "${var.name}-vpc"
          auto_create_subnetworks = false
        }

        resource "google_compute_subnetwork" "private" {
          name          = "${var.name}-private"
          network       = google_compute_network.vpc.id
          region        = var.region
          ip_cidr_range = "10.10.0.0/20"
        }

        resource "google_compute_firewall" "health_checks" {
          name          = "${var.name}-allow-health-checks"
          network       = google_compute_network.vpc.id
          source_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
          allow {
            protocol = "tcp"
            ports    = ["8080"]
          }
        }

        output "network_id" { value = google_compute_network.vpc.id }
        """),
    "opentofu/modules/database/main.tf": _d("""
        # Cloud SQL PostgreSQL reachable only on the private network.
        variable "name" { type = string }
        variable "region" { type = string }
        variable "network_id" { type = string }

        resource "google_sql_database_instance" "main" {
          name             = "${var.name}-postgres"
          database_version = "POSTGRES_15"
          region           = var.region
          settings {
            tier = "db-f1-micro"
            ip_configuration {
              ipv4_enabled    = false
              private_network = var.network_id
            }
          }
        }

        output "connection_name" { value = google_sql_database_instance.main.connection_name }
        """),
    "opentofu/modules/cloud-run/main.tf": _d("""
        # The backend API on Cloud Run.
        variable "name" { type = string }
        variable "region" { type = string }
        variable "image" { type = string }

        resource "google_cloud_run_v2_service" "api" {
          name     = "${var.name}-api"
          location = var.region
          template {
            containers {
              image = var.image
              ports {
                container_port = 8080
              }
            }
          }
        }

        output "url" { value = google_cloud_run_v2_service.api.uri }
        """),
    "opentofu/environments/dev/main.tf": _d("""
        # Development environment (target: under $500/month).
        locals {
          name   = "coditect-dev"
          region = "us-central1"
        }

        module "networking" {
          source = "../../modules/networking"
          name   = local.name
          region = local.region
        }

        module "database" {
          source     = "../../modules/database"
          name       = local.name
          region     = local.region
          network_id = module.networking.network_id
        }

        module "cloud_run" {
          source = "../../modules/cloud-run"
          name   = local.name
          region = local.region
          image  = "us-docker.pkg.dev/coditect/backend/api:dev"
        }
        """),
    "terraform/bootstrap/main.tf": _d("""
        # Legacy Terraform bootstrap: the bucket holding OpenTofu state.
        resource "google_storage_bucket" "state" {
          name                        = "coditect-tofu-state"
          location                    = "US"
          uniform_bucket_level_access = true
          versioning {
            enabled = true
          }
        }
        """),
    "kubernetes/base/kustomization.yaml": _d("""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - namespace.yaml
        """),
    "kubernetes/base/namespace.yaml": _d("""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: coditect
        """),
    ".github/workflows/infra.yml": _d("""
        name: infra
        on: [push, pull_request]
        jobs:
          validate:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - run: python3 ci/check.py opentofu
              - run: python3 ci/check.py security
        """),
}

_BACKEND_FILES: dict[str, str] = {
    "README.md": _d("""
        # coditect-cloud-backend

        The CODITECT Cloud API. The contract is [openapi.yaml](openapi.yaml); see the
        [API documentation](docs/api.md), the [contracts](contracts/README.md)
        and the [changelog](CHANGELOG.md).

        Run the tests with `python3 -m unittest discover -s tests -t .`.
        """),
    "CHANGELOG.md": _d("""
        # Changelog

        ## 0.0.1

        - Auth service skeleton: signup and login.
        """),
    "docs/api.md": _d("""
        # API

        | Method | Path | Operation |
        | --- | --- | --- |
        | POST | /api/v1/auth/signup | signup |
        | POST | /api/v1/auth/login | login |
        | GET | /api/v1/auth/me | getCurrentUser |

        Generated from [openapi.yaml](../openapi.yaml).
        """),
    "contracts/README.md": _d("""
        # Contracts

        Consumer-driven contract tests (Pact) between the frontend and this API live here.
        The provider contract is [openapi.yaml](../openapi.yaml); change it only with both streams' approval.
        """),
    "openapi.yaml": _d("""
        openapi: 3.1.0
        info:
          title: CODITECT Cloud API
          version: 0.1.0
        paths:
          /api/v1/auth/signup:
            post:
              operationId: signup
              responses:
                "201": {description: Account created}
          /api/v1/auth/login:
            post:
              operationId: login
              responses:
                "200": {description: Access token}
                "401": {description: Bad credentials}
          /api/v1/auth/me:
            get:
              operationId: getCurrentUser
              responses:
                "200": {description: The current user}
        """),
    "src/__init__.py": "",
    "src/api/__init__.py": "",
    "src/api/v1/__init__.py": "",
    "src/api/v1/auth.py": _d('''
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
        '''),
    "src/core/__init__.py": "",
    "src/core/security.py": _d('''
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
        '''),
    "src/models/__init__.py": "",
    "src/models/user.py": _d('''
        """The user account."""

        from __future__ import annotations

        from dataclasses import dataclass


        @dataclass
        class User:
            id: int
            email: str
            password_hash: str
            role: str = "member"
        '''),
    "src/services/__init__.py": "",
    "src/services/auth_service.py": _d('''
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
        '''),
    "tests/__init__.py": "",
    "tests/test_security.py": _d("""
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
        """),
    "tests/test_auth_service.py": _d("""
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
        """),
    "alembic.ini": _d("""
        [alembic]
        script_location = alembic
        sqlalchemy.url = postgresql+asyncpg://coditect:coditect@localhost:5432/coditect
        """),
    "alembic/env.py": _d('''
        """Alembic environment: migrations run online against sqlalchemy.url."""

        from alembic import context

        config = context.config
        '''),
    "alembic/versions/0001_create_users.py": _d('''
        """Create the users table."""

        import sqlalchemy as sa
        from alembic import op

        revision = "0001"
        down_revision = None


        def upgrade() -> None:
            op.create_table(
                "users",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("email", sa.String(320), nullable=False, unique=True),
                sa.Column("password_hash", sa.String(200), nullable=False),
            )


        def downgrade() -> None:
            op.drop_table("users")
        '''),
    "Dockerfile": _d("""
        FROM python:3.11-slim AS build
        WORKDIR /app
        COPY src/ src/

        FROM python:3.11-slim
        WORKDIR /app
        COPY --from=build /app /app
        EXPOSE 8080
        CMD ["python3", "-m", "src.api.v1.auth"]
        """),
    "docker-compose.yml": _d("""
        services:
          api:
            build: .
            ports: ["8080:8080"]
            depends_on: [postgres, redis]
          postgres:
            image: postgres:15
            environment:
              POSTGRES_PASSWORD: coditect
          redis:
            image: redis:7
        """),
    "kubernetes/deployment.yaml": _d("""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: coditect-api
        spec:
          replicas: 2
          selector:
            matchLabels: {app: coditect-api}
          template:
            metadata:
              labels: {app: coditect-api}
            spec:
              containers:
                - name: api
                  image: us-docker.pkg.dev/coditect/backend/api:dev
                  ports: [{containerPort: 8080}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: coditect-api
        spec:
          selector: {app: coditect-api}
          ports: [{port: 80, targetPort: 8080}]
        """),
    ".github/workflows/build.yml": _d("""
        name: build
        on: [push, pull_request]
        jobs:
          test:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - run: python3 -m unittest discover -s tests -t .
              - run: python3 ci/check.py openapi
        """),
    "scripts/deploy.sh": _d("""
        #!/bin/sh
        # Deploy the backend image to Cloud Run: scripts/deploy.sh <environment>
        set -eu
        env="${1:-dev}"
        echo "deploying coditect-api to ${env}"
        gcloud run deploy "coditect-${env}-api" --image "us-docker.pkg.dev/coditect/backend/api:${env}"
        """),
}

_FRONTEND_FILES: dict[str, str] = {
    "README.md": _d("""
        # coditect-cloud-frontend

        The CODITECT Cloud admin dashboard (React 18, TypeScript, Vite). It talks to the API at
        `VITE_API_URL` (the Prism mock during phase 1). See the [user guide](docs/user-guide.md)
        and the [changelog](CHANGELOG.md).
        """),
    "CHANGELOG.md": _d("""
        # Changelog

        ## 0.0.1

        - Vite + React skeleton with a login page.
        """),
    "docs/user-guide.md": _d("""
        # User guide

        Sign in with your email and password on the login page. Back to the [README](../README.md).
        """),
    "package.json": _d("""
        {
          "name": "coditect-cloud-frontend",
          "version": "0.1.0",
          "private": true,
          "type": "module",
          "scripts": {"dev": "vite", "build": "tsc && vite build", "test": "vitest run"},
          "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1", "react-router-dom": "^6.26.0"},
          "devDependencies": {"typescript": "^5.5.0", "vite": "^5.4.0", "vitest": "^2.0.0"}
        }
        """),
    "tsconfig.json": _d("""
        {
          "compilerOptions": {"strict": true, "jsx": "react-jsx", "target": "ES2020", "module": "ESNext"},
          "include": ["src", "tests"]
        }
        """),
    "public/index.html": _d("""
        <!doctype html>
        <html lang="en">
          <head><meta charset="utf-8" /><title>CODITECT Cloud</title></head>
          <body>
            <div id="root"></div>
            <script type="module" src="/src/main.tsx"></script>
          </body>
        </html>
        """),
    "src/api/client.ts": _d("""
        // Thin fetch wrapper around the CODITECT Cloud API (the Prism mock in development).
        const baseUrl: string = import.meta.env.VITE_API_URL ?? "http://localhost:4010";

        export async function login(email: string, password: string): Promise<string> {
          const response = await fetch(`${baseUrl}/api/v1/auth/login`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ email, password }),
          });
          if (!response.ok) {
            throw new Error(`login failed: ${response.status}`);
          }
          return (await response.json()).access_token;
        }
        """),
    "src/pages/LoginPage.tsx": _d("""
        import { useState } from "react";
        import { login } from "../api/client";

        export function LoginPage({ onLogin }: { onLogin: (token: string) => void }) {
          const [email, setEmail] = useState("");
          const [password, setPassword] = useState("");
          return (
            <form
              onSubmit={async (event) => {
                event.preventDefault();
                onLogin(await login(email, password));
              }}
            >
              <input aria-label="Email" value={email} onChange={(e) => setEmail(e.target.value)} />
              <input aria-label="Password" type="password" onChange={(e) => setPassword(e.target.value)} />
              <button type="submit">Sign in</button>
            </form>
          );
        }
        """),
    "src/App.tsx": _d("""
        import { useState } from "react";
        import { LoginPage } from "./pages/LoginPage";

        export function App() {
          const [token, setToken] = useState<string | null>(null);
          return token ? <p>Signed in</p> : <LoginPage onLogin={setToken} />;
        }
        """),
    "src/main.tsx": _d("""
        import { createRoot } from "react-dom/client";
        import { App } from "./App";

        createRoot(document.getElementById("root")!).render(<App />);
        """),
    "tests/LoginPage.test.tsx": _d("""
        import { describe, expect, it } from "vitest";
        import { LoginPage } from "../src/pages/LoginPage";

        describe("LoginPage", () => {
          it("is a component", () => {
            expect(typeof LoginPage).toBe("function");
          });
        });
        """),
}

# (repository name, path in the superproject, files)
_SUBMODULES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("coditect-cloud-infra", f"{SUBMODULE_DIR}/coditect-cloud-infra", _INFRA_FILES),
    ("coditect-cloud-backend", f"{SUBMODULE_DIR}/coditect-cloud-backend", _BACKEND_FILES),
    ("coditect-cloud-frontend", f"{SUBMODULE_DIR}/coditect-cloud-frontend", _FRONTEND_FILES),
)

_SUBMODULE_GITIGNORE = "__pycache__/\n*.pyc\nnode_modules/\ndist/\n"

_DEVELOP_CHANGELOG = "## Unreleased\n\n- Start of Phase 1 development.\n\n"


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def _git_env() -> dict[str, str]:
    """A fixed identity and date, and no global or system config: the same commits on every machine."""
    return {
        "GIT_AUTHOR_NAME": IDENTITY_NAME,
        "GIT_AUTHOR_EMAIL": IDENTITY_EMAIL,
        "GIT_AUTHOR_DATE": _DATE,
        "GIT_COMMITTER_NAME": IDENTITY_NAME,
        "GIT_COMMITTER_EMAIL": IDENTITY_EMAIL,
        "GIT_COMMITTER_DATE": _DATE,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }


def _git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> proc.Completed:
    return proc.run(["git", *args], cwd=cwd, env=env if env is not None else _git_env())


def _write_tree(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        path.chmod(0o755 if rel in _EXECUTABLE else 0o644)


def _open_changelog(repo: Path) -> None:
    """Add the "Unreleased" section that makes ``develop`` one commit ahead of ``main``."""
    path = repo / "CHANGELOG.md"
    title, _, rest = path.read_text(encoding="utf-8").partition("\n\n")
    path.write_text(f"{title}\n\n{_DEVELOP_CHANGELOG}{rest}", encoding="utf-8", newline="\n")


def _is_sandbox(target: Path) -> bool:
    try:
        data = json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == MARKER_KIND


def _prepare_target(target: Path) -> bool:
    """Make ``target`` an empty directory holding only the marker; True when a sandbox was replaced."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RefusedError(
            f"{target} exists and is not a directory (or is a symbolic link); "
            "refusing to build a sandbox there",
            hint="choose a new or empty directory",
        )
    rebuilt = False
    if target.is_dir():
        if _is_sandbox(target):
            shutil.rmtree(target)
            rebuilt = True
        elif any(target.iterdir()):
            raise RefusedError(
                f"{target} is not empty and not a coditect sandbox (no {MARKER} marker); "
                "refusing to touch it",
                hint="choose a new or empty directory, or a directory holding a previous sandbox",
            )
    target.mkdir(parents=True, exist_ok=True)
    marker = {"kind": MARKER_KIND, "version": MARKER_VERSION}
    (target / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return rebuilt


@dataclass(frozen=True)
class _Published:
    main: str
    develop: str


def _publish(
    origin: Path,
    work: Path,
    files: Mapping[str, str],
    message: str,
    develop_message: str,
    gitlinks: Mapping[str, _Published] | None = None,
) -> _Published:
    """Create the bare ``origin`` with ``main`` = ``files`` and ``develop`` = main + a CHANGELOG section.

    The commits are written straight into the bare repository from the staging tree ``work`` (an index
    file beside it, no clone, no push). ``gitlinks`` maps submodule paths to their commits: ``main``
    records each submodule's main, ``develop`` its develop.
    """
    _git("init", "-q", "--bare", "-b", "main", str(origin))
    _write_tree(work, files)
    env = {**_git_env(), "GIT_DIR": str(origin), "GIT_WORK_TREE": str(work)}
    env["GIT_INDEX_FILE"] = str(work.parent / f"{work.name}.index")
    links = gitlinks or {}

    def snapshot(kind: str, extra: list[str], msg: str, parents: list[str], date: str) -> str:
        cacheinfo: list[str] = []
        for path, published in links.items():
            cacheinfo += ["--cacheinfo", f"160000,{getattr(published, kind)},{path}"]
        if cacheinfo or extra:
            _git("update-index", "--add", *cacheinfo, *extra, cwd=work, env=env)
        tree = _git("write-tree", cwd=work, env=env).stdout.strip()
        commit_env = {**env, "GIT_AUTHOR_DATE": _DATE, "GIT_COMMITTER_DATE": date}
        return _git("commit-tree", tree, *parents, "-m", msg, cwd=work, env=commit_env).stdout.strip()

    _git("add", "-A", cwd=work, env=env)
    main = snapshot("main", [], message, [], _DATE)
    _open_changelog(work)
    develop = snapshot("develop", ["CHANGELOG.md"], develop_message, ["-p", main], _DEVELOP_DATE)
    refs = f"update refs/heads/main {main}\nupdate refs/heads/develop {develop}\n"
    # Without GIT_WORK_TREE git sees the bare repository as it is and writes no reflogs.
    proc.run(["git", "update-ref", "--stdin"], env={**_git_env(), "GIT_DIR": str(origin)}, input=refs)
    return _Published(main, develop)


def _gitmodules(origins: Mapping[str, Path]) -> str:
    """``.gitmodules`` exactly as ``git submodule add <origin> <path>`` writes it."""
    lines: list[str] = []
    for name, path, _files in _SUBMODULES:
        lines += [f'[submodule "{path}"]', f"\tpath = {path}", f"\turl = {origins[name]}"]
    return "\n".join(lines) + "\n"


def build_sandbox(target: Path, manifest_source: Path) -> Sandbox:
    """Build the local CODITECT sandbox in ``target`` and return where its parts are.

    ``target/origins/`` receives the bare origins of the superproject and its three cloud submodules
    (branches ``main`` and ``develop``), ``target/coditect-rollout-master`` a working clone with its
    submodules initialised, everything checked out on ``develop``, and ``manifest_source`` (plus a
    ``schema.json`` beside it) copied into ``workstreams/``. A previous sandbox in ``target`` is replaced
    (``rebuilt`` is then True); any other non-empty ``target`` raises :class:`RefusedError`. A missing
    manifest raises :class:`ManifestError` before anything is touched.
    """
    target = Path(target).expanduser().absolute()
    manifest_source = Path(manifest_source)
    if not manifest_source.is_file():
        raise ManifestError(f"manifest {manifest_source} does not exist or is not a file")
    rebuilt = _prepare_target(target)

    staging = target / ".build"
    origins_dir = target / "origins"
    origins: dict[str, Path] = {SUPERPROJECT: origins_dir / f"{SUPERPROJECT}.git"}
    gitlinks: dict[str, _Published] = {}
    changelog_message = "docs: open the Phase 1 changelog"
    for name, path, files in _SUBMODULES:
        origins[name] = origins_dir / f"{name}.git"
        content = {**files, ".gitignore": _SUBMODULE_GITIGNORE, "ci/check.py": CHECK_PY}
        gitlinks[path] = _publish(
            origins[name], staging / name, content, f"chore: initial {name}", changelog_message
        )

    # The superproject: its own files, .gitmodules and the submodules' commits (main on main, develop on
    # develop).
    root_files = dict(_ROOT_FILES)
    root_files[".gitmodules"] = _gitmodules(origins)
    root_files["ci/check.py"] = CHECK_PY
    root_files[f"workstreams/{manifest_source.name}"] = manifest_source.read_text(encoding="utf-8")
    schema = manifest_source.parent / "schema.json"
    if schema.is_file():
        root_files["workstreams/schema.json"] = schema.read_text(encoding="utf-8")
    _publish(
        origins[SUPERPROJECT],
        staging / SUPERPROJECT,
        root_files,
        "chore: superproject with the cloud submodules",
        "chore: point the submodules at develop; open the Phase 1 changelog",
        gitlinks,
    )

    # The user's working clone, everything on develop, with a local identity so commits work anywhere.
    clone = target / SUPERPROJECT
    identity = ("-c", f"user.name={IDENTITY_NAME}", "-c", f"user.email={IDENTITY_EMAIL}")
    _git(
        *_ALLOW_FILE,
        "clone",
        "-q",
        "--branch",
        "develop",
        "--recurse-submodules",
        "--jobs",
        str(len(_SUBMODULES)),
        *_ALLOW_FILE,
        *identity,
        str(origins[SUPERPROJECT]),
        str(clone),
    )
    for _name, path, _files in _SUBMODULES:
        sub = clone / path
        _git("checkout", "-q", "develop", cwd=sub)
        _git("config", "user.name", IDENTITY_NAME, cwd=sub)
        _git("config", "user.email", IDENTITY_EMAIL, cwd=sub)
        # Lets `git submodule update --remote` and recursive fetches reach the file:// origins; cloning a
        # submodule afresh (after a deinit) still needs `-c protocol.file.allow=always` on the command.
        _git("config", "protocol.file.allow", "always", cwd=sub)
    shutil.rmtree(staging)
    return Sandbox(root=clone, origins=origins, rebuilt=rebuilt)
