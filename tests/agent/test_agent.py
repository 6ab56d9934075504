"""The built-in agent (``run: anthropic``) against the fake Messages API: tools, confinement, retries,
budgets, costs in the store, transcripts, and the key kept out of everything it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import agentkit
import pytest
from fakeanthropic.server import DEFAULT_KEY, FakeAnthropic, Turn
from helpers import call_main, retry_until
from libtmux.server import Server

from coditect_cli.adapters.llm import AnthropicLLM, LLMFailed, Request, RetryPolicy
from coditect_cli.project import Project
from coditect_cli.services.agent import read_transcript, run_task
from coditect_cli.state import agent_usage
from coditect_cli.state.store import Store


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def proj(tmp_path: Path, isolated_git: Path) -> agentkit.Project:
    return agentkit.build(tmp_path)


def _llm(fake: FakeAnthropic, **policy: Any) -> AnthropicLLM:
    return AnthropicLLM(DEFAULT_KEY, base_url=fake.base_url, policy=RetryPolicy(**policy), timeout=30)


def _tool_results(fake: FakeAnthropic) -> list[dict[str, Any]]:
    """Every tool_result block the agent sent back, in order."""
    out: list[dict[str, Any]] = []
    for rec in fake.message_requests():
        last = rec.body["messages"][-1]
        if last["role"] == "user" and isinstance(last["content"], list):
            out += [b for b in last["content"] if b.get("type") == "tool_result"]
    # every request repeats the history: keep each tool_use_id once
    return list({b["tool_use_id"]: b for b in out}.values())


def test_writes_in_owned_paths_runs_the_gate_and_commits(fake: FakeAnthropic, proj: agentkit.Project) -> None:
    fake.push(
        Turn.tool("write_file", "Writing the module.", path="s1/hello.py", content="print('hello')\n"),
        Turn.tool("edit_file", path="s1/hello.py", old_text="hello", new_text="hello, world"),
        Turn.tool("run_command", command="check"),
        Turn.tool("git_commit", message="feat(s1): hello module"),
        Turn.text("The hello module is written and committed."),
    )
    result = run_task(Project(proj.root), "phase-1", "s1", "T1", llm=_llm(fake))
    assert result.status == "done", result.reason
    assert (proj.s1 / "s1" / "hello.py").read_text() == "print('hello, world')\n"
    head = agentkit.git(proj.s1, "rev-parse", "HEAD")
    assert result.commits == (head,)
    assert agentkit.git(proj.s1, "log", "-1", "--format=%s") == "feat(s1): hello module"
    assert agentkit.git(proj.s1, "show", "--name-only", "--format=", "HEAD") == "s1/hello.py"
    assert agentkit.git(proj.s1, "status", "--porcelain") == ""
    results = _tool_results(fake)
    assert [r.get("is_error", False) for r in results] == [False] * 4
    assert results[2]["content"].startswith("exit status 0") and "check ok" in results[2]["content"]
    assert result.final_text == "The hello module is written and committed."
    # Usage went to the store, per stream and task, and adds up to the result.
    with Store.open(proj.common) as store:
        spent = agent_usage.stream_spend(store, "phase-1", "s1", "T1")
    assert spent.requests == 5 == result.turns
    assert spent.usage == result.usage and spent.cost_usd == pytest.approx(result.cost_usd)
    assert result.usage.cache_read > 0, "the stable prefix is read from the cache after the first request"


def test_write_outside_owned_paths_is_refused_with_the_owner(
    fake: FakeAnthropic, proj: agentkit.Project
) -> None:
    fake.push(
        Turn.tool("write_file", path="s2/intrude.txt", content="mine now\n"),
        Turn.tool("write_file", path="README.md", content="rewritten\n"),
        Turn.tool("edit_file", path="s2/README.md", old_text="two", new_text="2"),
        Turn.text("I cannot write there."),
    )
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    assert result.status == "done"
    results = _tool_results(fake)
    assert all(r["is_error"] for r in results)
    assert "owned by s2 (@agent2)" in results[0]["content"]
    assert "no stream owns it" in results[1]["content"]
    assert "owned by s2 (@agent2)" in results[2]["content"]
    assert not (proj.s1 / "s2" / "intrude.txt").exists()
    assert (proj.s1 / "README.md").read_text() == "# agent test\n"
    assert (proj.s1 / "s2" / "README.md").read_text() == "stream two\n"


def test_paths_escaping_the_worktree_are_refused(
    fake: FakeAnthropic, proj: agentkit.Project, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (proj.s1 / "s1" / "link").symlink_to(outside)
    fake.push(
        Turn.tool("write_file", path="s1/../../escape.txt", content="x"),
        Turn.tool("write_file", path="s1/link/secret.txt", content="overwritten"),
        Turn.tool("read_file", path="s1/link/secret.txt"),
        Turn.tool("read_file", path=str(outside / "secret.txt")),
        Turn.tool("list_files", path="s1/link"),
        Turn.tool("write_file", path=".git/hooks/pre-commit", content="exit 0"),
        Turn.text("Stopped."),
    )
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    assert result.status == "done"
    results = [r["content"] for r in _tool_results(fake)]
    assert len(results) == 6 and all(r["is_error"] for r in _tool_results(fake))
    assert "`..` is not allowed" in results[0]
    assert all("outside the worktree" in r for r in results[1:5]), results
    assert ".git" in results[5]
    assert (outside / "secret.txt").read_text() == "outside\n"
    assert not (proj.s1.parent / "escape.txt").exists()


def test_commands_are_gates_or_allow_listed_and_output_is_cut(
    fake: FakeAnthropic, proj: agentkit.Project
) -> None:
    fake.push(
        Turn.tool("run_command", command="rm -rf s2"),
        Turn.tool("run_command", command="git log --oneline; rm -rf s2"),
        Turn.tool("run_command", command="git log --oneline"),
        Turn.text("ok"),
    )
    run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    results = _tool_results(fake)
    assert (
        results[0]["is_error"] and "not a gate of this stream nor an allowed command" in results[0]["content"]
    )
    assert results[1]["is_error"] and "shell operators" in results[1]["content"]
    assert not results[2].get("is_error") and "initial" in results[2]["content"]
    assert (proj.s1 / "s2" / "README.md").exists()


def test_backoff_waits_what_retry_after_says(fake: FakeAnthropic) -> None:
    fake.fail(429, retry_after=1)
    fake.fail(529)
    fake.fail(500)
    fake.push(Turn.text("finally"))
    llm = _llm(fake, base=0.2, cap=1.0)
    request = Request("claude-sonnet-4-5", 100, "system", "", [], [{"role": "user", "content": "hi"}])
    reply = llm.complete(request)
    assert reply.content == ({"type": "text", "text": "finally"},)
    assert reply.attempts == 4
    assert reply.waits[0] == 1.0, "the first wait is the server's retry-after"
    assert 0.2 <= reply.waits[1] <= 0.4 and 0.4 <= reply.waits[2] <= 0.8, (
        "then exponential backoff with jitter"
    )
    times = [r.at for r in fake.message_requests()]
    assert times[1] - times[0] >= 1.0
    assert [r.status for r in fake.message_requests()] == [429, 529, 500, 200]


def test_mid_stream_faults_are_retried(fake: FakeAnthropic) -> None:
    fake.drop_stream(after_events=3)
    fake.malformed_event(after_events=2)
    fake.error_event(after_events=4)
    fake.push(Turn.text("a" * 300), Turn.text("b" * 300), Turn.text("c" * 300), Turn.text("whole answer"))
    reply = _llm(fake, base=0.01, cap=0.05).complete(
        Request("m", 100, "s", "", [], [{"role": "user", "content": "hi"}])
    )
    assert reply.attempts == 4
    assert reply.content == ({"type": "text", "text": "whole answer"},)


def test_total_wait_is_bounded_then_the_task_fails_with_the_reason(
    fake: FakeAnthropic, proj: agentkit.Project
) -> None:
    fake.fail(429, retry_after=120)
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake, max_wait=10))
    assert result.status == "failed"
    assert "429 rate_limit_error" in result.reason and "10s bound" in result.reason
    assert len(fake.message_requests()) == 1, "no request after the bound"
    fake.fail(401)
    with pytest.raises(LLMFailed, match="check ANTHROPIC_API_KEY"):
        _llm(fake).complete(Request("m", 10, "s", "", [], [{"role": "user", "content": "x"}]))


def test_budget_stops_the_loop_with_a_warning_first(
    fake: FakeAnthropic, tmp_path: Path, isolated_git: Path
) -> None:
    # A model priced at $10 per million tokens of every kind, and a $0.5 budget: every request costs a
    # few cents, so the loop crosses 80 % before it reaches the budget.
    options = "      model: pricey\n      max_turns: 500\n      budget_usd: 0.5"
    prices = "prices:\n  pricey: {input: 10, output: 10, cache_write: 10, cache_read: 10}\n"
    proj = agentkit.build(tmp_path, options=options, prices=prices)
    fake.respond = lambda body: Turn.tool("list_files", path="s1")
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    assert result.status == "over-budget" and result.budget == "over"
    assert result.stream_cost_usd >= 0.5 and result.cost_usd == result.stream_cost_usd
    assert result.turns == len(fake.message_requests()) < 500
    assert any("80%" in w for w in result.warnings)
    with Store.open(proj.common) as store:
        rows = store.query("SELECT cost_usd FROM agent_usage WHERE stream = 's1' ORDER BY id")
    running = 0.0
    for i, (c,) in enumerate(rows):
        running += c
        assert (running >= 0.5) == (i == len(rows) - 1), "the loop stops at the first request over budget"
    # A new run of an over-budget stream sends nothing.
    again = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    assert again.status == "over-budget" and again.turns == 0
    assert len(fake.message_requests()) == result.turns


def test_a_phase_budget_stops_the_loop_too(fake: FakeAnthropic, proj: agentkit.Project) -> None:
    fake.respond = lambda body: Turn.tool("list_files", path="s1")
    first = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake), phase_budget_usd=0.02)
    assert first.status == "over-budget" and "the phase's budget of $0.02 is spent" in first.reason
    assert first.budget == "none", "the stream itself has no budget"
    assert any(w.startswith("the phase has spent") for w in first.warnings) or first.turns == 1
    sent = len(fake.message_requests())
    assert sent == first.turns >= 1
    again = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake), phase_budget_usd=0.02)
    assert again.status == "over-budget" and again.turns == 0 and len(fake.message_requests()) == sent


def _env(fake: FakeAnthropic) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return {**env, **fake.env(), "COLUMNS": "200"}


def test_the_key_never_appears_in_transcripts_store_or_output(
    fake: FakeAnthropic, proj: agentkit.Project
) -> None:
    fake.push(
        Turn.tool("run_command", command="env"),
        Turn.tool("write_file", path="s1/notes.md", content=f"the key is {DEFAULT_KEY}\n"),
        Turn.text(f"I saw {DEFAULT_KEY} somewhere."),
    )
    cli = [sys.executable, "-m", "coditect_cli", "--root", str(proj.root)]
    run = subprocess.run(
        [*cli, "--verbose", "agent", "run", "s1"], env=_env(fake), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "$ /bin/sh -c env" in run.stderr, "--verbose logs the commands coditect starts"
    assert "Request options" not in run.stderr, "the SDK does not dump request bodies into the log"
    assert "done" in run.stdout
    as_json = subprocess.run(
        [*cli, "agent", "log", "s1", "--json"], env=_env(fake), capture_output=True, text=True, timeout=120
    )
    human = subprocess.run(
        [*cli, "agent", "log", "s1"], env=_env(fake), capture_output=True, text=True, timeout=120
    )
    entries = json.loads(as_json.stdout)["data"]["entries"]
    assert [e["kind"] for e in entries][:3] == ["start", "request", "reply"]
    assert entries[-1]["kind"] == "end" and entries[-1]["status"] == "done"
    env_result = next(e for e in entries if e["kind"] == "tool" and e["name"] == "run_command")
    assert "PATH=" in env_result["result"], "the command ran and its output was kept"
    assert "ANTHROPIC_" not in env_result["result"], "no Anthropic variable reaches a command the agent runs"
    assert "list_files" not in human.stdout and "run_command" in human.stdout
    written = [run.stdout, run.stderr, as_json.stdout, human.stdout, human.stderr]
    for path in (proj.common / "coditect").rglob("*"):
        if path.is_file() and "notes.md" not in path.name:
            written.append(path.read_bytes().decode("utf-8", "replace"))
    assert written and not [w for w in written if DEFAULT_KEY in w]


def test_a_killed_run_leaves_no_half_written_file(fake: FakeAnthropic, proj: agentkit.Project) -> None:
    target = proj.s1 / "s1" / "big.txt"
    old = "old line\n" * 1000
    target.write_text(old)
    agentkit.git(proj.s1, "add", "s1/big.txt")
    agentkit.git(proj.s1, "commit", "-q", "-m", "feat(s1): the old big file")
    new = "new line of a long file\n" * 200_000  # ~4.8 MB: the write takes long enough to be caught
    fake.delta_size = 2_000_000
    second = threading.Event()

    # Decided per request, so a request the killed process still had in flight cannot take the second
    # run's turns: a conversation's first request writes (first run) or commits (second run).
    def respond(body: dict[str, Any]) -> Turn:
        if len(body["messages"]) > 1:
            return Turn.text("done")
        if second.is_set():
            return Turn.tool("git_commit", message="feat(s1): big file")
        return Turn.tool("write_file", path="s1/big.txt", content=new)

    fake.respond = respond
    cli = [sys.executable, "-m", "coditect_cli", "--root", str(proj.root), "agent", "run", "s1"]
    child = subprocess.Popen(cli, env=_env(fake), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def temp_or_done() -> bool:
            temps = list(target.parent.glob(".big.txt.coditect-tmp-*"))
            return bool(temps) or target.stat().st_size != len(old) or child.poll() is not None

        # The bound only stops a broken run from hanging the suite (the child imports the SDK first).
        retry_until(temp_or_done, bool, timeout=300)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode in (-signal.SIGKILL, 0)
    assert target.read_text() in (old, new), "the file is the old one or the new one, never a part"
    # A temporary file left by the kill is never committed: the next commit removes it.
    second.set()
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    assert result.status == "done"
    assert not list(target.parent.glob(".big.txt.coditect-tmp-*"))
    committed = agentkit.git(proj.s1, "show", "--name-only", "--format=", "HEAD").splitlines()
    if target.read_text() == new:
        assert committed == ["s1/big.txt"] and len(result.commits) == 1
    else:
        assert result.commits == ()  # the temporary file was removed, not committed


def test_transcript_per_task_and_launch_command(fake: FakeAnthropic, proj: agentkit.Project) -> None:
    fake.push(Turn.text("nothing to do"))
    result = run_task(Project(proj.root), "phase-1", "s1", "T1", llm=_llm(fake))
    assert result.transcript == proj.common / "coditect" / "transcripts" / "phase-1" / "s1" / "T1.jsonl"
    kinds = [e["kind"] for e in read_transcript(result.transcript)]
    assert kinds == ["start", "request", "reply", "end"]
    from coditect_cli.agents import profile_for
    from coditect_cli.agents.base import AgentContext
    from coditect_cli.domain.manifest import options_for_run

    ctx = AgentContext(
        stream="s1", prompt_file=Path("/p.md"), worktrees=(), gates=(), login_shell="/bin/sh", hook=(),
        settings_file=Path("/s.json"), phase="phase-1", root=proj.root,
    )  # fmt: skip
    command = profile_for(options_for_run("anthropic")).command(ctx)
    assert command.kind == "anthropic" and command.program == sys.executable
    assert command.argv[:2] == ("/bin/sh", "-c")
    assert command.argv[2].endswith(f"--root {proj.root} agent run s1 --phase phase-1")


def test_status_and_sync_show_tokens_and_cost(fake: FakeAnthropic, proj: agentkit.Project) -> None:
    fake.push(Turn.tool("list_files", path="s1"), Turn.text("done"))
    result = run_task(Project(proj.root), "phase-1", "s1", llm=_llm(fake))
    cli = [sys.executable, "-m", "coditect_cli", "--root", str(proj.root)]
    status = subprocess.run(
        [*cli, "status", "--json"], env=_env(fake), capture_output=True, text=True, timeout=120
    )
    data = json.loads(status.stdout)["data"]
    rows = {r["stream"]: r for r in data["streams"]}
    assert rows["s1"]["tokens"] == result.usage.total > 0
    assert rows["s1"]["cost_usd"] == round(result.cost_usd, 6) and rows["s2"]["tokens"] == 0
    assert data["cost_usd"] == round(result.cost_usd, 6)
    human = subprocess.run([*cli, "status"], env=_env(fake), capture_output=True, text=True, timeout=120)
    assert f"{result.usage.total:,} tokens, ${result.cost_usd:.2f}" in human.stdout
    sync = subprocess.run(
        [*cli, "sync", "evening", "--json"],
        env=_env(fake),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=proj.root,
    )
    report = (proj.root / json.loads(sync.stdout)["data"]["report_path"]).read_text()
    assert f"💰 Agent: {result.usage.total:,} tokens, ${result.cost_usd:.2f} this phase" in report
    assert f"💰 Agents this phase: {result.usage.total:,} tokens" in report


def test_run_anthropic_in_a_pane_runs_the_same_loop(
    fake: FakeAnthropic, proj: agentkit.Project, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key reaches the pane through the tmux server's environment (inherited from the launch), never
    # through its command line.
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.services.launch import launch

    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    fake.push(
        Turn.tool("write_file", path="s1/pane.txt", content="from the pane\n"),
        Turn.tool("git_commit", message="feat(s1): written in a pane"),
        Turn.text("done"),
    )
    monkeypatch.chdir(proj.root)
    launch(Project(proj.root), "phase-1", attach=False, agent=None, socket=server.socket_name, day=None)
    tmux = Tmux(server.socket_name)
    pane = retry_until(
        lambda: next((p for p in tmux.panes() if p.stream == "s1"), None),
        lambda p: p is not None and p.finished,
        timeout=120,
    )
    assert pane is not None and pane.dead_status == 0
    assert DEFAULT_KEY not in pane.command
    assert agentkit.git(proj.s1, "log", "-1", "--format=%s") == "feat(s1): written in a pane"
    assert (proj.s1 / "s1" / "pane.txt").read_text() == "from the pane\n"
    assert len(fake.message_requests()) == 3


def test_cli_errors_name_what_is_missing(
    fake: FakeAnthropic,
    proj: agentkit.Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = ["--root", str(proj.root)]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, _, err = call_main([*root, "agent", "run", "s1"], capsys)
    assert code == 5 and "ANTHROPIC_API_KEY" in err
    code, _, err = call_main([*root, "agent", "run", "nope"], capsys)
    assert code == 2 and "no stream 'nope' in phase phase-1 (streams: s1, s2)" in err
    code, _, err = call_main([*root, "agent", "run", "s1", "--task", "T9"], capsys)
    assert code == 2 and "has no task 'T9' (its tasks: T1)" in err
    code, _, err = call_main([*root, "agent", "log", "s1"], capsys)
    assert code == 2 and "no agent transcript yet" in err
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-key-0000000000")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    code, out, _ = call_main([*root, "agent", "run", "s1", "--json"], capsys)
    envelope = json.loads(out)
    assert code == 5 and envelope["data"]["status"] == "failed"
    assert "HTTP 401 authentication_error" in envelope["data"]["reason"]
    assert "sk-ant-wrong" not in out
