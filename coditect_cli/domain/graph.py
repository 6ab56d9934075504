"""Dependency graphs: find a cycle and return it in order, so it can be printed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in the directed graph ``node -> depends on``, as ``[a, b, ..., a]``, or None.

    Iterative depth-first search (manifests can be generated, so no recursion limit to hit); nodes are
    visited in sorted order so the reported cycle is deterministic.
    """
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = {}
    graph = {node: sorted(set(deps)) for node, deps in edges.items()}
    for start in sorted(graph):
        if colour.get(start, white) != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = grey
        while stack:
            node, index = stack[-1]
            deps = graph.get(node, [])
            if index < len(deps):
                stack[-1] = (node, index + 1)
                nxt = deps[index]
                state = colour.get(nxt, white)
                if state == grey:
                    return [*path[path.index(nxt) :], nxt]
                if state == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None
