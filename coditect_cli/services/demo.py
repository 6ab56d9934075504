"""The sandbox demo: build bare origins and a superproject with submodules, then run the flow there.

Each stage returns a :class:`Stage` (its data for ``--json`` and a renderer for the terminal), so the demo
is the same code path a user drives by hand, one command after another.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.errors import CoditectError, ExitCode
from coditect_cli.project import Project

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.cli.context import AppContext
    from coditect_cli.sandbox import Sandbox

PHASE = "phase-1"


def example_manifest() -> Path:
    """The shipped example manifest (the guide's Phase 1 plan)."""
    from importlib.resources import as_file, files

    with as_file(files("coditect_cli").joinpath("templates/phase-1.yaml")) as path:
        return Path(path)


@dataclass
class Stage:
    """One step of the demo: a title, its JSON data and how to show it."""

    key: str
    title: str
    data: Any
    show: Callable[[Console], None]


@dataclass
class DemoResult:
    """Everything the demo did, for the JSON envelope and the terminal."""

    sandbox: Sandbox
    stages: list[Stage] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK

    def data(self) -> dict[str, Any]:
        return {
            "sandbox": str(self.sandbox.root),
            "origins": {k: str(v) for k, v in self.sandbox.origins.items()},
            "rebuilt": self.sandbox.rebuilt,
            **{stage.key: stage.data for stage in self.stages},
            "summary": self.summary(),
        }

    def summary(self) -> list[str]:
        """What the phase came to, one line per milestone."""
        by_key = {stage.key: stage.data for stage in self.stages}
        lines: list[str] = []
        setup = by_key.get("setup") or {}
        done = setup.get("done", [])
        repos = len({step["repo"] for step in done if "repo" in step})
        worktrees = sum(step["kind"] == "AddWorktree" for step in done)
        lines.append(f"setup: {len(done)} step(s) across {repos} repositories, {worktrees} worktrees")
        launch = by_key.get("launch") or {}
        codes = launch.get("exit_codes", {})
        where = "tmux panes" if launch.get("launch") else "agents run without tmux"
        exits = ", ".join(f"{stream} {code}" for stream, code in codes.items())
        lines.append(f"agents: {len(codes)} {where}, exit codes: {exits}")
        refused = [r for r in by_key.get("guard", []) if not r["committed"]]
        lines.append(f"ownership guard: {len(refused)} commit(s) refused outside a stream's paths")
        conflicts = by_key.get("conflicts") or {}
        fixed = by_key.get("resolve") or {}
        resolved = (
            f" (resolved by {fixed['stream']} before review: {', '.join(fixed['resolved'])})"
            if fixed.get("resolved")
            else ""
        )
        lines.append(f"conflicts predicted: {conflicts.get('conflicts', 0)}{resolved}")
        opened = (by_key.get("prs") or {}).get("opened", [])
        lines.append(f"pull requests opened: {len(opened)}, approved by their code owners")
        for n in (1, 2, 3, 4):
            cp = by_key.get(f"checkpoint_{n}")
            if not cp:
                continue
            merged = ", ".join(f"{m['repo']}#{m['number']}" for m in cp.get("merged", [])) or "nothing"
            left = ", ".join(
                f"{m['repo']}#{m['number']} ({m.get('kind', 'left out')})" for m in cp.get("left_out", [])
            )
            lines.append(
                f"checkpoint {n}: {cp.get('status')} — merged {merged}"
                + (f"; left out {left}" if left else "")
                + f"; {cp.get('gate_runs', 0)} gate run(s)"
            )
        merge = by_key.get("merge_phase") or {}
        if merge:
            lines.append(
                f"merge-phase: {merge.get('status')} into {merge.get('target')}, tag {merge.get('tag')} "
                "pushed in every repository"
            )
        return lines

    def print(self, console: Console) -> None:
        verb = "Rebuilt" if self.sandbox.rebuilt else "Built"
        console.rule("coditect demo")
        console.print(f"{verb} the sandbox: superproject at [bold]{self.sandbox.root}[/]")
        for name, origin in self.sandbox.origins.items():
            console.print(f"  origin {name}: {origin}")
        for stage in self.stages:
            console.rule(stage.title)
            stage.show(console)
        console.rule("summary")
        for line in self.summary():
            console.print(line, markup=False)
        console.rule()
        console.print(f"Try it yourself: cd {self.sandbox.root} && coditect status")


def _commit(worktree: Path, path: str, text: str, message: str) -> tuple[bool, str]:
    """Append ``text`` to ``path`` in ``worktree`` and commit it (the guard hook runs). (ok, hook output)."""
    from coditect_cli.adapters import proc

    target = worktree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as fh:
        fh.write(text)
    proc.run(["git", "-C", str(worktree), "add", "--", path])
    done = proc.run(["git", "-C", str(worktree), "commit", "-q", "-m", message], check=False)
    if done.returncode != 0:
        # The commit was refused: leave the worktree as it was.
        proc.run(["git", "-C", str(worktree), "reset", "-q", "--", path])
        proc.run(["git", "-C", str(worktree), "checkout", "-q", "--", path])
    return done.returncode == 0, (done.stderr + done.stdout).strip()


def _stage_validate(project: Project) -> Stage:
    from coditect_cli.render.manifest import print_validation, validation_data
    from coditect_cli.services import manifest as svc

    report = svc.check(project, PHASE)
    return Stage(
        "validate", "coditect validate", validation_data(report), lambda c: print_validation(c, report)
    )


def _stage_setup(project: Project) -> Stage:
    from coditect_cli.render.setup import print_setup, setup_data
    from coditect_cli.services.setup import setup

    result = setup(project, PHASE)
    return Stage("setup", "coditect streams setup", setup_data(result), lambda c: print_setup(c, result))


def demo_socket(root: Path) -> str:
    """The private tmux socket of the sandbox at ``root`` (stable per directory, so a rerun finds it)."""
    import hashlib

    return "coditect-demo-" + hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]


