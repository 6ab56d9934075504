"""Everything the day's reports need to know about a phase, read once.

Per repository the cost is a constant number of git processes whatever the number of streams: one
``for-each-ref``, one ``git log`` over the integration branch and every feature branch (commits, files,
ahead/behind all come from that one history walk), the batched change listing (``changed_since``) and the
batched conflict prediction. PRs come from the forge (one listing per repository), panes from one
``tmux list-panes``, tasks and blockers from the state store. Merges, changed paths and histories are kept
for the process by commit ids (:mod:`coditect_cli.adapters.memo`): the autopilot's next pass over branches
that did not move starts no merge and no history walk, and one that moved is read afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.adapters.history import LoggedCommit, between, known_between
from coditect_cli.adapters.history import ancestors as _ancestors
from coditect_cli.domain.manifest import Manifest, Pair, RepoId, Repository, pairs_by_repo
from coditect_cli.domain.ownership import ownership
from coditect_cli.domain.ownership_check import check_branch
from coditect_cli.domain.sync import Commit
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.domain.agent_state import AgentState
    from coditect_cli.domain.conflicts import RepoChecks
    from coditect_cli.domain.launch import PaneState
    from coditect_cli.domain.prs import PrListing, PrView
    from coditect_cli.state.agent_usage import Spend
    from coditect_cli.state.coordination import BlockRecord


@dataclass
class BranchFacts:
    """One (stream, repository) pair's branch as it is now."""

    pair: Pair
    exists: bool
    head: str | None = None  # the branch tip's object id
    ahead: int = 0
    behind: int = 0
    commits: list[LoggedCommit] = field(
        default_factory=list
    )  # on the branch, not on integration; newest first
    changed: tuple[str, ...] = ()
    violations: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (path, owning streams)
    shared: tuple[str, ...] = ()
    conflicts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (other label, paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.pair.stream.id,
            "repo": self.pair.repo.id,
            "branch": self.pair.branch,
            "exists": self.exists,
            "ahead": self.ahead,
            "behind": self.behind,
            "commits": len(self.commits),
            "conflicts": [{"with": w, "paths": list(p)} for w, p in self.conflicts],
            "violations": [{"path": p, "owners": list(o)} for p, o in self.violations],
            "shared": list(self.shared),
        }


@dataclass
class PhaseFacts:
    """The phase as it is now."""

    manifest: Manifest
    project: Project
    branches: dict[str, BranchFacts]  # by pair key (stream@repo)
    prs: dict[str, PrView]  # by pair key
    panes: dict[str, PaneState]  # by stream
    session: bool  # a tmux session exists for the phase
    tasks: dict[str, str]  # task id -> recorded state
    blocks: list[BlockRecord]
    notes: list[str] = field(default_factory=list)
    graphs: dict[str, dict[str, LoggedCommit]] = field(default_factory=dict)  # per repo: the phase's history
    checkpoints: dict[int, str] = field(default_factory=dict)  # checkpoint id -> latest result
    spend: dict[str, Spend] = field(default_factory=dict)  # stream -> the built-in agent's tokens and cost
    agents: dict[str, AgentState] = field(default_factory=dict)  # by stream: each live pane's agent state

    def reachable(self, repo: str, tip: str) -> set[str]:
        """Commits of the phase's history in ``repo`` reachable from ``tip``."""
        return _ancestors(tip, self.graphs.get(repo, {}))

    def stream_branches(self, stream: str) -> list[BranchFacts]:
        return [b for b in self.branches.values() if b.pair.stream.id == stream]


def _side_by_side(
    one_repo: Callable[[Repository], None],
    known: list[Repository],
    unknown: list[Repository],
    pr_views: Callable[[], PrListing | None],
    repos_read: threading.Event,
) -> PrListing | None:
    """The repositories that wait on git in threads, the known ones here meanwhile, the PR listing in its
    own thread (it opens its own store connection there, reading origin meanwhile)."""
    with ThreadPoolExecutor(max_workers=min(8, len(unknown) + 1)) as pool:
        listing_job = pool.submit(pr_views)
        try:
            jobs = [pool.submit(one_repo, r) for r in unknown]
            for repo in known:
                one_repo(repo)
            for job in jobs:
                job.result()
        finally:
            repos_read.set()
        return listing_job.result()


def _tip_ids(read: tuple[Path, dict[str, str], list[str]]) -> tuple[Path, list[str]]:
    path, refs, tips = read
    return path, [refs[t] for t in tips]


def _refs(repo: Path) -> dict[str, str]:
    from coditect_cli.adapters.git import Git

    return Git(repo).refs("refs/heads", "refs/remotes/origin")


