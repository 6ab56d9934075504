"""``coditect merge-phase``: land the phase's integration branch on the target branch and tag the release.

It requires every checkpoint passed (``--force "reason"`` proceeds anyway and records the reason as an
event); merges the remaining ready PRs as a checkpoint does, gated by every stream's gates *and* the
manifest's full suite (``merge.suite``), so the integration tip it proposes has passed the suite; then, per
repository, submodules first: opens the PR integration -> target (``--land`` also merges it), and creates
the annotated release tag (its message: the phase's merged PRs by stream) on the landed commit (without
``--land``: on the integration tip), pushed. The superproject comes last. Its gate (the suite) ran on a
commit pointing its gitlinks at the submodules' staged commits, with the submodules checked out there, before
anything moved; that commit is what its integration branch lands on, and once the submodules are released a
commit on top points the gitlinks at the released commits (their trees must be the gated ones); then it is
proposed, landed and tagged the same way. With ``--land`` the feature branches whose PRs were merged are
deleted at the end (origin, and locally unless a stream's worktree has them checked out; ``--keep-branches``
keeps them all). Journaled like a checkpoint: ``--continue`` / ``--abort``. Run again once finished, with
the integration branches unmoved, it does nothing (and says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from coditect_cli.domain.gating import BatchPr, GateSpec, RefMove, StepRecord, gate_specs, superproject
from coditect_cli.errors import CheckFailed, ExitCode, Problem, UnavailableError, UsageError
from coditect_cli.forge.base import ProposalSpec, PullRequest
from coditect_cli.project import Project
from coditect_cli.services.gating import (
    Integration,
    Resume,
    landed,
    mark_aborted,
    passed_checkpoints,
    phase_notes,
    reopen,
    report_path,
    run_journaled,
    write_report,
    write_result,
)
from coditect_cli.services.journal import Journal, StepContext
from coditect_cli.services.prs import Session
from coditect_cli.services.staging import Chain
from coditect_cli.state import forge_records


@dataclass
class MergePhaseResult:
    """What ``coditect merge-phase`` did (or, dry run, would do)."""

    phase: str
    target: str
    tag: str | None
    land: bool
    status: str  # landed | proposed | failed | planned | aborted | interrupted
    forced: str | None = None
    missing: list[int] = field(default_factory=list)
    merged: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    branches: dict[str, Any] = field(default_factory=dict)
    gate_runs: int = 0
    gate_commands: int = 0
    flakes: list[dict[str, Any]] = field(default_factory=list)  # flaky gates that failed, then passed
    notes_md: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    journal: int | None = None
    resumed: bool = False
    dry_run: bool = False
    already: bool = False  # finished by an earlier run: nothing was done now
    adopted: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """3 when the suite (or the gates) failed, else 0."""
        return ExitCode.CHECK_FAILED if self.status == "failed" else ExitCode.OK

    @property
    def problems(self) -> tuple[Problem, ...]:
        """An error-severity problem when the run failed (for the envelope)."""
        if self.status != "failed":
            return ()
        failing = {r: i.get("failing") for r, i in self.repos.items() if i.get("failing")}
        return (Problem("gates-failed", f"the suite or the gates failed: {failing}; nothing was landed"),)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope and the store)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["missing_checkpoints"] = out.pop("missing")
        out["release_notes"] = out.pop("notes_md")
        return out


def _roots(s: Session) -> tuple[list[str], str | None]:
    """(submodules, superproject): the repository at ``.`` is the superproject, when there is one."""
    root, subs = superproject(s.manifest)
    return ([r.id for r in s.manifest.repositories] if root is None else list(subs)), root


def _plan(
    s: Session, project: Project, land: bool, force: str | None, keep: bool, adopt: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    m = s.manifest
    streams = [st.id for st in sorted(m.streams, key=lambda st: (st.terminal, st.id))]
    specs = gate_specs(m, streams, m.merge.suite)
    repos = [r.id for r in m.repositories]
    subs, root = _roots(s)
    target, tag = m.merge.target, m.merge.tag
    steps: list[tuple[str, dict[str, Any]]] = [
        ("check", {"force": force}),
        ("pause", {"streams": streams}),
        ("collect", {"streams": streams, "repos": repos, **({"adopt": adopt} if adopt else {})}),
        ("gate", {"gates": [g.to_json() for g in specs]}),
        # The superproject lands last: its gated commit points at the submodules' landed commits.
        *[("land", {"repo": r}) for r in [*subs, *([root] if root else [])]],
        ("notify", {}),
    ]
    for repo in [*subs, *([root] if root else [])]:
        if repo == root and subs:
            steps.append(("gitlinks", {"repo": repo, "submodules": subs}))
        steps.append(("propose", {"repo": repo, "target": target}))
        if land:
            steps.append(("deliver", {"repo": repo, "target": target}))
        if tag:
            steps.append(("tag", {"repo": repo, "tag": tag}))
    if land and not keep:
        steps += [("prune", {"repo": r}) for r in repos]
    steps += [
        ("report", {"path": str(report_path(project, m.phase, "merge-phase"))}),
        ("resume", {"streams": streams}),
    ]
    return steps


def _missing(s: Session) -> list[int]:
    statuses = passed_checkpoints(s)
    return [c.id for c in s.manifest.checkpoints if statuses.get(c.id) != "passed"]


def _step_result(journal: Journal, kind: str, repo: str) -> dict[str, Any] | None:
    for step in journal.steps():
        if step.kind == kind and step.payload.get("repo") == repo and step.state == "done":
            return step.result
    return None


def release_head(journal: Journal, repo: str) -> str:
    """What is released of ``repo``: the landed commit, else its integration tip (after the gitlinks commit)."""
    for kind in ("deliver", "gitlinks"):
        found = _step_result(journal, kind, repo)
        if found and found.get("commit"):
            return str(found["commit"])
    head = landed(journal, repo)
    assert head is not None
    return head


class _MergePhase:
    """The step handlers of one merge-phase run."""

    def __init__(self, it: Integration) -> None:
        assert it.journal is not None
        self.it = it
        self.s = it.s
        self.journal = it.journal
        self.m = it.s.manifest
        self._notes: str | None = None

    def passed(self) -> bool:
        """Whether the gates (and the suite) passed: nothing after them happens otherwise."""
        return bool(self.journal.result_of("gate")["passed"])

    def handlers(self) -> dict[str, Any]:
        """Every step kind's handler."""
        streams = [st.id for st in sorted(self.m.streams, key=lambda st: (st.terminal, st.id))]
        return {
            "check": self.check,
            "pause": lambda ctx: self.it.announce(
                streams, self._say("is integrating now. Pause: do not push")
            ),
            "collect": lambda ctx: self.it.collect(
                ctx.step.payload["streams"],
                ctx.step.payload["repos"],
                ctx.step.payload.get("adopt"),
                "merge-phase",
            ),
            "gate": lambda ctx: self.it.gate([GateSpec.from_json(g) for g in ctx.step.payload["gates"]]),
            "land": self.it.land,
            "notify": lambda ctx: self.it.notify(
                "merge-phase", "merge-phase", self.journal.result_of("gate")["left_out"]
            ),
            "gitlinks": self.gitlinks,
            "propose": self.propose,
            "deliver": self.deliver,
            "tag": self.tag,
            "prune": lambda ctx: (
                self.it.prune(ctx) if self.passed() else {"skipped": "the gates did not pass"}
            ),
            "report": self.report,
            "resume": lambda ctx: self.it.announce(
                streams, self._say(f"is {_status(self.journal)}. Resume work")
            ),
        }

    def undo(self) -> dict[str, Any]:
        """What ``--abort`` undoes besides refs: PRs marked merged, the recorded result."""
        return {
            "land": self.it.reopen,
            "deliver": self._reopen,
            "propose": self._close,
            "report": lambda step: mark_aborted(self.s, self.journal),
        }

    def irreversible(self, step: StepRecord) -> str | None:
        """A PR merged on a remote forge cannot be unmerged."""
        if step.kind != "deliver" or self.s.forges.kind(str(step.payload["repo"])) == "local":
            return self.it.irreversible(step)
        pr = self._pr(str(step.payload["repo"]), str(step.payload["target"]))
        return (
            f"the PR into {step.payload['target']} of {step.payload['repo']} was merged"
            if pr and pr.state == "merged"
            else None
        )

    def _close(self, step: StepRecord) -> None:
        """A PR this run opened on the local forge is closed again (GitHub's stay: a closed PR is noise too)."""
        repo = str(step.payload["repo"])
        if step.result and step.result.get("created") and self.s.forges.kind(repo) == "local":
            record = forge_records.pull_request(self.s.store, repo, int(step.result["number"]))
            if record is not None:
                forge_records.close_pull_request(self.s.store, record.id)

    def _reopen(self, step: StepRecord) -> None:
        for move in step.moves:
            if move.location == "origin" and move.new:
                reopen(self.s, str(step.payload["repo"]), None, move.new)

    def _say(self, what: str) -> str:
        return f"# coditect: merge-phase of {self.m.phase} {what}."

    def check(self, ctx: StepContext) -> dict[str, Any]:
        """Which checkpoints have not passed; with ``--force``, the reason is recorded as an event."""
        missing = _missing(self.s)
        force = ctx.step.payload.get("force")
        if missing and force:
            self.s.store.record_event(
                self.journal.run_id,
                "merge-phase",
                "force",
                phase=self.m.phase,
                detail={"reason": force, "missing_checkpoints": missing},
            )
        return {"missing": missing, "forced": force if missing else None}

    def notes(self) -> str:
        """The release notes (computed once per run)."""
        if self._notes is None:
            self._notes = phase_notes(self.s)
        return self._notes

    def gitlinks(self, ctx: StepContext) -> dict[str, Any]:
        """Point the superproject's gitlinks at the submodules' released commits (plumbing, a temporary index).

        The gate step gated the superproject with its gitlinks at the submodules' staged commits, and landed
        that commit; a released commit that differs (the PR into the target made a commit of its own) must
        have exactly the staged commit's tree, so the combination released is the combination gated.
        """
        from coditect_cli.adapters.git import Git, checked_out, commit_gitlinks
        from coditect_cli.services.gating import TreeMismatch

        if not self.passed():
            return {"skipped": "the gates did not pass"}
        repo = str(ctx.step.payload["repo"])
        path = self.it.paths[repo]
        branch = self.m.integration_branch
        tip = landed(self.journal, repo)
        assert tip is not None
        gated = dict(self.journal.result_of("gate")["repos"].get(repo, {}).get("submodules", {}))
        subs = {self.m.repository(sub).path.strip("/"): str(sub) for sub in ctx.step.payload["submodules"]}
        links = {p: release_head(self.journal, sub) for p, sub in subs.items()}

        def plan() -> list[RefMove]:
            for p, sha in links.items():
                seen = gated.get(p)
                if seen and seen != sha:
                    sub = Git(self.it.paths[subs[p]])
                    if sub.out("rev-parse", f"{sha}^{{tree}}") != sub.out("rev-parse", f"{seen}^{{tree}}"):
                        raise TreeMismatch(
                            f"the released commit {sha[:12]} of {subs[p]} does not have the tree the gates "
                            f"passed ({seen[:12]}'s): not pointing the superproject at an ungated combination",
                            hint=f"{self.m.merge.target} of {subs[p]} had commits the integration branch "
                            "did not; merge them into the integration branch and run merge-phase again",
                        )
            tag = self.m.merge.tag or "released"
            new = commit_gitlinks(
                path, tip, links, f"chore(coditect): point the submodules at their {tag} commits\n"
            )
            if new is None:
                return []
            local = Git(path).refs(f"refs/heads/{branch}").get(f"refs/heads/{branch}")
            where = checked_out(path).get(branch)
            return self.it.branch_moves(
                repo, {"origin": tip, "local": local, "checked_out": where and str(where)}, new
            )

        moves = ctx.move(plan)
        new = next((mv.new for mv in moves if mv.location == "origin"), None)
        return {"commit": new or tip, "links": links, "changed": new is not None}

    def _pr(self, repo: str, target: str) -> PullRequest | None:
        fr = self.s.forges.repo(repo)
        mine = [
            p for p in self.s.forges.forge(repo).list_prs(fr, target) if p.head == self.m.integration_branch
        ]
        return next((p for p in reversed(mine) if p.state == "open"), mine[-1] if mine else None)

    def propose(self, ctx: StepContext) -> dict[str, Any]:
        """Open the PR integration -> target (an open one is reused)."""
        if not self.passed():
            return {"skipped": "the gates did not pass"}
        repo, target = str(ctx.step.payload["repo"]), str(ctx.step.payload["target"])
        fr = self.s.forges.repo(repo)
        title = f"[{self.m.phase}] {self.m.title or self.m.phase}: land {self.m.integration_branch}"
        opened = self.s.forges.forge(repo).open_pr(
            fr, ProposalSpec(target, self.m.integration_branch, title, self.notes())
        )
        return {"number": opened.pr.number, "created": opened.created, "url": opened.pr.url}

    def deliver(self, ctx: StepContext) -> dict[str, Any]:
        """Merge the integration PR into the target: computed and pushed with a lease (local forge), or through
        the forge's API; a PR merged already is never merged again."""
        from coditect_cli.adapters.git import Git, checked_out, fetch_origin

        if not self.passed():
            return {"skipped": "the gates did not pass"}
        repo, target = str(ctx.step.payload["repo"]), str(ctx.step.payload["target"])
        fr, forge = self.s.forges.repo(repo), self.s.forges.forge(repo)
        pr = self._pr(repo, target)
        if pr is None:
            raise UnavailableError(f"the PR {self.m.integration_branch} -> {target} of {repo!r} is gone")
        if pr.state == "merged" and not ctx.step.moves:
            return {"commit": pr.merge_commit, "number": pr.number, "already": True}
        head = str(
            (_step_result(self.journal, "gitlinks", repo) or {}).get("commit") or landed(self.journal, repo)
        )
        strategy = self.m.merge.strategy
        if forge.kind != "local":
            if pr.state == "open":
                forge.merge_pr(fr, pr, strategy, title=pr.title, expected_head=head)
            failed = fetch_origin(fr.path)
            if failed:
                raise UnavailableError(f"cannot fetch origin of repository {repo!r}: {failed}")
            return {
                "commit": Git(fr.path).out("rev-parse", f"refs/remotes/origin/{target}"),
                "number": pr.number,
            }

        def plan() -> list[RefMove]:
            failed = fetch_origin(fr.path)
            if failed:
                raise UnavailableError(f"cannot fetch origin of repository {repo!r}: {failed}")
            git = Git(fr.path)
            refs = git.refs(f"refs/heads/{target}", f"refs/remotes/origin/{target}")
            tip = refs[f"refs/remotes/origin/{target}"]
            item = BatchPr(repo, pr.number, "", 0, pr.head, head, target, pr.title, pr.body)
            try:
                new = Chain(fr.path, tip, strategy, {item.key: item}).commit_for([item.key])
            except CheckFailed as exc:
                self.it.notes.append(
                    f"{repo}: {target} already has {self.m.integration_branch} ({exc.message})"
                )
                return []
            where = checked_out(fr.path).get(target)
            tips = {
                "origin": tip,
                "local": refs.get(f"refs/heads/{target}"),
                "checked_out": where and str(where),
            }
            return self.it.branch_moves(repo, tips, new, branch=target)

        moves = ctx.move(plan)
        pushed = next((mv for mv in moves if mv.location == "origin"), None)
        if pushed is None:
            return {
                "commit": Git(fr.path).out("rev-parse", f"refs/remotes/origin/{target}"),
                "number": pr.number,
                "nothing": True,
            }
        record = forge_records.pull_request(self.s.store, repo, pr.number)
        if record is not None and record.state == "open":
            assert pushed.old is not None and pushed.new is not None
            forge_records.mark_pull_request_merged(
                self.s.store,
                record.id,
                head_sha=head,
                base_sha=pushed.old,
                merge_commit=pushed.new,
                strategy=strategy,
            )
        return {"commit": pushed.new, "number": pr.number}

    def tag(self, ctx: StepContext) -> dict[str, Any]:
        """The annotated release tag with the notes, pushed; on GitHub also a release."""
        if not self.passed():
            return {"skipped": "the gates did not pass"}
        repo, name = str(ctx.step.payload["repo"]), str(ctx.step.payload["tag"])
        target = release_head(self.journal, repo)
        made = self.it.tag(ctx, target, self.notes())
        if self.s.forges.kind(repo) != "local":
            fr = self.s.forges.repo(repo)
            release = self.s.forges.forge(repo).release(
                fr, name, target, f"{self.m.phase} {name}", self.notes()
            )
            made["url"] = release.url
        return {**made, "repo": repo}

    def report(self, ctx: StepContext) -> dict[str, Any]:
        """Write the report and record the outcome."""
        from coditect_cli.render.gating import merge_phase_markdown

        path = Path(str(ctx.step.payload["path"]))
        result = assemble(self.s, self.journal, self.it.notes)
        result.status = _status(self.journal)
        result.report = str(path)
        written = write_report(self.it.notes, path, merge_phase_markdown(result))
        result.report = written
        write_result(
            self.s,
            self.journal,
            "merge-phase",
            None,
            "passed" if self.passed() else "failed",
            result.to_json(),
            Path(written) if written else None,
        )
        return {"path": written, "status": result.status}


