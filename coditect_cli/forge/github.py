"""The GitHub forge: GitHub's REST and GraphQL APIs through PyGithub's HTTP layer (imported inside the functions
that use it: ~0.2 s we only pay when used).

PyGithub's ``Requester`` carries authentication, timeouts, bounded retries and logging; the requests and the
answers are handled here as GitHub sends them (JSON), because GitHub's real behaviour is what matters:

* **Writes are paced, never blindly retried.** Content-creating requests (a PR, a review, a comment, a status,
  a merge, a release) are sent at least ``write_interval`` seconds apart (GitHub asks for about one second;
  ``CODITECT_GITHUB_WRITE_INTERVAL``). urllib3 retries GET only (5xx, timeouts, dropped connections; bounded,
  capped exponential backoff); every write is "find, then create": when a create answers 5xx or times out, the
  forge looks again before anything else and reports what exists. GraphQL queries are POSTs but read-only:
  they get the same bounded retries from a loop here.
* **Limits are reported, not slept on.** A primary rate limit (``x-ratelimit-remaining: 0``, or a GraphQL
  ``RATE_LIMITED`` error inside an HTTP 200) names its reset time; a secondary limit its ``retry-after`` or,
  without one, GitHub's guidance (wait at least a minute, then back off): :class:`UnavailableError`, exit 5.
  A 403 for a missing permission is :class:`PermissionDenied` (exit 1): GitHub is up, the token is not enough.
* **GitHub's rules are read, not guessed.** Branch protection and rulesets of a base branch are read once per
  run (:meth:`GitHubForge.branch_rules`): required checks (pending ones block, failing non-required ones do
  not), required and code-owner reviews (``reviewDecision``), drafts, ``mergeStateStatus``, the merge queue
  (merges go through ``enqueuePullRequest``), allowed merge methods and linear history.
* **No ``GET /user`` dependence.** App installation tokens and Actions' ``GITHUB_TOKEN`` get 403 there; the
  token's account is then asked of GraphQL's ``viewer``, and when that fails too GitHub itself decides who a
  review is from.
* **Conditional requests.** GETs send the ETag of the last answer (kept in ``cache_dir`` across commands); a
  304 costs no rate limit and the cached body is used.
* **The token stays secret.** It lives in a :class:`~coditect_cli.forge.select.Secret`, is revealed only to
  PyGithub's ``Auth.Token``, and a logging filter masks it (and anything token-shaped) in PyGithub's and
  urllib3's ``--verbose`` lines; error messages are built from status codes and GitHub's own messages.

Requests per command: listing the PRs into a base branch is one paginated ``GET /pulls?base=…&state=all&
per_page=100``; the reviews, checks, mergeability, state and changed files of up to :data:`DETAILS_BATCH` PRs
come from one GraphQL query (with the repository's allowed merge methods); the base's rules cost two more GETs
(protection, rulesets) once per run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from coditect_cli.adapters.proc import redact
from coditect_cli.errors import (
    CheckFailed,
    CoditectError,
    PermissionDenied,
    RefusedError,
    UnavailableError,
    UsageError,
)
from coditect_cli.forge.base import (
    STRATEGIES,
    BranchRules,
    Check,
    CheckEvidence,
    CheckStatus,
    Comment,
    ForgeRepo,
    Merged,
    MergeStrategy,
    Opened,
    PrActivity,
    PrDetails,
    ProposalSpec,
    PullRequest,
    Release,
    Review,
    ReviewComment,
    ReviewState,
    is_team,
    pr_state,
    same_owner,
)

if TYPE_CHECKING:
    from github import Github

    from coditect_cli.forge.select import Secret

T = TypeVar("T")

DETAILS_BATCH = 25
"""Pull requests per GraphQL details query (each asks for up to 100 files, reviews and checks)."""

STATUS_CONTEXT_PREFIX = "coditect/"
"""Commit statuses coditect records are named ``coditect/<gate>``."""

_LOGGERS = (
    "github",
    "github.Requester",
    "github.GithubRetry",
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.util.retry",
)
_EVENTS: dict[ReviewState, str] = {
    "approved": "APPROVE",
    "changes_requested": "REQUEST_CHANGES",
    "commented": "COMMENT",
}
_REVIEW_STATES: dict[str, ReviewState] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
}
_STATUS_STATES: dict[str, CheckStatus] = {
    "success": "success",
    "failure": "failure",
    "error": "failure",
    "pending": "pending",
    "expected": "pending",
}
_GOOD_CONCLUSIONS = frozenset({"SUCCESS", "NEUTRAL", "SKIPPED"})
_RATE_LIMIT_TYPES = frozenset({"RATE_LIMITED", "RATE_LIMIT"})
_METHOD_FIELDS: tuple[tuple[MergeStrategy, str], ...] = (
    ("squash", "allow_squash_merge"),
    ("merge", "allow_merge_commit"),
    ("rebase", "allow_rebase_merge"),
)
_GHOST = "ghost"  # GitHub's name for a deleted account (a review's ``user`` is then null)
_SELF_REVIEW = re.compile(r"(can ?not|cannot) (approve|request changes on) your own pull request", re.I)


@dataclass(frozen=True)
class GitHubOptions:
    """Client settings. A safe call makes at most ``1 + retries`` attempts of ``timeout`` (whole) seconds each, pausing
    0, ``2·backoff``, ``4·backoff``… (each at most ``backoff_max``) in between. Content-creating writes are sent
    ``write_interval`` s apart; a merge whose base moved meanwhile ("Base branch was modified") is tried
    ``base_retries`` more times; a merge queue is watched every ``queue_poll`` s for at most ``queue_wait`` s.
    ``cache_dir`` keeps ETags and bodies for conditional requests across commands (None: this run only)."""

    timeout: int = 15
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 4.0
    per_page: int = 100
    write_interval: float = 1.0
    base_retries: int = 3
    queue_wait: float = 1800.0
    queue_poll: float = 10.0
    cache_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cache_dir: Path | None = None) -> GitHubOptions:
        """Defaults, overridden by ``CODITECT_GITHUB_TIMEOUT``, ``_RETRIES``, ``_BACKOFF``, ``_WRITE_INTERVAL``,
        ``_QUEUE_WAIT`` and ``_QUEUE_POLL`` when set."""
        environ = os.environ if env is None else env

        def number(name: str, default: float) -> float:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise UsageError(f"{name}={raw!r} is not a number") from None
            if value < 0:
                raise UsageError(f"{name} must not be negative")
            return value

        return cls(
            timeout=max(1, round(number("CODITECT_GITHUB_TIMEOUT", cls.timeout))),
            retries=int(number("CODITECT_GITHUB_RETRIES", cls.retries)),
            backoff=number("CODITECT_GITHUB_BACKOFF", cls.backoff),
            write_interval=number("CODITECT_GITHUB_WRITE_INTERVAL", cls.write_interval),
            queue_wait=number("CODITECT_GITHUB_QUEUE_WAIT", cls.queue_wait),
            queue_poll=number("CODITECT_GITHUB_QUEUE_POLL", cls.queue_poll),
            cache_dir=cache_dir,
        )

    @property
    def max_wait(self) -> float:
        """The longest a safe call can take before it gives up: every attempt timing out, every pause taken."""
        pauses = sum(min(self.backoff * 2.0**i, self.backoff_max) for i in range(1, self.retries))
        return (1 + self.retries) * self.timeout + pauses


class _Redactor(logging.Filter):
    """Masks the token (and anything token-shaped) in log records of PyGithub and urllib3."""

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: leave it to the handler
            return True
        cleaned = redact(message)
        value = self._secret.reveal()
        if value:
            cleaned = cleaned.replace(value, "***")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _adopt_pygithub_logging() -> None:
    """Undo what importing PyGithub does to logging (level INFO and its own stderr handler on ``github``), so
    its records follow coditect's configuration: silent by default, shown (masked) with ``--verbose``."""
    pygithub = logging.getLogger("github")
    for handler in list(pygithub.handlers):
        if type(handler) is logging.StreamHandler:
            pygithub.removeHandler(handler)
    pygithub.setLevel(logging.NOTSET)


