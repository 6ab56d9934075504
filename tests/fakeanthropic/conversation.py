"""A scripted model for long interactive sessions (Claude Code in a pane): a responder for
:class:`~fakeanthropic.server.FakeAnthropic` that answers from the request alone.

Each :class:`Script` is started by the newest user *text* in the conversation (a user message with no
``tool_result``; Claude Code's ``<system-reminder>`` blocks and mid-conversation ``role: "system"`` entries
left out) containing its ``match``. The k-th assistant reply after that text is the script's k-th step (a
turn), and past its steps it ends with ``final``. Requests without tools (Claude Code's title and quota side
requests) get a short text. Being a function of the request, it gives a retrying client the same answer and
needs no reset between turns. :func:`user_texts` and :func:`tool_results` read back what the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fakeanthropic.server import Recorded, Text, ToolUse, Turn


@dataclass(frozen=True)
class Script:
    """The model's answer to a user text containing ``match``: ``steps`` in order, then ``final``."""

    match: str
    steps: tuple[Turn, ...] = ()
    final: str = "Done."


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def user_text(message: dict[str, Any]) -> str | None:
    """The text of a user message that holds no tool result (system reminders left out), else None."""
    if message.get("role") != "user":
        return None
    blocks = _blocks(message)
    if any(b.get("type") == "tool_result" for b in blocks):
        return None
    texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
    texts = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
    return "\n".join(texts) if texts else None


def responder(scripts: list[Script], default: str = "OK.") -> Any:
    """The ``respond`` callable playing ``scripts``."""

    def respond(body: dict[str, Any]) -> Turn:
        if not body.get("tools"):
            return Turn((Text(default),))
        messages = [m for m in body.get("messages", []) if m.get("role") in {"user", "assistant"}]
        for i in range(len(messages) - 1, -1, -1):
            text = user_text(messages[i])
            if text is None:
                continue
            script = next((s for s in scripts if s.match in text), None)
            if script is None:
                return Turn((Text(default),))
            k = sum(1 for m in messages[i + 1 :] if m.get("role") == "assistant")
            return script.steps[k] if k < len(script.steps) else Turn((Text(script.final),))
        return Turn((Text(default),))

    return respond


def user_texts(requests: list[Recorded]) -> list[str]:
    """Every distinct user text of the main conversation (requests with tools), in order of arrival."""
    out: list[str] = []
    for rec in requests:
        body = rec.body if isinstance(rec.body, dict) else {}
        if not body.get("tools"):
            continue
        for message in body.get("messages", []):
            text = user_text(message)
            if text is not None and text not in out:
                out.append(text)
    return out


def tool_results(requests: list[Recorded]) -> list[str]:
    """The text of every ``tool_result`` the client sent back."""
    seen: dict[str, str] = {}
    for rec in requests:
        body = rec.body if isinstance(rec.body, dict) else {}
        for message in body.get("messages", []):
            for block in _blocks(message):
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    text = (
                        content
                        if isinstance(content, str)
                        else "\n".join(str(b.get("text", "")) for b in content or [] if isinstance(b, dict))
                    )
                    seen[str(block.get("tool_use_id", ""))] = text
    return list(seen.values())


__all__ = ["Script", "ToolUse", "responder", "tool_results", "user_text", "user_texts"]
