"""find_cycle: None on acyclic graphs, else the cycle in order, starting and ending at one node."""

from __future__ import annotations

import itertools
import random

import pytest

from coditect_cli.domain.graph import find_cycle


def assert_is_cycle(cycle: list[str], edges: dict[str, list[str]]) -> None:
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, "a node repeats inside the cycle"
    for a, b in itertools.pairwise(cycle):
        assert b in edges.get(a, []), f"{a} -> {b} is not an edge"


@pytest.mark.parametrize(
    "edges",
    [
        {},
        {"a": []},
        {"a": ["b"], "b": []},
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []},  # diamond
        {"a": ["missing"]},  # edges to nodes without their own entry
        {"x": ["y"], "y": ["z"], "z": [], "p": ["x", "z"]},
    ],
)
def test_no_cycle(edges: dict[str, list[str]]) -> None:
    assert find_cycle(edges) is None


def test_self_loop() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_two_cycle() -> None:
    edges = {"infra": ["backend"], "backend": ["infra"]}
    assert find_cycle(edges) == ["backend", "infra", "backend"]


def test_longer_cycle_in_order() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"], "e": []}
    cycle = find_cycle(edges)
    assert cycle == ["b", "c", "d", "b"]
    assert_is_cycle(cycle, edges)


def test_cycle_reachable_only_through_a_tail() -> None:
    edges = {"start": ["m1"], "m1": ["m2"], "m2": ["m3"], "m3": ["m1"]}
    cycle = find_cycle(edges)
    assert cycle is not None
    assert_is_cycle(cycle, edges)
    assert "start" not in cycle


def test_deterministic_whatever_the_order() -> None:
    edges = {"a": ["b", "c"], "b": ["a"], "c": ["a"], "d": ["d"]}
    expected = find_cycle(edges)
    assert expected is not None
    assert_is_cycle(expected, edges)
    rng = random.Random(7)
    for _ in range(20):
        keys = list(edges)
        rng.shuffle(keys)
        shuffled = {k: rng.sample(edges[k], len(edges[k])) for k in keys}
        assert find_cycle(shuffled) == expected


def test_deep_chain_has_no_recursion_limit() -> None:
    n = 20_000
    edges = {f"n{i}": [f"n{i + 1}"] for i in range(n)}
    assert find_cycle(edges) is None
    edges[f"n{n}"] = ["n0"]
    cycle = find_cycle(edges)
    assert cycle is not None
    assert len(cycle) == n + 2
    assert_is_cycle(cycle, edges)