def _stage_launch(project: Project) -> Stage:
    """One tmux pane per stream, each running the scripted agent; wait for them; `streams status`."""
    from coditect_cli.agents import scripted_agent_template
    from coditect_cli.render.streams import print_launch, print_status
    from coditect_cli.services.launch import launch
    from coditect_cli.services.streams import status, wait_for_agents

    socket = demo_socket(project.root)
    if shutil.which("tmux") is None:
        return _stage_headless(project)
    launched = launch(project, PHASE, attach=False, agent=scripted_agent_template(), socket=socket, day=1)
    codes = wait_for_agents(project, PHASE, timeout=120, socket=socket)
    state = status(project, PHASE, socket=socket)

    def show(console: Console) -> None:
        print_launch(console, launched)
        console.print(f"agents finished: {', '.join(f'{k}={v}' for k, v in codes.items())}")
        print_status(console, state)
        console.print(f"[dim]attach with: cd {project.root} && coditect streams attach[/]")

    return Stage(
        "launch",
        "coditect streams launch (scripted agents) · coditect streams status",
        {"launch": launched.to_json(), "exit_codes": codes, "status": state.to_json(), "socket": socket},
        show,
    )


def _stage_headless(project: Project) -> Stage:
    """No tmux on this machine: the agents run one after the other without panes (pane features are skipped)."""
    from coditect_cli.agents import scripted_agent_template
    from coditect_cli.services.launch import run_headless

    codes = run_headless(project, PHASE, agent=scripted_agent_template(), day=1)
    note = "tmux is not installed: the agents ran without panes (install tmux to see one pane per stream)"
    return Stage(
        "launch",
        "the agents work (no tmux: run without panes)",
        {"launch": None, "exit_codes": codes, "status": None, "socket": None, "note": note},
        lambda c: c.print(f"{note}\nagents finished: {', '.join(f'{k}={v}' for k, v in codes.items())}"),
    )


def _stop_previous_session(directory: Path) -> None:
    """A rebuilt sandbox must not inherit the panes of the previous one: end that tmux server."""
    from coditect_cli.adapters import proc

    root = directory / "coditect-rollout-master"
    with contextlib.suppress(CoditectError):  # no tmux at all: nothing to stop
        proc.run(["tmux", "-L", demo_socket(root), "kill-server"], check=False)


