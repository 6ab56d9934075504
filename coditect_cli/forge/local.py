"""The local forge: pull requests, reviews, comments and check results in the state store; merges made by git.

Origin plays the server. A PR's head is the head branch *on origin* (``coditect pr open`` pushes it first),
so the forge fetches origin once per command and reads ``refs/remotes/origin/*``. Merges are computed in the
object database (``git merge-tree --write-tree`` and ``commit-tree``; no work tree, so no user's worktree is
ever touched) and pushed to origin's base branch with a lease on the tip they were computed from:

* ``squash``: one commit on the base tip with the merged tree, the PR's title and body as its message;
* ``merge``: a merge commit with the base tip and the head as parents;
* ``rebase``: the head's commits replayed one by one on the base tip (authors and messages kept), or a
  fast-forward when the base tip is already in the head.

git 2.39's ``merge-tree`` cannot be given a merge base, so a replay ("cherry-pick C onto T") merges C with a
throw-away commit that has T's tree and C's parent as its parent: their merge base is then C's parent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.errors import CheckFailed, CommandFailed, RefusedError, UnavailableError, UsageError
from coditect_cli.forge.base import (
    Check,
    CheckStatus,
    Comment,
    ForgeRepo,
    Merged,
    MergeStrategy,
    Opened,
    PrDetails,
    ProposalSpec,
    PullRequest,
    Release,
    Review,
    ReviewState,
    pr_state,
)
from coditect_cli.state import forge_records
from coditect_cli.state.forge_records import CheckRecord, PullRequestRecord, ReviewRecord
from coditect_cli.state.store import Store

ORIGIN = "refs/remotes/origin/"
RefMove = tuple[str, str, str | None, str | None]  # (repo, ref, old, new)


def _git(
    repo: Path, *args: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None
) -> proc.Completed:
    return proc.run(["git", "-C", str(repo), *args], check=check, input=input, env=env)


def _out(repo: Path, *args: str) -> str:
    return _git(repo, *args).stdout.strip()


def _review(record: ReviewRecord) -> Review:
    state: ReviewState = record.state  # type: ignore[assignment]  # the column's CHECK constraint
    return Review(record.reviewer, state, record.time, record.body, record.head_sha)


def _check(record: CheckRecord) -> Check:
    status: CheckStatus = record.status  # type: ignore[assignment]  # the column's CHECK constraint
    return Check(record.name, status, record.time, record.log)


class LocalForge:
    """The embedded forge (see the module docstring). ``store`` stays open for the forge's lifetime."""

    kind = "local"

    def __init__(self, store: Store, *, author: str = "coditect") -> None:
        self._store = store
        self._author = author
        self._fetched: set[Path] = set()
        self._vouched: dict[Path, dict[str, str]] = {}  # origin's branches as refresh found them (read once)
        self._read: dict[Path, dict[str, str]] = {}  # origin's branches as this forge last read them
        self.notes: list[str] = []
        self.moves: list[RefMove] = []

    def __repr__(self) -> str:
        return f"LocalForge({self._store.path})"

    def close(self) -> None:
        """Nothing to release: the store belongs to the caller."""

    # ------------------------------------------------------------------------------------------ origin

    def fresh(self, repo: ForgeRepo) -> bool:
        """Whether origin needs no fetch in this command (fetched already, or nothing moved there): then
        :meth:`refresh` does nothing. A cheap read of files, so a caller can ask it before starting threads
        for the fetches that remain."""
        if repo.path in self._fetched:
            return True
        self._vouched.pop(repo.path, None)
        self._read.pop(repo.path, None)
        if self._up_to_date(repo):
            self._fetched.add(repo.path)
            return True
        return False

    def refresh(self, repo: ForgeRepo, *, force: bool = False) -> None:
        """Fetch origin's branches once per command (again with ``force``); a failure leaves a note."""
        if not force and self.fresh(repo):
            return
        self._fetched.add(repo.path)
        self._vouched.pop(repo.path, None)
        self._read.pop(repo.path, None)
        done = _git(
            repo.path, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "origin", check=False
        )
        if done.returncode != 0:
            reason = (
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            )
            self.notes.append(
                f"could not fetch origin of repository {repo.id!r} ({proc.redact(reason)}); "
                "using the origin branches last fetched"
            )

    def _up_to_date(self, repo: ForgeRepo) -> bool:
        """Whether a fetch would change nothing: origin is a repository on this machine (read directly, one
        cheap process) whose every branch is where ``refs/remotes/origin/`` has it already. A fetch costs
        several processes and writes; the autopilot asks every few seconds, and mostly nothing moved."""
        where = _local_origin(repo)
        if where is None:
            return False
        from coditect_cli.adapters.refstore import read_refs

        theirs = read_refs(where, ["refs/heads/"])
        if theirs is None:
            done = _git(
                where, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", check=False
            )
            if done.returncode != 0:
                return False
            theirs = {}
            for line in done.stdout.splitlines():
                sha, _, name = line.partition(" ")
                theirs[name] = sha
        ours = self._origin(repo)
        for name, sha in theirs.items():
            if ours.get(name.removeprefix("refs/heads/")) != sha:
                return False
        self._vouched[repo.path] = ours  # what the caller's next read would find: it need not read again
        return True

    def _origin(self, repo: ForgeRepo) -> dict[str, str]:
        """origin's branches (``refs/remotes/origin/*``) by name."""
        out = self._vouched.pop(repo.path, None)
        if out is None:
            from coditect_cli.adapters.git import Git

            out = {name.removeprefix(ORIGIN): sha for name, sha in Git(repo.path).refs(ORIGIN).items()}
            out.pop("HEAD", None)
        self._read[repo.path] = out
        return dict(out)

    def _pr(self, record: PullRequestRecord, origin: dict[str, str] | None = None) -> PullRequest:
        if record.state == "open":
            head_sha = (origin or {}).get(record.head, record.head_sha)
        else:
            head_sha = record.merged_head_sha or record.head_sha
        return PullRequest(
            repo=record.repo,
            number=record.number,
            base=record.base,
            head=record.head,
            title=record.title,
            state=pr_state(record.state),
            head_sha=head_sha,
            body=record.body,
            merge_commit=record.merge_commit,
            url=None,
            created=record.created,
            updated=record.updated,
            merged=record.merged,
        )

    def _record(self, repo: ForgeRepo, pr: PullRequest) -> PullRequestRecord:
        record = forge_records.pull_request(self._store, repo.id, pr.number)
        if record is None:
            raise UsageError(f"repository {repo.id!r} has no pull request #{pr.number}")
        return record

    # ------------------------------------------------------------------------------------------ proposals

    def find_pr(self, repo: ForgeRepo, base: str, head: str) -> PullRequest | None:
        """The open PR of ``head`` into ``base``, or None."""
        record = forge_records.find_pull_request(self._store, repo.id, base, head)
        if record is None:
            return None
        self.refresh(repo)
        return self._pr(record, self._origin(repo))

    def has_prs(self, repo: ForgeRepo, base: str) -> bool:
        """Whether any PR into ``base`` is recorded (listing them then needs origin's branches)."""
        return bool(forge_records.pull_requests(self._store, repo=repo.id, base=base))

    def list_prs(self, repo: ForgeRepo, base: str) -> list[PullRequest]:
        """Every PR into ``base``, by number."""
        records = forge_records.pull_requests(self._store, repo=repo.id, base=base)
        if not records:
            return []
        self.refresh(repo)
        origin = self._origin(repo)
        return [self._pr(r, origin) for r in records]

    def open_pr(self, repo: ForgeRepo, spec: ProposalSpec) -> Opened:
        """Open ``spec`` (both branches must be on origin) unless one is open already."""
        existing = forge_records.find_pull_request(self._store, repo.id, spec.base, spec.head)
        self.refresh(repo)
        origin = self._origin(repo)
        if existing is not None:
            return Opened(self._pr(existing, origin), False)
        for branch in (spec.base, spec.head):
            if branch not in origin:
                raise UsageError(
                    f"{branch} is not on origin of repository {repo.id!r}; cannot open a pull request",
                    hint="run `coditect streams setup` (it pushes the phase's branches)",
                )
        record, created = forge_records.open_pull_request(
            self._store, repo.id, spec.base, spec.head, spec.title, spec.body, origin[spec.head]
        )
        return Opened(self._pr(record, origin), created)

    def pr_details(self, repo: ForgeRepo, prs: Sequence[PullRequest]) -> dict[int, PrDetails]:
        """Reviews and checks from the store; changed files and mergeability from git (batched per base)."""
        from coditect_cli.adapters.changes import changed_since
        from coditect_cli.adapters.mergetree import merge_tree_batch, verify_refs

        if not prs:
            return {}
        self.refresh(repo)
        records = {r.number: r for r in forge_records.pull_requests(self._store, repo=repo.id)}
        wanted = [records[p.number] for p in prs if p.number in records]
        by_id = {r.id: r.number for r in wanted}
        reviews: dict[int, list[Review]] = {r.number: [] for r in wanted}
        for row in forge_records.reviews(self._store, list(by_id)):
            reviews[by_id[row.pr_id]].append(_review(row))
        shas = [p.head_sha for p in prs if p.head_sha]
        checks: dict[str, list[Check]] = {}
        for found in forge_records.checks(self._store, repo.id, shas):
            checks.setdefault(found.sha, []).append(_check(found))
        files: dict[int, tuple[str, ...] | None] = {}
        mergeable: dict[int, bool | None] = {}
        open_prs = [p for p in prs if p.state == "open" and p.head_sha]
        # What this forge read from origin's branches just before (listing the PRs) needs no verifying.
        read = self._read.get(repo.path, {})
        tips = set(read.values())
        known: dict[str, str | None] = {f"{ORIGIN}{name}": sha for name, sha in read.items()}
        known.update((sha, sha) for sha in tips)
        asked = [f"{ORIGIN}{p.base}" for p in open_prs] + [p.head_sha or "" for p in open_prs]
        known.update(verify_refs(repo.path, [r for r in asked if r not in known]))
        for base in dict.fromkeys(p.base for p in open_prs):
            base_ref = f"{ORIGIN}{base}"
            group = [
                p for p in open_prs if p.base == base and known.get(p.head_sha or "") and known.get(base_ref)
            ]
            if not group:
                continue
            heads = [p.head_sha or "" for p in group]
            # With the commits named: merges this process made before (the phase's facts, the last pass)
            # are reused.
            changed = changed_since(repo.path, base_ref, heads, ids=known)
            merges = merge_tree_batch(repo.path, [(base_ref, h) for h in heads], ids=known)
            for pr, result in zip(group, merges, strict=True):
                files[pr.number] = changed.get(pr.head_sha or "", ())
                mergeable[pr.number] = None if result.error else result.clean
        for pr in prs:
            record = records.get(pr.number)
            if pr.state == "merged" and record is not None and record.base_sha and record.merge_commit:
                done = _git(
                    repo.path,
                    "diff-tree",
                    "-r",
                    "-z",
                    "--name-only",
                    "--no-renames",
                    record.base_sha,
                    record.merge_commit,
                    check=False,
                )
                files[pr.number] = (
                    tuple(p for p in done.stdout.split("\0") if p) if done.returncode == 0 else None
                )
        return {
            p.number: PrDetails(
                number=p.number,
                head_sha=p.head_sha,
                reviews=tuple(reviews.get(p.number, ())),
                checks=tuple(checks.get(p.head_sha or "", ())),
                mergeable=mergeable.get(p.number),
                files=files.get(p.number),
            )
            for p in prs
        }

    # ------------------------------------------------------------------------------------------ reviews

    def reviews(self, repo: ForgeRepo, pr: PullRequest) -> list[Review]:
        """Every review of ``pr``, oldest first."""
        record = self._record(repo, pr)
        return [_review(r) for r in forge_records.reviews(self._store, [record.id])]

    def review_pr(
        self, repo: ForgeRepo, pr: PullRequest, reviewer: str, state: ReviewState, body: str
    ) -> Review:
        """Record ``reviewer``'s verdict on the open ``pr`` (on its current head)."""
        record = self._record(repo, pr)
        if record.state != "open":
            raise UsageError(
                f"pull request #{record.number} of {repo.id!r} is {record.state}; it cannot be reviewed"
            )
        return _review(forge_records.add_review(self._store, record.id, reviewer, state, body, pr.head_sha))

    # ------------------------------------------------------------------------------------------ checks

    def checks(self, repo: ForgeRepo, sha: str) -> list[Check]:
        """The current result of every check recorded on ``sha``."""
        return [_check(r) for r in forge_records.checks(self._store, repo.id, [sha])]

    def record_check(
        self, repo: ForgeRepo, sha: str, name: str, status: CheckStatus, log: str | None = None
    ) -> Check:
        """Record check ``name`` on ``sha``."""
        return _check(forge_records.record_check(self._store, repo.id, sha, name, status, log))

    # ------------------------------------------------------------------------------------------ comments

    def comment_pr(self, repo: ForgeRepo, pr: PullRequest, body: str) -> Comment:
        """Add a comment to ``pr``."""
        record = self._record(repo, pr)
        row = forge_records.add_comment(self._store, record.id, self._author, body)
        return Comment(row.id, row.author, row.body, row.time)

    # ------------------------------------------------------------------------------------------ merging

    def merge_pr(
        self,
        repo: ForgeRepo,
        pr: PullRequest,
        strategy: MergeStrategy,
        *,
        title: str | None = None,
        body: str | None = None,
        expected_head: str | None = None,
    ) -> Merged:
        """Merge ``pr`` on origin (see the module docstring); an already merged PR is reported as such."""
        record = self._record(repo, pr)
        if record.state == "merged":
            assert record.merge_commit is not None
            done_with = record.strategy if record.strategy in ("squash", "merge", "rebase") else strategy
            return Merged(self._pr(record), record.merge_commit, done_with, already=True)  # type: ignore[arg-type]
        if record.state != "open":
            raise UsageError(
                f"pull request #{record.number} of {repo.id!r} is {record.state}; it cannot be merged"
            )
        self.refresh(repo, force=True)
        origin = self._origin(repo)
        base_tip, head = origin.get(record.base), origin.get(record.head)
        if base_tip is None or head is None:
            missing = record.base if base_tip is None else record.head
            raise UsageError(
                f"{missing} is not on origin of repository {repo.id!r}; cannot merge #{record.number}"
            )
        if expected_head is not None and head != expected_head:
            raise CheckFailed(
                f"the head of #{record.number} ({record.head}) moved to {head[:12]} since {expected_head[:12]} "
                "was checked; not merging",
                hint="check the new head, then merge again",
            )
        if _is_ancestor(repo.path, head, base_tip):
            raise CheckFailed(f"nothing to merge: {record.base} already contains {record.head} ({head[:12]})")
        title = title or record.title
        body = record.body if body is None else body
        if strategy == "squash":
            tree = merged_tree(repo.path, base_tip, head, record.number)
            new = commit_tree(repo.path, tree, [base_tip], merge_message(f"{title} (#{record.number})", body))
        elif strategy == "merge":
            tree = merged_tree(repo.path, base_tip, head, record.number)
            message = merge_message(f"Merge pull request #{record.number} from {record.head}", title)
            new = commit_tree(repo.path, tree, [base_tip, head], message)
        else:
            new = replay(repo.path, base_tip, head, record.number)
        self._push(repo, record.base, base_tip, new)
        merged = forge_records.mark_pull_request_merged(
            self._store, record.id, head_sha=head, base_sha=base_tip, merge_commit=new, strategy=strategy
        )
        self._advance_local(repo, record.base, base_tip, new)
        return Merged(self._pr(merged), new, strategy)

    def _push(self, repo: ForgeRepo, branch: str, old: str, new: str) -> None:
        ref = f"refs/heads/{branch}"
        try:
            proc.run(
                [
                    "git",
                    "-C",
                    str(repo.path),
                    "push",
                    "--quiet",
                    "--porcelain",
                    f"--force-with-lease={ref}:{old}",
                    "origin",
                    f"{new}:{ref}",
                ],
                timeout=300,
            )
        except CommandFailed as exc:
            raise UnavailableError(
                f"could not push {branch} of repository {repo.id!r} to origin: "
                f"{exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else 'push failed'}",
                hint="if origin's branch moved meanwhile, run the merge again: it is computed afresh",
            ) from None
        self.moves.append((repo.id, f"{ORIGIN}{branch}", old, new))
        self._read.pop(repo.path, None)

    def _advance_local(self, repo: ForgeRepo, branch: str, old: str, new: str) -> None:
        """Fast-forward the local ``branch`` too, unless a worktree has it checked out or it diverged."""
        ref = f"refs/heads/{branch}"
        local = _git(
            repo.path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        ).stdout.strip()
        if not local:
            return
        worktrees = _git(repo.path, "worktree", "list", "--porcelain").stdout
        if f"branch {ref}" in worktrees.splitlines():
            self.notes.append(
                f"{branch} is checked out in a worktree of repository {repo.id!r}: left as it is "
                f"(origin/{branch} has the merge; pull there)"
            )
            return
        if local != old and not _is_ancestor(repo.path, local, new):
            self.notes.append(
                f"local {branch} of repository {repo.id!r} has diverged from origin: left as it is"
            )
            return
        if local == new:
            return
        _git(repo.path, "update-ref", "-m", "coditect: pr merge", ref, new, local)
        self.moves.append((repo.id, ref, local, new))

    # ------------------------------------------------------------------------------------------ tags

    def release(self, repo: ForgeRepo, tag: str, sha: str, title: str, notes: str = "") -> Release:
        """An annotated tag ``tag`` on ``sha``, created locally if missing and pushed to origin."""
        ref = f"refs/tags/{tag}"
        _git(repo.path, "check-ref-format", ref)
        remote = _git(repo.path, "ls-remote", "--tags", "origin", ref, f"{ref}^{{}}", check=False)
        if remote.returncode != 0:
            raise UnavailableError(f"cannot reach origin of repository {repo.id!r} to tag {tag}")
        found: dict[str, str] = {}
        for line in remote.stdout.splitlines():
            sha_found, _, name = line.partition("\t")
            found[name] = sha_found
        on_origin = found.get(f"{ref}^{{}}") or found.get(ref)
        if on_origin is not None:
            if on_origin != sha:
                raise RefusedError(
                    f"tag {tag} already exists on origin of {repo.id!r} at {on_origin[:12]}, not {sha[:12]}"
                )
            return Release(tag, sha, False)
        local = _git(
            repo.path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        ).stdout.strip()
        if local and local != sha:
            raise RefusedError(
                f"tag {tag} already exists in repository {repo.id!r} at {local[:12]}, not {sha[:12]}"
            )
        if not local:
            _git(repo.path, "tag", "-a", tag, sha, "-m", merge_message(title, notes))
            self.moves.append((repo.id, ref, None, sha))
        try:
            proc.run(["git", "-C", str(repo.path), "push", "--quiet", "origin", ref], timeout=300)
        except CommandFailed as exc:
            raise UnavailableError(
                f"could not push tag {tag} of repository {repo.id!r}: {exc.stderr.strip()}"
            ) from None
        return Release(tag, sha, True)


