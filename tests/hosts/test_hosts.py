"""Streams on remote hosts over SSH: real sshd on 127.0.0.1 (two hosts: two ports, two host keys), a
generated key pair, coditect's own known_hosts, each host with its own tmux server; no mocks.

End to end through the CLI: setup clones and creates the worktrees and guards on the hosts (none locally
for their streams), launch starts the panes on each host's server, status reads them (one SSH connection per
host), send types into a remote pane, move refuses while work is unpushed and then moves, a host whose sshd
stops shows its streams ``unreachable``, stop ends every host's session. Then the faults: a changed host
key refused (exit 5, named), an unknown host in a stream (exit 2, file:line).
"""

from __future__ import annotations

import getpass
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sshkit
from helpers import Sampler, coditect, git_in, kill_tmux_server, retry_until

from coditect_cli.agents import scripted_agent_template
from coditect_cli.domain.manifest import Host
from coditect_cli.project import Project
from coditect_cli.services.hosts import RemoteLayout
from coditect_cli.services.session import agent_file

USER = getpass.getuser()
PROJECT = "proj"
REPO = Path(__file__).resolve().parents[2]
CANARY = f"canary-{uuid.uuid4().hex}"  # every stream's `env:` value: its pane gets it, no command line does


def manifest(kit: sshkit.SshKit, workdirs: dict[str, Path], streams: dict[str, str | None]) -> str:
    hosts = "".join(
        f"  - {{name: {name}, ssh: {USER}@127.0.0.1, port: {kit.hosts[name].port}, workdir: {workdirs[name]}}}\n"
        for name in kit.hosts
    )
    body = ""
    for k, (sid, host) in enumerate(streams.items(), 1):
        where = f"\n    host: {host}" if host else ""
        body += (
            f"\n  - id: {sid}\n    terminal: {k}\n    name: Stream {sid}\n    agent: agent{k}{where}\n"
            f"    run: shell\n    work: [{{repo: app, topic: t{k}, owns: [{sid}/]}}]\n"
            # The hosts are this machine: a scripted agent there imports the coditect under test.
            f'    env: {{PYTHONPATH: {REPO}, LANE_KEY: "{CANARY}-{sid}"}}\n'
        )
    return (
        "version: 1\nphase: phase-1\ntitle: Hosts\nforge: local\n"
        "schedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: app, path: .}\n"
        f"hosts:{chr(10) + hosts if hosts else ' []' + chr(10)}streams:{body}"
    )


def build_project(base: Path, text: str, streams: list[str]) -> Path:
    origin, root = base / "origin.git", base / PROJECT
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git_in(root, "config", "user.name", "T")
    git_in(root, "config", "user.email", "t@example.invalid")
    files = {
        ".gitignore": ".coditect/\n",
        "README.md": "# hosts\n",
        "workstreams/phase-1.yaml": text,
        **{f"{s}/README.md": f"{s}\n" for s in streams},
    }
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    git_in(root, "add", "-A")
    git_in(root, "commit", "-q", "-m", "initial")
    git_in(root, "branch", "develop")
    git_in(root, "remote", "add", "origin", str(origin))
    git_in(root, "push", "-q", "-u", "origin", "main", "develop")
    return root


