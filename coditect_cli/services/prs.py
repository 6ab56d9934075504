"""Pull requests of a phase's streams: open, list, status, review and merge, on each repository's forge.

A stream's PR goes from its feature branch into the phase's integration branch, one per repository the
stream works in. Which owners must approve is computed, not configured: the paths the PR changes (what
merging it would change in the base, from git or the forge) are matched against the manifest's ownership
rules; each path needs its stream's code owner, and a shared path needs *every* one of its owners. Any
standing "changes requested" blocks, as on GitHub.

Every function returns a result value; :mod:`coditect_cli.render.prs` prints it. Commands that change
something journal a run and their events (``kind = "pr"``, plus every ref they move) in the state store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coditect_cli.domain.manifest import Manifest, Pair, RepoId
from coditect_cli.errors import RefusedError, UsageError
from coditect_cli.forge.base import (
    Check,
    CheckStatus,
    ForgeRepo,
    Merged,
    MergeStrategy,
    PrDetails,
    ProposalSpec,
    PullRequest,
    Release,
    Review,
    ReviewState,
    latest_verdicts,
    summarize_checks,
    verdict_of,
)
from coditect_cli.forge.select import Forges
from coditect_cli.project import Project
from coditect_cli.state.store import Store

NeedState = Literal["approved", "changes_requested", "pending"]


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class OwnerNeed:
    """One code owner a PR needs, the changed paths that need them, and where their verdict stands."""

    owner: str
    paths: tuple[str, ...]
    shared_paths: tuple[str, ...] = ()
    state: NeedState = "pending"

    @property
    def shared(self) -> bool:
        """Whether a shared path (one that needs every one of its owners) is among ``paths``."""
        return bool(self.shared_paths)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "owner": self.owner,
            "paths": list(self.paths),
            "shared": self.shared,
            "shared_paths": list(self.shared_paths),
            "state": self.state,
        }


@dataclass(frozen=True)
class PrView:
    """A stream's PR in one repository (``pr`` None: not opened yet) with what its status needs."""

    stream: str | None
    repo: str
    branch: str
    base: str
    forge: str
    pr: PullRequest | None = None
    needs: tuple[OwnerNeed, ...] = ()
    reviews: tuple[Review, ...] = ()
    checks: tuple[Check, ...] = ()
    mergeable: bool | None = None
    files: tuple[str, ...] | None = None
    unowned: tuple[str, ...] = ()

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Reviewers whose standing verdict is "changes requested"."""
        verdicts = latest_verdicts(self.reviews)
        return tuple(
            sorted(
                {r.reviewer for r in self.reviews if verdict_of(verdicts, r.reviewer) == "changes_requested"}
            )
        )

    @property
    def approved(self) -> bool:
        """Every needed owner approved, and nobody's standing verdict is "changes requested".

        Never True while the changed files are unknown: the owners a PR needs come from them.
        """
        return (
            self.files is not None
            and bool(self.needs)
            and all(n.state == "approved" for n in self.needs)
            and not self.blocked_by
        )

    @property
    def approvals(self) -> tuple[int, int]:
        """(needed owners who approved, needed owners)."""
        return sum(1 for n in self.needs if n.state == "approved"), len(self.needs)

    @property
    def checks_state(self) -> str:
        """``none``, ``pending``, ``success`` or ``failure``."""
        return summarize_checks(self.checks)

    @property
    def ready(self) -> bool:
        """Open, approved, mergeable and no failing check: what a checkpoint may merge."""
        return (
            self.pr is not None
            and self.pr.state == "open"
            and self.approved
            and self.mergeable is True
            and self.checks_state != "failure"
        )

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        done, needed = self.approvals
        return {
            "stream": self.stream,
            "repo": self.repo,
            "branch": self.branch,
            "base": self.base,
            "forge": self.forge,
            "pr": None if self.pr is None else self.pr.to_json(),
            "approved": self.approved,
            "approvals": {"approved": done, "needed": needed},
            "needs": [n.to_json() for n in self.needs],
            "blocked_by": list(self.blocked_by),
            "reviews": [r.to_json() for r in self.reviews],
            "checks": {"state": self.checks_state, "results": [c.to_json() for c in self.checks]},
            "mergeable": self.mergeable,
            "files": None if self.files is None else list(self.files),
            "unowned": list(self.unowned),
            "ready": self.ready,
        }


@dataclass
class PrListing:
    """``pr list``: every PR into the phase's integration branches."""

    phase: str
    base: str
    rows: list[PrView]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "base": self.base,
            "prs": [r.to_json() for r in self.rows],
            "notes": self.notes,
        }


