"""Find the project (the superproject root holding ``workstreams/``) and the manifest a command is about."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.errors import UsageError

WORKSTREAMS = "workstreams"
WORKTREES_DIR = ".coditect"


@dataclass(frozen=True)
class Project:
    """The project root: the directory that holds ``workstreams/`` (the superproject's work tree)."""

    root: Path

    @property
    def workstreams(self) -> Path:
        return self.root / WORKSTREAMS

    def manifests(self) -> list[Path]:
        """Every phase manifest in ``workstreams/``, sorted by name."""
        if not self.workstreams.is_dir():
            return []
        return sorted(p for p in self.workstreams.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())

    def manifest_path(self, phase: str | None) -> Path:
        """The manifest for ``phase``; with None, the only one there is (else a UsageError listing them)."""
        if phase is not None:
            if "/" in phase or phase.endswith((".yaml", ".yml")):
                candidate = Path(phase)
                if not candidate.is_absolute():
                    candidate = Path.cwd() / candidate
                if candidate.is_file():
                    return candidate
            for suffix in (".yaml", ".yml"):
                candidate = self.workstreams / f"{phase}{suffix}"
                if candidate.is_file():
                    return candidate
            declared = self._declaring(phase)
            if declared is not None:
                return declared
            known = ", ".join(p.stem for p in self.manifests()) or "none"
            raise UsageError(
                f"no manifest for phase {phase!r} in {self.display(self.workstreams)}/ "
                f"(phases found: {known})"
            )
        found = self.manifests()
        if not found:
            raise UsageError(
                f"no manifest in {self.display(self.workstreams)}/",
                hint="create one with `coditect init PHASE`",
            )
        if len(found) > 1:
            listing = ", ".join(p.stem for p in found)
            raise UsageError(
                f"several manifests in {self.display(self.workstreams)}/: {listing}; name the phase",
                hint=f"for example `coditect validate {found[0].stem}`",
            )
        return found[0]

    def _declaring(self, phase: str) -> Path | None:
        """The manifest whose ``phase:`` is ``phase`` although its file is named otherwise.

        Commands find a phase by its file name or by the name it declares (the name the store, branches and
        sessions use), so a renamed manifest works everywhere.
        """
        from coditect_cli.domain.loader import parse_yaml, read_manifest
        from coditect_cli.errors import ManifestError

        for path in self.manifests():
            try:
                data, _ = parse_yaml(read_manifest(path, path.name), path.name)
            except ManifestError:
                continue
            if isinstance(data, dict) and data.get("phase") == phase:
                return path
        return None

    def display(self, path: Path) -> str:
        """``path`` as users should see it: relative to the current directory when it is below it."""
        try:
            return os.path.relpath(path)
        except ValueError:
            return str(path)


def find_project(start: Path | None = None) -> Project:
    """Walk up from ``start`` (default: the current directory) to the directory holding ``workstreams/``.

    Stream worktrees live under ``<root>/.coditect/``; they contain a ``workstreams/`` of their own, so the
    walk skips past them to the real root. Without any ``workstreams/``, the git top level (or ``start``)
    is the root, so ``init`` can create the folder.
    """
    here = (start or Path.cwd()).resolve()
    inside = next((p for p in (here, *here.parents) if p.name == WORKTREES_DIR), None)
    if inside is not None:
        here = inside.parent
    candidates = [here, *here.parents]
    for directory in candidates:
        if (directory / WORKSTREAMS).is_dir():
            return Project(directory)
    for directory in candidates:
        if (directory / ".git").exists():
            return Project(directory)
    return Project(here)