def _stage_agents(project: Project) -> Stage:
    """Two streams commit in their own areas; a third tries a file it does not own and is refused."""
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.setup import read_context

    ctx = read_context(project, PHASE)
    wt = {pair.key: worktree_path(ctx.manifest, project.root, pair) for pair in ctx.manifest.pairs()}
    attempts = [
        (
            "infra",
            wt["infra@infra"],
            "opentofu/modules/networking/main.tf",
            '\n# private service connection for Cloud SQL\nresource "google_compute_global_address" "psc" {}\n',
            "feat(infra): reserve the private service connection range",
        ),
        (
            "backend",
            wt["backend@backend"],
            "src/api/v1/auth.py",
            "\n\ndef refresh(token: str) -> str:\n    return token\n",
            "feat(auth): add token refresh",
        ),
        (
            "deploy",
            wt["deploy@backend"],
            "src/api/v1/auth.py",
            "\n# health endpoint for the readiness probe\n",
            "chore(deploy): touch the auth module",
        ),
    ]
    rows: list[dict[str, Any]] = []
    for stream, worktree, path, text, message in attempts:
        ok, output = _commit(worktree, path, text, message)
        rows.append({"stream": stream, "path": path, "committed": ok, "guard": output})

    def show(console: Console) -> None:
        for row in rows:
            mark = "[green]✓ committed[/]" if row["committed"] else "[red]✗ refused by the ownership guard[/]"
            console.print(f"{mark}  stream [bold]{row['stream']}[/] → {row['path']}")
            if not row["committed"]:
                for line in str(row["guard"]).splitlines():
                    console.print(f"    [dim]{line}[/]")

    return Stage("guard", "the ownership guard checks every commit", rows, show)


def _stage_plant_shared_edit(project: Project) -> Stage:
    """backend edits the shared openapi.yaml; a frontend contract change lands on integration meanwhile."""
    from coditect_cli.adapters import proc
    from coditect_cli.adapters.git import commit_file
    from coditect_cli.domain.manifest import RepoId
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.setup import read_context

    ctx = read_context(project, PHASE)
    pair = next(p for p in ctx.manifest.pairs() if p.key == "backend@backend")
    worktree = worktree_path(ctx.manifest, project.root, pair)
    spec = worktree / "openapi.yaml"
    original = spec.read_text(encoding="utf-8")
    version_line = next(line for line in original.splitlines() if line.strip().startswith("version:"))
    spec.write_text(original.replace(version_line, version_line.split(":")[0] + ': "0.2.0-auth"', 1))
    proc.run(
        ["git", "-C", str(worktree), "commit", "-q", "-am", "feat(api): bump contract for refresh tokens"]
    )
    repo = ctx.repo_path(RepoId(pair.repo.id))
    integration = ctx.manifest.integration_branch
    other = original.replace(version_line, version_line.split(":")[0] + ': "0.2.0-dashboard"', 1)
    old, new = commit_file(
        repo, integration, "openapi.yaml", other, "feat(api): dashboard fields (frontend, approved)"
    )
    # As if that PR had been merged on the forge: origin's integration branch has it too, and the store
    # records the move as it records a forge merge (checkpoints build only on tips coditect knows).
    proc.run(["git", "-C", str(repo), "push", "--quiet", "origin", integration])
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.store import Store

    with Store.open(project_common_dir(project)) as store:
        store.record_ref_move(
            None, "demo", PHASE, pair.repo.id, f"refs/remotes/origin/{integration}", old, new
        )
    data = {"file": "openapi.yaml", "repo": "backend", "branch": pair.branch, "integration": integration}
    return Stage(
        "shared_edit",
        "an overlapping edit on a shared file",
        data,
        lambda c: c.print(
            f"backend changed the contract version in openapi.yaml on {pair.branch};\n"
            f"a frontend contract change to the same line landed on {integration}."
        ),
    )


