"""Every blocker kind of the morning sync, planted on real sandbox repositories and read back.

One phase-1 sandbox (bare origins, a superproject with three submodules, ``streams setup`` done, PRs on
the local forge) carries one planted problem per stream, so each stream's blockers name exactly its own:

- infra: a failing check recorded on its PR head (``services.reviews.record_check``);
- backend: its day-3 task ``backend-orgs`` waits for ``infra-runtime`` (not done), and a code owner
  requested changes on its PR;
- frontend: declared blocked with ``coditect block ... --on backend``;
- deploy: edits backend's README.md (owned by docs) with every hook off — an ownership violation — on the
  same line docs edits there — a predicted conflict between two feature branches;
- docs: its root branch is one commit behind the integration branch, whose new commit edits the line docs
  edits — a predicted conflict with integration.

The dead agent pane is in test_day_panes.py (it needs a tmux server).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from daykit import (
    PHASE1,
    PHASE1_INTEGRATION,
    STREAM_ORDER,
    blockers_of,
    build,
    by_stream,
    cli,
    cli_json,
    commit,
    kinds,
    md_section,
    plant_on_integration,
    show,
)
from helpers import git_in, repo_dir, run_cli, stream_worktree

from coditect_cli.project import Project
from coditect_cli.services import prs, reviews, tasks

BLOCK_REASON = "waiting for the orgs API contract"


class Planted:
    """The planted sandbox and its day-3 morning sync (JSON data and Markdown)."""

    def __init__(self, root: Path, data: dict[str, Any], markdown: str, pr_numbers: dict[str, int]):
        self.root = root
        self.data = data
        self.markdown = markdown
        self.pr = pr_numbers  # "stream@repo" -> PR number
        self.sections = by_stream(data)

    def actions(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.data["actions"] if kind is None or a["kind"] == kind]


def _retitle(root: Path, repo: str, title: str) -> str:
    """README.md of ``repo``'s integration branch with its first line replaced by ``title``."""
    rest = show(root, repo, PHASE1_INTEGRATION, "README.md").split("\n", 1)[1]
    return f"{title}\n{rest}"


