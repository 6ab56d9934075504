"""The sync reports themselves: yesterday's commits, the Markdown's shape, checkpoints, and the evening review.

- morning: "yesterday" starts at the previous morning sync recorded in the store;
- the Markdown (``workstreams/reports/<phase>/day-NN-<kind>.md``): exact headings, one section per stream in
  terminal order, checkpoints listed on their day and the day before;
- evening: commits of the day, tests changed (from the commits' files), ``--run-gates`` running each
  stream's gates in its worktree with a log each and a check recorded on the PR head, orchestrator actions
  (PRs ready to merge, checkpoints due).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from daykit import (
    PHASE1,
    STREAM_ORDER,
    build,
    by_stream,
    cli,
    cli_json,
    commit,
    edited_manifest,
    md_section,
    store_rows,
    stream_of,
)
from helpers import git_in, run_cli, stream_worktree

from coditect_cli.domain.sync import SyncReport
from coditect_cli.project import Project
from coditect_cli.services import prs, reviews, sync
from coditect_cli.state.store import parse_time

HEADINGS = [
    "## Infrastructure (cloud-architect)",
    "## Backend (codi-code-architect)",
    "## Frontend (codi-frontend-specialist)",
    "## Deployment (codi-devops-engineer)",
    "## Documentation (codi-documentation-writer)",
]
TITLE = "Phase 1: Authentication and Core Services"


def report_file(root: Path, day: int, kind: str) -> str:
    return (root / "workstreams" / "reports" / PHASE1 / f"day-{day:02d}-{kind}.md").read_text(
        encoding="utf-8"
    )


def subjects(report: SyncReport, stream: str) -> list[str]:
    section = next(s for s in report.streams if s.stream.id == stream)
    return [c.subject for c in section.commits]


def last_morning(root: Path, day: int) -> str:
    rows = store_rows(
        root,
        "SELECT time FROM syncs WHERE phase = ? AND kind = 'morning' AND day = ? ORDER BY id DESC",
        [PHASE1, day],
    )
    return str(rows[0][0])


# ----------------------------------------------------------------------------------------------- yesterday


def test_yesterday_is_what_was_committed_since_the_previous_morning_sync(
    tmp_path: Path, isolated_git: Path
) -> None:
    root = build(tmp_path)
    project = Project(root)
    commit(root, "backend", "backend", "src/api/v1/auth.py", "\n# login\n", "feat(auth): login")
    day1 = sync.morning(project, PHASE1, day=1).report
    assert subjects(day1, "backend") == ["feat(auth): login"]  # since the previous workday's start

    recorded = last_morning(root, 1)
    after = math.floor(parse_time(recorded).timestamp()) + 1  # the next second: after the sync
    commit(
        root, "backend", "backend", "src/api/v1/auth.py", "\n# refresh\n", "feat(auth): refresh", when=after
    )
    commit(root, "docs", "infra", "docs/c4.md", "# C4\n", "docs(infra): C4 context", when=after)

    day2 = sync.morning(project, PHASE1, day=2)
    assert day2.report.since == recorded
    assert subjects(day2.report, "backend") == ["feat(auth): refresh"]
    assert subjects(day2.report, "docs") == ["docs(infra): C4 context"]
    assert all(subjects(day2.report, s) == [] for s in ("infra", "frontend", "deploy"))
    backend = md_section(report_file(root, 2, "morning"), HEADINGS[1])
    assert backend.splitlines()[0] == "✅ Yesterday: feat(auth): refresh"
    (only,) = next(s for s in day2.report.streams if s.stream.id == "backend").commits
    assert only.repo == "backend" and only.sha == git_in(
        stream_worktree(root, "backend", "backend"), "rev-parse", "--short=10", "HEAD"
    )

    # Running day 2 again still starts from day 1's sync, not from the first run of day 2.
    again = sync.morning(project, PHASE1, day=2).report
    assert again.since == recorded and subjects(again, "backend") == ["feat(auth): refresh"]


def test_a_commit_in_the_same_second_as_the_morning_sync_is_reported_the_next_morning(
    tmp_path: Path, isolated_git: Path
) -> None:
    root = build(tmp_path)
    project = Project(root)
    for _ in range(5):  # a sync recorded on a whole second (1 in 1000) would not show the problem
        sync.morning(project, PHASE1, day=1)
        moment = parse_time(last_morning(root, 1))
        if moment.microsecond >= 1000:
            break
    # Made after the sync, in the same second: git records that second.
    commit(
        root,
        "backend",
        "backend",
        "src/api/v1/auth.py",
        "\n# refresh\n",
        "feat(auth): refresh",
        when=math.floor(moment.timestamp()),
    )
    day2 = sync.morning(project, PHASE1, day=2).report
    assert subjects(day2, "backend") == ["feat(auth): refresh"]


# ----------------------------------------------------------------------------------------------- markdown


@pytest.fixture(scope="module")
def plain(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set-up phase-1 sandbox where nothing happened yet."""
    return build(tmp_path_factory.mktemp("plain"))


