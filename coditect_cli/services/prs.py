"""Pull requests of a phase's streams: the session every ``pr`` command works in, opening PRs, and reading
them back (``pr list``, ``pr status``); reviewing and merging are in :mod:`coditect_cli.services.reviews`.

The rules (which owners a PR needs, its text, whether it may merge) and the report values are pure, in
:mod:`coditect_cli.domain.prs`; this module gathers their facts from git, the store and each repository's
forge. Every function returns a result value; :mod:`coditect_cli.render.prs` prints it. Commands that change
something journal a run and their events (``kind = "pr"``, plus every ref they move) in the state store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coditect_cli.domain.manifest import Manifest, Pair, pairs_by_repo
from coditect_cli.domain.prs import (
    OpenOutcome,
    OpenReport,
    PrListing,
    PrView,
    StatusReport,
    judge,
    owner_needs,
    proposal_text,
)
from coditect_cli.errors import RefusedError, UsageError
from coditect_cli.forge.base import ForgeRepo, PrActivity, PrDetails, ProposalSpec, PullRequest, Review
from coditect_cli.forge.select import Forges
from coditect_cli.project import Project
from coditect_cli.state.store import Store

# ------------------------------------------------------------------------------------------------ session


@dataclass
class Session:
    """What every ``pr`` command works with: the manifest, the store and each repository's forge."""

    project: Project
    manifest: Manifest
    forges: Forges
    store: Store
    common_dir: Path

    @property
    def notes(self) -> list[str]:
        """The forges' notes (why each was chosen, what they could not do)."""
        return self.forges.notes

    def moves(self) -> list[tuple[str, str, str | None, str | None]]:
        """Refs the local forge moved (merges, tags) since the last call."""
        from coditect_cli.forge.local import LocalForge

        out: list[tuple[str, str, str | None, str | None]] = []
        seen: set[int] = set()
        for repo in self.manifest.repositories:
            forge = self.forges.forge(repo.id)
            if isinstance(forge, LocalForge) and id(forge) not in seen:
                seen.add(id(forge))
                out += forge.moves
                forge.moves.clear()
        return out


@contextmanager
def session(
    project: Project, phase: str | None, *, env: Mapping[str, str] | None = None
) -> Iterator[Session]:
    """Load and validate the manifest, open the store, choose each repository's forge (closed afterwards).

    ``env`` replaces ``os.environ`` for token discovery and client settings (tests, the benchmark).
    """
    from concurrent.futures import ThreadPoolExecutor

    from coditect_cli.forge.local import LocalForge
    from coditect_cli.forge.select import open_forges
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir

    checked = load_valid(project, phase, with_repos=False)  # tracked-file ownership is validate's business
    manifest = checked.loaded.manifest
    common = project_common_dir(project)
    paths = {repo.id: (project.root / repo.path).resolve() for repo in manifest.repositories}

    from coditect_cli.adapters.git import origin_url, origin_url_in_file

    # Read from each repository's config file; git only for an unusual one (side by side then).
    urls: dict[str, str | None] = {rid: origin_url_in_file(path) for rid, path in paths.items()}
    asked = [rid for rid, url in urls.items() if url is None]
    if asked:
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(asked)))) as pool:
            urls.update(zip(asked, pool.map(origin_url, [paths[rid] for rid in asked]), strict=True))
    repos = {rid: ForgeRepo(rid, path, urls[rid]) for rid, path in paths.items()}
    with (
        Store.open(common) as store,
        open_forges(
            manifest.forge,
            manifest.forge_url,
            repos,
            lambda: LocalForge(store),
            env=env,
            cache_dir=common / "coditect" / "github-cache",
        ) as forges,
    ):
        yield Session(project, manifest, forges, store, common)