def _resolve(refs: dict[str, str], branch: str, *, prefer_origin: bool = False) -> str | None:
    """The ref name to use for ``branch``: local first (origin's first with ``prefer_origin``), else the other."""
    names = [f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"]
    for name in reversed(names) if prefer_origin else names:
        if name in refs:
            return name
    return None


def gather(
    project: Project,
    phase: str | None,
    *,
    socket: str | None = None,
    with_conflicts: bool = True,
    with_prs: bool = True,
    watch: bool = False,
    env: Mapping[str, str] | None = None,
    with_panes: bool = True,
) -> PhaseFacts:
    """Read the phase's branches, PRs, panes, tasks and blockers (``watch``: the PRs' activity too, read as a
    poller does: see :func:`coditect_cli.services.prs.list_prs`; ``env``: for the forge's token and settings;
    ``with_panes=False``: no panes nor agent states, for a caller that reads the agents itself)."""
    from coditect_cli.adapters.changes import changed_since
    from coditect_cli.domain.conflicts import plan_checks
    from coditect_cli.services.journal import interrupted_note
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.agent_usage import phase_spend
    from coditect_cli.state.coordination import open_blocks, task_states
    from coditect_cli.state.journal_records import checkpoint_statuses
    from coditect_cli.state.store import Store

    checked = load_valid(project, phase, with_repos=False)
    manifest = checked.loaded.manifest
    rules = ownership(manifest)
    integration = manifest.integration_branch
    checks_by_repo = {c.repo: c for c in plan_checks(manifest)} if with_conflicts else {}
    branches: dict[str, BranchFacts] = {}
    graphs: dict[str, dict[str, LoggedCommit]] = {}

    by_repo = pairs_by_repo(manifest.pairs())
    read: dict[str, tuple[Path, dict[str, str], list[str]]] = {}
    for repo in manifest.repositories:
        if repo.id in by_repo:
            path = (project.root / repo.path).resolve()
            refs = _refs(path)
            # Every local and origin ref of the phase's branches, less what all of them share: the history
            # the commits, ahead/behind and the conflict prediction all read (one git log).
            tips = sorted(
                name
                for branch in [integration, *(p.branch for p in by_repo[repo.id])]
                for name in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}")
                if name in refs
            )
            read[repo.id] = (path, refs, tips)

    def one_repo(repo: Repository) -> None:
        """Every fact of one repository (git only: safe to run beside the others)."""
        if repo.id not in read:
            return
        pairs = by_repo[repo.id]
        path, refs, tips = read[repo.id]
        # Merges land on origin (a forge merges there): its integration branch is the one to be behind of.
        int_ref = _resolve(refs, integration, prefer_origin=True)
        heads = {p.key: _resolve(refs, p.branch) for p in pairs}
        # Read by commit ids: the same tips again (the autopilot's next pass) are not read again.
        graph = between(path, [refs[t] for t in tips])
        graphs[repo.id] = graph
        on_integration = _ancestors(refs[int_ref], graph) if int_ref else set()
        existing = [h for h in heads.values() if h]
        changes = changed_since(path, int_ref, existing, ids=refs) if int_ref and existing else {}
        for pair in pairs:
            head = heads[pair.key]
            if head is None:
                branches[pair.key] = BranchFacts(pair, exists=False)
                continue
            mine = _ancestors(refs[head], graph)
            # git log's order: newest first, and parents after children within the same second.
            own = [c for sha, c in graph.items() if sha in mine and sha not in on_integration]
            verdict = check_branch(pair, rules[RepoId(repo.id)], changes.get(head, ()))
            branches[pair.key] = BranchFacts(
                pair,
                exists=True,
                head=refs[head],
                ahead=len(mine - on_integration),
                behind=len(on_integration - mine),
                commits=own,
                changed=changes.get(head, ()),
                violations=tuple((v.path, v.owners) for v in verdict.violations),
                shared=verdict.shared,
            )
        if repo.id in checks_by_repo:
            _add_conflicts(path, checks_by_repo[repo.id], pairs, branches, graph, refs)

    repos_read = threading.Event()

    def pr_views() -> PrListing | None:
        from coditect_cli.services.prs import list_prs

        if not with_prs:
            return None
        # Its details wait for the repositories' merges (the same ones, reused by commit ids).
        return list_prs(project, manifest.phase, env=env, watch=watch, before_details=repos_read.wait)

    # A repository whose history this process knows already (the same commits: an autopilot's next pass, a
    # warm server's worker) starts no git process: read here, threads would only cost. The others mostly
    # wait on git: read them side by side. The PR listing runs in its own thread (it opens its own store
    # connection there), reading origin meanwhile.
    known = [r for r in manifest.repositories if r.id in read and known_between(*_tip_ids(read[r.id]))]
    unknown = [r for r in manifest.repositories if r not in known and r.id in read]
    if not unknown:  # nothing to wait on git for: no thread at all (the listing reads origin's files)
        for repo in known:
            one_repo(repo)
        repos_read.set()
        listing = pr_views()
    else:
        listing = _side_by_side(one_repo, known, unknown, pr_views, repos_read)
    branches = {p.key: branches[p.key] for p in manifest.pairs() if p.key in branches}  # manifest order

    prs: dict[str, PrView] = {}
    notes: list[str] = []
    if listing is not None:
        notes += listing.notes
        for view in listing.rows:
            key = f"{view.stream}@{view.repo}"
            if view.stream and (key not in prs or _newer(view, prs[key])):
                prs[key] = view

    common = project_common_dir(project)
    with Store.open(common) as store:
        tasks = task_states(store, manifest.phase)
        blocks = open_blocks(store, manifest.phase)
        checkpoints = checkpoint_statuses(store, manifest.phase)
        interrupted = interrupted_note(store, manifest.phase, common)
        spend = phase_spend(store, manifest.phase)
    if interrupted is not None:
        notes.append(interrupted)
    panes, session = _panes(project, manifest, common, socket) if with_panes else ({}, False)
    agents = _agents(project, manifest, common, socket, panes) if panes else {}
    return PhaseFacts(
        manifest,
        project,
        branches,
        prs,
        panes,
        session,
        tasks,
        blocks,
        notes,
        graphs,
        checkpoints,
        spend,
        agents,
    )


