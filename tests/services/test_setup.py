"""``streams setup`` through the service layer, against real repositories (a sandbox), no mocks.

First run, second run, a run refused half-way and resumed, the state journal, and CODEOWNERS updates on an
integration branch someone has checked out.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from helpers import (
    PHASE1,
    PHASE1_INTEGRATION,
    PHASE1_PAIRS,
    PHASE1_REPOS,
    assert_streams_set_up,
    build_phase1_sandbox,
    git_in,
    refs_snapshot,
    replace_once,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.domain.codeowners import generate
from coditect_cli.domain.guard import GUARD_SCRIPT
from coditect_cli.domain.manifest import RepoId
from coditect_cli.domain.plan import AddWorktree, CreateBranch, Push, Step, WriteCodeowners
from coditect_cli.errors import ExitCode, RefusedError
from coditect_cli.project import find_project
from coditect_cli.services.setup import (
    HOOKS_DIR,
    SetupResult,
    compute_plan,
    execute,
    read_context,
    worktree_git_dir,
)

# Fixed commit dates make the CODEOWNERS commits of two sandboxes identical (the sandbox's own history is
# already deterministic), so "resumed" and "clean" runs can be compared ref by ref.
FIXED_DATES = {
    "GIT_AUTHOR_DATE": "2026-12-01T08:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-12-01T08:00:00+00:00",
}
BACKEND_OWNS = "owns: [src/, tests/, alembic/]"
BACKEND_OWNS_MORE = "owns: [src/, tests/, alembic/, migrations/]"


@pytest.fixture(scope="module")
def first_run(
    isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, SetupResult]]:
    """A sandbox after one complete ``streams setup``, and what that run did. Read-only for the tests."""
    root = build_phase1_sandbox(tmp_path_factory.mktemp("setup") / "sandbox")
    result = setup_with_cwd(root)
    yield root, result


def _kinds(steps: Iterable[Step]) -> Counter[str]:
    return Counter(type(s).__name__ for s in steps)


# ----------------------------------------------------------------------------------------------- first run


def test_first_run_takes_every_planned_step_in_repository_order(first_run: tuple[Path, SetupResult]) -> None:
    _root, result = first_run
    assert not result.dry_run
    assert result.done == list(result.plan.steps)
    assert _kinds(result.done) == {
        "CreateBranch": 4 + len(PHASE1_PAIRS),
        "WriteCodeowners": 4,
        "ExcludePath": 1,
        "AddWorktree": len(PHASE1_PAIRS),
        "InstallGuard": len(PHASE1_PAIRS),
        "Push": 4,
    }
    # Repository by repository, in manifest order; each repository's integration branch comes first.
    order = list(dict.fromkeys(step.repo for step in result.done))
    assert order == list(PHASE1_REPOS)
    for rid in PHASE1_REPOS:
        steps = [s for s in result.done if s.repo == rid]
        assert steps[0] == CreateBranch(RepoId(rid), PHASE1_INTEGRATION, "develop")
        assert isinstance(steps[1], WriteCodeowners) and not steps[1].update
        assert isinstance(steps[-1], Push)
        assert set(steps[-1].branches) == {PHASE1_INTEGRATION, *(b for _s, r, b in PHASE1_PAIRS if r == rid)}


def test_first_run_lays_out_branches_codeowners_worktrees_guards_and_pushes(
    first_run: tuple[Path, SetupResult],
) -> None:
    root, _ = first_run
    assert_streams_set_up(root, pushed=True)


def test_every_feature_branch_starts_at_the_codeowners_commit(first_run: tuple[Path, SetupResult]) -> None:
    root, _ = first_run
    for stream, rid, branch in PHASE1_PAIRS:
        repo = repo_dir(root, rid)
        assert git_in(repo, "rev-parse", branch) == git_in(repo, "rev-parse", PHASE1_INTEGRATION), branch
        subject = git_in(repo, "log", "-1", "--format=%s", branch)
        assert subject == "chore(coditect): add CODEOWNERS for phase-1"
        assert (stream_worktree(root, stream, rid) / ".github" / "CODEOWNERS").is_file()


def test_worktrees_are_excluded_from_the_root_and_every_checkout_stays_clean(
    first_run: tuple[Path, SetupResult],
) -> None:
    root, _ = first_run
    assert git_in(root, "status", "--porcelain", "--ignored=no") == ""
    assert git_in(root, "check-ignore", ".coditect/worktrees/phase-1/docs/root") != ""
    for rid in PHASE1_REPOS:
        # The main checkouts stay on develop: setup never switches a checkout it did not create.
        assert git_in(repo_dir(root, rid), "symbolic-ref", "--short", "HEAD") == "develop"
        assert git_in(repo_dir(root, rid), "status", "--porcelain") == ""


def test_second_run_plans_nothing_and_moves_no_ref(first_run: tuple[Path, SetupResult]) -> None:
    root, _ = first_run
    before = refs_snapshot(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert compute_plan(read_context(find_project(root), PHASE1)).empty
    again = setup_with_cwd(root)
    assert again.plan.empty and again.done == []
    assert len(again.plan.present) > 0
    assert refs_snapshot(root) == before


def test_state_store_journals_one_creation_event_per_branch_and_an_ok_run(
    first_run: tuple[Path, SetupResult],
) -> None:
    root, _ = first_run
    db = root / ".git" / "coditect" / "state.db"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT id, command, phase, status, finished FROM runs").fetchall()
        events = conn.execute(
            "SELECT run_id, repo, ref, old, new, kind, phase FROM events WHERE kind = 'ref' ORDER BY id"
        ).fetchall()
    # A run with nothing to do (test_second_run_...) journals no run at all.
    assert len(runs) == 1
    run_id, command, phase, status, finished = runs[0]
    assert (command, phase, status) == ("streams setup", PHASE1, "ok") and finished
    created = [(repo, ref) for _run, repo, ref, old, _new, _kind, _phase in events if old is None]
    expected = [(rid, f"refs/heads/{PHASE1_INTEGRATION}") for rid in PHASE1_REPOS]
    expected += [(rid, f"refs/heads/{branch}") for _s, rid, branch in PHASE1_PAIRS]
    assert sorted(created) == sorted(expected)
    assert len(created) == len(set(created))
    assert {e[0] for e in events} == {run_id}
    # The creation events record where each branch started; the CODEOWNERS commits are moves (old -> new).
    for _run, repo, ref, old, new, _kind, _phase in events:
        path = repo_dir(root, repo)
        if old is None and ref.endswith(PHASE1_INTEGRATION):
            assert new == git_in(path, "rev-parse", "develop")
        elif old is None:
            assert new == git_in(path, "rev-parse", ref)
        else:
            assert (old, new) == (
                git_in(path, "rev-parse", "develop"),
                git_in(path, "rev-parse", PHASE1_INTEGRATION),
            )


# ----------------------------------------------------------------------------------------------- guard drift


def _plan_steps(root: Path) -> list[Step]:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return list(compute_plan(read_context(find_project(root), PHASE1)).steps)


def test_a_guard_hook_changed_in_any_way_is_planned_again_for_that_worktree_only(
    isolated_git: Path, tmp_path: Path
) -> None:
    """Every file of a worktree's hooks directory must hold exactly its text: a byte more, a byte less, a
    missing file, a folder in its place or a worktree config no longer pointing there each plan (only) that
    worktree's guard again, and setup puts it back."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    worktree = stream_worktree(root, "backend", "backend")
    gitdir = worktree_git_dir(worktree)
    assert gitdir is not None
    hooks = gitdir / HOOKS_DIR

    def longer() -> None:
        with (hooks / "pre-commit").open("a", encoding="utf-8") as fh:
            fh.write("#")

    def shorter() -> None:
        text = (hooks / GUARD_SCRIPT).read_text(encoding="utf-8")
        (hooks / GUARD_SCRIPT).write_text(text[:-1], encoding="utf-8")

    def missing() -> None:
        (hooks / "post-merge").unlink()

    def folder() -> None:
        (hooks / "commit-msg").unlink()
        (hooks / "commit-msg").mkdir()

    def unhooked() -> None:
        (gitdir / "config.worktree").write_text("[core]\n", encoding="utf-8")

    for change in (longer, shorter, missing, folder, unhooked):
        change()
        steps = _plan_steps(root)
        assert [(type(s).__name__, getattr(s, "path", None)) for s in steps] == [
            ("InstallGuard", worktree)
        ], change.__name__
        if (hooks / "commit-msg").is_dir():
            # A folder in the way is not coditect's: setup refuses, naming it, and leaves it alone.
            (hooks / "commit-msg" / "notes.txt").write_text("mine\n", encoding="utf-8")
            with pytest.raises(RefusedError) as refused:
                setup_with_cwd(root)
            assert refused.value.exit_code == ExitCode.REFUSED
            assert (
                f"{hooks / 'commit-msg'} is a directory where the ownership guard's commit-msg hook goes"
                in (refused.value.message)
            )
            assert (hooks / "commit-msg" / "notes.txt").read_text(encoding="utf-8") == "mine\n"
            shutil.rmtree(hooks / "commit-msg")
        setup_with_cwd(root)
        assert _plan_steps(root) == [], change.__name__


