"""Reading an agent's rendered screen (``capture-pane -p``: the live screen, never the scrollback).

A fallback and a cross-check for the agent's own signals: it only *reports* what the screen shows (a dialog,
an approval prompt, a spinner), it never presses anything. Patterns are the texts of Claude Code 2.1.x,
Codex and aider as they render them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

ScreenKind = Literal["dialog", "approval", "working", "none"]

# A dialog that stops an agent before it works (first match wins; the line shown is the matched one).
_DIALOGS = (
    re.compile(r"Quick safety check.*|Do you trust the files in this folder\?.*"),
    re.compile(r"Detected a custom API key in your environment"),
    re.compile(r"Choose the text style.*|Select login method.*|Unable to connect to Anthropic services"),
    re.compile(r"Do you trust the contents of this directory\?.*"),  # codex
    re.compile(r"Welcome to Codex.*|Sign in with ChatGPT.*"),  # codex's first run (no login yet)
)
_APPROVAL = re.compile(
    r"Do you want to (?:proceed|make this edit|create|allow|run)[^?\n]*\?"
    r"|Would you like to run the following command\?|Allow command\?|\(Y\)es/\(N\)o"
)
_WORKING = re.compile(r"esc to interrupt|Esc to interrupt|ctrl\+c to interrupt", re.IGNORECASE)
_RULE = re.compile(r"^[\s─━═╌-]{8,}$")
_SOLID = re.compile(r"^[─━═]{8,}$")
_TMUX_DEAD = re.compile(r"^Pane is dead \(.*\)$")  # what tmux prints under a dead pane (remain-on-exit)
_BOX = str.maketrans("", "", "│╭╮╰╯┃")


@dataclass(frozen=True)
class ScreenSignal:
    """What the screen shows: a dialog (its line), an approval prompt (the question), a busy agent, or none."""

    kind: ScreenKind
    text: str = ""


def visible_lines(screen: str) -> list[str]:
    """The screen's non-empty lines, box-drawing borders removed, spaces squeezed."""
    return list(_visible(screen))


@functools.lru_cache(maxsize=4)
def _visible(screen: str) -> tuple[str, ...]:
    # Cached: a pane's state and its last line both read the same screen.
    out: list[str] = []
    for line in screen.splitlines():
        clean = " ".join(line.translate(_BOX).split())
        if clean:
            out.append(clean)
    return tuple(out)


def last_line(screen: str) -> str | None:
    """The last meaningful line of the screen (rules and prompt-only lines skipped), at most 200 chars."""
    for line in reversed(_visible(screen)):
        if _RULE.match(line) or _TMUX_DEAD.match(line) or line in {">", "❯", "$", "#"}:
            continue
        return line[:200]
    return None


def read_screen(screen: str) -> ScreenSignal:
    """Classify the live screen of an agent's pane."""
    lines = _visible(screen)
    # Each pattern searched once over the lines joined (no pattern crosses a newline): the first match is in
    # the first line that matches, as line by line.
    text = "\n".join(lines)
    for pattern in _DIALOGS:
        m = pattern.search(text)
        if m:
            return ScreenSignal("dialog", lines[text.count("\n", 0, m.start())][:200])
    m = _APPROVAL.search(text)
    if m:
        return ScreenSignal("approval", _question(list(lines), text.count("\n", 0, m.start())))
    if _WORKING.search("\n".join(lines[-8:])):
        return ScreenSignal("working")
    return ScreenSignal("none")


def _question(lines: list[str], at: int) -> str:
    """The approval prompt: what it is about (the lines since the solid rule above it, dashed rules and tips
    left out) and its question."""
    start = at
    while start > 0 and not _SOLID.match(lines[start - 1]) and at - start < 10:
        start -= 1
    about = [ln for ln in lines[start:at] if not _RULE.match(ln) and not ln.startswith("Tip:")]
    question = _APPROVAL.search(lines[at])
    asked = question.group(0) if question else lines[at]
    return (": ".join([" · ".join(about), asked]) if about else asked)[:300]
