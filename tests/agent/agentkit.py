"""A small project for the built-in agent's tests: one repository, streams s1 (``run: anthropic``) and s2,
set up with worktrees and guard hooks. Imported as ``agentkit`` (tests/agent is on sys.path)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

MANIFEST = """\
version: 1
phase: phase-1
title: Agent
forge: local
schedule: {{start: 2026-12-01, days: 10}}
repositories:
  - {{id: app, path: .}}
{prices}streams:
  - id: s1
    terminal: 1
    name: Stream one
    agent: agent1
    run: anthropic
    anthropic:
{options}
    work: [{{repo: app, topic: t1, owns: [s1/]}}]
    gates: [{{name: check, run: "python3 check.py"}}]
    deliverables: [{{id: T1, days: 1-2, title: Write the hello module}}]
    prompt: Build the hello module.
  - id: s2
    terminal: 2
    name: Stream two
    agent: agent2
    run: shell
    work: [{{repo: app, topic: t2, owns: [s2/]}}]
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@dataclass
class Project:
    """The project root and the worktree of stream s1."""

    root: Path

    @property
    def s1(self) -> Path:
        return self.root / ".coditect" / "worktrees" / "phase-1" / "s1" / "app"

    @property
    def common(self) -> Path:
        return self.root / ".git"


def build(base: Path, *, options: str = "", prices: str = "") -> Project:
    """The project under ``base`` (``options``: YAML lines under ``anthropic:``), set up."""
    from coditect_cli.project import Project as CodProject
    from coditect_cli.services.setup import setup

    root = base / "proj"
    git(base, "init", "-q", "-b", "main", str(root))
    for key, value in (("user.name", "Agent"), ("user.email", "agent@example.invalid")):
        git(root, "config", key, value)
    opts = (
        options or '      model: claude-sonnet-4-5\n      max_turns: 12\n      commands: ["git log *", env]'
    )
    files = {
        ".gitignore": ".coditect/\n",
        "README.md": "# agent test\n",
        "check.py": "print('check ok')\n",
        "workstreams/phase-1.yaml": MANIFEST.format(options=opts, prices=prices),
        "s1/README.md": "stream one\n",
        "s2/README.md": "stream two\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "branch", "develop")
    setup(CodProject(root), "phase-1", push=False)
    return Project(root)
