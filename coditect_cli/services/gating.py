"""What ``checkpoint`` and ``merge-phase`` share: the run's context (:class:`Integration`), the steps that
move refs (land a repository's batch, tag, tell the streams) with what ``--abort`` undoes, and the journaled
runner that starts, continues or aborts a command's journal (:func:`run_journaled`).

Landing, per repository: on the local forge the integration branch moves to exactly the tested commit (a
push with a lease on the tip the batch was staged on, then a compare-and-swap of the local branch unless a
worktree has it checked out) and the PRs are marked merged with their staging commits, as the local forge's
own merge would record them. On a remote forge (GitHub) the PRs are merged through the API in the same order
(each one's state read first, so none is merged twice) and the resulting tree must equal the tested tree:
a mismatch stops the run (:class:`TreeMismatch`). Such merges cannot be undone, so ``--abort`` refuses then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from coditect_cli.domain.gating import BatchPr, GateSpec, Location, RefMove, StepRecord, blame_text
from coditect_cli.errors import CoditectError, ExitCode, RefusedError, UnavailableError, UsageError
from coditect_cli.forge.base import MergeStrategy, PullRequest
from coditect_cli.project import Project
from coditect_cli.services.journal import Handler, Journal, StepContext, Undo, read_refs
from coditect_cli.services.prs import Session
from coditect_cli.state import forge_records, journal_records

Resume = Literal["continue", "abort"]


class TreeMismatch(CoditectError):
    """The forge's merges did not produce the tree the gates passed: stop, and say so."""

    exit_code = ExitCode.ERROR
    code = "tree-mismatch"


