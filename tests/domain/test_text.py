"""Text from outside made safe to type into a pane or to print (issue 11)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from coditect_cli.domain.text import neutralise, pane_lines, pane_text


class TypedCase(NamedTuple):
    test_id: str
    text: str
    shell: bool
    expected: list[str]


TYPED = [
    TypedCase("shell-newline", "hello\ntouch x", True, ["# hello", "# touch x"]),
    TypedCase("shell-cr-and-blank", "a\r\n\r\nb\rc", True, ["# a", "# b", "# c"]),
    TypedCase("shell-escape-sequences", "a\x1b[2Jb\x1b]0;t\x07c\x9b1m", True, ["# abc"]),
    TypedCase("shell-already-a-comment", "# note", True, ["# note"]),
    TypedCase("agent-one-line", "first\nsecond\u2028third", False, ["first | second | third"]),
    TypedCase("agent-controls-and-tab", "a\x00b\x07c\td\x7f", False, ["abc d"]),
    TypedCase("empty-is-enter", "", True, [""]),
]


@pytest.mark.parametrize("case", TYPED, ids=[c.test_id for c in TYPED])
def test_pane_lines_hold_no_control_character_and_comment_every_shell_line(case: TypedCase) -> None:
    assert pane_lines(case.text, shell=case.shell) == case.expected


def test_neutralise_shows_control_characters_and_keeps_text() -> None:
    assert neutralise("a\x1b[31mb\x07\x9b\u202e\tc\nd") == "a\\x1b[31mb\\x07\\x9b\\u202e\tc\nd"
    assert neutralise("plain — ünïcode") == "plain — ünïcode"


def test_pane_text_keeps_an_agents_newlines_and_comments_a_shells_lines() -> None:
    assert pane_text("a\x1b[1mb\nc\x07", shell=False) == "ab\nc"
    assert pane_text("a\ntouch x", shell=True) == "# a\n# touch x"