# --------------------------------------------------------------------------------- interrupted, resumed


def test_refused_half_way_then_resumed_ends_like_a_clean_run(
    isolated_git: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FIXED_DATES.items():
        monkeypatch.setenv(name, value)
    # The superproject's commits record its origins' absolute paths (.gitmodules), so the clean run and the
    # interrupted one use the same directory, one after the other (a rebuild replaces the sandbox).
    target = tmp_path / "sandbox"
    clean = build_phase1_sandbox(target)
    setup_with_cwd(clean)
    clean_refs = refs_snapshot(clean)
    clean_worktrees = {
        rid: git_in(repo_dir(clean, rid), "worktree", "list", "--porcelain") for rid in PHASE1_REPOS
    }

    root = build_phase1_sandbox(target)
    assert root == clean and git_in(root, "branch", "--list", PHASE1_INTEGRATION) == ""
    blocked = stream_worktree(root, "deploy", "backend")
    blocked.mkdir(parents=True)
    (blocked / "keep.txt").write_text("not a worktree\n", encoding="utf-8")

    monkeypatch.chdir(root)
    ctx = read_context(find_project(root), PHASE1)
    plan = compute_plan(ctx)
    failing = next(i for i, s in enumerate(plan.steps) if isinstance(s, AddWorktree) and s.path == blocked)
    moves: list[tuple[str, str, str | None, str | None]] = []
    with pytest.raises(RefusedError) as refused:
        execute(ctx, plan, lambda repo, ref, old, new: moves.append((repo, ref, old, new)))
    message = refused.value.message
    assert refused.value.exit_code == ExitCode.REFUSED
    assert (
        f"{blocked} exists and is not the worktree of feature/phase-1/deploy/kubernetes-manifests" in message
    )
    assert "setup stopped at: add worktree .coditect/worktrees/phase-1/deploy/backend" in message
    assert f"({failing} of {len(plan.steps)} step(s) done before it)" in message

    # Everything before the refusal was done (and reported), nothing after it; the directory is untouched.
    assert (blocked / "keep.txt").read_text(encoding="utf-8") == "not a worktree\n"
    assert sorted(blocked.iterdir()) == [blocked / "keep.txt"]
    assert git_in(stream_worktree(root, "docs", "infra"), "symbolic-ref", "--short", "HEAD") == (
        "feature/phase-1/docs/infra-architecture"
    )
    backend = repo_dir(root, "backend")
    assert git_in(backend, "rev-parse", "--verify", "feature/phase-1/deploy/kubernetes-manifests")
    assert (
        git_in(backend, "rev-parse", "--verify", "-q", "feature/phase-1/docs/backend-api-docs", check=False)
        == ""
    )
    assert git_in(repo_dir(root, "frontend"), "branch", "--list", PHASE1_INTEGRATION) == ""
    # A repository's branches are on origin exactly when its Push step came before the refusal.
    for rid in PHASE1_REPOS:
        pushed = any(isinstance(s, Push) and s.repo == rid for s in plan.steps[:failing])
        on_origin = git_in(repo_dir(root, rid), "ls-remote", "--heads", "origin", PHASE1_INTEGRATION) != ""
        assert on_origin == pushed, rid
    last: dict[tuple[str, str], str | None] = {}
    for repo, ref, _old, new in moves:
        last[(repo, ref)] = new
    for (repo, ref), new in last.items():
        assert git_in(repo_dir(root, repo), "rev-parse", ref) == new, ref
    # Every branch created before the refusal was reported as a creation, and only those.
    assert {(m[0], m[1]) for m in moves if m[2] is None} == {
        (s.repo, f"refs/heads/{s.branch}") for s in plan.steps[:failing] if isinstance(s, CreateBranch)
    }
    assert (
        "backend",
        f"refs/heads/{PHASE1_INTEGRATION}",
        None,
        git_in(backend, "rev-parse", "develop"),
    ) in moves

    # The plan now lists exactly what was left: the refused step and everything after it.
    assert compute_plan(read_context(find_project(root), PHASE1)).steps == plan.steps[failing:]

    shutil.rmtree(blocked)
    resumed = setup_with_cwd(root)
    assert resumed.done == list(plan.steps[failing:])
    assert_streams_set_up(root, pushed=True)
    assert refs_snapshot(root) == clean_refs
    assert {rid: git_in(repo_dir(root, rid), "worktree", "list", "--porcelain") for rid in PHASE1_REPOS} == (
        clean_worktrees
    )
    assert setup_with_cwd(root).plan.empty


# ------------------------------------------------------------- CODEOWNERS on a checked-out integration branch


def _more_backend_ownership(root: Path) -> str:
    """Give the backend stream one more owned path (so backend's CODEOWNERS changes); return the new text."""
    manifest = root / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(replace_once(text, BACKEND_OWNS, BACKEND_OWNS_MORE), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        ctx = read_context(find_project(root), PHASE1)
    text = ctx.codeowners[RepoId("backend")].text
    assert "/migrations/" in text
    return text


def test_codeowners_update_refused_while_integration_is_checked_out_dirty_then_committed_there(
    isolated_git: Path, tmp_path: Path
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    checkout = tmp_path / "integration"
    git_in(backend, "worktree", "add", "-q", str(checkout), PHASE1_INTEGRATION)
    (checkout / "README.md").write_text("edited, not committed\n", encoding="utf-8")
    tip = git_in(backend, "rev-parse", PHASE1_INTEGRATION)
    features = {b: git_in(backend, "rev-parse", b) for _s, r, b in PHASE1_PAIRS if r == "backend"}
    wanted = _more_backend_ownership(root)

    with pytest.raises(RefusedError) as refused:
        setup_with_cwd(root)
    assert refused.value.exit_code == ExitCode.REFUSED
    assert (
        f"{PHASE1_INTEGRATION} is checked out in {checkout} with uncommitted changes" in refused.value.message
    )
    assert "(nothing was changed)" in refused.value.message
    assert " M README.md" in (refused.value.hint or "")
    assert git_in(backend, "rev-parse", PHASE1_INTEGRATION) == tip
    assert (checkout / "README.md").read_text(encoding="utf-8") == "edited, not committed\n"

    git_in(checkout, "checkout", "--", "README.md")
    result = setup_with_cwd(root)
    assert [type(s).__name__ for s in result.done] == ["WriteCodeowners"] + ["InstallGuard"] * 3
    assert isinstance(result.done[0], WriteCodeowners) and result.done[0].update
    new_tip = git_in(backend, "rev-parse", PHASE1_INTEGRATION)
    assert git_in(backend, "rev-parse", f"{new_tip}^") == tip
    assert git_in(checkout, "rev-parse", "HEAD") == new_tip
    assert git_in(checkout, "status", "--porcelain") == ""
    assert (checkout / ".github" / "CODEOWNERS").read_text(encoding="utf-8") == wanted
    assert git_in(backend, "show", f"{PHASE1_INTEGRATION}:.github/CODEOWNERS", strip=False) == wanted
    assert git_in(backend, "log", "-1", "--format=%s", PHASE1_INTEGRATION) == (
        "chore(coditect): update CODEOWNERS for phase-1"
    )
    # Setup never rewrites a feature branch; the guards now carry the new rule.
    assert {b: git_in(backend, "rev-parse", b) for b in features} == features
    hook = git_in(
        stream_worktree(root, "backend", "backend"), "config", "--worktree", "--get", "core.hooksPath"
    )
    assert "migrations/" in (Path(hook) / GUARD_SCRIPT).read_text(encoding="utf-8")
    assert setup_with_cwd(root).plan.empty


def test_codeowners_update_commits_in_a_submodules_main_checkout_on_the_integration_branch(
    isolated_git: Path, tmp_path: Path
) -> None:
    """Regression: `git worktree list` names a submodule's main checkout by its git dir (.git/modules/...).

    Setup took that path for the checkout: it wrote CODEOWNERS into the git dir and `git commit` failed.
    """
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    git_in(backend, "switch", "-q", PHASE1_INTEGRATION)
    tip = git_in(backend, "rev-parse", PHASE1_INTEGRATION)
    wanted = _more_backend_ownership(root)
    gitdir = Path(git_in(backend, "rev-parse", "--absolute-git-dir"))

    try:
        result = setup_with_cwd(root)
    finally:
        # Whatever happened, nothing may be written inside the git dir.
        assert not (gitdir / ".github").exists(), f"setup wrote {gitdir / '.github'} into the git dir"
    assert isinstance(result.done[0], WriteCodeowners)
    assert git_in(backend, "rev-parse", f"{PHASE1_INTEGRATION}^") == tip
    assert git_in(backend, "rev-parse", "HEAD") == git_in(backend, "rev-parse", PHASE1_INTEGRATION)
    assert (backend / ".github" / "CODEOWNERS").read_text(encoding="utf-8") == wanted
    assert git_in(backend, "status", "--porcelain") == ""


def test_refusal_names_the_submodule_checkout_holding_the_integration_branch(
    isolated_git: Path, tmp_path: Path
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    git_in(backend, "switch", "-q", PHASE1_INTEGRATION)
    (backend / "README.md").write_text("edited\n", encoding="utf-8")
    tip = git_in(backend, "rev-parse", PHASE1_INTEGRATION)
    _more_backend_ownership(root)
    with pytest.raises(RefusedError) as refused:
        setup_with_cwd(root)
    assert refused.value.exit_code == ExitCode.REFUSED
    assert (
        f"{PHASE1_INTEGRATION} is checked out in {backend} with uncommitted changes" in refused.value.message
    )
    assert " M README.md" in (refused.value.hint or "")
    assert git_in(backend, "rev-parse", PHASE1_INTEGRATION) == tip
    assert (backend / "README.md").read_text(encoding="utf-8") == "edited\n"


def test_generated_codeowners_text_is_what_setup_commits(first_run: tuple[Path, SetupResult]) -> None:
    root, _ = first_run
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        ctx = read_context(find_project(root), PHASE1)
    files = generate(ctx.manifest, "workstreams/phase-1.yaml")
    for rid in PHASE1_REPOS:
        committed = git_in(
            repo_dir(root, rid), "show", f"{PHASE1_INTEGRATION}:.github/CODEOWNERS", strip=False
        )
        assert committed == files[RepoId(rid)].text == ctx.codeowners[RepoId(rid)].text
