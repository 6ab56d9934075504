"""The fake Messages API answers the real ``anthropic`` SDK as the real API would (its own tests)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from fakeanthropic.server import DEFAULT_KEY, FakeAnthropic, Turn


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def _client(fake: FakeAnthropic, key: str = DEFAULT_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=fake.base_url, max_retries=0, timeout=20)


def _post(fake: FakeAnthropic, path: str, body: dict[str, Any]) -> tuple[int, str]:
    host, port = fake.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"x-api-key": DEFAULT_KEY, "content-type": "application/json"}
    conn.request("POST", path, json.dumps(body), headers)
    answer = conn.getresponse()
    text = answer.read().decode()
    conn.close()
    return answer.status, text


def _ask(client: anthropic.Anthropic, **extra: Any) -> Any:
    args: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello"}],
    }
    args.update(extra)
    with client.messages.stream(**args) as stream:
        return stream.get_final_message()


def test_streams_text_and_tool_use_the_sdk_assembles(fake: FakeAnthropic) -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 5
    fake.push(Turn.tool("write_file", long_text, path="src/a.py", content="x = 1\n" * 40))
    message = _ask(_client(fake))
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == long_text
    assert message.content[1].name == "write_file"
    assert message.content[1].input == {"path": "src/a.py", "content": "x = 1\n" * 40}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 1
    rec = fake.message_requests()[0]
    assert rec.body["stream"] is True
    assert rec.api_key == DEFAULT_KEY


def test_plain_json_and_beta_path(fake: FakeAnthropic) -> None:
    fake.push(Turn.text("plain"), Turn.text("beta"))
    client = _client(fake)
    plain = client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert plain.content[0].type == "text" and plain.content[0].text == "plain"
    assert plain.stop_reason == "end_turn"
    # Claude Code's path: ``?beta=true`` (the Python SDK's beta namespace uses the plain path and a header).
    status, beta = _post(fake, "/v1/messages?beta=true", {"model": "m", "max_tokens": 10, "messages": []})
    assert status == 200 and json.loads(beta)["content"] == [{"type": "text", "text": "beta"}]
    assert [r.query for r in fake.message_requests()] == ["", "beta=true"]


def test_responder_decides_per_request_and_sees_the_body(fake: FakeAnthropic) -> None:
    fake.respond = lambda body: Turn.text(f"{len(body['messages'])} messages")
    messages: list[Any] = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert _ask(_client(fake), messages=messages).content[0].text == "3 messages"


def test_cache_control_marks_writes_then_reads(fake: FakeAnthropic) -> None:
    client = _client(fake)
    system = [{"type": "text", "text": "You are careful. " * 200, "cache_control": {"type": "ephemeral"}}]
    first = _ask(client, system=system).usage
    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    second = _ask(client, system=system, messages=[{"role": "user", "content": "other question"}]).usage
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens < first.cache_creation_input_tokens
    uncached = _ask(client, system="You are careful. " * 200).usage
    assert uncached.cache_read_input_tokens == 0 and uncached.cache_creation_input_tokens == 0
    assert uncached.input_tokens >= first.cache_creation_input_tokens


def test_rate_limit_with_retry_after_and_error_shapes(fake: FakeAnthropic) -> None:
    client = _client(fake)
    fake.fail(429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as caught:
        _ask(client)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "rate limit error"},
    }
    fake.fail(529)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        _ask(client)
    assert overloaded.value.status_code == 529
    fake.fail(500)
    with pytest.raises(anthropic.InternalServerError):
        _ask(client)
    fake.push(Turn.text("fine again"))
    assert _ask(client).content[0].text == "fine again"


def test_dropped_connection_mid_stream_is_an_error(fake: FakeAnthropic) -> None:
    fake.drop_stream(after_events=3)
    with pytest.raises(Exception, match="incomplete chunked read"):
        _ask(_client(fake))


def test_malformed_and_error_events(fake: FakeAnthropic) -> None:
    fake.malformed_event()
    with pytest.raises(json.JSONDecodeError):
        _ask(_client(fake))
    fake.error_event()
    with pytest.raises(anthropic.APIStatusError) as caught:
        _ask(_client(fake))
    assert "overloaded_error" in str(caught.value)


def test_auth_is_checked(fake: FakeAnthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        _ask(_client(fake, key="sk-ant-wrong"))
    assert fake.message_requests()[0].status == 401


def test_probes_count_tokens_and_unknown_paths(fake: FakeAnthropic) -> None:
    host, port = fake.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("HEAD", "/")
    assert conn.getresponse().status == 200
    conn.close()
    client = _client(fake)
    counted = client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "x" * 400}])
    assert counted.input_tokens >= 100
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/v1/nothing")
    answer = conn.getresponse()
    assert answer.status == 404
    assert json.loads(answer.read())["error"]["type"] == "not_found_error"
    conn.close()


def test_system_role_mid_conversation_is_answered(fake: FakeAnthropic) -> None:
    # Claude Code sends ``role: "system"`` entries among the messages; the fake answers them like any other.
    fake.push(Turn.text("ok"))
    body = {
        "model": "m",
        "max_tokens": 10,
        "stream": True,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
        ],
    }
    status, text = _post(fake, "/v1/messages?beta=true", body)
    assert status == 200
    assert text.count("event: message_stop") == 1 and '"text": "ok"' in text


def test_claude_code_talks_to_the_fake(fake: FakeAnthropic, tmp_path: Path) -> None:
    # The real Claude Code CLI in print mode, with an empty HOME: it may probe ``HEAD /`` (in the background), and it streams from
    # ``POST /v1/messages?beta=true``, with a ``system`` role among the messages.
    fake.respond = lambda body: Turn.text("hi from the fake")
    (tmp_path / "home").mkdir()
    (tmp_path / "project").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(fake.env(), HOME=str(tmp_path / "home"), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    done = subprocess.run(
        ["claude", "-p", "say hi", "--output-format", "json"],
        cwd=tmp_path / "project",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == "hi from the fake"
    asked = fake.message_requests()
    assert asked and all(
        r.query == "beta=true" and r.body["stream"] is True and r.status == 200 for r in asked
    )