def _stage_conflicts(project: Project) -> Stage:
    from coditect_cli.render.conflicts import print_conflicts
    from coditect_cli.services.conflicts import predict

    report = predict(project, PHASE)
    return Stage("conflicts", "coditect conflicts", report.to_json(), lambda c: print_conflicts(c, report))


def _stage_resolve(project: Project) -> Stage:
    """Backend follows its coordination action: merge the integration branch, resolve openapi.yaml, push."""
    from coditect_cli.adapters import proc
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.setup import read_context

    ctx = read_context(project, PHASE)
    pair = next(p for p in ctx.manifest.pairs() if p.key == "backend@backend")
    worktree = worktree_path(ctx.manifest, project.root, pair)
    integration = ctx.manifest.integration_branch
    git = ["git", "-C", str(worktree)]
    proc.run([*git, "fetch", "--quiet", "origin", integration])
    merged = proc.run([*git, "merge", "--no-edit", "--quiet", f"origin/{integration}"], check=False)
    resolved: list[str] = []
    if merged.returncode != 0:
        # Both sides bumped the contract version: keep both changes in one version string.
        spec = worktree / "openapi.yaml"
        lines, out, side = spec.read_text(encoding="utf-8").splitlines(), [], ""
        for line in lines:
            if line.startswith("<<<<<<<"):
                side = "ours"
            elif line.startswith("=======") and side == "ours":
                side = "theirs"
            elif line.startswith(">>>>>>>") and side == "theirs":
                side = ""
            elif side == "ours":
                out.append(line.split(":")[0] + ': "0.2.0"' if line.strip().startswith("version:") else line)
            elif side != "theirs":
                out.append(line)
        spec.write_text("\n".join(out) + "\n", encoding="utf-8")
        proc.run([*git, "add", "openapi.yaml"])
        proc.run([*git, "commit", "--quiet", "--no-edit"])
        resolved.append("openapi.yaml")
    proc.run([*git, "push", "--quiet", "origin", pair.branch])
    data = {"stream": "backend", "merged": f"origin/{integration}", "resolved": resolved}
    return Stage(
        "resolve",
        "backend merges the integration branch and resolves the conflict",
        data,
        lambda c: c.print(
            f"backend merged origin/{integration} into {pair.branch}, resolved "
            f"{', '.join(resolved) or 'nothing (no conflict)'}, and pushed"
        ),
    )


def _stage_reviews(project: Project) -> Stage:
    """Every code owner a PR needs approves it (the reviewers' part, done here by the demo)."""
    from coditect_cli.services import prs, reviews

    listing = prs.list_prs(project, PHASE)
    approvals: list[dict[str, Any]] = []
    for view in listing.rows:
        if view.pr is None or view.pr.state != "open" or view.stream is None:
            continue
        for need in view.needs:
            # Paths no stream owns: one maintainer approves (none named: nobody can, and the PR waits).
            owner = (need.any_of[0] if need.any_of else None) if need.maintainer else need.owner
            if owner is None:
                continue
            reviews.review(project, PHASE, view.stream, owner=owner, state="approved", repo=view.repo)
            approvals.append({"stream": view.stream, "repo": view.repo, "pr": view.pr.number, "owner": owner})
    after = prs.list_prs(project, PHASE)

    def show(console: Console) -> None:
        from coditect_cli.render.prs import print_listing

        for a in approvals:
            console.print(f"approved {a['repo']}#{a['pr']} ({a['stream']}) as {a['owner']}")
        print_listing(console, after)

    return Stage(
        "reviews",
        "coditect pr approve (each code owner a PR needs)",
        {"approvals": approvals, "list": after.to_json()},
        show,
    )


def _stage_checkpoint(n: int) -> Callable[[Project], Stage]:
    """`coditect checkpoint N`: merge the ready PRs only if the merged result passes the gates."""

    def stage(project: Project) -> Stage:
        from coditect_cli.render.gating import print_checkpoint
        from coditect_cli.services.checkpoint import run_checkpoint

        result = run_checkpoint(project, PHASE, n, socket=demo_socket(project.root))
        return Stage(
            f"checkpoint_{n}",
            f"coditect checkpoint {n}",
            result.to_json(),
            lambda c: print_checkpoint(c, result),
        )

    return stage


