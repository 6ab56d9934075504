"""Contract test: the JSON envelope every command prints under ``--json``.

Changing a top-level key breaks every consumer: add fields inside ``data`` instead (see
coditect_cli/render/envelope.py), and bump ``ENVELOPE_SCHEMA`` on an incompatible change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers import EXAMPLE_TEXT, call_main, line_of, replace_once, run_cli

from coditect_cli.cli.app import app
from coditect_cli.render.envelope import ENVELOPE_KEYS, ENVELOPE_SCHEMA


def parse_envelope(stdout: str, code: int) -> dict[str, Any]:
    payload = json.loads(stdout)
    assert isinstance(payload, dict)
    assert list(payload) == list(ENVELOPE_KEYS), "top-level keys (and their order) are pinned"
    assert set(payload) == set(ENVELOPE_KEYS)
    assert payload["schema"] == ENVELOPE_SCHEMA == "coditect.result/v1"
    assert payload["exit_code"] == code
    assert payload["ok"] is (code == 0)
    assert isinstance(payload["problems"], list)
    for p in payload["problems"]:
        assert {"code", "message", "severity"} <= set(p)
    if code == 0:
        assert payload["error"] is None
    else:
        # A failure explains itself: an error object, or error-severity problems (validate's findings).
        assert payload["error"] is not None or any(p["severity"] == "error" for p in payload["problems"])
    if payload["error"] is not None:
        assert set(payload["error"]) == {"code", "message", "hint"}
    return payload


def test_pinned_keys() -> None:
    assert ENVELOPE_KEYS == ("schema", "command", "ok", "exit_code", "data", "problems", "error")


def test_validate_json(shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["--root", str(shared_sandbox), "validate", "phase-1", "--json"], capsys)
    assert code == 0
    payload = parse_envelope(out, code)
    assert payload["command"] == "validate"
    assert payload["data"]["valid"] is True
    assert payload["data"]["pairs"] == 9
    assert {p["code"] for p in payload["problems"]} == {"unowned-files"}
    for p in payload["problems"]:
        assert p["file"].endswith("workstreams/phase-1.yaml")
        assert p["line"] > 0


def test_validate_json_with_errors(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replace_once(EXAMPLE_TEXT, "tag: v0.1.0", "tag: v0..1")
    target = shared_sandbox / "workstreams" / "bad-json.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        code, out, _ = call_main(["--root", str(shared_sandbox), "--json", "validate", "bad-json"], capsys)
    finally:
        target.unlink()
    assert code == 2
    payload = parse_envelope(out, code)
    errors = [p for p in payload["problems"] if p["severity"] == "error"]
    assert [(p["code"], p["line"]) for p in errors] == [("bad-tag-name", line_of(text, "tag: v0..1"))]
    assert errors[0]["file"].endswith("bad-json.yaml")


def test_unreadable_manifest_json(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replace_once(EXAMPLE_TEXT, "    terminal: 4\n", '    terminal: "four"\n')
    target = shared_sandbox / "workstreams" / "bad-json.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        code, out, _ = call_main(["--root", str(shared_sandbox), "validate", "bad-json", "--json"], capsys)
    finally:
        target.unlink()
    assert code == 2
    payload = parse_envelope(out, code)
    assert payload["error"]["code"] == "manifest"
    assert [p["line"] for p in payload["problems"]] == [line_of(text, 'terminal: "four"')]


def test_plan_json(shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["--root", str(shared_sandbox), "plan", "phase-1", "--json"], capsys)
    payload = parse_envelope(out, code)
    assert code == 0
    assert payload["command"] == "plan"
    assert payload["data"]["changes"] == len(payload["data"]["steps"]) > 0
    for step in payload["data"]["steps"]:
        assert {"kind", "repo", "description"} <= set(step)


def test_init_json(tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["--root", str(tmp_path), "init", "phase-9", "--json"], capsys)
    payload = parse_envelope(out, code)
    assert code == 0
    assert payload["command"] == "init"
    assert payload["data"]["phase"] == "phase-9"
    assert payload["data"]["manifest"].endswith("workstreams/phase-9.yaml")


def test_init_refused_json(tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_main(["--root", str(tmp_path), "init", "phase-9"], capsys)
    code, out, _ = call_main(["--root", str(tmp_path), "init", "phase-9", "--json"], capsys)
    assert code == 2
    payload = parse_envelope(out, code)
    assert "already exists" in payload["error"]["message"]


def test_schema_json(tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(["--root", str(tmp_path), "schema", "--json"], capsys)
    payload = parse_envelope(out, code)
    assert code == 0
    assert payload["command"] == "schema"
    assert payload["data"]["changed"] is True
    code, out, _ = call_main(["--root", str(tmp_path), "schema", "--json"], capsys)
    assert parse_envelope(out, code)["data"]["changed"] is False


def test_doctor_json(
    shared_sandbox: Path, tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = call_main(["--root", str(shared_sandbox), "doctor", "--json"], capsys)
    assert code == 0  # a phase not set up yet only warns
    payload = parse_envelope(out, code)
    assert payload["command"] == "doctor"
    assert payload["data"]["phases"] == ["phase-1"]
    for check in payload["data"]["checks"]:
        assert {"check", "subject", "group", "status", "detail", "hint", "problems"} == set(check)
        assert check["status"] in {"ok", "warn", "fail", "skip"}
    assert {p["severity"] for p in payload["problems"]} == {"warning"}
    # Outside a project, asked about a phase: a failed check (exit 3), explained by an error-severity problem.
    code, out, _ = call_main(["--root", str(tmp_path), "doctor", "phase-1", "--json"], capsys)
    assert code == 3
    payload = parse_envelope(out, code)
    assert [p["code"] for p in payload["problems"] if p["severity"] == "error"] == ["doctor.project"]


def test_error_envelope_in_a_real_process(shared_sandbox: Path, isolated_git: Path) -> None:
    code, out, err = run_cli(["validate", "nosuchphase", "--json"], cwd=shared_sandbox)
    assert code == 2
    payload = parse_envelope(out, code)
    assert payload["data"] is None
    assert payload["error"]["code"] == "usage"
    assert "nosuchphase" in payload["error"]["message"]
    assert "Traceback" not in err


def test_success_envelope_in_a_real_process(shared_sandbox: Path, isolated_git: Path) -> None:
    code, out, _ = run_cli(["--json", "validate"], cwd=shared_sandbox)
    assert code == 0
    assert parse_envelope(out, code)["data"]["phase"] == "phase-1"


def test_error_envelope_command_is_the_command(
    shared_sandbox: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error envelope names the command like the success one: no option values or arguments."""
    code, out, _ = call_main(["--root", str(shared_sandbox), "validate", "nosuchphase", "--json"], capsys)
    assert code == 2
    assert parse_envelope(out, code)["command"] == "validate"
    code, out, _ = call_main(["--json", "--root", str(shared_sandbox), "plan", "nosuchphase"], capsys)
    assert code == 2
    assert parse_envelope(out, code)["command"] == "plan"


