"""load_manifest_text: every reading problem is a ManifestError whose problems point at file:line."""

from __future__ import annotations

import pytest
from helpers import EXAMPLE_TEXT, line_of, replace_once

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