@pytest.fixture(scope="module")
def planted(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = build(tmp_path_factory.mktemp("blockers"))
    project = Project(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        # Day 3's first tasks are done everywhere except infra-runtime, which backend-orgs waits for.
        for stream, task in [
            ("infra", "infra-network"),
            ("backend", "backend-auth"),
            ("frontend", "frontend-setup"),
            ("deploy", "deploy-docker"),
        ]:
            tasks.set_task(project, PHASE1, stream, task, "done")
        commit(
            root,
            "infra",
            "infra",
            "opentofu/modules/networking/main.tf",
            '\nresource "google_redis_instance" "cache" {}\n',
            "feat(infra): redis",
        )
        commit(
            root,
            "backend",
            "backend",
            "src/api/v1/orgs.py",
            "\n\ndef orgs() -> list[str]:\n    return []\n",
            "feat(backend): organizations",
        )
        commit(
            root,
            "docs",
            "root",
            "README.md",
            _retitle(root, "root", "# Rollout (docs)"),
            "docs: retitle",
            replace=True,
        )
        plant_on_integration(
            root, "root", "README.md", _retitle(root, "root", "# Rollout (integration)"), "chore: retitle"
        )
        commit(
            root,
            "docs",
            "backend",
            "README.md",
            _retitle(root, "backend", "# Backend (docs)"),
            "docs(backend): retitle",
            replace=True,
        )
        commit(
            root,
            "deploy",
            "backend",
            "README.md",
            _retitle(root, "backend", "# Backend (deploy)"),
            "chore(deploy): retitle the backend",
            replace=True,
            verify=False,  # the guard would refuse: README.md belongs to docs
        )
        opened = prs.open_all(project, PHASE1)
        numbers = {f"{o.stream}@{o.repo}": o.pr.number for o in opened if o.pr is not None}
        infra_head = git_in(stream_worktree(root, "infra", "infra"), "rev-parse", "HEAD")
        reviews.record_check(project, PHASE1, "infra", infra_head, "tfsec", "failure", "/tmp/tfsec.log")
        reviews.review(
            project, PHASE1, "backend", owner="@codi-code-architect", state="changes_requested", body="naming"
        )
    declared = run_cli(["block", "frontend", BLOCK_REASON, "--on", "backend"], cwd=root)
    assert declared.code == 0, declared.output
    synced = run_cli(["sync", "morning", "--day", "3", "--json"], cwd=root)
    assert synced.code == 0, synced.output
    data = json.loads(synced.stdout)["data"]
    markdown = (root / "workstreams/reports/phase-1/day-03-morning.md").read_text(encoding="utf-8")
    return Planted(root, data, markdown, numbers)


def test_each_stream_reports_exactly_its_planted_blockers(planted: Planted) -> None:
    assert [s["stream"] for s in planted.data["streams"]] == STREAM_ORDER
    assert {sid: kinds(s) for sid, s in planted.sections.items()} == {
        "infra": ["checks"],
        "backend": ["dependency", "changes-requested"],
        "frontend": ["declared"],
        "deploy": ["conflict", "ownership"],
        "docs": ["behind", "conflict", "conflict"],
    }


def test_declared_blocker_names_the_stream_that_can_unblock_it(planted: Planted) -> None:
    (blocker,) = blockers_of(planted.sections["frontend"], "declared")
    assert blocker["on"] == "backend" and BLOCK_REASON in blocker["message"]
    (action,) = planted.actions("unblock")
    assert action["streams"] == ["backend", "frontend"]
    assert action["text"].startswith("Backend unblocks Frontend: ") and BLOCK_REASON in action["text"]
    section = md_section(planted.markdown, "## Frontend (codi-frontend-specialist)")
    assert f"🚧 Blockers: {BLOCK_REASON}" in section
    assert f"Backend unblocks Frontend: {BLOCK_REASON}" in planted.markdown


def test_a_task_waiting_for_another_streams_task_is_a_dependency_blocker(planted: Planted) -> None:
    backend = planted.sections["backend"]
    (today,) = backend["today"]
    assert (today["id"], today["state"], today["waiting_for"]) == (
        "backend-orgs",
        "blocked",
        ["infra-runtime"],
    )
    (blocker,) = blockers_of(backend, "dependency")
    assert blocker["on"] == "infra"
    assert blocker["detail"] == {"task": "backend-orgs", "waiting_for": ["infra-runtime"]}
    assert blocker["message"] == "backend-orgs waits for infra-runtime (infra)"
    handoffs = [a for a in planted.actions("handoff") if a["streams"] == ["infra", "backend"]]
    assert [a["text"] for a in handoffs] == [
        "Infrastructure provides “Cloud Run services, Redis, IAM” (infra-runtime) to Backend "
        "(needed for backend-orgs)"
    ]
    section = md_section(planted.markdown, "## Backend (codi-code-architect)")
    assert "🎯 Today: Organization service (CRUD, multi-tenant) [blocked]" in section
    assert "backend-orgs waits for infra-runtime (infra)" in section
    # infra's own task of the day is no longer blocked: its dependency is done.
    assert planted.sections["infra"]["today"][0]["state"] == "todo"


def test_a_branch_behind_its_integration_branch(planted: Planted) -> None:
    (blocker,) = blockers_of(planted.sections["docs"], "behind")
    assert blocker["message"] == (
        "feature/phase-1/docs/deployment-guides is 1 commit(s) behind phase-1-integration in root"
    )
    assert blocker["detail"] == {"repo": "root", "behind": 1}
    assert any(
        a["streams"] == ["docs"] and a["text"].startswith("Documentation updates from phase-1-integration")
        for a in planted.actions("update")
    )
    assert "1 commit(s) behind phase-1-integration in root" in md_section(
        planted.markdown, "## Documentation (codi-documentation-writer)"
    )


def test_failing_checks_on_the_pr_head(planted: Planted) -> None:
    number = planted.pr["infra@infra"]
    (blocker,) = blockers_of(planted.sections["infra"], "checks")
    assert blocker["message"] == f"checks failing on infra PR #{number}: tfsec"
    assert planted.sections["infra"]["pr"]["checks"] == "failure"
    assert any(
        a["streams"] == ["infra"] and "fixes the failing checks" in a["text"] for a in planted.actions()
    )
    assert f"checks failing on infra PR #{number}: tfsec" in md_section(
        planted.markdown, "## Infrastructure (cloud-architect)"
    )


def test_changes_requested_on_the_pr(planted: Planted) -> None:
    number = planted.pr["backend@backend"]
    (blocker,) = blockers_of(planted.sections["backend"], "changes-requested")
    assert blocker["message"] == f"changes requested on backend PR #{number} by @codi-code-architect"
    assert f"Backend addresses the changes requested on backend PR #{number}" in [
        a["text"] for a in planted.actions("review")
    ]
    assert planted.sections["backend"]["pr"]["approved"] is False


def test_predicted_conflict_between_two_feature_branches(planted: Planted) -> None:
    (deploy,) = blockers_of(planted.sections["deploy"], "conflict")
    assert (deploy["on"], deploy["detail"]) == ("docs", {"repo": "backend", "paths": ["README.md"]})
    docs = [b for b in blockers_of(planted.sections["docs"], "conflict") if b["on"] == "deploy"]
    assert [b["message"] for b in docs] == ["backend: conflicts with deploy on README.md"]
    (action,) = planted.actions("conflict")
    assert action["streams"] == ["deploy", "docs"]
    assert action["text"] == "Deployment and Documentation agree on README.md before either merges"


def test_predicted_conflict_with_the_integration_branch(planted: Planted) -> None:
    (blocker,) = [b for b in blockers_of(planted.sections["docs"], "conflict") if b["on"] is None]
    assert blocker["message"] == "root: conflicts with integration on README.md"
    assert "Documentation merges phase-1-integration and resolves README.md" in [
        a["text"] for a in planted.actions("update")
    ]


def test_ownership_violation_committed_past_the_guard(planted: Planted) -> None:
    (blocker,) = blockers_of(planted.sections["deploy"], "ownership")
    assert blocker["message"] == "1 file(s) outside its ownership in backend: README.md (docs)"
    assert blocker["detail"] == {"repo": "backend", "paths": ["README.md"]}
    assert any(
        a["streams"] == ["deploy"] and "hands" in a["text"] and "README.md (docs)" in a["text"]
        for a in planted.actions("handoff")
    )


def test_checkpoint_of_the_day_lists_the_streams_not_ready(planted: Planted) -> None:
    assert [c["id"] for c in planted.data["checkpoints_today"]] == [1]
    assert planted.data["checkpoints_tomorrow"] == []
    (action,) = planted.actions("checkpoint")
    assert action["streams"] == ["infra", "backend"]
    assert action["text"].startswith(
        "Checkpoint 1 (today, day 3: Infrastructure → Backend integration) needs "
    )
    assert "Infrastructure, Backend ready" in action["text"]


def test_markdown_actions_are_the_json_actions_numbered(planted: Planted) -> None:
    listed = md_section(planted.markdown, "## Coordination Actions:").splitlines()
    assert listed == [f"{i}. {a['text']}" for i, a in enumerate(planted.data["actions"], 1)]
    for sid, section in planted.sections.items():
        heading = f"## {section['name']} ({section['agent']})"
        blockers = "; ".join(b["message"] for b in section["blockers"])
        assert f"🚧 Blockers: {blockers}" in md_section(planted.markdown, heading), sid


def test_human_output_shows_the_panels_and_user_text_literally(
    planted: Planted, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(planted.root, ["sync", "morning", "--day", "3"], capsys)
    assert result.code == 0, result.output
    out = " ".join(result.stdout.split())  # panels wrap long lines
    assert "Daily Sync — day 3 of 10 (2026-12-03) · phase-1" in out
    for name in ("Infrastructure (cloud-architect)", "Backend (codi-code-architect)", "Documentation"):
        assert name in out
    assert "Organization service (CRUD, multi-tenant) [blocked]" in out  # not taken for rich markup
    assert "Deployment and Documentation agree on README.md before either merges" in out
    assert "report: workstreams/reports/phase-1/day-03-morning.md" in out


# ----------------------------------------------------------------------------------------------- changes


def test_unblock_removes_the_declared_blocker_and_its_action(
    planted: Planted, capsys: pytest.CaptureFixture[str]
) -> None:
    done = cli(planted.root, ["unblock", "frontend"], capsys)
    assert done.code == 0 and "frontend: 1 blocker(s) resolved" in done.stdout
    data = cli_json(planted.root, ["sync", "morning", "--day", "3"], capsys)
    assert by_stream(data)["frontend"]["blockers"] == []
    assert [a for a in data["actions"] if a["kind"] == "unblock"] == []
    markdown = (planted.root / "workstreams/reports/phase-1/day-03-morning.md").read_text(encoding="utf-8")
    assert "🚧 Blockers: None" in md_section(markdown, "## Frontend (codi-frontend-specialist)")
    again = cli_json(planted.root, ["unblock", "frontend"], capsys)
    assert again["resolved"] == 0


def test_block_rejects_unknown_streams_and_blocking_on_itself(
    planted: Planted, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(planted.root, ["block", "nope", "why"], capsys).code == 2
    assert cli(planted.root, ["block", "frontend", "why", "--on", "nope"], capsys).code == 2
    itself = cli(planted.root, ["block", "frontend", "why", "--on", "frontend"], capsys)
    assert itself.code == 2 and "itself" in itself.output
    blank = cli(planted.root, ["block", "frontend", "   "], capsys)
    assert blank.code == 2


def test_a_declared_block_without_on_has_no_unblock_action(tmp_path: Path, isolated_git: Path) -> None:
    from coditect_cli.services import sync

    root = build(tmp_path)
    project = Project(root)
    tasks.block(project, PHASE1, "docs", "diagrams tool licence pending", None)
    report = sync.morning(project, PHASE1, day=1).report
    docs = next(s for s in report.streams if s.stream.id == "docs")
    assert [(b.kind, b.message, b.on) for b in docs.blockers] == [
        ("declared", "diagrams tool licence pending", None)
    ]
    assert [a for a in report.actions if a.kind == "unblock"] == []


def test_a_fresh_setup_has_no_blockers_on_day_1(tmp_path: Path, isolated_git: Path) -> None:
    from coditect_cli.services import sync

    root = build(tmp_path)
    report = sync.morning(Project(root), PHASE1, day=1).report
    assert {s.stream.id: s.blockers for s in report.streams} == {sid: [] for sid in STREAM_ORDER}
    assert [a.kind for a in report.actions] == []


def test_missing_branches_are_reported_before_setup(tmp_path: Path, isolated_git: Path) -> None:
    from coditect_cli.services import sync

    root = build(tmp_path, setup=False)
    report = sync.morning(Project(root), PHASE1, day=1).report
    infra = next(s for s in report.streams if s.stream.id == "infra")
    assert [b.message for b in infra.blockers] == [
        "feature/phase-1/infra/gcp-foundation does not exist in infra (run `coditect streams setup`)"
    ]


def test_commits_merged_on_origins_integration_branch_make_the_streams_behind(
    tmp_path: Path, isolated_git: Path
) -> None:
    from coditect_cli.services import sync

    root = build(tmp_path)
    infra = repo_dir(root, "infra")
    origin = git_in(infra, "config", "--get", "remote.origin.url")
    other = tmp_path / "elsewhere"
    subprocess.run(
        ["git", "clone", "-q", "--branch", PHASE1_INTEGRATION, origin, str(other)],
        check=True,
        capture_output=True,
    )
    (other / "opentofu" / "merged.tf").write_text("# merged on the forge\n")
    git_in(other, "add", "-A")
    git_in(
        other, "-c", "user.name=Forge", "-c", "user.email=forge@example.invalid", "commit", "-qm", "merged PR"
    )
    git_in(other, "push", "-q", "origin", PHASE1_INTEGRATION)
    git_in(infra, "fetch", "-q", "origin")  # origin/phase-1-integration now has the merge

    report = sync.morning(Project(root), PHASE1, day=1).report
    section = next(s for s in report.streams if s.stream.id == "infra")
    assert [b.message for b in section.blockers if b.kind == "behind"] == [
        "feature/phase-1/infra/gcp-foundation is 1 commit(s) behind phase-1-integration in infra"
    ]
