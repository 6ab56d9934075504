"""``streams launch|status|send|stop`` through the service layer: real repositories, a real tmux server on a
private socket, no mocks.

The pure part first (session names, layout, phase days, agent command lines, prompts), then end to end: the
phase-1 sandbox's panes (directories, environment, titles, prompts), a relaunch that restores a killed pane
and leaves the others running, status counts, ``stop`` refusing to lose work then removing worktrees, the
scripted agent committing and pushing in every worktree, seven streams in windows, names with dots and
dashes, literal ``send``, a dead agent's exit status, and missing agent programs reported before anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers import build_phase1_sandbox, git_in, kill_tmux_server, retry_until, session_of, stream_worktree
from libtmux.server import Server

from coditect_cli.adapters.tmux import Tmux
from coditect_cli.agents import profile_for, scripted_agent_template
from coditect_cli.agents.base import AgentContext
from coditect_cli.domain.launch import (
    AgentCommand,
    StreamWorktree,
    UnsafeTemplate,
    choose_layout,
    day_date,
    legacy_session_name,
    phase_day,
    program_of,
    render_prompt,
    session_name,
    stream_worktrees,
    substitute,
)
from coditect_cli.domain.loader import load_manifest
from coditect_cli.domain.manifest import Manifest, Schedule, options_for_run
from coditect_cli.errors import ExitCode, RefusedError, UnavailableError
from coditect_cli.project import Project
from coditect_cli.services import launch as svc
from coditect_cli.services import streams as streams_svc
from coditect_cli.services.session import prompt_path, resolve_socket


def phase1_session(root: Path) -> str:
    return session_of(root, "coditect-rollout-master", "phase-1")


def panes_of(socket: str, session: str) -> dict[str, Any]:
    return {p.stream: p for p in Tmux(socket).session_panes(session)}


# An agent that reports where it runs and with what environment to OUT/<stream>.json, then waits.
REPORTER = """
import json, os, sys, time
out = sys.argv[1]
path = os.path.join(out, os.environ["CODITECT_STREAM"] + ".json")
with open(path + ".tmp", "w") as fh:
    json.dump({"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv[2:]}, fh)
os.rename(path + ".tmp", path)
time.sleep(600)
"""


def reporter_template(tmp: Path) -> tuple[str, Path]:
    out = tmp / "reports"
    out.mkdir(parents=True, exist_ok=True)
    script = tmp / "reporter.py"
    script.write_text(REPORTER)
    words = [sys.executable, str(script), str(out)]
    return " ".join(shlex.quote(w) for w in words) + " {stream} {prompt_file}", out


def report(out: Path, stream: str) -> dict[str, Any]:
    path = out / f"{stream}.json"
    retry_until(path.exists, bool)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# ----------------------------------------------------------------------------------------------- small projects


def manifest_text(
    phase: str, streams: list[tuple[str, str]], *, project: str = "demo", layout: str = "auto"
) -> str:
    """A one-repository manifest (the sandbox superproject) with ``streams`` as (id, run) pairs."""
    lines = [
        "version: 1",
        f"phase: {phase}",
        f"project: {project}",
        f"layout: {layout}",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        "  - {id: root, path: .}",
        "streams:",
    ]
    for i, (sid, run) in enumerate(streams, 1):
        lines += [
            f"  - id: {sid}",
            f"    terminal: {i}",
            f"    name: Stream {sid}",
            "    agent: dev",
            f"    run: {json.dumps(run)}",
            f"    env: {{LANE: {json.dumps('lane ' + sid + ';')}}}",
            f"    work: [{{repo: root, topic: {sid}, owns: [lanes/{sid}/]}}]",
            f"    deliverables: [{{id: {sid}-first, days: 1-2, title: First part of {sid}}}]",
        ]
    return "\n".join(lines) + "\n"


def small_project(tmp: Path, phase: str, streams: list[tuple[str, str]], **kw: str) -> Project:
    """A sandbox whose only manifest is ``manifest_text(...)``: one repository, one worktree per stream."""
    from coditect_cli.sandbox import build_sandbox

    source = tmp / "manifests" / f"{phase}.yaml"
    source.parent.mkdir(parents=True)
    source.write_text(manifest_text(phase, streams, **kw))
    return Project(build_sandbox(tmp / "sandbox", source).root)


def do_launch(project: Project, socket: str, mp: pytest.MonkeyPatch, **kw: Any) -> svc.LaunchResult:
    """``launch`` from the project root (setup's CODEOWNERS header names the manifest relative to the cwd)."""
    mp.chdir(project.root)
    options: dict[str, Any] = {"attach": False, "agent": None, "socket": socket, "day": None, **kw}
    return svc.launch(project, None, **options)


# ----------------------------------------------------------------------------------------------- pure parts


class NameCase(NamedTuple):
    test_id: str
    project: str
    phase: str
    expected: str


NAMES = [
    NameCase("plain", "coditect-rollout-master", "phase-1", "coditect-coditect-rollout-master-phase-1"),
    NameCase("dots", "demo.proj", "rel-1.2", "coditect-demo-proj-rel-1-2"),
    NameCase("colon-space-hash", "my app:#1", "p", "coditect-my-app--1-p"),
]


@pytest.mark.parametrize("case", NAMES, ids=[c.test_id for c in NAMES])
def test_session_name_is_safe_in_tmux_targets_and_carries_the_roots_hash(case: NameCase) -> None:
    assert legacy_session_name(case.project, case.phase) == case.expected
    name = session_name(case.project, case.phase, "/work/a b")
    assert re.fullmatch(re.escape(case.expected) + "-[0-9a-f]{8}", name)
    assert session_name(case.project, case.phase, "/work/a b") == name  # stable
    assert session_name(case.project, case.phase, "/work/a c") != name  # another checkout, another session


def test_layout_tiles_up_to_six_streams_unless_the_manifest_forces_it() -> None:
    assert [choose_layout("auto", n) for n in (1, 6, 7)] == ["tiled", "tiled", "windows"]
    assert choose_layout("tiled", 9) == "tiled" and choose_layout("windows", 2) == "windows"


class DayCase(NamedTuple):
    test_id: str
    start: dt.date
    today: dt.date
    expected: int


TUE = dt.date(2026, 12, 1)
SAT = dt.date(2026, 12, 5)
DAYS = [
    DayCase("before-start", TUE, dt.date(2026, 11, 30), 0),
    DayCase("first-day", TUE, TUE, 1),
    DayCase("friday", TUE, dt.date(2026, 12, 4), 4),
    DayCase("weekend-counts-as-friday", TUE, dt.date(2026, 12, 6), 4),
    DayCase("next-monday", TUE, dt.date(2026, 12, 7), 5),
    DayCase("three-weeks-later", TUE, dt.date(2026, 12, 22), 16),
    DayCase("start-on-saturday-is-monday", SAT, dt.date(2026, 12, 7), 1),
    DayCase("saturday-start-not-begun", SAT, SAT, 0),
]


@pytest.mark.parametrize("case", DAYS, ids=[c.test_id for c in DAYS])
def test_phase_day_counts_workdays_only(case: DayCase) -> None:
    schedule = Schedule(start=case.start, days=10)
    assert phase_day(schedule, case.today) == case.expected
    if case.expected >= 1:
        assert phase_day(schedule, day_date(schedule, case.expected)) == case.expected


def resolve_agent(
    run: str, *, prompt_file: Path, stream: str, worktree: Path, login_shell: str
) -> AgentCommand:
    """The command of ``run`` (its kind's profile) for a one-worktree stream."""
    ctx = AgentContext(
        stream=stream,
        prompt_file=prompt_file,
        worktrees=(StreamWorktree("r", worktree, "b", ("x/",)),),
        gates=(),
        login_shell=login_shell,
        hook=("rec",),
        settings_file=worktree / "settings.json",
    )
    return profile_for(options_for_run(run)).command(ctx)


def test_agent_commands_quote_every_value_and_keep_the_prompt_out_of_the_shell_line(tmp_path: Path) -> None:
    odd = tmp_path / "it's a $dir; rm -rf"
    prompt = odd / "p.md"
    shell = resolve_agent("shell", prompt_file=prompt, stream="s", worktree=odd, login_shell="/bin/zsh")
    assert shell.argv == ("/bin/zsh", "-l") and shell.program == "/bin/zsh"

    claude = resolve_agent("claude", prompt_file=prompt, stream="s", worktree=odd, login_shell="/bin/sh")
    assert claude.argv[:2] == ("/bin/sh", "-c") and claude.program == "claude"
    assert claude.argv[2].startswith("exec claude --settings ")
    assert claude.argv[2].endswith(f' "$(cat {shlex.quote(str(prompt))})"')
    words = shlex.split(claude.argv[2].removesuffix(f' "$(cat {shlex.quote(str(prompt))})"'))
    assert words[2:4] == ["--settings", str(odd / "settings.json")]

    template = "my-agent --in {worktree} --prompt {prompt_file} --name {stream}"
    agent = resolve_agent(template, prompt_file=prompt, stream="api.v2", worktree=odd, login_shell="/bin/sh")
    line = agent.argv[2]
    assert line.startswith("exec my-agent") and agent.program == "my-agent"
    assert shlex.split(line)[1:] == [
        "my-agent",
        "--in",
        str(odd),
        "--prompt",
        str(prompt),
        "--name",
        "api.v2",
    ]


NASTY = '/tmp/it\'s a "$dir"; `rm -rf /` \\ $(id) x'
PLAIN = "/tmp/pytest-of-u/p-1/wt/feature.x@2,y+z=1:%"


def test_plain_values_stay_one_word_at_every_level_and_others_are_quoted_bare() -> None:
    """A value of plain characters is one word to any shell however deep; any other value is quoted where it
    stands as a word of its own."""
    template = """printf '%s\\n' {worktree} "{worktree}" 'x{worktree}y' "$(sh -c "echo {worktree}")" """
    line = substitute(template, {"worktree": PLAIN, "prompt_file": "p", "stream": "s"})
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [PLAIN, PLAIN, f"x{PLAIN}y", PLAIN]
    bare = substitute(
        "printf '%s\\n' {worktree};printf '%s\\n' {worktree}",
        {"worktree": NASTY, "prompt_file": "", "stream": ""},
    )
    out = subprocess.run(["/bin/sh", "-c", bare], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [NASTY, NASTY]


class UnsafeCase(NamedTuple):
    test_id: str
    template: str
    where: str


UNSAFE = [
    UnsafeCase("nested-double-quotes", 'bash -c "head {prompt_file}"', 'inside "..." quotes'),
    UnsafeCase("nested-single-quotes", "sh -c 'head {prompt_file}'", "inside '...' quotes"),
    UnsafeCase("glued-to-a-quote", "sh -c 'head '{prompt_file}", "joined to other characters"),
    UnsafeCase("eval", "eval head {prompt_file}", "runs `eval`"),
    UnsafeCase("ssh", "ssh host cat {prompt_file}", "runs `ssh`"),
]


@pytest.mark.parametrize("case", UNSAFE, ids=[c.test_id for c in UNSAFE])
def test_a_hostile_value_where_a_second_shell_reads_it_is_refused(case: UnsafeCase) -> None:
    with pytest.raises(UnsafeTemplate) as raised:
        substitute(case.template, {"prompt_file": NASTY, "stream": "s", "worktree": "w"})
    assert case.where in str(raised.value) and "CODITECT_PROMPT_FILE" in str(raised.value)
    # The same template with a plain value is fine.
    assert PLAIN in substitute(case.template, {"prompt_file": PLAIN, "stream": "s", "worktree": "w"})


class ProgramCase(NamedTuple):
    test_id: str
    line: str
    program: str | None


PROGRAMS = [
    ProgramCase("simple", "aider --yes", "aider"),
    ProgramCase("assignments-and-exec", "FOO=1 BAR=2 exec ./run.sh x", "./run.sh"),
    ProgramCase("env-wrapper", "env -i codex", "codex"),
    ProgramCase("compound", "cd x && make", None),
    ProgramCase("variable", "$EDITOR file", None),
]


@pytest.mark.parametrize("case", PROGRAMS, ids=[c.test_id for c in PROGRAMS])
def test_program_of_finds_the_program_a_line_starts(case: ProgramCase) -> None:
    assert program_of(case.line) == case.program


def example_manifest() -> Manifest:
    from helpers import EXAMPLE_MANIFEST

    return load_manifest(EXAMPLE_MANIFEST, "phase-1.yaml").manifest


def test_prompt_has_task_worktrees_owned_paths_todays_deliverables_and_rules(tmp_path: Path) -> None:
    manifest = example_manifest()
    backend = manifest.stream("backend")
    paths = {p.key: tmp_path / p.key for p in manifest.pairs()}
    text = render_prompt(manifest, backend, stream_worktrees(manifest, backend, paths), 3)
    assert "Implement the FastAPI backend" in text
    assert "branch `feature/phase-1/backend/auth-service`" in text
    assert "you own: `src/`, `tests/`, `alembic/`" in text
    assert "Integration branch: `phase-1-integration`" in text
    assert "## Today: phase day 3 of 10 (Thu 2026-12-03)" in text
    today = text.split("## Today")[1].split("Coming up")[0]
    assert "[backend-orgs]" in today and "[backend-auth]" not in today
    assert "open a pull request from it into `phase-1-integration`" in text
    assert "Commit only in the paths you own" in text
    assert "`openapi.yaml`, `contracts/` (with frontend)" in text  # the shared paths
    before = render_prompt(manifest, backend, stream_worktrees(manifest, backend, paths), 0)
    assert "## Before the phase: day 1 is Tue 2026-12-01" in before and "[backend-auth]" in before


# ----------------------------------------------------------------------------------------------- the phase-1 sandbox


@pytest.fixture(scope="module")
def tmux_socket() -> Iterator[str]:
    """A private tmux server (``tmux -L``) for a whole module; killed at the end."""
    name = f"coditect-test-{uuid.uuid4().hex[:10]}"
    yield name
    kill_tmux_server(name)


class Launched(NamedTuple):
    project: Project
    socket: str
    result: svc.LaunchResult
    reports: Path


@pytest.fixture(scope="module")
def launched(
    isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory, tmux_socket: str
) -> Iterator[Launched]:
    """The phase-1 sandbox launched (setup included) with a reporting agent on day 3."""
    tmp = tmp_path_factory.mktemp("launch")
    project = Project(build_phase1_sandbox(tmp / "sandbox"))
    template, reports = reporter_template(tmp)
    with pytest.MonkeyPatch.context() as mp:
        result = do_launch(project, tmux_socket, mp, agent=template, day=3)
    yield Launched(project, tmux_socket, result, reports)


STREAM_ORDER = ["infra", "backend", "frontend", "deploy", "docs"]


def test_launch_sets_up_then_starts_one_pane_per_stream_in_its_worktree(launched: Launched) -> None:
    result = launched.result
    root = launched.project.root
    assert result.setup is not None and result.setup.done  # setup ran first
    assert result.created and result.layout == "tiled" and result.session == phase1_session(root)
    assert [p.stream for p in result.panes] == STREAM_ORDER
    assert all(p.state == "started" for p in result.panes)
    assert result.tmux_invocations <= 4  # read panes twice, build once (the session in one tmux process)
    panes = panes_of(launched.socket, launched.result.session)
    assert list(panes) == STREAM_ORDER
    first_repo = {
        "infra": "infra",
        "backend": "backend",
        "frontend": "frontend",
        "deploy": "backend",
        "docs": "root",
    }
    for stream, repo in first_repo.items():
        data = report(launched.reports, stream)
        assert data["cwd"] == str(stream_worktree(root, stream, repo))
        env = data["env"]
        assert env["CODITECT_PHASE"] == "phase-1" and env["CODITECT_STREAM"] == stream
        assert env["CODITECT_WORKTREE"] == data["cwd"]
        assert data["argv"] == [stream, str(prompt_path(_common(root), "phase-1", stream))]
    docs = report(launched.reports, "docs")["env"]
    assert json.loads(docs["CODITECT_WORKTREES"]) == {
        r: str(stream_worktree(root, "docs", r)) for r in ("root", "backend", "frontend", "infra")
    }
    assert json.loads(docs["CODITECT_OWNS"])["backend"] == ["docs/", "README.md", "CHANGELOG.md"]
    assert report(launched.reports, "frontend")["env"]["VITE_API_URL"] == "http://localhost:4010"
    assert panes["docs"].stream_title == "docs · feature/phase-1/docs/deployment-guides (+3 repos)"
    assert panes["infra"].title == "infra · feature/phase-1/infra/gcp-foundation"


def _common(root: Path) -> Path:
    return Path(git_in(root, "rev-parse", "--path-format=absolute", "--git-common-dir"))


def test_prompt_files_hold_the_day_and_the_socket_is_remembered(launched: Launched) -> None:
    root = launched.project.root
    prompt = prompt_path(_common(root), "phase-1", "frontend").read_text()
    assert "## Today: phase day 3 of 10" in prompt and "[frontend-auth]" in prompt
    assert resolve_socket(_common(root), "phase-1", None) == launched.socket


def test_relaunch_restores_a_killed_pane_and_leaves_running_agents_alone(
    launched: Launched, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = panes_of(launched.socket, launched.result.session)
    Tmux(launched.socket).run(["kill-pane", "-t", before["frontend"].pane_id])
    retry_until(lambda: panes_of(launched.socket, launched.result.session), lambda p: "frontend" not in p)
    (launched.reports / "frontend.json").unlink()

    template, _ = reporter_template(launched.reports.parent)
    again = do_launch(launched.project, launched.socket, monkeypatch, agent=template, day=3)
    assert not again.created and again.setup is None
    assert again.added == ["frontend"]
    assert {p.stream: p.state for p in again.panes} == {
        "infra": "running",
        "backend": "running",
        "frontend": "started",
        "deploy": "running",
        "docs": "running",
    }
    after = panes_of(launched.socket, launched.result.session)
    assert list(after) == STREAM_ORDER  # back in its place
    for stream in ("infra", "backend", "deploy", "docs"):
        assert (after[stream].pane_id, after[stream].pane_pid) == (
            before[stream].pane_id,
            before[stream].pane_pid,
        )
    assert after["frontend"].pane_id != before["frontend"].pane_id
    report(launched.reports, "frontend")

    third = do_launch(launched.project, launched.socket, monkeypatch, agent=template, day=3)
    assert third.added == [] and third.commands == []


def test_status_reports_panes_and_uncommitted_and_unpushed_work(launched: Launched) -> None:
    root = launched.project.root
    backend = stream_worktree(root, "backend", "backend")
    (backend / "src" / "draft.py").write_text("x = 1\n")
    git_in(backend, "commit", "-q", "--allow-empty", "-m", "wip: local only")
    try:
        result = streams_svc.status(launched.project, None, socket=launched.socket)
    finally:
        (backend / "src" / "draft.py").unlink()
        git_in(backend, "reset", "-q", "--hard", "HEAD~1")
    assert result.exists and [s.stream for s in result.streams] == STREAM_ORDER
    rows = {s.stream: s for s in result.streams}
    assert all(s.state == "running" for s in result.streams)
    assert rows["backend"].command == "python3" or rows["backend"].command.startswith("python")
    assert rows["backend"].cwd == str(backend)
    assert rows["backend"].idle_seconds is not None and rows["backend"].idle_seconds < 600
    (work,) = rows["backend"].worktrees
    assert (work.branch, len(work.changes), work.unpushed) == ("feature/phase-1/backend/auth-service", 1, 1)
    assert work.upstream == "origin/feature/phase-1/backend/auth-service"
    assert [len(w.changes) + w.unpushed for w in rows["docs"].worktrees] == [0, 0, 0, 0]
    assert json.dumps(result.to_json())  # JSON-ready


def test_stop_refuses_to_remove_worktrees_with_work_then_removes_them_when_clean(launched: Launched) -> None:
    root = launched.project.root
    infra = stream_worktree(root, "infra", "infra")
    (infra / "opentofu" / "scratch.tf").write_text("# scratch\n")
    (infra / "opentofu" / "scratch.tf").chmod(0o644)
    notes = stream_worktree(root, "docs", "root") / "docs" / "notes.md"
    notes.write_text("notes\n")
    docs_root = notes.parent.parent
    git_in(docs_root, "add", "docs/notes.md")
    git_in(docs_root, "commit", "-q", "-m", "docs: notes not pushed yet")
    sha = git_in(docs_root, "rev-parse", "--short", "HEAD")

    with pytest.raises(RefusedError) as refused:
        streams_svc.stop(launched.project, None, socket=launched.socket, remove_worktrees=True)
    err = refused.value
    assert err.exit_code == ExitCode.REFUSED
    assert "?? opentofu/scratch.tf" in err.message and str(infra) in err.message
    assert f"{sha} docs: notes not pushed yet" in err.message
    assert {(p.code, p.location.file if p.location else "") for p in err.problems} == {
        ("uncommitted", str(infra)),
        ("unpushed", str(docs_root)),
    }
    assert len(panes_of(launched.socket, launched.result.session)) == 5  # nothing was stopped
    assert stream_worktree(root, "infra", "infra").is_dir()

    (infra / "opentofu" / "scratch.tf").unlink()
    git_in(docs_root, "push", "-q")
    result = streams_svc.stop(launched.project, None, socket=launched.socket, remove_worktrees=True)
    assert result.killed and result.panes == 5 and len(result.removed) == 9
    assert panes_of(launched.socket, launched.result.session) == {}
    assert not (root / ".coditect" / "worktrees" / "phase-1").exists()
    for repo in (root, root / "submodules/cloud/coditect-cloud-backend"):
        assert git_in(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    # The branches (and the pushed commit) are still there.
    assert git_in(root, "rev-parse", "--short", "feature/phase-1/docs/deployment-guides") == sha


# ----------------------------------------------------------------------------------------------- the scripted agent


def test_scripted_agents_commit_in_their_own_areas_push_and_exit_zero(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(build_phase1_sandbox(tmp_path / "sandbox"))
    result = do_launch(project, server.socket_name, monkeypatch, agent=scripted_agent_template(), day=1)
    statuses = streams_svc.wait_for_agents(project, None, timeout=60, socket=server.socket_name)
    assert statuses == dict.fromkeys(STREAM_ORDER, 0), _logs(project)
    root = project.root
    for stream, repo, owned in [
        ("infra", "infra", "opentofu/"),
        ("deploy", "backend", "kubernetes/"),
        ("deploy", "infra", ".github/workflows/"),
        ("docs", "frontend", "docs/"),
    ]:
        wt = stream_worktree(root, stream, repo)
        changed = git_in(wt, "diff", "--name-only", "phase-1-integration", "HEAD").splitlines()
        assert changed == [f"{owned}{stream}-notes.md"], (stream, repo, changed)
        assert len(git_in(wt, "rev-list", "phase-1-integration..HEAD").splitlines()) == 2
        assert git_in(wt, "rev-parse", "HEAD") == git_in(wt, "rev-parse", "@{upstream}")  # pushed
        assert git_in(wt, "status", "--porcelain") == ""
    notes = (stream_worktree(root, "infra", "infra") / "opentofu" / "infra-notes.md").read_text()
    assert "[infra-network] VPC, networking, Cloud SQL setup" in notes and "infra-runtime" not in notes
    status = streams_svc.status(project, None, socket=server.socket_name)
    assert {s.stream: (s.state, s.exit_status) for s in status.streams} == dict.fromkeys(
        STREAM_ORDER, ("dead", 0)
    )
    assert status.streams[0].last_line == "scripted agent for stream infra: done"
    assert result.layout == "tiled"


def _logs(project: Project) -> str:
    logs = _common(project.root) / "coditect" / "panes" / "phase-1"
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(logs.glob("*.log")))


# ----------------------------------------------------------------------------------------------- small projects


def test_more_than_six_streams_get_a_window_each(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = [(f"s{i}", "sleep 600") for i in range(1, 8)]
    project = small_project(tmp_path, "wide", streams)
    result = do_launch(project, server.socket_name, monkeypatch)
    assert result.layout == "windows" and len(result.panes) == 7
    session = server.sessions.get(session_name=session_of(project.root, "demo", "wide"))
    assert session is not None
    windows = sorted(session.windows, key=lambda w: int(w.window_index or 0))
    assert [w.window_name for w in windows] == [s for s, _ in streams]
    assert all(len(w.panes) == 1 for w in windows)
    assert all(w.show_option("remain-on-exit") in {"on", True} for w in windows)
    # A window killed by hand comes back in its place.
    windows[3].kill()
    again = do_launch(project, server.socket_name, monkeypatch)
    assert again.added == ["s4"]
    rows = sorted(
        Tmux(server.socket_name).session_panes(session_of(project.root, "demo", "wide")),
        key=lambda p: p.window_index,
    )
    assert [p.stream for p in rows] == [s for s, _ in streams]


def test_dotted_names_literal_send_and_a_dead_agents_exit_status(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = tmp_path / "typed"
    typed.mkdir()
    streams = [
        ("api.v2", f"cat > {typed}/{{stream}}.txt"),
        ("web-ui", f"cat > {typed}/{{stream}}.txt"),
        ("exit-7", "sh -c 'echo failing; exit 7'"),
    ]
    project = small_project(tmp_path, "rel-1.2", streams, project="demo.proj")
    result = do_launch(project, server.socket_name, monkeypatch)
    assert result.session == session_of(project.root, "demo.proj", "rel-1.2")
    sock = server.socket_name

    text = """say "hi" to 'them'; echo $HOME `id` && rm -rf / | tee x;"""
    sent = streams_svc.send(project, None, "api.v2", text, socket=sock)
    assert sent.delivered == ["api.v2"]
    got = retry_until(lambda: (typed / "api.v2.txt").read_text(), lambda t: t.endswith("\n"))
    assert got == text + "\n"

    statuses = retry_until(
        lambda: {s.stream: s for s in streams_svc.status(project, None, socket=sock).streams},
        lambda s: s["exit-7"].exit_status is not None,
    )
    assert (statuses["exit-7"].state, statuses["exit-7"].exit_status) == ("dead", 7)
    assert statuses["exit-7"].last_line == "failing"
    assert statuses["web-ui"].state == "running"
    assert statuses["api.v2"].worktrees[0].branch == "feature/rel-1.2/api.v2/api.v2"

    everyone = streams_svc.send(project, None, "all", "second line", socket=sock)
    assert everyone.delivered == ["api.v2", "web-ui"] and "exit-7" in everyone.skipped
    retry_until(lambda: (typed / "web-ui.txt").read_text(), lambda t: t == "second line\n")

    env_pane = _pane_env(sock, result.session, "api.v2")
    assert env_pane["LANE"] == "lane api.v2;" and env_pane["CODITECT_PHASE"] == "rel-1.2"


def _pane_env(socket: str, session: str, stream: str) -> dict[str, str]:
    """The environment of ``stream``'s agent, read from /proc (Linux) via the pane's pid."""
    pane = panes_of(socket, session)[stream]
    raw = Path(f"/proc/{pane.pane_pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_missing_agent_programs_are_reported_per_stream_before_anything_changes(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = [("ok", "shell"), ("ai", "claude"), ("custom", "FOO=1 no-such-agent-xyz --go {worktree}")]
    project = small_project(tmp_path, "missing", streams)
    # PATH without claude: a directory holding it (e.g. /usr/bin, where npm installs it) is replaced by a
    # shadow directory linking everything else it holds.
    path = []
    for d in os.environ["PATH"].split(os.pathsep):
        if d and (Path(d) / "claude").exists():
            shadow = tmp_path / "shadow" / str(len(path))
            shadow.mkdir(parents=True)
            for entry in Path(d).iterdir():
                if entry.name != "claude":
                    (shadow / entry.name).symlink_to(entry)
            d = str(shadow)
        path.append(d)
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    assert shutil.which("claude") is None
    with pytest.raises(UnavailableError) as err:
        do_launch(project, server.socket_name, monkeypatch)
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert [p.message for p in err.value.problems] == [
        "stream ai: `claude` is not installed or not on PATH",
        "stream custom: `no-such-agent-xyz` is not installed or not on PATH",
    ]
    assert Tmux(server.socket_name).panes() == []  # no session (no server, even)
    assert not (project.root / ".coditect").exists()  # and setup did not run
    # --agent overrides every stream's run: then it launches.
    result = do_launch(project, server.socket_name, monkeypatch, agent="sleep 600")
    assert result.added == ["ok", "ai", "custom"]


def test_dry_run_lists_the_tmux_commands_and_changes_nothing(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = small_project(tmp_path, "dry", [("a", "sleep 600"), ("b", "sleep 600")])
    result = do_launch(project, server.socket_name, monkeypatch, dry_run=True)
    assert result.dry_run and result.setup is not None and result.setup.plan.steps
    assert result.commands[0].startswith(
        f"new-session -d -s {session_of(project.root, 'demo', 'dry')} -x 240 -y 80"
    )
    assert sum(c.startswith("split-window") for c in result.commands) == 1
    assert [p.state for p in result.panes] == ["planned", "planned"]
    assert Tmux(server.socket_name).panes() == []
    assert not (project.root / ".coditect").exists()


def test_the_prompt_text_never_reaches_a_shell_line() -> None:
    """claude reads the prompt from its file: no manifest prose is in any pane's command line."""
    manifest = example_manifest()
    for stream in manifest.streams:
        agent = resolve_agent(
            stream.run,
            prompt_file=Path("/p.md"),
            stream=stream.id,
            worktree=Path("/w"),
            login_shell="/bin/sh",
        )
        assert agent.kind == "claude" and stream.prompt.split()[0] not in " ".join(agent.argv)


def test_restart_starts_a_dead_agent_again_fresh_when_its_kind_cannot_resume(
    isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "runs"
    streams = [("once", f"sh -c 'echo run >> {counter}; exit 3'"), ("busy", "sleep 600")]
    project = small_project(tmp_path, "again", streams)
    do_launch(project, server.socket_name, monkeypatch)
    sock = server.socket_name
    states = lambda: {s.stream: s for s in streams_svc.status(project, None, socket=sock).streams}  # noqa: E731
    retry_until(states, lambda s: s["once"].exit_status == 3)

    with pytest.raises(RefusedError) as err:
        svc.restart(project, None, "busy", socket=sock)
    assert err.value.exit_code == ExitCode.REFUSED and "still running" in err.value.message

    done = svc.restart(project, None, "once", socket=sock)
    assert not done.resumed and "cannot resume" in done.note
    retry_until(lambda: counter.read_text().count("run"), lambda n: n == 2)
    after = retry_until(states, lambda s: s["once"].exit_status == 3)
    assert after["once"].pane_id == done.pane_id  # the same pane, started again
    assert after["busy"].state == "running"