@dataclass
class StatusReport:
    """``pr status STREAM``: the stream's PR in each of its repositories."""

    phase: str
    stream: str
    rows: list[PrView]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "prs": [r.to_json() for r in self.rows],
            "ready": bool(self.rows) and all(r.ready for r in self.rows),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class OpenOutcome:
    """One (stream, repository) pair of ``pr open``: the PR, or why none was opened."""

    stream: str
    repo: str
    branch: str
    base: str
    forge: str
    pr: PullRequest | None = None
    created: bool = False
    pushed: bool = False
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.stream,
            "repo": self.repo,
            "branch": self.branch,
            "base": self.base,
            "forge": self.forge,
            "pr": None if self.pr is None else self.pr.to_json(),
            "created": self.created,
            "pushed": self.pushed,
            "skipped": self.skipped,
        }


@dataclass
class OpenReport:
    """``pr open``: an outcome per pair."""

    phase: str
    stream: str | None
    outcomes: list[OpenOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def nothing(self) -> bool:
        """No pair has a PR (every one was skipped)."""
        return all(o.pr is None and not (self.dry_run and o.skipped is None) for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "dry_run": self.dry_run,
            "opened": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ReviewOutcome:
    """One review given (or, dry run, that would be given), or why a pair was skipped."""

    stream: str
    repo: str
    pr: PullRequest | None
    review: Review | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.stream,
            "repo": self.repo,
            "pr": None if self.pr is None else self.pr.to_json(),
            "review": None if self.review is None else self.review.to_json(),
            "skipped": self.skipped,
        }


@dataclass
class ReviewReport:
    """``pr approve`` / ``pr request-changes``."""

    phase: str
    stream: str
    owner: str
    state: ReviewState
    outcomes: list[ReviewOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "owner": self.owner,
            "state": self.state,
            "dry_run": self.dry_run,
            "reviews": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class MergeOutcome:
    """One PR merged (``merged``), or why it was not (``refused``)."""

    view: PrView
    merged: Merged | None = None
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.view.stream,
            "repo": self.view.repo,
            "pr": None if self.view.pr is None else self.view.pr.to_json(),
            "merged": None if self.merged is None else self.merged.to_json(),
            "refused": self.refused,
        }


@dataclass
class MergeReport:
    """``pr merge``."""

    phase: str
    stream: str
    strategy: MergeStrategy
    outcomes: list[MergeOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def refused(self) -> bool:
        """Whether any pull request was not merged."""
        return any(o.refused for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "strategy": self.strategy,
            "dry_run": self.dry_run,
            "merges": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


# ------------------------------------------------------------------------------------------------ rules


def code_owners(manifest: Manifest, repo: str) -> list[str]:
    """Every owner the CODEOWNERS file of ``repo`` names, in order of first appearance."""
    from coditect_cli.domain.ownership import ownership

    owners: dict[str, None] = {}
    own = ownership(manifest).get(RepoId(repo))
    for rule in own.rules if own is not None else ():
        for sid in rule.streams:
            owners.setdefault(manifest.stream(sid).code_owner, None)
    return list(owners)


def owner_needs(
    manifest: Manifest, repo: str, paths: Sequence[str], author: str | None = None
) -> tuple[list[OwnerNeed], list[str]]:
    """The owners a PR changing ``paths`` in ``repo`` needs, and the changed paths nobody owns.

    Each owned path needs its stream's code owner; a shared path needs every owner it lists. When no changed
    path is owned, the PR still needs the code owner of ``author`` (its stream), so nothing merges unreviewed.
    """
    from coditect_cli.domain.ownership import ownership

    own = ownership(manifest).get(RepoId(repo))
    found: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    unowned: list[str] = []
    for path in paths:
        owners = own.owners(path) if own is not None else None
        if owners is None or not owners.streams:
            unowned.append(path)
            continue
        streams = sorted(owners.streams, key=lambda s: (manifest.stream(s).terminal, s))
        for sid in streams:
            owner = manifest.stream(sid).code_owner
            found.setdefault(owner, []).append(path)
            if owners.shared:
                shared.setdefault(owner, []).append(path)
    if not found and author is not None:
        found[manifest.stream(author).code_owner] = []
    needs = [OwnerNeed(owner, tuple(p), tuple(shared.get(owner, ()))) for owner, p in found.items()]
    return needs, unowned


def judge(needs: Sequence[OwnerNeed], reviews: Sequence[Review]) -> tuple[OwnerNeed, ...]:
    """``needs`` with each owner's standing verdict from ``reviews``."""
    verdicts = latest_verdicts(reviews)
    out: list[OwnerNeed] = []
    for need in needs:
        verdict = verdict_of(verdicts, need.owner)
        state: NeedState = (
            "approved"
            if verdict == "approved"
            else ("changes_requested" if verdict == "changes_requested" else "pending")
        )
        out.append(OwnerNeed(need.owner, need.paths, need.shared_paths, state))
    return tuple(out)


def proposal_text(manifest: Manifest, pair: Pair) -> tuple[str, str]:
    """The title and Markdown body of a stream's PR in one repository, from the manifest."""
    from coditect_cli.domain.ownership import ownership

    stream, work, repo = pair.stream, pair.work, pair.repo
    multi = len(stream.work) > 1
    title = f"[{manifest.phase}] {stream.name}: {work.topic}" + (f" ({repo.id})" if multi else "")
    lines = [
        f"**Stream `{stream.id}`** — {stream.name} (terminal {stream.terminal}) · agent `{stream.agent}` · "
        f"code owner {stream.code_owner}",
        "",
        f"Phase `{manifest.phase}`{': ' + manifest.title if manifest.title else ''}. "
        f"`{pair.branch}` → `{manifest.integration_branch}` in repository `{repo.id}` (`{repo.path}`).",
    ]
    if stream.depends_on:
        lines += ["", "Depends on: " + ", ".join(f"`{d}`" for d in stream.depends_on)]
    if stream.deliverables:
        lines += ["", "### Deliverables", ""]
        for d in stream.deliverables:
            after = f" — after {', '.join(d.depends_on)}" if d.depends_on else ""
            days = f"day {d.days}" if d.days.first == d.days.last else f"days {d.days}"
            lines.append(f"- [ ] `{d.id}` ({days}): {d.title}{after}")
    lines += ["", f"### Owned paths in `{repo.id}`", ""] + [f"- `{p}`" for p in work.owns]
    own = ownership(manifest).get(RepoId(repo.id))
    shared = [r for r in own.shared_rules() if stream.id in r.streams] if own is not None else []
    if shared:
        lines += ["", "### Shared paths (every listed owner must approve)", ""]
        for rule in shared:
            owners = " ".join(manifest.stream(s).code_owner for s in rule.streams)
            lines.append(f"- `{rule.pattern}`: {owners}")
    lines += [
        "",
        "---",
        "Opened by coditect. Approvals needed are computed from the files this PR changes (CODEOWNERS).",
    ]
    return title, "\n".join(lines) + "\n"


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
    from coditect_cli.adapters import proc
    from coditect_cli.forge.local import LocalForge
    from coditect_cli.forge.select import open_forges
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir

    checked = load_valid(project, phase, with_repos=False)  # tracked-file ownership is validate's business
    manifest = checked.loaded.manifest
    common = project_common_dir(project)
    repos: dict[str, ForgeRepo] = {}
    for repo in manifest.repositories:
        path = (project.root / repo.path).resolve()
        url = proc.run(
            ["git", "-C", str(path), "config", "--get", "remote.origin.url"], check=False
        ).stdout.strip()
        repos[repo.id] = ForgeRepo(repo.id, path, url or None)
    with (
        Store.open(common) as store,
        open_forges(manifest.forge, manifest.forge_url, repos, lambda: LocalForge(store), env=env) as forges,
    ):
        yield Session(project, manifest, forges, store, common)


def _pairs(manifest: Manifest, stream: str, repo: str | None) -> list[Pair]:
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


def _journal(
    s: Session, run_id: int, command: str, repo: str, action: str, pr: PullRequest | None, **extra: Any
) -> None:
    detail: dict[str, Any] = {"action": action, "forge": s.forges.kind(repo), **extra}
    if pr is not None:
        detail.update(number=pr.number, base=pr.base, head=pr.head, head_sha=pr.head_sha)
    s.store.record_event(run_id, command, "pr", phase=s.manifest.phase, repo=repo, detail=detail)


def _journal_moves(s: Session, run_id: int, command: str) -> None:
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
    by_repo: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_repo.setdefault(pair.repo.id, []).append(pair)
    for repo_id, group in by_repo.items():
        fr = s.forges.repo(repo_id)
        forge = s.forges.forge(repo_id)
        kind = forge.kind
        g = Git(fr.path)
        refs = g.refs("refs/heads", "refs/remotes/origin")
        base_ref = next(
            (r for r in (f"refs/remotes/origin/{integration}", f"refs/heads/{integration}") if r in refs),
            None,
        )
        todo: list[tuple[Pair, str, bool]] = []
        heads = {
            p.branch: refs.get(f"refs/heads/{p.branch}") or refs.get(f"refs/remotes/origin/{p.branch}")
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
            local = refs.get(f"refs/heads/{pair.branch}")
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
                _journal(s, run_id, command, repo_id, "opened" if opened.created else "exists", opened.pr)
    return outcomes


def _is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    from coditect_cli.adapters import proc

    done = proc.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, descendant], check=False
    )
    return done.returncode == 0


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
        pairs = _pairs(s.manifest, stream, repo)
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
    s: Session, repo_id: str, prs: Sequence[PullRequest], pairs_by_branch: Mapping[str, Pair]
) -> list[PrView]:
    """A view per PR of one repository, its details read in one batch."""
    fr = s.forges.repo(repo_id)
    forge = s.forges.forge(repo_id)
    details: dict[int, PrDetails] = forge.pr_details(fr, prs) if prs else {}
    views: list[PrView] = []
    for pr in prs:
        pair = pairs_by_branch.get(pr.head)
        info = details.get(pr.number) or PrDetails(pr.number, pr.head_sha)
        needs, unowned = owner_needs(s.manifest, repo_id, info.files or (), pair.stream.id if pair else None)
        views.append(
            PrView(
                stream=pair.stream.id if pair else None,
                repo=repo_id,
                branch=pr.head,
                base=pr.base,
                forge=forge.kind,
                pr=pr,
                needs=judge(needs, info.reviews),
                reviews=info.reviews,
                checks=info.checks,
                mergeable=info.mergeable if pr.state == "open" else None,
                files=info.files,
                unowned=tuple(unowned),
            )
        )
    return views


def _prefetch(s: Session) -> None:
    """Bring every repository's origin up to date side by side (a forge that fetches does it once each)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    base = s.manifest.integration_branch
    for repo in s.manifest.repositories:
        forge = s.forges.forge(repo.id)
        refresh = getattr(forge, "refresh", None)
        has_prs = getattr(forge, "has_prs", None)
        fr = s.forges.repo(repo.id)
        # Asked here, not in the threads: the local forge reads the store (one SQLite connection per thread).
        if callable(refresh) and callable(has_prs) and has_prs(fr, base):
            jobs.append((refresh, fr))
    if len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            for job in [pool.submit(refresh, repo) for refresh, repo in jobs]:
                job.result()


def _order(manifest: Manifest) -> dict[tuple[str, str], int]:
    return {(p.repo.id, p.branch): i for i, p in enumerate(manifest.pairs())}


def list_prs(project: Project, phase: str | None, *, env: Mapping[str, str] | None = None) -> PrListing:
    """Every PR into the phase's integration branch of every repository: one list and one details batch each."""
    with session(project, phase, env=env) as s:
        integration = s.manifest.integration_branch
        rows: list[PrView] = []
        _prefetch(s)
        for repo in s.manifest.repositories:
            fr = s.forges.repo(repo.id)
            prs = s.forges.forge(repo.id).list_prs(fr, integration)
            by_branch: dict[str, Pair] = {p.branch: p for p in s.manifest.pairs() if p.repo.id == repo.id}
            rows += _views(s, repo.id, prs, by_branch)
        order = _order(s.manifest)
        rows.sort(
            key=lambda v: (order.get((v.repo, v.branch), len(order)), v.repo, v.pr.number if v.pr else 0)
        )
        return PrListing(s.manifest.phase, integration, rows, s.notes)


def stream_views(s: Session, pairs: Sequence[Pair], *, open_only: bool = False) -> list[PrView]:
    """For each pair: its open PR (else its latest one, unless ``open_only``) with details, or an empty view."""
    integration = s.manifest.integration_branch
    out: list[PrView] = []
    by_repo: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_repo.setdefault(pair.repo.id, []).append(pair)
    for repo_id, group in by_repo.items():
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
        pairs = _pairs(s.manifest, stream, repo)
        return StatusReport(s.manifest.phase, stream, stream_views(s, pairs), s.notes)


# ------------------------------------------------------------------------------------------------ writing


def _check_owner(manifest: Manifest, repo: str, owner: str) -> str:
    """``owner`` as CODEOWNERS spells it, or a UsageError naming the owners ``repo``'s CODEOWNERS lists."""
    from coditect_cli.forge.base import same_owner

    owners = code_owners(manifest, repo)
    for known in owners:
        if same_owner(known, owner):
            return known
    listed = ", ".join(owners) or "none"
    raise UsageError(
        f"{owner} is not a code owner of repository {repo!r}: its CODEOWNERS lists {listed}",
        hint="review with --as set to one of them (the owners come from the manifest's streams)",
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
        pairs = _pairs(s.manifest, stream, repo)
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
                    _journal(
                        s, run_id, command, v.repo, "reviewed", v.pr, reviewer=given.reviewer, state=state
                    )
        return ReviewReport(
            s.manifest.phase, stream, owners[pairs[0].repo.id], state, outcomes, s.notes, dry_run
        )


def not_ready_reason(view: PrView) -> str | None:
    """Why ``view``'s PR cannot be merged now (None when it can)."""
    if view.pr is None:
        return "no open pull request"
    if view.files is None:
        return "its changed files are unknown, so are the owners it needs"
    if view.blocked_by:
        return f"changes requested by {', '.join(view.blocked_by)}"
    missing = [n.owner for n in view.needs if n.state != "approved"]
    if missing:
        return f"needs approval by {', '.join(missing)}"
    if view.checks_state == "failure":
        failed = [c.name for c in view.checks if c.status == "failure"]
        return f"failing check(s): {', '.join(failed)}"
    if view.mergeable is False:
        return "conflicts with its base"
    return None


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

    A PR is refused unless every owner it needs approved, nobody requests changes, no check fails and it
    merges cleanly (``force`` skips the review and check rules, not the conflict one). The head merged is the
    head that was checked: if it moves meanwhile, the merge is refused.
    """
    from coditect_cli.state.lock import phase_lock

    with session(project, phase, env=env) as s:
        chosen: MergeStrategy = strategy or s.manifest.merge.strategy
        pairs = _pairs(s.manifest, stream, repo)
        if dry_run:
            views = stream_views(s, pairs, open_only=True)
            outcomes = [MergeOutcome(v, None, not_ready_reason(v)) for v in views]
            return MergeReport(s.manifest.phase, stream, chosen, outcomes, s.notes, True)
        outcomes = []
        with (
            phase_lock(s.common_dir, s.manifest.phase, "coditect pr merge"),
            s.store.track_run("pr merge", s.manifest.phase) as run_id,
        ):
            for view in stream_views(s, pairs, open_only=True):
                reason = not_ready_reason(view)
                if reason is not None and force and view.pr is not None and view.mergeable is not False:
                    reason = None
                if reason is not None or view.pr is None:
                    outcomes.append(MergeOutcome(view, None, reason or "no open pull request"))
                    continue
                fr = s.forges.repo(view.repo)
                done = s.forges.forge(view.repo).merge_pr(fr, view.pr, chosen, expected_head=view.pr.head_sha)
                outcomes.append(MergeOutcome(view, done))
                _journal(
                    s,
                    run_id,
                    "pr merge",
                    view.repo,
                    "merged",
                    view.pr,
                    commit=done.commit,
                    strategy=chosen,
                    already=done.already,
                )
                _journal_moves(s, run_id, "pr merge")
        return MergeReport(s.manifest.phase, stream, chosen, outcomes, s.notes, False)


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
            _journal_moves(s, run_id, "release")
        return made
