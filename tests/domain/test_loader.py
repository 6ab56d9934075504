"""load_manifest_text: every reading problem is a ManifestError whose problems point at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXAMPLE_TEXT, alias_bomb, line_of, replace_once

from coditect_cli.domain.loader import Loaded, load_manifest_text
from coditect_cli.errors import ExitCode, ManifestError, Problem

NAME = "m.yaml"


def load_error(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as exc:
        load_manifest_text(text, NAME)
    err = exc.value
    assert err.exit_code == ExitCode.USAGE
    assert err.problems, "a manifest error must carry at least one problem"
    for p in err.problems:
        assert p.location is not None
        assert p.location.file == NAME
    return err


def only(err: ManifestError, code: str | None = None) -> Problem:
    problems = [p for p in err.problems if code is None or p.code == code]
    assert len(problems) == 1, [p.render() for p in err.problems]
    return problems[0]


def test_example_loads() -> None:
    loaded = load_manifest_text(EXAMPLE_TEXT, NAME)
    assert isinstance(loaded, Loaded)
    m = loaded.manifest
    assert m.phase == "phase-1"
    assert [s.id for s in m.streams] == ["infra", "backend", "frontend", "deploy", "docs"]
    assert len(m.pairs()) == 9
    assert loaded.source.display == NAME
    # Lines are recorded for nodes: the frontend stream's id.
    assert loaded.source.locate("streams", 2, "id").line == line_of(
        EXAMPLE_TEXT, "- id: frontend", after="\nstreams:"
    )


def test_yaml_syntax_error_line() -> None:
    text = "version: 1\nphase: p\nstreams: [a, b\nschedule: {}\n"
    p = only(load_error(text))
    assert p.code == "yaml-syntax"
    assert "YAML syntax error" in p.message
    assert p.location is not None and p.location.line == 4


def test_yaml_syntax_error_in_example() -> None:
    text = replace_once(EXAMPLE_TEXT, "    name: Backend\n", "    name: Backend\n   bad: [\n")
    p = only(load_error(text))
    assert p.code == "yaml-syntax"
    assert p.location is not None
    bad = line_of(text, "   bad: [")
    assert bad <= p.location.line <= bad + 1


def test_duplicate_key_points_at_second() -> None:
    text = replace_once(EXAMPLE_TEXT, "    name: Frontend\n", "    name: Frontend\n    name: Again\n")
    p = only(load_error(text), "duplicate-key")
    assert "'name' appears twice" in p.message
    assert p.location is not None and p.location.line == line_of(text, "name: Again")


def test_duplicate_top_level_key() -> None:
    p = only(load_error("a: 1\nb: 2\na: 3\n"), "duplicate-key")
    assert p.location is not None and p.location.line == 3


def test_unknown_key_at_its_line() -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "    agent: codi-frontend-specialist\n",
        "    agent: codi-frontend-specialist\n    x: 1\n",
    )
    p = only(load_error(text))
    assert p.code == "schema.extra_forbidden"
    assert "unknown key 'x'" in p.message
    assert p.location is not None and p.location.line == line_of(text, "    x: 1")


def test_unknown_top_level_key() -> None:
    text = replace_once(EXAMPLE_TEXT, "\nphase: phase-1\n", "\nbogus: true\nphase: phase-1\n")
    p = only(load_error(text))
    assert "unknown key 'bogus'" in p.message
    assert p.location is not None and p.location.line == line_of(text, "bogus: true")


@pytest.mark.parametrize(
    ("old", "new", "needle", "fragment"),
    [
        ("    terminal: 1\n", '    terminal: "abc"\n', 'terminal: "abc"', "streams[0].terminal"),
        ("  days: 10", '  days: "x-y"', 'days: "x-y"', "schedule.days"),
        (
            'VITE_API_URL: "http://localhost:4010"',
            "VITE_API_URL: [a, b]",
            "VITE_API_URL: [a, b]",
            "streams[2].env.VITE_API_URL",
        ),
        ("  start: 2026-12-01", "  start: soon", "start: soon", "schedule.start"),
        ("strategy: squash", "strategy: octopus", "strategy: octopus", "merge.strategy"),
        ("version: 1\n", "version: 2\n", "version: 2", "version"),
    ],
)
def test_wrong_type_at_its_line(old: str, new: str, needle: str, fragment: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    p = only(load_error(text))
    assert p.code.startswith("schema.")
    assert fragment in p.message
    assert p.location is not None and p.location.line == line_of(text, needle)


def test_wrong_type_shows_the_value() -> None:
    text = replace_once(EXAMPLE_TEXT, "    terminal: 1\n", '    terminal: "abc"\n')
    assert "'abc'" in only(load_error(text)).message


def test_pattern_mismatch_is_explained() -> None:
    text = replace_once(EXAMPLE_TEXT, "topic: auth-ui", "topic: auth ui;rm")
    p = only(load_error(text), "schema.string_pattern_mismatch")
    assert "not allowed" in p.message
    assert "streams[2].work[0].topic" in p.message
    assert p.location is not None and p.location.line == line_of(text, "topic: auth ui;rm")


def test_missing_required_key_points_at_parent() -> None:
    text = replace_once(EXAMPLE_TEXT, "    name: Infrastructure\n", "")
    p = only(load_error(text))
    assert p.code == "schema.missing"
    assert "missing required key 'name'" in p.message
    assert "streams[0]" in p.message
    assert p.location is not None and p.location.line == line_of(text, "- id: infra", after="\nstreams:")


def test_missing_top_level_key() -> None:
    start, end = EXAMPLE_TEXT.index("schedule:\n"), EXAMPLE_TEXT.index("branches:\n")
    text = EXAMPLE_TEXT[:start] + EXAMPLE_TEXT[end:]
    p = only(load_error(text))
    assert "missing required key 'schedule'" in p.message
    assert p.location is not None and p.location.line >= 1


def test_several_problems_are_all_reported() -> None:
    text = replace_once(EXAMPLE_TEXT, "    terminal: 2\n", "    terminal: two\n")
    text = replace_once(text, "    terminal: 3\n", "    terminal: [3]\n")
    err = load_error(text)
    lines = sorted(p.location.line for p in err.problems if p.location)
    assert lines == [line_of(text, "terminal: two"), line_of(text, "terminal: [3]")]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    p = only(load_error(text))
    assert p.code == "schema.not-a-mapping"
    assert "mapping" in p.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    p = only(load_error(text))
    assert p.code == "schema.not-a-mapping"


def test_non_scalar_key() -> None:
    p = only(load_error("? [a, b]\n: 1\n"))
    assert p.code == "bad-key"
    assert p.location is not None and p.location.line == 1


def _with_days(value: str) -> str:
    return replace_once(EXAMPLE_TEXT, 'days: 1-2, title: "VPC', f'days: {value}, title: "VPC')


@pytest.mark.parametrize(
    ("value", "first", "last"), [('"3-4"', 3, 4), ("3-4", 3, 4), ("5", 5, 5), ('"7"', 7, 7)]
)
def test_day_ranges(value: str, first: int, last: int) -> None:
    m = load_manifest_text(_with_days(value), NAME).manifest
    days = m.streams[0].deliverables[0].days
    assert (days.first, days.last) == (first, last)
    assert first in days and last in days and last + 1 not in days


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"4-3"', "ends before it starts"),
        ("4-3", "ends before it starts"),
        ('"x-y"', "is not a day or a day range"),
        ("true", "a day or a day range"),
        ("0", "greater than or equal to 1"),
    ],
)
def test_bad_day_ranges(value: str, fragment: str) -> None:
    text = _with_days(value)
    err = load_error(text)
    p = next(p for p in err.problems if fragment in p.message)
    assert "streams[0].deliverables[0].days" in p.message
    assert p.location is not None and p.location.line == line_of(text, f"days: {value}")


def test_file_name_is_the_display_name() -> None:
    err = load_error("a: [\n")
    assert NAME in err.message


def test_impossible_date_is_a_manifest_error() -> None:
    text = replace_once(EXAMPLE_TEXT, "  start: 2026-12-01", "  start: 2026-13-45")
    p = only(load_error(text))
    assert p.location is not None and p.location.line == line_of(text, "start: 2026-13-45")


def test_recursive_alias_is_a_manifest_error() -> None:
    p = only(load_error("a: &x [*x]\n"))
    assert p.location is not None and p.location.line == 1


# -- hostile documents: bounded before they are built ----------------------------------------------------


def test_alias_bomb_is_refused_naming_the_line_where_it_explodes() -> None:
    text = alias_bomb()
    assert len(text) < 350
    problem = only(load_error(text), "yaml-too-large")
    # The first level whose expansion passes the bound: 9**6 = 531,441 values > MAX_NODES (500,000).
    assert problem.location is not None
    assert problem.location.line == line_of(text, "f: &f")
    assert "alias" in problem.message


def test_alias_bomb_inside_a_manifest_is_refused() -> None:
    lines = [f"  {line}" for line in alias_bomb().splitlines()]
    text = replace_once(EXAMPLE_TEXT, "schedule:", "bomb:\n" + "\n".join(lines) + "\nschedule:")
    problem = only(load_error(text), "yaml-too-large")
    assert problem.location is not None and problem.location.line == line_of(text, "  f: &f")


def test_aliases_within_the_bound_still_work() -> None:
    # 3 levels of 9: 729 values, well within the bound; aliases are legitimate YAML.
    text = replace_once(
        EXAMPLE_TEXT, "\ntitle:", "\nx-small: &small [1, 2]\nx-more: [*small, *small]\ntitle:"
    )
    err = load_error(text)  # the extra top-level keys are unknown: the document itself was read
    assert {p.code for p in err.problems} == {"schema.extra_forbidden"}


def test_deep_nesting_is_refused_before_the_parser_recurses() -> None:
    # 100,000 levels crash libyaml's composer (a segmentation fault); the depth is checked on events first.
    text = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    problem = only(load_error(text), "yaml-too-large")
    assert "nested" in problem.message and problem.location is not None and problem.location.line == 1


def test_a_document_larger_than_the_bound_is_refused_unread(tmp_path: Path) -> None:
    from coditect_cli.domain.loader import MAX_MANIFEST_BYTES, load_manifest

    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_MANIFEST_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        load_manifest(big, "big.yaml")
    assert [p.code for p in exc.value.problems] == ["yaml-too-large"]
    assert exc.value.problems[0].location is not None


def test_merge_keys_are_accepted_and_written_keys_win() -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        "streams:\n  - id: infra\n",
        "streams:\n  - &infra_defaults\n    id: infra\n",
    )
    # The docs stream takes everything from infra's mapping except what it writes itself.
    docs_at = text.index("  - id: docs\n")
    text = (
        text[:docs_at]
        + (
            "  - <<: *infra_defaults\n"
            "    id: docs2\n"
            "    terminal: 6\n"
            "    work: [{repo: root, topic: more-docs, owns: [extra/]}]\n"
            "    deliverables: []\n"
        )
        + text[docs_at:]
    )
    loaded = load_manifest_text(text, NAME)
    docs2 = loaded.manifest.stream("docs2")
    infra = loaded.manifest.stream("infra")
    assert docs2.terminal == 6 and docs2.agent == infra.agent and docs2.name == infra.name
    assert docs2.gates == infra.gates
    # A merged key's line is the line it is written on (in the anchored mapping).
    index = [s.id for s in loaded.manifest.streams].index("docs2")
    assert loaded.source.locate("streams", index, "agent") == loaded.source.locate("streams", 0, "agent")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: &x {b: 1}\nc: {<<: 3}\n", "yaml-merge"),
        ("a: &x {<<: *x}\n", "yaml-recursive-alias"),
    ],
    ids=["merge-of-a-scalar", "merge-into-itself"],
)
def test_bad_merge_keys_are_located_errors(text: str, code: str) -> None:
    assert only(load_error(text), code).location is not None


# -- every string field: no NUL, no control characters; every number bounded -----------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "path: submodules/cloud/coditect-cloud-backend",
            'path: "submodules/cloud/coditect-cloud-backend\\0"',
            "\\0",
        ),
        ('title: "Docker multi-stage build"', 'title: "Docker\\nbuild"', "Docker\\n"),
        ('title: "Docker multi-stage build"', 'title: "Docker \\e[2J build"', "Docker \\e"),
        ("name: Deployment", 'name: "Deploy\\x07ment"', "Deploy\\x07"),
        ("develop: develop", 'develop: "dev\\0elop"', "dev\\0"),
    ],
    ids=["nul-in-repo-path", "newline-in-title", "escape-in-title", "bell-in-name", "nul-in-branch"],
)
def test_control_characters_are_refused_at_their_line(old: str, new: str, needle: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    problem = only(load_error(text))
    assert problem.location is not None and problem.location.line == line_of(text, needle)
    assert "control character" in problem.message


def test_a_prompt_and_a_gate_script_may_span_lines_but_hold_no_other_control_character() -> None:
    multi = replace_once(
        EXAMPLE_TEXT,
        'manifests-valid, run: "python3 ci/check.py kubernetes"',
        'manifests-valid, run: "set -e\\n\\tpython3 ci/check.py kubernetes"',
    )
    load_manifest_text(multi, NAME)
    nul = replace_once(
        EXAMPLE_TEXT,
        'manifests-valid, run: "python3 ci/check.py kubernetes"',
        'manifests-valid, run: "python3 ci/check.py\\0 kubernetes"',
    )
    assert "control character" in only(load_error(nul)).message


@pytest.mark.parametrize(
    ("old", "new", "needle", "fragment"),
    [
        ("terminal: 1\n", "terminal: yes\n", "terminal: yes", "valid integer"),
        ("terminal: 1\n", "terminal: 1.0e+30\n", "terminal: 1.0e+30", "valid integer"),
        ("  - id: 1\n", "  - id: 1.0e+30\n", "id: 1.0e+30", "valid integer"),
        ("  - id: 1\n", "  - id: 100000000000000000000\n", "id: 1000000", "less than or equal"),
        ("    day: 3\n", "    day: 99999999999999999999\n", "day: 9999", "less than or equal"),
        ("version: 1", "version: true", "version: true", "the number 1"),
    ],
    ids=[
        "terminal-yes",
        "terminal-float",
        "checkpoint-id-float",
        "checkpoint-id-huge",
        "checkpoint-day-huge",
        "version-true",
    ],
)
def test_numbers_are_strict_and_bounded(old: str, new: str, needle: str, fragment: str) -> None:
    text = replace_once(EXAMPLE_TEXT, old, new)
    problem = only(load_error(text))
    assert problem.location is not None and problem.location.line == line_of(text, needle)
    assert fragment in problem.message


def test_gate_timeout_is_bounded() -> None:
    text = replace_once(
        EXAMPLE_TEXT,
        'manifests-valid, run: "python3 ci/check.py kubernetes"',
        'manifests-valid, run: "python3 ci/check.py kubernetes", timeout: 1.0e+30',
    )
    problem = only(load_error(text))
    assert problem.location is not None and problem.location.line == line_of(text, "timeout: 1.0e+30")


def test_a_gate_is_marked_flaky_with_a_boolean() -> None:
    line = 'manifests-valid, run: "python3 ci/check.py kubernetes"'
    loaded = load_manifest_text(replace_once(EXAMPLE_TEXT, line, line + ", flaky: true"), NAME)
    (gate,) = loaded.manifest.stream("deploy").gates
    assert gate.flaky and not loaded.manifest.stream("infra").gates[0].flaky  # not flaky unless said
    text = replace_once(EXAMPLE_TEXT, line, line + ', flaky: "sometimes"')
    problem = only(load_error(text))
    assert problem.location is not None and problem.location.line == line_of(text, "flaky:")
    assert "flaky" in problem.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("/tmp/wt", "absolute"),
        ("~/wt", "'~'"),
        ("../wt", "outside the project"),
        ("a/../../wt", "outside the project"),
        ('""', "project root itself"),
        (".", "project root itself"),
        ("a/..", "project root itself"),
        (".git/wt", "'.git'"),
        ("sub/.git/wt", "'.git'"),
        ("C:/wt", "absolute"),
    ],
)
def test_worktrees_folder_must_stay_inside_the_project(value: str, fragment: str) -> None:
    text = replace_once(EXAMPLE_TEXT, "schedule:", f"worktrees: {value}\nschedule:")
    problem = only(load_error(text))
    assert problem.location is not None and problem.location.line == line_of(text, "worktrees:")
    assert fragment in problem.message


def test_worktrees_folder_is_normalised() -> None:
    text = replace_once(EXAMPLE_TEXT, "schedule:", "worktrees: ./wt/x/\nschedule:")
    assert load_manifest_text(text, NAME).manifest.worktrees == "wt/x"
