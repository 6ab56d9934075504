"""The Anthropic Messages API, through the official ``anthropic`` SDK: the one module that imports it (lazily).

:class:`AnthropicLLM` sends one request of the built-in agent and returns its :class:`Reply`. It

- streams the answer (SSE) and assembles the final message with the SDK's own accumulator;
- retries what is worth retrying (429, 529 overloaded, 5xx, a connection dropped or a malformed or ``error``
  event mid-stream) with exponential backoff and jitter, waiting exactly what ``retry-after`` (or
  ``retry-after-ms``) says when the server says it; the SDK's own retries are off so there is one policy;
- bounds the total wait (:class:`RetryPolicy`), then fails with :class:`LLMFailed` saying why;
- marks the stable prefix for prompt caching (``cache_control`` on the last tool, on the system blocks and on
  the newest message, so each request reads what the previous one wrote);
- takes the key from ``ANTHROPIC_API_KEY`` and the endpoint from ``ANTHROPIC_BASE_URL``; the key is passed to
  the SDK only, and scrubbed from every message this module produces.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coditect_cli.adapters.proc import redact
from coditect_cli.domain.costs import Usage
from coditect_cli.errors import UnavailableError

CACHE = {"type": "ephemeral"}
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
RETRY_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error"})


class LLMFailed(UnavailableError):
    """The API could not answer: not retryable (bad key, bad request) or retried until the wait bound."""

    code = "llm-failed"

    def __init__(self, message: str, *, attempts: int = 1, waited: float = 0.0) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.waited = waited


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: backoff ``base * 2**n`` capped at ``cap`` with jitter, at most ``max_wait``
    seconds of waiting in total and ``max_attempts`` requests."""

    base: float = 1.0
    cap: float = 30.0
    max_wait: float = 300.0
    max_attempts: int = 8

    def backoff(self, retry: int, jitter: float) -> float:
        """The wait before retry number ``retry`` (0-based) without a ``retry-after``; ``jitter`` in [0, 1)."""
        ceiling = min(self.cap, self.base * 2.0**retry)
        return ceiling * (0.5 + jitter / 2)


@dataclass(frozen=True)
class Request:
    """One request of the agent: the stable prefix (tools, system prompt, context) and the conversation."""

    model: str
    max_tokens: int
    system: str
    context: str
    tools: Sequence[Mapping[str, Any]]
    messages: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Reply:
    """The assistant's answer: its content blocks (API dicts), stop reason, usage and how it was obtained."""

    content: tuple[dict[str, Any], ...]
    stop_reason: str
    usage: Usage
    model: str
    attempts: int = 1
    waits: tuple[float, ...] = field(default=())

    @property
    def waited(self) -> float:
        """Seconds spent waiting between attempts."""
        return sum(self.waits)


class LLM(Protocol):
    """What the agent loop needs from a model."""

    def complete(self, request: Request) -> Reply:
        """Send ``request`` and return the answer (raise :class:`LLMFailed` when there is none)."""
        ...


def request_body(request: Request, *, cache: bool = True) -> dict[str, Any]:
    """The Messages API body of ``request``, with ``cache_control`` on the stable prefix and the newest turn.

    Breakpoints (at most 4 are allowed): the last tool (caches every tool), the context block (caches the
    system prompt and the manifest context with it), and the last block of the newest message (caches the
    conversation so far, which the next request extends). ``cache`` False leaves them out.
    """
    tools = [dict(t) for t in request.tools]
    system: list[dict[str, Any]] = [{"type": "text", "text": request.system}]
    if request.context:
        system.append({"type": "text", "text": request.context})
    messages = [dict(m) for m in request.messages]
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "system": system,
        "messages": messages,
    }
    if tools:
        body["tools"] = tools
    if not cache:
        return body
    if tools:
        tools[-1]["cache_control"] = CACHE
    system[-1]["cache_control"] = CACHE
    if messages:
        last = messages[-1]
        content = last.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        if blocks:
            blocks[-1] = {**blocks[-1], "cache_control": CACHE}
            last["content"] = blocks
    return body


