"""Semantic validation: each error class planted in a copy of the example, inside a real sandbox.

Every test writes an edited copy of workstreams/phase-1.yaml next to the original as ``bad.yaml``, runs
``coditect --root <sandbox> validate bad`` and checks the exit code, the message, and ``bad.yaml:<line>``
with the line of the node that was edited (found in the edited text, never hard-coded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import EXAMPLE_TEXT, CliResult, call_main, line_of, replace_once

from coditect_cli.domain.loader import load_manifest_text
from coditect_cli.domain.validate import validate

Plant = Callable[[str], CliResult]


@pytest.fixture
def plant(shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Plant]:
    """Write a manifest text as workstreams/bad.yaml in the shared sandbox and validate it."""
    target = shared_sandbox / "workstreams" / "bad.yaml"

    def run(text: str) -> CliResult:
        target.write_text(text, encoding="utf-8")
        return call_main(["--root", str(shared_sandbox), "validate", "bad"], capsys)

    yield run
    target.unlink(missing_ok=True)


def assert_problem(result: CliResult, line: int, *fragments: str, code: int = 2) -> str:
    """The one output line at ``bad.yaml:<line>`` holding every fragment; the exit code is ``code``."""
    assert result.code == code, result.output
    candidates = [
        text
        for text in result.output.splitlines()
        if f"bad.yaml:{line}:" in text and all(f in text for f in fragments)
    ]
    assert candidates, f"no problem at bad.yaml:{line} with {fragments} in:\n{result.output}"
    return candidates[0]


# -- the unmodified example ------------------------------------------------------------------------------


def test_example_is_valid_and_shared_paths_are_not_overlap(plant: Plant) -> None:
    result = plant(EXAMPLE_TEXT)
    assert result.code == 0, result.output
    assert "is valid" in result.output
    assert "ownership-overlap" not in result.output
    assert "error:" not in result.output


def test_unowned_tracked_files_are_a_warning(plant: Plant) -> None:
    result = plant(EXAMPLE_TEXT)
    assert result.code == 0
    line = assert_problem(
        result,
        line_of(EXAMPLE_TEXT, "path: submodules/cloud/coditect-cloud-backend"),
        "warning:",
        "owned by no stream",
        "alembic.ini",
        code=0,
    )
    assert "[unowned-files]" in line


# -- reading errors --------------------------------------------------------------------------------------


def test_yaml_syntax_error(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "    name: Infrastructure\n", "    name: Infra: structure\n")
    assert_problem(plant(text), line_of(text, "name: Infra: structure"), "YAML syntax error", "[yaml-syntax]")


def test_wrong_type(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "    terminal: 4\n", '    terminal: "four"\n')
    assert_problem(plant(text), line_of(text, 'terminal: "four"'), "streams[3].terminal", "'four'")


# -- identities and references ---------------------------------------------------------------------------


def test_duplicate_stream_id(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "  - id: frontend\n    terminal: 3", "  - id: backend\n    terminal: 3")
    first = line_of(text, "  - id: backend\n    terminal: 2")
    line = assert_problem(
        plant(text), line_of(text, "  - id: backend\n    terminal: 3"), "duplicate stream id 'backend'"
    )
    assert f"first defined at line {first}" in line


def test_duplicate_task_id(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "{id: frontend-setup,", "{id: backend-auth,")
    assert_problem(
        plant(text),
        line_of(text, "{id: backend-auth,", after="  - id: frontend\n    terminal"),
        "duplicate task id 'backend-auth'",
    )


def test_unknown_repository_in_work(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "      - repo: infra\n        topic: gcp-foundation",
        "      - repo: nosuch\n        topic: gcp-foundation",
    )
    assert_problem(
        plant(text), line_of(text, "- repo: nosuch"), "unknown repository 'nosuch'", "[unknown-repository]"
    )


def test_unknown_stream_in_checkpoint(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "streams: [infra, backend]", "streams: [infra, nosuch]")
    assert_problem(
        plant(text), line_of(text, "streams: [infra, nosuch]"), "unknown stream 'nosuch'", "[unknown-stream]"
    )


def test_unknown_task_in_depends_on(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "depends_on: [infra-network]", "depends_on: [no-such-task]")
    assert_problem(
        plant(text),
        line_of(text, "depends_on: [no-such-task]"),
        "unknown task 'no-such-task'",
        "[unknown-task]",
    )


# -- repository paths ------------------------------------------------------------------------------------

_INFRA_PATH = "path: submodules/cloud/coditect-cloud-infra"


@pytest.mark.parametrize(
    ("path", "fragment", "code"),
    [
        ("/etc", "is absolute", "repo-path-absolute"),
        ("~/elsewhere", "is absolute", "repo-path-absolute"),
        ("../x", "escapes the project root", "repo-path-escapes"),
        ("submodules/../../x", "escapes the project root", "repo-path-escapes"),
        ("docs", "docs is not a git repository", "not-a-repository"),
        ("no/such/dir", "does not exist", "repo-not-found"),
    ],
)
def test_bad_repository_path(plant: Plant, path: str, fragment: str, code: str) -> None:
    text = replace_once(EXAMPLE_TEXT, _INFRA_PATH, f"path: {path}")
    assert_problem(plant(text), line_of(text, f"path: {path}\n"), "repository", fragment, f"[{code}]")


def test_duplicate_repository_path(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, _INFRA_PATH, "path: submodules/cloud/./coditect-cloud-backend")
    # Reported at the second repository with that path (backend's, after infra's).
    assert_problem(
        plant(text),
        line_of(text, "path: submodules/cloud/coditect-cloud-backend"),
        "repository 'backend' has the same path as repository 'infra'",
        "[duplicate-repo-path]",
    )


# -- owned paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("../secrets/", "escapes its repository"),
        ("/etc/", "is absolute"),
        ("src/../../x", "escapes its repository"),
        ("'!negated/'", "negation"),
        ("'[ab]/'", "character ranges"),
    ],
)
def test_bad_owned_path(plant: Plant, pattern: str, fragment: str) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "owns: [opentofu/, terraform/, kubernetes/base/]",
        f"owns: [{pattern}, terraform/, kubernetes/base/]",
    )
    assert_problem(
        plant(text), line_of(text, f"owns: [{pattern},"), "stream 'infra'", fragment, "[bad-owned-path]"
    )


# -- branch and tag names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "fragments"),
    [
        ("gcp..foundation", ("feature/phase-1/infra/gcp..foundation", "'..'", "[bad-branch-name]")),
        ("gcp.lock", ("feature/phase-1/infra/gcp.lock", ".lock", "[bad-branch-name]")),
        ("gcp/.hidden", ("starts with '.'", "[bad-branch-name]")),
        # Characters outside the topic pattern are refused when the manifest is read.
        ("gcp:x", ("'gcp:x'", "not allowed")),
        ("'gcp x'", ("'gcp x'", "not allowed")),
    ],
)
def test_bad_branch_name_from_topic(plant: Plant, topic: str, fragments: tuple[str, ...]) -> None:
    text = replace_once(EXAMPLE_TEXT, "topic: gcp-foundation", f"topic: {topic}")
    assert_problem(plant(text), line_of(text, f"topic: {topic}"), *fragments)


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("develop", "  develop: develop\n", "  develop: 'dev elop'\n"),
        ("base", "  base: main\n", "  base: main.lock\n"),
        ("integration", '  integration: "{phase}-integration"\n', '  integration: "{phase}..integration"\n'),
    ],
)
def test_bad_configured_branch(plant: Plant, key: str, old: str, new: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    assert_problem(
        plant(text), line_of(text, new.strip()), "is not a valid git branch name", "[bad-branch-name]"
    )


def test_branch_directory_file_clash(plant: Plant) -> None:
    # A develop branch named like a directory of the infra stream's feature branch.
    text = replace_once(EXAMPLE_TEXT, "  develop: develop\n", "  develop: feature/phase-1/infra\n")
    assert_problem(
        plant(text),
        line_of(text, "topic: gcp-foundation"),
        "cannot both exist",
        "'feature/phase-1/infra'",
        "[branch-clash]",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('integration: "{phase}-integration"', 'integration: "{phase}-integration}"'),
        ('feature: "feature/{phase}/{stream}/{topic}"', 'feature: "feature/{phase}/{stream}/{topic}{"'),
    ],
)
def test_stray_brace_in_branch_template(plant: Plant, old: str, new: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    assert_problem(plant(text), line_of(text, new))


def test_bad_tag(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "tag: v0.1.0", "tag: v0..1")
    assert_problem(plant(text), line_of(text, "tag: v0..1"), "tag 'v0..1'", "[bad-tag-name]")


def test_tag_ending_in_lock(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "tag: v0.1.0", "tag: v0.1.lock")
    assert_problem(plant(text), line_of(text, "tag: v0.1.lock"), "not a valid git tag name", ".lock")


# -- ownership -------------------------------------------------------------------------------------------


def test_ownership_overlap_between_streams(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "owns: [Dockerfile,", "owns: [src/api/, Dockerfile,")
    result = plant(text)
    line = assert_problem(
        result,
        line_of(text, "owns: [src/api/, Dockerfile,"),
        "'src/' of stream 'backend' overlaps 'src/api/' of stream 'deploy'",
        "[ownership-overlap]",
    )
    assert "shared" in line
    # The tracked files under src/api/ are reported too, at the repository.
    assert_problem(
        result,
        line_of(EXAMPLE_TEXT, "path: submodules/cloud/coditect-cloud-backend"),
        "owned by several streams (backend, deploy)",
        "src/api/v1/auth.py",
        "[ownership-overlap-files]",
    )


def test_overlap_on_tracked_files(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "        topic: backend-api-docs\n        owns: [docs/,",
        '        topic: backend-api-docs\n        owns: ["**/*.py", docs/,',
    )
    assert_problem(
        plant(text),
        line_of(text, "path: submodules/cloud/coditect-cloud-backend"),
        "tracked file(s) are owned by several streams (backend, docs)",
        "src/__init__.py",
        "[ownership-overlap-files]",
    )


def test_stream_overlapping_a_shared_path_it_is_not_part_of(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "owns: [Dockerfile,", "owns: [contracts/, Dockerfile,")
    assert_problem(
        plant(text),
        line_of(text, "owns: [contracts/, Dockerfile,"),
        "overlaps the shared path 'contracts/'",
        "[ownership-overlap]",
    )


def test_glob_overlap_is_seen_without_tracked_files() -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "        topic: backend-api-docs\n        owns: [docs/,",
        '        topic: backend-api-docs\n        owns: ["**/*.py", docs/,',
    )
    report = validate(load_manifest_text(text, "bad.yaml"), Path("/nonexistent"), None)
    assert any(p.code == "ownership-overlap" for p in report.errors)


def test_duplicate_stream_id_with_overlap_does_not_crash(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "  - id: docs\n    terminal: 5", "  - id: frontend\n    terminal: 5")
    text = replace_once(text, "owns: [Dockerfile,", "owns: [docs/, Dockerfile,")
    assert_problem(
        plant(text), line_of(text, "  - id: frontend\n    terminal: 5"), "duplicate stream id 'frontend'"
    )


# -- dependencies and schedule ---------------------------------------------------------------------------


def test_stream_dependency_cycle(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "    agent: cloud-architect\n",
        "    agent: cloud-architect\n    depends_on: [backend]\n",
    )
    result = plant(text)
    # Reported at the depends_on of the cycle's first stream.
    line = next(ln for ln in result.output.splitlines() if "[cycle]" in ln)
    chain = re.search(r"in a cycle: (.*) \[cycle\]", line)
    assert chain is not None
    nodes = chain.group(1).split(" → ")
    assert nodes[0] == nodes[-1] and set(nodes) == {"infra", "backend"}
    stream_start = text.index(f"  - id: {nodes[0]}\n", text.index("\nstreams:\n"))
    assert_problem(
        result,
        line_of(text, "depends_on:", start=stream_start),
        "streams depend on each other in a cycle",
        " → ".join(nodes),
    )
    assert "backend → infra → backend" in line


def test_stream_depends_on_itself(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "    depends_on: [infra]\n", "    depends_on: [infra, backend]\n")
    assert_problem(plant(text), line_of(text, "depends_on: [infra, backend]"), "'backend' depends on itself")


def test_task_cycle(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        'title: "VPC, networking, Cloud SQL setup"}',
        'title: "VPC, networking, Cloud SQL setup", depends_on: [infra-secrets]}',
    )
    result = plant(text)
    line = next(ln for ln in result.output.splitlines() if "[cycle]" in ln)
    chain = re.search(r"in a cycle: (.*) \[cycle\]", line)
    assert chain is not None
    nodes = chain.group(1).split(" → ")
    assert nodes[0] == nodes[-1]
    assert set(nodes) == {"infra-network", "infra-runtime", "infra-secrets"}
    assert_problem(result, line_of(text, f"{{id: {nodes[0]},"), "tasks depend on each other in a cycle")


def test_checkpoint_after_the_schedule(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "    day: 12\n", "    day: 13\n")
    assert_problem(
        plant(text),
        line_of(text, "day: 13"),
        "checkpoint 4 is on day 13",
        "10 days + 2 of slack",
        "[checkpoint-after-schedule]",
    )


def test_deliverable_after_the_schedule(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "{id: docs-release, days: 9-10,", "{id: docs-release, days: 9-14,")
    assert_problem(plant(text), line_of(text, "{id: docs-release"), "task 'docs-release' runs to day 14")


def test_every_error_is_reported_at_once(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "    day: 12\n", "    day: 13\n")
    text = replace_once(text, "tag: v0.1.0", "tag: v0..1")
    text = replace_once(text, "streams: [infra, backend]", "streams: [infra, nosuch]")
    result = plant(text)
    assert result.code == 2
    assert "3 error(s)" in result.output
    found = [int(m) for m in re.findall(r"bad\.yaml:(\d+): error", result.output)]
    assert found == sorted(found), "problems are listed in file order"


# -- choosing the manifest -------------------------------------------------------------------------------


def test_no_phase_with_two_manifests(
    plant: Plant, shared_sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shared_sandbox / "workstreams" / "bad.yaml").write_text(EXAMPLE_TEXT, encoding="utf-8")
    result = call_main(["--root", str(shared_sandbox), "validate"], capsys)
    assert result.code == 2
    assert "several manifests" in result.output
    assert "bad" in result.output and "phase-1" in result.output


def test_no_manifest_at_all(tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "workstreams").mkdir()
    result = call_main(["--root", str(tmp_path), "validate"], capsys)
    assert result.code == 2
    assert "no manifest" in result.output
    assert "coditect init" in result.output


def test_unknown_phase(shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = call_main(["--root", str(shared_sandbox), "validate", "nosuchphase"], capsys)
    assert result.code == 2
    assert "no manifest for phase 'nosuchphase'" in result.output
    assert "phase-1" in result.output


# -- hostile layouts: worktrees, links, branch roles -----------------------------------------------------


@pytest.fixture
def link(shared_sandbox: Path) -> Iterator[Callable[[str, Path], None]]:
    """Create symlinks in the shared sandbox's root (removed again afterwards)."""
    made: list[Path] = []

    def make(name: str, target: Path) -> None:
        path = shared_sandbox / name
        path.symlink_to(target, target_is_directory=True)
        made.append(path)

    yield make
    for path in made:
        path.unlink()