def _iso(text: Any) -> str | None:
    """A GitHub timestamp (``2026-12-03T14:00:00Z``) the way the store writes times; None stays None."""
    from coditect_cli.state.store import format_time

    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_time(moment)


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _login(user: Any) -> str:
    """``@login`` of a user object; a deleted account (``null``) is GitHub's ``@ghost``."""
    login = user.get("login") if isinstance(user, Mapping) else None
    return f"@{login or _GHOST}"


def _reset_text(headers: Mapping[str, str], now: float) -> str:
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset.isdigit():
        at_epoch = int(reset)
        at = datetime.fromtimestamp(at_epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        minutes = max(0, round((at_epoch - now) / 60))
        return f"it resets at {at} (in {minutes} min)"
    return "wait a few minutes"


def rate_limit_error(
    status: int, headers: Mapping[str, Any] | None, message: str, doing: str
) -> UnavailableError | None:
    """The error for a rate-limited answer (None when ``status``/``headers`` are not a rate limit).

    Secondary limits (bursts, concurrency, too many writes) come with ``retry-after`` or, without it, a message
    saying "secondary rate limit": GitHub asks to wait at least a minute then, and to back off further.
    """
    if status not in (403, 429):
        return None
    h = _lower(headers)
    now = time.time()
    retry_after = h.get("retry-after", "").strip()
    if retry_after.isdigit():
        seconds = int(retry_after)
        at = datetime.fromtimestamp(now + seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return UnavailableError(
            f"GitHub's secondary rate limit was hit while {doing}: retry after {seconds} s (at {at})",
            hint="GitHub limits bursts of requests; wait, then run the command again",
        )
    lowered = message.lower()
    if "secondary rate limit" in lowered or (
        "rate limit" in lowered and h.get("x-ratelimit-remaining") not in (None, "0")
    ):
        return UnavailableError(
            f"GitHub's secondary rate limit was hit while {doing} (no retry-after given): wait at least a "
            "minute before trying again",
            hint="GitHub asks to wait at least one minute, then to back off further if it happens again",
        )
    if h.get("x-ratelimit-remaining") == "0" or "rate limit" in lowered:
        limit = h.get("x-ratelimit-limit")
        used = f" ({limit} requests per hour)" if limit else ""
        return UnavailableError(
            f"GitHub's API rate limit{used} is exhausted while {doing}; {_reset_text(h, now)}",
            hint="run the command again after the reset",
        )
    return None


def graphql_rate_limit_error(headers: Mapping[str, Any] | None, message: str, doing: str) -> UnavailableError:
    """A GraphQL ``RATE_LIMITED`` error (GitHub sends it with HTTP 200): the reset from the headers."""
    h = _lower(headers)
    return UnavailableError(
        f"GitHub's GraphQL rate limit is exhausted while {doing} ({message.strip() or 'RATE_LIMITED'}); "
        f"{_reset_text(h, time.time())}",
        hint="run the command again after the reset",
    )


def _next_link(headers: Mapping[str, Any]) -> str | None:
    link = _lower(headers).get("link", "")
    for part in link.split(","):
        match = re.search(r'<([^>]+)>\s*;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None


class GitHubForge:
    """A :class:`~coditect_cli.forge.base.Forge` backed by GitHub's REST and GraphQL APIs (see the module doc)."""

    kind = "github"

    def __init__(self, api_url: str, token: Secret, options: GitHubOptions | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.options = options or GitHubOptions()
        self.notes: list[str] = []
        self._gh: Github | None = None
        self._filter: _Redactor | None = None
        self._lists: dict[tuple[str, str], list[PullRequest]] = {}
        self._node_ids: dict[tuple[str, int], str] = {}
        self._rules: dict[tuple[str, str], BranchRules] = {}
        self._teams: dict[str, frozenset[str] | None] = {}
        self._settings: dict[str, Any] = {}
        self._viewer: str | None = None
        self._viewer_read = False
        self._etags: dict[str, tuple[str, dict[str, str], Any]] = {}
        self._last_write = 0.0
        self.conditional_hits = 0
        """GETs answered 304 (unchanged: served from the cache, free of rate limit) in this run."""
        self.fresh_reads = 0
        """GETs answered with a body (new or changed data) in this run."""
        self._watched: dict[str, tuple[str, dict[int, PrDetails]]] = {}

    def __repr__(self) -> str:
        return f"GitHubForge({self.api_url!r})"

    # ------------------------------------------------------------------------------------------ plumbing

    def _client(self) -> Github:
        if self._gh is None:
            from github import Auth, Github
            from urllib3.util.retry import Retry

            _adopt_pygithub_logging()
            self._filter = _Redactor(self._token)
            for name in _LOGGERS:
                logging.getLogger(name).addFilter(self._filter)
            o = self.options
            retry = Retry(
                total=o.retries,
                connect=o.retries,
                read=o.retries,
                status=o.retries,
                other=0,
                allowed_methods=frozenset({"GET", "HEAD"}),
                status_forcelist=frozenset({500, 502, 503, 504}),
                backoff_factor=o.backoff,
                backoff_max=o.backoff_max,
                respect_retry_after_header=False,
                raise_on_status=False,
            )
            self._gh = Github(
                auth=Auth.Token(self._token.reveal()),
                base_url=self.api_url,
                timeout=max(1, int(o.timeout)),  # PyGithub insists on whole seconds
                retry=retry,
                per_page=o.per_page,
                seconds_between_requests=0,
                seconds_between_writes=0,  # paced here, for content-creating writes only (not GraphQL reads)
                user_agent="coditect",
                lazy=True,
            )
        return self._gh

    def close(self) -> None:
        """Close the HTTP session and remove the log filter."""
        if self._gh is not None:
            self._gh.close()
            self._gh = None
        if self._filter is not None:
            for name in _LOGGERS:
                logging.getLogger(name).removeFilter(self._filter)
            self._filter = None

    @staticmethod
    def _slug(repo: ForgeRepo) -> str:
        if not repo.slug:
            raise UsageError(f"repository {repo.id!r} has no GitHub owner/name (origin: {repo.origin_url})")
        return repo.slug

    def _clean(self, text: str) -> str:
        value = self._token.reveal()
        text = redact(text)
        return text.replace(value, "***") if value else text

    @staticmethod
    def _transient(exc: BaseException) -> bool:
        """A 5xx, a timeout or a dropped connection: the request may or may not have been acted on."""
        from github.GithubException import GithubException
        from requests.exceptions import ConnectionError, Timeout

        if isinstance(exc, GithubException):
            return exc.status >= 500
        return isinstance(exc, (Timeout, ConnectionError))

    @staticmethod
    def _status(exc: BaseException) -> int | None:
        from github.GithubException import GithubException

        return exc.status if isinstance(exc, GithubException) else None

    @staticmethod
    def _message(exc: BaseException) -> str:
        """GitHub's message of a failed request, with its ``errors`` entries ("" for other failures)."""
        from github.GithubException import GithubException

        if not isinstance(exc, GithubException):
            return ""
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("message") or exc.message or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = [
                str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors
            ]
            message += " (" + "; ".join(parts) + ")"
        return message

    def _error(self, exc: BaseException, doing: str) -> CoditectError | None:
        """The CLI error for ``exc`` raised while ``doing``, or None when it is not a GitHub/HTTP failure."""
        from github.GithubException import GithubException
        from requests.exceptions import ConnectionError, RequestException, Timeout

        if isinstance(exc, GithubException):
            message = self._message(exc)
            limited = rate_limit_error(exc.status, exc.headers, message, doing)
            if limited is not None:
                return limited
            detail = self._clean(message) or f"HTTP {exc.status}"
            if exc.status == 401:
                return UnavailableError(
                    f"GitHub refused the token while {doing}: {detail}",
                    hint="check GH_TOKEN / GITHUB_TOKEN (or `gh auth status`)",
                )
            if exc.status == 404:
                return UnavailableError(
                    f"GitHub answered 404 while {doing}: the repository or object does not exist, or the token "
                    "cannot see it"
                )
            if exc.status >= 500:
                return UnavailableError(f"GitHub answered {exc.status} while {doing}: {detail}")
            if exc.status == 403:
                return PermissionDenied(
                    f"GitHub refused (403) {doing}: {detail}",
                    hint="the token lacks a permission: a classic token needs `repo` (and `read:org` for team "
                    "owners); a fine-grained or app token needs Pull requests, Contents and Commit statuses: "
                    "write (Administration: read to see branch protection)",
                )
            return CoditectError(f"GitHub rejected {doing} ({exc.status}): {detail}")
        host = self.api_url.split("://", 1)[-1].split("/", 1)[0]
        tries = f"{1 + self.options.retries} attempt(s)"
        if isinstance(exc, Timeout) or (isinstance(exc, ConnectionError) and "timed out" in str(exc).lower()):
            return UnavailableError(
                f"GitHub ({host}) did not answer within {self.options.timeout:g} s while {doing} ({tries} for reads)",
                hint="try again later; CODITECT_GITHUB_TIMEOUT sets the per-request timeout",
            )
        if isinstance(exc, RequestException):
            return UnavailableError(
                f"cannot reach GitHub ({host}) while {doing}: {self._clean(type(exc).__name__)}"
            )
        return None

    def _raise(self, exc: Exception, doing: str) -> Exception:
        """What to raise for ``exc``: its CLI error, or ``exc`` itself when it is not a GitHub failure."""
        error = self._error(exc, doing)
        return exc if error is None else error

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        """Run one GitHub interaction; failures become CLI errors (reads were retried by urllib3 already)."""
        try:
            return fn()
        except Exception as exc:
            error = self._error(exc, doing)
            if error is None:
                raise
            raise error from None

    def _safe_post(self, doing: str, fn: Callable[[], T]) -> T:
        """A read-only call sent as POST (GraphQL): retried like a GET, a bounded number of times."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not self._transient(exc) or attempt >= self.options.retries:
                    error = self._error(exc, doing)
                    if error is None:
                        raise
                    raise error from None
            attempt += 1
            time.sleep(
                min(self.options.backoff * 2 ** (attempt - 1), self.options.backoff_max) if attempt > 1 else 0
            )

    def _pace(self) -> None:
        """Wait until ``write_interval`` s have passed since the last content-creating write (GitHub's guidance)."""
        wait = self._last_write + self.options.write_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _write(self, verb: str, path: str, payload: Mapping[str, Any]) -> Any:
        """A content-creating write: paced, sent once (never retried here). Raises PyGithub's exceptions."""
        self._pace()
        try:
            return self._client().requester.requestJsonAndCheck(verb, path, input=dict(payload))[1]
        finally:
            self._last_write = time.monotonic()

    # ---------------------------------------------------------------------------------- conditional GETs

    def _cache_file(self, key: str) -> Path | None:
        if self.options.cache_dir is None:
            return None
        return self.options.cache_dir / (hashlib.sha1(key.encode()).hexdigest() + ".json")

    def _read_cache(self, key: str) -> Any:
        """The JSON kept on disk for ``key`` (None when there is none, or it cannot be read)."""
        path = self._cache_file(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write_cache(self, key: str, entry: Any) -> None:
        """Keep ``entry`` on disk for ``key`` (replaced whole; a cache that cannot be written costs requests,
        nothing else)."""
        path = self._cache_file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass

    def _cached(self, key: str) -> tuple[str, dict[str, str], Any] | None:
        if key in self._etags:
            return self._etags[key]
        entry = self._read_cache(key)
        try:
            found = (str(entry["etag"]), dict(entry["headers"]), entry["body"])
        except (KeyError, TypeError, ValueError):
            return None
        self._etags[key] = found
        return found

    def _remember_etag(self, key: str, etag: str, headers: dict[str, str], body: Any) -> None:
        self._etags[key] = (etag, headers, body)
        self._write_cache(key, {"etag": etag, "headers": headers, "body": body})

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> tuple[dict[str, str], Any]:
        """``GET url`` (relative to the API base, or a ``Link`` URL) with ``If-None-Match`` when an ETag is known;
        a 304 answers from the cache."""
        requester = self._client().requester
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        key = (
            f"{self.api_url} {url}{query}"  # one cache may serve several hosts (GitHub, an Enterprise Server)
        )
        cached = self._cached(key)
        headers = {"If-None-Match": cached[0]} if cached else None
        got_headers, data = requester.requestJsonAndCheck(
            "GET", url, parameters=dict(params) if params else None, headers=headers
        )
        h = _lower(got_headers)
        if cached is not None and data is None:  # 304 Not Modified: an empty body
            self.conditional_hits += 1
            return cached[1], cached[2]
        self.fresh_reads += 1
        etag = h.get("etag")
        if etag:
            self._remember_etag(key, etag, {k: v for k, v in h.items() if k == "link"}, data)
        return h, data

    def _pages(self, path: str, params: Mapping[str, Any], key: str | None = None) -> list[Any]:
        """Every item of a paginated list (``key``: the list's field when the answer is an object)."""
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, Any] | None = {**params, "per_page": self.options.per_page}
        while url is not None:
            headers, data = self._get(url, query)
            chunk = (data or {}).get(key) if key else data
            items += list(chunk or [])
            url, query = _next_link(headers), None
        return items

    # ---------------------------------------------------------------------------------- GraphQL

    def _graphql(
        self, doing: str, query: str, variables: Mapping[str, Any], *, mutation: bool = False
    ) -> tuple[dict[str, Any], list[Any]]:
        """A GraphQL request: its ``data`` and its NOT_FOUND errors (a PR missing from a batch loses only itself).

        Rate limits (HTTP 200 with a ``RATE_LIMITED`` error) become :class:`UnavailableError` with the reset
        time; any other error is a :class:`CoditectError` naming GitHub's messages.
        """
        requester = self._client().requester

        def ask() -> tuple[dict[str, Any], Any]:
            return requester.requestJsonAndCheck(
                "POST", requester.graphql_url, input={"query": query, "variables": dict(variables)}
            )

        # A query is read-only: retried like a GET. A mutation is a write: sent once, like every write.
        headers, body = self._call(doing, ask) if mutation else self._safe_post(doing, ask)
        body = body if isinstance(body, dict) else {}
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        limited = [e for e in errors if str(e.get("type")) in _RATE_LIMIT_TYPES]
        if limited:
            raise graphql_rate_limit_error(headers, str(limited[0].get("message") or ""), doing)
        missing = [e for e in errors if str(e.get("type")) == "NOT_FOUND"]
        others = [e for e in errors if e not in missing]
        data = body.get("data")
        if others or not isinstance(data, dict):
            text = "; ".join(
                self._clean(str(e.get("message") or e.get("type") or e)) for e in others or errors
            )
            if missing and not others:
                raise UnavailableError(f"GitHub answered NOT_FOUND while {doing}: {text}")
            if any(str(e.get("type")) == "FORBIDDEN" for e in others):
                raise PermissionDenied(f"GitHub refused {doing}: {text}")
            raise CoditectError(f"GitHub's GraphQL API failed while {doing}: {text or 'no data'}")
        return data, missing

    # ---------------------------------------------------------------------------------- identity

    def viewer(self) -> str | None:
        """The login of the token's account, or None when GitHub will not say (asked once per run).

        ``GET /user`` first; an app installation token or Actions' ``GITHUB_TOKEN`` gets 403 (or 404) there, so
        GraphQL's ``viewer`` second; when both fail the identity is unknown, and GitHub decides.
        """
        if self._viewer_read:
            return self._viewer
        self._viewer_read = True
        try:
            _h, data = self._client().requester.requestJsonAndCheck("GET", "/user")
            self._viewer = str((data or {}).get("login") or "") or None
        except Exception as exc:
            if self._status(exc) not in (403, 404):
                raise self._raise(exc, "reading the token's account") from None
        if self._viewer is None:
            try:
                data, _missing = self._graphql(
                    "asking GraphQL who the token is", "query { viewer { login } }", {}
                )
                self._viewer = str((data.get("viewer") or {}).get("login") or "") or None
            except CoditectError:
                self._viewer = None
        if self._viewer is None:
            self.notes.append(
                "GitHub does not say which account the token is (an app or Actions token): reviews are "
                "submitted as whatever account GitHub assigns"
            )
        return self._viewer

    # ---------------------------------------------------------------------------------- proposals

    def _convert(self, repo: ForgeRepo, raw: Mapping[str, Any]) -> PullRequest:
        merged_at = raw.get("merged_at")
        state = pr_state("merged" if merged_at else ("closed" if raw.get("state") == "closed" else "open"))
        number = int(raw["number"])
        if raw.get("node_id"):
            self._node_ids[(self._slug(repo), number)] = str(raw["node_id"])
        head, base = raw.get("head") or {}, raw.get("base") or {}
        return PullRequest(
            repo=repo.id,
            number=number,
            base=str(base.get("ref")),
            head=str(head.get("ref")),
            title=str(raw.get("title") or ""),
            state=state,
            head_sha=head.get("sha"),
            body=str(raw.get("body") or ""),
            merge_commit=raw.get("merge_commit_sha") if merged_at else None,
            url=raw.get("html_url"),
            created=_iso(raw.get("created_at")),
            updated=_iso(raw.get("updated_at")),
            merged=_iso(merged_at),
            author=_login(raw.get("user")),
            draft=bool(raw.get("draft")),
        )

    def _read_pr(self, repo: ForgeRepo, number: int) -> PullRequest:
        slug = self._slug(repo)
        return self._call(
            f"reading #{number} of {slug}",
            lambda: self._convert(
                repo, self._client().requester.requestJsonAndCheck("GET", f"/repos/{slug}/pulls/{number}")[1]
            ),
        )

    def list_prs(self, repo: ForgeRepo, base: str) -> list[PullRequest]:
        """Every PR into ``base``: one paginated ``GET /pulls?base=…&state=all`` (cached for the command)."""
        slug = self._slug(repo)
        key = (slug, base)
        if key not in self._lists:

            def fetch() -> list[PullRequest]:
                raw = self._pages(f"/repos/{slug}/pulls", {"base": base, "state": "all"})
                return sorted((self._convert(repo, r) for r in raw), key=lambda p: p.number)

            self._lists[key] = self._call(f"listing the pull requests into {base} of {slug}", fetch)
        return list(self._lists[key])

    def find_pr(self, repo: ForgeRepo, base: str, head: str) -> PullRequest | None:
        """The open PR of ``head`` into ``base``: a fresh ``GET /pulls?head=owner:head&base=…``."""
        slug = self._slug(repo)
        owner = slug.split("/", 1)[0]

        def fetch() -> PullRequest | None:
            raw = self._pages(
                f"/repos/{slug}/pulls", {"base": base, "head": f"{owner}:{head}", "state": "open"}
            )
            for item in raw:
                pr = self._convert(repo, item)
                if pr.head == head:
                    return pr
            return None

        return self._call(f"looking for the pull request of {head} in {slug}", fetch)

    def open_pr(self, repo: ForgeRepo, spec: ProposalSpec) -> Opened:
        """Find, then create. A create that fails with 5xx or a timeout is followed by a fresh find: GitHub may
        have created the PR before failing, and a second POST would duplicate it."""
        from github.GithubException import GithubException

        slug = self._slug(repo)
        existing = next(
            (p for p in self.list_prs(repo, spec.base) if p.head == spec.head and p.state == "open"), None
        )
        if existing is not None:
            return Opened(existing, False)
        doing = f"opening the pull request of {spec.head} in {slug}"
        payload = {"base": spec.base, "head": spec.head, "title": spec.title, "body": spec.body}
        try:
            raw = self._write("POST", f"/repos/{slug}/pulls", payload)
        except Exception as exc:
            duplicate = (
                isinstance(exc, GithubException)
                and exc.status == 422
                and "already exists" in str(exc.data).lower()
            )
            if not (self._transient(exc) or duplicate):
                raise self._raise(exc, doing) from None
            found = self.find_pr(repo, spec.base, spec.head)
            if found is None:
                error = self._error(exc, doing)
                if error is None:
                    raise
                error.hint = "no pull request was created; `coditect pr open` is safe to run again"
                raise error from None
            if not duplicate:
                self.notes.append(
                    f"GitHub failed while creating the PR of {spec.head} in {slug}, but it exists "
                    f"(#{found.number}): not created twice"
                )
            self._remember(repo, spec.base, found)
            return Opened(found, not duplicate)
        pr = self._convert(repo, raw)
        self._remember(repo, spec.base, pr)
        return Opened(pr, True)

    def _remember(self, repo: ForgeRepo, base: str, pr: PullRequest) -> None:
        key = (repo.slug or "", base)
        if key in self._lists:
            self._lists[key] = sorted(
                [p for p in self._lists[key] if p.number != pr.number] + [pr], key=lambda p: p.number
            )

    # ---------------------------------------------------------------------------------- rules

    def branch_rules(self, repo: ForgeRepo, branch: str) -> BranchRules:
        """``branch``'s branch protection and active rulesets, and the repository's merge methods, merged;
        read once per run (``GET /repos/o/r``, ``…/branches/b/protection``, ``…/rules/branches/b``).

        A 404 on protection means "not protected"; a 403 (reading protection needs admin rights) is noted and
        the rulesets (readable with read access) still count.
        """
        slug = self._slug(repo)
        key = (slug, branch)
        if key in self._rules:
            return self._rules[key]
        read: list[str] = []
        notes: list[str] = []
        required: dict[str, None] = {}
        strict = linear = queue = code_owners = False
        approvals = 0
        methods: set[MergeStrategy] | None = None
        quoted = quote(branch, safe="")

        def optional(what: str, path: str) -> Any:
            try:
                return self._get(path)[1]
            except Exception as exc:
                status = self._status(exc)
                if status == 404:
                    return None
                if (
                    status == 403
                    and rate_limit_error(403, getattr(exc, "headers", None), self._message(exc), what) is None
                ):
                    notes.append(
                        f"cannot read the {what} of {branch} in {slug} (403: the token lacks the permission)"
                    )
                    return None
                raise self._raise(exc, f"reading the {what} of {branch} in {slug}") from None

        if slug not in self._settings:  # one read per repository, whatever the number of branches
            self._settings[slug] = optional("repository settings", f"/repos/{slug}")
        meta = self._settings[slug]
        if isinstance(meta, dict) and any(k in meta for k in ("allow_squash_merge", "allow_merge_commit")):
            read.append("repository")
            methods = {strategy for strategy, field in _METHOD_FIELDS if meta.get(field, True)}
        protection = optional("branch protection", f"/repos/{slug}/branches/{quoted}/protection")
        if isinstance(protection, dict):
            read.append("protection")
            checks = protection.get("required_status_checks") or {}
            for name in checks.get("contexts") or []:
                required[str(name)] = None
            for item in checks.get("checks") or []:
                required[str(item.get("context"))] = None
            strict = strict or bool(checks.get("strict"))
            reviews = protection.get("required_pull_request_reviews") or {}
            approvals = max(approvals, int(reviews.get("required_approving_review_count") or 0))
            code_owners = code_owners or bool(reviews.get("require_code_owner_reviews"))
            linear = linear or bool((protection.get("required_linear_history") or {}).get("enabled"))
        rules = optional("rulesets", f"/repos/{slug}/rules/branches/{quoted}")
        if isinstance(rules, list):
            read.append("rulesets")
            for rule in rules:
                kind = str(rule.get("type"))
                params = rule.get("parameters") or {}
                if kind == "required_status_checks":
                    for item in params.get("required_status_checks") or []:
                        required[str(item.get("context"))] = None
                    strict = strict or bool(params.get("strict_required_status_checks_policy"))
                elif kind == "pull_request":
                    approvals = max(approvals, int(params.get("required_approving_review_count") or 0))
                    code_owners = code_owners or bool(params.get("require_code_owner_review"))
                    allowed = params.get("allowed_merge_methods")
                    if allowed:
                        mine = {m for m in STRATEGIES if m in {str(a).lower() for a in allowed}}
                        methods = mine if methods is None else methods & mine
                elif kind == "merge_queue":
                    queue = True
                elif kind == "required_linear_history":
                    linear = True
        found = BranchRules(
            branch=branch,
            read=tuple(read),
            required_checks=tuple(required),
            strict=strict,
            required_approvals=approvals,
            code_owner_reviews=code_owners,
            merge_queue=queue,
            merge_methods=None if methods is None else tuple(m for m in STRATEGIES if m in methods),
            linear_history=linear,
            notes=tuple(notes),
        )
        self.notes += [n for n in notes if n not in self.notes]
        self._rules[key] = found
        return found

    def team_members(self, repo: ForgeRepo, team: str) -> frozenset[str] | None:
        """The members of ``@org/team`` (``GET /orgs/{org}/teams/{team}/members``, paginated), lower-case; None
        (and a note) when the token cannot read them."""
        key = team.strip().lstrip("@").lower()
        if key in self._teams:
            return self._teams[key]
        org, _, slug = key.partition("/")
        try:
            members = self._pages(f"/orgs/{org}/teams/{slug}/members", {})
            found: frozenset[str] | None = frozenset(str(m.get("login")).lower() for m in members if m)
        except Exception as exc:
            if self._status(exc) not in (403, 404):
                raise self._raise(exc, f"reading the members of {team}") from None
            found = None
            self.notes.append(
                f"cannot read the members of {team} (a token needs read:org, or Members: read): its approvals "
                "are not counted"
            )
        self._teams[key] = found
        return found

    # ---------------------------------------------------------------------------------- details

    def pr_details(self, repo: ForgeRepo, prs: Sequence[PullRequest]) -> dict[int, PrDetails]:
        """One GraphQL query per :data:`DETAILS_BATCH` PRs: reviews, checks, state, mergeability, changed files;
        judged against the base branch's rules. A PR GitHub cannot find is left out (with a note), not the
        batch; mergeability GitHub has not computed yet is asked once more."""
        out: dict[int, PrDetails] = {}
        slug = self._slug(repo)
        owner, name = slug.split("/", 1)
        bases = {p.number: p.base for p in prs}
        numbers = list(dict.fromkeys(p.number for p in prs))
        nodes: dict[int, Mapping[str, Any]] = {}
        for start in range(0, len(numbers), DETAILS_BATCH):
            nodes.update(self._detail_nodes(slug, owner, name, numbers[start : start + DETAILS_BATCH]))
        open_numbers = {p.number for p in prs if p.state == "open"}
        unknown = [n for n, node in nodes.items() if n in open_numbers and node.get("mergeable") == "UNKNOWN"]
        if unknown:  # GitHub computes mergeability in the background: the first read often says UNKNOWN
            time.sleep(min(self.options.backoff, self.options.backoff_max))
            nodes.update(self._detail_nodes(slug, owner, name, unknown))
        for number, node in nodes.items():
            rules = self.branch_rules(repo, bases[number]) if bases.get(number) else None
            out[number] = self._details(repo, number, node, rules)
        return out

    def _detail_nodes(
        self, slug: str, owner: str, name: str, batch: Sequence[int]
    ) -> dict[int, Mapping[str, Any]]:
        data, missing = self._graphql(
            f"reading reviews and checks of {len(batch)} pull request(s) of {slug}",
            details_query(batch),
            {"owner": owner, "name": name},
        )
        repository = data.get("repository")
        if repository is None:
            raise UnavailableError(
                f"GitHub cannot find {slug} (GraphQL NOT_FOUND): it does not exist, or the token cannot see it"
            )
        if slug not in self._settings and "squashMergeAllowed" in repository:
            # The repository's merge methods came with the details: no REST read of the settings needed.
            self._settings[slug] = {
                "allow_squash_merge": bool(repository.get("squashMergeAllowed")),
                "allow_merge_commit": bool(repository.get("mergeCommitAllowed")),
                "allow_rebase_merge": bool(repository.get("rebaseMergeAllowed")),
            }
        out: dict[int, Mapping[str, Any]] = {}
        for number in batch:
            node = repository.get(f"pr{number}")
            if node is None:
                self.notes.append(
                    f"GitHub did not find #{number} of {slug}: its reviews and checks are unknown"
                )
                continue
            out[number] = node
            rollup = self._rollup(node)
            contexts = rollup.get("contexts") or {}
            page = contexts.get("pageInfo") or {}
            if page.get("hasNextPage"):
                more = self._more_contexts(
                    slug, owner, name, str(rollup.get("_oid")), str(page.get("endCursor"))
                )
                contexts["nodes"] = list(contexts.get("nodes") or []) + more
        del missing  # reported per PR above
        return out

    @staticmethod
    def _rollup(node: Mapping[str, Any]) -> dict[str, Any]:
        commits = (node.get("commits") or {}).get("nodes") or []
        commit = (commits[0].get("commit") or {}) if commits else {}
        rollup = commit.get("statusCheckRollup") or {}
        return {**rollup, "_oid": commit.get("oid")} if rollup else {}

    def _more_contexts(self, slug: str, owner: str, name: str, oid: str, cursor: str) -> list[Any]:
        """The check contexts of commit ``oid`` after the first 100 (a failing check must not hide there)."""
        out: list[Any] = []
        after: str | None = cursor
        while after:
            data, _missing = self._graphql(
                f"reading more checks of {oid[:12]} in {slug}",
                CONTEXTS_QUERY,
                {"owner": owner, "name": name, "oid": oid, "after": after},
            )
            obj = (data.get("repository") or {}).get("object") or {}
            contexts = ((obj.get("statusCheckRollup") or {}).get("contexts")) or {}
            out += list(contexts.get("nodes") or [])
            page = contexts.get("pageInfo") or {}
            after = str(page.get("endCursor")) if page.get("hasNextPage") else None
        return out

    def _details(
        self, repo: ForgeRepo, number: int, node: Mapping[str, Any], rules: BranchRules | None
    ) -> PrDetails:
        reviews: list[Review] = []
        for item in (node.get("reviews") or {}).get("nodes") or []:
            state = _REVIEW_STATES.get(str(item.get("state")))
            if state is None:
                continue  # dismissed or pending reviews do not count
            commit = (item.get("commit") or {}).get("oid")
            reviews.append(
                Review(_login(item.get("author")), state, _iso(item.get("submittedAt")), "", commit)
            )
        enforced = rules is not None and rules.known
        wanted = set(rules.required_checks) if rules is not None else set()
        seen: dict[str, CheckStatus] = {}
        checks: list[Check] = []
        for ctx in (self._rollup(node).get("contexts") or {}).get("nodes") or []:
            if ctx.get("__typename") == "CheckRun":
                raw_name = str(ctx.get("name"))
                if str(ctx.get("status")) != "COMPLETED":
                    status: CheckStatus = "pending"
                else:
                    status = "success" if str(ctx.get("conclusion")) in _GOOD_CONCLUSIONS else "failure"
                name, when, url = raw_name, ctx.get("completedAt"), ctx.get("detailsUrl")
            else:
                raw_name = str(ctx.get("context"))
                status = _STATUS_STATES.get(str(ctx.get("state", "")).lower(), "pending")
                name, when, url = (
                    raw_name.removeprefix(STATUS_CONTEXT_PREFIX),
                    ctx.get("createdAt"),
                    ctx.get("targetUrl"),
                )
            ours = raw_name.startswith(STATUS_CONTEXT_PREFIX)
            required = None if (ours and raw_name not in wanted) or not enforced else raw_name in wanted
            seen[raw_name] = status
            checks.append(Check(name, status, _iso(when), None, url, required))
        mergeable = {"MERGEABLE": True, "CONFLICTING": False}.get(str(node.get("mergeable")))
        files_node = node.get("files") or {}
        files: tuple[str, ...] | None = tuple(str(f.get("path")) for f in files_node.get("nodes") or [])
        if files is not None and int(files_node.get("totalCount") or 0) > len(files):
            files = self._all_files(repo, number)
        blockers: list[str] = []
        if node.get("isDraft"):
            blockers.append("it is a draft (GitHub does not merge drafts)")
        if enforced and rules is not None:
            waiting = [
                f"{c} ({seen.get(c, 'missing')})" for c in rules.required_checks if seen.get(c) != "success"
            ]
            if waiting:
                blockers.append(f"required check(s) of {rules.branch} not passed yet: {', '.join(waiting)}")
            decision = str(node.get("reviewDecision") or "")
            if decision == "REVIEW_REQUIRED":
                who = " including the code owners" if rules.code_owner_reviews else ""
                many = max(1, rules.required_approvals)
                blockers.append(
                    f"GitHub's rule: {rules.branch} requires {many} approving review(s){who} "
                    "(reviewDecision REVIEW_REQUIRED)"
                )
            elif decision == "CHANGES_REQUESTED":
                blockers.append(
                    "GitHub's rule: a reviewer requested changes (reviewDecision CHANGES_REQUESTED)"
                )
            merge_state = str(node.get("mergeStateStatus") or "")
            if merge_state == "BEHIND" and rules.strict:
                blockers.append(f"behind {rules.branch}, whose protection requires branches to be up to date")
            if merge_state == "BLOCKED" and not blockers:
                blockers.append(
                    "GitHub reports the merge blocked by the branch's rules (mergeStateStatus BLOCKED)"
                )
        return PrDetails(
            number, node.get("headRefOid"), tuple(reviews), tuple(checks), mergeable, files, tuple(blockers)
        )

    def _all_files(self, repo: ForgeRepo, number: int) -> tuple[str, ...]:
        """Every changed file of a large PR (``GET /pulls/n/files``, paginated; GitHub stops at 3000)."""
        slug = self._slug(repo)
        return self._call(
            f"listing the files of #{number} of {slug}",
            lambda: tuple(
                str(f.get("filename")) for f in self._pages(f"/repos/{slug}/pulls/{number}/files", {})
            ),
        )

    # ------------------------------------------------------------------------------------------ reviews

    def reviews(self, repo: ForgeRepo, pr: PullRequest) -> list[Review]:
        """Every review of ``pr`` (``GET /pulls/n/reviews``, paginated), dismissed and pending ones left out; a
        deleted reviewer (``user: null``) is ``@ghost``."""
        slug = self._slug(repo)

        def fetch() -> list[Review]:
            out: list[Review] = []
            for raw in self._pages(f"/repos/{slug}/pulls/{pr.number}/reviews", {}):
                state = _REVIEW_STATES.get(str(raw.get("state")))
                if state is not None:
                    out.append(
                        Review(
                            _login(raw.get("user")),
                            state,
                            _iso(raw.get("submitted_at")),
                            str(raw.get("body") or ""),
                            raw.get("commit_id"),
                            int(raw["id"]) if raw.get("id") is not None else None,
                            raw.get("html_url"),
                        )
                    )
            return out

        return self._call(f"reading the reviews of #{pr.number} of {slug}", fetch)

    def review_pr(
        self, repo: ForgeRepo, pr: PullRequest, reviewer: str, state: ReviewState, body: str
    ) -> Review:
        """Submit a review of ``pr``'s head commit as the token's account, which must be ``reviewer`` (or, for a
        team owner, one of its members) and must not be the PR's author: GitHub refuses self-approval (422)."""
        from github.GithubException import GithubException

        slug = self._slug(repo)
        login = self.viewer()
        hint = (
            f"approve with the code owner's own token: GH_TOKEN=<{reviewer}'s token> coditect pr approve "
            f"... --as {reviewer}"
        )
        if login is not None:
            if is_team(reviewer):
                members = self.team_members(repo, reviewer)
                if members is not None and login.lower() not in members:
                    raise UsageError(
                        f"on GitHub a review is given by the token's account (@{login}), which is not a member "
                        f"of {reviewer}",
                        hint=hint,
                    )
            elif reviewer.startswith("@") and not same_owner(reviewer, login):
                raise UsageError(
                    f"on GitHub a review is given by the token's account (@{login}), not by {reviewer}",
                    hint=hint,
                )
            if pr.author and same_owner(pr.author, login) and state != "commented":
                raise UsageError(
                    f"GitHub does not let @{login} review its own pull request #{pr.number} of {slug} "
                    f"(the token that opened it); approvals must come from the code owner {reviewer}",
                    hint=hint,
                )
        text = body or f"{state.replace('_', ' ').capitalize()} by {reviewer} (coditect)."
        payload: dict[str, Any] = {"body": text, "event": _EVENTS[state]}
        if pr.head_sha:
            payload["commit_id"] = pr.head_sha  # the approval is of the head that was looked at
        doing = f"reviewing #{pr.number} of {slug}"
        try:
            raw = self._write("POST", f"/repos/{slug}/pulls/{pr.number}/reviews", payload)
        except Exception as exc:
            if (
                isinstance(exc, GithubException)
                and exc.status == 422
                and _SELF_REVIEW.search(self._message(exc))
            ):
                raise UsageError(
                    f"GitHub does not let the token's account review its own pull request #{pr.number} of "
                    f"{slug}: {self._clean(self._message(exc))}",
                    hint=hint,
                ) from None
            raise self._raise(exc, doing) from None
        return Review(
            _login(raw.get("user")),
            state,
            _iso(raw.get("submitted_at")),
            text,
            raw.get("commit_id") or pr.head_sha,
        )

    # ------------------------------------------------------------------------------------------ checks

    def checks(self, repo: ForgeRepo, sha: str) -> list[Check]:
        """Every commit status (``GET /commits/{sha}/status``, every page: the latest per context) and check run
        (``GET /commits/{sha}/check-runs``, every page) of ``sha``."""
        slug = self._slug(repo)
        return self._call(
            f"reading the checks of {sha[:12]} in {slug}",
            lambda: [Check(e.name, e.status, e.time, None, e.url) for e in self._evidence(slug, sha, False)],
        )

    def _evidence(self, slug: str, sha: str, logs: bool) -> list[CheckEvidence]:
        """The statuses and check runs of ``sha``; with ``logs``, a failing run without ``output.text`` gets its
        annotations read (``GET /check-runs/{id}/annotations``) as its log excerpt."""
        out: list[CheckEvidence] = []
        for status in self._pages(f"/repos/{slug}/commits/{sha}/status", {}, key="statuses"):
            out.append(
                CheckEvidence(
                    str(status.get("context")).removeprefix(STATUS_CONTEXT_PREFIX),
                    _STATUS_STATES.get(str(status.get("state")), "pending"),
                    "status",
                    str(status.get("description") or ""),
                    "",
                    status.get("target_url"),
                    int(status["id"]) if status.get("id") is not None else None,
                    _iso(status.get("updated_at")),
                )
            )
        for run in self._pages(f"/repos/{slug}/commits/{sha}/check-runs", {}, key="check_runs"):
            if run.get("status") != "completed":
                state: CheckStatus = "pending"
            else:
                state = "success" if str(run.get("conclusion")).upper() in _GOOD_CONCLUSIONS else "failure"
            output = run.get("output") or {}
            summary = " - ".join(
                str(x).strip() for x in (output.get("title"), output.get("summary")) if x and str(x).strip()
            )
            log = str(output.get("text") or "").strip()
            run_id = int(run["id"]) if run.get("id") is not None else None
            if logs and state == "failure" and not log and run_id and output.get("annotations_count"):
                notes = self._pages(f"/repos/{slug}/check-runs/{run_id}/annotations", {})
                log = "\n".join(_annotation(a) for a in notes if isinstance(a, Mapping))
            out.append(
                CheckEvidence(
                    str(run.get("name")),
                    state,
                    "check_run",
                    summary,
                    log[-LOG_EXCERPT:],
                    run.get("details_url") or run.get("html_url"),
                    run_id,
                    _iso(run.get("completed_at")),
                )
            )
        return out

    # ------------------------------------------------------------------------------------------ watching

    def review_comments(self, repo: ForgeRepo, pr: PullRequest) -> list[ReviewComment]:
        """Every review comment on ``pr``'s diff (``GET /pulls/n/comments``, paginated), with file and line."""
        slug = self._slug(repo)

        def fetch() -> list[ReviewComment]:
            out: list[ReviewComment] = []
            for raw in self._pages(f"/repos/{slug}/pulls/{pr.number}/comments", {}):
                line = raw.get("line") or raw.get("original_line")
                out.append(
                    ReviewComment(
                        int(raw.get("id") or 0),
                        _login(raw.get("user")),
                        str(raw.get("body") or ""),
                        raw.get("path"),
                        int(line) if line else None,
                        raw.get("commit_id"),
                        _iso(raw.get("created_at")),
                        raw.get("html_url"),
                    )
                )
            return out

        return self._call(f"reading the review comments of #{pr.number} of {slug}", fetch)

    def activity(self, repo: ForgeRepo, pr: PullRequest) -> PrActivity:
        """Reviews, review comments and the head's checks (with their evidence) of an open ``pr``: four
        conditional GETs (plus the annotations of a failing check run without a log), each answered 304 and free
        of rate limit when nothing changed."""
        slug = self._slug(repo)
        before = self.fresh_reads
        reviews = self.reviews(repo, pr)
        comments = self.review_comments(repo, pr)
        sha = pr.head_sha or ""
        checks = (
            self._call(f"reading the checks of {sha[:12]} in {slug}", lambda: self._evidence(slug, sha, True))
            if sha
            else []
        )
        return PrActivity(
            pr.number, pr.head_sha, tuple(reviews), tuple(comments), tuple(checks), self.fresh_reads != before
        )

    def watch(
        self, repo: ForgeRepo, prs: Sequence[PullRequest]
    ) -> tuple[dict[int, PrDetails], dict[int, PrActivity]]:
        """The details of ``prs`` and the activity of the open ones, for a poller (the autopilot).

        Only conditional GETs are sent first: each open PR's activity (:meth:`activity`) and the head of each
        base branch. The details (one GraphQL query per batch: GraphQL has no conditional requests) and the base
        branch's rules are read again only when something in those answers, or in the PR list, changed since
        the details were last read (kept in ``cache_dir`` across runs): a pass over an unchanged repository
        costs no request counted against the rate limit. (A change of branch protection alone is seen with the
        next change of the PRs: reading protection again would cost a request per pass on an unprotected
        branch, whose 404 has no ETag.)"""
        slug = self._slug(repo)
        activity = {p.number: self.activity(repo, p) for p in prs if p.state == "open" and p.head_sha}
        bases = sorted({p.base for p in prs})
        seen: dict[str, str | None] = {}
        for base in bases:
            path = f"/repos/{slug}/git/ref/heads/{quote(base, safe='')}"
            ref = self._call(f"reading the head of {base} in {slug}", partial(self._optional_get, path))
            head = ((ref or {}).get("object") or {}).get("sha")
            seen[base] = head
        fingerprint = hashlib.sha256(
            json.dumps(
                {
                    "prs": [p.to_json() for p in prs],
                    "activity": {n: _plain(a, fresh=False) for n, a in sorted(activity.items())},
                    "bases": seen,
                },
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        key = f"{self.api_url} watch {slug} " + ",".join(str(p.number) for p in prs)
        kept = self._watched.get(key) or self._kept_details(key)
        if kept is not None and kept[0] == fingerprint and set(kept[1]) == {p.number for p in prs}:
            return dict(kept[1]), activity
        details = self.pr_details(repo, prs) if prs else {}
        if all(d.mergeable is not None for n, d in details.items() if n in activity):
            self._keep_details(key, fingerprint, details)  # an UNKNOWN mergeability is asked again next time
        return details, activity

    def _optional_get(self, path: str) -> Any:
        """``GET path`` conditionally; None for a 404."""
        try:
            return self._get(path)[1]
        except Exception as exc:
            if self._status(exc) == 404:
                return None
            raise

    def _kept_details(self, key: str) -> tuple[str, dict[int, PrDetails]] | None:
        entry = self._read_cache(key)
        try:
            found = (str(entry["fingerprint"]), {int(n): _details_of(d) for n, d in entry["details"].items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        self._watched[key] = found
        return found

    def _keep_details(self, key: str, fingerprint: str, details: dict[int, PrDetails]) -> None:
        self._watched[key] = (fingerprint, dict(details))
        self._write_cache(
            key, {"fingerprint": fingerprint, "details": {n: _plain(d) for n, d in details.items()}}
        )

    def record_check(
        self, repo: ForgeRepo, sha: str, name: str, status: CheckStatus, log: str | None = None
    ) -> Check:
        """A commit status ``coditect/<name>`` (``POST /statuses/{sha}``; a repeat only updates it)."""
        slug = self._slug(repo)
        payload = {
            "state": status,
            "context": f"{STATUS_CONTEXT_PREFIX}{name}",
            "description": f"gate {name}: {status}",
        }
        self._call(
            f"recording check {name} on {sha[:12]} in {slug}",
            lambda: self._write("POST", f"/repos/{slug}/statuses/{sha}", payload),
        )
        return Check(name, status, None, log)

    # ------------------------------------------------------------------------------------------ merging

    def merge_pr(
        self,
        repo: ForgeRepo,
        pr: PullRequest,
        strategy: MergeStrategy,
        *,
        title: str | None = None,
        body: str | None = None,
        expected_head: str | None = None,
    ) -> Merged:
        """``PUT /pulls/n/merge`` with ``sha`` = ``expected_head``. After a 5xx the PR is read again first; a
        "Base branch was modified" 405 (another merge into the same base just landed: what a checkpoint's chain
        of merges meets) is retried a bounded number of times; a branch that requires the merge queue gets the
        PR enqueued and its merge group awaited."""
        from github.GithubException import GithubException

        if pr.state == "merged":
            return Merged(pr, pr.merge_commit or "", strategy, already=True)
        slug = self._slug(repo)
        rules = self.branch_rules(repo, pr.base)
        if rules.merge_queue:
            return self._through_queue(repo, pr, strategy, expected_head)
        arguments: dict[str, Any] = {"merge_method": strategy}
        if title:
            arguments["commit_title"] = title if strategy == "merge" else f"{title} (#{pr.number})"
        if body is not None:
            arguments["commit_message"] = body
        if expected_head:
            arguments["sha"] = expected_head
        doing = f"merging #{pr.number} of {slug}"
        attempt = 0
        while True:
            try:
                result = self._write("PUT", f"/repos/{slug}/pulls/{pr.number}/merge", arguments)
                break
            except Exception as exc:
                message = self._clean(self._message(exc))
                if (
                    isinstance(exc, GithubException)
                    and exc.status == 405
                    and "merge queue" in message.lower()
                ):
                    return self._through_queue(repo, pr, strategy, expected_head)
                if (
                    isinstance(exc, GithubException)
                    and exc.status == 405
                    and "base branch was modified" in message.lower()
                    and attempt < self.options.base_retries
                ):
                    attempt += 1
                    time.sleep(min(self.options.backoff * 2 ** (attempt - 1), self.options.backoff_max))
                    continue
                if isinstance(exc, GithubException) and exc.status in (405, 409):
                    raise CheckFailed(f"GitHub will not merge #{pr.number} of {slug}: {message}") from None
                if self._transient(exc):
                    again = self._read_pr(repo, pr.number)
                    if again.state == "merged":
                        return Merged(again, again.merge_commit or "", strategy)
                raise self._raise(exc, doing) from None
        if attempt:
            self.notes.append(
                f"#{pr.number} of {slug}: GitHub said its base was modified {attempt} time(s); merged on retry"
            )
        if not result.get("merged"):
            raise CheckFailed(
                f"GitHub did not merge #{pr.number} of {slug}: {self._clean(str(result.get('message') or ''))}"
            )
        now = _iso(datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        merged_pr = replace(pr, state="merged", merge_commit=result.get("sha"), merged=now, updated=now)
        return Merged(merged_pr, str(result.get("sha")), strategy)

    def _through_queue(
        self, repo: ForgeRepo, pr: PullRequest, strategy: MergeStrategy, expected_head: str | None
    ) -> Merged:
        """Enqueue ``pr`` (GraphQL ``enqueuePullRequest``) and wait, at most ``queue_wait`` s, until its merge
        group merged it (or GitHub took it out of the queue: its merge group failed)."""
        slug = self._slug(repo)
        owner, name = slug.split("/", 1)
        node_id = self._node_ids.get((slug, pr.number))
        if node_id is None:
            self._read_pr(repo, pr.number)
            node_id = self._node_ids.get((slug, pr.number))
        if not node_id:
            raise UnavailableError(
                f"GitHub did not give the node id of #{pr.number} of {slug}: cannot enqueue it"
            )
        variables: dict[str, Any] = {"id": node_id}
        if expected_head:
            variables["head"] = expected_head
        self._pace()
        try:
            data, _missing = self._graphql(
                f"enqueueing #{pr.number} of {slug} in the merge queue",
                ENQUEUE_MUTATION,
                variables,
                mutation=True,
            )
        finally:
            self._last_write = time.monotonic()
        entry = ((data.get("enqueuePullRequest") or {}).get("mergeQueueEntry")) or {}
        deadline = time.monotonic() + self.options.queue_wait
        state = str(entry.get("state") or "QUEUED")
        while True:
            data, _missing = self._graphql(
                f"watching #{pr.number} of {slug} in the merge queue",
                QUEUE_QUERY,
                {"owner": owner, "name": name, "number": pr.number},
            )
            node = (data.get("repository") or {}).get("pullRequest") or {}
            if node.get("merged"):
                commit = str((node.get("mergeCommit") or {}).get("oid") or "")
                self.notes.append(
                    f"#{pr.number} of {slug} merged through GitHub's merge queue (the queue's merge method applies)"
                )
                now = _iso(datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
                return Merged(
                    replace(pr, state="merged", merge_commit=commit, merged=now, updated=now),
                    commit,
                    strategy,
                )
            queued = node.get("mergeQueueEntry")
            if queued is None or str(node.get("state")) != "OPEN":
                raise CheckFailed(
                    f"GitHub's merge queue took #{pr.number} of {slug} out without merging it (last state: {state}; "
                    "its merge group's checks failed, or it conflicted)"
                )
            state = str(queued.get("state") or state)
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"#{pr.number} of {slug} is still in GitHub's merge queue ({state}) after "
                    f"{self.options.queue_wait:g} s",
                    hint="run the command again with --continue once the queue merged it "
                    "(CODITECT_GITHUB_QUEUE_WAIT sets the wait)",
                )
            time.sleep(self.options.queue_poll)

    def comment_pr(self, repo: ForgeRepo, pr: PullRequest, body: str) -> Comment:
        """``POST /issues/n/comments``."""
        slug = self._slug(repo)
        raw = self._call(
            f"commenting on #{pr.number} of {slug}",
            lambda: self._write("POST", f"/repos/{slug}/issues/{pr.number}/comments", {"body": body}),
        )
        return Comment(
            int(raw.get("id") or 0),
            _login(raw.get("user")),
            str(raw.get("body") or ""),
            _iso(raw.get("created_at")),
            raw.get("html_url"),
        )

    # ------------------------------------------------------------------------------------------ releases

    def _tag_commit(self, repo: ForgeRepo, tag: str) -> str | None:
        """The commit tag ``tag`` points at on GitHub (annotated tags peeled), or None when there is no such tag."""
        slug = self._slug(repo)
        requester = self._client().requester
        try:
            _h, ref = requester.requestJsonAndCheck(
                "GET", f"/repos/{slug}/git/ref/tags/{quote(tag, safe='')}"
            )
        except Exception as exc:
            if self._status(exc) == 404:
                return None
            raise self._raise(exc, f"reading tag {tag} of {slug}") from None
        obj = (ref or {}).get("object") or {}
        for _depth in range(5):
            if obj.get("type") != "tag":
                break
            url = f"/repos/{slug}/git/tags/{obj.get('sha')}"
            try:
                _h, tagged = requester.requestJsonAndCheck("GET", url)
            except Exception as exc:
                raise self._raise(exc, f"reading tag {tag} of {slug}") from None
            obj = (tagged or {}).get("object") or {}
        return str(obj.get("sha")) if obj.get("sha") else None

    def release(self, repo: ForgeRepo, tag: str, sha: str, title: str, notes: str = "") -> Release:
        """A GitHub release of ``tag`` on ``sha``. GitHub ignores ``target_commitish`` when the tag exists
        already, so the tag is read first: on another commit the release is refused (no release on a commit
        that was not the one asked for); the commit reported is the tag's."""
        slug = self._slug(repo)
        doing = f"releasing {tag} of {slug}"
        tagged = self._tag_commit(repo, tag)
        if tagged is not None and tagged != sha:
            raise RefusedError(
                f"tag {tag} of {slug} already points at {tagged[:12]}, not {sha[:12]}: GitHub would publish the "
                "release there (it ignores target_commitish for an existing tag)",
                hint="check which commit the tag should be on; coditect never moves a tag",
            )

        def existing() -> Release | None:
            try:
                _h, found = self._client().requester.requestJsonAndCheck(
                    "GET", f"/repos/{slug}/releases/tags/{quote(tag, safe='')}"
                )
            except Exception as exc:
                if self._status(exc) == 404:
                    return None
                raise
            return Release(tag, tagged or sha, False, (found or {}).get("html_url"))

        before = self._call(doing, existing)
        if before is not None:
            return before
        payload: dict[str, Any] = {"tag_name": tag, "name": title, "body": notes}
        if tagged is None:
            payload["target_commitish"] = sha
        try:
            created = self._write("POST", f"/repos/{slug}/releases", payload)
        except Exception as exc:
            if self._transient(exc):
                after = self._call(doing, existing)
                if after is not None:
                    return Release(tag, after.sha, True, after.url)
            raise self._raise(exc, doing) from None
        return Release(tag, tagged or sha, True, created.get("html_url"))


LOG_EXCERPT = 4000
"""The last characters of a check run's ``output.text`` (or annotations) kept as its log excerpt."""


def _annotation(note: Mapping[str, Any]) -> str:
    """A check run annotation as one log line: ``path:line: [level] title: message``."""
    where = str(note.get("path") or "")
    if note.get("start_line"):
        where += f":{note.get('start_line')}"
    level = f"[{note.get('annotation_level')}] " if note.get("annotation_level") else ""
    title = f"{note.get('title')}: " if note.get("title") else ""
    return f"{where}: {level}{title}{note.get('message') or ''}".strip()


def _plain(value: Any, *, fresh: bool = True) -> Any:
    """A dataclass value as JSON-ready data (``fresh=False`` leaves out a :class:`PrActivity`'s ``fresh``)."""
    import dataclasses

    data = dataclasses.asdict(value)
    if not fresh:
        data.pop("fresh", None)
    return data


def _details_of(data: Mapping[str, Any]) -> PrDetails:
    """A :class:`PrDetails` from what :func:`_plain` made of one."""
    files = data.get("files")
    return PrDetails(
        int(data["number"]),
        data.get("head_sha"),
        tuple(Review(**r) for r in data.get("reviews") or []),
        tuple(Check(**c) for c in data.get("checks") or []),
        data.get("mergeable"),
        None if files is None else tuple(files),
        tuple(data.get("blockers") or []),
    )


_FRAGMENT = """
fragment coditectContexts on StatusCheckRollupContextConnection {
  pageInfo { hasNextPage endCursor }
  nodes {
    __typename
    ... on StatusContext { context state targetUrl createdAt }
    ... on CheckRun { name status conclusion detailsUrl completedAt }
  }
}
fragment coditectPr on PullRequest {
  number
  headRefOid
  isDraft
  mergeable
  mergeStateStatus
  reviewDecision
  files(first: 100) { totalCount nodes { path } }
  reviews(last: 100) { nodes { author { login } state submittedAt commit { oid } } }
  commits(last: 1) {
    nodes { commit { oid statusCheckRollup { state contexts(first: 100) { ...coditectContexts } } } }
  }
}
"""

CONTEXTS_QUERY = """query CoditectContexts($owner: String!, $name: String!, $oid: GitObjectID!, $after: String) {
  repository(owner: $owner, name: $name) {
    object(oid: $oid) {
      ... on Commit { statusCheckRollup { contexts(first: 100, after: $after) { ...coditectContexts } } }
    }
  }
}
""" + _FRAGMENT.split("fragment coditectPr", 1)[0]
"""The check contexts of one commit after a cursor (the details query reads the first 100)."""

ENQUEUE_MUTATION = """mutation CoditectEnqueue($id: ID!, $head: GitObjectID) {
  enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $head}) { mergeQueueEntry { id state position } }
}
"""

QUEUE_QUERY = """query CoditectQueue($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) { state merged mergeCommit { oid } mergeQueueEntry { state position } }
  }
}
"""


def details_query(numbers: Sequence[int]) -> str:
    """The GraphQL query for the details of PRs ``numbers`` of one repository (aliases ``pr<number>``)."""
    fields = "\n".join(f"    pr{n}: pullRequest(number: {int(n)}) {{ ...coditectPr }}" for n in numbers)
    return (
        "query CoditectPullRequests($owner: String!, $name: String!) {\n"
        "  repository(owner: $owner, name: $name) {\n"
        "    squashMergeAllowed mergeCommitAllowed rebaseMergeAllowed\n"
        f"{fields}\n"
        "  }\n"
        "}\n" + _FRAGMENT
    )
