"""The local forge end to end on sandbox repositories: bare origins on disk, submodules, stream worktrees.

Agents commit in their worktrees (the ownership guard runs); PRs are opened, reviewed and merged with each
strategy; the results are checked in the bare origins with git (commits, parents, trees), and no user's
worktree is touched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    PHASE1,
    PHASE1_INTEGRATION,
    build_phase1_sandbox,
    git_in,
    git_ok,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.domain.prs import PrView
from coditect_cli.errors import CheckFailed, ExitCode, RefusedError, UsageError
from coditect_cli.forge.local import LocalForge
from coditect_cli.project import Project
from coditect_cli.services import prs, reviews
from coditect_cli.services.demo import _commit
from coditect_cli.state import forge_records


def commit(root: Path, stream: str, repo: str, path: str, text: str, message: str) -> str:
    """Append ``text`` to ``path`` in ``stream``'s worktree of ``repo`` and commit (the guard must allow it)."""
    worktree = stream_worktree(root, stream, repo)
    ok, output = _commit(worktree, path, text, message)
    assert ok, output
    return git_in(worktree, "rev-parse", "HEAD")


def origin(root: Path, repo: str) -> Path:
    return Path(git_in(repo_dir(root, repo), "config", "--get", "remote.origin.url"))


def origin_tip(root: Path, repo: str, branch: str = PHASE1_INTEGRATION) -> str:
    return git_in(origin(root, repo), "rev-parse", f"refs/heads/{branch}")


