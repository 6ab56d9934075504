"""The built-in agent's tools, confined to its stream.

Every path names a file in one of the stream's worktrees (``repo`` picks which; default the first). A path
with ``..``, an absolute path outside the worktree, a path into ``.git`` or one that resolves outside the
worktree through a symlink is refused. Reading and searching cover the whole worktree; writing and editing
only the stream's owned paths (a write elsewhere is refused naming the owner, before the commit guard would).
Writes are atomic: a temporary file beside the target, flushed and synced, then renamed over it, so a killed
run leaves either the old file or the new one. Commands are the stream's gates (by name) and the manifest's
allow-list, with a timeout and truncated output; ``git_commit`` stages the stream's own changes only, and the
repository's hooks (the ownership guard) still run.

A tool never raises for what the model asked wrong: it returns a :class:`ToolResult` with ``is_error`` set,
which the loop sends back as the tool's answer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from coditect_cli.adapters import proc
from coditect_cli.domain.manifest import AnthropicAgent, Gate, Manifest, RepoId, Stream, StreamId
from coditect_cli.domain.ownership import RepoOwnership, ownership
from coditect_cli.errors import CoditectError

MAX_READ = 100_000
MAX_OUTPUT = 10_000
MAX_LIST = 500
MAX_MATCHES = 200
TEMP_MARK = ".coditect-tmp"
_TEMP_RE = re.compile(r"(^|/)\.[^/]*\.coditect-tmp-\d+$")
_SHELL_META = re.compile(r"[;&|`$<>()\n\\]")


@dataclass(frozen=True)
class Area:
    """One worktree of the stream: its repository id, resolved root and the patterns the stream owns."""

    repo: str
    root: Path
    owns: tuple[str, ...]


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: text for the model, whether it is an error, and the files it changed."""

    text: str
    is_error: bool = False
    changed: tuple[str, ...] = ()
    commit: str | None = None


class Refused(CoditectError):
    """A tool call the stream's confinement does not allow (becomes an error result, never an exit)."""

    code = "refused-by-tool"


def truncate(text: str, limit: int = MAX_OUTPUT) -> str:
    """``text`` cut to about ``limit`` characters: the head and the (more telling) tail, with a note."""
    if len(text) <= limit:
        return text
    head = limit // 5
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


def atomic_write(target: Path, content: str) -> None:
    """Write ``content`` to ``target`` through a temporary file in the same directory and a rename."""
    temp = target.parent / f".{target.name}{TEMP_MARK}-{os.getpid()}"
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_REPO = {"type": "string", "description": "Repository id (default: the stream's first)."}
_PATH = {"type": "string", "description": "Path relative to the repository's worktree."}

TOOL_SPECS: tuple[dict[str, Any], ...] = (
    {
        "name": "list_files",
        "description": "List the files under a directory of a worktree (recursively, .git excluded).",
        "input_schema": _schema({"path": _PATH, "repo": _REPO}, []),
    },
    {
        "name": "read_file",
        "description": "Read a text file of a worktree (long files are cut).",
        "input_schema": _schema({"path": _PATH, "repo": _REPO}, ["path"]),
    },
    {
        "name": "write_file",
        "description": "Create or replace a file. Only paths the stream owns may be written.",
        "input_schema": _schema(
            {"path": _PATH, "content": {"type": "string"}, "repo": _REPO}, ["path", "content"]
        ),
    },
    {
        "name": "edit_file",
        "description": "Replace the one occurrence of old_text by new_text in a file the stream owns.",
        "input_schema": _schema(
            {"path": _PATH, "old_text": {"type": "string"}, "new_text": {"type": "string"}, "repo": _REPO},
            ["path", "old_text", "new_text"],
        ),
    },
    {
        "name": "search",
        "description": "Search files for a regular expression; answers path:line: text.",
        "input_schema": _schema({"pattern": {"type": "string"}, "path": _PATH, "repo": _REPO}, ["pattern"]),
    },
    {
        "name": "run_command",
        "description": "Run a gate of the stream (by its name) or an allowed command, in the worktree.",
        "input_schema": _schema({"command": {"type": "string"}, "repo": _REPO}, ["command"]),
    },
    {
        "name": "git_commit",
        "description": "Commit the stream's changed files in a worktree (the ownership guard checks it).",
        "input_schema": _schema({"message": {"type": "string"}, "repo": _REPO}, ["message"]),
    },
)