def _push_commit(
    project: Project, stream: str, repo: str, path: str, edit: Callable[[str], str], message: str
) -> dict[str, Any]:
    """A stream edits ``path`` in its worktree of ``repo``, commits (through the guard) and pushes."""
    from coditect_cli.adapters import proc
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.setup import read_context

    ctx = read_context(project, PHASE)
    pair = next(p for p in ctx.manifest.pairs() if p.key == f"{stream}@{repo}")
    worktree = worktree_path(ctx.manifest, project.root, pair)
    target = worktree / path
    target.write_text(edit(target.read_text(encoding="utf-8") if target.exists() else ""), encoding="utf-8")
    proc.run(["git", "-C", str(worktree), "add", "--", path])
    proc.run(["git", "-C", str(worktree), "commit", "-q", "-m", message])
    proc.run(["git", "-C", str(worktree), "push", "-q", "origin", pair.branch])
    return {
        "stream": stream,
        "repo": repo,
        "path": path,
        "message": message,
        "branch": pair.branch,
        "reapproved": _reapprove(project, stream, repo),
    }


def _reapprove(project: Project, stream: str, repo: str) -> list[str]:
    """The owners whose approval of ``stream``'s PR in ``repo`` went stale with a push review the new head
    (an approval counts for the head it was given on)."""
    from coditect_cli.services import prs, reviews

    owners: list[str] = []
    for view in prs.pr_status(project, PHASE, stream, repo).rows:
        for need in view.stale:
            owner = need.approved_by or need.owner
            reviews.review(project, PHASE, stream, owner=owner, state="approved", repo=repo)
            owners.append(owner)
    return owners


def _stage_break(project: Project) -> Stage:
    """Frontend commits a change that breaks its test gate (it passed its own checks earlier)."""
    data = _push_commit(
        project,
        "frontend",
        "frontend",
        "tests/login.test.ts",
        lambda text: text + "\n// FAIL_GATE: asserts the mock's response shape\n",
        "test(ui): pin the login response shape",
    )
    return Stage(
        "breaking_change",
        "frontend pushes a change that breaks the integration gates",
        data,
        lambda c: c.print(
            f"frontend committed {data['path']} ({data['message']}) and pushed it"
            + "".join(f"; {o} approved the new head" for o in data["reapproved"])
        ),
    )


def _stage_fix(project: Project) -> Stage:
    """Frontend fixes what checkpoint 2 told it about."""
    data = _push_commit(
        project,
        "frontend",
        "frontend",
        "tests/login.test.ts",
        lambda text: text.replace("FAIL_GATE", "checked"),
        "fix(ui): match the real /auth response",
    )
    return Stage(
        "fix",
        "frontend fixes the change checkpoint 2 left out",
        data,
        lambda c: c.print(
            f"frontend committed {data['path']} ({data['message']}) and pushed it"
            + "".join(f"; {o} approved the new head" for o in data["reapproved"])
        ),
    )


def _stage_finish_tasks(project: Project) -> Stage:
    """The streams report their remaining deliverables done, in dependency order."""
    from coditect_cli.services.tasks import list_tasks, set_task

    done: list[str] = []
    pending = [v for v in list_tasks(project, PHASE).views if v.state != "done"]
    while pending:
        states = {v.task.id for v in list_tasks(project, PHASE).views if v.state == "done"}
        ready = [v for v in pending if all(d in states for d in v.task.depends_on)] or pending[:1]
        for view in ready:
            set_task(project, PHASE, view.stream, view.task.id, "done")
            done.append(view.task.id)
        pending = [v for v in pending if v not in ready]
    return Stage(
        "tasks_finished",
        "the streams finish their deliverables (coditect task done)",
        {"done": done},
        lambda c: c.print(f"{len(done)} task(s) reported done: {', '.join(done)}"),
    )


def _stage_merge_phase(project: Project) -> Stage:
    from coditect_cli.render.gating import print_merge_phase
    from coditect_cli.services.merge_phase import merge_phase

    result = merge_phase(project, PHASE, land=True, socket=demo_socket(project.root))
    return Stage(
        "merge_phase", "coditect merge-phase --land", result.to_json(), lambda c: print_merge_phase(c, result)
    )


