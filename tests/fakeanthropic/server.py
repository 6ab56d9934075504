"""A fake Anthropic Messages API on 127.0.0.1, for the ``anthropic`` SDK and Claude Code to talk to over real HTTP.

A ``ThreadingHTTPServer`` in a background thread (port 0). It answers:

- ``HEAD /`` and ``GET /`` (Claude Code probes the base URL first) with 200;
- ``POST /v1/messages`` (with or without ``?beta=true``): plain JSON, or Server-Sent Events when the body says
  ``"stream": true`` (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` with
  ``text_delta``/``input_json_delta``, ``content_block_stop``, ``message_delta`` with usage, ``message_stop``),
  sent with chunked transfer encoding as the real API does, so a connection dropped mid-stream is an error the
  client sees;
- ``POST /v1/messages/count_tokens`` with ``{"input_tokens": N}``; ``GET /v1/models`` with a one-model page;
- anything else with a 404 shaped like the real API's errors (``{"type":"error","error":{...}}``).

The assistant's turns are scripted: a queue of :class:`Turn` (text and tool_use blocks), or a callable receiving
the request body and returning the turn, decided per request. Usage is computed from the request: tokens are
counted as ``ceil(len(json) / 4)`` per prompt segment (each tool, system block and message content block, in the
API's prefix order tools → system → messages), and ``cache_control`` markers make the prefix up to them cacheable:
a prefix seen before is a cache read, the rest up to the last marker a cache write, as the real API reports them.

Every request is recorded (method, path, headers, parsed body, arrival time on ``time.monotonic``) for
assertions. Faults are queued on demand and consumed by the next ``POST /v1/messages``: an error status (429
with ``retry-after``, 529 ``overloaded_error``, 500, ...), a connection dropped after N events, a malformed
event, or an ``error`` event mid-stream. The API key is checked on ``x-api-key`` (or ``Authorization: Bearer``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

DEFAULT_KEY = "sk-ant-fake-0123456789abcdefghijklmnopqrstuvwxyz"
DEFAULT_MODEL = "claude-sonnet-4-5"

_ids = itertools.count(1)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Text:
    """A text block of an assistant turn."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A tool_use block of an assistant turn (``id`` made up when empty)."""

    name: str
    input: dict[str, Any]
    id: str = ""


Block = Text | ToolUse


@dataclass(frozen=True)
class Turn:
    """One assistant turn: its blocks and stop reason (``tool_use`` when a block is one, else ``end_turn``)."""

    blocks: tuple[Block, ...]
    stop_reason: str = ""

    @classmethod
    def text(cls, text: str) -> Turn:
        """A turn of one text block."""
        return cls((Text(text),))

    @classmethod
    def tool(cls, name: str, text: str = "", **tool_input: Any) -> Turn:
        """A turn calling one tool (after an optional text block)."""
        blocks: tuple[Block, ...] = (ToolUse(name, tool_input),)
        return cls(((Text(text), *blocks)) if text else blocks)

    @property
    def reason(self) -> str:
        """The stop reason sent."""
        if self.stop_reason:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, ToolUse) for b in self.blocks) else "end_turn"


FaultKind = Literal["status", "drop", "malformed", "error_event"]


@dataclass
class Fault:
    """An injected failure for the next ``POST /v1/messages``.

    ``status``: answer ``status`` with an error body (and ``retry_after`` seconds in ``retry-after`` if set);
    ``drop``: (streaming) send ``after_events`` events, then close the connection without finishing;
    ``malformed``: (streaming) after ``after_events`` events, send an event whose data is not JSON;
    ``error_event``: (streaming) after ``after_events`` events, send an ``error`` event (``overloaded_error``).
    """

    kind: FaultKind = "status"
    status: int = 500
    retry_after: float | None = None
    after_events: int = 2
    message: str = ""


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0

    @property
    def api_key(self) -> str:
        """The key the request carried (``x-api-key``, or ``Authorization: Bearer`` as newer SDKs send it)."""
        return self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")


