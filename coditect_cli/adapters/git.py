"""Git plumbing through the one subprocess runner.

Read-only helpers read everything they need in one process per repository (one ``for-each-ref``, one
``ls-files``) so their cost does not grow with the number of branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coditect_cli.adapters import proc

GITLINK_MODE = "160000"


@dataclass(frozen=True)
class TrackedFiles:
    """The files a repository tracks at its index, with submodule gitlinks split out."""

    files: tuple[str, ...]
    gitlinks: tuple[str, ...]


class Git:
    """A repository (or worktree) addressed by its path."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def run(self, *args: str, check: bool = True, input: str | None = None) -> proc.Completed:
        """Run ``git -C <path> args...``."""
        return proc.run(["git", "-C", str(self.path), *args], check=check, input=input)

    def out(self, *args: str) -> str:
        """Run git and return stdout without the trailing newline."""
        return self.run(*args).stdout.rstrip("\n")

    def tracked_files(self) -> TrackedFiles:
        """All paths in the index, gitlinks (submodules) separately, in one ``ls-files`` call."""
        raw = self.run("ls-files", "-z", "--stage").stdout
        files: list[str] = []
        links: list[str] = []
        for entry in raw.split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            (links if meta.startswith(GITLINK_MODE) else files).append(path)
        return TrackedFiles(tuple(files), tuple(links))

    def refs(self, *patterns: str) -> dict[str, str]:
        """Every ref matching ``patterns`` (default: all) mapped to its object id, in one call."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", *patterns).stdout
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs


def is_work_tree(path: Path) -> bool:
    """True when ``path`` is the top of a git work tree (a repository, a submodule or a worktree).

    A ``.git`` entry (directory, or the file submodules and worktrees use) is the cheap test; an
    uninitialised submodule is an empty directory and fails it.
    """
    return (path / ".git").exists()