def _stage_sync(kind: str, day: int) -> Callable[[Project], Stage]:
    """A morning or evening sync of ``day`` (the evening one runs the streams' gates)."""

    def stage(project: Project) -> Stage:
        from coditect_cli.render.day import print_sync
        from coditect_cli.services import sync

        socket = demo_socket(project.root)
        if kind == "morning":
            result = sync.morning(project, PHASE, day=day, socket=socket, send=True)
        else:
            result = sync.evening(project, PHASE, day=day, socket=socket, run_gates=True)
        return Stage(
            f"sync_{kind}_day{day}",
            f"coditect sync {kind} --day {day}",
            result.to_json(),
            lambda c: print_sync(c, result),
        )

    return stage


def _stage_tasks(project: Project) -> Stage:
    """The agents report progress: each stream's first deliverable is done, the second started."""
    from coditect_cli.render.day import print_tasks
    from coditect_cli.services.tasks import list_tasks, set_task

    changes = []
    loaded = list_tasks(project, PHASE)
    firsts: dict[str, list[str]] = {}
    for view in loaded.views:
        firsts.setdefault(view.stream, []).append(view.task.id)
    for stream, tasks in firsts.items():
        changes.append(set_task(project, PHASE, stream, tasks[0], "done").to_json())
        if len(tasks) > 1:
            changes.append(set_task(project, PHASE, stream, tasks[1], "in-progress").to_json())
    listing = list_tasks(project, PHASE)
    return Stage(
        "tasks",
        "coditect task done|start (progress reported by the streams)",
        {"changes": changes, "tasks": listing.to_json()},
        lambda c: print_tasks(c, listing),
    )


def _stage_status(day: int) -> Callable[[Project], Stage]:
    def stage(project: Project) -> Stage:
        from coditect_cli.render.day import print_dashboard
        from coditect_cli.services.dashboard import dashboard

        board = dashboard(project, PHASE, day=day, socket=demo_socket(project.root))
        return Stage(
            f"status_day{day}",
            f"coditect status --day {day}",
            board.to_json(),
            lambda c: print_dashboard(c, board),
        )

    return stage


def _stage_prs(project: Project) -> Stage:
    """Open a PR per (stream, repository) pair that has commits, on the local forge; then `pr list`."""
    from coditect_cli.render.prs import print_listing, print_outcomes
    from coditect_cli.services import prs

    opened = prs.open_all(project, PHASE)
    listing = prs.list_prs(project, PHASE)

    def show(console: Console) -> None:
        print_outcomes(console, opened)
        print_listing(console, listing)

    return Stage(
        "prs",
        "coditect pr open (each stream) · coditect pr list",
        {"opened": [o.to_json() for o in opened], "list": listing.to_json()},
        show,
    )


def run_demo(directory: Path, app: AppContext) -> DemoResult:
    """Build (or rebuild) the sandbox in ``directory`` and run the phase's flow in it."""
    from coditect_cli.sandbox import build_sandbox

    _stop_previous_session(directory)
    sandbox = build_sandbox(directory, example_manifest())
    project = Project(sandbox.root)
    result = DemoResult(sandbox)
    stages: list[Callable[[Project], Stage]] = [
        _stage_validate,
        _stage_setup,
        _stage_sync("morning", 1),
        _stage_launch,
        _stage_tasks,
        _stage_agents,
        _stage_plant_shared_edit,
        _stage_conflicts,
        _stage_prs,
        _stage_sync("evening", 1),
        _stage_status(1),
        _stage_resolve,
        _stage_reviews,
        _stage_sync("morning", 3),
        _stage_checkpoint(1),
        _stage_break,
        _stage_checkpoint(2),
        _stage_fix,
        _stage_checkpoint(3),
        _stage_finish_tasks,
        _stage_checkpoint(4),
        _stage_merge_phase,
        _stage_status(12),
    ]
    for stage in stages:
        result.stages.append(stage(project))
    return result