def plant_on_integration(root: Path, repo: str, path: str, text: str, message: str) -> str:
    """A commit on the integration branch (local and origin) that no stream made: the base moves on."""
    from coditect_cli.adapters.git import commit_file

    checkout = repo_dir(root, repo)
    current = subprocess.run(
        ["git", "-C", str(checkout), "show", f"{PHASE1_INTEGRATION}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    _old, new = commit_file(checkout, PHASE1_INTEGRATION, path, current + text, message)
    git_in(checkout, "push", "--quiet", "origin", PHASE1_INTEGRATION)
    return new


def expected_tree(root: Path, repo: str, base: str, head: str) -> str:
    """The tree ``git merge-tree`` computes for merging ``head`` into ``base`` (in the bare origin)."""
    done = subprocess.run(
        ["git", "--git-dir", str(origin(root, repo)), "merge-tree", "--write-tree", base, head],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[0]


def worktree_heads(root: Path) -> dict[Path, tuple[str, str]]:
    """Every stream worktree's HEAD and status: merges must leave them as they were."""
    out: dict[Path, tuple[str, str]] = {}
    for wt in sorted((root / ".coditect" / "worktrees" / PHASE1).glob("*/*")):
        out[wt] = (git_in(wt, "rev-parse", "HEAD"), git_in(wt, "status", "--porcelain"))
    return out


@pytest.fixture(scope="module")
def sandbox(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set-up phase-1 sandbox where several streams committed; each test works on its own pairs."""
    root = build_phase1_sandbox(tmp_path_factory.mktemp("local-forge") / "sandbox")
    setup_with_cwd(root)
    commit(
        root,
        "infra",
        "infra",
        "opentofu/modules/networking/main.tf",
        '\nresource "google_compute_global_address" "psc" {}\n',
        "feat(infra): private service range",
    )
    commit(
        root,
        "infra",
        "infra",
        "opentofu/modules/networking/outputs.tf",
        'output "psc" {}\n',
        "feat(infra): output the range",
    )
    commit(
        root,
        "frontend",
        "frontend",
        "src/pages/Login.tsx",
        "\nexport const refresh = true;\n",
        "feat(ui): refresh tokens",
    )
    commit(root, "frontend", "frontend", "tests/login.test.ts", "\n// refresh\n", "test(ui): refresh")
    commit(
        root,
        "deploy",
        "backend",
        "Dockerfile",
        "\nHEALTHCHECK CMD curl -f http://localhost/health\n",
        "chore(deploy): healthcheck",
    )
    commit(root, "docs", "root", "README.md", "\nSee docs/runbooks.\n", "docs: point at the runbooks")
    commit(
        root, "docs", "infra", "README.md", "\nArchitecture: docs/c4.md\n", "docs(infra): architecture link"
    )
    return root


@pytest.fixture
def project(sandbox: Path) -> Iterator[Project]:
    """The sandbox's project, with the project root as the current directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sandbox)
        yield Project(sandbox)


# ------------------------------------------------------------------------------------------------ opening


def test_open_pushes_the_head_and_is_idempotent(sandbox: Path, project: Project) -> None:
    head = git_in(stream_worktree(sandbox, "deploy", "backend"), "rev-parse", "HEAD")
    branch = "feature/phase-1/deploy/kubernetes-manifests"
    assert origin_tip(sandbox, "backend", branch) != head  # committed, not pushed
    first = prs.open_prs(project, PHASE1, "deploy", "backend")
    (opened,) = first.outcomes
    assert opened.created and opened.pushed and opened.forge == "local"
    assert opened.pr is not None and opened.pr.head_sha == head and opened.pr.base == PHASE1_INTEGRATION
    assert origin_tip(sandbox, "backend", branch) == head
    assert opened.pr.title == "[phase-1] Deployment: kubernetes-manifests (backend)"
    assert "`deploy-docker` (days 1-2): Docker multi-stage build" in opened.pr.body
    assert "- `Dockerfile`" in opened.pr.body
    assert any(n.startswith("using the local forge: origin is not on GitHub") for n in first.notes)

    second = prs.open_prs(project, PHASE1, "deploy", "backend")
    (again,) = second.outcomes
    assert not again.created and not again.pushed
    assert again.pr is not None and again.pr.number == opened.pr.number
    listed = [v for v in prs.list_prs(project, PHASE1).rows if v.branch == branch]
    assert len(listed) == 1


def test_open_skips_pairs_with_nothing_to_propose(project: Project) -> None:
    report = prs.open_prs(project, PHASE1, "docs")
    by_repo = {o.repo: o for o in report.outcomes}
    assert by_repo["root"].pr is not None and by_repo["infra"].pr is not None
    for repo in ("backend", "frontend"):
        assert by_repo[repo].pr is None
        assert by_repo[repo].skipped is not None and "nothing to propose" in by_repo[repo].skipped
    assert not report.nothing


def test_unknown_stream_and_repository_are_usage_errors(project: Project) -> None:
    with pytest.raises(UsageError) as stream:
        prs.open_prs(project, PHASE1, "qa")
    assert "streams: infra, backend, frontend, deploy, docs" in stream.value.message
    with pytest.raises(UsageError) as repo:
        prs.pr_status(project, PHASE1, "infra", "frontend")
    assert "its repositories: infra" in repo.value.message


# ------------------------------------------------------------------------------------------------ reviews


def test_owners_outside_codeowners_are_rejected_naming_the_valid_ones(project: Project) -> None:
    with pytest.raises(UsageError) as caught:
        reviews.review(project, PHASE1, "deploy", owner="@mallory", state="approved", repo="backend")
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE
    assert "@mallory is not a code owner of repository 'backend'" in message
    for owner in (
        "@codi-code-architect",
        "@codi-devops-engineer",
        "@codi-documentation-writer",
        "@codi-frontend-specialist",
    ):
        assert owner in message
    # A real owner, of another repository only.
    with pytest.raises(UsageError) as elsewhere:
        reviews.review(project, PHASE1, "deploy", owner="@cloud-architect", state="approved", repo="backend")
    assert "not a code owner of repository 'backend'" in elsewhere.value.message


def test_review_needs_an_open_pr(project: Project) -> None:
    with pytest.raises(UsageError) as caught:
        reviews.review(project, PHASE1, "backend", owner="@codi-code-architect", state="approved")
    assert "has no open pull request" in caught.value.message


# ------------------------------------------------------------------------------------------------ merging


def test_squash_merge_is_one_commit_with_the_pr_title(sandbox: Path, project: Project) -> None:
    prs.open_prs(project, PHASE1, "docs", "root")
    before = worktree_heads(sandbox)
    base = origin_tip(sandbox, "root")
    head = origin_tip(sandbox, "root", "feature/phase-1/docs/deployment-guides")
    tree = expected_tree(sandbox, "root", base, head)
    reviews.review(project, PHASE1, "docs", owner="@codi-documentation-writer", state="approved", repo="root")
    report = reviews.merge(project, PHASE1, "docs", repo="root", strategy="squash")
    (outcome,) = report.outcomes
    assert outcome.refused is None and outcome.merged is not None
    new = origin_tip(sandbox, "root")
    assert outcome.merged.commit == new
    bare = origin(sandbox, "root")
    assert git_in(bare, "rev-list", "--parents", "-n", "1", new).split() == [new, base]
    assert git_in(bare, "rev-parse", f"{new}^{{tree}}") == tree
    message = git_in(bare, "log", "-1", "--format=%B", new)
    assert message.startswith(
        f"[phase-1] Documentation: deployment-guides (root) (#{outcome.merged.pr.number})"
    )
    assert "### Deliverables" in message
    # The local integration branch follows (no worktree has it); the stream worktrees are untouched.
    assert git_in(repo_dir(sandbox, "root"), "rev-parse", PHASE1_INTEGRATION) == new
    assert worktree_heads(sandbox) == before
    assert git_in(sandbox, "status", "--porcelain") == ""
    # Merged once: a second merge reports it; there is nothing left to propose.
    assert reviews.merge(project, PHASE1, "docs", repo="root").outcomes[0].refused == "no open pull request"
    (skipped,) = prs.open_prs(project, PHASE1, "docs", "root").outcomes
    assert skipped.pr is None and "nothing to propose" in (skipped.skipped or "")
    events = [e for e in _events(project) if e.kind == "ref" and e.command == "pr merge"]
    assert any(
        e.ref == f"refs/remotes/origin/{PHASE1_INTEGRATION}" and e.old == base and e.new == new
        for e in events
    )


def test_merge_commit_has_both_parents(sandbox: Path, project: Project) -> None:
    prs.open_prs(project, PHASE1, "infra", "infra")
    planted = plant_on_integration(sandbox, "infra", "CHANGELOG.md", "\n- Integration note.\n", "docs: note")
    head = origin_tip(sandbox, "infra", "feature/phase-1/infra/gcp-foundation")
    tree = expected_tree(sandbox, "infra", planted, head)
    reviews.review(project, PHASE1, "infra", owner="@cloud-architect", state="approved")
    (outcome,) = reviews.merge(project, PHASE1, "infra", strategy="merge").outcomes
    assert outcome.merged is not None, outcome.refused
    new = origin_tip(sandbox, "infra")
    bare = origin(sandbox, "infra")
    assert git_in(bare, "rev-list", "--parents", "-n", "1", new).split() == [new, planted, head]
    assert git_in(bare, "rev-parse", f"{new}^{{tree}}") == tree
    assert git_in(bare, "log", "-1", "--format=%s", new) == (
        f"Merge pull request #{outcome.merged.pr.number} from feature/phase-1/infra/gcp-foundation"
    )


def test_rebase_replays_each_commit_on_the_moved_base(sandbox: Path, project: Project) -> None:
    prs.open_prs(project, PHASE1, "frontend")
    planted = plant_on_integration(
        sandbox, "frontend", "CHANGELOG.md", "\n- Integration note.\n", "docs: note"
    )
    branch = "feature/phase-1/frontend/auth-ui"
    head = origin_tip(sandbox, "frontend", branch)
    tree = expected_tree(sandbox, "frontend", planted, head)
    bare = origin(sandbox, "frontend")
    originals = git_in(
        bare, "log", "--reverse", "--format=%s|%an|%ae", f"refs/heads/{PHASE1_INTEGRATION}~1..{head}"
    ).splitlines()
    reviews.review(project, PHASE1, "frontend", owner="@codi-frontend-specialist", state="approved")
    (outcome,) = reviews.merge(project, PHASE1, "frontend", strategy="rebase").outcomes
    assert outcome.merged is not None, outcome.refused
    new = origin_tip(sandbox, "frontend")
    replayed = git_in(bare, "log", "--reverse", "--format=%s|%an|%ae", f"{planted}..{new}").splitlines()
    assert replayed == originals and len(replayed) == 2
    assert git_in(bare, "rev-list", "--count", f"{planted}..{new}") == "2"
    assert git_in(bare, "rev-list", "--no-walk", "--parents", f"{new}~1").split()[1] == planted
    assert git_in(bare, "rev-parse", f"{new}^{{tree}}") == tree
    assert not git_ok(bare, "merge-base", "--is-ancestor", head, new)  # replayed: new commits, not head's


def test_approval_rules_a_shared_path_needs_every_owner(
    sandbox: Path, tmp_path: Path, isolated_git: Path
) -> None:
    """A fresh sandbox: backend changes its own code and the shared openapi.yaml."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    commit(
        root,
        "backend",
        "backend",
        "src/api/v1/auth.py",
        "\n\ndef refresh(token: str) -> str:\n    return token\n",
        "feat(auth): refresh",
    )
    commit(
        root,
        "backend",
        "backend",
        "openapi.yaml",
        "\n# /auth/refresh\n",
        "feat(api): refresh in the contract",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        project = Project(root)
        opened = prs.open_all(project, PHASE1)
        assert [(o.stream, o.repo, o.created) for o in opened] == [("backend", "backend", True)]

        def view() -> PrView:
            (only,) = prs.pr_status(project, PHASE1, "backend").rows
            return only

        first = view()
        assert first.files == ("openapi.yaml", "src/api/v1/auth.py") and first.mergeable is True
        assert [(n.owner, n.paths, n.shared_paths, n.state) for n in first.needs] == [
            ("@codi-code-architect", ("openapi.yaml", "src/api/v1/auth.py"), ("openapi.yaml",), "pending"),
            ("@codi-frontend-specialist", ("openapi.yaml",), ("openapi.yaml",), "pending"),
        ]
        reviews.review(project, PHASE1, "backend", owner="@codi-code-architect", state="approved")
        assert view().approvals == (1, 2) and not view().approved
        assert (
            reviews.merge(project, PHASE1, "backend").outcomes[0].refused
            == "needs approval by @codi-frontend-specialist (coditect's shared-path rule: every owning stream "
            "approves openapi.yaml; GitHub's rule, any one code owner, is met)"
        )

        reviews.review(
            project,
            PHASE1,
            "backend",
            owner="codi-frontend-specialist",
            state="changes_requested",
            body="field names",
        )
        blocked = view()
        assert blocked.blocked_by == ("@codi-frontend-specialist",) and not blocked.approved
        assert (
            reviews.merge(project, PHASE1, "backend").outcomes[0].refused
            == "changes requested by @codi-frontend-specialist"
        )

        reviews.review(project, PHASE1, "backend", owner="@codi-frontend-specialist", state="approved")
        assert view().approved and view().approvals == (2, 2)

        head = view().pr.head_sha or ""  # type: ignore[union-attr]
        reviews.record_check(project, PHASE1, "backend", head, "unit-tests", "failure", log="/tmp/unit.log")
        failing = view()
        assert failing.checks_state == "failure" and not failing.ready
        assert [(c.name, c.log) for c in failing.checks] == [("unit-tests", "/tmp/unit.log")]
        assert reviews.merge(project, PHASE1, "backend").outcomes[0].refused == "failing check(s): unit-tests"
        reviews.record_check(project, PHASE1, "backend", head, "unit-tests", "success")
        assert view().ready

        report = reviews.merge(project, PHASE1, "backend")
        assert report.strategy == "squash" and report.outcomes[0].merged is not None
        listed = prs.list_prs(project, PHASE1)
        (merged,) = listed.rows
        assert merged.pr is not None and merged.pr.state == "merged" and merged.approved
        assert merged.files == ("openapi.yaml", "src/api/v1/auth.py")


def test_a_conflicting_pr_is_not_mergeable(sandbox: Path, project: Project) -> None:
    prs.open_prs(project, PHASE1, "docs", "infra")
    plant_on_integration(sandbox, "infra", "README.md", "\nArchitecture: see the wiki\n", "docs: wiki link")
    (view,) = prs.pr_status(project, PHASE1, "docs", "infra").rows
    assert view.mergeable is False and not view.ready
    reviews.review(
        project, PHASE1, "docs", owner="@codi-documentation-writer", state="approved", repo="infra"
    )
    (outcome,) = reviews.merge(project, PHASE1, "docs", repo="infra", force=True).outcomes
    assert outcome.refused == "conflicts with its base"
    with prs.session(project, PHASE1) as s:
        forge = s.forges.forge("infra")
        assert isinstance(forge, LocalForge)
        with pytest.raises(CheckFailed) as caught:
            forge.merge_pr(s.forges.repo("infra"), view.pr, "squash")  # type: ignore[arg-type]
    assert "README.md" in caught.value.message and caught.value.exit_code == ExitCode.CHECK_FAILED


def test_a_moved_head_is_not_merged(sandbox: Path, project: Project) -> None:
    prs.open_prs(project, PHASE1, "deploy", "backend")
    (view,) = prs.pr_status(project, PHASE1, "deploy", "backend").rows
    assert view.pr is not None
    with prs.session(project, PHASE1) as s, pytest.raises(CheckFailed) as caught:
        s.forges.forge("backend").merge_pr(s.forges.repo("backend"), view.pr, "merge", expected_head="0" * 40)
    assert "moved" in caught.value.message


# ------------------------------------------------------------------------------------------------ comments, tags


def test_comments_are_kept(project: Project) -> None:
    prs.open_prs(project, PHASE1, "deploy", "backend")
    (view,) = prs.pr_status(project, PHASE1, "deploy", "backend").rows
    assert view.pr is not None
    with prs.session(project, PHASE1) as s:
        comment = s.forges.forge("backend").comment_pr(
            s.forges.repo("backend"), view.pr, "Checkpoint 1: gates passed"
        )
        record = forge_records.pull_request(s.store, "backend", view.pr.number)
        assert record is not None
        assert [c.body for c in forge_records.comments(s.store, record.id)] == ["Checkpoint 1: gates passed"]
    assert comment.author == "coditect"


def test_tags_are_pushed_once(sandbox: Path, project: Project) -> None:
    sha = origin_tip(sandbox, "root", "develop")
    made = reviews.release(project, PHASE1, "root", "v0.1.0-rc1", sha, title="Phase 1 RC1", notes="First cut")
    assert made.created
    bare = origin(sandbox, "root")
    assert git_in(bare, "rev-parse", "refs/tags/v0.1.0-rc1^{commit}") == sha
    assert git_in(bare, "cat-file", "-t", "refs/tags/v0.1.0-rc1") == "tag"  # annotated
    assert not reviews.release(project, PHASE1, "root", "v0.1.0-rc1", sha).created
    other = git_in(bare, "rev-parse", "refs/heads/main")
    with pytest.raises(RefusedError):
        reviews.release(project, PHASE1, "root", "v0.1.0-rc1", other)


def _events(project: Project):  # type: ignore[no-untyped-def]
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.store import Store

    with Store.open(project_common_dir(project)) as store:
        return store.events(PHASE1)
