"""A checkpoint's gate commands on real repositories: the command a batch failed on runs first in every split,
a probe stops at its first failing command, and a gate marked ``flaky`` gets the whole batch run once more
before bisecting. gate.py logs each command it runs (``<commit> <argument>``), so the log proves which ran."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Tiny
from helpers import coditect
from test_domain import run_search

from coditect_cli.project import Project
from coditect_cli.services import prs, reviews
from coditect_cli.services.checkpoint import CheckpointResult, run_checkpoint

ALL = ["lint", "unit", "gate"]  # the checkpoint's two gates, then the streams' shared one


def with_changes(make_tiny: MakeTiny, n: int, changes: dict[int, str], gates: str) -> Tiny:
    """A tiny project of ``n`` streams whose PR ``k`` also adds ``changes[k]`` (a gate.py switch), all approved,
    checkpoint 1 with ``gates``."""
    tiny, _snapshot = make_tiny(n, open_prs=False)
    for k, text in changes.items():
        tiny.commit(k, f"s{k}/switch.txt", text + "\n", "feat: a switch of gate.py")
    project = Project(tiny.root)
    prs.open_all(project, "phase-1")
    for k in range(1, n + 1):
        reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{k}", state="approved")
    tiny.set_checkpoint_gates(gates)
    return tiny


def run(tiny: Tiny, socket_name: str) -> CheckpointResult:
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name)
    assert result.gate_commands == len(tiny.gate_runs())  # counted by the gates themselves
    return result


LINT_UNIT = '[{name: lint, run: "python3 gate.py lint"}, {name: unit, run: "python3 gate.py unit"}]'


def test_a_split_runs_the_command_that_failed_first_and_stops_at_the_first_failure(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str
) -> None:
    tiny = with_changes(make_tiny, 8, {3: "FAIL_ON unit"}, LINT_UNIT)
    result = run(tiny, socket_name)

    assert result.status == "passed" and [x["number"] for x in result.left_out] == [3]
    assert "the gates fail with it (unit)" in result.left_out[0]["reason"]
    runs = tiny.command_runs()
    assert len(runs) == result.gate_runs == run_search([f"p{k}" for k in range(8)], {"p2"})[1]
    # The whole batch: lint passes, unit fails, and the streams' gate is not run for a rejected batch.
    assert runs[0] == ["lint", "unit"]
    # Every split: unit first; a red one stops there, a green one runs the rest.
    assert runs[1:] and all(r in (["unit"], ["unit", "lint", "gate"]) for r in runs[1:]), runs
    assert runs[-1] == ["unit", "lint", "gate"]  # the commit merged passed every command
    red = sum(r == ["unit"] for r in runs[1:])
    assert red >= 1 and result.gate_commands == 2 + red + 3 * (len(runs) - 1 - red)
    lines = tiny.gate_runs()
    assert len(lines) == len(set(lines))  # no command ran twice on a commit: nothing is flaky here


def test_the_latest_failing_command_runs_first(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str
) -> None:
    tiny = with_changes(make_tiny, 6, {2: "FAIL_ON lint", 5: "FAIL_ON unit"}, LINT_UNIT)
    result = run(tiny, socket_name)

    assert result.status == "passed" and sorted(x["number"] for x in result.left_out) == [2, 5]
    runs = tiny.command_runs()
    assert runs[0] == ["lint"]  # the batch fails on lint: nothing else runs
    latest = ["lint"]  # the commands seen failing, latest first
    for names in runs[1:]:
        expected = latest + [c for c in ALL if c not in latest]
        assert names == expected[: len(names)], (names, latest)  # that order, stopped at a failure
        if len(names) < len(ALL):  # it stopped: its last command failed
            latest = [names[-1]] + [c for c in latest if c != names[-1]]
    assert latest[0] in ("lint", "unit") and set(latest) == {"lint", "unit"}  # both were seen failing
    tested = result.repos["app"]["tested"]  # the commit merged passed every command
    assert sorted(
        (line.split()[1:] or ["gate"])[0] for line in tiny.gate_runs() if line.startswith(tested)
    ) == sorted(ALL)
    assert len(tiny.gate_runs()) == len(set(tiny.gate_runs()))


FLAKY = '[{name: net, run: "python3 gate.py flaky", flaky: true}]'


def test_a_flaky_gate_that_fails_once_runs_the_batch_again_and_merges_it_with_a_flake(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATE_FLAKY", str(tmp_path / "flaky-failed"))  # the first run of the flaky gate fails
    tiny = with_changes(make_tiny, 4, {}, FLAKY)
    done = coditect(tiny.root, "checkpoint", "1", "--json", "--socket", socket_name)

    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["status"] == "passed" and data["left_out"] == []
    assert [m["number"] for m in data["merged"]] == [1, 2, 3, 4]
    # The batch ran twice (the retry from the flaky gate on), then nothing more: no bisection.
    assert tiny.command_runs() == [["flaky", "flaky", "gate"]]
    assert (data["gate_runs"], data["gate_commands"]) == (2, 3)
    (flake,) = data["flakes"]
    tested = data["repos"]["app"]["tested"]
    assert (flake["repo"], flake["gate"], flake["commit"], flake["prs"]) == (
        "app",
        "net",
        tested,
        [1, 2, 3, 4],
    )
    first, again = (Path(log).read_text(encoding="utf-8") for log in flake["logs"])
    assert "a flaky failure" in first and "# exit 1" in first and "# exit 0" in again
    assert [r.get("retry", False) for r in data["rounds"]] == [False, True]
    report = Path(data["report"]).read_text(encoding="utf-8")
    assert "**Result: PASSED**" in report and "## Flakes" in report and "net on" in report


def test_a_flaky_gate_that_keeps_failing_is_retried_once_then_bisected(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str
) -> None:
    tiny = with_changes(make_tiny, 4, {2: "FAIL_ON flaky"}, FLAKY)
    result = run(tiny, socket_name)

    assert result.status == "passed" and [x["number"] for x in result.left_out] == [2]
    assert result.flakes == []
    runs = tiny.command_runs()
    assert runs[0] == ["flaky", "flaky"]  # the batch, then once more: red again
    assert all(r[0] == "flaky" and r.count("flaky") == 1 for r in runs[1:])  # splits: not retried
    # One run more than the bisection alone.
    assert result.gate_runs == len(runs) + 1 == run_search([f"p{k}" for k in range(4)], {"p1"})[1] + 1


def test_a_gate_not_marked_flaky_is_never_retried(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATE_FLAKY", str(tmp_path / "flaky-failed"))
    tiny = with_changes(make_tiny, 4, {}, '[{name: net, run: "python3 gate.py flaky"}]')  # fails once
    result = run(tiny, socket_name)

    lines = tiny.gate_runs()
    assert Counter(lines).most_common(1)[0][1] == 1  # no command ran twice on one commit
    assert tiny.command_runs()[0] == ["flaky"] and result.flakes == []
    # Taken for a real failure, it is bisected: the cost of a flaky gate left unmarked is a PR left out.
    assert len(result.left_out) == 1 and result.gate_runs > 1
