"""A scripted agent: a deterministic stand-in for an AI coding agent, for the sandbox and the tests.

Run in a stream's pane (``python3 -m coditect_cli.agents.scripted STREAM WORKTREE [--prompt-file FILE]``),
it works like a well-behaved agent would, in every worktree of the stream:

1. picks a file in the stream's own area: ``<first owned directory>/<stream>-notes.md`` (or, when the
   stream owns only files, the first of them);
2. commits twice there (a day plan made of today's deliverables read from the prompt, then a progress
   note); the ownership guard checks each commit like any other;
3. pushes when the branch has an upstream;
4. prints what it did and exits 0 (1 when anything failed, with git's message).

With ``--serve`` it stays, as an interactive agent does, and works from the messages typed into its pane
(one per line), reporting its turns the way Claude Code's hooks do (``UserPromptSubmit`` when a message
arrives, ``Stop`` when its turn ends) into the events file ``CODITECT_EVENTS_FILE`` names:

- "your next task is [ID] ...": commits a note of the task in its own area and pushes;
- "... is not done yet ...": commits what is uncommitted and pushes what is unpushed;
- any other message of the autopilot (a failing gate, a review asking for changes, a comment, a branch behind
  its integration branch): removes what ``--break-gate`` planted, commits a note answering it, pushes;
- a notice (a checkpoint's pause or outcome, a sync's summary): nothing (it never pushes under a checkpoint).

``--misbehave no-push`` leaves its first task unpushed (an agent claiming done too early) and
``--break-gate FILE`` plants FILE with its first task (for a gate such as ``test ! -f FILE``).

Where the stream works and what it owns comes from the pane's environment (``CODITECT_WORKTREES`` and
``CODITECT_OWNS``, JSON), else from the prompt file (``CODITECT_PROMPT_FILE`` or ``--prompt-file``).
"""

from __future__ import annotations

import argparse
import contextlib
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


def _event(name: str, prompt: str | None = None) -> None:
    """Append one hook-like event to the stream's events file (when coditect gave one)."""
    path = os.environ.get("CODITECT_EVENTS_FILE")
    if not path:
        return
    from coditect_cli.agents.events import append, record

    payload: dict[str, object] = {"hook_event_name": name, "session_id": f"scripted-{os.getpid()}"}
    if prompt is not None:
        payload["prompt"] = prompt
    with contextlib.suppress(OSError):
        append(Path(path), record(payload))


_UPDATE = re.compile(r"update your branch from origin/([A-Za-z0-9._/-]+[A-Za-z0-9_-])")


def _update(area: Area, integration: str) -> str:
    """Merge origin's integration branch into the stream's branch, keeping the stream's side of a conflict
    (its own files)."""
    _git(area.path, "fetch", "-q", "origin", integration)
    done = _git(area.path, "merge", "-q", "--no-edit", "-X", "ours", f"origin/{integration}", check=False)
    if done.returncode != 0:
        _git(area.path, "merge", "--abort", check=False)
        return f"could not merge origin/{integration}: {done.stderr.strip()[:200]}"
    return f"merged origin/{integration}"


_TASK = re.compile(r"your next task is \[([^\]]+)\] (.*?) \(days")


def _push(area: Area) -> str:
    upstream = _git(
        area.path, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False
    )
    if upstream.returncode == 0 and upstream.stdout.strip():
        _git(area.path, "push", "-q")
        return "pushed"
    branch = _git(area.path, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    _git(area.path, "push", "-q", "-u", "origin", branch)
    return "pushed (upstream set)"


def answer(stream: str, areas: list[Area], message: str, state: dict[str, object]) -> list[str]:
    """Act on one message the way a well-behaved agent would (see the module docstring)."""
    done: list[str] = []
    if (
        "coditect autopilot:" not in message
        or "checkpoint" in message.split("coditect autopilot:", 1)[1][:40]
    ):
        # A notice (a checkpoint's pause, its outcome, a sync): nothing to do, and no push under a checkpoint.
        return ["noted"]
    task = _TASK.search(message)
    if task is not None:
        first = not state.get("worked")
        state["worked"] = True
        for area in areas:
            path = target_file(area, stream)
            done.append(
                _commit(
                    area.path,
                    path,
                    [f"- task [{task.group(1)}]: {task.group(2)}", ""],
                    f"feat({stream}): {task.group(1)}",
                )
            )
            broken = state.get("break_gate")
            if first and isinstance(broken, str) and area is areas[0]:
                (area.path / broken).write_text("FAIL_GATE planted by --break-gate\n", encoding="utf-8")
                _git(area.path, "add", "--", broken)
                _git(area.path, "commit", "-q", "-m", f"wip({stream}): {broken}", "--", broken)
                done.append(f"planted {broken}")
            if first and state.get("misbehave") == "no-push":
                done.append("not pushed (misbehaving)")
                continue
            done.append(_push(area))
        return done
    update = _UPDATE.search(message)
    for area in areas:
        if update is not None:
            done.append(_update(area, update.group(1)))
        broken = state.get("break_gate")
        if isinstance(broken, str) and (area.path / broken).exists():
            _git(area.path, "rm", "-q", "--", broken)
            _git(area.path, "commit", "-q", "-m", f"fix({stream}): remove {broken}")
            done.append(f"removed {broken}")
        if _git(area.path, "status", "--porcelain").stdout.strip():
            _git(area.path, "add", "-A")
            _git(area.path, "commit", "-q", "-m", f"chore({stream}): commit pending work")
            done.append("committed pending work")
        if "is not done yet" not in message and update is None:
            path = target_file(area, stream)
            note = " ".join(message.split())[:120]
            done.append(
                _commit(area.path, path, [f"- answered: {note}", ""], f"fix({stream}): answer coditect")
            )
        done.append(_push(area))
    return done


def serve(stream: str, areas: list[Area], state: dict[str, object]) -> int:
    """The interactive loop: one message per line on stdin, a turn each (see the module docstring)."""
    _event("SessionStart")
    print(f"scripted agent for stream {stream}: waiting for a message", flush=True)
    _event("Stop")
    for line in sys.stdin:
        message = line.strip()
        if not message:
            continue
        _event("UserPromptSubmit", message)
        print(f"> {message[:100]}", flush=True)
        try:
            for what in answer(stream, areas, message, state):
                print(f"  {what}", flush=True)
        except CoditectError as exc:
            print(f"  failed: {exc.message}", flush=True)
        print(f"scripted agent for stream {stream}: turn done", flush=True)
        _event("Stop")
    _event("SessionEnd")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the scripted agent; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="coditect-scripted-agent", description="A scripted stand-in for an AI coding agent."
    )
    parser.add_argument("stream")
    parser.add_argument("worktree", type=Path)
    parser.add_argument("--prompt-file", type=Path, default=None)
    parser.add_argument("--serve", action="store_true", help="Stay and work from the messages typed in.")
    parser.add_argument("--misbehave", choices=["no-push"], default=None)
    parser.add_argument("--break-gate", default=None, metavar="FILE")
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
    if args.serve:
        return serve(args.stream, areas, {"misbehave": args.misbehave, "break_gate": args.break_gate})
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
