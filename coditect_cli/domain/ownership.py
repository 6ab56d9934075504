"""Who owns which path: the manifest's owned paths as CODEOWNERS rules, per repository.

Owned paths are written relative to their repository's root and are anchored there (``README.md`` means
the root README only; ``**/README.md`` means every README). Matching uses the ``codeowners`` package's
translation of GitHub's CODEOWNERS patterns, so what coditect checks is what GitHub enforces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from codeowners import path_to_regex
from coditect_cli.domain.manifest import Manifest, RepoId, StreamId
from coditect_cli.domain.memo import same_argument


def owned_path_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an owned path, or None when it can."""
    if not pattern.strip():
        return "an owned path is empty"
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", pattern):
        return f"{pattern!r} is absolute: owned paths are relative to their repository's root"
    parts = pattern.rstrip("/").split("/")
    if ".." in parts:
        return f"{pattern!r} escapes its repository ('..' is not allowed in owned paths)"
    if any(p == "." for p in parts):
        return f"{pattern!r} contains a '.' component; write the path without it"
    if pattern.startswith("!"):
        return f"{pattern!r}: GitHub CODEOWNERS does not support '!' negation"
    if "[" in pattern or "]" in pattern:
        return f"{pattern!r}: GitHub CODEOWNERS does not support '[ ]' character ranges"
    if "\\" in pattern:
        return f"{pattern!r}: backslash escapes are not supported in CODEOWNERS"
    if pattern.startswith("#"):
        return f"{pattern!r} would be read as a comment in CODEOWNERS"
    if any(ch.isspace() for ch in pattern):
        return f"{pattern!r} contains whitespace"
    if "//" in pattern:
        return f"{pattern!r} contains '//'"
    return None


def codeowners_pattern(pattern: str) -> str:
    """The CODEOWNERS form of an owned path, anchored at the repository root."""
    return pattern if pattern.startswith("**") else "/" + pattern


def probe_paths(pattern: str) -> tuple[str, ...]:
    """Concrete paths ``pattern`` matches, used to test whether two patterns can overlap."""
    concrete = pattern.replace("**", "x").replace("*", "x").replace("?", "x")
    if concrete.endswith("/"):
        return (concrete + "probe.file",)
    return (concrete, concrete + "/probe.file")


@dataclass(frozen=True)
class Rule:
    """One owned path of one or more streams in one repository."""

    pattern: str
    streams: tuple[StreamId, ...]
    shared: bool
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, path: str) -> bool:
        """True when this rule covers the repository-relative ``path``."""
        return self.regex.search(path) is not None

    @property
    def codeowners(self) -> str:
        return codeowners_pattern(self.pattern)


@dataclass(frozen=True)
class Owners:
    """Who may change one path: the streams, and whether that is a declared shared path."""

    streams: frozenset[StreamId]
    shared: bool

    @property
    def overlap(self) -> bool:
        """Several streams own the path without it being declared shared."""
        return not self.shared and len(self.streams) > 1


@dataclass(frozen=True)
class RepoOwnership:
    """Every rule of one repository: stream rules first, shared rules last (so they win in CODEOWNERS)."""

    repo: RepoId
    rules: tuple[Rule, ...]

    def owners(self, path: str) -> Owners:
        """The owners of ``path``: the shared rule's streams when one matches, else every matching stream."""
        candidates = [r for key in _path_keys(path) for r in self._by_key.get(key, ())]
        shared = [r for r in candidates if r.shared and r.matches(path)]
        if shared:
            return Owners(frozenset(s for r in shared for s in r.streams), True)
        return Owners(
            frozenset(s for r in candidates if not r.shared and r.matches(path) for s in r.streams), False
        )

    @cached_property
    def _by_key(self) -> dict[str, list[Rule]]:
        # Rules by the folder every path they match lies in, so owners() tests a handful, not all of them.
        out: dict[str, list[Rule]] = {}
        for rule in self.rules:
            out.setdefault(_rule_key(rule.pattern), []).append(rule)
        return out

    def stream_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.shared)

    def shared_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.shared)


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return path_to_regex(codeowners_pattern(pattern))