def _status(journal: Journal) -> str:
    """aborted, failed (the gates), landed or proposed (while the report is written: it is about to be)."""
    if journal.info.state == "aborted":
        return "aborted"
    try:
        gated = journal.result_of("gate")
    except KeyError:
        return "interrupted"
    if not gated["passed"]:
        return "failed"
    return "landed" if journal.info.args.get("land") else "proposed"


def assemble(s: Session, journal: Journal, notes: Sequence[str]) -> MergePhaseResult:
    """The result of a merge-phase run, from its journal."""
    from coditect_cli.render.gating import step_line

    m = s.manifest
    journal = Journal.load(s.store, journal.id) or journal
    steps = journal.steps()
    done = {
        (st.kind, str(st.payload.get("repo", ""))): st.result or {} for st in steps if st.result is not None
    }
    gated = done.get(("gate", ""), {})
    check = done.get(("check", ""), {})
    repos: dict[str, dict[str, Any]] = {}
    for repo in m.repositories:
        info: dict[str, Any] = {}
        g = gated.get("repos", {}).get(repo.id)
        if g:
            info["integration"] = g.get("tested") or g.get("start")
            if g.get("failing"):
                info["failing"] = g["failing"]
        for kind, key in (
            ("gitlinks", "commit"),
            ("propose", "number"),
            ("deliver", "commit"),
            ("tag", "target"),
        ):
            value = done.get((kind, repo.id), {}).get(key)
            if value is not None:
                info[
                    {"gitlinks": "gitlinks", "propose": "pr", "deliver": "landed", "tag": "tagged"}[kind]
                ] = value
        repos[repo.id] = info
    status = "interrupted" if journal.info.state == "open" else _status(journal)
    branches = {r: done[("prune", r)] for r in (x.id for x in m.repositories) if ("prune", r) in done}
    merged = (
        [e for i in gated.get("repos", {}).values() for e in i.get("chain", [])]
        if gated.get("passed") and status != "aborted"
        else []
    )
    rank = {(b["repo"], b["number"]): i for i, b in enumerate(done.get(("collect", ""), {}).get("batch", []))}
    merged.sort(key=lambda e: rank.get((e["repo"], e["number"]), len(rank)))
    brief = [{k: v for k, v in e.items() if k not in ("body", "terminal")} for e in merged]
    return MergePhaseResult(
        m.phase,
        m.merge.target,
        m.merge.tag,
        bool(journal.info.args.get("land")),
        status,
        forced=check.get("forced"),
        missing=list(check.get("missing", [])),
        adopted={
            r: t["adopted"]
            for r, t in done.get(("collect", ""), {}).get("repos", {}).items()
            if t.get("adopted")
        },
        merged=brief,
        left_out=[{k: v for k, v in e.items() if k != "body"} for e in gated.get("left_out", [])],
        repos=repos,
        branches=branches,
        gate_runs=int(gated.get("gate_runs", 0)),
        gate_commands=int(gated.get("gate_commands", 0)),
        flakes=list(gated.get("flakes", [])),
        steps=[{**st.to_json(), "describe": step_line(st.kind, st.payload)} for st in steps],
        report=done.get(("report", ""), {}).get("path"),
        journal=journal.id,
        notes=list(dict.fromkeys(notes)),
    )


