"""The manifest commands end to end: init, plan (changes nothing), --verbose, NO_COLOR, schema, startup."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLE_MANIFEST, REPO_ROOT, call_main, git_refs, run_cli

from coditect_cli.domain.loader import load_manifest
from coditect_cli.domain.validate import validate
from coditect_cli.services.manifest import schema_text

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# SGR parameters that select a colour (foreground, background, bright, 256/true colour).
COLOUR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")

REPOS = (
    ".",
    "submodules/cloud/coditect-cloud-infra",
    "submodules/cloud/coditect-cloud-backend",
    "submodules/cloud/coditect-cloud-frontend",
)


# -- init --------------------------------------------------------------------------------------------------


def test_init_writes_a_manifest_that_loads(
    tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = call_main(["--root", str(tmp_path), "init", "phase-2"], capsys)
    assert code == 0
    target = tmp_path / "workstreams" / "phase-2.yaml"
    assert target.is_file()
    assert "phase-2.yaml" in out
    loaded = load_manifest(target)
    assert loaded.manifest.phase == "phase-2"
    report = validate(loaded, tmp_path, None)
    assert report.ok, [p.render() for p in report.problems]
    # The editor schema is written beside it.
    assert (tmp_path / "workstreams" / "schema.json").read_text(encoding="utf-8") == schema_text()


def test_init_refuses_to_overwrite(
    tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call_main(["--root", str(tmp_path), "init", "phase-2"], capsys).code == 0
    target = tmp_path / "workstreams" / "phase-2.yaml"
    target.write_text(target.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    before = (target.read_bytes(), target.stat().st_mtime_ns)
    code, out, err = call_main(["--root", str(tmp_path), "init", "phase-2"], capsys)
    assert code == 2
    assert "already exists" in out + err
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before


def test_init_refuses_a_yml_twin(
    tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "workstreams").mkdir()
    (tmp_path / "workstreams" / "phase-2.yml").write_text("keep: me\n", encoding="utf-8")
    assert call_main(["--root", str(tmp_path), "init", "phase-2"], capsys).code == 2
    assert not (tmp_path / "workstreams" / "phase-2.yaml").exists()


@pytest.mark.parametrize("phase", ["bad name", "../escape", "-x", "a;b"])
def test_init_rejects_bad_phase_names(
    phase: str, tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call_main(["--root", str(tmp_path), "init", "--", phase], capsys)
    assert code == 2, out + err
    assert not list(tmp_path.rglob("*.yaml"))


# -- plan --------------------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, str]:
    state = {}
    for rel in REPOS:
        repo = root / rel
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--ignore-submodules=none"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        exclude = repo / ".git" / "info" / "exclude"
        state[rel] = (
            git_refs(repo)
            + "\n--status--\n"
            + status
            + "\n--head--\n"
            + (
                subprocess.run(
                    ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
                ).stdout
            )
            + (exclude.read_text() if exclude.is_file() else "")
        )
    return state


def test_plan_lists_every_step_and_changes_nothing(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(shared_sandbox)
    code, out, _ = call_main(["--root", str(shared_sandbox), "plan", "phase-1", "--json"], capsys)
    assert code == 0
    steps = json.loads(out)["data"]["steps"]
    assert _snapshot(shared_sandbox) == before, "plan must not change any repository"
    assert not (shared_sandbox / ".coditect").exists()

    manifest = load_manifest(shared_sandbox / "workstreams" / "phase-1.yaml").manifest
    repo_ids = [r.id for r in manifest.repositories]
    by_kind: dict[str, list[dict[str, object]]] = {}
    for step in steps:
        by_kind.setdefault(str(step["kind"]), []).append(step)

    created = {(s["repo"], s["branch"]): s for s in by_kind["CreateBranch"]}
    # develop exists everywhere in the sandbox; when planned it starts from the base branch.
    for rid in repo_ids:
        if (rid, "develop") in created:
            assert created[(rid, "develop")]["start_point"] in {"main", "origin/main"}
        assert created[(rid, "phase-1-integration")]["start_point"] == "develop"

    pairs = manifest.pairs()
    assert len(pairs) == 9
    for pair in pairs:
        step = created[(pair.repo.id, pair.branch)]
        assert step["start_point"] == "phase-1-integration"
    feature = {k for k in created if k[1].startswith("feature/")}
    assert feature == {(p.repo.id, p.branch) for p in pairs}

    worktrees = {(s["stream"], s["repo"]): s for s in by_kind["AddWorktree"]}
    assert set(worktrees) == {(p.stream.id, p.repo.id) for p in pairs}
    for (stream, repo), step in worktrees.items():
        assert (
            Path(str(step["path"])) == shared_sandbox / ".coditect" / "worktrees" / "phase-1" / stream / repo
        )

    assert sorted(s["repo"] for s in by_kind["WriteCodeowners"]) == sorted(repo_ids)
    assert all(s["branch"] == "phase-1-integration" for s in by_kind["WriteCodeowners"])

    pushes = {s["repo"]: s["branches"] for s in by_kind["Push"]}
    assert sorted(pushes) == sorted(repo_ids)
    for rid, branches in pushes.items():
        assert "phase-1-integration" in branches
        assert {b for b in branches if b.startswith("feature/")} == {
            p.branch for p in pairs if p.repo.id == rid
        }

    # Steps of one repository come together, integration before the features started from it.
    order = [(s["repo"], s["kind"], s.get("branch")) for s in steps]
    for rid in repo_ids:
        mine = [o for o in order if o[0] == rid]
        assert mine[0][1:] == ("CreateBranch", "phase-1-integration")
        assert mine[-1][1] == "Push"


def test_plan_human_output(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(shared_sandbox)
    code, out, _ = call_main(["--root", str(shared_sandbox), "plan", "phase-1"], capsys)
    assert code == 0
    assert "Plan for phase-1" in out
    assert "create branch phase-1-integration from develop" in out
    assert "AddWorktree" in out and "Push" in out
    assert _snapshot(shared_sandbox) == before


def test_plan_refuses_an_invalid_manifest(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_MANIFEST.read_text(encoding="utf-8").replace("tag: v0.1.0", "tag: v0..1")
    target = shared_sandbox / "workstreams" / "bad-plan.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        code, out, err = call_main(["--root", str(shared_sandbox), "plan", "bad-plan"], capsys)
    finally:
        target.unlink()
    assert code == 2
    assert "bad-plan.yaml:" in out + err and "[bad-tag-name]" in out + err


def test_verbose_logs_git_commands(shared_sandbox: Path, isolated_git: Path) -> None:
    code, out, err = run_cli(["--verbose", "--root", str(shared_sandbox), "plan", "phase-1"])
    assert code == 0, err
    logged = [line for line in err.splitlines() if line.startswith("$ git ")]
    assert any("ls-files" in line for line in logged), err
    # Branch tips are read from the repositories' files (adapters/refstore.py): no for-each-ref to log.
    assert not any("for-each-ref" in line for line in logged), err
    assert "Plan for phase-1" in out
    # Without --verbose, nothing is logged.
    quiet = run_cli(["--root", str(shared_sandbox), "plan", "phase-1"])
    assert "$ git" not in quiet.stderr


# -- NO_COLOR ----------------------------------------------------------------------------------------------


def test_no_color_through_a_pipe(shared_sandbox: Path, isolated_git: Path) -> None:
    for args in (["validate", "phase-1"], ["plan", "phase-1"], ["validate", "nosuchphase"]):
        result = run_cli(["--root", str(shared_sandbox), *args], env={"NO_COLOR": "1"})
        assert not ANSI.search(result.output), result.output


def _run_in_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run coditect with stdout and stderr on a pseudo-terminal; return everything it wrote."""
    leader, follower = pty.openpty()
    full_env = {**os.environ, **env, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color"}
    full_env.pop("FORCE_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "coditect_cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=full_env,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    proc.wait(timeout=60)
    return b"".join(chunks).decode("utf-8", "replace")


def test_no_color_in_a_terminal_has_no_colours(shared_sandbox: Path, isolated_git: Path) -> None:
    args = ["--root", str(shared_sandbox), "validate", "phase-1"]
    coloured = _run_in_terminal(args, {})
    assert COLOUR_SGR.search(coloured), "sanity: in a terminal, output is coloured by default"
    plain = _run_in_terminal(args, {"NO_COLOR": "1"})
    assert "is valid" in plain
    assert not COLOUR_SGR.search(plain), plain


def test_no_color_in_a_terminal_has_no_escapes_at_all(shared_sandbox: Path, isolated_git: Path) -> None:
    plain = _run_in_terminal(["--root", str(shared_sandbox), "validate", "phase-1"], {"NO_COLOR": "1"})
    assert not ANSI.search(plain), repr(plain[:300])


# -- schema and shipped files ------------------------------------------------------------------------------


def test_schema_file_is_not_stale() -> None:
    published = (REPO_ROOT / "workstreams" / "schema.json").read_text(encoding="utf-8")
    assert schema_text() == published, (
        "workstreams/schema.json is out of date with the manifest model: run `coditect schema` "
        "(and copy it to coditect_cli/templates/schema.json)"
    )


def test_shipped_templates_match_the_workstreams_folder() -> None:
    templates = REPO_ROOT / "coditect_cli" / "templates"
    assert (templates / "schema.json").read_text(encoding="utf-8") == schema_text(), (
        "coditect_cli/templates/schema.json is stale: run `coditect schema -o coditect_cli/templates/schema.json`"
    )
    assert (templates / "phase-1.yaml").read_text(encoding="utf-8") == EXAMPLE_MANIFEST.read_text(
        encoding="utf-8"
    ), "coditect_cli/templates/phase-1.yaml (used by `coditect demo`) differs from workstreams/phase-1.yaml"


def test_schema_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["schema", "--stdout"], capsys)
    assert code == 0
    assert out == schema_text()
    assert json.loads(out)["title"] == "coditect workstream manifest"


# -- startup and usage -------------------------------------------------------------------------------------

_STARTUP = """
import json, sys
from coditect_cli.cli.app import main
for args in (["--help"], ["agent", "--help"], ["agent", "run", "--help"], ["--root", sys.argv[1], "validate", "phase-1"]):
    try:
        main(args)
    except SystemExit as exc:
        codes = getattr(main, "codes", [])
        codes.append(exc.code)
        main.codes = codes
heavy = ("anthropic", "github", "git", "libtmux")
print(json.dumps({"codes": main.codes, "loaded": {m: m in sys.modules for m in heavy}}))
"""


def test_startup_does_not_import_heavy_clients(shared_sandbox: Path, isolated_git: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _STARTUP, str(shared_sandbox)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0, 0]
    assert report["loaded"]["anthropic"] is False, "validate must not import the Anthropic SDK"
    assert report["loaded"]["github"] is False, "validate must not import PyGithub"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["--version"], capsys)
    assert code == 0
    assert out.startswith("coditect ")


@pytest.mark.parametrize("args", [["validate", "--bogus"], ["bogus"], [], ["validate", "--root"], ["--root"]])
def test_usage_errors_exit_2(args: list[str], isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad command lines are usage errors (exit 2), never 'internal error' (typer vendors its own click)."""
    code, out, err = call_main(args, capsys)
    assert "internal error" not in out + err
    assert code == 2


def test_global_options_after_the_command(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call_main(["validate", "phase-1", "--root", str(shared_sandbox)], capsys)
    assert code == 0, out + err
    assert "is valid" in out
