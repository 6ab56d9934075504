"""The GitHub forge, with PyGithub (imported inside the functions that use it: ~0.2 s we only pay when used).

PyGithub's defaults are tuned for scripts, not for a CLI a person waits on; this module changes four:

* **No sleeps between calls.** PyGithub waits 1 s between writes (``seconds_between_writes``) and 0.25 s between
  requests; both are 0 here.
* **No blind retry of writes.** Its default retry repeats POST on 5xx, so a 502 returned *after* GitHub created
  a pull request would create a second one. Here urllib3 retries GET only (5xx, timeouts, dropped
  connections; bounded, with capped exponential backoff), and every write is "find, then create": when a
  create answers 5xx or times out, the forge looks again before anything else and reports what exists.
  GraphQL queries are POSTs but read-only: they get the same bounded retries from a loop here.
* **No unbounded rate-limit sleeps.** A 403/429 with ``x-ratelimit-remaining: 0`` (primary) or ``retry-after``
  (secondary) becomes an :class:`~coditect_cli.errors.UnavailableError` (exit 5) naming the reset time.
* **The token stays secret.** It lives in a :class:`~coditect_cli.forge.select.Secret`, is revealed only to
  PyGithub's ``Auth.Token``, and a logging filter masks it (and anything token-shaped) in PyGithub's and
  urllib3's ``--verbose`` lines; error messages are built from status codes and GitHub's own messages.

Requests per command: listing the PRs into a base branch is one paginated ``GET /pulls?base=…&state=all&
per_page=100``; the reviews, checks (commit statuses and check runs), mergeability and changed files of up to
:data:`DETAILS_BATCH` PRs come from one GraphQL query. ``pr list`` over N streams in one repository therefore
costs two requests, where REST would need a reviews, a status and a PR call per stream (3N + 1).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from coditect_cli.adapters.proc import redact
from coditect_cli.errors import CheckFailed, CoditectError, UnavailableError, UsageError
from coditect_cli.forge.base import (
    Check,
    CheckStatus,
    Comment,
    ForgeRepo,
    Merged,
    MergeStrategy,
    Opened,
    PrDetails,
    ProposalSpec,
    PullRequest,
    Release,
    Review,
    ReviewState,
    pr_state,
    same_owner,
)

if TYPE_CHECKING:
    from github import Github
    from github.PullRequest import PullRequest as RawPull
    from github.Repository import Repository as RawRepo

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


@dataclass(frozen=True)
class GitHubOptions:
    """Client settings. A safe call makes at most ``1 + retries`` attempts of ``timeout`` (whole) seconds each, pausing
    0, ``2·backoff``, ``4·backoff``… (each at most ``backoff_max``) in between."""

    timeout: int = 15
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 4.0
    per_page: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubOptions:
        """Defaults, overridden by ``CODITECT_GITHUB_TIMEOUT``, ``CODITECT_GITHUB_RETRIES`` and
        ``CODITECT_GITHUB_BACKOFF`` when set."""
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


def _iso(moment: datetime | None) -> str | None:
    from coditect_cli.state.store import format_time

    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_time(moment)


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def rate_limit_error(
    status: int, headers: Mapping[str, Any] | None, message: str, doing: str
) -> UnavailableError | None:
    """The error for a rate-limited answer (None when ``status``/``headers`` are not a rate limit)."""
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
    if h.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower():
        reset = h.get("x-ratelimit-reset", "").strip()
        if reset.isdigit():
            at_epoch = int(reset)
            at = datetime.fromtimestamp(at_epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            minutes = max(0, round((at_epoch - now) / 60))
            when = f"it resets at {at} (in {minutes} min)"
        else:
            when = "wait a few minutes"
        limit = h.get("x-ratelimit-limit")
        used = f" ({limit} requests per hour)" if limit else ""
        return UnavailableError(
            f"GitHub's API rate limit{used} is exhausted while {doing}; {when}",
            hint="run the command again after the reset",
        )
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
        self._raw: dict[tuple[str, int], RawPull] = {}
        self._viewer: str | None = None

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
                seconds_between_writes=0,
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

    def _repo(self, repo: ForgeRepo) -> RawRepo:
        if not repo.slug:
            raise UsageError(f"repository {repo.id!r} has no GitHub owner/name (origin: {repo.origin_url})")
        return self._client().get_repo(repo.slug)  # lazy: no request

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

    def _error(self, exc: BaseException, doing: str) -> CoditectError | None:
        """The CLI error for ``exc`` raised while ``doing``, or None when it is not a GitHub/HTTP failure."""
        from github.GithubException import GithubException
        from requests.exceptions import ConnectionError, RequestException, Timeout

        if isinstance(exc, GithubException):
            data = exc.data if isinstance(exc.data, dict) else {}
            message = str(data.get("message") or exc.message or "")
            limited = rate_limit_error(exc.status, exc.headers, message, doing)
            if limited is not None:
                return limited
            detail = self._clean(message) or f"HTTP {exc.status}"
            errors = data.get("errors")
            if isinstance(errors, list) and errors:
                parts = [
                    str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                    for e in errors
                ]
                detail += " (" + "; ".join(self._clean(p) for p in parts) + ")"
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
                return UnavailableError(f"GitHub refused (403) while {doing}: {detail}")
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

    def _convert(self, repo_id: str, raw: RawPull) -> PullRequest:
        merged_at = raw.merged_at
        state = pr_state("merged" if merged_at else ("closed" if raw.state == "closed" else "open"))
        return PullRequest(
            repo=repo_id,
            number=raw.number,
            base=raw.base.ref,
            head=raw.head.ref,
            title=raw.title,
            state=state,
            head_sha=raw.head.sha,
            body=raw.body or "",
            merge_commit=raw.merge_commit_sha if merged_at else None,
            url=raw.html_url,
            created=_iso(raw.created_at),
            updated=_iso(raw.updated_at),
            merged=_iso(merged_at),
        )

    def _raw_pr(self, repo: ForgeRepo, pr: PullRequest) -> RawPull:
        key = (repo.slug or "", pr.number)
        if key not in self._raw:
            self._raw[key] = self._call(
                f"reading #{pr.number} of {repo.slug}", lambda: self._repo(repo).get_pull(pr.number)
            )
        return self._raw[key]

    def viewer(self) -> str:
        """The login of the token's account (``GET /user``, once)."""
        if self._viewer is None:
            self._viewer = self._call("reading the token's account", lambda: self._client().get_user().login)
        return self._viewer

    # ------------------------------------------------------------------------------------------ proposals

    def list_prs(self, repo: ForgeRepo, base: str) -> list[PullRequest]:
        """Every PR into ``base``: one paginated ``GET /pulls?base=…&state=all`` (cached for the command)."""
        key = (repo.slug or "", base)
        if key not in self._lists:

            def fetch() -> list[PullRequest]:
                out: list[PullRequest] = []
                for raw in self._repo(repo).get_pulls(state="all", base=base):
                    pr = self._convert(repo.id, raw)
                    self._raw[(key[0], pr.number)] = raw
                    out.append(pr)
                return sorted(out, key=lambda p: p.number)

            self._lists[key] = self._call(f"listing the pull requests into {base} of {repo.slug}", fetch)
        return list(self._lists[key])

    def find_pr(self, repo: ForgeRepo, base: str, head: str) -> PullRequest | None:
        """The open PR of ``head`` into ``base``: a fresh ``GET /pulls?head=owner:head&base=…``."""
        owner = (repo.slug or "/").split("/", 1)[0]

        def fetch() -> PullRequest | None:
            for raw in self._repo(repo).get_pulls(state="open", base=base, head=f"{owner}:{head}"):
                pr = self._convert(repo.id, raw)
                self._raw[(repo.slug or "", pr.number)] = raw
                if pr.head == head:
                    return pr
            return None

        return self._call(f"looking for the pull request of {head} in {repo.slug}", fetch)

    def open_pr(self, repo: ForgeRepo, spec: ProposalSpec) -> Opened:
        """Find, then create. A create that fails with 5xx or a timeout is followed by a fresh find: GitHub may
        have created the PR before failing, and a second POST would duplicate it."""
        from github.GithubException import GithubException

        existing = next(
            (p for p in self.list_prs(repo, spec.base) if p.head == spec.head and p.state == "open"), None
        )
        if existing is not None:
            return Opened(existing, False)
        doing = f"opening the pull request of {spec.head} in {repo.slug}"
        try:
            raw = self._repo(repo).create_pull(
                base=spec.base, head=spec.head, title=spec.title, body=spec.body
            )
        except Exception as exc:
            duplicate = (
                isinstance(exc, GithubException)
                and exc.status == 422
                and "already exists" in str(exc.data).lower()
            )
            if not (self._transient(exc) or duplicate):
                error = self._error(exc, doing)
                if error is None:
                    raise
                raise error from None
            found = self.find_pr(repo, spec.base, spec.head)
            if found is None:
                error = self._error(exc, doing)
                if error is None:
                    raise
                error.hint = "no pull request was created; `coditect pr open` is safe to run again"
                raise error from None
            if not duplicate:
                self.notes.append(
                    f"GitHub failed while creating the PR of {spec.head} in {repo.slug}, but it exists "
                    f"(#{found.number}): not created twice"
                )
            self._remember(repo, spec.base, found)
            return Opened(found, not duplicate)
        pr = self._convert(repo.id, raw)
        self._raw[(repo.slug or "", pr.number)] = raw
        self._remember(repo, spec.base, pr)
        return Opened(pr, True)

    def _remember(self, repo: ForgeRepo, base: str, pr: PullRequest) -> None:
        key = (repo.slug or "", base)
        if key in self._lists:
            self._lists[key] = sorted(
                [p for p in self._lists[key] if p.number != pr.number] + [pr], key=lambda p: p.number
            )

    def pr_details(self, repo: ForgeRepo, prs: Sequence[PullRequest]) -> dict[int, PrDetails]:
        """One GraphQL query per :data:`DETAILS_BATCH` PRs: reviews, checks, mergeability, changed files."""
        out: dict[int, PrDetails] = {}
        if not repo.slug:
            raise UsageError(f"repository {repo.id!r} has no GitHub owner/name")
        owner, name = repo.slug.split("/", 1)
        numbers = list(dict.fromkeys(p.number for p in prs))
        for start in range(0, len(numbers), DETAILS_BATCH):
            batch = numbers[start : start + DETAILS_BATCH]
            query = details_query(batch)

            def ask(query: str = query) -> dict[str, Any]:
                return self._client().requester.graphql_query(query, {"owner": owner, "name": name})[1]

            data = self._safe_post(
                f"reading reviews and checks of {len(batch)} pull request(s) of {repo.slug}", ask
            )
            nodes = (data.get("data") or {}).get("repository") or {}
            for number in batch:
                node = nodes.get(f"pr{number}")
                if node is not None:
                    out[number] = self._details(repo, number, node)
        return out

    def _details(self, repo: ForgeRepo, number: int, node: Mapping[str, Any]) -> PrDetails:
        reviews: list[Review] = []
        for item in (node.get("reviews") or {}).get("nodes") or []:
            state = _REVIEW_STATES.get(str(item.get("state")))
            if state is None:
                continue  # dismissed or pending reviews do not count
            login = ((item.get("author") or {}).get("login")) or "ghost"
            commit = (item.get("commit") or {}).get("oid")
            reviews.append(Review(f"@{login}", state, item.get("submittedAt"), "", commit))
        checks: list[Check] = []
        commits = (node.get("commits") or {}).get("nodes") or []
        rollup = ((commits[0].get("commit") or {}).get("statusCheckRollup") if commits else None) or {}
        for ctx in (rollup.get("contexts") or {}).get("nodes") or []:
            if ctx.get("__typename") == "CheckRun":
                if str(ctx.get("status")) != "COMPLETED":
                    status: CheckStatus = "pending"
                else:
                    status = "success" if str(ctx.get("conclusion")) in _GOOD_CONCLUSIONS else "failure"
                checks.append(
                    Check(str(ctx.get("name")), status, ctx.get("completedAt"), None, ctx.get("detailsUrl"))
                )
            else:
                status = _STATUS_STATES.get(str(ctx.get("state", "")).lower(), "pending")
                name = str(ctx.get("context")).removeprefix(STATUS_CONTEXT_PREFIX)
                checks.append(Check(name, status, ctx.get("createdAt"), None, ctx.get("targetUrl")))
        mergeable = {"MERGEABLE": True, "CONFLICTING": False}.get(str(node.get("mergeable")))
        files_node = node.get("files") or {}
        files: tuple[str, ...] | None = tuple(str(f.get("path")) for f in files_node.get("nodes") or [])
        if files is not None and int(files_node.get("totalCount") or 0) > len(files):
            files = self._all_files(repo, number)
        return PrDetails(number, node.get("headRefOid"), tuple(reviews), tuple(checks), mergeable, files)

    def _all_files(self, repo: ForgeRepo, number: int) -> tuple[str, ...]:
        """Every changed file of a large PR (``GET /pulls/n/files``, paginated; GitHub stops at 3000)."""

        def fetch() -> tuple[str, ...]:
            raw = self._raw.get((repo.slug or "", number)) or self._repo(repo).get_pull(number)
            return tuple(f.filename for f in raw.get_files())

        return self._call(f"listing the files of #{number} of {repo.slug}", fetch)

    # ------------------------------------------------------------------------------------------ reviews

    def reviews(self, repo: ForgeRepo, pr: PullRequest) -> list[Review]:
        """Every review of ``pr`` (``GET /pulls/n/reviews``), dismissed and pending ones left out."""

        def fetch() -> list[Review]:
            out: list[Review] = []
            for raw in self._raw_pr(repo, pr).get_reviews():
                state = _REVIEW_STATES.get(raw.state)
                if state is not None:
                    out.append(
                        Review(
                            f"@{raw.user.login}", state, _iso(raw.submitted_at), raw.body or "", raw.commit_id
                        )
                    )
            return out

        return self._call(f"reading the reviews of #{pr.number} of {repo.slug}", fetch)

    def review_pr(
        self, repo: ForgeRepo, pr: PullRequest, reviewer: str, state: ReviewState, body: str
    ) -> Review:
        """Submit a review as the token's account, which must be ``reviewer`` (teams: GitHub checks membership)."""
        login = self.viewer()
        if reviewer.startswith("@") and "/" not in reviewer and not same_owner(reviewer, login):
            raise UsageError(
                f"on GitHub a review is given by the token's account (@{login}), not by {reviewer}",
                hint=f"review as @{login}, or with a token of {reviewer}",
            )
        text = body or f"{state.replace('_', ' ').capitalize()} by {reviewer} (coditect)."
        raw = self._call(
            f"reviewing #{pr.number} of {repo.slug}",
            lambda: self._raw_pr(repo, pr).create_review(body=text, event=_EVENTS[state]),
        )
        return Review(f"@{login}", state, _iso(raw.submitted_at), text, raw.commit_id)

    # ------------------------------------------------------------------------------------------ checks

    def checks(self, repo: ForgeRepo, sha: str) -> list[Check]:
        """The commit statuses of ``sha`` (``GET /commits/{sha}/status``)."""

        def fetch() -> list[Check]:
            combined = self._repo(repo).get_commit(sha).get_combined_status()
            out: list[Check] = []
            for status in combined.statuses:
                name = status.context.removeprefix(STATUS_CONTEXT_PREFIX)
                out.append(
                    Check(
                        name,
                        _STATUS_STATES.get(status.state, "pending"),
                        _iso(status.updated_at),
                        None,
                        status.target_url,
                    )
                )
            return out

        return self._call(f"reading the checks of {sha[:12]} in {repo.slug}", fetch)

    def record_check(
        self, repo: ForgeRepo, sha: str, name: str, status: CheckStatus, log: str | None = None
    ) -> Check:
        """A commit status ``coditect/<name>`` (``POST /statuses/{sha}``; a repeat only updates it)."""
        payload = {
            "state": status,
            "context": f"{STATUS_CONTEXT_PREFIX}{name}",
            "description": f"gate {name}: {status}",
        }
        self._call(
            f"recording check {name} on {sha[:12]} in {repo.slug}",
            lambda: self._client().requester.requestJsonAndCheck(
                "POST", f"/repos/{repo.slug}/statuses/{sha}", input=payload
            ),
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
        """``PUT /pulls/n/merge`` with ``sha`` = ``expected_head``; after a 5xx the PR is read again first."""
        from github.GithubException import GithubException

        if pr.state == "merged":
            return Merged(pr, pr.merge_commit or "", strategy, already=True)
        raw = self._raw_pr(repo, pr)
        arguments: dict[str, Any] = {"merge_method": strategy}
        if title:
            arguments["commit_title"] = title if strategy == "merge" else f"{title} (#{pr.number})"
        if body is not None:
            arguments["commit_message"] = body
        if expected_head:
            arguments["sha"] = expected_head
        doing = f"merging #{pr.number} of {repo.slug}"
        try:
            result = raw.merge(**arguments)
        except Exception as exc:
            if isinstance(exc, GithubException) and exc.status in (405, 409):
                message = self._clean(
                    str((exc.data or {}).get("message") if isinstance(exc.data, dict) else exc.data)
                )
                raise CheckFailed(f"GitHub will not merge #{pr.number} of {repo.slug}: {message}") from None
            if self._transient(exc):
                again = self._call(
                    f"re-reading #{pr.number} of {repo.slug}", lambda: self._repo(repo).get_pull(pr.number)
                )
                if again.merged:
                    merged_pr = self._convert(repo.id, again)
                    return Merged(merged_pr, merged_pr.merge_commit or "", strategy)
            error = self._error(exc, doing)
            if error is None:
                raise
            raise error from None
        if not result.merged:
            raise CheckFailed(
                f"GitHub did not merge #{pr.number} of {repo.slug}: {self._clean(result.message or '')}"
            )
        now = _iso(datetime.now(timezone.utc))
        merged_pr = replace(pr, state="merged", merge_commit=result.sha, merged=now, updated=now)
        return Merged(merged_pr, result.sha, strategy)

    def comment_pr(self, repo: ForgeRepo, pr: PullRequest, body: str) -> Comment:
        """``POST /issues/n/comments``."""
        raw = self._call(
            f"commenting on #{pr.number} of {repo.slug}",
            lambda: self._raw_pr(repo, pr).create_issue_comment(body),
        )
        return Comment(raw.id, f"@{raw.user.login}", raw.body, _iso(raw.created_at), raw.html_url)

    # ------------------------------------------------------------------------------------------ releases

    def release(self, repo: ForgeRepo, tag: str, sha: str, title: str, notes: str = "") -> Release:
        """A GitHub release (and its tag) on ``sha``; an existing release of ``tag`` is reported as it is."""
        from github.GithubException import UnknownObjectException

        def existing() -> Release | None:
            try:
                found = self._repo(repo).get_release(tag)
            except UnknownObjectException:
                return None
            return Release(tag, sha, False, found.html_url)

        doing = f"releasing {tag} of {repo.slug}"
        before = self._call(doing, existing)
        if before is not None:
            return before
        try:
            created = self._repo(repo).create_git_release(
                tag=tag, name=title, message=notes, target_commitish=sha
            )
        except Exception as exc:
            if self._transient(exc):
                after = self._call(doing, existing)
                if after is not None:
                    return Release(tag, sha, True, after.url)
            error = self._error(exc, doing)
            if error is None:
                raise
            raise error from None
        return Release(tag, sha, True, created.html_url)


_FRAGMENT = """
fragment coditectPr on PullRequest {
  number
  headRefOid
  mergeable
  files(first: 100) { totalCount nodes { path } }
  reviews(last: 100) { nodes { author { login } state submittedAt commit { oid } } }
  commits(last: 1) {
    nodes {
      commit {
        oid
        statusCheckRollup {
          state
          contexts(first: 100) {
            nodes {
              __typename
              ... on StatusContext { context state targetUrl createdAt }
              ... on CheckRun { name status conclusion detailsUrl completedAt }
            }
          }
        }
      }
    }
  }
}
"""


def details_query(numbers: Sequence[int]) -> str:
    """The GraphQL query for the details of PRs ``numbers`` of one repository (aliases ``pr<number>``)."""
    fields = "\n".join(f"    pr{n}: pullRequest(number: {int(n)}) {{ ...coditectPr }}" for n in numbers)
    return (
        "query CoditectPullRequests($owner: String!, $name: String!) {\n"
        "  repository(owner: $owner, name: $name) {\n"
        f"{fields}\n"
        "  }\n"
        "}\n" + _FRAGMENT
    )
