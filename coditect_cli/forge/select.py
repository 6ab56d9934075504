"""Which forge each repository uses, where its GitHub token comes from, and what its remote URL names.

The manifest's ``forge`` decides: ``local`` always uses the embedded forge; ``github`` requires a GitHub origin
and a token (a usage error otherwise); ``auto`` uses GitHub when the repository's origin is on github.com (or
on the host of ``forge_url``, a GitHub Enterprise API base) *and* a token is found, otherwise the local forge,
and says why in a note. Tokens come from ``GH_TOKEN``, ``GITHUB_TOKEN``, then ``gh auth token`` (only when
``gh`` is installed), and are wrapped in :class:`Secret` so no repr, log line or exception shows them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from coditect_cli.adapters.proc import redact
from coditect_cli.errors import CoditectError, UsageError
from coditect_cli.forge.base import Forge, ForgeRepo

GITHUB_HOST = "github.com"
GITHUB_API = "https://api.github.com"
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")

ForgeKind = Literal["github", "local"]

# scp-like syntax: [user@]host:owner/name[.git] (no scheme; the colon is not followed by '//').
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.\-]+):(?!//)/?(?P<path>[^\s]+)$")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class RemoteRef:
    """A repository on a forge host, parsed from a remote URL."""

    host: str
    owner: str
    name: str

    @property
    def slug(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"


def _owner_name(path: str) -> tuple[str, str] | None:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) != 2:
        return None
    owner, name = parts[0], parts[1].removesuffix(".git")
    if not name or not _NAME.match(owner) or not _NAME.match(name):
        return None
    return owner, name


def parse_remote(url: str | None) -> RemoteRef | None:
    """The host, owner and name a remote URL points at, or None (a local path, an unknown shape).

    Accepts ``https://host/o/r(.git)`` (credentials in the URL are ignored), ``git@host:o/r(.git)``,
    ``ssh://git@host[:port]/o/r(.git)`` and ``git://host/o/r``; a trailing slash is fine.
    """
    if not url:
        return None
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in {"https", "http", "ssh", "git", "git+ssh", "ssh+git"}:
            return None
        host = parts.hostname
        found = _owner_name(parts.path)
        if not host or found is None:
            return None
        return RemoteRef(host.lower(), *found)
    match = _SCP.match(text)
    if match is None or "/" in match.group("host"):
        return None
    found = _owner_name(match.group("path"))
    if found is None:
        return None
    return RemoteRef(match.group("host").lower(), *found)


def api_host(forge_url: str) -> str | None:
    """The host of a GitHub API base URL (``https://github.example.com/api/v3`` → ``github.example.com``)."""
    host = urlsplit(forge_url.strip()).hostname
    return host.lower() if host else None


def api_url_for(host: str, forge_url: str | None) -> str | None:
    """The API base for repositories on ``host``: ``forge_url`` when it is that host's, api.github.com for
    github.com, else None (the host is not a GitHub we know)."""
    if forge_url:
        configured = api_host(forge_url)
        if configured is not None and configured.removeprefix("api.") == host.removeprefix("api."):
            return forge_url.strip().rstrip("/")
    if host in {GITHUB_HOST, "www.github.com"}:
        return GITHUB_API
    return None


class Secret:
    """A credential. ``str()`` and ``repr()`` mask it; :meth:`reveal` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself: pass it to the client, never to a message."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not picklable")


@dataclass(frozen=True)
class Token:
    """A GitHub token and where it was found (``GH_TOKEN``, ``GITHUB_TOKEN`` or ``gh auth token``)."""

    secret: Secret = field(repr=False)
    source: str


def find_token(host: str = GITHUB_HOST, env: Mapping[str, str] | None = None) -> Token | None:
    """A token for ``host``: ``GH_TOKEN``, then ``GITHUB_TOKEN``, then ``gh auth token`` if ``gh`` is installed."""
    from coditect_cli.adapters import proc

    environ = os.environ if env is None else env
    for variable in TOKEN_VARIABLES:
        value = environ.get(variable, "").strip()
        if value:
            return Token(Secret(value), variable)
    path = environ.get("PATH") if env is not None else None
    gh = shutil.which("gh", path=path)
    if gh is None:
        return None
    argv = [gh, "auth", "token"]
    if host != GITHUB_HOST:
        argv += ["--hostname", host]
    try:
        done = proc.run(argv, check=False, timeout=15)
    except CoditectError:
        return None
    value = done.stdout.strip()
    if done.returncode != 0 or not value or any(c.isspace() for c in value):
        return None
    return Token(Secret(value), "gh auth token")


@dataclass(frozen=True)
class ForgeChoice:
    """The forge one repository uses; ``reason`` says why the local forge was chosen under ``forge: auto``."""

    kind: ForgeKind
    reason: str | None = None
    remote: RemoteRef | None = None
    api_url: str | None = None
    token: Token | None = field(default=None, repr=False)

    @property
    def note(self) -> str | None:
        """What to tell the user, e.g. ``using the local forge: origin is not on GitHub``."""
        return f"using the local forge: {self.reason}" if self.reason else None


def choose(
    setting: str,
    forge_url: str | None,
    origin_url: str | None,
    token_for: Callable[[str], Token | None],
    *,
    repo: str = "",
) -> ForgeChoice:
    """The forge of a repository whose origin is ``origin_url``, under the manifest's ``forge`` setting.

    ``token_for(host)`` finds a token (see :func:`find_token`); it is only called for a GitHub origin.
    """
    where = f"repository {repo!r}: " if repo else ""
    if setting == "local":
        return ForgeChoice("local")
    remote = parse_remote(origin_url)
    api = api_url_for(remote.host, forge_url) if remote is not None else None
    shown = redact(origin_url) if origin_url else "no origin"
    if setting == "auto":
        if remote is None or api is None:
            return ForgeChoice("local", "origin is not on GitHub")
        token = token_for(remote.host)
        if token is None:
            return ForgeChoice(
                "local",
                f"no token found for {remote.host} (set GH_TOKEN or GITHUB_TOKEN, or run `gh auth login`)",
                remote,
                api,
            )
        return ForgeChoice("github", None, remote, api, token)
    if setting != "github":
        raise UsageError(f"unknown forge {setting!r}: use auto, github or local")
    if remote is None:
        raise UsageError(
            f"the manifest says `forge: github`, but {where}origin ({shown}) is not a GitHub repository URL",
            hint="point origin at https://github.com/OWNER/REPO (or the GitHub Enterprise host), "
            "or use `forge: local`",
        )
    if api is None:
        raise UsageError(
            f"the manifest says `forge: github`, but {where}origin is on {remote.host}, which is neither "
            "github.com nor the host of `forge_url`",
            hint="for GitHub Enterprise set `forge_url: https://HOST/api/v3` in the manifest",
        )
    token = token_for(remote.host)
    if token is None:
        raise UsageError(
            f"the manifest says `forge: github`, but no token was found for {remote.host}",
            hint="set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`",
        )
    return ForgeChoice("github", None, remote, api, token)


class Forges:
    """The forge of each repository of a phase, with the notes that explain the choice.

    One local forge and one GitHub client per API base are shared by every repository that uses them.
    """

    def __init__(self, repos: dict[str, ForgeRepo], forges: dict[str, Forge], notes: list[str]) -> None:
        self._repos = repos
        self._forges = forges
        self._notes = notes

    def repo(self, repo_id: str) -> ForgeRepo:
        """The forge's view of repository ``repo_id``."""
        return self._repos[repo_id]

    def forge(self, repo_id: str) -> Forge:
        """The forge of repository ``repo_id``."""
        return self._forges[repo_id]

    def kind(self, repo_id: str) -> str:
        """``github`` or ``local`` for repository ``repo_id``."""
        return self._forges[repo_id].kind

    @property
    def notes(self) -> list[str]:
        """What the user should know: why a forge was chosen, what a forge could not do, deduplicated."""
        seen: dict[str, None] = dict.fromkeys(self._notes)
        for forge in self._unique():
            seen.update(dict.fromkeys(forge.notes))
        return list(seen)

    def _unique(self) -> list[Forge]:
        unique: dict[int, Forge] = {}
        for forge in self._forges.values():
            unique.setdefault(id(forge), forge)
        return list(unique.values())

    def close(self) -> None:
        """Close every forge."""
        for forge in self._unique():
            forge.close()


@contextmanager
def open_forges(
    setting: str,
    forge_url: str | None,
    repos: Mapping[str, ForgeRepo],
    local_factory: Callable[[], Forge],
    *,
    env: Mapping[str, str] | None = None,
    github_factory: Callable[[str, Token], Forge] | None = None,
    cache_dir: Path | None = None,
) -> Iterator[Forges]:
    """Choose and open the forge of every repository in ``repos`` (closed when the block ends).

    ``local_factory`` builds the local forge (once, when a repository needs it); ``github_factory`` builds a
    GitHub forge for an API base and a token (default: :class:`~coditect_cli.forge.github.GitHubForge`).
    Tokens are looked up once per host. ``cache_dir`` keeps the GitHub forge's conditional-request cache (ETags
    and bodies) across commands.
    """
    tokens: dict[str, Token | None] = {}

    def token_for(host: str) -> Token | None:
        if host not in tokens:
            tokens[host] = find_token(host, env)
        return tokens[host]

    if github_factory is None:
        from coditect_cli.forge.github import GitHubForge, GitHubOptions

        options = GitHubOptions.from_env(env, cache_dir)

        def github_factory(api: str, token: Token) -> Forge:
            return GitHubForge(api, token.secret, options)

    local: list[Forge] = []
    clients: dict[str, Forge] = {}
    forges: dict[str, Forge] = {}
    views: dict[str, ForgeRepo] = {}
    notes: list[str] = []
    why_local: dict[str, list[str]] = {}
    built = Forges(views, forges, notes)
    try:
        for repo_id, repo in repos.items():
            choice = choose(setting, forge_url, repo.origin_url, token_for, repo=repo_id)
            if choice.note:
                why_local.setdefault(choice.note, []).append(repo_id)
            if choice.kind == "github":
                assert choice.api_url is not None and choice.token is not None and choice.remote is not None
                if choice.api_url not in clients:
                    clients[choice.api_url] = github_factory(choice.api_url, choice.token)
                forges[repo_id] = clients[choice.api_url]
                views[repo_id] = ForgeRepo(repo.id, repo.path, repo.origin_url, choice.remote.slug)
            else:
                if not local:
                    local.append(local_factory())
                forges[repo_id] = local[0]
                views[repo_id] = repo
        for note, ids in why_local.items():
            which = "repository" if len(ids) == 1 else "repositories"
            notes.append(f"{note} ({which} {', '.join(ids)})")
        yield built
    finally:
        built.close()