def test_one_repository_under_two_ids_through_a_link(
    plant: Plant, link: Callable[[str, Path], None], shared_sandbox: Path
) -> None:
    link("backend-link", shared_sandbox / "submodules" / "cloud" / "coditect-cloud-backend")
    text = replace_once(
        EXAMPLE_TEXT,
        "  - id: frontend\n    path: submodules/cloud/coditect-cloud-frontend\n",
        "  - id: frontend\n    path: submodules/cloud/coditect-cloud-frontend\n"
        "  - id: backend2\n    path: backend-link\n",
    )
    line = assert_problem(plant(text), line_of(text, "path: backend-link"), "'backend'", "'backend2'")
    assert "[duplicate-repository]" in line


def test_worktrees_inside_a_repository_of_the_phase(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT, "\nschedule:", "\nworktrees: submodules/cloud/coditect-cloud-infra/wt\nschedule:"
    )
    line = assert_problem(plant(text), line_of(text, "worktrees:"), "inside repository 'infra'")
    assert "[worktrees-in-repository]" in line


def test_worktrees_inside_a_submodule_git_knows_but_the_manifest_does_not_list(plant: Plant) -> None:
    # The frontend submodule is no repository of this manifest: git's gitlinks still say it is one.
    text = replace_once(
        EXAMPLE_TEXT, "  - id: frontend\n    path: submodules/cloud/coditect-cloud-frontend\n", ""
    )
    text = replace_once(
        text, "\nschedule:", "\nworktrees: submodules/cloud/coditect-cloud-frontend/wt\nschedule:"
    )
    assert_problem(
        plant(text), line_of(text, "worktrees:"), "the submodule 'submodules/cloud/coditect-cloud-frontend'"
    )


