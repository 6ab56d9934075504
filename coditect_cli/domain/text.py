"""Text from outside (file names, commit subjects, titles, reasons, PR bodies) made safe to show or to type.

Two uses, one character rule:

- :func:`neutralise` for everything coditect prints on a terminal or writes into a Markdown report: every
  control character but newline and tab is shown as a visible ``\\xNN`` escape, so no escape sequence in a
  file name or commit subject can recolour, retitle or rewrite the user's terminal.
- :func:`pane_lines` for everything coditect types into a pane (``streams send``, ``sync --send``, checkpoint
  announcements): escape sequences and control characters are removed, and the text is cut into lines that
  cannot do anything: ``#`` comments for a shell, one single line for an agent (a newline would submit).
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab and newline, DEL, C1 controls, line/paragraph separators and bidirectional overrides."""

_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks, clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # two- and three-character sequences (and a lone ESC)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` safe for a terminal or a report: control characters but newline and tab as ``\\xNN``."""
    return _CONTROL.sub(_visible, text)


def pane_lines(text: str, *, shell: bool) -> list[str]:
    """The lines to type for ``text``, each followed by Enter; nothing in them can act on the pane.

    Escape sequences and control characters are removed and tabs become spaces. For a ``shell`` pane each
    line of ``text`` becomes its own ``#`` comment (blank lines are dropped); for an agent the lines are
    joined into one line with `` | `` (a newline would be an early Enter). Empty ``text`` gives one empty
    line: just Enter.
    """
    cleaned = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    lines = [_CONTROL.sub("", line).rstrip() for line in _LINE_BREAK.split(cleaned)]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return [""]
    if shell:
        return [line if line.startswith("#") else f"# {line}" for line in lines]
    return [" | ".join(line.strip() for line in lines)]


def pane_text(text: str, *, shell: bool) -> str:
    """``text`` as it may be pasted into a pane: no escape sequence or control character but newlines; for a
    ``shell`` every line a ``#`` comment (:func:`pane_lines`), so nothing runs whatever lines it holds."""
    if shell:
        return "\n".join(pane_lines(text, shell=True))
    cleaned = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    return "\n".join(_CONTROL.sub("", line) for line in _LINE_BREAK.split(cleaned))
