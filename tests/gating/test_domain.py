"""The pure gating rules: bisection (every position of the bad PR, several bad PRs, a red tip), the gate
list, the journal check against real refs, release notes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import cache

import pytest

from coditect_cli.domain.gating import (
    BatchPr,
    CommandOrder,
    GateSpec,
    Probe,
    RefMove,
    SearchOutcome,
    StepRecord,
    drive,
    flaky_retry,
    gate_specs,
    identify_bound,
    mean_runs,
    order_batch,
    reconcile,
    release_notes,
    search,
    worst_case_runs,
)
from coditect_cli.domain.manifest import Gate, Manifest


def run_search(items: Sequence[str], bad: set[str], tip_red: bool = False) -> tuple[SearchOutcome, int]:
    """The search with a perfect oracle: a subset is red iff it holds a bad PR (or the tip is red)."""
    gen = search(items)
    probe = next(gen)
    runs = 0
    try:
        while True:
            runs += 1
            probe = gen.send(not tip_red and not set(probe) & bad)
    except StopIteration as stop:
        return stop.value, runs


def run_oracle(
    items: Sequence[str], red: Callable[[frozenset[str]], bool]
) -> tuple[SearchOutcome, list[Probe]]:
    """The search against any oracle (``red(probe)``); returns its outcome and the probes it asked."""
    gen = search(items)
    asked = [next(gen)]
    try:
        while True:
            asked.append(gen.send(not red(frozenset(asked[-1]))))
    except StopIteration as stop:
        return stop.value, asked


@cache
def _optimum(n: int, candidates: frozenset[int], confirmed: bool) -> int:
    """Exact minimax over every possible probe (any subset of the batch): the runs after a red batch to know
    the bad PR among ``candidates`` and to have tested the batch without it green (``confirmed``)."""
    if len(candidates) == 1:
        return 0 if confirmed else 1
    everything = frozenset(range(n))
    best = n + 1
    for size in range(n):
        for kept in itertools.combinations(range(n), size):
            probe = frozenset(kept)
            green, red = candidates - probe, candidates & probe
            if not green or not red:
                continue  # the answer is known: no information
            final = len(green) == 1 and probe == everything - green
            cost = 1 + max(_optimum(n, green, final), _optimum(n, red, False))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("n", range(2, 7))
def test_the_worst_case_is_the_optimum_of_any_strategy(n: int) -> None:
    # No probe sequence whatsoever does better than the search once the batch was run whole (1 run for an
    # all-green batch) and the commit merged (the batch without the culprit) must itself be tested green.
    best = 1 + _optimum(n, frozenset(range(n)), False)
    assert worst_case_runs(n) == best
    if n & (n - 1) == 0:  # a power of two: ceil(log2 n) + 1 runs cannot suffice at every position
        assert best == identify_bound(n) + 1


@pytest.mark.parametrize("n", [4, 8, 16, 32, 64])
def test_one_bad_pr_at_every_position_of_large_batches(n: int) -> None:
    items = [f"p{i}" for i in range(n)]
    bound = 1 + math.ceil(math.log2(n))
    costs = []
    for culprit in items:
        found, runs = run_search(items, {culprit})
        assert found.green and found.blamed == (culprit,) and found.pairs == ()
        assert found.kept == tuple(p for p in items if p != culprit)
        assert found.identified_after[0] <= bound  # identified within ceil(log2 n) + 1 runs
        assert runs <= bound + 1 == worst_case_runs(n)  # confirmed (the merged commit tested) within + 1
        costs.append(runs)
    assert max(costs) == worst_case_runs(n)
    assert sum(c <= bound for c in costs) == n // 2  # the last probe is the merged commit half the time
    # The last PR of a red batch is never tested alone: "the batch without it" green blames it, no re-test.
    found, asked = run_oracle(items, lambda probe: items[-1] in probe)
    assert found.blamed == (items[-1],)
    assert asked[-1] == tuple(items[:-1]) and len(asked) == bound


@pytest.mark.parametrize("n", [4, 8])
def test_two_prs_failing_only_together_are_reported_as_the_pair(n: int) -> None:
    # Once a batch shows more than one failure, every PR left out is tried alone; one that passes alone
    # is reported with the PR it fails together with.
    items = [f"p{i}" for i in range(n)]
    for first, second in itertools.combinations(items, 2):
        for other in (p for p in items if p not in (first, second)):
            pair = {first, second}
            found, asked = run_oracle(
                items, lambda probe, pair=pair, other=other: pair <= probe or other in probe
            )
            assert found.green and found.pairs == ((first, second),), (first, second, other)
            assert set(found.blamed) == {second, other}  # leaving the later one out is enough
            assert found.kept == tuple(p for p in items if p not in found.blamed)
            assert len(asked) == len(set(asked))


def test_a_pair_alone_is_blamed_on_its_later_pr_without_an_extra_run() -> None:
    # With a red batch and "the batch without p5" green, the search cannot tell "p5 is bad" from "p5 fails
    # with p2" without one more run (p5 alone) for every red batch; it blames p5 (the rest is tested green).
    items = [f"p{i}" for i in range(8)]
    found, asked = run_oracle(items, lambda probe: {"p2", "p5"} <= probe)
    assert found.green and found.blamed == ("p5",) and found.pairs == ()
    assert asked[-1] == tuple(p for p in items if p != "p5") and len(asked) <= worst_case_runs(8)


def test_the_tip_alone_is_run_only_when_no_prefix_proved_it_green() -> None:
    # Two bad PRs: the prefix bisection that follows finds a green prefix, which holds the tip; a red tip
    # (every prefix red) is still found, and blames nobody.
    items = [f"p{i}" for i in range(8)]
    for bad in itertools.combinations(items[1:], 2):
        found, asked = run_oracle(items, lambda probe, bad=set(bad): bool(probe & bad))
        assert set(found.blamed) == set(bad) and () not in asked, bad
    found, asked = run_oracle(items, lambda probe: True)
    assert (found.green, found.blamed) == (False, ()) and asked[-1] == ()


@pytest.mark.parametrize("n", [8, 16])
def test_combinations_known_to_fail_are_not_run_again(n: int) -> None:
    items = [f"p{i}" for i in range(n)]
    for bad in itertools.combinations(items, 2):
        found, asked = run_oracle(items, lambda probe, bad=set(bad): bool(probe & bad))
        assert set(found.blamed) == set(bad) and found.pairs == ()
        known_red: list[set[str]] = []
        for probe in asked:
            assert not any(red <= set(probe) for red in known_red), (bad, probe)  # would fail: not run
            if set(probe) & set(bad):
                known_red.append(set(probe))


@pytest.mark.parametrize("n", range(1, 17))
def test_one_bad_pr_is_found_at_every_position_within_the_bound(n: int) -> None:
    items = [f"p{i}" for i in range(n)]
    costs = []
    for i, culprit in enumerate(items):
        found, runs = run_search(items, {culprit})
        assert found.green and found.blamed == (culprit,), (n, i)
        assert found.kept == tuple(p for p in items if p != culprit)
        # The whole batch plus ceil(log2 n) probes identify it; at most one more run confirms the rest.
        assert found.identified_after[0] <= identify_bound(n) == 1 + math.ceil(math.log2(n)), (n, i)
        assert runs <= found.identified_after[0] + 1
        costs.append(runs)
    assert max(costs) == worst_case_runs(n)
    assert sum(costs) / n == pytest.approx(mean_runs(n))
    if n > 1:
        assert worst_case_runs(n) <= identify_bound(n) + 1
        # The confirmation is reused (no extra run) for about half of the positions.
        assert sum(c <= identify_bound(n) for c in costs) >= n // 2


def test_the_published_figures() -> None:
    # n: (worst, mean) gate runs for one bad PR, the whole batch included.
    assert {n: (worst_case_runs(n), round(mean_runs(n), 2)) for n in (2, 4, 8, 10)} == {
        2: (3, 2.5),
        4: (4, 3.5),
        8: (5, 4.5),
        10: (6, 4.8),
    }


def test_a_green_batch_is_one_run() -> None:
    found, runs = run_search(["a", "b", "c"], set())
    assert (found.kept, found.blamed, found.green, runs) == (("a", "b", "c"), (), True, 1)


@pytest.mark.parametrize("n", range(2, 9))
def test_several_bad_prs_are_all_left_out_and_only_they(n: int) -> None:
    items = [f"p{i}" for i in range(n)]
    for k in (2, 3):
        for bad in itertools.combinations(items, k):
            found, _runs = run_search(items, set(bad))
            assert found.green and set(found.blamed) == set(bad), bad
            assert list(found.kept) == [p for p in items if p not in bad]


def test_a_red_tip_blames_nobody() -> None:
    found, _runs = run_search(["a", "b", "c", "d"], set(), tip_red=True)
    assert not found.green and found.blamed == () and found.kept == ()


def test_repositories_are_searched_in_lockstep() -> None:
    bad = {"b2"}
    asked: list[dict[str, tuple[str, ...]]] = []

    def evaluate(probes: dict[str, tuple[str, ...]]) -> dict[str, bool]:
        asked.append(dict(probes))
        return {repo: not set(p) & bad for repo, p in probes.items()}

    outcome = drive({"a": ["a1", "a2"], "b": ["b1", "b2", "b3", "b4"]}, evaluate)
    assert outcome.outcomes["a"].kept == ("a1", "a2") and outcome.outcomes["b"].blamed == ("b2",)
    assert asked[0] == {"a": ("a1", "a2"), "b": ("b1", "b2", "b3", "b4")}
    assert all(set(p) == {"b"} for p in asked[1:])  # a green repository is not asked again
    assert outcome.rounds == len(asked) == run_search(["b1", "b2", "b3", "b4"], bad)[1]


def _pr(repo: str, n: int, stream: str, terminal: int) -> BatchPr:
    return BatchPr(repo, n, stream, terminal, f"feature/{stream}", "a" * 40, "int", f"PR {n}")


def test_merge_order_is_terminal_then_repository() -> None:
    prs = [
        _pr("root", 1, "docs", 5),
        _pr("backend", 2, "deploy", 4),
        _pr("infra", 1, "deploy", 4),
        _pr("backend", 1, "backend", 2),
    ]
    ordered = order_batch(prs, ["root", "infra", "backend"])
    assert [(p.stream, p.repo) for p in ordered] == [
        ("backend", "backend"),
        ("deploy", "infra"),
        ("deploy", "backend"),
        ("docs", "root"),
    ]
    assert BatchPr.from_json(prs[0].to_json()) == prs[0]


def test_gate_specs_run_a_shared_command_once_per_repository() -> None:
    from coditect_cli.domain.loader import load_manifest
    from coditect_cli.services.demo import example_manifest

    manifest = load_manifest(example_manifest()).manifest
    cp1 = manifest.checkpoints[0]
    specs = gate_specs(manifest, ["infra", "backend"], cp1.gates)
    by = {(g.repo, g.run): g.names for g in specs}
    assert by[("backend", "python3 -m unittest discover -s tests -t .")] == ("migrations", "unit-tests")
    assert by[("infra", "python3 ci/check.py security")] == ("tfsec",)
    assert len(specs) == 5
    suite = gate_specs(manifest, [], (Gate(name="x", run="true"),))
    assert suite[0].repo == "root"


def test_a_command_seen_failing_runs_first_in_every_later_probe() -> None:
    lint, unit, e2e = (GateSpec("app", f"make {n}", (n,), 60) for n in ("lint", "unit", "e2e"))
    order = CommandOrder()
    assert order.arrange([lint, unit, e2e]) == [lint, unit, e2e]  # nothing failed yet: the manifest's order
    order.note(unit)
    assert order.arrange([lint, unit, e2e]) == [unit, lint, e2e]
    order.note(e2e)  # the latest failure first, then the earlier one, then the rest
    assert order.arrange([lint, unit, e2e]) == [e2e, unit, lint]
    order.note(unit)
    assert order.arrange([lint, unit, e2e]) == [unit, e2e, lint] and order.failed == ["make unit", "make e2e"]


def test_only_a_flaky_command_is_run_again_and_from_where_it_failed() -> None:
    lint = GateSpec("app", "make lint", ("lint",), 60)
    net = GateSpec("app", "make net", ("net",), 60, flaky=True)
    unit = GateSpec("app", "make unit", ("unit",), 60)
    arranged = [lint, net, unit]
    assert flaky_retry(arranged, 2, passed=False) == [net, unit]  # net failed: it and what it did not reach
    assert flaky_retry(arranged, 1, passed=False) == []  # lint is not flaky: never twice on one tree
    assert flaky_retry(arranged, 3, passed=False) == []
    assert flaky_retry(arranged, 3, passed=True) == []


def test_a_command_is_flaky_when_any_gate_sharing_it_says_so() -> None:
    specs = gate_specs(
        _manifest_with_gates(),
        [],
        (
            Gate(name="net", run="make net", repo="root", timeout=60),
            Gate(name="net2", run="make net", repo="root", timeout=90, flaky=True),
            Gate(name="unit", run="make unit", repo="root"),
        ),
    )
    assert [(g.label, g.flaky, g.timeout) for g in specs] == [("net+net2", True, 90), ("unit", False, 1800)]
    assert GateSpec.from_json(specs[0].to_json()) == specs[0]
    old = {k: v for k, v in specs[0].to_json().items() if k != "flaky"}  # a journal from before flaky gates
    assert GateSpec.from_json(old).flaky is False


def _manifest_with_gates() -> Manifest:
    from coditect_cli.domain.loader import load_manifest
    from coditect_cli.services.demo import example_manifest

    return load_manifest(example_manifest()).manifest


def _step(idx: int, state: str, *moves: RefMove) -> StepRecord:
    return StepRecord(idx, "land", {}, state, True, None, moves)  # type: ignore[arg-type]


def test_reconcile_trusts_the_journal_only_where_the_refs_agree() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    land = RefMove("app", "refs/heads/int", "origin", a, b)
    tag = RefMove("app", "refs/tags/t", "local", None, c)
    key, tkey = land.key, tag.key
    done = [_step(0, "done", land), _step(1, "pending", tag)]
    ok = reconcile(done, {key: b, tkey: None})
    assert ok.problems == [] and ok.applied == {(0, 0)}
    moved = reconcile(done, {key: b, tkey: c})
    assert moved.problems == [] and moved.applied == {(0, 0), (1, 0)}  # the pending step got that far
    pending = [_step(0, "pending", land)]
    assert reconcile(pending, {key: a}).applied == set()
    assert reconcile(pending, {key: b}).applied == {(0, 0)}
    bad = reconcile(done, {key: c, tkey: None})
    assert bad.problems == [f"origin int of app is at {c[:12]}, but the journal expects {b[:12]}"]
    chained = [_step(0, "done", land), _step(1, "done", RefMove("app", "refs/heads/int", "origin", b, c))]
    assert reconcile(chained, {key: c}).problems == []
    assert reconcile(chained, {key: b}).problems  # the later move must be in place too


def test_reconcile_accepts_both_values_of_the_step_an_abort_is_undoing() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    land = RefMove("app", "refs/heads/int", "origin", a, b)
    local = RefMove("app", "refs/heads/int", "local", a, b)
    tag = RefMove("app", "refs/tags/t", "local", None, c)
    steps = [_step(0, "done", land, local), _step(1, "undone", tag)]
    # Without the marker, a half put-back step is someone else's doing.
    assert reconcile(steps, {land.key: a, local.key: b, tag.key: None}).problems
    half = reconcile(steps, {land.key: a, local.key: b, tag.key: None}, undoing=0)
    assert half.problems == [] and half.applied == {(0, 1)}  # origin put back, local still to go
    assert reconcile(steps, {land.key: b, local.key: b}, undoing=0).applied == {(0, 0), (0, 1)}
    gone = reconcile(steps, {land.key: c, local.key: a}, undoing=0)
    assert gone.problems == [
        f"origin int of app is at {c[:12]}, but the journal expects {a[:12]} or {b[:12]}"
    ]


def test_release_notes_group_by_stream_in_terminal_order() -> None:
    notes = release_notes(
        "phase-1",
        "Phase 1",
        "v0.1.0",
        [
            {"repo": "frontend", "number": 1, "title": "UI", "stream": "frontend", "checkpoint": 3},
            {"repo": "infra", "number": 1, "title": "VPC", "stream": "infra", "checkpoint": 1},
        ],
        ["infra", "backend", "frontend"],
    )
    assert notes.index("## infra") < notes.index("## frontend")
    assert "- frontend#1: UI — checkpoint 3" in notes
    assert "No pull requests" in release_notes("p", "", "v1", [], [])