# ------------------------------------------------------------------------------------------------ git helpers


def _local_origin(repo: ForgeRepo) -> Path | None:
    """Origin's directory when origin is a repository on this machine (a path or a ``file://`` URL)."""
    url = repo.origin_url or ""
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif "://" in url or (":" in url.split("/", 1)[0]):
        return None  # another host (ssh://, https://, user@host:path)
    if not url:
        return None
    path = Path(url) if Path(url).is_absolute() else repo.path / url
    return path if path.is_dir() else None


def merge_message(title: str, body: str) -> str:
    """A commit message: the title, then the body when there is one."""
    return f"{title.strip()}\n\n{body.strip()}\n" if body.strip() else f"{title.strip()}\n"


def _is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return _git(repo, "merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0


def merged_tree(repo: Path, ours: str, theirs: str, number: int) -> str:
    """The tree of merging PR ``number``'s head ``theirs`` into ``ours`` (CheckFailed when it conflicts)."""
    from coditect_cli.adapters.mergetree import merge_tree_batch

    (result,) = merge_tree_batch(repo, [(ours, theirs)], keep_objects=True)
    if result.error is not None:
        raise CheckFailed(f"#{number} cannot be merged: {result.error}")
    if not result.clean or result.tree is None:
        raise CheckFailed(
            f"#{number} conflicts with its base in {len(result.paths)} path(s): {', '.join(result.paths)}",
            hint="merge the base into the feature branch (or rebase it), resolve, push, then merge again",
        )
    return result.tree


def commit_tree(
    repo: Path, tree: str, parents: Sequence[str], message: str, env: dict[str, str] | None = None
) -> str:
    """A new commit of ``tree`` on ``parents`` (no ref moves)."""
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return _git(repo, *args, input=message, env=env).stdout.strip()


def replay(repo: Path, base: str, head: str, number: int) -> str:
    """``head``'s commits since ``base`` replayed onto ``base`` (a fast-forward when ``base`` is in ``head``)."""
    if _is_ancestor(repo, base, head):
        return head
    listed = _out(repo, "rev-list", "--reverse", "--no-merges", "--topo-order", f"{base}..{head}")
    tip = base
    for commit in listed.split():
        fields = _git(
            repo, "show", "-s", "--format=%P%x00%T%x00%an%x00%ae%x00%ad%x00%B", "--date=raw", commit
        ).stdout
        parents, _tree, name, email, date, message = fields.split("\0", 5)
        parent = parents.split()[0] if parents.split() else None
        if parent is None:
            raise CheckFailed(f"#{number}: cannot replay root commit {commit[:12]}")
        if parent == tip:
            tip = commit  # already on the tip: replaying it is the identity
            continue
        # A commit with tip's tree whose parent is the commit's parent: merging it with the commit replays it.
        tip_tree = _out(repo, "rev-parse", f"{tip}^{{tree}}")
        stand_in = commit_tree(repo, tip_tree, [parent], "coditect: replay base\n")
        tree = merged_tree(repo, stand_in, commit, number)
        if tree == tip_tree:
            continue  # the change is in the base already (git rebase drops such commits too)
        author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
        tip = commit_tree(repo, tree, [tip], message.rstrip("\n") + "\n", env=author)
    return tip