class Toolbox:
    """The tools of one stream: confinement to its worktrees and owned paths, commands, commits."""

    def __init__(self, manifest: Manifest, stream: Stream, areas: list[Area]) -> None:
        if not areas:
            raise ValueError("a stream has at least one worktree")
        self.manifest = manifest
        self.stream = stream
        self.areas = {a.repo: Area(a.repo, a.root.resolve(), a.owns) for a in areas}
        self.first = areas[0].repo
        self.options: AnthropicAgent = stream.anthropic
        self._owners: dict[RepoId, RepoOwnership] = ownership(manifest)
        self._handlers: dict[str, Callable[[Mapping[str, Any]], ToolResult]] = {
            "list_files": self.list_files,
            "read_file": self.read_file,
            "write_file": self.write_file,
            "edit_file": self.edit_file,
            "search": self.search,
            "run_command": self.run_command,
            "git_commit": self.git_commit,
        }

    @property
    def specs(self) -> tuple[dict[str, Any], ...]:
        """The tool definitions sent to the model."""
        return TOOL_SPECS

    def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        """Run tool ``name``; a refusal or a failure is an error result, not an exception."""
        handler = self._handlers.get(name)
        if handler is None:
            return ToolResult(f"unknown tool {name!r}", is_error=True)
        try:
            return handler(args)
        except CoditectError as exc:
            return ToolResult(proc.redact(exc.message), is_error=True)
        except (OSError, UnicodeDecodeError, re.error, KeyError, TypeError, ValueError) as exc:
            return ToolResult(proc.redact(f"{type(exc).__name__}: {exc}"), is_error=True)

    # ------------------------------------------------------------------------------------ confinement
    def area(self, repo: object) -> Area:
        """The worktree ``repo`` names (the first when omitted)."""
        key = str(repo) if repo else self.first
        if key not in self.areas:
            raise Refused(f"repository {key!r} is not one of this stream's: {', '.join(self.areas)}")
        return self.areas[key]

    def resolve(self, area: Area, path: object) -> tuple[Path, str]:
        """The real path of ``path`` in ``area`` and its repository-relative form; refuse any escape."""
        text = str(path or ".")
        pure = PurePosixPath(text)
        if ".." in pure.parts:
            raise Refused(f"{text}: `..` is not allowed in paths")
        if pure.is_absolute():
            try:
                pure = PurePosixPath(Path(text).relative_to(area.root))
            except ValueError:
                raise Refused(f"{text}: outside the worktree of {area.repo}") from None
        real = (area.root / pure).resolve()
        try:
            rel = real.relative_to(area.root).as_posix()
        except ValueError:
            raise Refused(
                f"{text}: resolves outside the worktree of {area.repo} (through a symlink)"
            ) from None
        if rel == ".git" or rel.startswith(".git/"):
            raise Refused(f"{text}: the .git directory is not for tools")
        return real, "" if rel == "." else rel

    def check_owned(self, area: Area, rel: str) -> None:
        """Refuse when the stream does not own ``rel`` in ``area``, naming who does."""
        rules = self._owners.get(RepoId(area.repo))
        owners = rules.owners(rel).streams if rules else frozenset()
        if StreamId(self.stream.id) in owners:
            return
        if not owners:
            raise Refused(f"{rel}: not owned by stream {self.stream.id} (no stream owns it in {area.repo})")
        names = ", ".join(sorted(f"{s} ({self.manifest.stream(s).code_owner})" for s in owners))
        raise Refused(f"{rel}: owned by {names}, not by stream {self.stream.id}; write refused")

    # ------------------------------------------------------------------------------------ tools
    def list_files(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        real, rel = self.resolve(area, args.get("path"))
        if real.is_file():
            return ToolResult(rel)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(real):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            base = Path(dirpath).relative_to(area.root)
            found += [(base / f).as_posix() for f in sorted(filenames)]
            if len(found) > MAX_LIST:
                break
        more = f"\n[... listing cut at {MAX_LIST} entries]" if len(found) > MAX_LIST else ""
        return ToolResult("\n".join(found[:MAX_LIST]) + more if found else "(no files)")

    def read_file(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        real, rel = self.resolve(area, args["path"])
        if not real.is_file():
            return ToolResult(f"{rel}: no such file", is_error=True)
        return ToolResult(truncate(real.read_text(encoding="utf-8", errors="replace"), MAX_READ))

    def write_file(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        real, rel = self.resolve(area, args["path"])
        self.check_owned(area, rel)
        if real.is_dir():
            return ToolResult(f"{rel}: is a directory", is_error=True)
        content = str(args["content"])
        real.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(real, content)
        return ToolResult(f"wrote {rel} ({len(content)} characters)", changed=(f"{area.repo}:{rel}",))

    def edit_file(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        real, rel = self.resolve(area, args["path"])
        self.check_owned(area, rel)
        if not real.is_file():
            return ToolResult(f"{rel}: no such file", is_error=True)
        text = real.read_text(encoding="utf-8")
        old, new = str(args["old_text"]), str(args["new_text"])
        count = text.count(old) if old else 0
        if count != 1:
            return ToolResult(f"{rel}: old_text occurs {count} times (it must occur once)", is_error=True)
        atomic_write(real, text.replace(old, new, 1))
        return ToolResult(f"edited {rel}", changed=(f"{area.repo}:{rel}",))

    def search(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        real, _ = self.resolve(area, args.get("path"))
        pattern = re.compile(str(args["pattern"]))
        hits: list[str] = []
        files = [real] if real.is_file() else []
        if not files:
            for dirpath, dirnames, filenames in os.walk(real):
                dirnames[:] = sorted(d for d in dirnames if d != ".git")
                files += [Path(dirpath) / f for f in sorted(filenames)]
        for file in files:
            try:
                if file.stat().st_size > 1_000_000:
                    continue
                lines = file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            rel = file.relative_to(area.root).as_posix()
            for number, line in enumerate(lines, 1):
                if pattern.search(line):
                    hits.append(f"{rel}:{number}: {line[:300]}")
                    if len(hits) >= MAX_MATCHES:
                        return ToolResult("\n".join(hits) + f"\n[... stopped at {MAX_MATCHES} matches]")
        return ToolResult("\n".join(hits) if hits else "(no matches)")

    def allowed(self, command: str) -> Gate | None:
        """The gate ``command`` names or runs, a made-up gate for an allowed command; refuse anything else."""
        for gate in self.stream.gates:
            if command in (gate.name, gate.run):
                return gate
        timeout = self.options.command_timeout
        for entry in self.options.commands:
            if command == entry:
                return Gate(name="command", run=command, timeout=timeout)
            if entry.endswith(" *") and command.startswith(entry[:-1]):
                if _SHELL_META.search(command):
                    raise Refused(f"`{command}`: shell operators are not allowed after an allowed prefix")
                return Gate(name="command", run=command, timeout=timeout)
        names = [g.name for g in self.stream.gates] + list(self.options.commands)
        raise Refused(
            f"`{command}` is not a gate of this stream nor an allowed command ({', '.join(names) or 'none'})"
        )

    def run_command(self, args: Mapping[str, Any]) -> ToolResult:
        command = str(args["command"]).strip()
        gate = self.allowed(command)
        assert gate is not None
        area = self.area(args.get("repo") or gate.repo)
        timeout = min(gate.timeout, self.options.command_timeout)
        try:
            done = proc.run(
                ["/bin/sh", "-c", gate.run],
                cwd=area.root,
                pass_env=self.manifest.pass_env,
                check=False,
                timeout=timeout,
            )
        except CoditectError as exc:
            return ToolResult(proc.redact(f"`{gate.run}`: {exc.message}"), is_error=True)
        output = truncate(proc.redact(done.stdout + done.stderr))
        return ToolResult(f"exit status {done.returncode}\n{output}", is_error=done.returncode != 0)

    def git_commit(self, args: Mapping[str, Any]) -> ToolResult:
        area = self.area(args.get("repo"))
        message = str(args["message"]).strip()
        if not message:
            return ToolResult("a commit message is needed", is_error=True)
        status = proc.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=all"], cwd=area.root
        ).stdout.split("\0")
        paths: list[str] = []
        skipped: list[str] = []
        entries = iter(status)
        for entry in entries:
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code[0] in "RC":
                next(entries, None)  # the rename's source follows
            if _TEMP_RE.search(path):
                (area.root / path).unlink(missing_ok=True)  # left by a killed write: never committed
                continue
            try:
                self.check_owned(area, path)
            except Refused:
                skipped.append(path)
                continue
            paths.append(path)
        if not paths:
            return ToolResult("nothing of this stream's to commit", is_error=True)
        proc.run(["git", "add", "-A", "--", *paths], cwd=area.root)
        done = proc.run(["git", "commit", "-q", "-m", message], cwd=area.root, check=False)
        if done.returncode != 0:
            proc.run(["git", "reset", "-q", "--", *paths], cwd=area.root, check=False)
            return ToolResult(
                truncate(proc.redact(done.stdout + done.stderr)) or "commit failed", is_error=True
            )
        head = proc.run(["git", "rev-parse", "HEAD"], cwd=area.root).stdout.strip()
        note = f"; left alone (not the stream's): {', '.join(skipped)}" if skipped else ""
        return ToolResult(f"committed {head[:12]}: {len(paths)} file(s){note}", commit=head)
