"""Fuzzing the manifest reader and validator: a bad manifest is a located ManifestError, never a crash.

Inputs are mutations of the example manifest (structural edits through a YAML round trip, and raw text
edits) plus fully random text. Every input must either load and validate (returning a report whose
problems are located in the file) or raise ManifestError whose problems all carry a Location in the file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import EXAMPLE_TEXT, call_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coditect_cli.domain.loader import load_manifest_text
from coditect_cli.domain.validate import ValidationReport, validate
from coditect_cli.errors import ManifestError

DISPLAY = "fuzz.yaml"
# The C implementations when present: the generators and filters run for every example.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
EXAMPLE_DATA: dict[str, Any] = yaml.load(EXAMPLE_TEXT, Loader=_Loader)

Path_ = tuple[str | int, ...]


def _paths(node: Any, here: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*here, key))
            out += _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*here, i))
            out += _paths(value, (*here, i))
    return out


ALL_PATHS = _paths(EXAMPLE_DATA)
# Where file system paths live: repository paths, owned paths, shared paths.
FS_PATHS = [p for p in ALL_PATHS if p[-1] == "path" or (len(p) >= 2 and p[-2] in {"owns", "paths"})]
# Where names that end up in branch names, directories and shells live.
NAME_PATHS = [
    p
    for p in ALL_PATHS
    if p[-1]
    in {"id", "topic", "phase", "base", "develop", "integration", "feature", "tag", "target", "agent"}
]
assert FS_PATHS and NAME_PATHS

SHELL_HOSTILE = [
    "a; rm -rf /",
    "$(id)",
    "`id`",
    "a | b",
    "a && b",
    "a > /tmp/x",
    "< /etc/passwd",
    "'quoted'",
    '"dq"',
]
PATH_HOSTILE = [
    "../x",
    "../secrets/",
    "/etc/",
    "/abs",
    "a/../../b",
    "~/x",
    "C:/x",
    "C:\\x",
    "..",
    ".",
    "./a",
    "a//b",
    "",
]
BRANCH_HOSTILE = [
    "a b",
    "a..b",
    "a~1",
    "a:b",
    "x.lock",
    "a/",
    "-x",
    "@",
    "a@{1}",
    ".hidden",
    "a?b",
    "a*",
    "a[b",
    "HEAD",
]


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(data: Any, path: Path_, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _delete(data: Any, path: Path_) -> None:
    parent = _get(data, path[:-1])
    del parent[path[-1]]


scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(SHELL_HOSTILE + PATH_HOSTILE + BRANCH_HOSTILE),
    st.dates(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=3),
)


@st.composite
def structural_mutation(draw: st.DrawFn) -> str:
    data = copy.deepcopy(EXAMPLE_DATA)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["delete", "replace", "fs", "name", "shell"]))
        paths = _paths(data)
        if kind == "fs":
            candidates = [p for p in FS_PATHS if p in paths]
            value: Any = draw(st.sampled_from(PATH_HOSTILE))
        elif kind == "name":
            candidates = [p for p in NAME_PATHS if p in paths]
            value = draw(st.sampled_from(BRANCH_HOSTILE))
        elif kind == "shell":
            candidates = [p for p in paths if isinstance(_get(data, p), str)]
            value = draw(st.sampled_from(SHELL_HOSTILE))
        else:
            candidates = paths
            value = draw(values)
        if not candidates:
            continue
        path = draw(st.sampled_from(candidates))
        if kind == "delete":
            _delete(data, path)
        else:
            _set(data, path, value)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


@st.composite
def text_mutation(draw: st.DrawFn) -> str:
    text = EXAMPLE_TEXT
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["insert", "delete-line", "hostile"]))
        lines = text.splitlines(keepends=True)
        if kind == "delete-line" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "".join(lines)
            continue
        at = draw(st.integers(0, len(text)))
        if kind == "insert":
            chunk = draw(
                st.text(alphabet=st.sampled_from(list("{}[]:,&*!|>'\"%@`#-?\t\n \\")), min_size=1, max_size=4)
            )
        else:
            chunk = draw(st.sampled_from(SHELL_HOSTILE + PATH_HOSTILE + BRANCH_HOSTILE))
        text = text[:at] + chunk + text[at:]
    return text


def check_outcome(text: str, root: Path) -> ValidationReport | None:
    """Load and validate ``text``; assert the only failure is a well-located ManifestError.

    Any other exception fails the test: it would be a traceback for the user.
    """
    try:
        loaded = load_manifest_text(text, DISPLAY)
    except ManifestError as err:
        assert err.problems, f"ManifestError without problems: {err.message}"
        for p in err.problems:
            assert p.location is not None, p
            assert p.location.file == DISPLAY
            assert p.location.line >= 0
            assert p.message
        return None
    report = validate(loaded, root, None)
    for p in report.problems:
        assert p.location is not None, p
        assert p.location.file == DISPLAY
        assert p.location.line >= 0
        assert p.severity in {"error", "warning"}
    return report


def check(text: str) -> None:
    check_outcome(text, Path("/nonexistent-root"))


@settings(max_examples=100, deadline=None)
@given(text=structural_mutation())
def test_structural_mutations(text: str) -> None:
    check(text)


@settings(max_examples=100, deadline=None)
@given(text=text_mutation())
def test_text_mutations(text: str) -> None:
    check(text)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",
        EXAMPLE_TEXT.replace("start: 2026-12-01", "start: 2026-13-45"),
        EXAMPLE_TEXT.replace("  - id: docs\n", "  - id: frontend\n").replace(
            "owns: [Dockerfile,", "owns: [docs/, Dockerfile,"
        ),
        EXAMPLE_TEXT.replace('"{phase}-integration"', '"{phase}-integration}"'),
    ],
    ids=["recursive-alias", "impossible-date", "duplicate-stream-id", "stray-brace"],
)
def test_former_crashes_are_located_errors(text: str) -> None:
    """Inputs that once crashed the loader or validator now end in located problems."""
    report = check_outcome(text, Path("/nonexistent-root"))
    assert report is None or report.errors


def test_unmodified_example_has_no_errors() -> None:
    report = check_outcome(EXAMPLE_TEXT, Path("/nonexistent-root"))
    assert report is not None and report.ok


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.one_of(structural_mutation(), text_mutation()))
def test_cli_never_crashes(
    text: str, shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_outcome(text, shared_sandbox)
    target = shared_sandbox / "workstreams" / "fuzz.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        result = call_main(["--root", str(shared_sandbox), "validate", "fuzz"], capsys)
    finally:
        target.unlink()
    assert result.code in {0, 2}, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output


# -- hostile text in every string field --------------------------------------------------------------------

# Every string of the example: ids, names, titles, paths, branch templates, commands, prompts, env values.
STRING_PATHS = [p for p in ALL_PATHS if isinstance(_get(EXAMPLE_DATA, p), str)]
assert len(STRING_PATHS) > 100
HOSTILE_FRAGMENTS = [
    "\0",
    "\x01",
    "\x07",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\x7f",
    "\x9b",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\u2028",
    "'",
    '"',
    "\\",
    "$(id)",
    "`id`",
    "; rm -rf ~",
    "{",
    "}",
    "{prompt_file}",
    "#",
    " ",
]


@st.composite
def hostile_string_field(draw: st.DrawFn) -> tuple[str, Path_, str]:
    """The example with one string field (any of them) carrying hostile characters at a random place."""
    data = copy.deepcopy(EXAMPLE_DATA)
    path = draw(st.sampled_from(STRING_PATHS))
    original: str = _get(data, path)
    fragment = "".join(draw(st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=3)))
    at = draw(st.integers(0, len(original)))
    value = original[:at] + fragment + original[at:]
    _set(data, path, value)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True), path, value


_CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} | {"\u2028"}


@settings(max_examples=150, deadline=None)
@given(case=hostile_string_field())
def test_hostile_text_in_any_string_field_is_accepted_or_located(case: tuple[str, Path_, str]) -> None:
    text, path, value = case
    report = check_outcome(text, Path("/nonexistent-root"))
    stripped = value.strip()
    # A control character (other than a newline or tab in a prompt or a gate's script) is never accepted.
    gate_script = path[-1] == "run" and len(path) >= 3 and path[-3] in {"gates", "suite"}
    allowed = {"\n", "\t"} if gate_script or path[-1] == "prompt" else set()
    if any(ch in _CONTROL - allowed for ch in stripped):
        assert report is None, f"{path} = {value!r} was accepted"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile_string_field())
def test_hostile_text_through_the_cli_exits_0_or_2_and_later_commands_do_not_crash(
    case: tuple[str, Path_, str], shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _path, _value = case
    target = shared_sandbox / "workstreams" / "fuzz.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        validated = call_main(["--root", str(shared_sandbox), "--json", "validate", "fuzz"], capsys)
        assert validated.code in {0, 2}, validated.output
        payload = json.loads(validated.stdout)
        if validated.code == 2:
            errors = [p for p in payload["problems"] if p["severity"] == "error"]
            assert errors, validated.stdout
            assert all(p["file"].endswith("fuzz.yaml") and p["line"] > 0 for p in errors), errors
            return
        # Accepted: the commands that read the values (branches, paths, titles, templates, env) run.
        later = [
            ["plan", "fuzz"],
            ["streams", "launch", "fuzz", "--dry-run", "--day", "1", "--no-attach"],
        ]
        for args in later:
            result = call_main(["--root", str(shared_sandbox), "--json", *args], capsys)
            assert "internal error" not in result.output and "Traceback" not in result.output, result.output
            assert json.loads(result.stdout)["exit_code"] == result.code
    finally:
        target.unlink()
