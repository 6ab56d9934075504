"""When a PR is ready, end to end on a tiny project (a bare origin, stream worktrees, the local forge): every
changed path is judged (a guard-bypassing commit of an unowned file is left out of the checkpoint, naming the
path and who must approve), an approval counts for the head it reviewed, and checks count for the exact
commit whose committed tree they tested (``sync evening --run-gates`` on a dirty worktree, ``pr merge``
running the gates on a head without checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gating_helpers import GATE_PY, MakeTiny, Tiny, git
from helpers import coditect

from coditect_cli.project import Project
from coditect_cli.services import prs, reviews
from coditect_cli.services.checkpoint import run_checkpoint

PHASE = "phase-1"
INTEGRATION = "phase-1-integration"
NEUTERED = "import sys\nsys.exit(0)\n"


def bypass_commit(tiny: Tiny, k: int, files: dict[str, str], message: str, hooks: Path) -> str:
    """Stream k writes ``files`` and commits and pushes them around every hook (``--no-verify`` and an empty
    hooks directory: whatever guard is installed, none runs)."""
    worktree = tiny.worktree(k)
    hooks.mkdir(exist_ok=True)
    for rel, text in files.items():
        (worktree / rel).write_text(text, encoding="utf-8")
    no_hooks = f"core.hooksPath={hooks}"
    git(worktree, "-c", no_hooks, "add", "--", *files)
    git(worktree, "-c", no_hooks, "commit", "-q", "--no-verify", "-m", message)
    git(worktree, "-c", no_hooks, "push", "-q", "--no-verify", "origin", "HEAD")
    return git(worktree, "rev-parse", "HEAD")


def push(tiny: Tiny, k: int) -> str:
    git(tiny.worktree(k), "push", "-q", "origin", "HEAD")
    return git(tiny.worktree(k), "rev-parse", "HEAD")


def status(tiny: Tiny, stream: str) -> dict[str, Any]:
    ran = coditect(tiny.root, "pr", "status", stream, "--json")
    assert ran.code == 0, ran.output
    (row,) = ran.json()["data"]["prs"]
    return dict(row)


def needs(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["owner"]: n for n in row["needs"]}


def test_a_guard_bypass_neutering_the_gate_is_left_out_naming_the_path_and_its_approver(
    make_tiny: MakeTiny, socket_name: str, tmp_path: Path
) -> None:
    tiny, _ = make_tiny(2)
    project = Project(tiny.root)
    start = git(tiny.origin, "rev-parse", INTEGRATION)
    # Stream 1 neuters the gate every stream's checks run (gate.py: no stream owns it) and, with it gone,
    # slips in a change the gate would fail; committed with --no-verify, pushed, approved by its own owner.
    head = bypass_commit(
        tiny,
        1,
        {"gate.py": NEUTERED, "s1/work.txt": "FAIL_GATE\n"},
        "chore: faster checks",
        tmp_path / "no-hooks",
    )
    reviews.review(project, PHASE, "s1", owner="@agent1", state="approved")

    row = status(tiny, "s1")
    assert row["pr"]["head_sha"] == head and row["unowned"] == ["gate.py"]
    own, lead = needs(row)["@agent1"], needs(row)["maintainer"]
    assert own["state"] == "approved" and own["reviewed_head"] == head
    assert (lead["paths"], lead["any_of"], lead["state"]) == (["gate.py"], [], "pending")
    assert row["approved"] is False and row["ready"] is False
    human = coditect(tiny.root, "pr", "status", "s1")
    assert "not ready: gate.py (owned by no stream) need approval by a maintainer" in " ".join(
        human.stdout.split()
    )

    refused = coditect(tiny.root, "pr", "merge", "s1", "--json")
    assert refused.code == 3, refused.output
    (outcome,) = refused.json()["data"]["merges"]
    assert outcome["refused"].startswith("gate.py (owned by no stream) need approval by a maintainer")

    result = run_checkpoint(project, PHASE, 1, socket=socket_name)
    assert result.status == "passed" and [m["stream"] for m in result.merged] == ["s2"]
    (left,) = result.not_ready
    assert (left["stream"], left["number"]) == ("s1", 1)
    assert "gate.py (owned by no stream) need approval by a maintainer" in left["reason"]
    # The integration branch moved (s2) but still runs the real gate, and nothing of s1's is on it.
    tip = git(tiny.origin, "rev-parse", INTEGRATION)
    assert tip != start
    assert git(tiny.origin, "show", f"{tip}:gate.py") + "\n" == GATE_PY
    assert "s1/work.txt" not in git(tiny.origin, "ls-tree", "-r", "--name-only", tip)
    report = Path(str(result.report)).read_text(encoding="utf-8")
    assert "gate.py (owned by no stream)" in report


def test_a_maintainer_named_in_the_manifest_is_who_approves_unowned_paths(
    make_tiny: MakeTiny, tmp_path: Path
) -> None:
    tiny, _ = make_tiny(2)
    manifest = tiny.root / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("forge: local\n", 'forge: local\nmaintainers: ["@lead", "@org/ci"]\n'))
    bypass_commit(tiny, 1, {"gate.py": NEUTERED}, "chore: faster checks", tmp_path / "no-hooks")
    reviews.review(Project(tiny.root), PHASE, "s1", owner="@agent1", state="approved")

    dry = coditect(tiny.root, "pr", "merge", "s1", "--dry-run", "--json")
    (outcome,) = dry.json()["data"]["merges"]
    assert (
        outcome["refused"] == "gate.py (owned by no stream) need approval by a maintainer (@lead or @org/ci)"
    )
    # The stream's owner cannot stand in for a maintainer; a maintainer reviews like a code owner.
    assert needs(status(tiny, "s1"))["maintainer"]["state"] == "pending"
    approved = coditect(tiny.root, "pr", "approve", "s1", "--as", "@org/ci")
    assert approved.code == 0, approved.output
    row = status(tiny, "s1")
    assert (
        needs(row)["maintainer"]["state"] == "approved"
        and needs(row)["maintainer"]["approved_by"] == "@org/ci"
    )
    assert row["approved"] is True


def test_an_approval_goes_stale_only_when_a_push_changes_what_its_owner_owns_or_shares(
    make_tiny: MakeTiny,
) -> None:
    tiny, _ = make_tiny(2, shared=True)
    project = Project(tiny.root)
    # s1's PR changes only s1/work.txt; shared.txt's second owner (@agent2) approves it anyway.
    first = git(tiny.worktree(1), "rev-parse", "HEAD")
    reviews.review(project, PHASE, "s1", owner="@agent2", state="approved")

    # A push touching the shared file: @agent2 now must approve, and their approval was of an older head.
    tiny.commit(1, "shared.txt", "api: v2\n", "feat: contract v2")
    second = push(tiny, 1)
    row = status(tiny, "s1")
    assert row["pr"]["head_sha"] == second and row["ready"] is False
    other = needs(row)["@agent2"]
    assert (other["state"], other["stale_paths"], other["reviewed_head"]) == ("stale", ["shared.txt"], first)
    assert needs(row)["@agent1"]["state"] == "stale"  # shared.txt is stream 1's too
    assert {s["owner"]: s["paths"] for s in row["stale"]} == {
        "@agent1": ["shared.txt"],
        "@agent2": ["shared.txt"],
    }
    human = " ".join(coditect(tiny.root, "pr", "status", "s1").stdout.split())
    assert f"commits pushed since @agent2 approved {first[:12]} change shared.txt" in human
    refused = coditect(tiny.root, "pr", "merge", "s1", "--json")
    assert refused.code == 3
    assert "approval by @agent2 went stale" in refused.json()["data"]["merges"][0]["refused"]
    for owner in ("@agent1", "@agent2"):
        reviews.review(project, PHASE, "s1", owner=owner, state="approved")
    assert status(tiny, "s1")["approved"] is True

    # A push touching only stream 1's own file: @agent2's approval of the shared file still stands.
    tiny.commit(1, "s1/work.txt", "more\n", "feat: more")
    third = push(tiny, 1)
    row = status(tiny, "s1")
    assert row["pr"]["head_sha"] == third
    assert (needs(row)["@agent2"]["state"], needs(row)["@agent2"]["reviewed_head"]) == ("approved", second)
    assert (needs(row)["@agent1"]["state"], needs(row)["@agent1"]["stale_paths"]) == (
        "stale",
        ["s1/work.txt"],
    )
    reviews.review(project, PHASE, "s1", owner="@agent1", state="approved")

    # Approved, no check ran on the head: pr merge runs the stream's gate on exactly that head first.
    assert status(tiny, "s1")["checks"] == {"state": "none", "results": []}
    tiny.counter.unlink(missing_ok=True)
    merged = coditect(tiny.root, "pr", "merge", "s1", "--json")
    assert merged.code == 0, merged.output
    (outcome,) = merged.json()["data"]["merges"]
    assert outcome["gates_run"] == ["gate"] and outcome["merged"] is not None
    assert [line.split()[0] for line in tiny.gate_runs()] == [third]
    tip = git(tiny.origin, "rev-parse", INTEGRATION)
    assert git(tiny.origin, "show", f"{tip}:shared.txt").endswith("api: v2")


def test_gates_run_on_the_committed_tree_and_pr_merge_needs_them_passed_on_the_head(
    make_tiny: MakeTiny,
) -> None:
    tiny, _ = make_tiny(2)
    start = git(tiny.origin, "rev-parse", INTEGRATION)
    # Stream 1 commits a failing change and pushes it, then fixes it without committing.
    broken = tiny.commit(1, "s1/work.txt", "FAIL_GATE\n", "feat: breaks the gate")
    push(tiny, 1)
    (tiny.worktree(1) / "s1" / "work.txt").write_text("fixed, not committed\n", encoding="utf-8")
    reviews.review(Project(tiny.root), PHASE, "s1", owner="@agent1", state="approved")

    evening = coditect(tiny.root, "sync", "evening", "--day", "2", "--run-gates", "--json")
    assert evening.code == 0, evening.output
    data = evening.json()["data"]
    (gate,) = next(s for s in data["streams"] if s["stream"] == "s1")["gates"]
    assert (gate["commit"], gate["dirty"], gate["passed"]) == (broken, True, False)
    assert any("uncommitted changes" in n and broken[:12] in n for n in data["notes"])
    # The worktree was not touched (the gate ran in a temporary one), and no gate worktree is left.
    assert git(tiny.worktree(1), "status", "--porcelain") == "M s1/work.txt"
    assert "coditect-gate" not in git(tiny.root, "worktree", "list")
    row = status(tiny, "s1")
    assert row["pr"]["head_sha"] == broken and row["checks"]["state"] == "failure"
    refused = coditect(tiny.root, "pr", "merge", "s1", "--json")
    assert refused.code == 3 and refused.json()["data"]["merges"][0]["refused"] == "failing check(s): gate"

    # Stream 2's head has no check; pr merge runs its gate there, and the failure keeps it out.
    bad = tiny.commit(2, "s2/work.txt", "FAIL_GATE\n", "feat: breaks it too")
    push(tiny, 2)
    reviews.review(Project(tiny.root), PHASE, "s2", owner="@agent2", state="approved")
    dry = coditect(tiny.root, "pr", "merge", "s2", "--dry-run", "--json")
    assert dry.json()["data"]["merges"][0]["gates_run"] == ["gate"]
    tiny.counter.unlink(missing_ok=True)
    refused = coditect(tiny.root, "pr", "merge", "s2", "--json")
    assert refused.code == 3, refused.output
    (outcome,) = refused.json()["data"]["merges"]
    assert outcome["refused"] == f"gate(s) gate failed on its head {bad[:12]}"
    assert [line.split()[0] for line in tiny.gate_runs()] == [bad]
    assert git(tiny.origin, "rev-parse", INTEGRATION) == start
    (view,) = prs.pr_status(Project(tiny.root), PHASE, "s2").rows
    assert [(c.name, c.status) for c in view.checks] == [("gate", "failure")]


def test_pr_merge_refuses_a_pr_with_no_checks_when_its_stream_has_no_gates(make_tiny: MakeTiny) -> None:
    tiny, _ = make_tiny(2)
    manifest = tiny.root / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace('    gates: [{name: gate, run: "python3 gate.py"}]\n', "", 1))
    refused = coditect(tiny.root, "pr", "merge", "s1", "--json")
    assert refused.code == 3, refused.output
    (outcome,) = refused.json()["data"]["merges"]
    assert outcome["refused"].startswith("no check ran on its head")
    assert "stream s1 has no gates in repository app" in outcome["refused"]