@dataclass
class Usage:
    """Token counts of one answer, as the API reports them."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


def _tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, math.ceil(len(text) / 4))


def _strip_cache(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def prompt_segments(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """The request's prompt as (serialized segment, tokens, carries cache_control), in prefix order."""
    out: list[tuple[str, int, bool]] = []

    def add(block: Any, role: str = "") -> None:
        marked = isinstance(block, dict) and "cache_control" in block
        text = role + json.dumps(_strip_cache(block), sort_keys=True)
        out.append((text, _tokens(_strip_cache(block)), marked))

    for tool in body.get("tools") or []:
        add(tool)
    system = body.get("system")
    if isinstance(system, str):
        add({"type": "text", "text": system})
    elif isinstance(system, list):
        for block in system:
            add(block)
    for message in body.get("messages") or []:
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            add({"type": "text", "text": content}, role)
        elif isinstance(content, list):
            for block in content:
                add(block, role)
    return out


class PromptCache:
    """The server-side prompt cache: prefix hashes seen at a ``cache_control`` marker."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def usage_for(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(uncached input, cache write, cache read) tokens of a request; remembers its marked prefixes."""
        segments = prompt_segments(body)
        digest = hashlib.sha256(str(body.get("model", "")).encode())
        total = 0
        marks: list[tuple[str, int]] = []  # (prefix hash, prefix tokens) at each marker
        for text, tokens, marked in segments:
            digest.update(text.encode())
            total += tokens
            if marked:
                marks.append((digest.copy().hexdigest(), total))
        with self._lock:
            read = max((tokens for h, tokens in marks if h in self._seen), default=0)
            written = (marks[-1][1] - read) if marks else 0
            self._seen.update(h for h, _ in marks)
        return total - read - written, written, read


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _block_json(block: Block, block_id: str) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": block_id, "name": block.name, "input": block.input}


def _chunks(text: str, size: int) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]
    if not text:
        yield ""


Responder = Callable[[dict[str, Any]], Turn]


