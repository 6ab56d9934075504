"""Gating rules: the batch of a checkpoint, its gates, the bisection that finds a breaking PR, the journal
model that makes ``checkpoint`` and ``merge-phase`` resumable, and the release notes. Pure: no git, no I/O.

Bisection
---------
A repository's batch ``B`` (its ready PRs, in order) is tested whole first: one gate run when it is green.
When it is red, :func:`search` looks for one PR ``x`` such that ``B`` minus ``x`` is *tested* green; that
is both the proof that ``x`` breaks the gates ("with it red, without it green") and the commit to merge.
Probes leave a set ``H`` of suspects out: ``B - H`` green puts the culprit in ``H`` (and when ``H`` is
one PR the probe *is* the final commit, so no re-test is needed); red puts it in the other suspects.
:func:`split_size` chooses ``|H|`` by dynamic programming: the smallest worst case, then the smallest mean,
over where the one bad PR is. If the answer does not hold up (two bad PRs, or PRs that only break
together), a classic prefix bisection takes over: the first failing prefix names the PR to blame (the
integration tip alone is run only when no prefix passed: a passing prefix proves the tip green).

Counting gate runs for one bad PR among ``n``: the whole batch (1), then the search. Finding the culprit
takes ``ceil(log2 n)`` probes, so ``1 + ceil(log2 n)`` runs identify it; the commit without it is reused
from the probes whenever the last probe left exactly that PR out (about half of the positions), else it
costs one more run. No strategy does better in the worst case: a run answers yes or no, the final commit
``B - {x}`` must itself have been run, and for ``n = 2`` (culprit the second one tested) three runs are
unavoidable; :func:`worst_case_runs` gives the exact optimum, ``ceil(log2 n) + 2`` at worst for n = 4, 8, 10.
(Every outcome "x is bad" needs its own green probe ``B - {x}`` on its path of answers, and a yes/no tree of
depth ``k`` after the batch has at most ``2^(k-1)`` such leaves; so ``ceil(log2 n) + 1`` runs at *every*
position is impossible for n a power of two.)

Once more than one PR failed, every PR left out is also tried alone; one that passes alone fails together
with another, found by a prefix bisection of the rest and reported in :attr:`SearchOutcome.pairs`. A probe
holding a combination already seen failing is not run (answered red).

A gate run is several commands; :class:`CommandOrder` runs a command seen failing first in every later
probe and the run stops at the first failure, and :func:`flaky_retry` says what a whole batch that failed on
a gate marked flaky runs again before the search starts (a pass then is a flake).

Repositories are searched in lockstep (:func:`drive`): a gate runs in one repository's tree, so its result
depends on that tree only, and one *gate run* (a round) tests one candidate commit per repository.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from coditect_cli.domain.manifest import Gate, Manifest

# ------------------------------------------------------------------------------------------------ batch


@dataclass(frozen=True)
class BatchPr:
    """One pull request of a batch, frozen at the head that was reviewed and tested."""

    repo: str
    number: int
    stream: str
    terminal: int
    head: str
    head_sha: str
    base: str
    title: str
    body: str = ""

    @property
    def key(self) -> str:
        """``<repo>#<number>``: unique in a phase."""
        return f"{self.repo}#{self.number}"

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (also how the journal stores it)."""
        return {
            "repo": self.repo,
            "number": self.number,
            "stream": self.stream,
            "terminal": self.terminal,
            "head": self.head,
            "head_sha": self.head_sha,
            "base": self.base,
            "title": self.title,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchPr:
        """The value :meth:`to_json` wrote."""
        return cls(
            str(data["repo"]),
            int(data["number"]),
            str(data["stream"]),
            int(data["terminal"]),
            str(data["head"]),
            str(data["head_sha"]),
            str(data["base"]),
            str(data["title"]),
            str(data.get("body", "")),
        )


def order_batch(prs: Sequence[BatchPr], repo_order: Sequence[str]) -> list[BatchPr]:
    """``prs`` in merge order: terminal order of their streams, then the manifest's order of repositories."""
    rank = {r: i for i, r in enumerate(repo_order)}
    return sorted(prs, key=lambda p: (p.terminal, p.stream, rank.get(p.repo, len(rank)), p.number))


# ------------------------------------------------------------------------------------------------ gates


