"""A scripted agent: a deterministic stand-in for an AI coding agent, for the sandbox and the tests.

Run in a stream's pane (``python3 -m coditect_cli.agents.scripted STREAM WORKTREE [--prompt-file FILE]``),
it works like a well-behaved agent would, in every worktree of the stream:

1. picks a file in the stream's own area: ``<first owned directory>/<stream>-notes.md`` (or, when the
   stream owns only files, the first of them);
2. commits twice there (a day plan made of today's deliverables read from the prompt, then a progress
   note); the ownership guard checks each commit like any other;
3. pushes when the branch has an upstream;
4. prints what it did and exits 0 (1 when anything failed, with git's message).

Where the stream works and what it owns comes from the pane's environment (``CODITECT_WORKTREES`` and
``CODITECT_OWNS``, JSON), else from the prompt file (``CODITECT_PROMPT_FILE`` or ``--prompt-file``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.errors import CoditectError


@dataclass(frozen=True)
class Area:
    """One worktree of the stream and the paths the stream owns there."""

    repo: str
    path: Path
    owns: tuple[str, ...]


_WORKTREE_LINE = re.compile(r"^- repository `([^`]+)`: worktree `([^`]+)`")
_OWNS_LINE = re.compile(r"^\s+- you own: (.*)$")
_TASK_LINE = re.compile(r"^- \[([^\]]+)\] (.*?)(?: — days .*)?$")


def areas_from_env(env: dict[str, str]) -> list[Area] | None:
    """The stream's worktrees and owned paths from ``CODITECT_WORKTREES``/``CODITECT_OWNS``, if set."""
    if "CODITECT_WORKTREES" not in env or "CODITECT_OWNS" not in env:
        return None
    worktrees: dict[str, str] = json.loads(env["CODITECT_WORKTREES"])
    owns: dict[str, list[str]] = json.loads(env["CODITECT_OWNS"])
    return [Area(repo, Path(path), tuple(owns.get(repo, ()))) for repo, path in worktrees.items()]


def areas_from_prompt(text: str) -> list[Area]:
    """The stream's worktrees and owned paths from its prompt file ("Where you work")."""
    out: list[Area] = []
    current: tuple[str, Path] | None = None
    for line in text.splitlines():
        m = _WORKTREE_LINE.match(line)
        if m:
            current = (m.group(1), Path(m.group(2)))
            continue
        o = _OWNS_LINE.match(line)
        if o and current is not None:
            owned = tuple(re.findall(r"`([^`]+)`", o.group(1)))
            out.append(Area(current[0], current[1], owned))
            current = None
    return out


def todays_tasks(text: str) -> list[str]:
    """Today's deliverables ("[id] title") from the prompt's "Today" (or "Before the phase") section."""
    tasks: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.startswith(("## Today", "## Before the phase"))
            continue
        if line.startswith("Coming up"):
            inside = False
        if inside:
            m = _TASK_LINE.match(line)
            if m:
                tasks.append(f"[{m.group(1)}] {m.group(2)}")
    return tasks


def target_file(area: Area, stream: str) -> str:
    """The file the agent writes: a notes file in the first owned directory, else the first owned file."""
    folders = [o for o in area.owns if o.endswith("/") or (area.path / o).is_dir()]
    # A visible folder reads better than .github/ and the like.
    folders.sort(key=lambda o: o.startswith("."))
    if folders:
        return f"{folders[0].rstrip('/')}/{stream}-notes.md"
    if not area.owns:
        raise CoditectError(f"stream {stream} owns nothing in {area.repo}; nothing to do there")
    return area.owns[0]


def _comment(path: str, text: str) -> str:
    """``text`` as a line that fits the file: Markdown as is, code as a comment."""
    if path.endswith((".md", ".txt", ".rst")):
        return text
    if path.endswith((".ts", ".tsx", ".js", ".jsx", ".go", ".rs", ".java", ".c", ".h")):
        return f"// {text}"
    return f"# {text}"


def _git(worktree: Path, *args: str, check: bool = True) -> proc.Completed:
    return proc.run(["git", "-C", str(worktree), *args], check=check, timeout=120)


def _commit(worktree: Path, path: str, lines: list[str], message: str) -> str:
    target = worktree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    new = not target.exists()
    with target.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(_comment(path, line) + "\n" if line else "\n")
    _git(worktree, "add", "--", path)
    _git(worktree, "commit", "-q", "-m", message, "--", path)
    sha = _git(worktree, "rev-parse", "--short", "HEAD").stdout.strip()
    return f"{'created' if new else 'updated'} {path} ({sha} {message})"


def work(stream: str, area: Area, tasks: list[str], day: str) -> list[str]:
    """Make the agent's commits in one worktree, push when there is an upstream; return what it did."""
    path = target_file(area, stream)
    done: list[str] = []
    heading = [] if (area.path / path).exists() else [f"# {stream}: working notes ({area.repo})", ""]
    plan = [f"## Day {day} plan", ""] + [f"- {t}" for t in tasks or ["catch up on review comments"]]
    done.append(
        _commit(area.path, path, [*heading, *plan, ""], f"docs({stream}): plan day {day} in {area.repo}")
    )
    first = tasks[0] if tasks else "review comments"
    progress = [f"- progress: started {first}; next step written down above", ""]
    done.append(_commit(area.path, path, progress, f"chore({stream}): log progress on {first}"))
    upstream = _git(
        area.path, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False
    )
    if upstream.returncode == 0 and upstream.stdout.strip():
        _git(area.path, "push", "-q")
        done.append(f"pushed to {upstream.stdout.strip()}")
    else:
        done.append("no upstream: not pushed")
    return done


def main(argv: list[str] | None = None) -> int:
    """Run the scripted agent; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="coditect-scripted-agent", description="A scripted stand-in for an AI coding agent."
    )
    parser.add_argument("stream")
    parser.add_argument("worktree", type=Path)
    parser.add_argument("--prompt-file", type=Path, default=None)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    prompt_file = args.prompt_file or (
        Path(env["CODITECT_PROMPT_FILE"]) if env.get("CODITECT_PROMPT_FILE") else None
    )
    prompt = prompt_file.read_text(encoding="utf-8") if prompt_file and prompt_file.is_file() else ""
    areas = areas_from_env(env) or areas_from_prompt(prompt) or [Area("worktree", args.worktree, ())]
    day_match = re.search(r"phase day (\d+)", prompt)
    day = day_match.group(1) if day_match else "1"
    tasks = todays_tasks(prompt)
    print(f"scripted agent for stream {args.stream}: {len(areas)} worktree(s), day {day}", flush=True)
    try:
        for area in areas:
            for line in work(args.stream, area, tasks, day):
                print(f"  {area.repo}: {line}", flush=True)
    except CoditectError as exc:
        print(f"scripted agent for stream {args.stream} failed: {exc.message}", file=sys.stderr, flush=True)
        return 1
    print(f"scripted agent for stream {args.stream}: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