class FakeAnthropic:
    """The fake server. Use as a context manager (or ``start``/``stop``); ``base_url`` is what
    ``ANTHROPIC_BASE_URL`` should be set to."""

    def __init__(
        self,
        turns: list[Turn] | None = None,
        *,
        respond: Responder | None = None,
        api_key: str = DEFAULT_KEY,
        default: Turn | None = None,
        delta_size: int = 16,
    ) -> None:
        self.api_key = api_key
        self.turns: deque[Turn] = deque(turns or [])
        self.respond = respond
        self.default = default or Turn.text("Done.")
        self.delta_size = delta_size
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self.cache = PromptCache()
        self.usages: list[Usage] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle
    def start(self) -> FakeAnthropic:
        """Listen on 127.0.0.1 (a free port) in a daemon thread."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakeanthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The environment a client needs to talk to this server."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": self.api_key}

    # ---- scripting
    def push(self, *turns: Turn) -> None:
        """Queue assistant turns, answered in order."""
        self.turns.extend(turns)

    def fail(self, status: int = 500, *, retry_after: float | None = None, times: int = 1) -> None:
        """The next ``times`` message requests answer ``status`` with the API's error body."""
        for _ in range(times):
            self.faults.append(Fault("status", status=status, retry_after=retry_after))

    def drop_stream(self, after_events: int = 3) -> None:
        """The next streaming message request is cut after ``after_events`` events."""
        self.faults.append(Fault("drop", after_events=after_events))

    def malformed_event(self, after_events: int = 3) -> None:
        """The next streaming message request sends an event whose data is not JSON."""
        self.faults.append(Fault("malformed", after_events=after_events))

    def error_event(self, after_events: int = 3) -> None:
        """The next streaming message request sends an ``error`` event (``overloaded_error``) mid-stream."""
        self.faults.append(Fault("error_event", status=529, after_events=after_events))

    def message_requests(self) -> list[Recorded]:
        """The ``POST /v1/messages`` requests received, in order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    # ---- internals used by the handler
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _next_turn(self, body: dict[str, Any]) -> Turn:
        if self.respond is not None:
            return self.respond(body)
        with self._lock:
            return self.turns.popleft() if self.turns else self.default

    def _message(self, body: dict[str, Any], turn: Turn) -> tuple[dict[str, Any], Usage]:
        uncached, written, read = self.cache.usage_for(body)
        content = [
            _block_json(b, b.id or f"toolu_{next(_ids):06d}")
            if isinstance(b, ToolUse)
            else _block_json(b, "")
            for b in turn.blocks
        ]
        usage = Usage(
            uncached, sum(_tokens(c.get("text", c.get("input", ""))) for c in content), written, read
        )
        with self._lock:
            self.usages.append(usage)
        message = {
            "id": f"msg_fake{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", DEFAULT_MODEL),
            "content": content,
            "stop_reason": turn.reason,
            "stop_sequence": None,
            "usage": usage.as_dict(),
        }
        return message, usage

    def events(self, body: dict[str, Any], turn: Turn) -> Iterator[bytes]:
        """The SSE events of ``turn`` answering ``body``."""
        message, usage = self._message(body, turn)
        start = dict(message, content=[], stop_reason=None, usage=dict(usage.as_dict(), output_tokens=1))
        yield _event("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                yield _event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                if index == 0:
                    yield _event("ping", {"type": "ping"})
                for piece in _chunks(block["text"], self.delta_size):
                    delta = {"type": "text_delta", "text": piece}
                    yield _event(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
            else:
                head = dict(block, input={})
                yield _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": head},
                )
                for piece in _chunks(json.dumps(block["input"]), self.delta_size * 4):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    yield _event(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
            yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
        yield _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": usage.as_dict(),
            },
        )
        yield _event("message_stop", {"type": "message_stop"})


def error_body(status: int, message: str = "") -> dict[str, Any]:
    """An error body shaped like the real API's."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeAnthropic

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ---- plumbing
    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _start(self, method: str) -> Recorded:
        parts = urlsplit(self.path)
        rec = Recorded(
            method=method,
            path=parts.path.rstrip("/") or "/",
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body() if method in ("POST", "PUT", "PATCH") else None,
            at=time.monotonic(),
        )
        self.server_fake._record(rec)
        return rec

    def _send_json(
        self, rec: Recorded, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        rec.status = status
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_fake{next(_ids):06d}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(
        self, rec: Recorded, status: int, message: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self._send_json(rec, status, error_body(status, message), headers)

    def _authorized(self, rec: Recorded) -> bool:
        if rec.api_key == self.server_fake.api_key:
            return True
        self._send_error(rec, 401, "invalid x-api-key")
        return False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # ---- verbs
    def do_HEAD(self) -> None:
        rec = self._start("HEAD")
        rec.status = 200
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        rec = self._start("GET")
        if rec.path == "/":
            self._send_json(rec, 200, {"ok": True})
        elif rec.path == "/v1/models":
            if self._authorized(rec):
                model = {
                    "type": "model",
                    "id": DEFAULT_MODEL,
                    "display_name": "Fake",
                    "created_at": "2025-01-01T00:00:00Z",
                }
                self._send_json(
                    rec,
                    200,
                    {"data": [model], "has_more": False, "first_id": DEFAULT_MODEL, "last_id": DEFAULT_MODEL},
                )
        else:
            self._send_error(rec, 404, f"not found: {rec.path}")

    def do_POST(self) -> None:
        rec = self._start("POST")
        if not self._authorized(rec):
            return
        body = rec.body
        if rec.path == "/v1/messages/count_tokens":
            if not isinstance(body, dict):
                self._send_error(rec, 400, "body must be a JSON object")
                return
            total = sum(tokens for _, tokens, _ in prompt_segments(body))
            self._send_json(rec, 200, {"input_tokens": total})
            return
        if rec.path != "/v1/messages":
            self._send_error(rec, 404, f"not found: {rec.path}")
            return
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or "max_tokens" not in body
        ):
            self._send_error(rec, 400, "messages and max_tokens are required")
            return
        fake = self.server_fake
        fault = fake._next_fault()
        if fault is not None and fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            self._send_error(rec, fault.status, fault.message, headers)
            return
        turn = fake._next_turn(body)
        if not body.get("stream"):
            message, _ = fake._message(body, turn)
            self._send_json(rec, 200, message)
            return
        rec.status = 200
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_fake{next(_ids):06d}")
        self.end_headers()
        for count, event in enumerate(fake.events(body, turn)):
            if fault is not None and count == fault.after_events:
                if fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.kind == "malformed":
                    self._chunk(b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n')
                else:
                    self._chunk(_event("error", error_body(529, "Overloaded")))
                break
            self._chunk(event)
        self._chunk(b"")  # the last chunk: zero length


__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_MODEL",
    "FakeAnthropic",
    "Fault",
    "Recorded",
    "Text",
    "ToolUse",
    "Turn",
    "Usage",
    "error_body",
    "prompt_segments",
]