@dataclass
class Integration:
    """The steps a checkpoint and merge-phase share, on one session (manifest, store, forges)."""

    project: Project
    s: Session
    journal: Journal | None = None
    socket: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, Path]:
        """Each repository's checkout."""
        return {r.id: self.s.forges.repo(r.id).path for r in self.s.manifest.repositories}

    @property
    def logs(self) -> Path:
        """This run's log directory (set by the command)."""
        assert self.journal is not None
        label = str(self.journal.info.args.get("logs", "run"))
        return (
            self.s.common_dir / "coditect" / "logs" / self.s.manifest.phase / label / f"run-{self.journal.id}"
        )

    def announce(self, streams: Sequence[str], text: str) -> dict[str, Any]:
        """Type ``text`` into each stream's pane; without a tmux session, skip quietly and say so."""
        from coditect_cli.services.streams import send

        delivered: list[str] = []
        skipped: dict[str, str] = {}
        for stream in streams:
            try:
                done = send(self.project, self.s.manifest.phase, stream, text, socket=self.socket)
                delivered += done.delivered
                skipped.update(done.skipped)
            except (UnavailableError, UsageError) as exc:
                if "no tmux session" in exc.message or "not installed" in exc.message:
                    note = "no tmux session of the phase: the streams' panes were not told (see the report)"
                    if note not in self.notes:
                        self.notes.append(note)
                    return {"delivered": [], "skipped": {s: "no tmux session" for s in streams}, "text": text}
                skipped[stream] = exc.message
        return {"delivered": delivered, "skipped": skipped, "text": text}

    def collect(
        self,
        streams: Sequence[str],
        repos: Sequence[str],
        adopt: str | None = None,
        command: str = "checkpoint",
    ) -> dict[str, Any]:
        """Freeze the batch (see :func:`coditect_cli.services.staging.collect`)."""
        from coditect_cli.services.staging import collect

        return collect(self, streams, repos, adopt, command)

    def gate(self, specs: Sequence[GateSpec]) -> dict[str, Any]:
        """Stage, gate and bisect the batch (see :func:`coditect_cli.services.staging.gate`)."""
        from coditect_cli.services.staging import gate

        return gate(self, specs)

    # ------------------------------------------------------------------------------------------ landing

    def land(self, ctx: StepContext) -> dict[str, Any]:
        """Move ``repo``'s integration branch to the tested commit (local forge) or merge through the API."""
        repo = str(ctx.step.payload["repo"])
        gated = ctx.journal.result_of("gate")
        info = gated["repos"].get(repo)
        if not gated["passed"]:
            return {"skipped": "the gates did not pass"}
        if info is None or (not info["chain"] and info.get("tested") in (None, info["start"])):
            return {"skipped": "nothing to merge", "commit": gated["repos"].get(repo, {}).get("start")}
        tips = ctx.journal.result_of("collect")["repos"][repo]
        strategy = self.s.manifest.merge.strategy
        if tips["forge"] == "local":
            return self._land_local(ctx, repo, info, tips, strategy)
        return self._land_forge(ctx, repo, info, tips, strategy)

    def _land_local(
        self,
        ctx: StepContext,
        repo: str,
        info: Mapping[str, Any],
        tips: Mapping[str, Any],
        strategy: MergeStrategy,
    ) -> dict[str, Any]:
        store = self.s.store
        for entry in info["chain"]:
            record = forge_records.pull_request(store, repo, int(entry["number"]))
            if record is None or (record.state != "open" and record.merge_commit != entry["commit"]):
                state = "gone" if record is None else record.state
                raise RefusedError(
                    f"#{entry['number']} of {repo!r} is {state} now; it was open when collected",
                    hint="`--abort` puts back what this run moved",
                )
        ctx.move(lambda: self.branch_moves(repo, tips, str(info["tested"])))
        merged: list[int] = []
        for entry in info["chain"]:
            record = forge_records.pull_request(store, repo, int(entry["number"]))
            assert record is not None
            if record.state == "open":
                forge_records.mark_pull_request_merged(
                    store,
                    record.id,
                    head_sha=entry["head_sha"],
                    base_sha=entry["base_sha"],
                    merge_commit=entry["commit"],
                    strategy=strategy,
                )
            merged.append(int(entry["number"]))
        return {"commit": info["tested"], "merged": merged}

    def branch_moves(
        self, repo: str, tips: Mapping[str, Any], new: str, branch: str | None = None
    ) -> list[RefMove]:
        """Origin's branch (lease on its collected tip), then the local one unless a worktree has it out."""
        ref = f"refs/heads/{branch or self.s.manifest.integration_branch}"
        moves = [RefMove(repo, ref, "origin", str(tips["origin"]), new)]
        if tips.get("local") and tips["local"] != new:
            if tips.get("checked_out"):
                self.notes.append(
                    f"{ref.removeprefix('refs/heads/')} of {repo} is checked out in "
                    f"{tips['checked_out']}: left as it is (pull there)"
                )
            else:
                moves.append(RefMove(repo, ref, "local", str(tips["local"]), new))
        return moves

    def _land_forge(
        self,
        ctx: StepContext,
        repo: str,
        info: Mapping[str, Any],
        tips: Mapping[str, Any],
        strategy: MergeStrategy,
    ) -> dict[str, Any]:
        from coditect_cli.adapters.git import Git, fetch_origin

        forge, fr = self.s.forges.forge(repo), self.s.forges.repo(repo)
        merged: list[int] = []
        # The forge's state, read now (after a kill too): a PR is never merged twice.
        current = {p.number: p for p in forge.list_prs(fr, self.s.manifest.integration_branch)}
        for entry in info["chain"]:
            pr = current.get(int(entry["number"]))
            if pr is None:
                raise UnavailableError(f"#{entry['number']} of {repo!r} is no longer on the forge")
            if pr.state == "open":
                forge.merge_pr(
                    fr, pr, strategy, title=str(entry["title"]), expected_head=str(entry["head_sha"])
                )
            elif pr.state != "merged":
                raise RefusedError(f"#{pr.number} of {repo!r} was closed meanwhile; not merging the rest")
            merged.append(pr.number)
        failed = fetch_origin(fr.path)
        if failed:
            raise UnavailableError(
                f"cannot fetch origin of repository {repo!r} to verify the merges: {failed}"
            )
        git = Git(fr.path)
        tip = git.out("rev-parse", f"refs/remotes/origin/{self.s.manifest.integration_branch}")
        tree = git.out("rev-parse", f"{tip}^{{tree}}")
        if tree != (info.get("staged_tree") or info["tree"]):
            raise TreeMismatch(
                f"the merges on the forge made {self.s.manifest.integration_branch} of {repo!r} {tip[:12]} "
                f"with tree {tree[:12]}, but the gates passed tree "
                f"{str(info.get('staged_tree') or info['tree'])[:12]}: stopping",
                hint="someone else merged into the integration branch meanwhile, or the forge merged "
                "differently; check that branch before anything else is merged",
            )
        moves = [m for m in self.branch_moves(repo, {**tips, "origin": tip}, tip) if m.location == "local"]
        ctx.move(lambda: moves)
        return {"commit": tip, "merged": merged}

    def preflight(self, repos: Sequence[str], adopt: str | None, command: str) -> None:
        """Before a journal begins: refuse an integration tip coditect did not gate (unless ``adopt``)."""
        from coditect_cli.services.staging import integration_tips, ungated_tips

        adopted = ungated_tips(self, integration_tips(self, repos), adopt, command)
        if adopt is not None and not adopted:
            self.notes.append(
                "--adopt-tip: every integration tip was gated by coditect already; nothing adopted"
            )

    def _forge_pr(self, repo: str, number: int, base: str) -> PullRequest:
        fr = self.s.forges.repo(repo)
        for pr in self.s.forges.forge(repo).list_prs(fr, base):
            if pr.number == number:
                return pr
        raise UnavailableError(f"#{number} of {repo!r} is no longer on the forge")

    def tag(self, ctx: StepContext, target: str, message: str) -> dict[str, Any]:
        """Tag ``target`` as ``payload.tag`` (annotated), locally and on origin; an equal tag is kept."""
        from coditect_cli.adapters.git import Git, make_tag_object

        repo, name = str(ctx.step.payload["repo"]), str(ctx.step.payload["tag"])
        path = self.paths[repo]
        ref = f"refs/tags/{name}"
        if not ctx.step.moves:
            found = read_refs(self.paths, [(repo, "local", ref), (repo, "origin", ref)])
            present = {where: v for (_r, where, _ref), v in found.items() if v}
            for where, value in present.items():
                peeled = Git(path).run("rev-parse", "--verify", "-q", f"{value}^{{commit}}", check=False)
                if peeled.stdout.strip() != target:
                    raise RefusedError(
                        f"tag {name} already exists ({where}) in {repo!r} on "
                        f"{peeled.stdout.strip()[:12] or value[:12]}, not {target[:12]}; not moving a tag"
                    )
            if present:  # made by an earlier run: only what is missing, to the same tag object
                value = next(iter(present.values()))
                locations: tuple[Location, ...] = ("origin", "local")
                moves = [RefMove(repo, ref, loc, None, value) for loc in locations if loc not in present]
                ctx.move(lambda: moves)
                return {"tag": name, "repo": repo, "target": target, "created": False}

        def plan() -> list[RefMove]:
            obj = make_tag_object(path, name, target, message)
            return [RefMove(repo, ref, "origin", None, obj), RefMove(repo, ref, "local", None, obj)]

        ctx.move(plan)
        return {"tag": name, "repo": repo, "target": target, "created": True}

    def prune(self, ctx: StepContext) -> dict[str, Any]:
        """Delete the feature branches whose PRs were merged, on origin and locally; keep (and say why) one
        with an open PR, with commits beyond the merged head, or checked out in a worktree."""
        from coditect_cli.adapters.git import checked_out

        repo = str(ctx.step.payload["repo"])
        fr = self.s.forges.repo(repo)
        prs = self.s.forges.forge(repo).list_prs(fr, self.s.manifest.integration_branch)
        open_heads = {p.head for p in prs if p.state == "open"}
        merged = {p.head: p.head_sha for p in prs if p.state == "merged" and p.head not in open_heads}
        live = read_refs(
            self.paths, [(repo, loc, f"refs/heads/{b}") for b in merged for loc in ("local", "origin")]
        )
        busy = checked_out(fr.path)
        kept = [
            {"branch": b, "reason": "it has an open PR"} for b in sorted({p.head for p in prs} & open_heads)
        ]
        planned: list[RefMove] = []
        for branch, sha in merged.items():
            locations: tuple[Location, ...] = ("origin", "local")
            for loc in locations:
                value = live[(repo, loc, f"refs/heads/{branch}")]
                if value is None:
                    continue
                if value != sha:
                    kept.append(
                        {"branch": f"{loc}:{branch}", "reason": f"it has commits beyond {(sha or '')[:12]}"}
                    )
                elif loc == "local" and branch in busy:
                    kept.append({"branch": f"local:{branch}", "reason": f"checked out in {busy[branch]}"})
                else:
                    planned.append(RefMove(repo, f"refs/heads/{branch}", loc, value, None))
        moves = ctx.move(lambda: planned)
        return {"deleted": [f"{m.location}:{m.ref.removeprefix('refs/heads/')}" for m in moves], "kept": kept}

    def notify(self, label: str, check: str, left_out: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Tell each stream whose PR was left out (``label``: "Checkpoint 2"): a comment on the PR, its pane,
        and, for a PR that broke the gates, a failing check ``check`` on the head that did."""
        told: list[dict[str, Any]] = []
        for item in left_out:
            pr = BatchPr.from_json(item)
            text = blame_text(label, pr, str(item["reason"]), item.get("logs", []))
            forge, fr = self.s.forges.forge(pr.repo), self.s.forges.repo(pr.repo)
            row: dict[str, Any] = {"repo": pr.repo, "number": pr.number, "stream": pr.stream}
            try:
                current = self._forge_pr(pr.repo, pr.number, pr.base)
                forge.comment_pr(fr, current, text)
                if item.get("kind") == "gates":
                    log = (item.get("logs") or [None])[0]
                    forge.record_check(fr, pr.head_sha, check, "failure", log)
                row["commented"] = True
            except CoditectError as exc:
                row["commented"] = False
                self.notes.append(f"could not comment on #{pr.number} of {pr.repo}: {exc.message}")
            pane = self.announce([pr.stream], "# coditect: " + text.splitlines()[0])
            row["pane"] = bool(pane["delivered"])
            told.append(row)
        return {"told": told}

    def reopen(self, step: StepRecord) -> None:
        """Undo a local land's bookkeeping: PRs it marked merged are open again (``--abort``)."""
        gated = self.journal.result_of("gate") if self.journal else {}
        info = gated.get("repos", {}).get(str(step.payload.get("repo")))
        for entry in info["chain"] if info else ():
            reopen(self.s, str(step.payload["repo"]), int(entry["number"]), str(entry["commit"]))

    def irreversible(self, step: StepRecord) -> str | None:
        """Why ``step`` cannot be undone: PRs it merged on a remote forge (GitHub keeps them merged)."""
        if step.kind != "land" or self.journal is None:
            return None
        repo = str(step.payload["repo"])
        if self.s.forges.kind(repo) == "local":
            return None
        info = self.journal.result_of("gate")["repos"].get(repo) or {}
        merged = [
            e["number"]
            for e in info.get("chain", [])
            if self._forge_pr(repo, int(e["number"]), str(e["base"])).state == "merged"
        ]
        return (
            f"#{', #'.join(map(str, merged))} of {repo} were merged on {self.s.forges.kind(repo)}"
            if merged
            else None
        )


def phase_notes(s: Session) -> str:
    """The release notes: every PR merged into the phase's integration branches, by stream, each with the
    checkpoint that merged it."""
    from coditect_cli.domain.gating import release_notes

    m = s.manifest
    checkpoint_of: dict[tuple[str, int], int] = {}
    for cp, data in journal_records.passed_checkpoint_data(s.store, m.phase):
        for pr in data.get("merged", []):
            checkpoint_of[(pr["repo"], int(pr["number"]))] = cp
    streams = {str(p.branch): p.stream.id for p in m.pairs()}
    merged: list[dict[str, Any]] = []
    for repo in m.repositories:
        fr = s.forges.repo(repo.id)
        for pr in s.forges.forge(repo.id).list_prs(fr, m.integration_branch):
            if pr.state == "merged":
                merged.append(
                    {
                        "repo": repo.id,
                        "number": pr.number,
                        "title": pr.title,
                        "stream": streams.get(pr.head, "other"),
                        "checkpoint": checkpoint_of.get((repo.id, pr.number)),
                    }
                )
    order = [st.id for st in sorted(m.streams, key=lambda st: (st.terminal, st.id))]
    return release_notes(m.phase, m.title, m.merge.tag or m.phase, merged, order)


def write_result(
    s: Session,
    journal: Journal,
    kind: str,
    checkpoint: int | None,
    status: str,
    data: Mapping[str, Any],
    report: Path | None,
) -> None:
    """Keep the outcome of a checkpoint or merge-phase in the store (one row per run)."""
    journal_records.record_gating_result(
        s.store, journal.id, s.manifest.phase, kind, checkpoint, status, data, str(report) if report else None
    )


def reopen(s: Session, repo: str, number: int | None, merge_commit: str) -> None:
    """Reopen the local forge's PR of ``repo`` that was marked merged as ``merge_commit`` (by this run)."""
    forge_records.reopen_merged_pull_requests(s.store, repo, number, merge_commit)


def passed_checkpoints(s: Session) -> dict[int, str]:
    """Each checkpoint's latest recorded status (passed, failed, aborted) in the session's phase."""
    return journal_records.checkpoint_statuses(s.store, s.manifest.phase)


def landed(journal: Journal, repo: str) -> str | None:
    """The integration tip of ``repo`` after the land step (or before it, when nothing landed)."""
    for step in journal.steps():
        if (
            step.kind == "land"
            and step.payload.get("repo") == repo
            and step.result
            and step.result.get("commit")
        ):
            return str(step.result["commit"])
    gated = journal.result_of("gate")["repos"].get(repo)
    return None if gated is None else str(gated["start"])


def write_report(notes: list[str], path: Path, text: str) -> str | None:
    """Write a run's report; return its path, or None (and a note why) when it cannot be written: the refs
    have moved by then, so a read-only or dangling reports directory never fails (or blocks) the run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        notes.append(f"could not write the report {path}: {exc.strerror or exc}; the result is in the store")
        return None
    return str(path)


def report_path(project: Project, phase: str, name: str) -> Path:
    """``workstreams/reports/<phase>/<name>.md``."""
    return project.workstreams / "reports" / phase / f"{name}.md"


def mark_aborted(s: Session, journal: Journal) -> None:
    """Undo a report step: the recorded result is ``aborted``, and the report says so."""
    from coditect_cli.state.store import utc_now

    journal_records.mark_gating_result_aborted(s.store, journal.id)
    for step in journal.steps():
        if step.kind == "report" and step.result and step.result.get("path"):
            path = Path(str(step.result["path"]))
            try:
                if path.is_file() and "**Aborted**" not in path.read_text(encoding="utf-8", errors="replace"):
                    with path.open("a", encoding="utf-8") as fh:
                        fh.write(f"\n**Aborted** at {utc_now()}: every ref this run moved was put back.\n")
            except OSError:
                pass  # the store says aborted; a report that cannot be written never blocks an abort


class Steps(Protocol):
    """A command's step handlers, what ``--abort`` undoes besides refs, and what it cannot undo."""

    def handlers(self) -> Mapping[str, Handler]:
        """Every step kind's handler."""

    def undo(self) -> Mapping[str, Undo]:
        """What ``--abort`` undoes, per step kind, besides the refs the step moved."""

    def irreversible(self, step: StepRecord) -> str | None:
        """Why ``step`` cannot be undone, or None."""


def run_journaled(
    it: Integration,
    command: str,
    resume: Resume | None,
    steps: list[tuple[str, dict[str, Any]]] | None,
    subject: str,
    args: Mapping[str, Any],
    make: Callable[[Integration], Steps],
) -> tuple[Journal, list[RefMove]]:
    """Start (``steps``), continue or abort the journal of ``command``; return it and any refs restored."""
    from coditect_cli.adapters.git import remove_gate_worktrees, remove_stale_gate_dirs
    from coditect_cli.adapters.mergetree import sweep_scratch
    from coditect_cli.services.journal import abort, check_refs, execute, require_open

    s = it.s
    phase = s.manifest.phase
    run_id = s.store.begin_run(command if resume is None else f"{command} --{resume}", phase)
    status = "failed"
    restored: list[RefMove] = []
    try:
        if resume is None:
            assert steps is not None
            journal = Journal.begin(s.store, command, phase, subject, args, steps, run_id)
        else:
            journal = require_open(s.store, phase, command)
            journal.run_id = run_id
            if resume == "continue" and journal.aborting:
                raise RefusedError(
                    f"an `--abort` of this `coditect {command}` began (journal {journal.id}): it cannot be "
                    "continued any more",
                    hint=f"finish putting it back with `coditect {command} --abort`",
                )
        it.journal = journal
        # What a killed run left: its gate worktrees, scratch object directories and index files.
        for path in it.paths.values():
            remove_gate_worktrees(path, phase)
        remove_stale_gate_dirs(phase)
        sweep_scratch()
        kinds = make(it)
        if resume == "abort":
            restored = abort(journal, it.paths, kinds.undo(), kinds.irreversible)
        else:
            if resume == "continue":
                check_refs(journal, it.paths)
            try:
                execute(journal, kinds.handlers(), it.paths)
            except CoditectError as exc:
                exc.hint = (exc.hint + "\n" if exc.hint else "") + (
                    f"the run is journaled: `coditect {command} --continue` finishes it, "
                    f"`coditect {command} --abort` puts every ref it moved back"
                )
                raise
            journal.finish("done")
        status = "ok"
    finally:
        s.store.finish_run(run_id, status)
    return journal, restored
