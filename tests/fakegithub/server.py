"""A fake GitHub REST (and GraphQL) server on 127.0.0.1, for PyGithub to talk to over real HTTP.

A small WSGI application (werkzeug routing) served by werkzeug's threaded server in a background thread. It
keeps repositories, pull requests, reviews, commit statuses, check runs, issue comments, releases and refs in
memory, answers with payloads shaped like GitHub's (PyGithub parses them lazily, so list items carry every field
a list item has on GitHub, and only the single-PR GET carries ``merged``/``mergeable``), paginates with ``Link``
headers, sends the ``x-ratelimit-*`` headers, checks the token, and records every request so tests and the
benchmark can count them.

It behaves as GitHub does where coditect met the difference: an account cannot approve its own pull request
(422), a deleted reviewer's ``user`` is null, a PR's ``mergeable`` is null until computed, statuses and check runs
are paginated (GraphQL contexts too, 100 per page), GraphQL errors come with HTTP 200 (``RATE_LIMITED``, and
``NOT_FOUND`` for one PR of a batch), branch protection and rulesets are enforced on merges (405s: required
checks, reviews, merge methods, linear history, "Base branch was modified", "Changes must be made through the
merge queue"), a merge queue merges enqueued PRs after a few polls, teams have members, a release on an
existing tag ignores ``target_commitish``, ``GET /user`` answers 403 to app and Actions tokens, and GETs carry
ETags and answer ``If-None-Match`` with 304.

Faults are injected per method and path pattern: an error status without side effects, an error status *after*
the request was carried out (the "502 after create" case), or a sleep longer than the client's timeout.
Branch heads come from a bare git repository (``git_dir``) when one is given, else from a dict.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"
DEFAULT_TOKEN = "ghp_FakeToken0123456789abcdefghijklmnopqrs"
DOCS = "https://docs.github.com/rest"

_ids = itertools.count(1000)
_SETTING = {"squash": "allow_squash_merge", "merge": "allow_merge_commit", "rebase": "allow_rebase_merge"}
_METHOD_NAME = {"squash": "Squash merges", "merge": "Merge commits", "rebase": "Rebase merges"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1("\0".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: str
    status: int
    seconds: float
    at: float = 0.0  # time.monotonic() when the request arrived


@dataclass
class Fault:
    """An injected failure: ``status`` (with ``headers``/``body``), ``after`` the request is carried out, or a
    ``sleep`` before answering; applies ``times`` times to requests whose method and path match."""

    method: str
    pattern: re.Pattern[str]
    status: int | None = 502
    after: bool = False
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    sleep: float = 0.0


@dataclass
class FakeRepo:
    """One repository's state."""

    owner: str
    name: str
    id: int
    git_dir: Path | None = None
    branches: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    review_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    releases: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)
    files: dict[int, list[str]] = field(default_factory=dict)
    tag_objects: dict[str, dict[str, str]] = field(default_factory=dict)  # annotated tag sha -> its object
    mergeable: dict[int, bool | None] = field(default_factory=dict)
    unknown_mergeable: dict[int, int] = field(default_factory=dict)  # reads answering null/UNKNOWN first
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch -> classic protection
    rulesets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # branch -> active rules
    protection_status: int | None = None  # e.g. 403: the token cannot read protection (needs admin)
    settings: dict[str, bool] = field(
        default_factory=lambda: {
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
        }
    )
    base_modified: dict[int, int] = field(
        default_factory=dict
    )  # merges answering 405 "Base branch was modified"
    queue: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> merge queue entry
    queue_fail: set[int] = field(default_factory=set)  # PRs whose merge group fails
    behind: set[int] = field(default_factory=set)  # PRs GitHub reports BEHIND their base
    # git_dir mode: the branch heads read once per request, diffs and merges by (base, head) commit.
    _heads: dict[str, str] | None = None
    _diffs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _merges: dict[tuple[str, str], bool] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.git_dir is not None
        return subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], capture_output=True, text=True, check=False
        )

    def forget_heads(self) -> None:
        """Read the branch heads afresh at the next look-up (pushes happen behind the server's back)."""
        self._heads = None

    def sha_of(self, branch: str) -> str | None:
        """The commit ``branch`` points at, or None."""
        if self.git_dir is not None:
            if self._heads is None:
                out = self._git(
                    "for-each-ref", "--format=%(objectname) %(refname:strip=2)", "refs/heads"
                ).stdout
                self._heads = {}
                for line in out.splitlines():
                    sha, _, name = line.partition(" ")
                    self._heads[name] = sha
            return self._heads.get(branch)
        return self.branches.get(branch)

    def changed_files(self, number: int) -> list[str]:
        """The paths PR ``number`` changes (seeded, or ``git diff base...head``)."""
        pull = self.pulls[number]
        if number in self.files:
            return self.files[number]
        if self.git_dir is not None:
            base = self.sha_of(pull["base"])
            head = pull["head_sha"] if pull["merged"] else self.sha_of(pull["head"])
            if base is None or head is None:
                return []
            if (base, head) not in self._diffs:
                done = self._git("diff", "--name-only", f"{base}...{head}")
                self._diffs[(base, head)] = [p for p in done.stdout.splitlines() if p]
            return self._diffs[(base, head)]
        return []

    def is_mergeable(self, number: int) -> bool | None:
        """Whether PR ``number`` merges cleanly (seeded, or ``git merge-tree``; True without git)."""
        if number in self.mergeable:
            return self.mergeable[number]
        pull = self.pulls[number]
        if self.git_dir is not None:
            base, head = self.sha_of(pull["base"]), self.sha_of(pull["head"])
            if base is None or head is None:
                return None
            if (base, head) not in self._merges:
                self._merges[(base, head)] = (
                    self._git("merge-tree", "--write-tree", base, head).returncode == 0
                )
            return self._merges[(base, head)]
        return True


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as GitHub does

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeGitHub:
    """The fake server. Use as a context manager (or ``start``/``stop``); ``base_url`` is the API base."""

    def __init__(
        self, token: str = DEFAULT_TOKEN, *, login: str = "coditect-bot", real_merges: bool = False
    ) -> None:
        self.token = token
        self.login = login
        self.real_merges = (
            real_merges  # with a git_dir: merges are real squash commits on the bare base branch
        )
        self.tamper: set[int] = set()  # real merges of these PRs lose their changes (a forge merging wrongly)
        self.tokens: dict[str, tuple[str, str]] = {token: (login, "user")}  # token -> (login, kind)
        self.teams: dict[str, list[str]] = {}  # "org/team" -> member logins
        self.queue_polls = 2  # queue reads before an enqueued PR's merge group finishes
        self.graphql_faults: list[dict[str, Any]] = []  # errors answered with HTTP 200
        self._actor = login
        self._kind = "user"
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.rate_limit = 5000
        self.rate_used = 0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        p = API_PREFIX
        repo = f"{p}/repos/<owner>/<name>"
        self._routes: dict[str, Callable[..., Response]] = {}
        rules = [
            ("GET", f"{p}/user", self._user),
            ("GET", f"{p}/rate_limit", self._rate),
            ("GET", repo, self._repo_get),
            ("GET", f"{repo}/branches/<path:branch>/protection", self._protection_get),
            ("GET", f"{repo}/rules/branches/<path:branch>", self._rules_get),
            ("GET", f"{p}/orgs/<org>/teams/<team>/members", self._team_members),
            ("GET", f"{repo}/git/tags/<sha>", self._tag_object_get),
            ("POST", f"{repo}/git/tags", self._tag_object_create),
            ("GET", f"{repo}/pulls", self._pulls_list),
            ("POST", f"{repo}/pulls", self._pulls_create),
            ("GET", f"{repo}/pulls/<int:number>", self._pull_get),
            ("GET", f"{repo}/pulls/<int:number>/reviews", self._reviews_list),
            ("POST", f"{repo}/pulls/<int:number>/reviews", self._reviews_create),
            ("GET", f"{repo}/pulls/<int:number>/files", self._files_list),
            ("PUT", f"{repo}/pulls/<int:number>/merge", self._merge),
            ("GET", f"{repo}/commits/<path:ref>/status", self._combined_status),
            ("GET", f"{repo}/commits/<path:ref>/check-runs", self._check_runs),
            ("GET", f"{repo}/check-runs/<int:run_id>", self._check_run_get),
            ("GET", f"{repo}/check-runs/<int:run_id>/annotations", self._annotations),
            ("GET", f"{repo}/pulls/<int:number>/comments", self._review_comments_list),
            ("POST", f"{repo}/statuses/<sha>", self._status_create),
            ("GET", f"{repo}/issues/<int:number>/comments", self._comments_list),
            ("POST", f"{repo}/issues/<int:number>/comments", self._comments_create),
            ("GET", f"{repo}/releases/tags/<path:tag>", self._release_get),
            ("GET", f"{repo}/releases", self._releases_list),
            ("POST", f"{repo}/releases", self._release_create),
            ("GET", f"{repo}/git/ref/<path:ref>", self._ref_get),
            ("POST", f"{repo}/git/refs", self._ref_create),
            ("POST", GRAPHQL_PATH, self._graphql),
        ]
        werkzeug_rules = []
        for method, path, handler in rules:
            endpoint = f"{method} {path}"
            self._routes[endpoint] = handler
            werkzeug_rules.append(Rule(path, endpoint=endpoint, methods=[method]))
        self._map = Map(werkzeug_rules, strict_slashes=False)

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeGitHub:
        """Serve on an ephemeral port of 127.0.0.1 from a background thread."""
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._server.handle_error = lambda request, address: (
            None
        )  # a client that timed out: nothing to report
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (sleeping faults wake up and finish)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_port)

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the "web" host: html_url, remote URLs)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The REST API base, as a GitHub Enterprise one: ``http://127.0.0.1:PORT/api/v3``."""
        return f"{self.root_url}{API_PREFIX}"

    # ------------------------------------------------------------------------------------------ set-up

    def add_repo(
        self, full_name: str, *, git_dir: Path | None = None, branches: dict[str, str] | None = None
    ) -> FakeRepo:
        """Add repository ``owner/name``; branch heads from the bare repository ``git_dir`` or ``branches``."""
        owner, name = full_name.split("/")
        repo = FakeRepo(owner, name, next(_ids), git_dir, dict(branches or {}))
        self.repos[full_name] = repo
        return repo

    def add_pull(
        self,
        full_name: str,
        head: str,
        base: str,
        title: str = "",
        *,
        state: str = "open",
        draft: bool = False,
        author: str | None = None,
    ) -> dict[str, Any]:
        """Seed a pull request directly (no request recorded), opened by ``author`` (default: the token's)."""
        with self._lock:
            repo = self.repos[full_name]
            if repo.git_dir is None and head not in repo.branches:
                repo.branches[head] = _fake_sha(full_name, head)
            if repo.git_dir is None and base not in repo.branches:
                repo.branches[base] = _fake_sha(full_name, base)
            pull = self._new_pull(repo, head, base, title or f"PR of {head}", "", state=state)
            pull["draft"] = draft
            if author is not None:
                pull["user"] = author
            return pull

    def add_review(self, full_name: str, number: int, login: str | None, state: str, body: str = "") -> None:
        """Seed a review by ``login`` (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED); None: a deleted account
        (GitHub then sends ``user: null``)."""
        with self._lock:
            repo = self.repos[full_name]
            self._new_review(repo, number, login, state, body)

    def add_token(self, token: str, login: str, kind: str = "user") -> None:
        """Accept ``token`` as ``login``'s. ``kind``: ``user`` (a personal or fine-grained token), ``app`` (an app
        installation: ``GET /user`` answers 403, GraphQL ``viewer`` works) or ``actions`` (Actions'
        ``GITHUB_TOKEN``: both refuse)."""
        with self._lock:
            self.tokens[token] = (login, kind)

    def add_team(self, team: str, members: list[str]) -> None:
        """Team ``org/team`` with ``members`` (logins)."""
        with self._lock:
            self.teams[team.lstrip("@").lower()] = list(members)

    def protect(
        self,
        full_name: str,
        branch: str,
        *,
        checks: tuple[str, ...] = (),
        strict: bool = False,
        approvals: int = 0,
        code_owners: bool = False,
        linear: bool = False,
    ) -> None:
        """Classic branch protection of ``branch`` (as ``GET …/protection`` returns it)."""
        with self._lock:
            api = f"{self.base_url}/repos/{full_name}/branches/{branch}/protection"
            rules: dict[str, Any] = {"url": api}
            if checks or strict:
                rules["required_status_checks"] = {
                    "url": f"{api}/required_status_checks",
                    "strict": strict,
                    "contexts": list(checks),
                    "checks": [{"context": c, "app_id": None} for c in checks],
                }
            if approvals or code_owners:
                rules["required_pull_request_reviews"] = {
                    "url": f"{api}/required_pull_request_reviews",
                    "dismiss_stale_reviews": False,
                    "require_code_owner_reviews": code_owners,
                    "required_approving_review_count": approvals,
                    "require_last_push_approval": False,
                }
            rules["required_linear_history"] = {"enabled": linear}
            rules["enforce_admins"] = {"url": f"{api}/enforce_admins", "enabled": False}
            self.repos[full_name].protection[branch] = rules

    def add_rule(self, full_name: str, branch: str, kind: str, **parameters: Any) -> None:
        """An active ruleset rule on ``branch`` (``GET …/rules/branches/b``): ``merge_queue``, ``pull_request``,
        ``required_status_checks``, ``required_linear_history``…"""
        with self._lock:
            rule: dict[str, Any] = {
                "type": kind,
                "ruleset_source_type": "Repository",
                "ruleset_source": full_name,
                "ruleset_id": next(_ids),
            }
            if parameters:
                rule["parameters"] = parameters
            self.repos[full_name].rulesets.setdefault(branch, []).append(rule)

    def graphql_error(
        self, error_type: str, message: str, *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``times`` GraphQL requests with HTTP 200 and ``{"errors": [{"type": error_type}]}``
        (what GitHub does for ``RATE_LIMITED``)."""
        with self._lock:
            self.graphql_faults.append(
                {"type": error_type, "message": message, "times": times, "headers": dict(headers or {})}
            )

    def add_check_run(
        self,
        full_name: str,
        sha: str,
        name: str,
        status: str,
        conclusion: str | None,
        *,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        annotations: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> dict[str, Any]:
        """Seed a check run (status queued/in_progress/completed; conclusion success/failure/…) with its
        ``output`` (title, summary, text) and annotations (``path``, ``start_line``, ``annotation_level``,
        ``title``, ``message``), as a CI app reports them."""
        with self._lock:
            run = {
                "id": next(_ids),
                "name": name,
                "status": status,
                "conclusion": conclusion,
                "completed_at": _now() if status == "completed" else None,
                "html_url": None,
                "details_url": details_url,
                "title": title,
                "summary": summary,
                "text": text,
                "annotations": list(annotations or []),
            }
            if title or summary or details_url:
                run["html_url"] = f"{self.root_url}/{full_name}/runs/{run['id']}"
            self.repos[full_name].check_runs.setdefault(sha, []).append(run)
            return run

    def add_status(
        self,
        full_name: str,
        sha: str,
        context: str,
        state: str,
        description: str | None = None,
        target_url: str | None = None,
        creator: str | None = None,
    ) -> None:
        """Seed a commit status (what a CI service posts: ``POST /statuses/{sha}``)."""
        with self._lock:
            self.repos[full_name].statuses.setdefault(sha, []).append(
                {
                    "id": next(_ids),
                    "creator": creator or "ci-bot",
                    "sha": sha,
                    "state": state,
                    "context": context,
                    "description": description,
                    "target_url": target_url,
                    "created_at": _now(),
                }
            )

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        login: str,
        body: str,
        path: str,
        line: int | None,
        *,
        commit: str | None = None,
    ) -> dict[str, Any]:
        """Seed a review comment on ``path``:``line`` of PR ``number``'s diff (on its head unless ``commit``)."""
        with self._lock:
            repo = self.repos[full_name]
            pull = repo.pulls[number]
            comment = {
                "id": next(_ids),
                "review_id": next(_ids),
                "login": login,
                "body": body,
                "path": path,
                "line": line,
                "commit_id": commit or repo.sha_of(pull["head"]) or pull["head_sha"],
                "created_at": _now(),
            }
            repo.review_comments.setdefault(number, []).append(comment)
            return comment

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 502,
        after: bool = False,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        sleep: float = 0.0,
    ) -> Fault:
        """Inject a fault on requests whose method is ``method`` and whose path (below the API prefix, e.g.
        ``/repos/o/r/pulls``) matches the regular expression ``path`` entirely."""
        fault = Fault(
            method.upper(), re.compile(path), status, after, times, dict(headers or {}), body, sleep
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def primary_rate_limit(self, method: str, path: str, *, reset_in: int = 1800, times: int = 1) -> Fault:
        """GitHub's primary limit: 403, ``x-ratelimit-remaining: 0`` and the reset epoch."""
        return self.fail(
            method,
            path,
            status=403,
            times=times,
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(int(time.time()) + reset_in),
                "x-ratelimit-resource": "core",
            },
            body={
                "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
                "please include the request ID.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
            },
        )

    def secondary_rate_limit(
        self, method: str, path: str, *, retry_after: int | None = 60, times: int = 1
    ) -> Fault:
        """GitHub's secondary limit: 403 with ``retry-after`` (None: without it, as GitHub sometimes answers; the
        primary limit's headers then still show requests remaining)."""
        headers = (
            {"retry-after": str(retry_after)}
            if retry_after is not None
            else {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4321", "x-ratelimit-used": "679"}
        )
        return self.fail(
            method,
            path,
            status=403,
            times=times,
            headers=headers,
            body={
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                "again. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            },
        )

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received (optionally only ``method``, and paths matching the regex ``path``)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.fullmatch(path, r.path.removeprefix(API_PREFIX)))
            )

    def reset_log(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self.requests.clear()

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        """A copy of every PR of ``full_name`` (internal form)."""
        with self._lock:
            return [dict(p) for p in self.repos[full_name].pulls.values()]

    # ------------------------------------------------------------------------------------------ WSGI

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        arrived = time.monotonic()
        started = time.perf_counter()
        response = self._dispatch(request)
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    response.status_code,
                    time.perf_counter() - started,
                    arrived,
                )
            )
        return response(environ, start_response)

    def _fault_for(self, request: Request) -> Fault | None:
        path = request.path.removeprefix(API_PREFIX) if request.path.startswith(API_PREFIX) else request.path
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == request.method and fault.pattern.fullmatch(path):
                    fault.times -= 1
                    return fault
        return None

    def _dispatch(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        who = self.tokens.get(given) if scheme in ("token", "Bearer") else None
        if who is None:
            return self._json({"message": "Bad credentials", "documentation_url": DOCS}, 401)
        with self._lock:
            for repo in self.repos.values():
                repo.forget_heads()
        fault = self._fault_for(request)
        if fault is not None and fault.sleep:
            self._stopping.wait(fault.sleep)
        if fault is not None and fault.status is not None and not fault.after:
            return self._fault_response(fault)
        try:
            endpoint, args = self._map.bind_to_environ(request.environ).match()
            with self._lock:
                self._actor, self._kind = who
                response = self._routes[endpoint](request, **args)
        except NotFound:
            response = self._json({"message": "Not Found", "documentation_url": DOCS}, 404)
        except HTTPException as exc:
            response = self._json({"message": exc.description or "error"}, exc.code or 500)
        if fault is not None and fault.status is not None and fault.after:
            return self._fault_response(fault)
        if request.method == "GET" and response.status_code == 200:
            etag = 'W/"' + hashlib.sha1(response.get_data()).hexdigest() + '"'
            response.headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                self.rate_used -= 1  # GitHub: a 304 to a conditional request costs no rate limit
                unchanged = Response(status=304)
                for key in ("ETag", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
                    if key in response.headers:
                        unchanged.headers[key] = response.headers[key]
                return unchanged
        return response

    def _fault_response(self, fault: Fault) -> Response:
        status = fault.status or 502
        if fault.body is None and status >= 500:
            html = (
                f"<html><head><title>{status}</title></head><body><h1>{status} Bad Gateway</h1></body></html>"
            )
            response = Response(html, status=status, content_type="text/html")
        else:
            response = self._json(fault.body if fault.body is not None else {"message": "error"}, status)
        for key, value in fault.headers.items():
            response.headers[key] = value
        return response

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        self.rate_used += 1
        response = Response(json.dumps(data), status=status, content_type="application/json; charset=utf-8")
        response.headers["x-ratelimit-limit"] = str(self.rate_limit)
        response.headers["x-ratelimit-remaining"] = str(max(0, self.rate_limit - self.rate_used))
        response.headers["x-ratelimit-used"] = str(self.rate_used)
        response.headers["x-ratelimit-reset"] = str(int(time.time()) + 3600)
        response.headers["x-ratelimit-resource"] = "core"
        response.headers["x-github-api-version-selected"] = "2022-11-28"
        response.headers["x-github-request-id"] = f"FAKE:{next(_ids):X}"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    def _paginate(self, request: Request, items: list[Any]) -> Response:
        per_page = min(100, max(1, int(request.args.get("per_page", "30"))))
        page = max(1, int(request.args.get("page", "1")))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        args = request.args.to_dict()

        def url(n: int) -> str:
            return f"{self.root_url}{request.path}?{urlencode({**args, 'page': n, 'per_page': per_page})}"

        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
        return self._json(chunk, headers={"Link": ", ".join(links)} if links else None)

    # ------------------------------------------------------------------------------------------ payloads

    def _user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": int(hashlib.sha1(login.encode()).hexdigest()[:6], 16),
            "node_id": f"U_{login}",
            "avatar_url": f"{self.root_url}/avatars/{login}",
            "gravatar_id": "",
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"{self.root_url}/{login}",
            "type": "User",
            "site_admin": False,
        }

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": True,
            "owner": self._user_json(repo.owner),
            "html_url": f"{self.root_url}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": f"{self.base_url}/repos/{repo.full_name}",
            "default_branch": "main",
            "visibility": "private",
            **repo.settings,
        }

    def _repo(self, owner: str, name: str) -> FakeRepo:
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            raise NotFound()
        return repo

    def _new_pull(
        self, repo: FakeRepo, head: str, base: str, title: str, body: str, *, state: str = "open"
    ) -> dict[str, Any]:
        number = repo.next_number
        repo.next_number += 1
        now = _now()
        pull = {
            "id": next(_ids),
            "number": number,
            "head": head,
            "base": base,
            "title": title,
            "body": body,
            "state": "closed" if state in ("closed", "merged") else "open",
            "merged": state == "merged",
            "merged_at": now if state == "merged" else None,
            "closed_at": now if state in ("closed", "merged") else None,
            "merge_commit_sha": _fake_sha(repo.full_name, number, "merge") if state == "merged" else None,
            "head_sha": repo.sha_of(head),
            "created_at": now,
            "updated_at": now,
            "user": self._actor,
            "draft": False,
        }
        repo.pulls[number] = pull
        return pull

    def _pull_json(self, repo: FakeRepo, pull: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
        n = pull["number"]
        api = f"{self.base_url}/repos/{repo.full_name}"
        html = f"{self.root_url}/{repo.full_name}/pull/{n}"
        head_sha = (
            pull["head_sha"] if pull["state"] == "closed" else (repo.sha_of(pull["head"]) or pull["head_sha"])
        )
        owner = self._user_json(repo.owner)

        def part(ref: str, sha: str | None) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": owner,
                "repo": self._repo_json(repo),
            }

        data: dict[str, Any] = {
            "url": f"{api}/pulls/{n}",
            "id": pull["id"],
            "node_id": f"PR_{pull['id']}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}",
            "number": n,
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "user": self._user_json(pull["user"]),
            "body": pull["body"] or None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull["created_at"],
            "updated_at": pull["updated_at"],
            "closed_at": pull["closed_at"],
            "merged_at": pull["merged_at"],
            "merge_commit_sha": pull["merge_commit_sha"],
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": part(pull["head"], head_sha),
            "base": part(pull["base"], repo.sha_of(pull["base"])),
            "_links": {
                "self": {"href": f"{api}/pulls/{n}"},
                "html": {"href": html},
                "issue": {"href": f"{api}/issues/{n}"},
                "comments": {"href": f"{api}/issues/{n}/comments"},
                "review_comments": {"href": f"{api}/pulls/{n}/comments"},
                "commits": {"href": f"{api}/pulls/{n}/commits"},
                "statuses": {"href": f"{api}/statuses/{head_sha}"},
            },
            "author_association": "OWNER",
            "auto_merge": None,
            "draft": bool(pull.get("draft")),
        }
        if full:
            mergeable = self._mergeable_now(repo, pull)
            files = repo.changed_files(n)
            data.update(
                merged=pull["merged"],
                mergeable=mergeable,
                rebaseable=mergeable,
                mergeable_state={True: "clean", False: "dirty", None: "unknown"}[mergeable],
                merged_by=self._user_json(pull.get("merged_by") or self.login) if pull["merged"] else None,
                comments=len(repo.comments.get(n, [])),
                review_comments=0,
                maintainer_can_modify=False,
                commits=1,
                additions=len(files),
                deletions=0,
                changed_files=len(files),
            )
        return data

    def _mergeable_now(self, repo: FakeRepo, pull: dict[str, Any]) -> bool | None:
        """``mergeable`` as GitHub answers it: null for merged/closed PRs, and while not computed yet."""
        n = pull["number"]
        if pull["state"] != "open":
            return None
        if repo.unknown_mergeable.get(n, 0) > 0:
            repo.unknown_mergeable[n] -= 1
            return None
        return repo.is_mergeable(n)

    def _new_review(
        self, repo: FakeRepo, number: int, login: str | None, state: str, body: str, commit: str | None = None
    ) -> dict[str, Any]:
        pull = repo.pulls[number]
        review = {
            "id": next(_ids),
            "login": login,
            "state": state,
            "body": body,
            "submitted_at": _now(),
            "commit_id": commit or repo.sha_of(pull["head"]) or pull["head_sha"],
        }
        repo.reviews.setdefault(number, []).append(review)
        return review

    def _review_json(self, repo: FakeRepo, number: int, review: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/pulls/{number}"
        return {
            "id": review["id"],
            "node_id": f"PRR_{review['id']}",
            "user": self._user_json(review["login"]) if review["login"] else None,
            "body": review["body"],
            "state": review["state"],
            "html_url": f"{self.root_url}/{repo.full_name}/pull/{number}#pullrequestreview-{review['id']}",
            "pull_request_url": api,
            "author_association": "MEMBER",
            "_links": {
                "html": {"href": f"{self.root_url}/{repo.full_name}/pull/{number}"},
                "pull_request": {"href": api},
            },
            "submitted_at": review["submitted_at"],
            "commit_id": review["commit_id"],
        }

    def _status_json(self, repo: FakeRepo, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/repos/{repo.full_name}/statuses/{status['sha']}",
            "avatar_url": None,
            "id": status["id"],
            "node_id": f"SC_{status['id']}",
            "state": status["state"],
            "description": status["description"],
            "target_url": status["target_url"],
            "context": status["context"],
            "created_at": status["created_at"],
            "updated_at": status["created_at"],
            "creator": self._user_json(status.get("creator") or self.login),
        }

    def _latest_statuses(self, repo: FakeRepo, sha: str) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for status in repo.statuses.get(sha, []):
            latest[status["context"]] = status
        return list(latest.values())

    # ------------------------------------------------------------------------------------------ REST endpoints

    def _user(self, request: Request) -> Response:
        if self._kind != "user":  # app installation tokens and Actions' GITHUB_TOKEN
            return self._json(
                {"message": "Resource not accessible by integration", "documentation_url": DOCS}, 403
            )
        return self._json({**self._user_json(self._actor), "name": "Coditect Bot", "email": None})

    def _rate(self, request: Request) -> Response:
        core = {
            "limit": self.rate_limit,
            "remaining": self.rate_limit - self.rate_used,
            "reset": int(time.time()) + 3600,
            "used": self.rate_used,
        }
        return self._json({"resources": {"core": core, "graphql": core}, "rate": core})

    def _repo_get(self, request: Request, owner: str, name: str) -> Response:
        return self._json(self._repo_json(self._repo(owner, name)))

    def _protection_get(self, request: Request, owner: str, name: str, branch: str) -> Response:
        repo = self._repo(owner, name)
        if repo.protection_status == 403:
            return self._json(
                {"message": "Resource not accessible by integration", "documentation_url": DOCS}, 403
            )
        if branch not in repo.protection:
            return self._json({"message": "Branch not protected", "documentation_url": DOCS}, 404)
        return self._json(repo.protection[branch])

    def _rules_get(self, request: Request, owner: str, name: str, branch: str) -> Response:
        repo = self._repo(owner, name)
        return self._paginate(request, list(repo.rulesets.get(branch, [])))

    def _team_members(self, request: Request, org: str, team: str) -> Response:
        members = self.teams.get(f"{org}/{team}".lower())
        if members is None:
            raise NotFound()
        return self._paginate(request, [self._user_json(m) for m in members])

    def _pulls_list(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        state = request.args.get("state", "open")
        base = request.args.get("base")
        head = request.args.get("head")
        items = []
        for pull in sorted(repo.pulls.values(), key=lambda p: -p["number"]):  # GitHub: newest first
            if state != "all" and pull["state"] != state:
                continue
            if base and pull["base"] != base:
                continue
            if head and f"{repo.owner}:{pull['head']}" != head:
                continue
            items.append(self._pull_json(repo, pull))
        return self._paginate(request, items)

    def _pulls_create(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.get_json(force=True) or {}
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head_branch = head.split(":", 1)[-1]
        invalid = [f for f, b in (("head", head_branch), ("base", base)) if not b or repo.sha_of(b) is None]
        if invalid:
            return self._json(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": f, "code": "invalid"} for f in invalid],
                    "documentation_url": f"{DOCS}/pulls/pulls#create-a-pull-request",
                },
                422,
            )
        for pull in repo.pulls.values():
            if pull["state"] == "open" and pull["head"] == head_branch and pull["base"] == base:
                return self._json(
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {repo.owner}:{head_branch}.",
                            }
                        ],
                        "documentation_url": f"{DOCS}/pulls/pulls#create-a-pull-request",
                    },
                    422,
                )
        pull = self._new_pull(
            repo, head_branch, base, str(body.get("title") or head_branch), str(body.get("body") or "")
        )
        return self._json(self._pull_json(repo, pull, full=True), 201)

    def _pull_get(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        return self._json(self._pull_json(repo, repo.pulls[number], full=True))

    def _reviews_list(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        return self._paginate(
            request, [self._review_json(repo, number, r) for r in repo.reviews.get(number, [])]
        )

    def _reviews_create(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        body = request.get_json(force=True) or {}
        event = body.get("event")
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}.get(
            event, "PENDING"
        )
        if repo.pulls[number]["state"] != "open" and state != "COMMENTED":
            return self._json(
                {"message": "Unprocessable Entity", "errors": ["Can not approve a closed pull request"]}, 422
            )
        if repo.pulls[number]["user"] == self._actor and state in ("APPROVED", "CHANGES_REQUESTED"):
            verb = "approve" if state == "APPROVED" else "request changes on"
            return self._json(
                {
                    "message": "Unprocessable Entity",
                    "errors": [f"Can not {verb} your own pull request"],
                    "documentation_url": f"{DOCS}/pulls/reviews#create-a-review-for-a-pull-request",
                },
                422,
            )
        commit = body.get("commit_id")
        review = self._new_review(repo, number, self._actor, state, str(body.get("body") or ""), commit)
        return self._json(self._review_json(repo, number, review))

    def _files_list(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        items = [
            {
                "sha": _fake_sha(path),
                "filename": path,
                "status": "modified",
                "additions": 1,
                "deletions": 0,
                "changes": 1,
                "blob_url": None,
                "raw_url": None,
                "contents_url": None,
                "patch": "",
            }
            for path in repo.changed_files(number)
        ]
        return self._paginate(request, items)

    def rules_of(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        """The protection and ruleset rules in force on ``branch``, merged (what the merge endpoint enforces)."""
        out: dict[str, Any] = {
            "checks": [],
            "strict": False,
            "approvals": 0,
            "code_owners": False,
            "linear": False,
            "queue": None,
            "methods": None,
        }
        classic = repo.protection.get(branch)
        if classic:
            checks = classic.get("required_status_checks") or {}
            out["checks"] += list(checks.get("contexts") or [])
            out["strict"] = bool(checks.get("strict"))
            reviews = classic.get("required_pull_request_reviews") or {}
            out["approvals"] = int(reviews.get("required_approving_review_count") or 0)
            out["code_owners"] = bool(reviews.get("require_code_owner_reviews"))
            out["linear"] = bool((classic.get("required_linear_history") or {}).get("enabled"))
        for rule in repo.rulesets.get(branch, []):
            params = rule.get("parameters") or {}
            if rule["type"] == "required_status_checks":
                out["checks"] += [c["context"] for c in params.get("required_status_checks") or []]
                out["strict"] = out["strict"] or bool(params.get("strict_required_status_checks_policy"))
            elif rule["type"] == "pull_request":
                out["approvals"] = max(
                    out["approvals"], int(params.get("required_approving_review_count") or 0)
                )
                out["code_owners"] = out["code_owners"] or bool(params.get("require_code_owner_review"))
                if params.get("allowed_merge_methods"):
                    out["methods"] = [str(m).lower() for m in params["allowed_merge_methods"]]
            elif rule["type"] == "merge_queue":
                out["queue"] = params
            elif rule["type"] == "required_linear_history":
                out["linear"] = True
        return out

    def _check_states(self, repo: FakeRepo, sha: str) -> dict[str, str]:
        """Each check context of ``sha`` and its state: SUCCESS, FAILURE or PENDING."""
        out: dict[str, str] = {}
        for status in self._latest_statuses(repo, sha):
            out[status["context"]] = {"success": "SUCCESS", "pending": "PENDING"}.get(
                status["state"], "FAILURE"
            )
        for run in repo.check_runs.get(sha, []):
            if run["status"] != "completed":
                out[run["name"]] = "PENDING"
            else:
                good = run["conclusion"] in ("success", "neutral", "skipped")
                out[run["name"]] = "SUCCESS" if good else "FAILURE"
        return out

    def _review_decision(self, repo: FakeRepo, pull: dict[str, Any]) -> str | None:
        rules = self.rules_of(repo, pull["base"])
        if not rules["approvals"] and not rules["code_owners"]:
            return None
        latest: dict[str, str] = {}
        for review in repo.reviews.get(pull["number"], []):
            if review["state"] in ("APPROVED", "CHANGES_REQUESTED") and review["login"]:
                latest[review["login"]] = review["state"]
        if "CHANGES_REQUESTED" in latest.values():
            return "CHANGES_REQUESTED"
        approved = sum(1 for v in latest.values() if v == "APPROVED")
        return "APPROVED" if approved >= max(1, rules["approvals"]) else "REVIEW_REQUIRED"

    def _merge_refusal(self, repo: FakeRepo, pull: dict[str, Any], method: str) -> str | None:
        """Why GitHub would refuse to merge ``pull`` with ``method`` now (405), or None."""
        rules = self.rules_of(repo, pull["base"])
        if pull.get("draft"):
            return "Pull Request is still a draft"
        allowed = {m for m in ("squash", "merge", "rebase") if repo.settings.get(_SETTING[m], True)}
        if rules["methods"] is not None:
            allowed &= set(rules["methods"])
        if method not in allowed:
            return f"{_METHOD_NAME[method]} are not allowed on this repository."
        if rules["linear"] and method == "merge":
            return "This branch must not contain merge commits."
        head = repo.sha_of(pull["head"]) or pull["head_sha"] or ""
        states = self._check_states(repo, head)
        for context in rules["checks"]:
            if states.get(context) != "SUCCESS":
                word = "expected" if context not in states or states[context] == "PENDING" else "failing"
                return f'Required status check "{context}" is {word}.'
        decision = self._review_decision(repo, pull)
        if decision == "REVIEW_REQUIRED":
            return "At least 1 approving review is required by reviewers with write access."
        if decision == "CHANGES_REQUESTED":
            return "Changes have been requested on this pull request."
        if rules["strict"] and pull["number"] in repo.behind:
            return "Head branch is out of date. Review and try the merge again."
        return None

    def _merge(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        pull = repo.pulls[number]
        body = request.get_json(force=True) or {}
        if pull["state"] != "open":
            return self._json({"message": "Pull Request is not mergeable", "documentation_url": DOCS}, 405)
        if self.rules_of(repo, pull["base"])["queue"] is not None:
            return self._json(
                {"message": "Changes must be made through the merge queue", "documentation_url": DOCS}, 405
            )
        if repo.base_modified.get(number, 0) > 0:
            repo.base_modified[number] -= 1
            return self._json(
                {
                    "message": "Base branch was modified. Review and try the merge again.",
                    "documentation_url": DOCS,
                },
                405,
            )
        head_sha = repo.sha_of(pull["head"]) or pull["head_sha"]
        if body.get("sha") and body["sha"] != head_sha:
            return self._json(
                {
                    "message": "Head branch was modified. Review and try the merge again.",
                    "documentation_url": DOCS,
                },
                409,
            )
        if repo.is_mergeable(number) is False:
            return self._json({"message": "Pull Request is not mergeable", "documentation_url": DOCS}, 405)
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            return self._json(
                {"message": "Validation Failed", "errors": [{"field": "merge_method", "code": "invalid"}]},
                422,
            )
        refusal = self._merge_refusal(repo, pull, method)
        if refusal is not None:
            return self._json({"message": refusal, "documentation_url": DOCS}, 405)
        sha = self.merge_now(repo, pull, method)
        return self._json({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    def merge_now(self, repo: FakeRepo, pull: dict[str, Any], method: str) -> str:
        """Merge ``pull`` (no checks): mark it merged, move the base, return the merge commit. Without git the
        commit is made up; with ``real_merges`` it is a squash commit of the PR on the bare repository's base."""
        head_sha = repo.sha_of(pull["head"]) or pull["head_sha"]
        sha = _fake_sha(repo.full_name, pull["number"], method, head_sha)
        if self.real_merges and repo.git_dir is not None:
            sha = self._squash(repo, pull, head_sha)
        now = _now()
        pull.update(
            state="closed",
            merged=True,
            merged_at=now,
            closed_at=now,
            updated_at=now,
            merge_commit_sha=sha,
            head_sha=head_sha,
            merge_method=method,
            merged_by=self._actor,
        )
        if repo.git_dir is None:
            repo.branches[pull["base"]] = sha
        return sha

    def _squash(self, repo: FakeRepo, pull: dict[str, Any], head: str) -> str:
        base = repo.sha_of(pull["base"])
        assert base is not None, f"{pull['base']} is not in {repo.git_dir}"
        identity = {
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "Fake GitHub"), ("EMAIL", "noreply@github.invalid"))
        }

        def bare(*args: str, input: str | None = None) -> str:
            done = subprocess.run(
                ["git", "--git-dir", str(repo.git_dir), *args],
                capture_output=True,
                text=True,
                input=input,
                env={"PATH": "/usr/bin:/bin", **identity},
                check=True,
            )
            return done.stdout.strip()

        tree = bare("merge-tree", "--write-tree", base, head).splitlines()[0]
        if pull["number"] in self.tamper:
            tree = bare("rev-parse", f"{base}^{{tree}}")  # a merge that lost the PR's changes
        commit = bare("commit-tree", tree, "-p", base, input=f"{pull['title']} (#{pull['number']})\n")
        bare("update-ref", f"refs/heads/{pull['base']}", commit, base)
        repo.forget_heads()
        return commit

    def _combined_status(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self._repo(owner, name)
        sha = repo.sha_of(ref) or ref
        statuses = self._latest_statuses(repo, sha)
        states = {s["state"] for s in statuses}
        overall = (
            "failure"
            if states & {"failure", "error"}
            else ("pending" if "pending" in states or not states else "success")
        )
        paged = self._paginate(request, [self._status_json(repo, s) for s in statuses])
        paged.set_data(
            json.dumps(
                {
                    "state": overall,
                    "statuses": json.loads(paged.get_data()),
                    "sha": sha,
                    "total_count": len(statuses),
                    "repository": self._repo_json(repo),
                    "commit_url": f"{self.base_url}/repos/{repo.full_name}/commits/{sha}",
                    "url": f"{self.base_url}/repos/{repo.full_name}/commits/{sha}/status",
                }
            )
        )
        return paged

    def _check_run_json(self, repo: FakeRepo, sha: str, run: dict[str, Any]) -> dict[str, Any]:
        """A check run as GitHub sends it (the shape of PyGithub's recorded ``check-runs`` answers)."""
        api = f"{self.base_url}/repos/{repo.full_name}/check-runs/{run['id']}"
        return {
            "id": run["id"],
            "node_id": f"CR_{run['id']}",
            "head_sha": sha,
            "external_id": str(run["id"]),
            "url": api,
            "html_url": run["html_url"],
            "details_url": run.get("details_url") or run["html_url"],
            "status": run["status"],
            "conclusion": run["conclusion"],
            "started_at": run["completed_at"],
            "completed_at": run["completed_at"],
            "output": {
                "title": run.get("title"),
                "summary": run.get("summary"),
                "text": run.get("text"),
                "annotations_count": len(run.get("annotations") or []),
                "annotations_url": f"{api}/annotations",
            },
            "name": run["name"],
            "check_suite": {"id": run["id"] + 1},
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
            "pull_requests": [],
        }

    def _find_run(self, repo: FakeRepo, run_id: int) -> tuple[str, dict[str, Any]]:
        for sha, runs in repo.check_runs.items():
            for run in runs:
                if run["id"] == run_id:
                    return sha, run
        raise NotFound()

    def _check_runs(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self._repo(owner, name)
        sha = repo.sha_of(ref) or ref
        runs = [self._check_run_json(repo, sha, r) for r in repo.check_runs.get(sha, [])]
        paged = self._paginate(request, runs)
        data = json.loads(paged.get_data())
        paged.set_data(json.dumps({"total_count": len(runs), "check_runs": data}))
        return paged

    def _check_run_get(self, request: Request, owner: str, name: str, run_id: int) -> Response:
        repo = self._repo(owner, name)
        sha, run = self._find_run(repo, run_id)
        return self._json(self._check_run_json(repo, sha, run))

    def _annotations(self, request: Request, owner: str, name: str, run_id: int) -> Response:
        repo = self._repo(owner, name)
        sha, run = self._find_run(repo, run_id)
        blob = f"{self.root_url}/{repo.full_name}/blob/{sha}"
        items = [
            {
                "path": a["path"],
                "blob_href": f"{blob}/{a['path']}",
                "start_line": a.get("start_line"),
                "start_column": None,
                "end_line": a.get("end_line", a.get("start_line")),
                "end_column": None,
                "annotation_level": a.get("annotation_level", "failure"),
                "title": a.get("title"),
                "message": a.get("message", ""),
                "raw_details": a.get("raw_details"),
            }
            for a in run.get("annotations") or []
        ]
        return self._paginate(request, items)

    def _review_comments_list(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        api = f"{self.base_url}/repos/{repo.full_name}/pulls"
        html = f"{self.root_url}/{repo.full_name}/pull/{number}"
        items = [
            {
                "url": f"{api}/comments/{c['id']}",
                "pull_request_review_id": c["review_id"],
                "id": c["id"],
                "node_id": f"PRRC_{c['id']}",
                "diff_hunk": "@@ -1 +1 @@",
                "path": c["path"],
                "commit_id": c["commit_id"],
                "original_commit_id": c["commit_id"],
                "user": self._user_json(c["login"]),
                "body": c["body"],
                "created_at": c["created_at"],
                "updated_at": c["created_at"],
                "html_url": f"{html}#discussion_r{c['id']}",
                "pull_request_url": f"{api}/{number}",
                "author_association": "MEMBER",
                "line": c["line"],
                "original_line": c["line"],
                "side": "RIGHT",
                "subject_type": "line",
            }
            for c in repo.review_comments.get(number, [])
        ]
        return self._paginate(request, items)

    def _status_create(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        body = request.get_json(force=True) or {}
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return self._json(
                {"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]}, 422
            )
        status = {
            "id": next(_ids),
            "creator": self._actor,
            "sha": sha,
            "state": body["state"],
            "context": body.get("context") or "default",
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "created_at": _now(),
        }
        repo.statuses.setdefault(sha, []).append(status)
        return self._json(self._status_json(repo, status), 201)

    def _comment_json(self, repo: FakeRepo, number: int, comment: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}"
        return {
            "id": comment["id"],
            "node_id": f"IC_{comment['id']}",
            "url": f"{api}/issues/comments/{comment['id']}",
            "html_url": f"{self.root_url}/{repo.full_name}/pull/{number}#issuecomment-{comment['id']}",
            "body": comment["body"],
            "user": self._user_json(comment["login"]),
            "created_at": comment["created_at"],
            "updated_at": comment["created_at"],
            "issue_url": f"{api}/issues/{number}",
            "author_association": "MEMBER",
        }

    def _comments_list(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        return self._paginate(
            request, [self._comment_json(repo, number, c) for c in repo.comments.get(number, [])]
        )

    def _comments_create(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = self._repo(owner, name)
        if number not in repo.pulls:
            raise NotFound()
        body = request.get_json(force=True) or {}
        comment = {
            "id": next(_ids),
            "body": str(body.get("body") or ""),
            "login": self._actor,
            "created_at": _now(),
        }
        repo.comments.setdefault(number, []).append(comment)
        return self._json(self._comment_json(repo, number, comment), 201)

    def _release_json(self, repo: FakeRepo, release: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/releases/{release['id']}"
        return {
            "url": api,
            "html_url": f"{self.root_url}/{repo.full_name}/releases/tag/{release['tag_name']}",
            "assets_url": f"{api}/assets",
            "upload_url": f"{self.root_url}/uploads/{repo.full_name}/releases/{release['id']}/assets{{?name,label}}",
            "tarball_url": None,
            "zipball_url": None,
            "id": release["id"],
            "node_id": f"RE_{release['id']}",
            "tag_name": release["tag_name"],
            "target_commitish": release["target_commitish"],
            "name": release["name"],
            "body": release["body"],
            "draft": False,
            "prerelease": False,
            "created_at": release["created_at"],
            "published_at": release["created_at"],
            "author": self._user_json(release.get("author") or self.login),
            "assets": [],
        }

    def _release_get(self, request: Request, owner: str, name: str, tag: str) -> Response:
        repo = self._repo(owner, name)
        for release in repo.releases:
            if release["tag_name"] == tag:
                return self._json(self._release_json(repo, release))
        raise NotFound()

    def _release_create(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.get_json(force=True) or {}
        tag = str(body.get("tag_name") or "")
        if any(r["tag_name"] == tag for r in repo.releases):
            return self._json(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}],
                },
                422,
            )
        release = {
            "id": next(_ids),
            "tag_name": tag,
            "target_commitish": body.get("target_commitish") or "main",
            "name": body.get("name"),
            "body": body.get("body"),
            "created_at": _now(),
        }
        # GitHub: target_commitish is "unused if the Git tag already exists"; the release is on the tag's commit.
        if self._tag_ref(repo, f"refs/tags/{tag}") is None:
            target = str(body.get("target_commitish") or "main")
            repo.refs[f"refs/tags/{tag}"] = repo.sha_of(target) or target
        release["author"] = self._actor
        repo.releases.append(release)
        return self._json(self._release_json(repo, release), 201)

    def _releases_list(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return self._paginate(request, [self._release_json(repo, r) for r in reversed(repo.releases)])

    def _tag_ref(self, repo: FakeRepo, ref: str) -> tuple[str, str] | None:
        """(object sha, object type) of tag ref ``ref``: seeded, or read from the bare repository."""
        if ref in repo.refs:
            sha = repo.refs[ref]
            return sha, "tag" if sha in repo.tag_objects else "commit"
        if repo.git_dir is not None:
            out = repo._git("for-each-ref", "--format=%(objectname) %(objecttype)", ref).stdout.split()
            if len(out) == 2:
                return out[0], out[1]
        return None

    def _tag_object_get(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self._repo(owner, name)
        if sha in repo.tag_objects:
            target = repo.tag_objects[sha]
        elif repo.git_dir is not None and repo._git("cat-file", "-t", sha).stdout.strip() == "tag":
            header = repo._git("cat-file", "-p", sha).stdout.split("\n\n", 1)[0].splitlines()
            fields = dict(line.split(" ", 1) for line in header if " " in line)
            target = {
                "sha": fields.get("object", ""),
                "type": fields.get("type", "commit"),
                "tag": fields.get("tag", ""),
            }
        else:
            raise NotFound()
        api = f"{self.base_url}/repos/{repo.full_name}/git"
        return self._json(
            {
                "node_id": f"TAG_{sha[:8]}",
                "tag": target.get("tag", ""),
                "sha": sha,
                "url": f"{api}/tags/{sha}",
                "message": "",
                "tagger": {"name": "coditect", "email": "coditect@example.invalid", "date": _now()},
                "object": {
                    "type": target["type"],
                    "sha": target["sha"],
                    "url": f"{api}/commits/{target['sha']}",
                },
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
            }
        )

    def _tag_object_create(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.get_json(force=True) or {}
        sha = _fake_sha("tag", body.get("tag"), body.get("object"))
        repo.tag_objects[sha] = {
            "sha": str(body.get("object")),
            "type": str(body.get("type") or "commit"),
            "tag": str(body.get("tag")),
        }
        return self._tag_object_get(request, owner, name, sha)

    def _ref_json(self, repo: FakeRepo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "ref": ref,
            "node_id": f"REF_{_fake_sha(ref)[:8]}",
            "url": f"{self.base_url}/repos/{repo.full_name}/git/{ref}",
            "object": {
                "sha": sha,
                "type": "commit",
                "url": f"{self.base_url}/repos/{repo.full_name}/git/commits/{sha}",
            },
        }

    def _ref_get(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self._repo(owner, name)
        full = f"refs/{ref}"
        found = self._tag_ref(repo, full) if full.startswith("refs/tags/") else None
        if found is not None:
            data = self._ref_json(repo, full, found[0])
            data["object"]["type"] = found[1]
            return self._json(data)
        if full in repo.refs:
            return self._json(self._ref_json(repo, full, repo.refs[full]))
        head = repo.sha_of(full.removeprefix("refs/heads/")) if full.startswith("refs/heads/") else None
        if head is not None:
            return self._json(self._ref_json(repo, full, head))
        raise NotFound()

    def _ref_create(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.get_json(force=True) or {}
        ref, sha = str(body.get("ref") or ""), str(body.get("sha") or "")
        if ref in repo.refs:
            return self._json({"message": "Reference already exists", "documentation_url": DOCS}, 422)
        repo.refs[ref] = sha
        return self._json(self._ref_json(repo, ref, sha), 201)

    # ------------------------------------------------------------------------------------------ GraphQL

    _ALIAS = re.compile(r"(\w+)\s*:\s*pullRequest\(\s*number:\s*(\d+)\s*\)")
    PAGE = 100  # contexts per page, as GitHub's ``first: 100``

    def _graphql_response(self, data: Any, errors: list[dict[str, Any]] | None = None) -> Response:
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = errors
        response = self._json(body)
        response.headers["x-ratelimit-resource"] = "graphql"
        return response

    def _graphql(self, request: Request) -> Response:
        payload = request.get_json(force=True) or {}
        query = str(payload.get("query", ""))
        variables = payload.get("variables") or {}
        for fault in self.graphql_faults:
            if fault["times"] > 0:
                fault["times"] -= 1
                response = self._json({"errors": [{"type": fault["type"], "message": fault["message"]}]})
                for key, value in fault["headers"].items():
                    response.headers[key] = value
                return response
        if "viewer" in query and "repository" not in query:
            if self._kind == "actions":
                return self._json(
                    {"errors": [{"type": "FORBIDDEN", "message": "Resource not accessible by integration"}]}
                )
            return self._graphql_response({"viewer": {"login": self._actor}})
        if "enqueuePullRequest" in query:
            return self._graphql_enqueue(variables)
        if "repository(owner: $owner, name: $name)" not in query:
            return self._json({"errors": [{"message": "the fake GitHub answers only coditect's queries"}]})
        repo = self.repos.get(f"{variables.get('owner')}/{variables.get('name')}")
        if repo is None:
            return self._graphql_response(
                {"repository": None},
                [
                    {
                        "type": "NOT_FOUND",
                        "path": ["repository"],
                        "message": "Could not resolve to a Repository.",
                    }
                ],
            )
        if "object(oid: $oid)" in query:
            return self._graphql_contexts(repo, str(variables.get("oid")), variables.get("after"))
        if "pullRequest(number: $number)" in query:
            return self._graphql_queue_state(repo, int(variables.get("number") or 0))
        out: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for alias, number in self._ALIAS.findall(query):
            pull = repo.pulls.get(int(number))
            out[alias] = None if pull is None else self._graphql_pull(repo, pull)
            if pull is None:
                errors.append(
                    {
                        "type": "NOT_FOUND",
                        "path": ["repository", alias],
                        "locations": [{"line": 3, "column": 5}],
                        "message": f"Could not resolve to a PullRequest with the number of {number}.",
                    }
                )
        if "squashMergeAllowed" in query:
            out.update(
                squashMergeAllowed=repo.settings["allow_squash_merge"],
                mergeCommitAllowed=repo.settings["allow_merge_commit"],
                rebaseMergeAllowed=repo.settings["allow_rebase_merge"],
            )
        return self._graphql_response({"repository": out}, errors)

    def _contexts(self, repo: FakeRepo, sha: str) -> list[dict[str, Any]]:
        contexts: list[dict[str, Any]] = [
            {
                "__typename": "StatusContext",
                "context": s["context"],
                "state": s["state"].upper(),
                "targetUrl": s["target_url"],
                "createdAt": s["created_at"],
            }
            for s in self._latest_statuses(repo, sha)
        ]
        contexts += [
            {
                "__typename": "CheckRun",
                "name": r["name"],
                "status": r["status"].upper(),
                "conclusion": r["conclusion"].upper() if r["conclusion"] else None,
                "detailsUrl": r.get("details_url") or r["html_url"],
                "completedAt": r["completed_at"],
            }
            for r in repo.check_runs.get(sha, [])
        ]
        return contexts

    def _context_page(self, contexts: list[dict[str, Any]], after: Any) -> dict[str, Any]:
        start = int(str(after)) if after else 0
        chunk = contexts[start : start + self.PAGE]
        more = start + self.PAGE < len(contexts)
        return {"pageInfo": {"hasNextPage": more, "endCursor": str(start + len(chunk))}, "nodes": chunk}

    def _graphql_contexts(self, repo: FakeRepo, oid: str, after: Any) -> Response:
        contexts = self._contexts(repo, oid)
        rollup = {"contexts": self._context_page(contexts, after)} if contexts else None
        return self._graphql_response({"repository": {"object": {"statusCheckRollup": rollup}}})

    def _graphql_pull(self, repo: FakeRepo, pull: dict[str, Any]) -> dict[str, Any]:
        n = pull["number"]
        head = (
            pull["head_sha"] if pull["state"] == "closed" else (repo.sha_of(pull["head"]) or pull["head_sha"])
        )
        mergeable = self._mergeable_now(repo, pull)
        files = repo.changed_files(n)
        contexts = self._contexts(repo, head or "")
        rollup = None
        if contexts:
            states = {c.get("state") or c.get("conclusion") or "PENDING" for c in contexts}
            rollup = {
                "state": "FAILURE"
                if states & {"FAILURE", "ERROR"}
                else ("PENDING" if "PENDING" in states else "SUCCESS"),
                "contexts": self._context_page(contexts, None),
            }
        if pull["state"] != "open":
            merge_state = "UNKNOWN"
        elif pull.get("draft"):
            merge_state = "DRAFT"
        elif mergeable is None:
            merge_state = "UNKNOWN"
        elif mergeable is False:
            merge_state = "DIRTY"
        elif self._merge_refusal(repo, pull, self._allowed_method(repo, pull)) is not None:
            merge_state = "BEHIND" if n in repo.behind else "BLOCKED"
        else:
            merge_state = "CLEAN"
        return {
            "number": n,
            "headRefOid": head,
            "isDraft": bool(pull.get("draft")),
            "mergeable": {True: "MERGEABLE", False: "CONFLICTING", None: "UNKNOWN"}[mergeable],
            "mergeStateStatus": merge_state,
            "reviewDecision": self._review_decision(repo, pull),
            "files": {"totalCount": len(files), "nodes": [{"path": p} for p in files[:100]]},
            "reviews": {
                "nodes": [
                    {
                        "author": {"login": r["login"]} if r["login"] else None,
                        "state": r["state"],
                        "submittedAt": r["submitted_at"],
                        "commit": {"oid": r["commit_id"]},
                    }
                    for r in repo.reviews.get(n, [])[-100:]
                ]
            },
            "commits": {"nodes": [{"commit": {"oid": head, "statusCheckRollup": rollup}}]},
        }

    def _allowed_method(self, repo: FakeRepo, pull: dict[str, Any]) -> str:
        methods = self.rules_of(repo, pull["base"])["methods"]
        for method in ("squash", "merge", "rebase"):
            if repo.settings.get(_SETTING[method], True) and (methods is None or method in methods):
                return method
        return "merge"

    def _graphql_enqueue(self, variables: dict[str, Any]) -> Response:
        node_id = str(variables.get("id") or "")
        for repo in self.repos.values():
            for pull in repo.pulls.values():
                if f"PR_{pull['id']}" != node_id:
                    continue
                head = repo.sha_of(pull["head"]) or pull["head_sha"]
                if variables.get("head") and variables["head"] != head:
                    return self._json(
                        {"errors": [{"type": "UNPROCESSABLE", "message": "Head ref was modified"}]}
                    )
                entry = {"id": f"MQE_{pull['id']}", "state": "QUEUED", "position": len(repo.queue) + 1}
                entry["polls"] = self.queue_polls
                repo.queue[pull["number"]] = entry
                shown = {k: v for k, v in entry.items() if k != "polls"}
                return self._graphql_response({"enqueuePullRequest": {"mergeQueueEntry": shown}})
        return self._graphql_response(
            {"enqueuePullRequest": None},
            [
                {
                    "type": "NOT_FOUND",
                    "message": f"Could not resolve to a node with the global id of '{node_id}'",
                }
            ],
        )

    def _graphql_queue_state(self, repo: FakeRepo, number: int) -> Response:
        pull = repo.pulls.get(number)
        if pull is None:
            return self._graphql_response({"repository": {"pullRequest": None}})
        entry = repo.queue.get(number)
        if entry is not None:
            entry["polls"] -= 1
            entry["state"] = "AWAITING_CHECKS"
            if entry["polls"] <= 0:
                del repo.queue[number]
                if number not in repo.queue_fail:
                    params = self.rules_of(repo, pull["base"])["queue"] or {}
                    self.merge_now(repo, pull, str(params.get("merge_method") or "MERGE").lower())
                entry = None
        node = {
            "state": "MERGED" if pull["merged"] else pull["state"].upper(),
            "merged": bool(pull["merged"]),
            "mergeCommit": {"oid": pull["merge_commit_sha"]} if pull["merged"] else None,
            "mergeQueueEntry": None
            if entry is None
            else {"state": entry["state"], "position": entry["position"]},
        }
        return self._graphql_response({"repository": {"pullRequest": node}})