def stream_pairs(manifest: Manifest, stream: str, repo: str | None) -> list[Pair]:
    """``stream``'s (stream, repository) pairs, only ``repo``'s when given; a UsageError for unknown names."""
    known = [s.id for s in manifest.streams]
    if stream not in known:
        raise UsageError(f"no stream {stream!r} in phase {manifest.phase} (streams: {', '.join(known)})")
    pairs = [p for p in manifest.pairs() if p.stream.id == stream]
    if repo is not None:
        pairs = [p for p in pairs if p.repo.id == repo]
        if not pairs:
            mine = ", ".join(w.repo for w in manifest.stream(stream).work)
            raise UsageError(
                f"stream {stream!r} does not work in repository {repo!r} (its repositories: {mine})"
            )
    return pairs


def journal_pr(
    s: Session, run_id: int, command: str, repo: str, action: str, pr: PullRequest | None, **extra: Any
) -> None:
    """Record a ``pr`` event of ``command`` (what was done to ``pr`` in ``repo``) in the run's journal."""
    detail: dict[str, Any] = {"action": action, "forge": s.forges.kind(repo), **extra}
    if pr is not None:
        detail.update(number=pr.number, base=pr.base, head=pr.head, head_sha=pr.head_sha)
    s.store.record_event(run_id, command, "pr", phase=s.manifest.phase, repo=repo, detail=detail)


def journal_moves(s: Session, run_id: int, command: str) -> None:
    """Record every ref the local forge moved since the last call as a ref move of the run."""
    for repo, ref, old, new in s.moves():
        s.store.record_ref_move(run_id, command, s.manifest.phase, repo, ref, old, new)


# ------------------------------------------------------------------------------------------------ open


def _open_pairs(
    s: Session, pairs: Sequence[Pair], *, dry_run: bool, run_id: int | None, command: str
) -> list[OpenOutcome]:
    from coditect_cli.adapters.changes import changed_since
    from coditect_cli.adapters.git import Git

    integration = s.manifest.integration_branch
    outcomes: list[OpenOutcome] = []
    for repo_id, group in pairs_by_repo(pairs).items():
        fr = s.forges.repo(repo_id)
        forge = s.forges.forge(repo_id)
        kind = forge.kind
        g = Git(fr.path)
        # A stream on a remote host pushes its work from there: origin's branch is its head (the local
        # branch only marks where it started), read fresh.
        remote_only = {p.branch for p in group if p.stream.host is not None}
        if remote_only:
            _fetch(fr, sorted(remote_only))
        refs = g.refs("refs/heads", "refs/remotes/origin")
        base_ref = next(
            (r for r in (f"refs/remotes/origin/{integration}", f"refs/heads/{integration}") if r in refs),
            None,
        )
        todo: list[tuple[Pair, str, bool]] = []
        heads = {
            p.branch: (None if p.branch in remote_only else refs.get(f"refs/heads/{p.branch}"))
            or refs.get(f"refs/remotes/origin/{p.branch}")
            for p in group
        }
        # What merging each head would change in the base: nothing means nothing to propose (a branch whose
        # commits were squash-merged still has commits "ahead", but no changes).
        changes = (
            changed_since(fr.path, base_ref, [h for h in dict.fromkeys(heads.values()) if h])
            if base_ref
            else {}
        )
        for pair in group:
            local = None if pair.branch in remote_only else refs.get(f"refs/heads/{pair.branch}")
            remote = refs.get(f"refs/remotes/origin/{pair.branch}")
            head = heads[pair.branch]
            reason: str | None = None
            if base_ref is None:
                reason = (
                    f"{integration} does not exist in repository {repo_id!r}; run `coditect streams setup`"
                )
            elif head is None:
                reason = f"{pair.branch} does not exist; run `coditect streams setup`"
            elif not changes.get(head):
                reason = f"nothing to propose: merging {pair.branch} would not change {integration}"
            if reason is not None or head is None:
                outcomes.append(
                    OpenOutcome(pair.stream.id, repo_id, pair.branch, integration, kind, skipped=reason)
                )
                continue
            push = local is not None and local != remote
            if push and remote is not None and not _is_ancestor(fr.path, remote, local or ""):
                raise RefusedError(
                    f"{pair.branch} of repository {repo_id!r} has diverged from origin "
                    f"(local {(local or '')[:12]}, origin {remote[:12]}); not pushing over it",
                    hint="pull (or rebase onto) origin's branch in the stream's worktree, then open the PR again",
                )
            todo.append((pair, local or head, push))
        if not todo:
            continue
        if dry_run:
            existing = {p.head: p for p in forge.list_prs(fr, integration) if p.state == "open"}
            for pair, _head, push in todo:
                found = existing.get(pair.branch)
                outcomes.append(
                    OpenOutcome(pair.stream.id, repo_id, pair.branch, integration, kind, found, False, push)
                )
            continue
        to_push = [pair.branch for pair, _head, push in todo if push]
        if to_push:
            _push(fr, to_push)
            if run_id is not None:
                for pair, head, push in todo:
                    if push:
                        old = refs.get(f"refs/remotes/origin/{pair.branch}")
                        s.store.record_ref_move(
                            run_id,
                            command,
                            s.manifest.phase,
                            repo_id,
                            f"refs/remotes/origin/{pair.branch}",
                            old,
                            head,
                        )
        for pair, _head, push in todo:
            title, body = proposal_text(s.manifest, pair)
            opened = forge.open_pr(fr, ProposalSpec(integration, pair.branch, title, body))
            outcomes.append(
                OpenOutcome(
                    pair.stream.id, repo_id, pair.branch, integration, kind, opened.pr, opened.created, push
                )
            )
            if run_id is not None:
                journal_pr(s, run_id, command, repo_id, "opened" if opened.created else "exists", opened.pr)
    return outcomes


