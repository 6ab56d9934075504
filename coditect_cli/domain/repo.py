"""What the domain needs to know about a repository, as a protocol the git adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class TrackedFiles:
    """The files a repository tracks at its index, with submodule gitlinks split out."""

    files: tuple[str, ...]
    gitlinks: tuple[str, ...]


class RepoReader(Protocol):
    """Read-only facts about repositories on disk."""

    def is_work_tree(self, path: Path) -> bool:
        """True when ``path`` is the top of a git work tree."""

    def tracked_files(self, path: Path) -> TrackedFiles:
        """Every path tracked at ``path``'s index."""


@dataclass(frozen=True)
class RepoState:
    """What setup needs to know about one repository, read in a constant number of git calls."""

    path: Path
    git_common_dir: Path
    local: dict[str, str]  # branch name -> sha
    remote: dict[str, str]  # origin branch name -> sha (refs/remotes/origin/*)
    worktrees: dict[Path, str | None]  # worktree path -> checked-out branch (None when detached)
    origin_url: str | None
    excluded: tuple[str, ...] = ()  # lines of info/exclude
    blobs: dict[str, str | None] = field(default_factory=dict)  # "<rev>:<path>" -> blob sha (None: absent)
    hooks_path: str | None = None  # the repository's own core.hooksPath (husky, lefthook...), if set
    prunable: tuple[Path, ...] = ()  # registered worktrees whose directory is gone
    prunable_heads: tuple[str, ...] = ()  # the detached HEAD commits of those (pruning forgets them)

    def has_branch(self, name: str) -> bool:
        return name in self.local or name in self.remote

    def start_point(self, name: str) -> str | None:
        """The ref to start from for ``name``: the local branch, else origin's, else None."""
        if name in self.local:
            return name
        if name in self.remote:
            return f"origin/{name}"
        return None