def _leaves(command: Any, prefix: str = "") -> list[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [(prefix.strip(), command)]
    out: list[tuple[str, Any]] = []
    for name, sub in sorted(subcommands.items()):
        out += _leaves(sub, f"{prefix} {name}")
    return out


LEAVES = _leaves(typer.main.get_command(app))


# Leaf commands known to lack --json (a bug each: the contract is that every command has it).
def test_the_command_tree_is_walked() -> None:
    assert {"init", "validate", "plan", "schema", "demo"} <= {name for name, _ in LEAVES}


@pytest.mark.parametrize("name", [name for name, _ in LEAVES])
def test_every_leaf_command_has_a_json_option(name: str) -> None:
    command = dict(LEAVES)[name]
    assert any("--json" in p.opts for p in command.params), f"`coditect {name}` has no --json option"


# -- usage errors and odd terminals: still exactly one envelope, never a crash -------------------------


@pytest.mark.parametrize(
    ("args", "command", "fragment"),
    [
        (["--json", "validate", "--bogus"], "validate", "No such option: --bogus"),
        (["validate", "--json", "--bogus"], "validate", "No such option: --bogus"),
        (["--json", "pr", "open"], "pr open", "Missing argument"),
        (["--json", "checkpoint", "99999999999999999999"], "checkpoint", "less than or equal to 9999"),
        (["--json", "nosuchcommand"], "coditect", "No such command"),
        (
            ["--json", "sync", "morning", "--day", "99999999999999999999"],
            "sync morning",
            "--day must be 1 to 1000",
        ),
        (["--json", "status", "--day", "-3"], "status", "--day must be 1 to 1000 (got -3)"),
    ],
    ids=[
        "unknown-option",
        "unknown-option-after",
        "missing-argument",
        "huge-argument",
        "unknown-command",
        "huge-day",
        "negative-day",
    ],
)
def test_usage_errors_print_one_envelope(
    args: list[str], command: str, fragment: str, shared_sandbox: Path, isolated_git: Path
) -> None:
    result = run_cli(["--root", str(shared_sandbox), *args])
    assert result.code == 2, result.output
    payload = parse_envelope(result.stdout, 2)  # json.loads of the whole stdout: one object, nothing else
    assert payload["command"] == command
    assert payload["error"]["code"] == "usage"
    assert fragment in payload["error"]["message"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["validate"], ["plan"], ["status"], ["doctor"], ["--json", "validate"], ["streams", "status"]],
    ids=lambda a: "-".join(a),
)
def test_an_ascii_terminal_gets_replacements_not_a_crash(
    args: list[str], shared_sandbox: Path, isolated_git: Path
) -> None:
    result = run_cli(
        ["--root", str(shared_sandbox), *args], env={"PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}
    )
    assert result.code in {0, 3, 5}, result.output  # doctor: 3 when a check fails; streams: 5 without tmux
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.stdout.isascii()
    if args[0] == "--json":
        # Non-ASCII text (the → in the checkpoint titles) travels as \u escapes: the JSON stays exact.
        parse_envelope(result.stdout, 0)
    elif args[0] == "validate":
        assert "phase phase-1 is valid" in result.stdout
