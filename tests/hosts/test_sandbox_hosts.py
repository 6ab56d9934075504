"""The sandbox phase with two of its streams on remote hosts (two real sshd on 127.0.0.1), through checkpoint 1.

infra runs on host h1 and backend on host h2 (checkpoint 1 is theirs); the other streams run here. The
scripted agents commit in their own areas and push from where they run: infra's and backend's work reaches
the integration side only through origin. Then their PRs are opened and approved, and `coditect checkpoint 1`
merges them after its gates pass on the merged result.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshkit
import yaml
from helpers import EXAMPLE_TEXT, coditect, git_in, kill_tmux_server, retry_until

from coditect_cli.agents import scripted_agent_template
from coditect_cli.domain.manifest import Host
from coditect_cli.project import Project
from coditect_cli.sandbox import build_sandbox
from coditect_cli.services.hosts import RemoteLayout

REPO = Path(__file__).resolve().parents[2]
REMOTE = {
    "infra": ("h1", "infra", "opentofu/infra-notes.md"),
    "backend": ("h2", "backend", "src/backend-notes.md"),
}
ORIGINS = {"infra": "coditect-cloud-infra", "backend": "coditect-cloud-backend"}


def _manifest(kit: sshkit.SshKit, workdirs: dict[str, Path]) -> str:
    data = yaml.safe_load(EXAMPLE_TEXT)
    user = getpass.getuser()
    data["hosts"] = [
        {
            "name": name,
            "ssh": f"{user}@127.0.0.1",
            "port": kit.hosts[name].port,
            "workdir": str(workdirs[name]),
        }
        for name in kit.hosts
    ]
    for stream in data["streams"]:
        if stream["id"] in REMOTE:
            stream["host"] = REMOTE[stream["id"]][0]
            # The host is this machine: its scripted agent imports the coditect under test.
            stream["env"] = {"PYTHONPATH": str(REPO)}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[sshkit.SshKit]:
    started = sshkit.start_kit(tmp_path / "ssh")
    yield started
    started.close()


def test_sandbox_phase_with_two_remote_streams_through_checkpoint_1(
    tmp_path: Path, isolated_git: Path, kit: sshkit.SshKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdirs = {name: tmp_path / f"remote-{name}" for name in kit.hosts}
    source = tmp_path / "manifest" / "phase-1.yaml"
    source.parent.mkdir()
    source.write_text(_manifest(kit, workdirs), encoding="utf-8")
    sandbox = build_sandbox(tmp_path / "sandbox", source)
    root = sandbox.root
    known = root / ".git" / "coditect" / "ssh" / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(kit.known_hosts())
    socket = f"coditect-test-{uuid.uuid4().hex[:8]}"
    env = {"CODITECT_SSH_CONFIG": str(kit.config), "CODITECT_TMUX_SOCKET": socket}
    layouts = {
        name: RemoteLayout(
            Host(name=name, ssh="x", port=kit.hosts[name].port, workdir=str(workdirs[name])), root.name
        )
        for name in kit.hosts
    }

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        done = coditect(root, *args, "--json", env=env, timeout=300)
        data = json.loads(done.stdout) if done.stdout.strip() else {}
        assert "Traceback" not in done.stderr, done.stderr
        return done.code, data

    try:
        code, data = run(
            "streams", "launch", "--no-attach", "--day", "1", "--agent", scripted_agent_template()
        )
        assert code == 0, data
        started = {h["host"]: h["started"] for h in data["data"]["hosts"]}
        assert started == {"h1": ["infra"], "h2": ["backend"]}
        for stream, (host, repo, _) in REMOTE.items():
            assert Path(layouts[host].worktree("phase-1", stream, repo), ".git").exists()
            assert not (root / ".coditect" / "worktrees" / "phase-1" / stream).exists()

        # Every agent finishes (the remote ones read over their host's connection) and exits 0.
        def finished() -> dict[str, Any]:
            code, data = run("streams", "status")
            assert code == 0, data
            return {row["stream"]: row for row in data["data"]["streams"]}

        rows = retry_until(finished, lambda r: all(row["state"] == "dead" for row in r.values()), timeout=120)
        assert {s: (r["exit_status"], r["host"]) for s, r in rows.items()} == {
            "infra": (0, "h1"),
            "backend": (0, "h2"),
            "frontend": (0, None),
            "deploy": (0, None),
            "docs": (0, None),
        }

        # The remote streams' work is on origin, pushed from their hosts (this machine never had it).
        branches = {}
        for stream, (_, repo, notes) in REMOTE.items():
            origin = sandbox.origins[ORIGINS[repo]]
            branch = next(
                line.split()[1].removeprefix("refs/heads/")
                for line in git_in(origin, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
                if f"/phase-1/{stream}/" in line
            )
            branches[stream] = branch
            assert git_in(origin, "show", f"{branch}:{notes}")  # the agent's notes, committed there
            log = git_in(origin, "log", "--format=%s", f"phase-1-integration..{branch}").splitlines()
            assert len(log) == 2, log  # the scripted agent's two commits

        for stream in REMOTE:
            code, data = run("pr", "open", stream)
            assert code == 0, data
        from coditect_cli.services.demo import _stage_reviews

        monkeypatch.setenv("CODITECT_SSH_CONFIG", str(kit.config))
        monkeypatch.setenv("CODITECT_TMUX_SOCKET", socket)
        approved = _stage_reviews(Project(root)).data["approvals"]
        assert {a["stream"] for a in approved} >= set(REMOTE)

        code, data = run("checkpoint", "1")
        assert code == 0, data
        result = data["data"]
        assert result["status"] == "passed", result
        assert {m["repo"] for m in result["merged"]} >= {"infra", "backend"}, result["merged"]
        for stream, (_, repo, notes) in REMOTE.items():
            origin = sandbox.origins[ORIGINS[repo]]
            on_integration = git_in(origin, "show", f"phase-1-integration:{notes}")
            assert on_integration == git_in(origin, "show", f"{branches[stream]}:{notes}")
    finally:
        for lay in layouts.values():
            kill_tmux_server(lay.socket)
        kill_tmux_server(socket)
        for master in (root / ".git" / "coditect" / "ssh").glob("cm-*"):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={master}", "-O", "exit", "x"], capture_output=True, check=False
            )