def _newer(a: PrView, b: PrView) -> bool:
    """Prefer an open PR, then the most recent number."""
    a_open = a.pr is not None and a.pr.state == "open"
    b_open = b.pr is not None and b.pr.state == "open"
    if a_open != b_open:
        return a_open
    return (a.pr.number if a.pr else 0) > (b.pr.number if b.pr else 0)


def _add_conflicts(
    path: Path,
    checks: RepoChecks,
    pairs: list[Pair],
    branches: dict[str, BranchFacts],
    graph: dict[str, LoggedCommit],
    known: dict[str, str],
) -> None:
    """Record on each branch the branches (or the integration branch) it is predicted to conflict with."""
    from coditect_cli.domain.conflicts import INTEGRATION, fed_checks
    from coditect_cli.services.conflicts import predict_repo

    refs, results = predict_repo(path, checks, graph=graph, known=known)
    by_label = {p.stream.id: p.key for p in pairs}
    for check, result in zip(fed_checks(checks, refs), results, strict=True):
        if not result.conflict:
            continue
        a, b = check.a, check.b
        for mine, other in ((a, b), (b, a)):
            key = by_label.get(mine.label)
            if key and mine.label != INTEGRATION and key in branches:
                branches[key].conflicts.append((other.label, tuple(result.paths)))


def _agents(
    project: Project, manifest: Manifest, common: Path, socket: str | None, panes: dict[str, PaneState]
) -> dict[str, AgentState]:
    """Each stream's agent state (one tmux process capturing every screen; the panes already listed)."""
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.errors import CoditectError
    from coditect_cli.services.agents import read_states
    from coditect_cli.services.session import session_of

    s = session_of(project, manifest, common, socket)
    try:
        return read_states(s, Tmux(s.socket), panes, [st.id for st in manifest.ordered_streams()])
    except CoditectError:
        return {}


def _panes(
    project: Project, manifest: Manifest, common: Path, socket: str | None
) -> tuple[dict[str, PaneState], bool]:
    """The phase's panes by stream (empty when tmux or the session is absent)."""
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.domain.launch import panes_by_stream
    from coditect_cli.errors import CoditectError
    from coditect_cli.services.session import session_of

    try:
        s = session_of(project, manifest, common, socket)
        _, rows = s.locate(Tmux(s.socket))
    except CoditectError:
        return {}, False
    return panes_by_stream(rows), bool(rows)


def commits_since(
    branch: BranchFacts, since_epoch: float | None, seen: set[str] | None = None
) -> list[Commit]:
    """The branch's commits (not on integration) made after ``since_epoch`` (all of them when None).

    With ``seen`` (the commits the branch had at the previous sync), exactly the commits not in it: commit
    times have whole seconds, so a time cut-off alone cannot separate commits made in the sync's second.
    """
    import datetime as dt
    import math

    return [
        Commit(
            branch.pair.repo.id,
            c.sha[:10],
            c.subject,
            dt.datetime.fromtimestamp(c.time, dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        )
        for c in branch.commits
        if (
            c.sha not in seen
            if seen is not None
            else since_epoch is None or c.time >= math.floor(since_epoch)
        )
    ]