def _is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    from coditect_cli.adapters import proc

    done = proc.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, descendant], check=False
    )
    return done.returncode == 0


def _fetch(repo: ForgeRepo, branches: Sequence[str]) -> None:
    """Update ``refs/remotes/origin/<branch>`` of ``branches`` from origin (those origin has)."""
    from coditect_cli.adapters import proc

    specs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
    done = proc.run(
        ["git", "-C", str(repo.path), "fetch", "--quiet", "origin", *specs], check=False, timeout=300
    )
    if done.returncode != 0:  # one branch missing on origin fails the whole fetch: then one by one
        for spec in specs:
            proc.run(
                ["git", "-C", str(repo.path), "fetch", "--quiet", "origin", spec], check=False, timeout=300
            )


def _push(repo: ForgeRepo, branches: Sequence[str]) -> None:
    from coditect_cli.adapters import proc
    from coditect_cli.errors import CommandFailed, UnavailableError

    specs = [f"refs/heads/{b}:refs/heads/{b}" for b in branches]
    try:
        proc.run(["git", "-C", str(repo.path), "push", "--quiet", "origin", *specs], timeout=300)
    except CommandFailed as exc:
        last = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else "push failed"
        raise UnavailableError(
            f"could not push {', '.join(branches)} of repository {repo.id!r} to origin: {last}",
            hint="a pull request's head must be on origin; fix the origin and run `coditect pr open` again",
        ) from None


