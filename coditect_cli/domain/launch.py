"""Launching the streams of a phase, the pure part: what the tmux session should look like.

The session name, the layout, each stream's pane (directory, title, environment, agent command) and the
prompt the agent reads. Nothing here starts a process or talks to tmux: :mod:`coditect_cli.services.launch`
does, through :mod:`coditect_cli.adapters.tmux`.

Quoting rule: nothing written in the manifest reaches a shell line unquoted, and no environment value
reaches a process argument or a tmux command line (where ``ps``, ``--verbose`` and tmux's error messages would
show it): a pane's whole environment is written to a 0600 file (:func:`env_file_text`) that the pane's
command sources before it execs the agent (:func:`pane_argv`). The prompt goes into a file, and a ``run``
template's placeholders are replaced by values quoted for where they stand (:func:`substitute`). The template
itself is a command line the manifest's author wrote on purpose, and is run by ``/bin/sh -c``.

Environment of every pane (besides the stream's own ``env``)
-------------------------------------------------------------
``CODITECT_PHASE``
    The phase name.
``CODITECT_STREAM``
    The stream id.
``CODITECT_WORKTREE``
    The pane's directory: the stream's worktree of its first repository.
``CODITECT_WORKTREES``
    Every worktree of the stream as a JSON object ``{"<repo id>": "<absolute path>", ...}`` in the order
    of the stream's ``work`` (JSON because paths may contain any character; ``jq -r .backend`` reads one).
``CODITECT_OWNS``
    The paths the stream owns, as JSON ``{"<repo id>": ["src/", ...], ...}``.
``CODITECT_PROMPT_FILE``
    The prompt file (Markdown).
``PATH``
    The launching process's ``PATH``, so the agent found by the pre-launch check is the one that runs even
    when the tmux server was started from another environment.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from coditect_cli.domain.manifest import WEEKDAYS, Manifest, Schedule, Stream
from coditect_cli.errors import ManifestError

Layout = Literal["tiled", "windows"]
AgentKind = Literal["shell", "claude", "codex", "aider", "anthropic", "template"]

MAX_TILED = 6
"""Up to this many streams share one tiled window (layout ``auto``); more get a window each."""

STREAM_OPTION = "@coditect_stream"
"""The tmux pane user option naming the pane's stream: panes are found by it, never by index."""
TITLE_OPTION = "@coditect_title"
"""The pane user option holding its title; the pane border shows it (programs cannot overwrite it)."""

SESSION_SIZE = (240, 80)
"""Width and height of a new (detached) session: six tiled panes of 80x26 fit."""

PLACEHOLDERS = ("prompt_file", "stream", "worktree")

