"""The batch of a checkpoint (or merge-phase): collect the ready PRs, stage them on the integration tips,
run the gates on exactly those trees in temporary worktrees, and bisect a failing batch.

Staging commits are computed in the object database with the local forge's own merge code (``merge-tree``
and ``commit-tree``), so a staging commit is exactly what that forge's merge would push; nothing is checked
out anywhere but in this run's own temporary, detached worktree, one per repository, removed at the end.
Gate results are kept in the journal by tree: a resumed run never runs a gate twice on the same tree.

A probe runs its repository's gate commands in order and stops at the first that fails; a command seen
failing runs first in every later probe (:class:`~coditect_cli.domain.gating.CommandOrder`), so a split that
is going to be rejected costs one command. A whole batch that failed on a gate marked ``flaky`` runs once more
(from that gate on) before it is bisected: a pass then is a flake, reported, and the batch is green.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.gating import (
    BatchPr,
    CommandOrder,
    GateSpec,
    Probe,
    drive,
    flaky_retry,
    order_batch,
)
from coditect_cli.errors import CheckFailed, CoditectError, RefusedError, UnavailableError, UsageError
from coditect_cli.forge.base import MergeStrategy

if TYPE_CHECKING:
    from coditect_cli.services.gating import Integration

Links = Mapping[str, tuple[str, str]]  # a superproject's submodules: path -> (repository, commit)
GateRun = tuple[bool, list[dict[str, Any]], list[GateSpec]]  # passed, the commands run, the order asked


class Chain:
    """One repository's staging commits: PRs merged in order onto the integration tip (memoized by prefix)."""

    def __init__(self, path: Path, start: str, strategy: MergeStrategy, prs: Mapping[str, BatchPr]) -> None:
        self.path = path
        self.strategy = strategy
        self.prs = prs
        self.memo: dict[tuple[str, ...], str] = {(): start}

    def commit_for(self, keys: Sequence[str]) -> str:
        """The staging commit of ``keys`` merged in order (CheckFailed when one does not merge)."""
        want = tuple(keys)
        known = max(i for i in range(len(want) + 1) if want[:i] in self.memo)
        commit = self.memo[want[:known]]
        for i in range(known, len(want)):
            commit = self._merge(commit, self.prs[want[i]])
            self.memo[want[: i + 1]] = commit
        return commit

    def tree(self, commit: str) -> str:
        """The tree of ``commit``."""
        from coditect_cli.adapters.git import Git

        return Git(self.path).out("rev-parse", f"{commit}^{{tree}}")

    def _merge(self, base: str, pr: BatchPr) -> str:
        # The local forge's own merge code: a staging commit is exactly what its merge would push.
        from coditect_cli.forge.local import commit_tree, merge_message, merged_tree, replay

        if self.strategy == "rebase":
            tip = replay(self.path, base, pr.head_sha, pr.number)
            if self.tree(tip) == self.tree(base):
                raise CheckFailed(f"#{pr.number} has no changes left to merge")
            return tip
        tree = merged_tree(self.path, base, pr.head_sha, pr.number)
        if tree == self.tree(base):
            raise CheckFailed(f"#{pr.number} has no changes left to merge")
        if self.strategy == "squash":
            return commit_tree(self.path, tree, [base], merge_message(f"{pr.title} (#{pr.number})", pr.body))
        message = merge_message(f"Merge pull request #{pr.number} from {pr.head}", pr.title)
        return commit_tree(self.path, tree, [base, pr.head_sha], message)