def _finished(it: Integration, land: bool) -> MergePhaseResult | None:
    """The last merge-phase's result when it finished (landed; or proposed, and ``land`` not asked now) and
    every integration branch is still where it left them: running it again would change nothing."""
    from coditect_cli.services.staging import integration_tips
    from coditect_cli.state.journal_records import gating_status, last_journal

    s = it.s
    info = last_journal(s.store, s.manifest.phase, "merge-phase")
    if info is None or info.state != "done" or gating_status(s.store, info.id) != "passed":
        return None
    if land and not info.args.get("land"):
        return None  # proposed then; landing now is new work
    journal = Journal(s.store, info)
    now = integration_tips(it, [r.id for r in s.manifest.repositories])
    for repo, tips in now.items():
        left = (_step_result(journal, "gitlinks", repo) or {}).get("commit") or landed(journal, repo)
        if left != tips["origin"]:
            return None
    result = assemble(s, journal, it.notes)
    result.already = True
    result.notes.append(
        f"merge-phase of {s.manifest.phase} was {result.status} already (journal {info.id}, "
        f"{info.finished}) and the integration branches have not moved since: nothing to do"
    )
    return result


def merge_phase(
    project: Project,
    phase: str | None,
    *,
    land: bool,
    force: str | None = None,
    keep_branches: bool = False,
    socket: str | None = None,
    dry_run: bool = False,
    resume: Resume | None = None,
    env: Mapping[str, str] | None = None,
    adopt: str | None = None,
) -> MergePhaseResult:
    """Land (``land``) or propose the phase, tag the release; or ``resume`` an interrupted run.

    Run again after it finished (landed, or proposed and not asked to land now) with nothing new on the
    integration branches, it does nothing and says so: no new PR, no second result."""
    from coditect_cli.render.gating import step_line
    from coditect_cli.services.journal import require_open
    from coditect_cli.services.prs import session
    from coditect_cli.state.lock import phase_lock

    if force is not None and not force.strip():
        raise UsageError("--force needs a reason", hint='e.g. --force "checkpoint 4 ran by hand on staging"')
    with session(project, phase, env=env) as s:
        it = Integration(project, s, socket=socket, notes=s.notes)
        m = s.manifest
        if resume is None:
            finished = _finished(it, land)
            if finished is not None:
                return finished
            missing = _missing(s)
            if missing and force is None:
                raise CheckFailed(
                    f"checkpoint(s) {', '.join(map(str, missing))} of phase {m.phase} have not passed; "
                    "not merging the phase",
                    hint='run them (`coditect checkpoint N`), or `--force "why"` to proceed and record why',
                )
            steps = _plan(s, project, land, force, keep_branches, adopt)
            if dry_run:
                return MergePhaseResult(
                    m.phase,
                    m.merge.target,
                    m.merge.tag,
                    land,
                    "planned",
                    forced=force if missing else None,
                    missing=missing,
                    dry_run=True,
                    notes=it.notes,
                    steps=[
                        {"index": i, "kind": k, "payload": p, "state": "planned", "describe": step_line(k, p)}
                        for i, (k, p) in enumerate(steps)
                    ],
                )
        elif adopt is not None:
            raise UsageError("--adopt-tip starts a run: it does not go with --continue or --abort")
        elif dry_run:
            result = assemble(s, require_open(s.store, m.phase, "merge-phase"), it.notes)
            result.dry_run = True
            return result
        with phase_lock(s.common_dir, m.phase, "coditect merge-phase"):
            if resume is None:
                it.preflight([r.id for r in m.repositories], adopt, "merge-phase")
            subs, root = _roots(s)
            args = {"land": land, "force": force, "logs": "merge-phase", "gitlinks": bool(root and subs)}
            journal, restored = run_journaled(
                it, "merge-phase", resume, steps if resume is None else None, "merge-phase", args, _MergePhase
            )
            if resume == "abort":
                streams = [st.id for st in m.streams]
                it.announce(streams, f"# coditect: merge-phase of {m.phase} was aborted. Resume work.")
        result = assemble(s, journal, it.notes)
        result.notes_md = _MergePhase(it).notes() if result.status not in ("failed",) else ""
        result.resumed = resume is not None
        result.restored = [mv.to_json() for mv in restored]
        return result