@same_argument
def ownership(manifest: Manifest) -> dict[RepoId, RepoOwnership]:
    """The ownership rules of every repository of the phase (shared: do not modify the result).

    Invalid patterns (see :func:`owned_path_problem`) are skipped: validation reports them. Computed once per
    manifest: setup's guard check asks once per worktree, which would otherwise cost streams x worktrees.
    """
    rules: dict[RepoId, list[Rule]] = {RepoId(r.id): [] for r in manifest.repositories}
    for stream in manifest.streams:
        for work in stream.work:
            for pattern in work.owns:
                if owned_path_problem(pattern) is None:
                    rules.setdefault(RepoId(work.repo), []).append(
                        Rule(pattern, (StreamId(stream.id),), False, _regex(pattern))
                    )
    for shared in manifest.shared:
        for pattern in shared.paths:
            if owned_path_problem(pattern) is None:
                streams = tuple(StreamId(s) for s in shared.streams)
                rules.setdefault(RepoId(shared.repo), []).append(
                    Rule(pattern, streams, True, _regex(pattern))
                )
    ordered = {
        repo: tuple([r for r in rs if not r.shared] + [r for r in rs if r.shared])
        for repo, rs in rules.items()
    }
    return {repo: RepoOwnership(repo, rs) for repo, rs in ordered.items()}


def literal_prefix(pattern: str) -> str:
    """The text every path ``pattern`` matches starts with: the pattern up to its first wildcard.

    Owned paths are anchored at the repository root, so two patterns can only meet when one's literal
    prefix starts the other's.
    """
    cut = min((i for i, ch in enumerate(pattern) if ch in "*?"), default=len(pattern))
    return pattern[:cut]


def _rule_key(pattern: str) -> str:
    """The folder (``""`` or ending in ``/``) that holds every path ``pattern`` matches.

    A pattern without wildcards (``docs`` or ``docs/``) matches that path and everything below it.
    """
    if literal_prefix(pattern) == pattern:
        return pattern.rstrip("/") + "/"
    return _literal_dir(pattern)


def _path_keys(path: str) -> list[str]:
    """The keys of :func:`_rule_key` a rule matching ``path`` can have: every folder above it, and itself."""
    keys = [""]
    keys.extend(path[: i + 1] for i, ch in enumerate(path) if ch == "/")
    keys.append(path.rstrip("/") + "/")
    return keys


def overlap_candidates(rules: Sequence[Rule]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of ``rules`` whose patterns may overlap, in order.

    Sorting by literal prefix puts every pattern that extends a prefix right after it, so this costs
    n log n plus the pairs it returns, not n squared (patterns starting with a wildcard still meet all).
    """
    prefixes = [literal_prefix(r.pattern) for r in rules]
    order = sorted(range(len(rules)), key=prefixes.__getitem__)
    out: list[tuple[int, int]] = []
    for a, i in enumerate(order):
        for j in order[a + 1 :]:
            if not prefixes[j].startswith(prefixes[i]):
                break
            out.append((min(i, j), max(i, j)))
    out.sort()
    return out


def _literal_dir(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard: ``docs/`` for ``docs/**/*.md``."""
    cut = min((i for i, ch in enumerate(pattern) if ch in "*?"), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/") + 1]


def _tail(pattern: str) -> str:
    """A concrete relative path matched by ``pattern`` once its leading ``**/`` is dropped."""
    concrete = probe_paths(pattern.removeprefix("**/"))[0]
    return concrete.split("/")[-1] if pattern.startswith("**") else concrete


def rules_overlap(a: Rule, b: Rule) -> bool:
    """Whether two patterns can match a common path.

    Each pattern is probed with concrete paths of the other, and with each one's directory joined to the
    other's file part, so ``src/`` and ``**/*.py`` are seen to meet in ``src/x.py``.
    """
    probes = {*probe_paths(a.pattern), *probe_paths(b.pattern)}
    probes.add(_literal_dir(a.pattern) + _tail(b.pattern))
    probes.add(_literal_dir(b.pattern) + _tail(a.pattern))
    return any(a.matches(p) and b.matches(p) for p in probes)