def test_worktrees_leading_outside_through_a_link(
    plant: Plant, link: Callable[[str, Path], None], tmp_path: Path
) -> None:
    link("elsewhere", tmp_path)
    text = replace_once(EXAMPLE_TEXT, "\nschedule:", "\nworktrees: elsewhere/wt\nschedule:")
    line = assert_problem(plant(text), line_of(text, "worktrees:"), "leads outside the project")
    assert "[worktrees-outside]" in line


def test_worktrees_in_an_ordinary_folder_is_valid(plant: Plant) -> None:
    text = replace_once(EXAMPLE_TEXT, "\nschedule:", "\nworktrees: build/worktrees\nschedule:")
    result = plant(text)
    assert result.code == 0, result.output


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("  target: develop\n", '  target: "phase-1-integration"\n', "merge target"),
        ("  develop: develop\n", '  develop: "phase-1-integration"\n', "develop branch"),
    ],
    ids=["merge-target", "develop"],
)
def test_integration_branch_must_not_be_the_target(plant: Plant, old: str, new: str, what: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    line = assert_problem(plant(text), line_of(text, "integration:"), f"also the {what}")
    assert "[integration-is-target]" in line


def test_merge_keys_in_a_manifest_validate(plant: Plant) -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        '{name: manifests-valid, run: "python3 ci/check.py kubernetes"}',
        '{<<: {timeout: 600}, name: manifests-valid, run: "python3 ci/check.py kubernetes"}',
    )
    result = plant(text)
    assert result.code == 0, result.output


def test_a_manifest_named_otherwise_than_its_phase_is_found_by_either_name(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coditect_cli.project import Project

    target = shared_sandbox / "workstreams" / "renamed.yaml"
    original = shared_sandbox / "workstreams" / "phase-1.yaml"
    moved = shared_sandbox / "phase-1.yaml.moved"
    original.rename(moved)
    try:
        target.write_text(EXAMPLE_TEXT, encoding="utf-8")
        project = Project(shared_sandbox)
        assert project.manifest_path("phase-1") == target  # services look it up by its declared phase
        assert project.manifest_path("renamed") == target
        assert call_main(["--root", str(shared_sandbox), "validate", "phase-1"], capsys).code == 0
    finally:
        target.unlink(missing_ok=True)
        moved.rename(original)
