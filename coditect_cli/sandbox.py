"""The embedded local sandbox: a small imitation of the CODITECT cloud platform's repositories.

:func:`build_sandbox` creates, in one directory, four bare "origin" repositories (the
``coditect-rollout-master`` superproject and its three cloud submodules: infra, backend, frontend), each
with ``main`` and ``develop`` branches and a few lines of plausible content in exactly the paths the
phase-1 manifest's streams own, plus a working clone of the superproject with its submodules initialised
and checked out on ``develop``. Every repository ships the same ``ci/check.py``: small, genuine,
stdlib-only checks behind the manifest's gate commands. The files' contents are package data, one folder
per repository under ``coditect_cli/templates/sandbox/``; this module only assembles and commits them.

The build is deterministic (fixed identity and dates, global and system git config ignored) and refuses
to touch a non-empty directory that is not a previous sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from coditect_cli.adapters import proc
from coditect_cli.errors import ManifestError, RefusedError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

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

# The files committed executable, by path in their repository. Decided here, not read from the templates:
# the templates are kept 0644 and installers do not all preserve modes of package data.
_EXECUTABLE = frozenset({"ci/check.py", "scripts/deploy.sh"})


@dataclass(frozen=True)
class Sandbox:
    """A built sandbox: the user's working clone, the bare origins by repository name, and whether an
    earlier sandbox was replaced."""

    root: Path
    origins: dict[str, Path]
    rebuilt: bool


# --------------------------------------------------------------------------------------------------
# Repository contents: package data under coditect_cli/templates/sandbox/
# --------------------------------------------------------------------------------------------------
# <repository>/ holds that repository's own files as committed on main; _every-repository/ (ci/check.py)
# goes into all four repositories and _every-submodule/ (.gitignore) into the three submodules. The files
# are copied verbatim (they hold no placeholders). What depends on the build stays in code: .gitmodules
# (the origins' absolute paths), workstreams/ (the manifest given), the modes (_EXECUTABLE) and develop's
# CHANGELOG section (_DEVELOP_CHANGELOG).

_TEMPLATES = "templates/sandbox"
_EVERY_REPOSITORY = "_every-repository"
_EVERY_SUBMODULE = "_every-submodule"
# pip byte-compiles every .py file it installs, the templates' included: the caches are not content.
_NOT_CONTENT = frozenset({"__pycache__"})

# (repository name, path in the superproject)
_SUBMODULES: tuple[tuple[str, str], ...] = (
    ("coditect-cloud-infra", f"{SUBMODULE_DIR}/coditect-cloud-infra"),
    ("coditect-cloud-backend", f"{SUBMODULE_DIR}/coditect-cloud-backend"),
    ("coditect-cloud-frontend", f"{SUBMODULE_DIR}/coditect-cloud-frontend"),
)

_DEVELOP_CHANGELOG = "## Unreleased\n\n- Start of Phase 1 development.\n\n"


def _template_files(*layers: str) -> dict[str, str]:
    """The files of the template directories ``layers`` by path relative to the layer; later layers win."""
    files: dict[str, str] = {}

    def visit(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name not in _NOT_CONTENT:
                    visit(entry, f"{prefix}{entry.name}/")
            else:
                files[prefix + entry.name] = entry.read_bytes().decode("utf-8")

    templates = resources.files("coditect_cli").joinpath(_TEMPLATES)
    for layer in layers:
        visit(templates.joinpath(layer), "")
    return files


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
    for name, path in _SUBMODULES:
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
    for name, path in _SUBMODULES:
        origins[name] = origins_dir / f"{name}.git"
        content = _template_files(_EVERY_REPOSITORY, _EVERY_SUBMODULE, name)
        gitlinks[path] = _publish(
            origins[name], staging / name, content, f"chore: initial {name}", changelog_message
        )

    # The superproject: its own files, .gitmodules and the submodules' commits (main on main, develop on
    # develop).
    root_files = _template_files(_EVERY_REPOSITORY, SUPERPROJECT)
    root_files[".gitmodules"] = _gitmodules(origins)
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
    for _name, path in _SUBMODULES:
        sub = clone / path
        _git("checkout", "-q", "develop", cwd=sub)
        _git("config", "user.name", IDENTITY_NAME, cwd=sub)
        _git("config", "user.email", IDENTITY_EMAIL, cwd=sub)
        # Lets `git submodule update --remote` and recursive fetches reach the file:// origins; cloning a
        # submodule afresh (after a deinit) still needs `-c protocol.file.allow=always` on the command.
        _git("config", "protocol.file.allow", "always", cwd=sub)
    shutil.rmtree(staging)
    return Sandbox(root=clone, origins=origins, rebuilt=rebuilt)
