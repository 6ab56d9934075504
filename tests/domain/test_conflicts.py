"""Predicted conflicts: the pure report, the merge-tree adapter and the service, on real repositories."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from coditect_cli.adapters import mergetree
from coditect_cli.adapters.mergetree import MergeTreeFormatError, merge_tree_batch, verify_refs
from coditect_cli.domain.conflicts import (
    INTEGRATION,
    Check,
    Lane,
    MergeMessage,
    MergeResult,
    RepoChecks,
    build_report,
    plan_checks,
)
from coditect_cli.domain.loader import load_manifest
from coditect_cli.project import Project
from coditect_cli.services.conflicts import predict

EXAMPLE = Path(__file__).resolve().parents[2] / "workstreams" / "phase-1.yaml"


# ------------------------------------------------------------------------------------------------ helpers


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def init_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.invalid")
    write(path, files)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def write(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def commit_on(repo: Path, branch: str, files: dict[str, str], *, start: str | None = None) -> str:
    """Commit ``files`` on ``branch`` (created from ``start`` when given) and go back to main."""
    git(repo, "checkout", "-q", *(["-b", branch, start] if start else [branch]))
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"edit on {branch}")
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


def loose_objects(repo: Path) -> int:
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    return int(counts["count"]) + int(counts["in-pack"])


BASE = {"shared.txt": "one\ntwo\nthree\n", "a.txt": "a\n", "b.txt": "b\n"}


@pytest.fixture
def repo(tmp_path: Path, isolated_git: Path) -> Path:
    return init_repo(tmp_path / "repo", BASE)


# --------------------------------------------------------------------------------------------- the adapter


def test_conflicting_edits_are_predicted_with_their_path(repo: Path) -> None:
    commit_on(repo, "f1", {"shared.txt": "one\nTWO from f1\nthree\n"}, start="main")
    commit_on(repo, "f2", {"shared.txt": "one\nTWO from f2\nthree\n"}, start="main")
    [result] = merge_tree_batch(repo, [("f1", "f2")])
    assert (result.ours, result.theirs, result.clean, result.paths) == ("f1", "f2", False, ("shared.txt",))
    assert result.conflict and result.error is None
    assert result.kinds() == {"shared.txt": ("contents",)}
    assert any(m.is_conflict and m.paths == ("shared.txt",) for m in result.messages)


def test_edits_to_different_files_merge_cleanly(repo: Path) -> None:
    commit_on(repo, "f1", {"a.txt": "a from f1\n"}, start="main")
    commit_on(repo, "f2", {"b.txt": "b from f2\n"}, start="main")
    [result] = merge_tree_batch(repo, [("f1", "f2")])
    assert result.clean and not result.conflict and result.paths == ()
    assert result.tree is not None and len(result.tree) == 40


def test_many_pairs_in_one_batch_keep_their_order(repo: Path) -> None:
    git(repo, "branch", "integration", "main")
    commit_on(repo, "f1", {"shared.txt": "one\nf1\nthree\n"}, start="integration")
    commit_on(repo, "f2", {"a.txt": "f2\n", "shared.txt": "one\nf2\nthree\n"}, start="integration")
    commit_on(repo, "f3", {"b.txt": "f3\n"}, start="integration")
    git(repo, "rm", "-q", "a.txt")
    git(repo, "commit", "-q", "-m", "integration drops a.txt")
    git(repo, "branch", "-f", "integration", "main")
    pairs = [("f1", "f2"), ("f1", "f3"), ("f2", "f3"), ("f1", "integration"), ("f2", "integration")]
    results = merge_tree_batch(repo, pairs)
    assert [(r.ours, r.theirs) for r in results] == pairs
    assert [r.conflict for r in results] == [True, False, False, False, True]
    assert results[4].paths == ("a.txt",)
    assert results[4].kinds() == {"a.txt": ("modify/delete",)}


def test_verify_refs_resolves_commits_in_one_process_and_reports_unknown(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_on(repo, "f1", {"a.txt": "x\n"}, start="main")
    git(repo, "tag", "-a", "-m", "annotated", "v1", "f1")
    calls: list[list[str]] = []
    real_run = mergetree.proc.run

    def counting(argv: list[str], **kwargs: object) -> object:
        calls.append(list(argv))
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mergetree.proc, "run", counting)
    found = verify_refs(
        repo, ["f1", "refs/heads/main", "nope", "v1", "main^{tree}", "refs/remotes/origin/f1", ""]
    )
    assert len(calls) == 1 and "cat-file" in calls[0]
    f1 = git(repo, "rev-parse", "f1")
    assert found == {
        "f1": f1,
        "refs/heads/main": git(repo, "rev-parse", "main"),
        "nope": None,
        "v1": f1,  # an annotated tag is peeled to its commit
        "main^{tree}": None,  # not a commit
        "refs/remotes/origin/f1": None,
        "": None,
    }
    assert verify_refs(repo, []) == {}


def test_unrelated_histories_are_an_error_result_and_later_pairs_still_merge(repo: Path) -> None:
    commit_on(repo, "f1", {"a.txt": "f1\n"}, start="main")
    commit_on(repo, "f2", {"a.txt": "f2\n"}, start="main")
    git(repo, "checkout", "-q", "--orphan", "lonely")
    git(repo, "rm", "-q", "-rf", ".")
    write(repo, {"other.txt": "x\n"})
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "unrelated")
    git(repo, "checkout", "-q", "-f", "main")
    results = merge_tree_batch(repo, [("f1", "lonely"), ("f1", "f2"), ("lonely", "f2"), ("f2", "main")])
    assert [r.error is not None for r in results] == [True, False, True, False]
    assert "unrelated histories" in (results[0].error or "")
    assert not results[0].conflict and not results[0].clean
    assert results[1].conflict and results[1].paths == ("a.txt",)
    assert results[3].clean


def test_merges_leave_no_objects_in_the_repository(repo: Path) -> None:
    commit_on(repo, "f1", {"shared.txt": "one\nf1\nthree\n", "a.txt": "f1\n"}, start="main")
    commit_on(repo, "f2", {"shared.txt": "one\nf2\nthree\n", "b.txt": "f2\n"}, start="main")
    before = loose_objects(repo)
    assert merge_tree_batch(repo, [("f1", "f2"), ("f1", "main")])[0].conflict
    assert loose_objects(repo) == before
    merge_tree_batch(repo, [("f1", "f2")], keep_objects=True)
    assert loose_objects(repo) > before  # the default really does spare the repository


def test_an_empty_batch_starts_no_process_and_bad_input_is_refused(repo: Path) -> None:
    assert merge_tree_batch(repo / "does-not-exist", []) == []
    with pytest.raises(ValueError):
        merge_tree_batch(repo, [("main", "a b")])


# ----------------------------------------------------------------------------------------- the parser


def _record(status: str, tree: str, paths: list[str], messages: list[tuple[list[str], str, str]]) -> str:
    out = f"{status}\0{tree}\0" + "".join(f"{p}\0" for p in paths) + "\0"
    for names, kind, text in messages:
        out += f"{len(names)}\0" + "".join(f"{n}\0" for n in names) + f"{kind}\0{text}\0"
    return out + "\0"


TREE = "a" * 40


def test_parse_reads_clean_and_conflicted_records() -> None:
    out = _record("1", TREE, [], [(["x"], "Auto-merging", "Auto-merging x\n")]) + _record(
        "0",
        TREE,
        ["d/x y.txt", "0"],
        [
            (["d/x y.txt"], "CONFLICT (contents)", "CONFLICT (content): Merge conflict in d/x y.txt\n"),
            (["0", "renamed"], "CONFLICT (rename/delete)", "CONFLICT (rename/delete): ...\n"),
        ],
    )
    first, second = mergetree._parse(out, [("a", "b"), ("c", "d")])
    assert first == MergeResult(
        "a", "b", True, (), TREE, (MergeMessage(("x",), "Auto-merging", "Auto-merging x"),)
    )
    assert second.paths == ("d/x y.txt", "0") and second.conflict
    assert second.kinds() == {"d/x y.txt": ("contents",), "0": ("rename/delete",)}


@pytest.mark.parametrize("cut", [0, 1, 2, 5, 41, 43, 45, 50, 60, 72, 73, 74])
def test_parse_keeps_only_complete_records_of_a_truncated_output(cut: int) -> None:
    whole = _record("1", TREE, [], []) + _record("0", TREE, ["f"], [(["f"], "CONFLICT (contents)", "m\n")])
    first_len = len(_record("1", TREE, [], []))
    got = mergetree._parse(whole[: first_len + cut], [("a", "b"), ("c", "d")])
    assert len(got) == (2 if first_len + cut >= len(whole) else 1)
    assert len(mergetree._parse(whole, [("a", "b"), ("c", "d")])) == 2


def test_parse_rejects_what_it_does_not_understand() -> None:
    with pytest.raises(MergeTreeFormatError):
        mergetree._parse("merged\0" + TREE + "\0\0", [("a", "b")])


# ------------------------------------------------------------------------------------- the pure domain


def test_plan_checks_covers_every_pair_and_each_branch_vs_integration() -> None:
    manifest = load_manifest(EXAMPLE, "phase-1.yaml").manifest
    plans = {p.repo: p for p in plan_checks(manifest)}
    assert list(plans) == ["root", "infra", "backend", "frontend"]
    backend = plans["backend"]
    assert [lane.label for lane in backend.lanes] == ["backend", "deploy", "docs"]
    assert backend.integration == Lane(INTEGRATION, "phase-1-integration")
    assert [(c.a.label, c.b.label) for c in backend.checks] == [
        ("backend", "deploy"),
        ("backend", "docs"),
        ("deploy", "docs"),
        ("backend", INTEGRATION),
        ("deploy", INTEGRATION),
        ("docs", INTEGRATION),
    ]
    assert [(c.a.label, c.b.label) for c in plans["root"].checks] == [("docs", INTEGRATION)]
    n = len(backend.lanes)
    assert len(backend.checks) == n * (n - 1) // 2 + n


def _checks() -> RepoChecks:
    a, b, c, i = Lane("a", "fa"), Lane("b", "fb"), Lane("c", "fc"), Lane(INTEGRATION, "int")
    checks = (Check(a, b), Check(a, c), Check(b, c), Check(a, i), Check(b, i), Check(c, i))
    return RepoChecks("app", ".", (a, b, c), i, checks)


def test_report_counts_conflicts_and_lists_unknown_refs_apart() -> None:
    refs = {"fa": "refs/heads/fa", "fb": "refs/remotes/origin/fb", "fc": None, "int": "refs/heads/int"}
    results = [
        MergeResult("refs/heads/fa", "refs/remotes/origin/fb", False, ("x.py",)),
        MergeResult("refs/heads/fa", "refs/heads/int", True),
        MergeResult("refs/heads/fb", "refs/heads/int", True),
    ]
    report = build_report("p", [_checks()], {"app": refs}, {"app": results})
    assert report.any_conflict and report.conflicts == 1 and report.pairs == 3
    data = report.to_json()
    assert data["phase"] == "p" and data["conflicts"] == 1
    [repo] = data["repositories"]
    assert repo["repo"] == "app" and repo["branches"] == ["fa", "fb", "fc"]
    assert repo["unknown_refs"] == ["fc"]
    assert repo["refs"]["fb"] == "refs/remotes/origin/fb"
    assert [(p["a"], p["b"], p["conflict"], p["paths"]) for p in repo["pairs"]] == [
        ("fa", "fb", True, ["x.py"]),
        ("fa", "int", False, []),
        ("fb", "int", False, []),
    ]
    problems = report.problems()
    assert [p.code for p in problems] == ["unknown-ref", "conflict"]
    assert problems[0].message == "branch fc does not exist in repo app (run `coditect streams setup`)"
    assert "x.py" in problems[1].message
    assert report.repositories[0].outcome("c", "a") is None
    assert report.repositories[0].outcome("b", "a") is not None


def test_report_with_only_unknown_refs_has_no_conflict() -> None:
    refs = {"fa": None, "fb": None, "fc": None, "int": None}
    report = build_report("p", [_checks()], {"app": refs}, {"app": []})
    assert not report.any_conflict and report.pairs == 0
    assert len(report.unknown_refs) == 4


def test_report_refuses_results_that_do_not_match_the_checks() -> None:
    refs = {"fa": "fa", "fb": "fb", "fc": "fc", "int": "int"}
    with pytest.raises(ValueError, match="6 merge"):
        build_report("p", [_checks()], {"app": refs}, {"app": [MergeResult("fa", "fb", True)]})


# ------------------------------------------------------------------------------------------ the service


def manifest_text(phase: str, streams: int) -> str:
    blocks = "".join(
        textwrap.dedent(f"""\
          - id: s{i}
            terminal: {i}
            name: Stream {i}
            agent: agent-{i}
            work:
              - repo: app
                topic: work
                owns: [s{i}/]
        """)
        for i in range(1, streams + 1)
    )
    return textwrap.dedent(f"""\
        version: 1
        phase: {phase}
        schedule: {{start: 2027-01-04, days: 10}}
        repositories:
          - {{id: app, path: .}}
        streams:
        """) + textwrap.indent(blocks, "  ")


def make_project(root: Path, streams: int, phase: str = "p1") -> Path:
    """A one-repository project: ``streams`` streams, each owning s<i>/, every branch set up."""
    files = {f"s{i}/file.txt": f"stream {i}\n" for i in range(1, streams + 1)}
    files["shared.txt"] = "one\ntwo\nthree\n"
    files[f"workstreams/{phase}.yaml"] = manifest_text(phase, streams)
    init_repo(root, files)
    git(root, "branch", "develop", "main")
    git(root, "branch", f"{phase}-integration", "develop")
    for i in range(1, streams + 1):
        git(root, "branch", f"feature/{phase}/s{i}/work", f"{phase}-integration")
    return root


def test_predict_finds_a_planted_conflict_in_one_merge_tree_process(
    tmp_path: Path, isolated_git: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "proj", 3)
    commit_on(root, "feature/p1/s1/work", {"shared.txt": "one\ns1\nthree\n"})
    commit_on(root, "feature/p1/s3/work", {"shared.txt": "one\ns3\nthree\n"})
    commit_on(root, "feature/p1/s2/work", {"s2/file.txt": "more\n"})
    merges: list[str] = []
    real_run = mergetree.proc.run

    def spy(argv: list[str], **kwargs: object) -> object:
        if "merge-tree" in argv:
            merges.append(str(kwargs.get("input")))
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mergetree.proc, "run", spy)
    report = predict(Project(root), None)
    # One merge-tree process, fed only the pair whose commits touch a common path (the history rules out
    # the other five of the 3 pairs + 3 against integration).
    assert len(merges) == 1 and merges[0].count("\n") == 1
    [repo] = report.repositories
    assert [(o.a.label, o.b.label) for o in repo.conflicts] == [("s1", "s3")]
    assert repo.conflicts[0].paths == ("shared.txt",)
    assert report.conflicts == 1 and not report.unknown_refs


def test_predict_reports_a_missing_branch_as_unknown_not_as_a_conflict(
    tmp_path: Path, isolated_git: Path
) -> None:
    root = make_project(tmp_path / "proj", 3)
    git(root, "branch", "-D", "feature/p1/s2/work")
    report = predict(Project(root), "p1")
    assert not report.any_conflict
    [(repo_id, unknown)] = report.unknown_refs
    assert (repo_id, unknown.lane.label) == ("app", "s2")
    assert unknown.message == (
        "branch feature/p1/s2/work does not exist in repo app (run `coditect streams setup`)"
    )
    assert {(o.a.label, o.b.label) for o in report.repositories[0].outcomes} == {
        ("s1", "s3"),
        ("s1", INTEGRATION),
        ("s3", INTEGRATION),
    }


def test_predict_falls_back_to_origin_and_can_prefer_it(tmp_path: Path, isolated_git: Path) -> None:
    root = make_project(tmp_path / "proj", 2)
    local = commit_on(root, "feature/p1/s1/work", {"shared.txt": "one\nlocal\nthree\n"})
    git(root, "update-ref", "refs/remotes/origin/feature/p1/s1/work", "p1-integration")
    git(root, "update-ref", "refs/remotes/origin/feature/p1/s2/work", "p1-integration")
    commit_on(root, "feature/p1/s2/work", {"shared.txt": "one\nother\nthree\n"})
    git(root, "update-ref", "refs/remotes/origin/feature/p1/s2/work", "feature/p1/s2/work")
    git(root, "branch", "-D", "feature/p1/s2/work")
    report = predict(Project(root), None)
    refs = report.repositories[0].refs
    assert refs["feature/p1/s1/work"] == "refs/heads/feature/p1/s1/work"
    assert refs["feature/p1/s2/work"] == "refs/remotes/origin/feature/p1/s2/work"
    assert report.conflicts == 1 and not report.unknown_refs
    assert git(root, "rev-parse", "feature/p1/s1/work") == local
    remote = predict(Project(root), None, refs="remote")
    assert remote.repositories[0].refs["feature/p1/s1/work"] == "refs/remotes/origin/feature/p1/s1/work"
    assert remote.conflicts == 0  # origin's s1 has not diverged


@pytest.mark.parametrize(
    ("a_files", "b_files"),
    [
        ({"x.txt": "a\n"}, {"x.txt": "b\n"}),  # same file, different content
        ({"d": "file\n"}, {"d/f.txt": "dir\n"}),  # file on one side, directory on the other
        ({"shared.txt": None}, {"shared.txt": "changed\n"}),  # modify/delete
        ({"x.txt": "same\n"}, {"x.txt": "same\n"}),  # identical change: clean
        ({"a/one.txt": "1\n"}, {"b/two.txt": "2\n"}),  # disjoint
    ],
    ids=["content", "file-directory", "modify-delete", "identical", "disjoint"],
)
def test_the_history_filter_never_changes_a_verdict(
    tmp_path: Path, isolated_git: Path, a_files: dict[str, str | None], b_files: dict[str, str | None]
) -> None:
    """Pairs the history rules out are exactly pairs merge-tree finds clean: compare with merging them all."""
    from coditect_cli.adapters.mergetree import merge_tree_batch
    from coditect_cli.domain.conflicts import plan_checks
    from coditect_cli.services.conflicts import predict_repo
    from coditect_cli.services.manifest import load_valid

    root = make_project(tmp_path / "proj", 2)
    for branch, files in (("feature/p1/s1/work", a_files), ("feature/p1/s2/work", b_files)):
        git(root, "checkout", "-q", branch)
        for name, content in files.items():
            if content is None:
                (root / name).unlink()
            else:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(content)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"edit on {branch}")
        git(root, "checkout", "-q", "main")
    manifest = load_valid(Project(root), None).loaded.manifest
    (checks,) = plan_checks(manifest)
    _refs, filtered = predict_repo(root, checks)
    everything = merge_tree_batch(root, [(r.ours, r.theirs) for r in filtered])
    assert [(r.ours, r.theirs, r.conflict, r.paths) for r in filtered] == [
        (r.ours, r.theirs, r.conflict, r.paths) for r in everything
    ]
