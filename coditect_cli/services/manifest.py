"""Load, validate and plan a phase: the use cases behind ``validate``, ``plan`` and ``init``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coditect_cli.adapters.memo import Memo
from coditect_cli.domain.loader import Loaded, load_manifest
from coditect_cli.errors import ManifestError, UsageError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.domain.plan import Plan
    from coditect_cli.domain.repo import RepoReader
    from coditect_cli.domain.validate import ValidationReport


@dataclass(frozen=True)
class Checked:
    """A manifest that passed validation, with its report (which may hold warnings)."""

    loaded: Loaded
    report: ValidationReport
    project: Project


_loaded: Memo[tuple[str, str, int, int], Loaded] = Memo(16)
"""Parsed manifests by (path, name shown, size, mtime): a warm server's workers hand theirs back
(coditect_cli.warm), so the next one does not parse and type-check the same file again."""


def load(project: Project, phase: str | None) -> Loaded:
    """Read the manifest of ``phase`` (or the only one) in ``project``.

    Parsed once per process: the result is immutable and keyed by the file's path, size and mtime, so the
    services one command calls (facts, PRs, …) share it.
    """
    path = project.manifest_path(phase)
    shown = project.display(path)
    try:
        stat = path.stat()
    except OSError:
        return load_manifest(path, shown)
    key = (str(path.resolve()), shown, stat.st_size, stat.st_mtime_ns)
    found = _loaded.get(key)
    if found is None:
        found = load_manifest(path, shown)
        _loaded.put(key, found)
    return found


def check(project: Project, phase: str | None, *, with_repos: bool = True) -> ValidationReport:
    """Validate the manifest of ``phase``; problems are in the report (ManifestError only when unreadable)."""
    loaded = load(project, phase)  # a manifest that cannot be read fails here, before the checks load

    from coditect_cli.adapters.git import GitReader
    from coditect_cli.domain.validate import validate

    return validate(loaded, project.root, GitReader() if with_repos else None)


def load_valid(
    project: Project, phase: str | None, *, with_repos: bool = True, reader: RepoReader | None = None
) -> Checked:
    """Load and validate; raise ManifestError listing the errors when the manifest is not valid.

    ``with_repos`` False skips the checks that need the repositories on disk; ``reader`` reads them (default:
    a :class:`~coditect_cli.adapters.git.GitReader`).
    """
    loaded = load(project, phase)  # a manifest that cannot be read fails here, before the checks load

    from coditect_cli.adapters.git import GitReader
    from coditect_cli.domain.validate import validate

    report = validate(loaded, project.root, (reader or GitReader()) if with_repos else None)
    if not report.ok:
        raise ManifestError(
            f"{loaded.source.display}: {len(report.errors)} error(s); run `coditect validate` for details",
            problems=report.errors,
        )
    return Checked(loaded, report, project)


def manifest_label(checked: Checked) -> str:
    """The manifest's path relative to the project root, as written in generated headers."""
    path = checked.loaded.source.path
    try:
        return path.resolve().relative_to(checked.project.root.resolve()).as_posix()
    except ValueError:
        return checked.loaded.source.display


def plan(project: Project, phase: str | None, *, push: bool = True) -> tuple[Checked, Plan]:
    """The setup plan for ``phase`` against the repositories as they are now (changes nothing)."""
    from coditect_cli.services.setup import compute_plan, read_context

    ctx = read_context(project, phase)
    return ctx.checked, compute_plan(ctx, push=push)


def init(project: Project, phase: str) -> Path:
    """Write a commented starter manifest for ``phase``; refuse to overwrite an existing one."""
    from importlib.resources import files
    from string import Template

    from coditect_cli.domain.manifest import _ID_RE

    if not _ID_RE.match(phase):
        raise UsageError(f"{phase!r} is not a valid phase name (letters, digits, '.', '_', '-')")
    target = project.workstreams / f"{phase}.yaml"
    for existing in (target, project.workstreams / f"{phase}.yml"):
        if existing.exists():
            raise UsageError(f"{project.display(existing)} already exists; not overwriting it")
    text = Template(files("coditect_cli").joinpath("templates/manifest.yaml").read_text()).substitute(
        phase=phase
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Exclusive create: a manifest appearing between the check and the write is not clobbered either.
    try:
        with target.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{project.display(target)} already exists; not overwriting it") from None
    return target


def schema_text() -> str:
    """The manifest's JSON Schema, as published in ``workstreams/schema.json``."""
    import json

    from coditect_cli.domain.manifest import Manifest

    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://coditect.dev/schema/workstreams-v1.json"
    schema["title"] = "coditect workstream manifest"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