class GateRunner:
    """Runs gate commands on exact commits in one temporary detached worktree per repository; a
    superproject's worktree gets its submodules checked out (worktrees of the submodules' own repositories,
    no network) at the commits it is given."""

    def __init__(
        self,
        paths: Mapping[str, Path],
        owner: str,
        logs: Path,
        env: Mapping[str, str],
        pass_env: Sequence[str] = (),
    ) -> None:
        self.paths = paths
        self.pass_env = tuple(pass_env)  # the manifest's pass_env: gates get no other variable of ours
        self.owner = owner
        self.logs = logs
        self.env = dict(env)
        self.trees: dict[str, Path] = {}
        self.nested: dict[tuple[str, str], tuple[str, Path]] = {}  # (repo, path) -> (submodule, worktree)
        self.commands = 0

    def run(
        self,
        repo: str,
        commit: str,
        specs: Sequence[GateSpec],
        tag: str,
        links: Mapping[str, tuple[str, str]] | None = None,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """Run ``specs`` on ``commit`` (stopping at the first failure); each output goes to a log file.

        ``links``: submodule path -> (its repository, the commit to check out there) for a superproject.
        """
        from coditect_cli.adapters import proc
        from coditect_cli.adapters.git import add_detached_worktree, switch_detached

        if repo in self.trees:
            switch_detached(self.trees[repo], commit)
        else:
            self.trees[repo] = add_detached_worktree(self.paths[repo], commit, self.owner)
        missing = self._populate(repo, commit, links) if links else {}
        self.logs.mkdir(parents=True, exist_ok=True)
        ran: list[dict[str, Any]] = []
        for spec in specs:
            log = self.logs / f"{tag}-{repo}-{spec.label}.log"
            env = {**self.env, "CODITECT_GATE": spec.label, "CODITECT_REPO": repo, "CODITECT_COMMIT": commit}
            started = time.perf_counter()
            try:
                done = proc.run(
                    ["sh", "-c", spec.run],
                    cwd=self.trees[repo],
                    env=env,  # on the allow-listed environment (proc.child_env): no credential
                    pass_env=self.pass_env,
                    timeout=spec.timeout,
                    check=False,
                    tied=True,  # a killed run leaves no gate process behind
                )
                code, output = done.returncode, done.stdout + done.stderr
            except CoditectError as exc:  # a timeout, or no shell
                code, output = -1, f"coditect: {exc.message}\n"
            seconds = round(time.perf_counter() - started, 3)
            self.commands += 1
            shown = "".join(
                f"\n# submodule {p} " + (f"NOT checked out: {missing[p]}" if p in missing else f"at {c}")
                for p, (_r, c) in sorted((links or {}).items())
            )
            log.write_text(
                f"$ {spec.run}\n# repository {repo}, commit {commit}{shown}\n{output}\n"
                f"# exit {code} after {seconds}s\n",
                encoding="utf-8",
            )
            ran.append({"gate": spec.label, "exit": code, "log": str(log), "seconds": seconds})
            if code != 0:
                return False, ran
        return True, ran

    def _populate(self, repo: str, commit: str, links: Mapping[str, tuple[str, str]]) -> dict[str, str]:
        """Check each submodule out at its commit; return those that could not be (path -> why): the gate
        runs all the same, and its log says so."""
        from coditect_cli.adapters.git import add_nested_worktree, gitlink_paths, switch_detached

        tree = self.trees[repo]
        present = gitlink_paths(tree, commit, list(links))
        missing: dict[str, str] = {}
        for path, (sub, sha) in links.items():
            if path not in present:
                missing[path] = f"not a submodule in {commit[:12]}"
                continue
            found = self.nested.get((repo, path))
            try:
                if found is None:
                    add_nested_worktree(self.paths[sub], sha, tree / path)
                    self.nested[(repo, path)] = (sub, tree / path)
                else:
                    switch_detached(found[1], sha)
            except CoditectError as exc:
                missing[path] = exc.message
        return missing

    def close(self) -> None:
        """Remove the temporary worktrees (the submodules' inside a superproject's first)."""
        from coditect_cli.adapters.git import remove_gate_worktrees

        for sub in dict.fromkeys(sub for sub, _where in self.nested.values()):
            remove_gate_worktrees(self.paths[sub], self.owner)
        for repo in self.trees:
            remove_gate_worktrees(self.paths[repo], self.owner)
        self.trees.clear()
        self.nested.clear()


def integration_tips(it: Integration, repos: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each repository's integration tips, origin's freshly fetched: origin, local, where it is checked out."""
    from coditect_cli.adapters.git import Git, checked_out, fetch_origin, is_ancestor

    integration = it.s.manifest.integration_branch
    tips: dict[str, dict[str, Any]] = {}
    for repo in repos:
        path = it.paths[repo]
        failed = fetch_origin(path)
        if failed:
            raise UnavailableError(f"cannot fetch origin of repository {repo!r}: {failed}")
        refs = Git(path).refs(f"refs/heads/{integration}", f"refs/remotes/origin/{integration}")
        origin = refs.get(f"refs/remotes/origin/{integration}")
        local = refs.get(f"refs/heads/{integration}")
        if origin is None:
            raise UsageError(
                f"{integration} is not on origin of repository {repo!r}",
                hint="run `coditect streams setup`",
            )
        if local is not None and local != origin and not is_ancestor(path, local, origin):
            raise RefusedError(
                f"local {integration} of repository {repo!r} ({local[:12]}) has commits origin's "
                f"({origin[:12]}) does not; integrating would leave them behind",
                hint=f"push them (or reset {integration} to origin/{integration}), then run it again",
            )
        where = checked_out(path).get(integration)
        tips[repo] = {
            "origin": origin,
            "local": local,
            "checked_out": str(where) if where else None,
            "forge": it.s.forges.kind(repo),
        }
    return tips


def gated_tips(it: Integration, repo: str) -> list[str]:
    """Every commit coditect put ``repo``'s integration branch on, oldest first: the moves of setup, of
    checkpoints and merge-phase (and their aborts) and of ``pr merge``, and the tips adopted (and gated) with
    ``--adopt-tip``. Each of them passed the gates, or is where setup started the branch."""
    branch = it.s.manifest.integration_branch
    names = {f"refs/heads/{branch}", f"refs/remotes/origin/{branch}", f"origin:refs/heads/{branch}"}
    out: list[str] = []
    for event in it.s.store.events(repo=repo):
        detail = event.detail or {}
        if event.kind == "ref" and event.ref in names and event.new:
            out.append(event.new)
        elif event.kind == "pr" and detail.get("action") == "merged" and detail.get("base") == branch:
            out += [str(detail["commit"])] if detail.get("commit") else []
        elif event.kind == ADOPT_EVENT and detail.get("branch") == branch and detail.get("passed"):
            out.append(str(detail["tip"]))
    return list(dict.fromkeys(out))


ADOPT_EVENT = "adopt-tip"


def ungated_tips(
    it: Integration, tips: Mapping[str, Mapping[str, Any]], adopt: str | None, command: str
) -> dict[str, dict[str, Any]]:
    """The integration tips coditect did not gate (a push or a move outside coditect), by repository: the
    adoptions ``--adopt-tip`` asks for. Without it, such a tip is refused (RefusedError naming the commits)."""
    from coditect_cli.adapters.git import Git

    found: dict[str, dict[str, Any]] = {}
    last: dict[str, str] = {}
    for repo, info in tips.items():
        known = gated_tips(it, repo)
        tip = str(info["origin"])
        if not known or tip in known:
            continue  # nothing recorded (a branch set up by hand): its tip is the baseline
        git = Git(it.paths[repo])
        probe = git.run("cat-file", "--batch-check", input="\n".join(known) + "\n", check=False).stdout
        present = [w[0] for w in (line.split() for line in probe.splitlines()) if w[1:2] == ["commit"]]
        listed = git.out("log", "--format=%h %s", "--max-count=21", tip, "--not", *present)
        commits = listed.splitlines()
        found[repo] = {"tip": tip, "commits": commits[:20] + (["..."] if len(commits) > 20 else [])}
        last[repo] = known[-1]
    if found and adopt is None:
        branch = it.s.manifest.integration_branch
        lines = [
            f"origin's {branch} of {repo!r} is at {info['tip'][:12]}, a commit coditect did not gate "
            "(pushed or moved outside coditect); "
            + (
                f"not gated: {'; '.join(info['commits'])}"
                if info["commits"]
                else f"it is behind {last[repo][:12]}, where coditect last put it"
            )
            for repo, info in found.items()
        ]
        back = ", ".join(f"{last[r][:12]} in {r}" for r in found)
        raise RefusedError(
            "not building on an integration tip that was never gated:\n  " + "\n  ".join(lines),
            hint=f'look at them; `coditect {command} --adopt-tip "why"` gates that tip first and builds on it '
            f"(the reason is recorded), or put the branch back ({back})",
        )
    return {repo: {**info, "reason": adopt} for repo, info in found.items()}


def collect(
    it: Integration,
    streams: Sequence[str],
    repos: Sequence[str],
    adopt: str | None = None,
    command: str = "checkpoint",
) -> dict[str, Any]:
    """Freeze the batch: the ready PRs of ``streams``, and each repository's integration tips (a tip
    coditect did not gate is refused, or adopted with ``adopt``'s reason: gated first)."""
    from coditect_cli.domain.prs import not_ready_reason
    from coditect_cli.services.prs import stream_views

    m = it.s.manifest
    tips = integration_tips(it, repos)
    for repo, adoption in ungated_tips(it, tips, adopt, command).items():
        tips[repo]["adopted"] = adoption
    pairs = [p for p in m.pairs() if p.stream.id in streams and p.repo.id in tips]
    batch: list[BatchPr] = []
    not_ready: list[dict[str, Any]] = []
    for view in stream_views(it.s, pairs, open_only=True):
        if view.pr is None or view.stream is None:
            continue
        reason = not_ready_reason(view) or (
            "checks pending" if view.gating_checks_state == "pending" else None
        )
        if reason is not None:
            not_ready.append(
                {
                    "repo": view.repo,
                    "number": view.pr.number,
                    "stream": view.stream,
                    "title": view.pr.title,
                    "reason": reason,
                }
            )
            continue
        stream = m.stream(view.stream)
        batch.append(
            BatchPr(
                view.repo,
                view.pr.number,
                stream.id,
                stream.terminal,
                view.pr.head,
                view.pr.head_sha or "",
                view.pr.base,
                view.pr.title,
                view.pr.body,
            )
        )
    ordered = order_batch(batch, [r.id for r in m.repositories])
    return {"batch": [p.to_json() for p in ordered], "not_ready": not_ready, "repos": tips}


def gate(it: Integration, specs: Sequence[GateSpec]) -> dict[str, Any]:
    """Stage, gate and bisect the collected batch; return what each repository lands.

    Submodules first, then the superproject, whose gates run with its submodules checked out at their staged
    commits (the commits their searches settled on). With the journal's ``gitlinks`` (merge-phase), the
    superproject's staged commits also point their gitlinks at those commits: the combination released is the
    combination gated. An adopted tip (``--adopt-tip``) is gated alone before its batch.
    """
    from coditect_cli.adapters.git import Git, commit_gitlinks
    from coditect_cli.domain.gating import SearchOutcome, superproject

    assert it.journal is not None
    journal = it.journal
    m = it.s.manifest
    collected = journal.result_of("collect")
    batch = [BatchPr.from_json(p) for p in collected["batch"]]
    tips: dict[str, dict[str, Any]] = collected["repos"]
    by_key = {p.key: p for p in batch}
    strategy: MergeStrategy = m.merge.strategy
    chains = {repo: Chain(it.paths[repo], t["origin"], strategy, by_key) for repo, t in tips.items()}
    items: dict[str, list[str]] = {repo: [] for repo in tips}
    conflicts: list[dict[str, Any]] = []
    for pr in batch:
        try:
            chains[pr.repo].commit_for([*items[pr.repo], pr.key])
            items[pr.repo].append(pr.key)
        except CheckFailed as exc:
            merged = ", ".join(f"#{by_key[k].number}" for k in items[pr.repo])
            after = f" (on top of {merged})" if merged else ""
            conflicts.append({**pr.to_json(), "reason": f"{exc.message}{after}", "kind": "conflict"})
    runner = GateRunner(
        it.paths,
        m.phase,
        it.logs,
        {"CODITECT_PHASE": m.phase, "CODITECT_RUN": str(journal.id)},
        m.pass_env,
    )
    rounds: list[dict[str, Any]] = []
    by_repo = {repo: [g for g in specs if g.repo == repo] for repo in tips}
    # A result kept by an earlier, interrupted attempt of this run was a gate run all the same; a tree this
    # attempt already tested is not run again (and not counted again).
    tested_here: set[tuple[str, str]] = set()
    root, subs = superproject(m)
    root = root if root in tips and subs else None
    rewrite = bool(journal.info.args.get("gitlinks"))
    links: dict[str, tuple[str, str]] = {}  # the superproject's submodules: path -> (repository, commit)
    with_links: dict[tuple[str, str], str] = {}

    def commit_of(repo: str, probe: Sequence[str]) -> str:
        commit = chains[repo].commit_for(probe)
        if repo != root or not rewrite or not links:
            return commit
        key = (commit, repr(sorted(links.items())))
        if key not in with_links:
            wanted = {path: sha for path, (_sub, sha) in links.items()}
            message = f"chore(coditect): point the submodules at their staged commits ({m.phase})\n"
            with_links[key] = commit_gitlinks(it.paths[repo], commit, wanted, message) or commit
        return with_links[key]

    order = {repo: CommandOrder() for repo in tips}
    flakes: list[dict[str, Any]] = []
    batch_tried: set[str] = set()  # repositories whose whole batch was run (a flaky red one once more)

    def run_gates(repo: str, commit: str, specs: Sequence[GateSpec], mine: Links) -> GateRun:
        """Run ``specs`` in the order the repository's failures so far ask for; note the failing one."""
        arranged = order[repo].arrange(specs)
        passed, gates = runner.run(repo, commit, arranged, f"r{len(rounds) + 1:02d}", mine)
        if not passed:
            order[repo].note(arranged[len(gates) - 1])
        return passed, gates, arranged

    def evaluate(probes: Mapping[str, Probe]) -> dict[str, bool]:
        answers: dict[str, bool] = {}
        record: dict[str, Any] = {}
        retry: dict[str, tuple[str, str, list[GateSpec], dict[str, Any]]] = {}
        ran = False
        for repo, probe in probes.items():
            entry: dict[str, Any] = {"prs": [by_key[k].number for k in probe]}
            whole = repo not in batch_tried and list(probe) == items[repo]
            if whole:
                batch_tried.add(repo)
            try:
                commit = commit_of(repo, probe)
            except CheckFailed as exc:
                answers[repo] = False
                record[repo] = {**entry, "passed": False, "error": exc.message}
                continue
            tree = chains[repo].tree(commit)
            mine = links if repo == root else {}
            # The submodules' commits are part of what a superproject's gates saw.
            key = tree + "".join(f" {path}={sha}" for path, (_sub, sha) in sorted(mine.items()))
            cached = journal.gate_result(repo, key)
            if cached is None:
                passed, gates, arranged = run_gates(repo, commit, by_repo[repo], mine)
                again = flaky_retry(arranged, len(gates), passed) if whole else []
                if again:  # recorded in the journal once the retry has run
                    retry[repo] = (commit, key, again, {**entry, "commit": commit, "tree": tree})
                else:
                    journal.record_gate(repo, key, passed, {"gates": gates, "commit": commit})
            else:
                passed, gates = cached[0], list(cached[1]["gates"])
                flake = cached[1].get("flake")
                if flake and flake not in flakes:
                    flakes.append(flake)
            ran = ran or (bool(gates) and (repo, key) not in tested_here)
            tested_here.add((repo, key))
            answers[repo] = passed
            record[repo] = {
                **entry,
                "commit": commit,
                "tree": tree,
                "passed": passed,
                "cached": cached is not None,
                "gates": gates,
                **({"submodules": {path: sha for path, (_sub, sha) in mine.items()}} if mine else {}),
            }
        rounds.append({"round": len(rounds) + 1, "ran": ran, "repos": record})
        if retry:
            answers.update(retry_flaky(retry, record))
        return answers

    def retry_flaky(
        retry: Mapping[str, tuple[str, str, list[GateSpec], dict[str, Any]]], first: Mapping[str, Any]
    ) -> dict[str, bool]:
        """One more gate run of each whole batch that failed on a flaky gate: from that gate on. A pass is
        a flake (reported, not a failure); a second failure is a failure, and the bisection goes on."""
        answers: dict[str, bool] = {}
        record: dict[str, Any] = {}
        for repo, (commit, key, again, entry) in retry.items():
            mine = links if repo == root else {}
            passed, gates, _arranged = run_gates(repo, commit, again, mine)
            before = list(first[repo]["gates"])
            detail: dict[str, Any] = {"gates": before + gates, "commit": commit}
            if passed:
                flake = {
                    "repo": repo,
                    "gate": before[-1]["gate"],
                    "commit": commit,
                    "prs": entry["prs"],
                    "logs": [before[-1]["log"], gates[0]["log"]],
                }
                flakes.append(flake)
                detail["flake"] = flake
            journal.record_gate(repo, key, passed, detail)
            answers[repo] = passed
            record[repo] = {**entry, "passed": passed, "cached": False, "gates": gates, "retry": True}
        rounds.append({"round": len(rounds) + 1, "ran": True, "retry": True, "repos": record})
        return answers

    outcomes: dict[str, SearchOutcome] = {}

    def search(repos: Sequence[str]) -> None:
        adopted = [r for r in repos if tips[r].get("adopted")]
        red: set[str] = set()
        if adopted:  # an adopted tip is gated alone first; a red one takes nothing in
            answers = evaluate({r: () for r in adopted})
            red = {r for r in adopted if not answers[r]}
            recorded = {
                (e.repo, (e.detail or {}).get("journal")) for e in it.s.store.events(kind=ADOPT_EVENT)
            }
            for r in adopted:
                if (r, journal.id) in recorded:
                    continue  # recorded by an earlier attempt of this run (killed after it)
                detail = {**tips[r]["adopted"], "branch": m.integration_branch, "passed": r not in red}
                it.s.store.record_event(
                    journal.run_id,
                    journal.info.command,
                    ADOPT_EVENT,
                    phase=m.phase,
                    repo=r,
                    detail={**detail, "journal": journal.id},
                )
        outcomes.update({r: SearchOutcome((), (), False) for r in red})
        outcomes.update(drive({r: items[r] for r in repos if r not in red}, evaluate).outcomes)

    def staged(repo: str) -> str:
        found = outcomes[repo]
        return chains[repo].commit_for(found.kept) if found.green else str(tips[repo]["origin"])

    try:
        search([r for r in tips if r != root])
        if root is not None:
            for sub, path in subs.items():
                if sub in tips:
                    links[path] = (sub, staged(sub))
                else:  # not in this run: the submodule's integration tip, when it has one
                    ref = f"refs/remotes/origin/{m.integration_branch}"
                    try:
                        tip = Git(it.paths[sub]).refs(ref).get(ref)
                    except CoditectError:
                        tip = None  # not checked out here: its gate worktree path stays empty
                    if tip:
                        links[path] = (sub, tip)
            search([root])
    finally:
        runner.close()
    repos: dict[str, Any] = {}
    left_out = list(conflicts)
    for repo in tips:
        found = outcomes[repo]
        seen = [r["repos"][repo] for r in rounds if repo in r["repos"]]
        whole = [e for e in seen if e["prs"] == [by_key[k].number for k in items[repo]]]
        first = whole[1] if len(whole) > 1 and whole[1].get("retry") else (whole or seen)[0]
        failing = [g["gate"] for g in first.get("gates", []) if g["exit"] != 0]
        logs = [g["log"] for g in first.get("gates", []) if g["exit"] != 0]
        partners = {blamed: earlier for earlier, blamed in found.pairs}
        for key in found.blamed:
            reason = f"the gates fail with it ({', '.join(failing) or 'a gate'}) and pass without it"
            together: dict[str, Any] = {}
            if key in partners:
                partner = by_key[partners[key]]
                reason += (
                    f"; it passes alone and fails only together with #{partner.number} ({partner.head}),"
                    " which was kept"
                )
                together["together_with"] = partner.key
            left_out.append(
                {**by_key[key].to_json(), "reason": reason, "kind": "gates", "logs": logs, **together}
            )
        chain: list[dict[str, Any]] = []
        if found.green:
            for i, key in enumerate(found.kept):
                pr = by_key[key]
                chain.append(
                    {
                        **pr.to_json(),
                        "commit": chains[repo].commit_for(found.kept[: i + 1]),
                        "base_sha": chains[repo].commit_for(found.kept[:i]),
                    }
                )
        tested = commit_of(repo, found.kept) if found.green else None
        extra: dict[str, Any] = {}
        if repo == root:
            extra["submodules"] = {path: sha for path, (_sub, sha) in links.items()}
            if tested is not None and rewrite:  # the commit the PRs make, before its gitlinks point on
                extra["staged"] = chains[repo].commit_for(found.kept)
                extra["staged_tree"] = chains[repo].tree(extra["staged"])
        repos[repo] = {
            "green": found.green,
            "start": tips[repo]["origin"],
            "tested": tested,
            "tree": chains[repo].tree(tested) if tested else None,
            **extra,
            "chain": chain,
            "unmerged": []
            if found.green
            else [by_key[k].to_json() for k in items[repo] if k not in found.blamed],
            "failing": [] if found.green else failing,
            "logs": [] if found.green else logs,
            "identified_after": list(found.identified_after),
        }
    return {
        "passed": all(r["green"] for r in repos.values()),
        "repos": repos,
        "left_out": left_out,
        "rounds": rounds,
        "gate_runs": sum(1 for r in rounds if r["ran"]),
        "gate_commands": runner.commands,
        "flakes": flakes,
        "strategy": strategy,
    }