class World:
    def __init__(self, base: Path, kit: sshkit.SshKit, streams: dict[str, str | None]) -> None:
        self.kit = kit
        self.workdirs = {name: base / f"remote-{name}" for name in kit.hosts}
        self.root = build_project(base, manifest(kit, self.workdirs, streams), list(streams))
        self.socket = f"coditect-test-{base.name}"
        self.env = {"CODITECT_SSH_CONFIG": str(kit.config), "CODITECT_TMUX_SOCKET": self.socket}
        known = self.root / ".git" / "coditect" / "ssh" / "known_hosts"
        known.parent.mkdir(parents=True)
        known.write_text(kit.known_hosts())

    def run(self, *args: str) -> tuple[int, dict[str, object], str]:
        done = coditect(self.root, *args, "--json", env=self.env, timeout=300)
        data = json.loads(done.stdout) if done.stdout.strip() else {}
        return done.code, data, done.stderr

    def layout(self, name: str) -> RemoteLayout:
        sshd = self.kit.hosts[name]
        host = Host(name=name, ssh=f"{USER}@127.0.0.1", port=sshd.port, workdir=str(self.workdirs[name]))
        return RemoteLayout(host, PROJECT)

    def worktree(self, host: str, stream: str) -> Path:
        return Path(self.layout(host).worktree("phase-1", stream, "app"))

    def remote_panes(self, host: str, field: str = "pane_dead") -> dict[str, str]:
        """stream -> ``field`` of its pane, read straight from the host's tmux server (the same machine)."""
        done = subprocess.run(
            [
                "tmux",
                "-L",
                self.layout(host).socket,
                "list-panes",
                "-a",
                "-F",
                f"#{{@coditect_stream}} #{{{field}}}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())

    def close(self) -> None:
        for name in self.kit.hosts:
            kill_tmux_server(self.layout(name).socket)
        kill_tmux_server(self.socket)
        for master in (self.root / ".git" / "coditect" / "ssh").glob("cm-*"):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={master}", "-O", "exit", "x"], capture_output=True, check=False
            )


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[sshkit.SshKit]:
    started = sshkit.start_kit(tmp_path / "ssh")
    yield started
    started.close()


def streams_of(data: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = data["data"]["streams"]  # type: ignore[index]
    return {row["stream"]: row for row in rows}  # type: ignore[index]


def test_remote_streams_setup_launch_status_send_move_unreachable_stop(
    tmp_path: Path, isolated_git: Path, kit: sshkit.SshKit
) -> None:
    world = World(tmp_path / "w", kit, {"s1": "h1", "s2": "h1", "s3": "h2", "s4": None})
    try:
        code, data, err = world.run("streams", "setup")
        assert code == 0, err
        # Remote worktrees on their hosts, on their branch, with the guard; none here for remote streams.
        for host, stream in (("h1", "s1"), ("h1", "s2"), ("h2", "s3")):
            wt = world.worktree(host, stream)
            assert git_in(wt, "branch", "--show-current") == f"feature/phase-1/{stream}/t{stream[1]}"
            hooks = Path(git_in(wt, "config", "--worktree", "core.hooksPath"))
            assert (hooks / "coditect-guard.py").is_file()
            assert not (world.root / ".coditect" / "worktrees" / "phase-1" / stream).exists()
        assert (world.root / ".coditect" / "worktrees" / "phase-1" / "s4" / "app" / ".git").exists()
        assert not world.worktree("h2", "s1").exists()  # each host holds only its own streams
        # The guard works there: a commit outside s1's paths is refused in s1's remote worktree.
        wt1 = world.worktree("h1", "s1")
        (wt1 / "s2").mkdir(exist_ok=True)
        (wt1 / "s2" / "x.txt").write_text("not mine\n")
        git_in(wt1, "add", "s2/x.txt")
        bad = subprocess.run(
            [
                "git",
                "-C",
                str(wt1),
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@e.invalid",
                "commit",
                "-qm",
                "x",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode != 0 and "s2/x.txt" in bad.stderr + bad.stdout
        git_in(wt1, "reset", "-q", "--hard")

        code, data, err = world.run("doctor")
        hosts = {c["subject"]: c for c in data["data"]["checks"] if c["check"] == "host"}  # type: ignore[index]
        assert hosts["phase-1/host h1"]["status"] == "ok", hosts
        assert (
            "tmux" in hosts["phase-1/host h2"]["detail"] and "GiB free" in hosts["phase-1/host h2"]["detail"]
        )

        # Setup again: idempotent, nothing created on the hosts.
        code, data, err = world.run("streams", "setup")
        assert code == 0, err
        assert all(not h["done"] for h in data["data"]["hosts"])  # type: ignore[index]

        with Sampler(CANARY.encode()) as ps:
            code, data, err = world.run("streams", "launch", "--no-attach")
        assert code == 0, err
        assert world.remote_panes("h1") == {"s1": "0", "s2": "0"}
        assert world.remote_panes("h2") == {"s3": "0"}
        # Each pane has its stream's `env:` from a 0600 file on its host; no command line ever held it.
        assert ps.hits == {} and CANARY not in str(data)
        pid = world.remote_panes("h2", "pane_pid")["s3"]
        assert f"LANE_KEY={CANARY}-s3\0".encode() in Path(f"/proc/{pid}/environ").read_bytes()
        env_file = Path(world.layout("h2").env("phase-1", "s3"))
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert set(world.remote_panes("h2", "session_name").values()) == {data["data"]["session"]}  # type: ignore[index]

        code, data, err = world.run("streams", "status")
        assert code == 0, err
        rows = streams_of(data)
        assert {s: (r["state"], r["host"]) for s, r in rows.items()} == {
            "s1": ("running", "h1"),
            "s2": ("running", "h1"),
            "s3": ("running", "h2"),
            "s4": ("running", None),
        }
        assert rows["s1"]["cwd"] == str(wt1)

        # Typed into s3's pane on h2 (a shell pane gets it as a `#` comment): its log there shows it.
        code, data, err = world.run("streams", "send", "s3", "sent-over-ssh")
        assert code == 0, err
        log = Path(world.layout("h2").log("phase-1", "s3"))
        retry_until(
            lambda: log.is_file() and "sent-over-ssh" in log.read_text(errors="replace"), bool, timeout=30
        )
        assert "sent-over-ssh" not in Path(world.layout("h1").log("phase-1", "s1")).read_text(
            errors="replace"
        )

        # move: refused while s1 has an unpushed commit on h1; moved once it is pushed.
        (wt1 / "s1" / "w.txt").write_text("work\n")
        git_in(wt1, "add", "s1/w.txt")
        git_in(wt1, "-c", "user.name=T", "-c", "user.email=t@e.invalid", "commit", "-qm", "s1 work")
        code, data, err = world.run("streams", "move", "s1", "--to", "h2")
        assert code == 4, err
        assert "unpushed" in str(data) and "s1 work" in str(data)
        assert "host: h1" in (world.root / "workstreams" / "phase-1.yaml").read_text()
        git_in(wt1, "push", "-q", "origin", "HEAD")
        code, data, err = world.run("streams", "move", "s1", "--to", "h2")
        assert code == 0, err
        assert world.remote_panes("h1") == {"s2": "0"}
        code, data, err = world.run("streams", "launch", "--no-attach")
        assert code == 0, err
        moved = world.worktree("h2", "s1")
        assert (moved / "s1" / "w.txt").read_text() == "work\n"  # its branch on origin is the truth
        assert world.remote_panes("h2") == {"s1": "0", "s3": "0"}

        # h2 goes away: its streams are unreachable, never exited; h1's still run.
        kit.hosts["h2"].stop()
        code, data, err = world.run("streams", "status")
        assert code == 0, err
        rows = streams_of(data)
        assert {s: r["state"] for s, r in rows.items()} == {
            "s1": "unreachable",
            "s2": "running",
            "s3": "unreachable",
            "s4": "running",
        }
        assert "unreachable" in str(rows["s3"]["host_error"])
        code, data, err = world.run("doctor")
        hosts = {c["subject"]: c for c in data["data"]["checks"] if c["check"] == "host"}  # type: ignore[index]
        assert (
            hosts["phase-1/host h2"]["status"] == "fail"
            and "unreachable" in hosts["phase-1/host h2"]["detail"]
        )
        assert hosts["phase-1/host h1"]["status"] == "ok"
        code, data, err = world.run("streams", "send", "all", "true")
        assert code == 0, err
        assert set(data["data"]["skipped"]) == {"s1", "s3"}  # type: ignore[index]

        code, data, err = world.run("streams", "stop")
        assert code == 0, err
        hosts = data["data"]["hosts"]  # type: ignore[index]
        assert hosts["h1"] == "stopped" and "unreachable" in hosts["h2"]
        assert world.remote_panes("h1") == {}
    finally:
        world.close()


def test_changed_host_key_is_refused(tmp_path: Path, isolated_git: Path, kit: sshkit.SshKit) -> None:
    world = World(tmp_path / "w", kit, {"s1": "h1", "s2": "h2"})
    try:
        known = world.root / ".git" / "coditect" / "ssh" / "known_hosts"
        # h1's port recorded with h2's key: what a replaced (or impersonated) host looks like.
        wrong = f"[127.0.0.1]:{kit.hosts['h1'].port} " + kit.hosts["h2"].public_key.split(" ", 1)[1]
        known.write_text(wrong + "\n" + kit.hosts["h2"].public_key + "\n")
        code, data, err = world.run("streams", "setup")
        assert code == 5, err
        assert "h1" in str(data) and "CHANGED" in str(data)
        assert not world.worktree("h1", "s1").exists()
        assert world.worktree("h2", "s2").exists()  # the other host is set up
        assert known.read_text().startswith(wrong)  # never rewritten
    finally:
        world.close()


def test_unknown_host_is_a_manifest_error(tmp_path: Path, isolated_git: Path) -> None:
    kit = sshkit.SshKit(tmp_path, tmp_path / "ssh_config")
    root = build_project(tmp_path, manifest(kit, {}, {"s1": "nowhere"}), ["s1"])
    text = (root / "workstreams" / "phase-1.yaml").read_text()
    line = text.splitlines().index("    host: nowhere") + 1
    done = coditect(root, "validate")
    assert done.code == 2
    assert f"phase-1.yaml:{line}" in done.output and "unknown host 'nowhere'" in done.output


def test_remote_agents_report_through_their_events_file_one_ssh_call_per_host(
    tmp_path: Path, isolated_git: Path, kit: sshkit.SshKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agents' own signals (hook events written on the host) come back over the host's connection: a
    scripted agent that reports its turns is idle since its last `Stop`, and a message it got moves that
    on. `streams status` reads each host's panes, screens and events files in one SSH call."""
    world = World(tmp_path / "w", kit, {"s1": "h1", "s2": "h1", "s3": "h2"})
    try:
        code, _data, err = world.run(
            "streams", "launch", "--no-attach", "--agent", scripted_agent_template("--serve")
        )
        assert code == 0, err

        def agents() -> dict[str, dict[str, object]]:
            code, data, err = world.run("streams", "status")
            assert code == 0, err
            return {s: row["agent"] for s, row in streams_of(data).items()}  # type: ignore[misc]

        def idle(rows: dict[str, dict[str, object]]) -> bool:
            return all(a and a["state"] == "idle" and a["since"] for a in rows.values())

        first = retry_until(agents, idle, timeout=60)
        events = Path(world.layout("h2").events("phase-1", "s3"))
        assert '"event":"Stop"' in events.read_text()  # written on the host, by the agent's report
        assert not agent_file(world.root / ".git", "phase-1", "s3").exists()  # nothing of it here

        code, data, err = world.run("streams", "send", "s3", "your next task is [T9] write the notes")
        assert code == 0, err
        # Confirmed by the agent's own report on the host (its UserPromptSubmit), read over the connection.
        [delivery] = data["data"]["deliveries"]  # type: ignore[index]
        assert (delivery["status"], delivery["detail"]) == ("delivered", ""), delivery
        assert not agent_file(world.root / ".git", "phase-1", "s3").exists()
        after = retry_until(
            agents, lambda r: idle(r) and r["s3"]["since"] != first["s3"]["since"], timeout=60
        )
        assert after["s1"]["since"] == first["s1"]["since"]  # only s3 had a turn

        # In process: one SSH call per host per status, over the warm connections.
        from coditect_cli.services import hosts
        from coditect_cli.services.streams import status

        monkeypatch.setenv("CODITECT_SSH_CONFIG", str(kit.config))
        monkeypatch.setenv("CODITECT_TMUX_SOCKET", world.socket)
        status(Project(world.root), None)
        before = {name: h.calls for (_, name), h in hosts._connections.items()}
        result = status(Project(world.root), None)
        calls = {name: h.calls - before[name] for (_, name), h in hosts._connections.items()}
        assert calls == {"h1": 1, "h2": 1}
        assert {s.stream: s.agent.state for s in result.streams if s.agent} == dict.fromkeys(
            ("s1", "s2", "s3"), "idle"
        )
        # What the autopilot sees (and dispatches under each host's max_working): the remote agents too.
        from coditect_cli.services.agents import agent_states

        seen = agent_states(Project(world.root), None)
        assert {s: a.state for s, a in seen.items()} == dict.fromkeys(("s1", "s2", "s3"), "idle")
    finally:
        world.close()


def test_remote_restart_and_stop_removing_worktrees_refuses_work_not_on_origin(
    tmp_path: Path, isolated_git: Path, kit: sshkit.SshKit
) -> None:
    world = World(tmp_path / "w", kit, {"s1": "h1", "s2": "h2"})
    try:
        code, _data, err = world.run("streams", "launch", "--no-attach")
        assert code == 0, err
        events = Path(world.layout("h1").events("phase-1", "s1"))
        assert events.read_text().count('"event":"Launch"') == 1
        pane = world.remote_panes("h1")

        # restart: a running agent is refused (exit 4, nothing changed); --force starts it again, same pane.
        code, data, err = world.run("streams", "restart", "s1")
        assert code == 4, err
        assert "still running on host h1" in str(data)
        assert events.read_text().count('"event":"Launch"') == 1
        code, data, err = world.run("streams", "restart", "s1", "--force")
        assert code == 0, err
        assert data["data"]["kind"] == "shell" and "host h1" in data["data"]["note"]  # type: ignore[index]
        assert events.read_text().count('"event":"Launch"') == 2
        assert world.remote_panes("h1") == pane == {"s1": "0"}

        # stop --remove-worktrees: refused while a remote worktree has uncommitted or unpushed work.
        wt1, wt2 = world.worktree("h1", "s1"), world.worktree("h2", "s2")
        (wt1 / "s1" / "draft.txt").write_text("draft\n")
        (wt2 / "s2" / "w.txt").write_text("work\n")
        git_in(wt2, "add", "s2/w.txt")
        git_in(wt2, "-c", "user.name=T", "-c", "user.email=t@e.invalid", "commit", "-qm", "s2 unpushed work")
        code, data, err = world.run("streams", "stop", "--remove-worktrees")
        assert code == 4, err
        text = str(data)
        assert "host h1: s1 app uncommitted: ?? s1/draft.txt" in text
        assert "host h2: s2 app unpushed:" in text and "s2 unpushed work" in text
        assert wt1.is_dir() and wt2.is_dir()
        assert world.remote_panes("h1") == {"s1": "0"} and world.remote_panes("h2") == {"s2": "0"}

        # A host that cannot be read: its work is unknown, so nothing is removed anywhere.
        (wt1 / "s1" / "draft.txt").unlink()
        git_in(wt2, "push", "-q", "origin", "HEAD")
        kit.hosts["h2"].stop()
        code, data, err = world.run("streams", "stop", "--remove-worktrees")
        assert code == 4, err
        assert "cannot read the worktrees on host h2" in str(data)
        assert wt1.is_dir() and world.remote_panes("h1") == {"s1": "0"}
        kit.hosts["h2"].start()

        code, data, err = world.run("streams", "stop", "--remove-worktrees", "--dry-run")
        assert code == 0, err
        assert data["data"]["removed_remote_worktrees"] == {"h1": [str(wt1)], "h2": [str(wt2)]}  # type: ignore[index]
        assert wt1.is_dir()
        code, data, err = world.run("streams", "stop", "--remove-worktrees")
        assert code == 0, err
        assert data["data"]["removed_remote_worktrees"] == {"h1": [str(wt1)], "h2": [str(wt2)]}  # type: ignore[index]
        assert not wt1.exists() and not wt2.exists()
        assert world.remote_panes("h1") == {} and world.remote_panes("h2") == {}
        clone = Path(world.layout("h1").clone("app"))
        assert str(wt1) not in git_in(clone, "worktree", "list")
    finally:
        world.close()