def _header_wait(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


@dataclass(frozen=True)
class _Failure:
    retry: bool
    reason: str
    wait: float | None = None


def _block(block: Any) -> dict[str, Any]:
    data: dict[str, Any] = block.model_dump(exclude_none=True, mode="json")
    if data.get("type") == "text":
        return {"type": "text", "text": data.get("text", "")}
    if data.get("type") == "tool_use":
        return {"type": "tool_use", "id": data["id"], "name": data["name"], "input": data.get("input") or {}}
    return data


class AnthropicLLM:
    """:class:`LLM` on the Anthropic SDK. ``sleep`` and ``jitter`` are the waiting and randomness used
    between retries (the benchmark and tests pass the real ones; they are parameters so a caller can
    account for the waits)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 600.0,
        prompt_cache: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not api_key:
            raise UnavailableError(
                "no Anthropic API key: set ANTHROPIC_API_KEY in the environment",
                hint="the key is read from the environment only, never from the manifest",
            )
        self._key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._cache = prompt_cache
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._client: Any = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> AnthropicLLM:
        """The client configured by ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``."""
        source = os.environ if env is None else env
        return cls(
            source.get("ANTHROPIC_API_KEY", ""), base_url=source.get("ANTHROPIC_BASE_URL") or None, **kwargs
        )

    def scrub(self, text: str) -> str:
        """``text`` with the key (and anything shaped like a credential) masked."""
        return redact(text.replace(self._key, "***"))

    def client(self) -> Any:
        """The SDK client (imported and built on first use)."""
        if self._client is None:
            import logging

            import anthropic

            # `--verbose` turns the root logger to DEBUG: the SDK would then log every request's whole body
            # (prompts, file contents). coditect's own lines say what the agent does.
            for name in ("anthropic", "httpx", "httpx2", "httpcore", "httpcore2"):
                logging.getLogger(name).setLevel(logging.WARNING)

            self._client = anthropic.Anthropic(
                api_key=self._key, base_url=self._base_url, max_retries=0, timeout=self._timeout
            )
        return self._client

    def complete(self, request: Request) -> Reply:
        """Stream one answer, retrying per the policy; raise LLMFailed with the reason when giving up."""
        body = request_body(request, cache=self._cache)
        client = self.client()
        waits: list[float] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                with client.messages.stream(**body) as stream:
                    message = stream.get_final_message()
                break
            except Exception as exc:
                failure = self._classify(exc)
            if not failure.retry:
                raise LLMFailed(failure.reason, attempts=attempt, waited=sum(waits))
            wait = (
                failure.wait if failure.wait is not None else self.policy.backoff(attempt - 1, self._jitter())
            )
            if attempt >= self.policy.max_attempts or sum(waits) + wait > self.policy.max_wait:
                raise LLMFailed(
                    f"gave up after {attempt} attempt(s) and {sum(waits):.1f}s of waiting "
                    f"(next wait {wait:.1f}s would pass the {self.policy.max_wait:g}s bound): {failure.reason}",
                    attempts=attempt,
                    waited=sum(waits),
                )
            self._sleep(wait)
            waits.append(wait)
        usage = message.usage
        return Reply(
            content=tuple(_block(b) for b in message.content),
            stop_reason=str(message.stop_reason or "end_turn"),
            usage=Usage(
                input=int(usage.input_tokens or 0),
                output=int(usage.output_tokens or 0),
                cache_write=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
                cache_read=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            ),
            model=str(message.model or request.model),
            attempts=attempt,
            waits=tuple(waits),
        )

    def _classify(self, exc: Exception) -> _Failure:
        import anthropic

        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            kind = str(error.get("type", "")) if isinstance(error, dict) else ""
            detail = str(error.get("message", "")) if isinstance(error, dict) else ""
            reason = self.scrub(f"HTTP {status} {kind or 'error'}" + (f": {detail}" if detail else ""))
            if status == 200:  # an ``error`` event inside a stream
                return _Failure(kind in RETRY_ERROR_TYPES, f"error event mid-stream: {reason}")
            if status in (401, 403):
                return _Failure(False, f"{reason} (check ANTHROPIC_API_KEY)")
            if status in RETRY_STATUSES or status >= 500:
                return _Failure(True, reason, _header_wait(exc.response.headers))
            return _Failure(False, reason)
        if isinstance(exc, anthropic.APITimeoutError):
            return _Failure(True, "the request timed out")
        if isinstance(exc, anthropic.APIConnectionError):
            return _Failure(True, self.scrub(f"connection failed: {exc}"))
        if isinstance(exc, json.JSONDecodeError):
            return _Failure(True, "malformed event in the stream")
        if type(exc).__module__.split(".")[0].startswith("httpx"):
            return _Failure(True, self.scrub(f"connection dropped mid-stream: {exc}"))
        return _Failure(False, self.scrub(f"{type(exc).__name__}: {exc}"))
