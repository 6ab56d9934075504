"""Reviewing and merging a stream's pull requests, and what gate runs and releases record on a forge.

``pr approve`` / ``pr request-changes`` record a code owner's verdict; ``pr merge`` merges what
:func:`coditect_cli.domain.prs.not_ready_reason` allows, under the phase lock; :func:`record_check` and
:func:`release` are what checkpoints and ``merge-phase`` call. Each works in a
:class:`coditect_cli.services.prs.Session` and journals its run and events in the state store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from coditect_cli.domain.gating import GateSpec
from coditect_cli.domain.manifest import Manifest
from coditect_cli.domain.prs import (
    MergeOutcome,
    MergeReport,
    PrView,
    ReviewOutcome,
    ReviewReport,
    code_owners,
    gates_reason,
    not_ready_reason,
)
from coditect_cli.errors import UsageError
from coditect_cli.forge.base import Check, CheckStatus, MergeStrategy, Release, ReviewState
from coditect_cli.project import Project
from coditect_cli.services.prs import (
    Session,
    journal_moves,
    journal_pr,
    session,
    stream_pairs,
    stream_views,
)


def _check_owner(manifest: Manifest, repo: str, owner: str) -> str:
    """``owner`` as CODEOWNERS (or ``maintainers:``) spells it, or a UsageError naming who may review in ``repo``.

    The code owners ``repo``'s CODEOWNERS lists review; so do the manifest's maintainers (they approve the
    paths no stream owns).
    """
    from coditect_cli.forge.base import same_owner

    owners = list(dict.fromkeys([*code_owners(manifest, repo), *manifest.maintainers]))
    for known in owners:
        if same_owner(known, owner):
            return known
    listed = ", ".join(code_owners(manifest, repo)) or "none"
    leads = (
        f"; the manifest's maintainers are {', '.join(manifest.maintainers)}" if manifest.maintainers else ""
    )
    raise UsageError(
        f"{owner} is not a code owner of repository {repo!r}: its CODEOWNERS lists {listed}{leads}",
        hint="review with --as set to one of them (the owners come from the manifest's streams and maintainers)",
    )


def review(
    project: Project,
    phase: str | None,
    stream: str,
    *,
    owner: str,
    state: ReviewState,
    repo: str | None = None,
    body: str = "",
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> ReviewReport:
    """Record ``owner``'s verdict on ``stream``'s open PR in ``repo`` (default: each repository it has one in).

    ``owner`` must be listed in the repository's CODEOWNERS (a UsageError naming the valid owners otherwise).
    """
    with session(project, phase, env=env) as s:
        pairs = stream_pairs(s.manifest, stream, repo)
        owners = {p.repo.id: _check_owner(s.manifest, p.repo.id, owner) for p in pairs}
        views = stream_views(s, pairs, open_only=True)
        if not any(v.pr is not None for v in views):
            where = f" in repository {repo!r}" if repo else ""
            raise UsageError(
                f"stream {stream!r} has no open pull request{where}",
                hint=f"open it first: `coditect pr open {stream}`",
            )
        outcomes: list[ReviewOutcome] = []
        if dry_run:
            for v in views:
                outcomes.append(
                    ReviewOutcome(stream, v.repo, v.pr, None, None if v.pr else "no open pull request")
                )
        else:
            command = "pr approve" if state == "approved" else "pr request-changes"
            with s.store.track_run(command, s.manifest.phase) as run_id:
                for v in views:
                    if v.pr is None:
                        outcomes.append(ReviewOutcome(stream, v.repo, None, None, "no open pull request"))
                        continue
                    fr = s.forges.repo(v.repo)
                    given = s.forges.forge(v.repo).review_pr(fr, v.pr, owners[v.repo], state, body)
                    outcomes.append(ReviewOutcome(stream, v.repo, v.pr, given))
                    journal_pr(
                        s, run_id, command, v.repo, "reviewed", v.pr, reviewer=given.reviewer, state=state
                    )
        return ReviewReport(
            s.manifest.phase, stream, owners[pairs[0].repo.id], state, outcomes, s.notes, dry_run
        )


def merge(
    project: Project,
    phase: str | None,
    stream: str,
    *,
    repo: str | None = None,
    strategy: MergeStrategy | None = None,
    force: bool = False,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> MergeReport:
    """Merge ``stream``'s open PRs (default strategy: the manifest's ``merge.strategy``) under the phase lock.

    A PR is refused unless every approval it needs counts for its head, nobody requests changes, no check
    fails, it merges cleanly, and the stream's gates in its repository passed on its head: gates that have
    not run on that exact commit are run first (in a temporary worktree of it, recorded as checks). A stream
    without gates in the repository needs at least one check on the head, all passed. ``force`` skips the
    review, check and gate rules, not the conflict one. The head merged is the head that was checked: if it
    moves meanwhile, the merge is refused.
    """
    from coditect_cli.domain.gating import gate_specs
    from coditect_cli.services.head_gates import unsettled
    from coditect_cli.state.lock import phase_lock

    with session(project, phase, env=env) as s:
        chosen: MergeStrategy = strategy or s.manifest.merge.strategy
        pairs = stream_pairs(s.manifest, stream, repo)
        specs = gate_specs(s.manifest, [stream])
        if dry_run:
            views = stream_views(s, pairs, open_only=True)
            outcomes = [
                MergeOutcome(
                    v,
                    None,
                    not_ready_reason(v) or gates_reason(v, _specs_of(specs, v.repo), before_running=True),
                    _names(unsettled(_specs_of(specs, v.repo), v.checks)) if not force else (),
                )
                for v in views
            ]
            return MergeReport(s.manifest.phase, stream, chosen, outcomes, s.notes, True)
        outcomes = []
        with (
            phase_lock(s.common_dir, s.manifest.phase, "coditect pr merge"),
            s.store.track_run("pr merge", s.manifest.phase) as run_id,
        ):
            for view in stream_views(s, pairs, open_only=True):
                reason = not_ready_reason(view)
                ran: tuple[str, ...] = ()
                if reason is None and view.pr is not None and not force:
                    ran = _names(unsettled(_specs_of(specs, view.repo), view.checks))
                    view = _gated(s, view, _specs_of(specs, view.repo))
                    reason = gates_reason(view, _specs_of(specs, view.repo))
                if reason is not None and force and view.pr is not None and view.mergeable is not False:
                    reason = None
                if reason is not None or view.pr is None:
                    outcomes.append(MergeOutcome(view, None, reason or "no open pull request", ran))
                    continue
                fr = s.forges.repo(view.repo)
                done = s.forges.forge(view.repo).merge_pr(fr, view.pr, chosen, expected_head=view.pr.head_sha)
                outcomes.append(MergeOutcome(view, done, None, ran))
                journal_pr(
                    s,
                    run_id,
                    "pr merge",
                    view.repo,
                    "merged",
                    view.pr,
                    commit=done.commit,
                    strategy=chosen,
                    already=done.already,
                    forced=force,
                )
                journal_moves(s, run_id, "pr merge")
        return MergeReport(s.manifest.phase, stream, chosen, outcomes, s.notes, False)


def _specs_of(specs: Sequence[GateSpec], repo: str) -> list[GateSpec]:
    return [g for g in specs if g.repo == repo]


def _names(specs: Sequence[GateSpec]) -> tuple[str, ...]:
    return tuple(name for spec in specs for name in spec.names)


def _gated(s: Session, view: PrView, specs: Sequence[GateSpec]) -> PrView:
    """``view`` with the checks of its head after running the gates that have no result on it yet."""
    from coditect_cli.services.head_gates import gate_runner, run_on_commit, unsettled

    todo = unsettled(specs, view.checks)
    if not todo or view.pr is None or not view.pr.head_sha:
        return view
    head = view.pr.head_sha
    logs = s.common_dir / "coditect" / "logs" / s.manifest.phase / "pr-merge"
    with gate_runner(s, f"merge~{s.manifest.phase}", logs) as runner:
        run_on_commit(s, runner, view.repo, head, todo, f"{view.stream}-{head[:12]}")
    checks = s.forges.forge(view.repo).checks(s.forges.repo(view.repo), head)
    return replace(view, checks=tuple(checks))


def record_check(
    project: Project,
    phase: str | None,
    repo: str,
    sha: str,
    name: str,
    status: CheckStatus,
    log: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Check:
    """Record a gate's result on commit ``sha`` of ``repo`` on the repository's forge (what gate runs call)."""
    with session(project, phase, env=env) as s:
        if repo not in {r.id for r in s.manifest.repositories}:
            raise UsageError(f"no repository {repo!r} in phase {s.manifest.phase}")
        return s.forges.forge(repo).record_check(s.forges.repo(repo), sha, name, status, log)


def release(
    project: Project,
    phase: str | None,
    repo: str,
    tag: str,
    sha: str,
    *,
    title: str | None = None,
    notes: str = "",
    env: Mapping[str, str] | None = None,
) -> Release:
    """Tag ``sha`` of ``repo`` as ``tag`` on origin (a GitHub release on GitHub); idempotent."""
    with session(project, phase, env=env) as s:
        if repo not in {r.id for r in s.manifest.repositories}:
            raise UsageError(f"no repository {repo!r} in phase {s.manifest.phase}")
        with s.store.track_run("release", s.manifest.phase) as run_id:
            made = s.forges.forge(repo).release(s.forges.repo(repo), tag, sha, title or tag, notes)
            s.store.record_event(
                run_id,
                "release",
                "release",
                phase=s.manifest.phase,
                repo=repo,
                ref=f"refs/tags/{tag}",
                new=sha,
                detail={"created": made.created, "url": made.url},
            )
            journal_moves(s, run_id, "release")
        return made


def comment(
    project: Project,
    phase: str | None,
    stream: str,
    *,
    owner: str,
    body: str,
    repo: str | None = None,
    path: str | None = None,
    line: int | None = None,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, object]]:
    """``owner``'s review comment on ``stream``'s open PR (in ``repo``; about ``path``:``line`` when given).

    On the local forge the file and line are kept with the comment; elsewhere they lead its text.
    """
    from coditect_cli.state import forge_records

    if not body.strip():
        raise UsageError("the comment is empty: give its text with --message")
    if line is not None and path is None:
        raise UsageError("--line needs --file")
    with session(project, phase, env=env) as s:
        pairs = stream_pairs(s.manifest, stream, repo)
        views = [v for v in stream_views(s, pairs, open_only=True) if v.pr is not None]
        if not views:
            raise UsageError(
                f"stream {stream!r} has no open pull request",
                hint=f"open it first: `coditect pr open {stream}`",
            )
        if len(views) > 1:
            raise UsageError(
                f"stream {stream!r} has open pull requests in {', '.join(v.repo for v in views)}: say which with --repo"
            )
        view = views[0]
        assert view.pr is not None
        author = _check_owner(s.manifest, view.repo, owner)
        if s.forges.kind(view.repo) == "local":
            record = forge_records.pull_request(s.store, view.repo, view.pr.number)
            assert record is not None
            row = forge_records.add_comment(s.store, record.id, author, body.strip(), path, line)
            return [{"repo": view.repo, "number": view.pr.number, "id": row.id, "path": path, "line": line}]
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        done = s.forges.forge(view.repo).comment_pr(s.forges.repo(view.repo), view.pr, where + body.strip())
        return [{"repo": view.repo, "number": view.pr.number, "id": done.id, "path": path, "line": line}]