def test_morning_markdown_has_the_guides_shape(plain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(plain, ["sync", "morning", "--day", "2"], capsys)
    assert data["report_path"] == "workstreams/reports/phase-1/day-02-morning.md"
    text = report_file(plain, 2, "morning")
    lines = text.splitlines()
    assert lines[0] == f"# Daily Sync - Day 2 ({TITLE})"
    assert [line for line in lines if line.startswith("#")] == [
        f"# Daily Sync - Day 2 ({TITLE})",
        *HEADINGS,
        "## Coordination Actions:",
        "## Integration Checkpoints",
    ]
    assert md_section(text, HEADINGS[0]).splitlines() == [
        "✅ Yesterday: no commits",
        "🎯 Today: VPC, networking, Cloud SQL setup",
        "🚧 Blockers: None",
    ]
    assert (
        md_section(text, HEADINGS[2]).splitlines()[1]
        == "🎯 Today: Project setup (Vite, React Router, TailwindCSS)"
    )
    for heading in HEADINGS:
        assert [line.split(" ")[0] for line in md_section(text, heading).splitlines()] == ["✅", "🎯", "🚧"]
    assert md_section(text, "## Coordination Actions:").splitlines() == [
        "1. Checkpoint 1 (tomorrow, day 3: Infrastructure → Backend integration) needs Infrastructure, Backend "
        "ready: PR approved by its code owners, checks green, no blockers"
    ]
    assert md_section(text, "## Integration Checkpoints") == (
        "- Checkpoint 1 (tomorrow, day 3): Infrastructure → Backend integration — streams infra, backend"
    )
    assert text.endswith("\n") and not text.endswith("\n\n\n")


@pytest.mark.parametrize(
    ("day", "listed"),
    [
        (1, []),
        (2, ["- Checkpoint 1 (tomorrow, day 3)"]),
        (3, ["- Checkpoint 1 (today, day 3)"]),
        (4, []),
        (5, ["- Checkpoint 2 (tomorrow, day 6)"]),
        (6, ["- Checkpoint 2 (today, day 6)"]),
        (11, ["- Checkpoint 4 (tomorrow, day 12)"]),
        (12, ["- Checkpoint 4 (today, day 12)"]),
    ],
)
def test_checkpoints_are_listed_on_their_day_and_the_day_before(
    plain: Path, day: int, listed: list[str]
) -> None:
    report = sync.morning(Project(plain), PHASE1, day=day).report
    section = md_section(report_file(plain, day, "morning"), "## Integration Checkpoints").splitlines()
    assert [line.split(":")[0] for line in section] == (listed or ["- None today or tomorrow."])
    assert len(report.checkpoints_today) + len(report.checkpoints_tomorrow) == len(listed)


def test_sections_follow_the_terminal_order(tmp_path: Path, isolated_git: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        for terminal, sid in enumerate(["docs", "frontend", "infra", "deploy", "backend"], 1):
            stream_of(data, sid)["terminal"] = terminal

    root = build(tmp_path, edited_manifest(edit), setup=False)
    report = sync.morning(Project(root), PHASE1, day=1).report
    assert [s.stream.id for s in report.streams] == ["docs", "frontend", "infra", "deploy", "backend"]
    headings = [line for line in report_file(root, 1, "morning").splitlines() if line.startswith("## ")]
    assert headings[:5] == [HEADINGS[4], HEADINGS[2], HEADINGS[0], HEADINGS[3], HEADINGS[1]]


def test_task_states_show_in_today(plain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(plain, ["task", "start", "docs", "docs-api"], capsys).code == 0
    assert cli(plain, ["task", "done", "infra", "infra-network"], capsys).code == 0
    try:
        data = cli_json(plain, ["sync", "morning", "--day", "1"], capsys)
        today = {s["stream"]: s["today"][0]["state"] for s in data["streams"]}
        assert today == {
            "infra": "done",
            "backend": "todo",
            "frontend": "todo",
            "deploy": "todo",
            "docs": "in-progress",
        }
        text = report_file(plain, 1, "morning")
        assert "🎯 Today: VPC, networking, Cloud SQL setup [done]" in text
        assert "🎯 Today: API documentation (from OpenAPI) [in-progress]" in text
    finally:
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state.store import Store

        with Store.open(project_common_dir(Project(plain))) as store:
            store.execute("DELETE FROM tasks WHERE phase = ?", [PHASE1])


# ----------------------------------------------------------------------------------------------- evening

PASSING_TEST = """import unittest


class Refresh(unittest.TestCase):
    def test_refresh(self):
        self.assertTrue(True)
"""


class Evening:
    def __init__(self, root: Path, data: dict[str, Any], prs_listed: dict[str, dict[str, Any]]):
        self.root = root
        self.data = data
        self.sections = by_stream(data)
        self.prs = prs_listed  # "stream@repo" -> pr list row

    def gates(self, stream: str) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.sections[stream]["gates"]}


@pytest.fixture(scope="module")
def evening(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Evening:
    """Day 2's evening: backend adds a passing test, frontend plants FAIL_GATE in its tests, infra commits
    and is approved; PRs on the local forge; then ``sync evening --day 2 --run-gates --json``."""
    root = build(tmp_path_factory.mktemp("evening"))
    project = Project(root)
    commit(
        root, "backend", "backend", "tests/test_refresh.py", PASSING_TEST, "test(auth): refresh", replace=True
    )
    commit(root, "backend", "backend", "src/api/v1/auth.py", "\n# refresh\n", "feat(auth): refresh")
    commit(
        root,
        "frontend",
        "frontend",
        "tests/login.test.ts",
        "\n// FAIL_GATE: redirect broken\n",
        "test(ui): redirect",
    )
    commit(
        root,
        "infra",
        "infra",
        "opentofu/modules/networking/main.tf",
        '\nresource "google_redis_instance" "c" {}\n',
        "feat(infra): redis",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        prs.open_all(project, PHASE1)
        reviews.review(project, PHASE1, "infra", owner="@cloud-architect", state="approved")
    ran = run_cli(["sync", "evening", "--day", "2", "--run-gates", "--json"], cwd=root)
    assert ran.code == 0, ran.output
    listed = run_cli(["pr", "list", "--json"], cwd=root)
    assert listed.code == 0, listed.output
    rows = {f"{r['stream']}@{r['repo']}": r for r in json.loads(listed.stdout)["data"]["prs"]}
    return Evening(root, json.loads(ran.stdout)["data"], rows)


def test_evening_lists_the_days_commits_and_the_tests_they_changed(evening: Evening) -> None:
    s = evening.sections
    assert sorted(c["subject"] for c in s["backend"]["commits"]) == [
        "feat(auth): refresh",
        "test(auth): refresh",
    ]
    assert s["backend"]["tests_changed"] == ["backend:tests/test_refresh.py"]
    assert s["frontend"]["tests_changed"] == ["frontend:tests/login.test.ts"]
    assert s["infra"]["tests_changed"] == [] and s["infra"]["commits"][0]["subject"] == "feat(infra): redis"
    assert s["docs"]["commits"] == [] and "no commits today" in s["docs"]["risks"]
    assert [t["id"] for t in s["backend"]["tomorrow"]] == ["backend-orgs"]
    assert "due by today and not done: backend-auth" in s["backend"]["risks"]


def test_run_gates_runs_each_gate_in_the_streams_worktree_with_a_log(evening: Evening) -> None:
    backend = evening.gates("backend")
    assert {n: (g["passed"], g["exit_code"], g["repo"]) for n, g in backend.items()} == {
        "unit-tests": (True, 0, "backend"),
        "openapi-contract": (True, 0, "backend"),
    }
    unit_log = Path(backend["unit-tests"]["log"])
    assert unit_log.is_file() and "Ran " in unit_log.read_text() and "OK" in unit_log.read_text()
    frontend = evening.gates("frontend")
    assert (frontend["unit-tests"]["passed"], frontend["unit-tests"]["exit_code"]) == (False, 1)
    assert frontend["typecheck"]["passed"] is True
    failed_log = Path(frontend["unit-tests"]["log"]).read_text()
    assert (
        "tests/login.test.ts:" in failed_log and "FAIL_GATE marker" in failed_log and "FAILED" in failed_log
    )
    assert Path(frontend["unit-tests"]["log"]).parent == unit_log.parent
    assert unit_log.parent.parts[-2:] == (PHASE1, "day-02")
    every = {(sid, name) for sid in STREAM_ORDER for name in evening.gates(sid)}
    assert every == {
        ("infra", "opentofu-validate"),
        ("infra", "tfsec"),
        ("backend", "unit-tests"),
        ("backend", "openapi-contract"),
        ("frontend", "typecheck"),
        ("frontend", "unit-tests"),
        ("deploy", "manifests-valid"),
        ("docs", "links"),
    }


def test_gate_results_are_checks_on_the_pr_heads(evening: Evening) -> None:
    frontend = evening.prs["frontend@frontend"]
    head = git_in(stream_worktree(evening.root, "frontend", "frontend"), "rev-parse", "HEAD")
    assert frontend["pr"]["head_sha"] == head
    assert frontend["checks"]["state"] == "failure" and frontend["ready"] is False
    results = {c["name"]: c for c in frontend["checks"]["results"]}
    assert (results["unit-tests"]["status"], results["typecheck"]["status"]) == ("failure", "success")
    assert results["unit-tests"]["log"] == evening.gates("frontend")["unit-tests"]["log"]
    assert evening.prs["backend@backend"]["checks"]["state"] == "success"
    assert evening.prs["infra@infra"]["ready"] is True


def test_evening_orchestrator_actions_name_ready_prs_and_the_checkpoint_due(evening: Evening) -> None:
    texts = [a["text"] for a in evening.data["actions"]]
    infra_pr = evening.prs["infra@infra"]["pr"]["number"]
    assert f"Infrastructure: infra#{infra_pr} approved and ready to merge at the next checkpoint" in texts
    backend_pr = evening.prs["backend@backend"]["pr"]["number"]
    assert f"Backend: backend#{backend_pr} awaits code-owner approval" in texts
    assert texts[-1] == "Checkpoint 1 is due tomorrow (Infrastructure → Backend integration)"


def frontend_pr(evening: Evening) -> int:
    return int(evening.prs["frontend@frontend"]["pr"]["number"])


def test_evening_markdown_has_its_sections(evening: Evening) -> None:
    text = report_file(evening.root, 2, "evening")
    lines = text.splitlines()
    assert lines[0] == f"# End of Day Review - Day 2 ({TITLE})"
    assert [line for line in lines if line.startswith("#")] == [
        lines[0],
        *HEADINGS,
        "## Orchestrator Actions:",
        "## Integration Checkpoints",
    ]
    frontend = md_section(text, HEADINGS[2]).splitlines()
    assert frontend == [
        "✅ Pushed today: test(ui): redirect",
        "🧪 Tests added/changed: frontend:tests/login.test.ts",
        "🚦 Gates: typecheck ✅, unit-tests ❌",
        "🎯 Tomorrow: Auth pages (signup, login, password reset) [blocked]",
        # Tonight's failing gate is recorded as a check on the PR head before the facts are read.
        f"⚠️ Risks: checks: checks failing on frontend PR #{frontend_pr(evening)}: unit-tests; "
        "due by today and not done: frontend-setup",
        f"🚧 Blockers: checks failing on frontend PR #{frontend_pr(evening)}: unit-tests",
    ]
    actions = md_section(text, "## Orchestrator Actions:").splitlines()
    assert actions == [f"{i}. {a['text']}" for i, a in enumerate(evening.data["actions"], 1)]


def test_evening_human_output(evening: Evening, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(evening.root, ["sync", "evening", "--day", "2"], capsys)
    assert result.code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "End of Day Review — day 2 of 10" in out and "Orchestrator actions" in out
    assert "🧪 Tests added/changed: backend:tests/test_refresh.py" in out


def test_evening_since_the_mornings_sync_of_the_same_day(tmp_path: Path, isolated_git: Path) -> None:
    root = build(tmp_path)
    project = Project(root)
    morning = sync.morning(project, PHASE1, day=4)
    assert morning.report.kind == "morning"
    after = math.floor(parse_time(last_morning(root, 4)).timestamp()) + 1
    commit(
        root,
        "deploy",
        "backend",
        "kubernetes/base/service.yaml",
        "\n# port 80\n",
        "feat(k8s): service",
        when=after,
    )
    report = sync.evening(project, PHASE1, day=4).report
    assert report.since == last_morning(root, 4)
    assert subjects(report, "deploy") == ["feat(k8s): service"]
    assert [c.id for c in report.checkpoints_today] == [] and report.checkpoints_tomorrow == []


def test_a_gate_failing_tonight_keeps_an_approved_pr_out_of_ready_to_merge(
    tmp_path: Path, isolated_git: Path
) -> None:
    root = build(tmp_path)
    project = Project(root)
    commit(root, "frontend", "frontend", "tests/login.test.ts", "\n// FAIL_GATE\n", "test(ui): redirect")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        prs.open_all(project, PHASE1)
        reviews.review(project, PHASE1, "frontend", owner="@codi-frontend-specialist", state="approved")
        report = sync.evening(project, PHASE1, day=2, run_gates=True).report
        (view,) = prs.pr_status(project, PHASE1, "frontend").rows
    assert view.checks_state == "failure" and not view.ready  # the forge knows
    frontend = next(s for s in report.streams if s.stream.id == "frontend")
    assert [g["passed"] for g in frontend.gates] == [True, False]
    assert not [a.text for a in report.actions if a.kind == "merge"]
    assert frontend.pr is not None and frontend.pr["ready"] is False


def test_commits_of_the_same_second_are_listed_newest_first(tmp_path: Path, isolated_git: Path) -> None:
    import time

    root = build(tmp_path)
    moment = int(time.time())
    for i in range(1, 9):
        commit(
            root,
            "infra",
            "infra",
            "opentofu/steps.tf",
            f"# step {i}\n",
            f"feat(infra): step {i}",
            when=moment,
        )
    report = sync.morning(Project(root), PHASE1, day=2).report
    assert subjects(report, "infra") == [f"feat(infra): step {i}" for i in range(8, 0, -1)]
