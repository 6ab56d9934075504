"""A stream's gates on one commit: run on that commit's committed tree and recorded as checks on it.

What ``sync evening --run-gates`` and ``pr merge`` use. A check counts only for the exact commit whose tree
it tested, so gates never run in a stream's own worktree (its uncommitted changes would be tested and the
result recorded on HEAD): each repository gets one temporary, detached worktree at the commit
(:class:`coditect_cli.services.staging.GateRunner`, the checkpoints' runner), removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coditect_cli.domain.gating import GateSpec
from coditect_cli.forge.base import Check
from coditect_cli.services.prs import Session
from coditect_cli.services.staging import GateRunner


@dataclass(frozen=True)
class GateRun:
    """One gate command run on ``commit`` of ``repo``: passed or not, its exit code and log."""

    repo: str
    commit: str
    names: tuple[str, ...]
    passed: bool
    exit_code: int
    log: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "repo": self.repo,
            "commit": self.commit,
            "names": list(self.names),
            "passed": self.passed,
            "exit_code": self.exit_code,
            "log": self.log,
            "seconds": self.seconds,
        }


@contextmanager
def gate_runner(s: Session, owner: str, logs: Path) -> Iterator[GateRunner]:
    """A runner whose temporary worktrees are named after ``owner`` (not a phase name: a checkpoint of the
    phase removes its own leftovers, never these) and removed at the end."""
    paths = {r.id: s.forges.repo(r.id).path for r in s.manifest.repositories}
    runner = GateRunner(paths, owner, logs, {"CODITECT_PHASE": s.manifest.phase}, s.manifest.pass_env)
    try:
        yield runner
    finally:
        runner.close()


def run_on_commit(
    s: Session, runner: GateRunner, repo: str, commit: str, specs: Sequence[GateSpec], tag: str
) -> list[GateRun]:
    """Run each of ``specs`` on ``commit``'s tree and record each gate name's result as a check on it."""
    forge, fr = s.forges.forge(repo), s.forges.repo(repo)
    out: list[GateRun] = []
    for spec in specs:
        passed, ran = runner.run(repo, commit, [spec], tag)
        (row,) = ran
        for name in spec.names:
            forge.record_check(fr, commit, name, "success" if passed else "failure", str(row["log"]))
        out.append(
            GateRun(
                repo, commit, spec.names, passed, int(row["exit"]), str(row["log"]), float(row["seconds"])
            )
        )
    return out


def unsettled(specs: Sequence[GateSpec], checks: Sequence[Check]) -> list[GateSpec]:
    """The specs with a gate name that has no result (or only a pending one) among ``checks``."""
    done = {c.name for c in checks if c.status in ("success", "failure")}
    return [spec for spec in specs if any(name not in done for name in spec.names)]