# Shell words that are not programs on PATH: a template starting with one is not checked for a program.
_SHELL_BUILTINS = frozenset(
    {
        "!", ".", ":", "[", "{", "(", "alias", "bg", "break", "case", "cd", "continue", "echo", "eval",
        "exit", "export", "false", "fg", "for", "if", "printf", "pwd", "read", "return", "set", "shift",
        "source", "test", "times", "trap", "true", "type", "ulimit", "umask", "unset", "until", "wait",
        "while",
    }
)  # fmt: skip
# Prefix words whose argument is the real program.
_WRAPPERS = frozenset({"exec", "command", "nohup", "env"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PLACEHOLDER = re.compile(r"\{(prompt_file|stream|worktree)\}")


# ----------------------------------------------------------------------------------------------- naming


def session_name(project: str, phase: str, root: str) -> str:
    """The tmux session of a phase in one checkout: ``coditect-<project>-<phase>-<hash>``, safe in tmux targets.

    ``<hash>`` is 8 hex digits of the SHA-256 of ``root``, the project root's resolved path: two checkouts
    (clones, copies) of one project never share a session, and one checkout always gets the same name.
    """
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{legacy_session_name(project, phase)}-{digest}"


def legacy_session_name(project: str, phase: str) -> str:
    """The name sessions had before it carried the root's hash: ``coditect-<project>-<phase>``.

    tmux reads ``:`` and ``.`` in a target as separators (and ``#`` starts a format), so everything
    outside ``[A-Za-z0-9_-]`` becomes ``-``. A session of this name is still used when its panes started
    in this checkout (:func:`coditect_cli.services.session.find_session`).
    """
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"coditect-{project}-{phase}")


def choose_layout(requested: str, streams: int) -> Layout:
    """``tiled`` (one window) or ``windows`` (one per stream): ``auto`` tiles up to :data:`MAX_TILED`."""
    if requested == "tiled":
        return "tiled"
    if requested == "windows":
        return "windows"
    return "tiled" if streams <= MAX_TILED else "windows"


def ordered_streams(manifest: Manifest) -> list[Stream]:
    """The streams in terminal order (ties by id): the order of the panes."""
    return manifest.ordered_streams()


# ----------------------------------------------------------------------------------------------- agents


@dataclass(frozen=True)
class AgentCommand:
    """How a pane runs its stream's agent.

    ``argv`` is handed to tmux as separate arguments, which tmux ``execvp``s directly (the user's
    ``default-shell`` never parses it). ``program`` is what must be on PATH (None when the command starts
    with a shell builtin or a variable, which cannot be checked before it runs).
    """

    kind: AgentKind
    argv: tuple[str, ...]
    program: str | None
    display: str


PLACEHOLDER_ENV = {
    "prompt_file": "CODITECT_PROMPT_FILE",
    "stream": "CODITECT_STREAM",
    "worktree": "CODITECT_WORKTREE",
}
"""The pane variable holding each placeholder's value (what an inner shell should read instead)."""

_SHELL_SPECIAL = re.compile(r"[\s!\"#$&'()*;<>?\[\\\]^`{|}~\x00-\x1f\x7f]")
_WORD_END = frozenset(" \t\n;&|()<>")
_REPARSERS = frozenset({"eval", "ssh"})


class UnsafeTemplate(ManifestError):
    """A ``run`` template whose placeholder cannot be quoted safely for the value it gets (exit 2)."""


def _shell_safe(value: str) -> bool:
    """Whether ``value`` is one plain word to any shell, at any depth (no space, quote, ``$``, glob...)."""
    return bool(value) and not _SHELL_SPECIAL.search(value)


def substitute(template: str, values: dict[str, str]) -> str:
    """``template`` with ``{prompt_file}``, ``{stream}``, ``{worktree}`` replaced by values that stay one
    shell word at every level of shell that reads them.

    A value made only of plain characters (letters, digits, ``_@%+=:,./-``) is inserted as it is: it is one
    word to any shell, however deeply nested (``bash -c "head {prompt_file}"``, ``ssh host cat {x}``). A
    value with a space, a quote, ``$`` or any other character a shell interprets is inserted quoted
    (:func:`shlex.quote`) when the placeholder is a word of its own, outside quotes, in a template without
    ``eval`` or ``ssh``; anywhere else a second shell could read the value again, so :class:`UnsafeTemplate`
    is raised instead (the caller names the manifest line).
    """
    words = _words(template) or []
    reparsed = sorted(_REPARSERS.intersection(words))
    out: list[str] = []
    quote: str | None = None  # the quote we are inside, if any
    i = 0
    while i < len(template):
        m = _PLACEHOLDER.match(template, i)
        if m:
            name = m.group(1)
            value = values[name]
            if _shell_safe(value):
                out.append(value)
            else:
                alone = (i == 0 or template[i - 1] in _WORD_END) and (
                    m.end() == len(template) or template[m.end()] in _WORD_END
                )
                if quote is None and alone and not reparsed:
                    out.append(shlex.quote(value))
                else:
                    where = (
                        f"inside {quote}...{quote} quotes"
                        if quote
                        else f"in a template that runs `{reparsed[0]}`"
                        if reparsed
                        else "joined to other characters"
                    )
                    raise UnsafeTemplate(
                        f"{{{name}}} stands {where}, where another shell may read its value again, and the "
                        f"value {value!r} holds characters a shell interprets (spaces, quotes, $...): coditect "
                        f"cannot quote it safely. Make {{{name}}} a word of its own outside quotes, or let the "
                        f'inner shell read "${PLACEHOLDER_ENV[name]}" '
                        f"(e.g. bash -c 'head \"${PLACEHOLDER_ENV[name]}\"')"
                    )
            i = m.end()
            continue
        c = template[i]
        if c == "\\" and quote != "'":
            out.append(template[i : i + 2])
            i += 2
            continue
        if quote is None and c in "'\"":
            quote = c
        elif c == quote:
            quote = None
        out.append(c)
        i += 1
    return "".join(out)


def _words(line: str) -> list[str] | None:
    """Shell words of ``line`` with operators (``;``, ``&&``, ``|``, ``(``...) as their own tokens."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the shell report it in the pane
        return None


def _is_operator(word: str) -> bool:
    return bool(word) and all(c in "();<>|&" for c in word)


def program_of(line: str) -> str | None:
    """The program a shell command line starts (skipping ``VAR=value`` and ``exec``/``env``...), or None."""
    words = _words(line)
    if not words:
        return None
    for word in words:
        if _ASSIGNMENT.match(word) or word in _WRAPPERS or word.startswith("-"):
            continue
        if word in _SHELL_BUILTINS or _is_operator(word) or "$" in word or "`" in word:
            return None
        return word
    return None


def simple_command(line: str) -> bool:
    """Whether ``line`` is one plain command that ``exec`` can prefix (so the agent is the pane's process)."""
    if "\n" in line:
        return False
    words = _words(line)
    if not words or any(_is_operator(w) for w in words):
        return False
    first = words[0]
    return not (_ASSIGNMENT.match(first) or first in _SHELL_BUILTINS or first in _WRAPPERS)


# ----------------------------------------------------------------------------------------------- schedule


def day_one(schedule: Schedule) -> _dt.date:
    """The date of phase day 1: the schedule's start, or the next workday when it starts on a day off."""
    day = schedule.start
    for _ in range(7):
        if WEEKDAYS[day.weekday()] in schedule.workdays:
            return day
        day += _dt.timedelta(days=1)
    return schedule.start  # unreachable: a schedule has at least one workday


def phase_day(schedule: Schedule, today: _dt.date) -> int:
    """The phase day ``today`` falls on, counting workdays only (day 1 is :func:`day_one`).

    A day off counts as the workday before it; a date before day 1 gives 0.
    """
    first = day_one(schedule)
    if today < first:
        return 0
    workdays = {WEEKDAYS.index(w) for w in schedule.workdays}
    full_weeks, rest = divmod((today - first).days + 1, 7)
    count = full_weeks * len(workdays)
    for offset in range(rest):
        if (first.weekday() + offset) % 7 in workdays:
            count += 1
    return count


def day_date(schedule: Schedule, day: int) -> _dt.date:
    """The calendar date of phase day ``day`` (>= 1)."""
    date = day_one(schedule)
    remaining = day - 1
    while remaining > 0:
        date += _dt.timedelta(days=1)
        if WEEKDAYS[date.weekday()] in schedule.workdays:
            remaining -= 1
    return date


# ----------------------------------------------------------------------------------------------- prompt


@dataclass(frozen=True)
class StreamWorktree:
    """One worktree of a stream: its repository, path, feature branch and owned paths."""

    repo: str
    path: Path
    branch: str
    owns: tuple[str, ...]


def stream_worktrees(manifest: Manifest, stream: Stream, paths: dict[str, Path]) -> list[StreamWorktree]:
    """The stream's worktrees in the order of its ``work``; ``paths`` maps ``<stream>@<repo>`` to a path."""
    return [
        StreamWorktree(
            w.repo, paths[f"{stream.id}@{w.repo}"], manifest.feature_branch(stream, w), tuple(w.owns)
        )
        for w in stream.work
    ]


def render_prompt(manifest: Manifest, stream: Stream, worktrees: list[StreamWorktree], day: int) -> str:
    """The prompt file of ``stream`` for phase day ``day``: the task, the worktrees, today's work, the rules.

    Day 0 means the phase has not begun: the prompt then shows day 1's deliverables.
    """
    integration = manifest.integration_branch
    lines = [f"# {manifest.phase}: stream {stream.id} ({stream.name})", ""]
    if manifest.title:
        lines += [f"Phase: {manifest.title}", ""]
    lines += [f"Terminal {stream.terminal}, agent role: {stream.role}.", ""]
    lines += ["## Your task", "", stream.prompt.strip() or "(the manifest gives no task description)", ""]
    lines += ["## Where you work", ""]
    for wt in worktrees:
        lines.append(f"- repository `{wt.repo}`: worktree `{wt.path}`, branch `{wt.branch}`")
        lines.append(f"  - you own: {', '.join(f'`{p}`' for p in wt.owns)}")
    lines += ["", f"Integration branch: `{integration}` (in every repository above).", ""]
    shared = [s for s in manifest.shared if stream.id in s.streams]
    if shared:
        lines += ["Shared paths (every listed stream must approve a change):"]
        for s in shared:
            others = ", ".join(x for x in s.streams if x != stream.id)
            lines.append(f"- `{s.repo}`: {', '.join(f'`{p}`' for p in s.paths)} (with {others})")
        lines.append("")
    shown_day = max(day, 1)
    date = day_date(manifest.schedule, shown_day)
    if day >= 1:
        lines += [f"## Today: phase day {day} of {manifest.schedule.days} ({date:%a %Y-%m-%d})", ""]
    else:
        lines += [f"## Before the phase: day 1 is {date:%a %Y-%m-%d}", ""]
    due = [d for d in stream.deliverables if shown_day in d.days]
    if due:
        for d in due:
            after = f" (after: {', '.join(d.depends_on)})" if d.depends_on else ""
            lines.append(f"- [{d.id}] {d.title} — days {d.days}{after}")
    else:
        lines.append(f"- nothing scheduled for day {shown_day}; see the full list below")
    later = [d for d in stream.deliverables if d.days.first > shown_day]
    if later:
        lines += ["", "Coming up:"]
        lines += [f"- [{d.id}] {d.title} — days {d.days}" for d in later]
    lines += [
        "",
        "## Rules",
        "",
        "- Commit only in the paths you own (listed above); the ownership guard refuses any other change on "
        f"your branch, however it comes (commit, merge, cherry-pick, rebase), except from `{integration}`.",
        f"- Work on your branch; open a pull request from it into `{integration}`. Never push to "
        f"`{integration}`, `{manifest.branches.develop}` or `{manifest.branches.base}` directly.",
        "- Keep the quality gates green before you ask for review"
        + (f": {', '.join(g.name for g in stream.gates)}." if stream.gates else "."),
        "- Commit early with clear messages; push your branch so the integration checkpoint can see it.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- panes


@dataclass(frozen=True)
class PaneSpec:
    """What one stream's pane should be: where, with what environment, running what."""

    stream: str
    title: str
    cwd: Path
    env: tuple[tuple[str, str], ...]
    agent: AgentCommand
    log: Path | None = None
    env_file: Path | None = None  # where ``env`` (and what the agent needs) is written for the pane to source


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_file_text(values: dict[str, str]) -> str:
    """``NAME='value'`` lines a POSIX shell sources (values quoted; a name that is not a shell identifier,
    which the manifest refuses anyway, is left out rather than run as a command). Written 0600."""
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items() if _ENV_NAME.fullmatch(k))


ENV_WRAPPER = 'set -a; . "$0"; set +a; exec "$@"'
"""What ``/bin/sh -c`` runs before the agent: export the variables of the file given as ``$0``, then exec the
agent's own argv (the remaining arguments, never re-parsed): the pane's process has them from its start."""


def with_env_file(command: AgentCommand, env_file: Path) -> AgentCommand:
    """``command`` run after the shell exported the variables of ``env_file`` (values stay off argv)."""
    argv = ("/bin/sh", "-c", ENV_WRAPPER, str(env_file), *command.argv)
    return AgentCommand(command.kind, argv, command.program, command.display)


def pane_argv(pane: PaneSpec) -> tuple[str, ...]:
    """The command tmux starts for ``pane``: its agent, after sourcing the pane's environment file.

    The pane's variables reach it only through that file (written by the caller, :func:`env_file_text`):
    never as ``-e NAME=VALUE`` on tmux's command line. A pane without one runs its agent as it is.
    """
    if pane.env_file is None:
        return pane.agent.argv
    return with_env_file(pane.agent, pane.env_file).argv


@dataclass(frozen=True)
class SessionSpec:
    """The whole session: its name, layout and panes in terminal order."""

    name: str
    phase: str
    layout: Layout
    panes: tuple[PaneSpec, ...]

    @property
    def window_name(self) -> str:
        """The name of the single window of the tiled layout."""
        return self.phase


def pane_title(stream: Stream, worktrees: list[StreamWorktree]) -> str:
    """``<stream> · <branch>``, plus ``(+N repos)`` for a stream working in several repositories."""
    more = f" (+{len(worktrees) - 1} repos)" if len(worktrees) > 1 else ""
    return f"{stream.id} · {worktrees[0].branch}{more}"


def pane_env(
    manifest: Manifest,
    stream: Stream,
    worktrees: list[StreamWorktree],
    prompt_file: Path,
    path: str | None,
) -> tuple[tuple[str, str], ...]:
    """The environment a stream's pane gets: its ``env`` and the ``CODITECT_*`` variables (ours win)."""
    env = dict(stream.env)
    env.update(
        {
            "CODITECT_PHASE": manifest.phase,
            "CODITECT_STREAM": stream.id,
            "CODITECT_WORKTREE": str(worktrees[0].path),
            "CODITECT_WORKTREES": json.dumps({w.repo: str(w.path) for w in worktrees}),
            "CODITECT_OWNS": json.dumps({w.repo: list(w.owns) for w in worktrees}),
            "CODITECT_PROMPT_FILE": str(prompt_file),
        }
    )
    if path is not None and "PATH" not in stream.env:
        env["PATH"] = path
    return tuple(env.items())


# ----------------------------------------------------------------------------------------------- tmux state


@dataclass(frozen=True)
class PaneState:
    """One pane as tmux reports it (one row of ``list-panes -a``)."""

    session: str
    window_id: str
    window_index: int
    window_name: str
    pane_id: str
    pane_pid: int | None
    dead: bool
    dead_status: int | None
    dead_signal: int | None
    command: str
    cwd: str
    title: str
    stream: str
    stream_title: str
    socket_path: str
    start_path: str = ""  # the directory the pane was started in (tmux 3.3: ``pane_start_path``)

    @property
    def finished(self) -> bool:
        """The agent has exited and tmux has its exit status or signal (a pane is marked dead when its tty
        closes, slightly before tmux reaps the process)."""
        return self.dead and (self.dead_status is not None or self.dead_signal is not None)


def panes_by_stream(rows: list[PaneState]) -> dict[str, PaneState]:
    """The first pane of each stream (a stream has one pane; a duplicate made by hand is ignored)."""
    out: dict[str, PaneState] = {}
    for row in rows:
        if row.stream and row.stream not in out:
            out[row.stream] = row
    return out


class Terminal(Protocol):
    """What launching needs from a terminal multiplexer (tmux, through :mod:`coditect_cli.adapters.tmux`)."""

    socket: str | None

    def panes(self) -> list[PaneState]:
        """Every pane of the server (none when no server runs)."""
        ...

    def create_session(self, spec: SessionSpec) -> None:
        """Create the session with every pane of ``spec``."""
        ...

    def add_panes(self, spec: SessionSpec, missing: list[PaneSpec], existing: dict[str, PaneState]) -> None:
        """Add the ``missing`` panes to the existing session, keeping terminal order."""
        ...
