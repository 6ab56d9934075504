"""Agent kinds: the command, the options and the environment each one gets; the manifest's ``agent:``."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import EXAMPLE_TEXT, line_of, replace_once

from coditect_cli.agents import profile_for
from coditect_cli.agents.base import AgentContext
from coditect_cli.domain.launch import ENV_WRAPPER, AgentCommand, StreamWorktree, env_file_text, with_env_file
from coditect_cli.domain.loader import load_manifest_text
from coditect_cli.domain.manifest import AiderAgent, ClaudeAgent, CodexAgent, options_for_run
from coditect_cli.errors import ManifestError

NAME = "m.yaml"


def ctx(tmp: Path, *, resume: bool = False, worktrees: int = 2) -> AgentContext:
    trees = tuple(StreamWorktree(f"r{i}", tmp / f"wt {i}", f"b{i}", ("src/",)) for i in range(worktrees))
    return AgentContext(
        stream="api",
        prompt_file=tmp / "prompt.md",
        worktrees=trees,
        gates=("python3 -m pytest -q",),
        login_shell="/bin/bash",
        hook=("/usr/bin/python3", "-I", "-S", "/x/events.py", str(tmp / "api.events")),
        settings_file=tmp / "api.settings.json",
        resume=resume,
    )


def words(line: str) -> list[str]:
    """The shell words of a command line before its prompt argument."""
    head = line.split(' "$(cat ', 1)[0]
    return shlex.split(head)


def test_claude_defaults_allow_edits_git_and_gates_and_add_the_other_worktrees(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    profile = profile_for(ClaudeAgent())
    command = profile.command(c)
    argv = words(command.argv[2])
    assert argv[:6] == [
        "exec",
        "claude",
        "--settings",
        str(c.settings_file),
        "--permission-mode",
        "acceptEdits",
    ]
    tools = (
        next(a for a in argv if a.startswith("--allowedTools=")).removeprefix("--allowedTools=").split(",")
    )
    assert {"Edit", "Write", "Bash(git:*)", "Bash(python3 -m pytest -q)"} <= set(tools)
    assert f"--add-dir={tmp_path / 'wt 1'}" in argv and f"--add-dir={tmp_path / 'wt 0'}" not in argv
    assert command.argv[2].endswith(f' "$(cat {shlex.quote(str(c.prompt_file))})"')
    settings = json.loads(profile.files(c)[c.settings_file])
    events = set(settings["hooks"])
    assert {"UserPromptSubmit", "Notification", "Stop", "SessionEnd"} <= events
    hook = settings["hooks"]["Stop"][0]["hooks"][0]
    assert hook["type"] == "command" and shlex.split(hook["command"]) == list(c.hook)
    assert "ANTHROPIC_API_KEY" in profile.env_names and "ANTHROPIC_BASE_URL" in profile.env_names


def test_claude_options_and_resume(tmp_path: Path) -> None:
    options = ClaudeAgent(
        model="opus", permission_mode="plan", allowed_tools=("Read",), add_dirs=False, args=("--verbose",)
    )
    profile = profile_for(options)
    argv = words(profile.command(ctx(tmp_path)).argv[2])
    assert "--permission-mode" in argv and argv[argv.index("--permission-mode") + 1] == "plan"
    assert "--allowedTools=Read" in argv and not any(a.startswith("--add-dir") for a in argv)
    assert argv[-3:] == ["--model", "opus", "--verbose"]
    resumed = profile.command(ctx(tmp_path, resume=True)).argv[2]
    assert resumed.endswith(" --continue") and "$(cat" not in resumed
    assert (
        profile_for(ClaudeAgent(resume=False)).command(ctx(tmp_path, resume=True)).argv[2].endswith('.md)"')
    )


def test_codex_command_options_notify_and_resume(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    profile = profile_for(CodexAgent(kind="codex", model="o3", sandbox="read-only", approval="never"))
    argv = words(profile.command(c).argv[2])
    assert argv[:6] == ["exec", "codex", "--sandbox", "read-only", "--ask-for-approval", "never"]
    notify = argv[argv.index("-c") + 1]
    assert notify.startswith("notify=") and json.loads(notify.removeprefix("notify=")) == list(c.hook)
    assert argv[argv.index("--add-dir") + 1] == str(tmp_path / "wt 1")
    assert argv[-2:] == ["--model", "o3"]
    assert profile.signals == "notify" and "OPENAI_API_KEY" in profile.env_names
    resumed = shlex.split(profile.command(ctx(tmp_path, resume=True)).argv[2])
    assert resumed[1:4] == ["codex", "resume", "--last"]
    assert profile.files(c) == {}


def test_aider_gets_the_prompt_as_read_only_context(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    profile = profile_for(AiderAgent(kind="aider", model="sonnet"))
    argv = shlex.split(profile.command(c).argv[2])
    assert argv == ["exec", "aider", "--read", str(c.prompt_file), "--no-auto-commits", "--model", "sonnet"]
    assert not profile.can_resume and profile.signals == "screen"
    assert "--auto-commits" in shlex.split(
        profile_for(AiderAgent(kind="aider", auto_commits=True)).command(c).argv[2]
    )


def test_shell_and_template(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    assert profile_for(options_for_run("shell")).command(c).argv == ("/bin/bash", "-l")
    template = profile_for(options_for_run("my-agent --in {worktree} --name {stream}"))
    assert shlex.split(template.command(c).argv[2]) == [
        "exec",
        "my-agent",
        "--in",
        str(tmp_path / "wt 0"),
        "--name",
        "api",
    ]


def test_secrets_go_through_a_0600_file_never_the_command_line(tmp_path: Path) -> None:
    command = profile_for(ClaudeAgent()).command(ctx(tmp_path))
    env_file = tmp_path / "api.env"
    secret = "sk-ant-api03-" + "x" * 30
    env_file.write_text(
        env_file_text({"ANTHROPIC_API_KEY": secret, "ANTHROPIC_BASE_URL": "http://h:1/a b'c"})
    )
    wrapped = with_env_file(command, env_file)
    assert secret not in " ".join(wrapped.argv)
    assert wrapped.argv[:4] == ("/bin/sh", "-c", ENV_WRAPPER, str(env_file))
    assert wrapped.argv[4:] == command.argv and wrapped.display == command.display
    # The pane's command exports the file's values exactly (quoting) to the program it execs.
    printenv = AgentCommand("template", ("env",), "env", "env")
    out = subprocess.run(with_env_file(printenv, env_file).argv, capture_output=True, text=True).stdout
    assert f"ANTHROPIC_API_KEY={secret}" in out and "ANTHROPIC_BASE_URL=http://h:1/a b'c" in out


class BadAgent(NamedTuple):
    test_id: str
    replacement: str
    message: str


BAD = [
    BadAgent("unknown-option", "agent: {role: codi-code-architect, colour: red}", "unknown key 'colour'"),
    BadAgent(
        "option-of-another-kind",
        "agent: {role: codi-code-architect, sandbox: read-only}",
        "unknown key 'sandbox'",
    ),
    BadAgent("unknown-kind", "agent: {kind: robot}\n    run_x: 1", "unknown agent kind"),
    BadAgent("bad-value", "agent: {role: codi-code-architect, permission_mode: yolo}", "permission_mode"),
]


@pytest.mark.parametrize("case", BAD, ids=[c.test_id for c in BAD])
def test_bad_agent_options_name_the_line(case: BadAgent) -> None:
    text = replace_once(EXAMPLE_TEXT, "agent: codi-code-architect", case.replacement)
    if case.test_id == "unknown-kind":
        text = replace_once(text, "\n    run_x: 1\n    run: claude\n", "\n")
    with pytest.raises(ManifestError) as err:
        load_manifest_text(text, NAME)
    problems = [p for p in err.value.problems if case.message in p.message]
    assert problems, [p.render() for p in err.value.problems]
    assert problems[0].location is not None
    assert problems[0].location.line == line_of(text, case.replacement.split("\n")[0])


def test_agent_mapping_kind_from_run_and_role_for_codeowners() -> None:
    text = replace_once(
        EXAMPLE_TEXT, "agent: codi-code-architect", "agent: {role: codi-code-architect, model: opus}"
    )
    stream = load_manifest_text(text, NAME).manifest.stream("backend")
    assert stream.role == "codi-code-architect" and stream.code_owner == "@codi-code-architect"
    assert isinstance(stream.agent_options, ClaudeAgent) and stream.agent_options.model == "opus"
    both = replace_once(EXAMPLE_TEXT, "agent: codi-code-architect", "agent: {role: x, kind: codex}")
    with pytest.raises(ManifestError) as err:
        load_manifest_text(both, NAME)
    assert any("not both" in p.message for p in err.value.problems)