def open_prs(
    project: Project,
    phase: str | None,
    stream: str,
    repo: str | None = None,
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> OpenReport:
    """Open ``stream``'s PR into the integration branch in ``repo`` (default: every repository it works in).

    Pushes the feature branch first when origin lacks its commits. Idempotent: an open PR is reported, never
    duplicated. A pair without commits beyond the integration branch is skipped (forges refuse empty PRs).
    """
    with session(project, phase, env=env) as s:
        pairs = stream_pairs(s.manifest, stream, repo)
        if dry_run:
            outcomes = _open_pairs(s, pairs, dry_run=True, run_id=None, command="pr open")
        else:
            with s.store.track_run("pr open", s.manifest.phase) as run_id:
                outcomes = _open_pairs(s, pairs, dry_run=False, run_id=run_id, command="pr open")
        return OpenReport(s.manifest.phase, stream, outcomes, s.notes, dry_run)


def open_all(
    project: Project, phase: str | None, *, env: Mapping[str, str] | None = None
) -> list[OpenOutcome]:
    """Open a PR for every (stream, repository) pair whose feature branch has commits; return those PRs.

    What the demo calls after the agents commit. Pairs without commits are left out of the result.
    """
    with session(project, phase, env=env) as s, s.store.track_run("pr open", s.manifest.phase) as run_id:
        outcomes = _open_pairs(s, s.manifest.pairs(), dry_run=False, run_id=run_id, command="pr open")
    return [o for o in outcomes if o.pr is not None]


# ------------------------------------------------------------------------------------------------ reading


def _views(
    s: Session,
    repo_id: str,
    prs: Sequence[PullRequest],
    pairs_by_branch: Mapping[str, Pair],
    *,
    watch: bool = False,
) -> list[PrView]:
    """A view per PR of one repository, its details read in one batch; with ``watch``, on a forge that polls
    (:class:`~coditect_cli.forge.base.ActivityWatcher`), the open PRs' activity too, read conditionally."""
    fr = s.forges.repo(repo_id)
    forge = s.forges.forge(repo_id)
    activity: dict[int, PrActivity] = {}
    watcher = getattr(forge, "watch", None) if watch else None
    if callable(watcher):
        details, activity = watcher(fr, prs)
    else:
        details = forge.pr_details(fr, prs) if prs else {}
    changed = _changed_since_reviews(fr.path, prs, details)
    views: list[PrView] = []
    for pr in prs:
        pair = pairs_by_branch.get(pr.head)
        info = details.get(pr.number) or PrDetails(pr.number, pr.head_sha)
        needs, unowned = owner_needs(s.manifest, repo_id, info.files or (), pair.stream.id if pair else None)
        approvers = [o for n in needs for o in (n.any_of if n.maintainer else (n.owner,))]
        counted = _with_team_reviews(forge, fr, approvers, info.reviews)
        head = pr.head_sha if pr.state == "open" else None  # an approval counts for the head it was given on
        since = {old: paths for (old, new), paths in changed.items() if new == head}
        views.append(
            PrView(
                stream=pair.stream.id if pair else None,
                repo=repo_id,
                branch=pr.head,
                base=pr.base,
                forge=forge.kind,
                pr=pr,
                needs=judge(needs, counted, head, since),
                reviews=info.reviews,
                checks=info.checks,
                mergeable=info.mergeable if pr.state == "open" else None,
                files=info.files,
                unowned=tuple(unowned),
                forge_blockers=info.blockers,
                activity=activity.get(pr.number),
            )
        )
    return views


def _with_team_reviews(
    forge: object, repo: ForgeRepo, owners: Sequence[str], reviews: Sequence[Review]
) -> Sequence[Review]:
    """``reviews``, plus each team owner's (``@org/team``) verdict given by any one of its members, on a forge
    that can read team membership (GitHub); elsewhere a team is matched by name only."""
    from coditect_cli.forge.base import is_team, team_reviews

    teams = [o for o in dict.fromkeys(owners) if is_team(o)]
    read = getattr(forge, "team_members", None)
    if not teams or not callable(read) or not reviews:
        return reviews
    members: dict[str, frozenset[str]] = {}
    for team in teams:
        found = read(repo, team)
        if found:
            members[team] = found
    return team_reviews(reviews, members) if members else reviews


def _changed_since_reviews(
    repo: Path, prs: Sequence[PullRequest], details: Mapping[int, PrDetails]
) -> dict[tuple[str, str], frozenset[str] | None]:
    """For each open PR approved on an earlier head: the paths changed between that head and the current one."""
    from coditect_cli.adapters.changes import changed_between

    pairs: list[tuple[str, str]] = []
    for pr in prs:
        info = details.get(pr.number)
        if pr.state != "open" or not pr.head_sha or info is None:
            continue
        for review in info.reviews:
            if review.state == "approved" and review.head_sha and review.head_sha != pr.head_sha:
                pairs.append((review.head_sha, pr.head_sha))
    return changed_between(repo, pairs)


def _prefetch(s: Session) -> None:
    """Bring every repository's origin up to date side by side (a forge that fetches does it once each)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs: list[tuple[Callable[[ForgeRepo], object], ForgeRepo]] = []
    base = s.manifest.integration_branch
    for repo in s.manifest.repositories:
        forge = s.forges.forge(repo.id)
        refresh = getattr(forge, "refresh", None)
        has_prs = getattr(forge, "has_prs", None)
        fr = s.forges.repo(repo.id)
        fresh = getattr(forge, "fresh", None)
        # Asked here, not in the threads: the local forge reads the store (one SQLite connection per thread);
        # an origin where nothing moved needs no fetch, hence no thread.
        if (
            callable(refresh)
            and callable(has_prs)
            and has_prs(fr, base)
            and not (callable(fresh) and fresh(fr))
        ):
            jobs.append((refresh, fr))
    if len(jobs) == 1:
        jobs[0][0](jobs[0][1])
    elif jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            for job in [pool.submit(refresh, repo) for refresh, repo in jobs]:
                job.result()


def _order(manifest: Manifest) -> dict[tuple[str, str], int]:
    return {(p.repo.id, p.branch): i for i, p in enumerate(manifest.pairs())}


def list_prs(
    project: Project,
    phase: str | None,
    *,
    env: Mapping[str, str] | None = None,
    watch: bool = False,
    before_details: Callable[[], object] | None = None,
) -> PrListing:
    """Every PR into the phase's integration branch of every repository: one list and one details batch each
    (``watch``: for a poller, the open PRs' activity too, and no request counted when nothing changed).

    ``before_details`` is called once origin is up to date, before the PRs are read (a caller computing the
    same merges beside it lets them finish first: the details then reuse them).
    """
    with session(project, phase, env=env) as s:
        integration = s.manifest.integration_branch
        rows: list[PrView] = []
        _prefetch(s)
        if before_details is not None:
            before_details()
        for repo in s.manifest.repositories:
            fr = s.forges.repo(repo.id)
            prs = s.forges.forge(repo.id).list_prs(fr, integration)
            by_branch: dict[str, Pair] = {p.branch: p for p in s.manifest.pairs() if p.repo.id == repo.id}
            rows += _views(s, repo.id, prs, by_branch, watch=watch)
        order = _order(s.manifest)
        rows.sort(
            key=lambda v: (order.get((v.repo, v.branch), len(order)), v.repo, v.pr.number if v.pr else 0)
        )
        return PrListing(s.manifest.phase, integration, rows, s.notes)


def stream_views(s: Session, pairs: Sequence[Pair], *, open_only: bool = False) -> list[PrView]:
    """For each pair: its open PR (else its latest one, unless ``open_only``) with details, or an empty view."""
    integration = s.manifest.integration_branch
    out: list[PrView] = []
    for repo_id, group in pairs_by_repo(pairs).items():
        fr = s.forges.repo(repo_id)
        forge = s.forges.forge(repo_id)
        listed = forge.list_prs(fr, integration)
        chosen: list[PullRequest] = []
        for pair in group:
            mine = [p for p in listed if p.head == pair.branch]
            pick = next((p for p in reversed(mine) if p.state == "open"), None)
            if pick is None and mine and not open_only:
                pick = mine[-1]
            if pick is not None:
                chosen.append(pick)
        mapping: dict[str, Pair] = {p.branch: p for p in group}
        views = {v.branch: v for v in _views(s, repo_id, chosen, mapping)}
        for pair in group:
            out.append(
                views.get(pair.branch)
                or PrView(pair.stream.id, repo_id, pair.branch, integration, forge.kind)
            )
    return out


def pr_status(
    project: Project,
    phase: str | None,
    stream: str,
    repo: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> StatusReport:
    """``stream``'s PR in each of its repositories: the owners it needs and their verdicts, checks, mergeability."""
    with session(project, phase, env=env) as s:
        pairs = stream_pairs(s.manifest, stream, repo)
        return StatusReport(s.manifest.phase, stream, stream_views(s, pairs), s.notes)