def superproject(manifest: Manifest) -> tuple[str | None, dict[str, str]]:
    """(the superproject's id, its submodules: id -> path), the superproject being the repository at ``.``
    (None, and no submodules, when there is none)."""
    root = next((r.id for r in manifest.repositories if r.path.strip("/") in ("", ".")), None)
    if root is None:
        return None, {}
    return root, {r.id: r.path.strip("/") for r in manifest.repositories if r.id != root}


@dataclass(frozen=True)
class GateSpec:
    """One gate command to run in one repository's tree; ``names`` are every gate that asked for it."""

    repo: str
    run: str
    names: tuple[str, ...]
    timeout: int
    flaky: bool = False  # a gate asking for it is marked flaky: a red batch on it is run once more

    @property
    def label(self) -> str:
        """``name`` or ``name+other`` for a command several gates share."""
        return "+".join(self.names)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON."""
        return {
            "repo": self.repo,
            "run": self.run,
            "names": list(self.names),
            "timeout": self.timeout,
            "flaky": self.flaky,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateSpec:
        """The value :meth:`to_json` wrote."""
        return cls(
            str(data["repo"]),
            str(data["run"]),
            tuple(data["names"]),
            int(data["timeout"]),
            bool(data.get("flaky", False)),  # journals written before flaky gates existed
        )


def gate_specs(
    manifest: Manifest, streams: Sequence[str], extra: Sequence[Gate] = ()
) -> tuple[GateSpec, ...]:
    """The gates of a checkpoint (``extra``) and of its ``streams``, one per (repository, command).

    A gate runs in its ``repo``, else in the first repository of its stream (``extra`` gates without a repo:
    the first repository of the first stream). A command two gates share in one repository runs once (with
    the longest timeout; flaky when either gate says so).
    """
    first = manifest.stream(streams[0]).work[0].repo if streams else manifest.repositories[0].id
    wanted: list[tuple[str, Gate]] = [(g.repo or first, g) for g in extra]
    for sid in streams:
        stream = manifest.stream(sid)
        wanted += [(g.repo or stream.work[0].repo, g) for g in stream.gates]
    merged: dict[tuple[str, str], GateSpec] = {}
    for repo, gate in wanted:
        found = merged.get((repo, gate.run))
        if found is None:
            merged[(repo, gate.run)] = GateSpec(repo, gate.run, (gate.name,), gate.timeout, gate.flaky)
        else:
            merged[(repo, gate.run)] = GateSpec(
                repo,
                gate.run,
                found.names if gate.name in found.names else (*found.names, gate.name),
                max(found.timeout, gate.timeout),
                found.flaky or gate.flaky,
            )
    return tuple(merged.values())


@dataclass
class CommandOrder:
    """The order one repository's gate commands run in during a checkpoint: a command seen failing runs
    first in every later probe (the latest failure first, then the others in the manifest's order), and a
    probe stops at its first failing command. A split of a batch that failed on ``X`` runs ``X`` first, so a
    split that is going to be rejected costs one command, not the whole gate list."""

    failed: list[str] = field(default_factory=list)  # the ``run`` of each command seen failing, latest first

    def arrange(self, specs: Sequence[GateSpec]) -> list[GateSpec]:
        """``specs`` in the order the next probe runs them."""
        rank = {run: i for i, run in enumerate(self.failed)}
        return sorted(specs, key=lambda g: rank.get(g.run, len(rank)))  # stable: the rest keep their order

    def note(self, spec: GateSpec) -> None:
        """``spec`` just failed: it moves to the front."""
        self.failed = [spec.run, *(r for r in self.failed if r != spec.run)]


def flaky_retry(arranged: Sequence[GateSpec], ran: int, passed: bool) -> list[GateSpec]:
    """The commands to run again when a whole batch went red: the failing command (the ``ran``-th of
    ``arranged``, where the run stopped) and those it did not reach, when that command is flaky; else none
    (a command that is not flaky is never run twice on one tree)."""
    if passed or ran < 1 or not arranged[ran - 1].flaky:
        return []
    return list(arranged[ran - 1 :])


# ------------------------------------------------------------------------------------------------ bisection


@cache
def _plan(m: int) -> tuple[int, float, int]:
    """(worst runs, mean runs, |H|) to confirm the culprit among ``m`` suspects, the batch being red."""
    if m <= 1:
        return 1, 1.0, 0
    best: tuple[int, float, int] | None = None
    for h in range(1, m):
        pass_worst, pass_mean = (0, 0.0) if h == 1 else _plan(h)[:2]
        rest_worst, rest_mean = _plan(m - h)[:2]
        worst = 1 + max(pass_worst, rest_worst)
        mean = 1 + (h / m) * pass_mean + ((m - h) / m) * rest_mean
        if best is None or (worst, mean) < (best[0], best[1] - 1e-12):
            best = (worst, mean, h)
    assert best is not None
    return best


def split_size(m: int) -> int:
    """How many of ``m`` suspects the next probe leaves out (see the module docstring)."""
    return _plan(m)[2]


def worst_case_runs(n: int) -> int:
    """Gate runs, at worst, for a batch of ``n`` with one bad PR: the whole batch, then the search."""
    return 1 if n <= 0 else 1 + _plan(n)[0]


def mean_runs(n: int) -> float:
    """Mean gate runs over the position of the one bad PR in a batch of ``n``."""
    return 1.0 if n <= 0 else 1 + _plan(n)[1]


def identify_bound(n: int) -> int:
    """``ceil(log2 n) + 1``: the runs that identify one bad PR among ``n`` (the whole batch + the search)."""
    return 1 + (math.ceil(math.log2(n)) if n > 1 else 0)


@dataclass(frozen=True)
class SearchOutcome:
    """What a repository's search found: the PRs kept (``green``: tested green), those blamed, in order."""

    kept: tuple[str, ...]
    blamed: tuple[str, ...]
    green: bool
    identified_after: tuple[int, ...] = ()  # probes asked when each culprit was known (before confirming)
    pairs: tuple[tuple[str, str], ...] = ()  # (earlier, blamed): two PRs that fail only together


Probe = tuple[str, ...]
Search = Generator[Probe, bool, SearchOutcome]


def search(items: Sequence[str]) -> Search:
    """The bisection of one repository's batch as a coroutine: yields subsets to test, receives pass/fail.

    Subsets keep the batch's order; ``()`` is the integration tip alone. Returns a :class:`SearchOutcome`.
    """
    known: dict[Probe, bool] = {}
    red: list[frozenset[str]] = []  # combinations known to fail: a probe holding one of them fails too
    asked = 0

    def ask(probe: Sequence[str]) -> Generator[Probe, bool, bool]:
        nonlocal asked
        key = tuple(probe)
        if key not in known:
            members = frozenset(key)
            if any(r <= members for r in red):
                known[key] = False
                return False
            asked += 1
            known[key] = yield key
            if not known[key]:
                red.append(members)
        return known[key]

    batch = list(items)
    blamed: list[str] = []
    identified: list[int] = []
    pairs: list[tuple[str, str]] = []

    def partner(culprit: str, others: Sequence[str]) -> Generator[Probe, bool, None]:
        """When ``culprit`` passes alone, the PR of ``others`` (known red with it) it fails together with:
        the first ``j`` with ``others[:j]`` plus it red. Only asked once several PRs failed."""
        if not others or not (yield from ask((culprit,))):
            return
        rank = {p: i for i, p in enumerate(items)}
        lo, hi = 0, len(others)  # others[:lo] + culprit green (lo = 0: alone), others[:hi] + culprit red
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (yield from ask(sorted((*others[:mid], culprit), key=rank.__getitem__))):
                lo = mid
            else:
                hi = mid
        first, second = sorted((others[hi - 1], culprit), key=rank.__getitem__)
        pairs.append((first, second))

    if (yield from ask(batch)):
        return SearchOutcome(tuple(batch), (), True)
    green_prefix = 0  # a prefix known green; 0 (the tip) is an assumption until the fallback checks it
    while True:
        suspects = batch[green_prefix:]
        confirmed: str | None = None
        while len(suspects) > 1 and confirmed is None:
            leave = suspects[len(suspects) - split_size(len(suspects)) :]
            probe = [p for p in batch if p not in leave]
            if (yield from ask(probe)):
                if len(leave) == 1:
                    confirmed = leave[0]
                    identified.append(asked)
                suspects = leave
                if probe == batch[: len(probe)]:
                    green_prefix = len(probe)
            else:
                suspects = [p for p in suspects if p not in leave]
        if confirmed is None and suspects:
            identified.append(asked)
            if (yield from ask([p for p in batch if p != suspects[0]])):
                confirmed = suspects[0]
            else:
                identified.pop()
        if confirmed is not None:
            if blamed:  # several PRs fail: this one may fail only together with another
                yield from partner(confirmed, [p for p in batch if p != confirmed])
            blamed.append(confirmed)
            batch.remove(confirmed)
            return SearchOutcome(tuple(batch), tuple(blamed), True, tuple(identified), tuple(pairs))
        # More than one PR breaks the gates (or only some together): blame the first failing prefix.
        lo, hi = green_prefix, len(batch)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (yield from ask(batch[:mid])):
                lo = mid
            else:
                hi = mid
        # The tip alone matters only now: a prefix found green proved it green (whatever it holds passes).
        if lo == 0 and not (yield from ask(())):
            return SearchOutcome((), tuple(blamed), False, tuple(identified), tuple(pairs))
        culprit = batch[hi - 1]
        identified.append(asked)
        yield from partner(culprit, batch[: hi - 1])
        blamed.append(culprit)
        batch.remove(culprit)
        green_prefix = hi - 1
        if green_prefix == len(batch) or (yield from ask(batch)):
            return SearchOutcome(tuple(batch), tuple(blamed), True, tuple(identified), tuple(pairs))


@dataclass
class DriveOutcome:
    """The searches of every repository: outcomes by repository and the rounds that ran."""

    outcomes: dict[str, SearchOutcome] = field(default_factory=dict)
    rounds: int = 0


Evaluate = Callable[[Mapping[str, Probe]], Mapping[str, bool]]


def drive(batches: Mapping[str, Sequence[str]], evaluate: Evaluate) -> DriveOutcome:
    """Run the search of every repository in lockstep: each round asks ``evaluate`` for one probe per
    repository still searching (it runs their gates, or answers from what it knows)."""
    result = DriveOutcome()
    searches = {repo: search(items) for repo, items in batches.items()}
    pending = {repo: next(gen) for repo, gen in searches.items()}
    while pending:
        result.rounds += 1
        answers = evaluate(pending)
        following: dict[str, Probe] = {}
        for repo in pending:
            try:
                following[repo] = searches[repo].send(bool(answers[repo]))
            except StopIteration as stop:
                result.outcomes[repo] = stop.value
        pending = following
    return result


# ------------------------------------------------------------------------------------------------ journal

Location = Literal["local", "origin"]
StepState = Literal["pending", "done", "undone"]


@dataclass(frozen=True)
class RefMove:
    """A ref a step moves: ``old`` None is a creation, ``new`` None a deletion."""

    repo: str
    ref: str
    location: Location
    old: str | None
    new: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        """(repository, location, ref)."""
        return (self.repo, self.location, self.ref)

    def describe(self) -> str:
        """``origin phase-1-integration of backend``."""
        name = self.ref.removeprefix("refs/heads/").removeprefix("refs/")
        return f"{'origin ' if self.location == 'origin' else ''}{name} of {self.repo}"

    def to_json(self) -> dict[str, Any]:
        """This value as JSON."""
        return {
            "repo": self.repo,
            "ref": self.ref,
            "location": self.location,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class StepRecord:
    """One journaled step: its index, kind, payload, state, result and the refs it moved (or is moving)."""

    idx: int
    kind: str
    payload: dict[str, Any]
    state: StepState
    started: bool = False
    result: dict[str, Any] | None = None
    moves: tuple[RefMove, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """This value as JSON."""
        return {
            "index": self.idx,
            "kind": self.kind,
            "payload": self.payload,
            "state": self.state,
            "started": self.started,
            "moves": [m.to_json() for m in self.moves],
        }


@dataclass
class Reconciled:
    """The journal checked against the real refs: moves whose effect is in place, and disagreements."""

    applied: set[tuple[int, int]] = field(default_factory=set)  # (step index, move index)
    problems: list[str] = field(default_factory=list)


def _short(sha: str | None) -> str:
    return "absent" if sha is None else sha[:12]


def reconcile(
    steps: Sequence[StepRecord],
    actual: Mapping[tuple[str, str, str], str | None],
    undoing: int | None = None,
) -> Reconciled:
    """Check every journaled ref against ``actual`` (its real value, None when absent).

    Per ref, the moves of done steps must all be in place: the ref is at the last one's ``new``. The first
    move of a pending step after them may have happened too (the process stopped before journaling it
    done): then the ref is at that move's ``new``. Step ``undoing`` is the one an interrupted ``--abort`` was
    putting back (journaled before its first reverse move): each of its moves may be in place or put back.
    Any other value means someone else moved the ref since, and the journal cannot be trusted.
    """
    out = Reconciled()
    chains: dict[tuple[str, str, str], list[tuple[StepRecord, int, RefMove]]] = {}
    for step in sorted(steps, key=lambda s: s.idx):
        if step.state == "undone":
            continue
        for i, move in enumerate(step.moves):
            chains.setdefault(move.key, []).append((step, i, move))
    for key, chain in chains.items():
        value = actual.get(key)
        mine = [c for c in chain if c[0].idx == undoing]
        if mine:
            # Before its reverse moves (all in place), between them, or after them (all put back).
            values = [mine[0][2].old, *(m.new for _s, _i, m in mine)]
            if value in values:
                last = max(k for k, v in enumerate(values) if v == value)
                out.applied.update((s.idx, i) for s, i, _m in mine[:last])
                out.applied.update((s.idx, i) for s, i, _m in chain if s.state == "done" and s.idx != undoing)
                continue
            out.problems.append(
                f"{chain[0][2].describe()} is at {_short(value)}, but the journal expects "
                + " or ".join(dict.fromkeys(_short(v) for v in values))
            )
            continue
        done = [(s, i, m) for s, i, m in chain if s.state == "done"]
        for s, i, _m in done:
            out.applied.add((s.idx, i))
        current = done[-1][2].new if done else chain[0][2].old
        following = next((c for c in chain[len(done) :] if c[0].state == "pending"), None)
        if value == current:
            continue
        if following is not None and value == following[2].new:
            out.applied.add((following[0].idx, following[1]))
            continue
        expected = _short(current) + (f" or {_short(following[2].new)}" if following else "")
        out.problems.append(
            f"{chain[0][2].describe()} is at {_short(value)}, but the journal expects {expected}"
        )
    return out


# ------------------------------------------------------------------------------------------------ texts


def pause_text(phase: str, n: int, title: str) -> str:
    """What a stream's pane reads when a checkpoint starts."""
    return (
        f"# coditect: checkpoint {n} of {phase} ({title}) is integrating now. Pause: do not push to your "
        "feature branch until it resumes."
    )


def resume_text(phase: str, n: int, outcome: str) -> str:
    """What a stream's pane reads when a checkpoint ends."""
    return f"# coditect: checkpoint {n} of {phase} {outcome}. Resume work."


def blame_text(label: str, pr: BatchPr, reason: str, logs: Sequence[str]) -> str:
    """The PR comment (and pane message) for a PR left out of ``label`` ("Checkpoint 2", "merge-phase")."""
    where = "".join(f"\n- `{log}`" for log in logs)
    return (
        f"{label}: #{pr.number} ({pr.head} at {pr.head_sha[:12]}) was left out: {reason}.\n"
        f"Fix it on the feature branch and push; the next checkpoint takes the new head."
        + (f"\n\nGate logs:{where}" if where else "")
    )


def release_notes(
    phase: str, title: str, tag: str, merged: Sequence[Mapping[str, Any]], stream_order: Sequence[str]
) -> str:
    """Markdown release notes: the PRs merged in the phase, grouped by stream (terminal order)."""
    lines = [f"# {tag}: {title or phase}", "", f"Phase `{phase}`. Pull requests merged, by stream:", ""]
    by_stream: dict[str, list[Mapping[str, Any]]] = {}
    for pr in merged:
        by_stream.setdefault(str(pr["stream"]), []).append(pr)
    rank = {s: i for i, s in enumerate(stream_order)}
    for stream in sorted(by_stream, key=lambda s: (rank.get(s, len(rank)), s)):
        lines += [f"## {stream}", ""]
        for pr in by_stream[stream]:
            where = f" — checkpoint {pr['checkpoint']}" if pr.get("checkpoint") else ""
            lines.append(f"- {pr['repo']}#{pr['number']}: {pr['title']}{where}")
        lines.append("")
    if not by_stream:
        lines += ["No pull requests were merged.", ""]
    return "\n".join(lines)
