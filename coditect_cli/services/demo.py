"""The sandbox demo: build bare origins and a superproject with submodules, then run the flow there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.errors import ExitCode
from coditect_cli.project import Project

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.cli.context import AppContext
    from coditect_cli.domain.plan import Plan
    from coditect_cli.domain.validate import ValidationReport
    from coditect_cli.sandbox import Sandbox


def example_manifest() -> Path:
    """The shipped example manifest (the guide's Phase 1 plan)."""
    from importlib.resources import as_file, files

    with as_file(files("coditect_cli").joinpath("templates/phase-1.yaml")) as path:
        return Path(path)


@dataclass
class DemoResult:
    """What the demo did, for the JSON envelope and the terminal."""

    sandbox: Sandbox
    report: ValidationReport
    plan: Plan
    exit_code: ExitCode = ExitCode.OK
    notes: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        from coditect_cli.render.manifest import plan_data, validation_data

        return {
            "sandbox": str(self.sandbox.root),
            "origins": {k: str(v) for k, v in self.sandbox.origins.items()},
            "rebuilt": self.sandbox.rebuilt,
            "validate": validation_data(self.report),
            "plan": plan_data(self.plan),
        }

    def print(self, console: Console) -> None:
        from coditect_cli.render.manifest import print_plan, print_validation

        verb = "Rebuilt" if self.sandbox.rebuilt else "Built"
        console.rule("coditect demo")
        console.print(f"{verb} the sandbox: superproject at [bold]{self.sandbox.root}[/]")
        for name, origin in self.sandbox.origins.items():
            console.print(f"  origin {name}: {origin}")
        console.rule("coditect validate")
        print_validation(console, self.report)
        console.rule("coditect plan")
        print_plan(console, self.plan)
        console.print(f"\nNext: cd {self.sandbox.root} && coditect plan")


def run_demo(directory: Path, app: AppContext) -> DemoResult:
    """Build (or rebuild) the sandbox in ``directory`` and run ``validate`` and ``plan`` in it."""
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services import manifest as svc

    sandbox = build_sandbox(directory, example_manifest())
    project = Project(sandbox.root)
    report = svc.check(project, "phase-1")
    _, plan = svc.plan(project, "phase-1")
    return DemoResult(sandbox, report, plan, ExitCode.OK if report.ok else ExitCode.USAGE)
