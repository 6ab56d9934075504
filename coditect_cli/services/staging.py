"""The batch of a checkpoint (or merge-phase): collect the ready PRs, stage them on the integration tips,
run the gates on exactly those trees in temporary worktrees, and bisect a failing batch.

Staging commits are computed in the object database with the local forge's own merge code (``merge-tree``
and ``commit-tree``), so a staging commit is exactly what that forge's merge would push; nothing is checked
out anywhere but in this run's own temporary, detached worktree, one per repository, removed at the end.
Gate results are kept in the journal by tree: a resumed run never runs a gate twice on the same tree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.gating import BatchPr, GateSpec, Probe, drive, order_batch
from coditect_cli.errors import CheckFailed, CoditectError, RefusedError, UnavailableError, UsageError
from coditect_cli.forge.base import MergeStrategy

if TYPE_CHECKING:
    from coditect_cli.services.gating import Integration


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
    """Runs gate commands on exact commits in one temporary detached worktree per repository."""

    def __init__(self, paths: Mapping[str, Path], owner: str, logs: Path, env: Mapping[str, str]) -> None:
        self.paths = paths
        self.owner = owner
        self.logs = logs
        self.env = dict(env)
        self.trees: dict[str, Path] = {}
        self.commands = 0

    def run(
        self, repo: str, commit: str, specs: Sequence[GateSpec], tag: str
    ) -> tuple[bool, list[dict[str, Any]]]:
        """Run ``specs`` on ``commit`` (stopping at the first failure); each output goes to a log file."""
        from coditect_cli.adapters import proc
        from coditect_cli.adapters.git import add_detached_worktree, switch_detached

        if repo in self.trees:
            switch_detached(self.trees[repo], commit)
        else:
            self.trees[repo] = add_detached_worktree(self.paths[repo], commit, self.owner)
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
                    env=env,
                    timeout=spec.timeout,
                    check=False,
                    tied=True,  # a killed run leaves no gate process behind
                )
                code, output = done.returncode, done.stdout + done.stderr
            except CoditectError as exc:  # a timeout, or no shell
                code, output = -1, f"coditect: {exc.message}\n"
            seconds = round(time.perf_counter() - started, 3)
            self.commands += 1
            log.write_text(
                f"$ {spec.run}\n# repository {repo}, commit {commit}\n{output}\n# exit {code} after {seconds}s\n",
                encoding="utf-8",
            )
            ran.append({"gate": spec.label, "exit": code, "log": str(log), "seconds": seconds})
            if code != 0:
                return False, ran
        return True, ran

    def close(self) -> None:
        """Remove the temporary worktrees."""
        from coditect_cli.adapters.git import remove_gate_worktrees

        for repo in self.trees:
            remove_gate_worktrees(self.paths[repo], self.owner)
        self.trees.clear()


def collect(it: Integration, streams: Sequence[str], repos: Sequence[str]) -> dict[str, Any]:
    """Freeze the batch: the ready PRs of ``streams``, and each repository's integration tips."""
    from coditect_cli.adapters.git import Git, checked_out, fetch_origin, is_ancestor
    from coditect_cli.domain.prs import not_ready_reason
    from coditect_cli.services.prs import stream_views

    m = it.s.manifest
    integration = m.integration_branch
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
    """Stage, gate and bisect the collected batch; return what each repository lands."""
    assert it.journal is not None
    journal = it.journal
    collected = journal.result_of("collect")
    batch = [BatchPr.from_json(p) for p in collected["batch"]]
    tips: dict[str, dict[str, Any]] = collected["repos"]
    by_key = {p.key: p for p in batch}
    strategy: MergeStrategy = it.s.manifest.merge.strategy
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
        it.s.manifest.phase,
        it.logs,
        {"CODITECT_PHASE": it.s.manifest.phase, "CODITECT_RUN": str(journal.id)},
    )
    rounds: list[dict[str, Any]] = []
    by_repo = {repo: [g for g in specs if g.repo == repo] for repo in tips}
    # A result kept by an earlier, interrupted attempt of this run was a gate run all the same; a tree this
    # attempt already tested is not run again (and not counted again).
    tested_here: set[tuple[str, str]] = set()

    def evaluate(probes: Mapping[str, Probe]) -> dict[str, bool]:
        answers: dict[str, bool] = {}
        record: dict[str, Any] = {}
        ran = False
        for repo, probe in probes.items():
            entry: dict[str, Any] = {"prs": [by_key[k].number for k in probe]}
            try:
                commit = chains[repo].commit_for(probe)
            except CheckFailed as exc:
                answers[repo] = False
                record[repo] = {**entry, "passed": False, "error": exc.message}
                continue
            tree = chains[repo].tree(commit)
            cached = journal.gate_result(repo, tree)
            if cached is None:
                passed, gates = runner.run(repo, commit, by_repo[repo], f"r{len(rounds) + 1:02d}")
                journal.record_gate(repo, tree, passed, {"gates": gates, "commit": commit})
            else:
                passed, gates = cached[0], list(cached[1]["gates"])
            ran = ran or (bool(gates) and (repo, tree) not in tested_here)
            tested_here.add((repo, tree))
            answers[repo] = passed
            record[repo] = {
                **entry,
                "commit": commit,
                "tree": tree,
                "passed": passed,
                "cached": cached is not None,
                "gates": gates,
            }
        rounds.append({"round": len(rounds) + 1, "ran": ran, "repos": record})
        return answers

    try:
        outcome = drive(items, evaluate)
    finally:
        runner.close()
    repos: dict[str, Any] = {}
    left_out = list(conflicts)
    for repo, found in outcome.outcomes.items():
        first = next(r["repos"][repo] for r in rounds if repo in r["repos"])
        failing = [g["gate"] for g in first.get("gates", []) if g["exit"] != 0]
        logs = [g["log"] for g in first.get("gates", []) if g["exit"] != 0]
        for key in found.blamed:
            reason = f"the gates fail with it ({', '.join(failing) or 'a gate'}) and pass without it"
            left_out.append({**by_key[key].to_json(), "reason": reason, "kind": "gates", "logs": logs})
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
        tested = chains[repo].commit_for(found.kept) if found.green else None
        repos[repo] = {
            "green": found.green,
            "start": tips[repo]["origin"],
            "tested": tested,
            "tree": chains[repo].tree(tested) if tested else None,
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
        "strategy": strategy,
    }
